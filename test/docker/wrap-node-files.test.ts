// Every file input on the Node runtime (issue 18), built into real images and run: a WAV audio
// model, a model taking two file fields (a picture and generic bytes, one ONNX input each), float16
// models (a picture, and numbers) and a detector, all made at test time with the onnx helper API. Each answer is compared with the
// same model run by onnxruntime in Python (the host .venv) on the same input; every refusal of a
// sound (wrong rate, too long, not a WAV, too large) is checked with its status and reason.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { type RunningService, serve } from '../../src/core/serve/serve.js';
import { pcmWav } from '../../src/core/wrap/media-samples.js';
import type { FileInput, MediaSpec } from '../../src/generators/wrap-spec.js';
import { LOCAL_DEBIAN_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { decodePng, encodePng, pixelAt } from '../helpers/png.js';
import { ensureNodeImage, imageMedia, writeNodeImageService } from './node-media-helpers.js';
import { metric, python, quietTasks } from './wrap-helpers.js';

const run = `wrap-node-files-${randomBytes(4).toString('hex')}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-node-files-'));
const log: string[] = [];
const engine: DockerEngine | undefined = await requireEngine();
const KINDS = ['audio', 'pair', 'half', 'boxes', 'table'] as const;
type Kind = (typeof KINDS)[number];
const services = {} as Record<Kind, RunningService>;
const model = (kind: Kind) => path.join(tmp, `${kind}.onnx`);

/** The models: audio [N, T] → 3 scores; photo [N,3,16,16] + blob uint8 [N, L] → 4; float16 colours;
 *  a detector of one box [4, 4, 20, 12], one keypoint [16, 16, 0.9] and one mask (rows 24-31) in its 32x32 input's pixels;
 *  a tabular model taking float16 numbers [N, 3] → [N, 2]. */
function makeModels(): void {
  python(
    `
import sys
import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh
def save(nodes, name, inputs, outputs, inits=()):
    m = h.make_model(h.make_graph(nodes, name, inputs, outputs, list(inits)), opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, f"{sys.argv[1]}/{name}.onnx")
save([h.make_node("ReduceMean", ["audio"], ["m"], axes=[1]), h.make_node("ReduceMax", ["audio"], ["x"], axes=[1]),
      h.make_node("Mul", ["audio", "audio"], ["sq"]), h.make_node("ReduceMean", ["sq"], ["e"], axes=[1]),
      h.make_node("Mul", ["e", "k"], ["e8"]), h.make_node("Concat", ["m", "x", "e8"], ["scores"], axis=1)],
     "audio", [h.make_tensor_value_info("audio", T.FLOAT, ["N", "T"])],
     [h.make_tensor_value_info("scores", T.FLOAT, ["N", 3])], [nh.from_array(np.float32([8]), "k")])
save([h.make_node("ReduceMean", ["photo"], ["p"], axes=[2, 3], keepdims=0),
      h.make_node("Cast", ["blob"], ["bf"], to=T.FLOAT), h.make_node("ReduceMean", ["bf"], ["bm"], axes=[1]),
      h.make_node("Div", ["bm", "d"], ["b"]), h.make_node("Concat", ["p", "b"], ["scores"], axis=1)],
     "pair", [h.make_tensor_value_info("photo", T.FLOAT, ["N", 3, 16, 16]), h.make_tensor_value_info("blob", T.UINT8, ["N", "L"])],
     [h.make_tensor_value_info("scores", T.FLOAT, ["N", 4])], [nh.from_array(np.float32([64]), "d")])
w = np.array([[4, -2, -2], [-2, 4, -2], [-2, -2, 4]], dtype=np.float32)
save([h.make_node("Cast", ["image"], ["f"], to=T.FLOAT), h.make_node("ReduceMean", ["f"], ["p"], axes=[2, 3], keepdims=0),
      h.make_node("MatMul", ["p", "W"], ["l"]), h.make_node("Cast", ["l"], ["logits"], to=T.FLOAT16)],
     "half", [h.make_tensor_value_info("image", T.FLOAT16, ["N", 3, 8, 8])],
     [h.make_tensor_value_info("logits", T.FLOAT16, ["N", 3])], [nh.from_array(w, "W")])
mask = np.zeros((1, 1, 32, 32), dtype=np.float32)
mask[..., 24:, :] = 0.8
save([h.make_node("ReduceMean", ["image"], ["m"], axes=[1, 2, 3]), h.make_node("Reshape", ["m", "s"], ["m3"]),
      h.make_node("Mul", ["m3", "zero"], ["z"]), h.make_node("Add", ["z", "B"], ["boxes"]), h.make_node("Add", ["z", "K"], ["keypoints"]),
      h.make_node("Reshape", ["m", "s4"], ["m4"]), h.make_node("Mul", ["m4", "zero"], ["z4"]), h.make_node("Add", ["z4", "MK"], ["masks"])],
     "boxes", [h.make_tensor_value_info("image", T.FLOAT, ["N", 3, 32, 32])],
     [h.make_tensor_value_info("boxes", T.FLOAT, ["N", 1, 4]), h.make_tensor_value_info("keypoints", T.FLOAT, ["N", 1, 3]),
      h.make_tensor_value_info("masks", T.FLOAT, ["N", 1, 32, 32])],
     [nh.from_array(np.int64([-1, 1, 1]), "s"), nh.from_array(np.int64([-1, 1, 1, 1]), "s4"), nh.from_array(np.float32([0]), "zero"),
      nh.from_array(np.float32([[[4, 4, 20, 12]]]), "B"), nh.from_array(np.float32([[[16, 16, 0.9]]]), "K"), nh.from_array(mask, "MK")])
save([h.make_node("Cast", ["x"], ["f"], to=T.FLOAT), h.make_node("MatMul", ["f", "M"], ["y"])],
     "table", [h.make_tensor_value_info("x", T.FLOAT16, ["N", 3])], [h.make_tensor_value_info("y", T.FLOAT, ["N", 2])],
     [nh.from_array(np.float32([[1, 0.5], [1, -1], [1, 2]]), "M")])
`,
    [tmp],
  );
}

/** One model input for the reference run: raw little-endian bytes of a dtype and a shape. */
type Feed = { dtype: 'float32' | 'uint8' | 'float16' | 'float16-of-pixels'; data: Buffer; shape: number[] };

/**
 * The model's first output, run by onnxruntime in Python on these inputs. "float16-of-pixels": 8-bit
 * pixels made float16 by numpy as the Python service's media.py does ((x / 255) as float16).
 */
function reference(kind: Kind, feeds: Record<string, Feed>): number[][] {
  const out = python(
    `
import base64, json, sys
import numpy as np, onnxruntime as ort
feeds = {}
for name, f in json.loads(sys.argv[2]).items():
    raw = base64.b64decode(f["data"])
    if f["dtype"] == "float16-of-pixels":
        a = (np.frombuffer(raw, np.uint8).astype(np.float32) / np.float32(255)).astype(np.float16)
    elif f["dtype"] == "float16":
        a = np.frombuffer(raw, np.float32).astype(np.float16)
    else:
        a = np.frombuffer(raw, np.dtype(f["dtype"]))
    feeds[name] = a.reshape(f["shape"])
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
print(json.dumps(np.asarray(s.run(None, feeds)[0], dtype=np.float64).tolist()))
`,
    [
      model(kind),
      JSON.stringify(
        Object.fromEntries(
          Object.entries(feeds).map(([k, f]) => [k, { ...f, data: f.data.toString('base64') }]),
        ),
      ),
    ],
  );
  return JSON.parse(out) as number[][];
}

function softmax(v: number[]): number[] {
  const e = v.map((x) => Math.exp(x - Math.max(...v)));
  return e.map((x) => x / e.reduce((a, b) => a + b, 0));
}

function expectProbabilities(answer: unknown, scores: number[], digits = 5): void {
  const probs = Object.values((answer as { probabilities: Record<string, number> }).probabilities);
  const want = softmax(scores);
  expect(probs).toHaveLength(want.length);
  for (const [i, p] of probs.entries()) expect(p).toBeCloseTo(want[i]!, digits);
}

/** A 16-bit PCM WAV of these samples (-1..1, interleaved), and the float32 samples it decodes to. */
function wav(samples: number[], rate = 16_000, channels = 1): { file: Buffer; decoded: Float32Array } {
  const ints = samples.map((v) => Math.max(-32768, Math.min(32767, Math.round(v * 32767))));
  const out = pcmWav(ints, rate, channels);
  // Mono: the mean of the channels of each frame, as both services decode it.
  const frames = ints.length / channels;
  const decoded = new Float32Array(frames);
  for (let t = 0; t < frames; t++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += ints[t * channels + c]! / 32768;
    decoded[t] = sum / channels;
  }
  return { file: out, decoded };
}

const tone = (n: number, f: number, channels = 1) =>
  Array.from(
    { length: n * channels },
    (_, i) => 0.6 * Math.sin((Math.floor(i / channels) * f) / 100) * (1 - (i % channels) * 0.5),
  );

const f32 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

const AUDIO: FileInput = {
  name: 'audio',
  kind: 'audio',
  maxBytes: 100_000,
  accept: ['audio/wav', 'audio/x-wav', 'audio/wave'],
  audio: { sampleRate: 16_000, maxSeconds: 2 },
};

function mediaOf(kind: Kind): MediaSpec | undefined {
  if (kind === 'table') return undefined;
  const common = { output: { kind: 'json' as const }, fetchAllow: [], maxPixels: 4_000_000 };
  if (kind === 'audio') return { ...common, inputs: [AUDIO] };
  if (kind === 'pair') {
    const photo = imageMedia('json', 16).inputs[0]!;
    const blob: FileInput = {
      name: 'blob',
      kind: 'file',
      maxBytes: 4096,
      accept: ['application/octet-stream'],
    };
    return { ...common, inputs: [{ ...photo, name: 'photo' }, blob] };
  }
  if (kind === 'boxes') return imageMedia('json', 32);
  const colours = imageMedia('json', 8, ['red', 'green', 'blue']);
  return {
    ...colours,
    inputs: [{ ...colours.inputs[0]!, image: { ...colours.inputs[0]!.image!, dtype: 'float16' } }],
  };
}

async function start(kind: Kind): Promise<RunningService> {
  const dir = path.join(tmp, kind);
  // One package name for all: the file services' dependency layers are one, built once.
  const png = (size: number) => encodePng(size, size, () => [90, 120, 200]).toString('base64');
  // The example `mlship serve` sends once the service is up: a complete request.
  const examples: Record<Kind, Record<string, string | number[]>> = {
    audio: { audio: wav(tone(1600, 3)).file.toString('base64') },
    pair: { photo: png(16), blob: Buffer.from('example bytes').toString('base64') },
    half: { image: png(8) },
    boxes: { image: png(32) },
    table: { features: [0.1, 1000.3, 3] },
  };
  const batching = { maxBatchSize: 8, maxLatencyMs: 20 };
  await writeNodeImageService(dir, 'node-files', model(kind), mediaOf(kind), batching, examples[kind]);
  return serve(
    { dir, image: `mlship-test/node-files-${kind}:${run}`, build: true, hostPort: 0, runLabel: run },
    { engine: engine!, tasks: quietTasks(log) },
  );
}

function multipart(url: string, parts: [string, Buffer, string][], headers: Record<string, string> = {}) {
  const form = new FormData();
  for (const [name, value, type] of parts) form.append(name, new Blob([value], { type }), `${name}.bin`);
  return fetch(url, { method: 'POST', body: form, headers });
}

function json(url: string, body: unknown) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function refusal(r: Response): Promise<[number, string]> {
  return [r.status, ((await r.json()) as { detail: string }).detail];
}

beforeAll(async () => {
  if (!engine) return;
  await requireImage(engine, LOCAL_DEBIAN_IMAGE);
  await ensureNodeImage(engine);
  makeModels();
  for (const kind of KINDS) services[kind] = await start(kind);
}, 900_000);

afterAll(async () => {
  if (engine) {
    await engine.removeByLabel(RUN_LABEL, run);
    for (const kind of KINDS) await engine.removeImage(`mlship-test/node-files-${kind}:${run}`, true);
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe.runIf(engine)('file inputs on the Node runtime, answers as onnxruntime in Python gives them', () => {
  it('a WAV model: multipart and base64 (mono and stereo) answer as the model on the decoded samples', async () => {
    const url = `${services.audio.result.url}/predict`;
    const mono = wav(tone(8000, 7));
    const [scores] = reference('audio', {
      audio: { dtype: 'float32', data: f32(mono.decoded), shape: [1, 8000] },
    });
    const byPart = await multipart(url, [['audio', mono.file, 'audio/wav']]);
    expect(byPart.status).toBe(200);
    expectProbabilities(await byPart.json(), scores!);
    const b64 = await json(url, { audio: `data:audio/wav;base64,${mono.file.toString('base64')}` });
    expectProbabilities(await b64.json(), scores!);
    const stereo = wav(tone(4000, 3, 2), 16_000, 2);
    const [mixed] = reference('audio', {
      audio: { dtype: 'float32', data: f32(stereo.decoded), shape: [1, 4000] },
    });
    expectProbabilities(await (await json(url, { audio: stereo.file.toString('base64') })).json(), mixed!);
  });

  it('a batch of sounds of two lengths: one call per length, answers in order', async () => {
    const sounds = [wav(tone(1600, 2)), wav(tone(3200, 5)), wav(tone(1600, 9))];
    const metrics = async () => (await fetch(`${services.audio.result.url}/metrics`)).text();
    const before = metric(await metrics(), 'mlship_model_duration_seconds_count');
    const r = await json(`${services.audio.result.url}/predict/batch`, {
      inputs: sounds.map((s) => ({ audio: s.file.toString('base64') })),
    });
    expect(r.status).toBe(200);
    const { probabilities } = (await r.json()) as { probabilities: Record<string, number>[] };
    sounds.forEach((s, i) => {
      const [scores] = reference('audio', {
        audio: { dtype: 'float32', data: f32(s.decoded), shape: [1, s.decoded.length] },
      });
      expectProbabilities({ probabilities: probabilities[i] }, scores!);
    });
    expect(metric(await metrics(), 'mlship_model_duration_seconds_count') - before).toBe(2);
  });

  it('sound refusals: wrong rate 422, too long 422 (from the header), not a WAV 415, over max_bytes 413', async () => {
    const url = `${services.audio.result.url}/predict`;
    const at8k = wav(tone(800, 3), 8000).file;
    expect(await refusal(await multipart(url, [['audio', at8k, 'audio/wav']]))).toEqual([
      422,
      'audio: sampled at 8000 Hz; the model takes 16000 Hz',
    ]);
    const long = wav(tone(48_000, 3)).file;
    expect(await refusal(await json(url, { audio: long.toString('base64') }))).toEqual([
      422,
      'audio: 3.0 s long; the limit is 2 s',
    ]);
    const ogg = Buffer.concat([Buffer.from('OggS\0\x02'), randomBytes(400)]);
    const [status, detail] = await refusal(await multipart(url, [['audio', ogg, 'audio/ogg']]));
    expect([status, detail]).toEqual([415, expect.stringMatching(/^audio: not a WAV file \(PCM/)]);
    const big = await multipart(url, [
      ['audio', Buffer.concat([wav(tone(10, 1)).file, randomBytes(120_000)]), 'audio/wav'],
    ]);
    expect(await refusal(big)).toEqual([413, 'audio: file over the limit of 100000 bytes']);
    expect((await multipart(url, [['audio', wav(tone(1000, 4)).file, 'audio/wav']])).status).toBe(200);
    expect((await services.audio.handle.inspect()).running).toBe(true);
  });

  it('two file fields (a picture and bytes): multipart parts or two base64 fields, each feeding its input', async () => {
    const url = `${services.pair.result.url}/predict`;
    const png = encodePng(16, 16, (x, y) => [x * 16, y * 16, (x * y) & 255]);
    const pixels = Buffer.alloc(3 * 16 * 16);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 16; y++)
        for (let x = 0; x < 16; x++) pixels[c * 256 + y * 16 + x] = [x * 16, y * 16, (x * y) & 255][c]!;
    const blob = randomBytes(100);
    const photo = (p: Buffer) => ({
      dtype: 'float32' as const,
      data: f32(Float32Array.from(p, (v) => v / 255)),
      shape: [1, 3, 16, 16],
    });
    const [scores] = reference('pair', {
      photo: photo(pixels),
      blob: { dtype: 'uint8', data: blob, shape: [1, 100] },
    });
    const parts = await multipart(url, [
      ['photo', png, 'image/png'],
      ['blob', blob, 'application/octet-stream'],
    ]);
    expect(parts.status).toBe(200);
    expectProbabilities(await parts.json(), scores!);
    const both = await json(url, { photo: png.toString('base64'), blob: blob.toString('base64') });
    expectProbabilities(await both.json(), scores!);
    expect((await json(url, { photo: png.toString('base64') })).status).toBe(422);
    const batch = await json(`${services.pair.result.url}/predict/batch`, {
      inputs: [blob, blob.subarray(0, 10)].map((b) => ({
        photo: png.toString('base64'),
        blob: b.toString('base64'),
      })),
    });
    const { probabilities } = (await batch.json()) as { probabilities: Record<string, number>[] };
    const [short] = reference('pair', {
      photo: photo(pixels),
      blob: { dtype: 'uint8', data: blob.subarray(0, 10), shape: [1, 10] },
    });
    expectProbabilities({ probabilities: probabilities[0] }, scores!);
    expectProbabilities({ probabilities: probabilities[1] }, short!);
  });

  it('a float16 model: the picture made float16 as numpy does, the float16 answer read back', async () => {
    const url = `${services.half.result.url}/predict`;
    for (const [rgb, label] of [
      [[200, 30, 30], 'red'],
      [[12, 180, 97], 'green'],
      [[1, 2, 254], 'blue'],
    ] as const) {
      const png = encodePng(8, 8, () => [...rgb]);
      const planes = Buffer.alloc(3 * 64);
      for (let c = 0; c < 3; c++) planes.fill(rgb[c]!, c * 64, (c + 1) * 64);
      const [logits] = reference('half', {
        image: { dtype: 'float16-of-pixels', data: planes, shape: [1, 3, 8, 8] },
      });
      const answer = (await (await multipart(url, [['image', png, 'image/png']])).json()) as {
        prediction: string;
      };
      expect(answer.prediction).toBe(label);
      // The same float16 logits: the same probabilities to the 6 places the service rounds to.
      expectProbabilities(answer, logits!, 6);
    }
  });

  it('a detector (outputs boxes, keypoints, masks): answered in the pixels of the picture sent; ?render=1 draws them', async () => {
    const url = `${services.boxes.result.url}/predict`;
    const red = encodePng(64, 64, () => [220, 20, 20]);
    const answer = (await (await multipart(url, [['image', red, 'image/png']])).json()) as {
      prediction: { boxes: number[][]; keypoints: number[][]; masks: unknown[] };
    };
    // Stretched 64 → 32: the model's [4, 4, 20, 12] is [8, 8, 40, 24] in the picture sent.
    expect(answer.prediction.boxes).toEqual([[8, 8, 40, 24]]);
    expect(answer.prediction.keypoints[0]!.slice(0, 2)).toEqual([32, 32]);
    expect(answer.prediction.keypoints[0]![2]).toBeCloseTo(0.9, 6);
    // The mask (the model input's rows 24-31) is the picture's rows 48-63: in each of the 64 columns,
    // 48 pixels out then 16 in (COCO's column-major runs, as the Python service answers them).
    expect(answer.prediction.masks).toEqual([{ size: [64, 64], counts: Array(64).fill([48, 16]).flat() }]);
    const drawn = await multipart(`${url}?render=1`, [['image', red, 'image/png']]);
    expect(drawn.headers.get('content-type')).toBe('image/png');
    const pixels = decodePng(Buffer.from(await drawn.arrayBuffer()));
    expect([pixels.width, pixels.height]).toEqual([64, 64]);
    // The outline 2 pixels wide inside the box, the keypoint a dot of radius 4, the rest the picture.
    for (const [x, y] of <[number, number][]>[
      [8, 16],
      [9, 16],
      [24, 8],
      [40, 20],
      [24, 24],
    ])
      expect(pixelAt(pixels, x, y)).toEqual([255, 64, 32, 255]);
    for (const [x, y] of <[number, number][]>[
      [32, 32],
      [35, 32],
      [32, 28],
    ])
      expect(pixelAt(pixels, x, y)).toEqual([32, 200, 255, 255]);
    for (const [x, y] of <[number, number][]>[
      [10, 16],
      [24, 16],
      [37, 32],
      [4, 4],
    ])
      expect(pixelAt(pixels, x, y)).toEqual([220, 20, 20, 255]);
    // Under the mask, half the picture and half the first mask colour (255, 64, 32).
    for (const [x, y] of <[number, number][]>[
      [4, 56],
      [60, 48],
    ])
      expect(pixelAt(pixels, x, y)).toEqual([237, 42, 26, 255]);
    expect(pixelAt(pixels, 4, 47)).toEqual([220, 20, 20, 255]);
    const jpeg = await multipart(`${url}?render=1`, [['image', red, 'image/png']], { accept: 'image/jpeg' });
    expect(jpeg.headers.get('content-type')).toBe('image/jpeg');
    const batch = await json(`${services.boxes.result.url}/predict/batch`, {
      inputs: [
        { image: red.toString('base64') },
        { image: encodePng(32, 96, () => [1, 2, 3]).toString('base64') },
      ],
    });
    const { predictions } = (await batch.json()) as {
      predictions: { boxes: number[][]; masks: unknown[] }[];
    };
    expect(predictions.map((p) => p.boxes)).toEqual([[[8, 8, 40, 24]], [[4, 12, 20, 36]]]);
    // A 32x96 picture stretched to 32x32: the mask is its rows 72-95.
    expect(predictions[1]!.masks).toEqual([{ size: [96, 32], counts: Array(32).fill([72, 24]).flat() }]);
  });

  it('the OpenAPI document describes every file field as the Python service does (sound rate, bytes)', async () => {
    const schema = async (kind: Kind) => {
      const doc = (await (await fetch(`${services[kind].result.url}/openapi.json`)).json()) as {
        components: {
          schemas: { PredictRequest: { properties: Record<string, unknown>; required: string[] } };
        };
      };
      return doc.components.schemas.PredictRequest;
    };
    expect((await schema('audio')).properties.audio).toEqual({
      type: 'string',
      contentEncoding: 'base64',
      contentMediaType: 'audio/*',
      'x-mlship-file': {
        kind: 'audio',
        max_bytes: 100_000,
        accept: AUDIO.accept,
        sample_rate: 16_000,
        max_seconds: 2,
      },
    });
    const pair = await schema('pair');
    expect(pair.required).toEqual(['photo', 'blob']);
    expect(pair.properties.blob).toEqual({
      type: 'string',
      contentEncoding: 'base64',
      contentMediaType: 'application/octet-stream',
      'x-mlship-file': { kind: 'file', max_bytes: 4096, accept: ['application/octet-stream'] },
    });
  });

  it('a tabular float16 model: the numbers made float16 as numpy does (ties to even)', async () => {
    const url = `${services.table.result.url}/predict`;
    for (const row of [
      [0.1, 1000.3, 3],
      [65519, -2.5e-8, 1 + 2 ** -11],
    ]) {
      const r = await json(url, { features: row });
      expect(r.status).toBe(200);
      const data = f32(Float32Array.from(row));
      const [want] = reference('table', { x: { dtype: 'float16', data, shape: [1, 3] } });
      expect(((await r.json()) as { prediction: number[] }).prediction).toEqual(want);
    }
  });
});
