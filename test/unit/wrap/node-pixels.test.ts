// The Node service's image preprocessing (templates/wrap/node/pixels.js, copied into every Node
// service with an image input) against a reference written here pixel by pixel from its definition
// (the per-pixel bilinear of the template as the Docker tests validated it against onnxruntime in
// Python): the same numbers, bit for bit, for pictures of the declared size (the one-pass copy) and
// of other sizes (bilinear resize), every resize mode, channel order, layout, dtype and mean/std.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ImagePreprocess } from '../../../src/generators/wrap-spec.js';

type Pre = ImagePreprocess;
interface Picture {
  width: number;
  height: number;
  channels?: number;
  data: Uint8Array;
}
interface Pixels {
  preprocess(img: Picture, p: Pre): Float32Array | Uint8Array;
  sampleShape(p: Pre): number[];
  toPicture(img: Picture, p: Pre): (x: number, y: number) => number[];
}

const pixels = (await import(pathToFileURL(path.resolve('templates/wrap/node/pixels.js')).href)) as Pixels;

/** RGBA (or RGB, as media.js decodes) noise from a fixed seed (a flat picture would hide a wrong index). */
function picture(width: number, height: number, seed: number, channels = 4): Picture {
  const data = new Uint8Array(width * height * channels);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, channels, data };
}

/** One output position along an axis → the two source positions, the weight (stored as float32,
 *  as the template's tables do) and whether it falls on the picture. */
function sampleAt(o: number, offset: number, step: number, source: number) {
  const s = (o + offset + 0.5) * step - 0.5;
  const lo = Math.max(0, Math.min(source - 1, Math.floor(s)));
  return {
    lo,
    hi: Math.min(source - 1, lo + 1),
    f: Math.fround(Math.max(0, Math.min(1, s - lo))),
    inside: s >= -0.5 && s <= source - 0.5,
  };
}

function reference(img: Picture, p: Pre): number[] {
  const C = p.channels === 'L' ? 1 : 3;
  const [W, H, w, h] = [p.width, p.height, img.width, img.height];
  const k = p.resize === 'crop' ? Math.max(W / w, H / h) : Math.min(W / w, H / h);
  const [sx, sy, ox, oy] =
    p.resize === 'stretch' ? [w / W, h / H, 0, 0] : [1 / k, 1 / k, (w * k - W) / 2, (h * k - H) / 2];
  const pick = (v: number[], c: number, d: number) => (v.length ? (v[v.length === 1 ? 0 : c] ?? d) : d);
  const out = p.dtype === 'uint8' ? new Uint8Array(C * W * H) : new Float32Array(C * W * H);
  const px = (x: number, y: number, c: number) => img.data[(y * w + x) * (img.channels ?? 4) + c] ?? 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const a = sampleAt(x, ox, sx, w);
      const b = sampleAt(y, oy, sy, h);
      const [r, g, bl] = [0, 1, 2].map((c) => {
        if (!(a.inside && b.inside)) return 114;
        const top = px(a.lo, b.lo, c) + (px(a.hi, b.lo, c) - px(a.lo, b.lo, c)) * a.f;
        const bottom = px(a.lo, b.hi, c) + (px(a.hi, b.hi, c) - px(a.lo, b.hi, c)) * a.f;
        return top + (bottom - top) * b.f;
      });
      const [R, G, B] = [r ?? 0, g ?? 0, bl ?? 0];
      const values =
        C === 1 ? [0.299 * R + 0.587 * G + 0.114 * B] : p.channels === 'BGR' ? [B, G, R] : [R, G, B];
      values.forEach((v, c) => {
        // x × (scale / std) + (-mean / std), in that order (float rounding is part of "the same").
        const std = pick(p.std, c, 1);
        const scaled = p.dtype === 'uint8' ? v * 1 + 0.5 : v * (p.scale / std) + -pick(p.mean, c, 0) / std;
        out[p.layout === 'NHWC' ? (y * W + x) * C + c : c * W * H + y * W + x] = scaled;
      });
    }
  }
  return Array.from(out);
}

const imagenet: Pre = {
  resize: 'letterbox',
  width: 224,
  height: 224,
  channels: 'RGB',
  layout: 'NCHW',
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  dtype: 'float32',
};

const variants: [string, Partial<Pre>][] = [
  ['RGB NCHW mean/std', {}],
  ['crop', { resize: 'crop' }],
  ['stretch', { resize: 'stretch' }],
  ['BGR NHWC', { channels: 'BGR', layout: 'NHWC' }],
  ['grey', { channels: 'L', mean: [0.5], std: [0.25] }],
  ['no mean/std', { mean: [], std: [] }],
  ['uint8', { dtype: 'uint8' }],
  ['uint8 BGR NHWC crop', { dtype: 'uint8', channels: 'BGR', layout: 'NHWC', resize: 'crop' }],
];

describe('Node image preprocessing (pixels.js) against the per-pixel reference', () => {
  it.each(variants)('a picture of the declared size (one-pass copy): %s', (_, v) => {
    const p = { ...imagenet, ...v };
    for (const channels of [3, 4]) {
      const img = picture(224, 224, 7, channels);
      const got = pixels.preprocess(img, p);
      expect(got.constructor).toBe(p.dtype === 'uint8' ? Uint8Array : Float32Array);
      expect(got.length).toBe(pixels.sampleShape(p).reduce((a, b) => a * b, 1));
      expect(Array.from(got), `${channels} channels`).toEqual(reference(img, p));
    }
  });

  it.each(variants)('pictures of other sizes (bilinear, down and up, padded or cut): %s', (_, v) => {
    const p = { ...imagenet, width: 40, height: 32, ...v };
    const sizes: [number, number][] = [
      [97, 61],
      [31, 45],
      [40, 32],
      [40, 33],
      [12, 12],
    ];
    for (const [w, h] of sizes) {
      for (const channels of [3, 4]) {
        const img = picture(w, h, w * h, channels);
        expect(Array.from(pixels.preprocess(img, p)), `${w}x${h}x${channels}`).toEqual(reference(img, p));
      }
    }
  });

  it('a picture of the declared size is its own pixels, normalized (no resampling at all)', () => {
    const img = picture(224, 224, 3, 3);
    const got = pixels.preprocess(img, imagenet);
    const plane = 224 * 224;
    for (const i of [0, 1, 223, 224, 5000, plane - 1]) {
      for (const c of [0, 1, 2]) {
        const [mean, std] = [[0.485, 0.456, 0.406][c] ?? 0, [0.229, 0.224, 0.225][c] ?? 1];
        const want = Math.fround(((img.data[i * 3 + c] ?? 0) / 255 - mean) / std);
        expect(got[c * plane + i]).toBeCloseTo(want, 6);
      }
    }
  });

  it('maps a point of the model input back to the picture sent (letterbox of a wide picture)', () => {
    const back = pixels.toPicture(picture(448, 224, 1), imagenet);
    expect(back(0, 56)).toEqual([0, 0]);
    expect(back(224, 168)).toEqual([448, 224]);
  });
});
