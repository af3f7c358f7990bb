// The Node service's pure-JS decoders checked against the reference implementations in the host
// .venv: float32 → float16 bits (templates/wrap/node/tensors.js) against numpy's astype(float16)
// for edge values (ties to even, subnormals, overflow, NaN) and random ones; WAV files
// (templates/wrap/node/wav.js) written by Python's `wave` and numpy decoded to the same samples
// as the Python service's decode_wav; and the 415/422 refusals with their reasons.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

interface Sound {
  rate: number;
  channels: number;
  frames: number;
  samples: Float32Array;
}
interface Tensors {
  halfBits(v: number): number;
  halfValue(h: number): number;
  toFloat16(v: ArrayLike<number>): Uint16Array;
  fromFloat16(v: Uint16Array): Float32Array;
}
interface Wav {
  decodeWav(b: Buffer, name: string, audio?: { sampleRate: number; maxSeconds: number }): Sound;
  toChannels(s: Sound, name: string, channels?: number): Float32Array;
}

const node = (file: string) => pathToFileURL(path.resolve('templates/wrap/node', file)).href;
const tensors = (await import(node('tensors.js'))) as Tensors;
const wav = (await import(node('wav.js'))) as Wav;
const PYTHON = path.resolve('.venv/bin/python');

function python(code: string, input: string): string {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: create .venv with requirements-dev.txt`);
  return execFileSync(PYTHON, ['-c', code], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** Float32 values as numpy sees them: the bits of each value after astype(np.float16). */
function numpyHalfBits(values: Float32Array): number[] {
  const b64 = Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
  const out = python(
    'import base64,json,sys\nimport numpy as np\nv=np.frombuffer(base64.b64decode(sys.stdin.read()),dtype=np.float32)\nwith np.errstate(over="ignore"):\n    h=v.astype(np.float16)\nprint(json.dumps(h.view(np.uint16).tolist()))',
    b64,
  );
  return JSON.parse(out) as number[];
}

const f32 = (...v: number[]) => new Float32Array(v);
const EDGES = f32(
  0,
  -0,
  1,
  -1,
  0.1,
  1 / 3,
  65504, // largest float16
  65519.99, // still rounds down to 65504
  65520, // the tie above 65504 rounds to Infinity
  70000,
  -70000,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  Number.NaN,
  2 ** -14, // smallest normal
  2 ** -24, // smallest subnormal
  2 ** -25, // half of it: a tie, to even (zero)
  2 ** -25 * 1.0001, // just above the tie: rounds up
  3 * 2 ** -25, // a tie between subnormals 1 and 2: to even (2)
  2 ** -26,
  1 + 2 ** -11, // a tie between 1 and its successor: to even (1)
  1 + 3 * 2 ** -11, // a tie: to even (up)
  2047.5,
  2049, // ties at integer spacing 2
  2051,
  -(2 ** -14) * 0.5,
  6.1e-5,
  1e-8,
  123.456,
  -0.000123,
);

describe('float16 inputs of the Node service (tensors.js) against numpy', () => {
  it('edge values: ties to even, subnormals, overflow to Infinity, NaN, signed zero', () => {
    const ours = Array.from(tensors.toFloat16(EDGES));
    expect(ours).toEqual(numpyHalfBits(EDGES));
  });

  it('100000 random values over the whole float16 range and beyond, bit for bit', () => {
    const values = new Float32Array(100_000);
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let i = 0; i < values.length; i++) values[i] = (rand() - 0.5) * 2 ** (rand() * 44 - 28);
    expect(Array.from(tensors.toFloat16(values))).toEqual(numpyHalfBits(values));
  });

  it('float16 bits back to values: every one of the 65536 as numpy reads them', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    // Compared as float32 bits (-1 for a NaN: its payload is not a value).
    const values = tensors.fromFloat16(all);
    const ours = Array.from(new Uint32Array(values.buffer), (b, i) => (Number.isNaN(values[i]) ? -1 : b));
    const out = python(
      'import json\nimport numpy as np\nv=np.arange(65536,dtype=np.uint16).view(np.float16).astype(np.float32)\nprint(json.dumps(np.where(np.isnan(v), -1, v.view(np.uint32).astype(np.int64)).tolist()))',
      '',
    );
    expect(ours).toEqual(JSON.parse(out));
  });
});

/** A WAV file written by Python's `wave` module from numpy samples (PCM), or by hand (float). */
function pythonWav(o: { rate: number; channels: number; bits: number; frames: number; float?: boolean }): {
  file: Buffer;
  mono: number[];
} {
  const out = python(
    `
import base64, io, json, struct, sys, wave
import numpy as np
o = json.loads(sys.stdin.read())
rng = np.random.default_rng(7)
n = o["frames"] * o["channels"]
x = rng.uniform(-1, 1, n)
if o.get("float"):
    data = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, o["channels"], o["rate"], o["rate"] * o["channels"] * 4, o["channels"] * 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    raw = b"RIFF" + struct.pack("<I", len(body)) + body
    mono = np.frombuffer(data, "<f4").reshape(-1, o["channels"]).mean(axis=1, dtype=np.float32)
else:
    w = o["bits"] // 8
    if w == 1:
        ints = np.clip(np.round(x * 127 + 128), 0, 255).astype(np.uint8)
        data = ints.tobytes()
        decoded = (ints.astype(np.float32) - 128) / 128
    elif w == 3:
        ints = np.round(x * (2**23 - 1)).astype(np.int32)
        data = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
        decoded = ints.astype(np.float32) / float(2**23)
    else:
        dt = {2: "<i2", 4: "<i4"}[w]
        ints = np.round(x * (2 ** (8 * w - 1) - 1)).astype(dt)
        data = ints.tobytes()
        decoded = ints.astype(np.float32) / float(2 ** (8 * w - 1))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(o["channels"]); f.setsampwidth(w); f.setframerate(o["rate"]); f.writeframes(data)
    raw = buf.getvalue()
    mono = decoded.reshape(-1, o["channels"]).mean(axis=1, dtype=np.float32)
print(json.dumps({"file": base64.b64encode(raw).decode(), "mono": mono.tolist()}))
`,
    JSON.stringify(o),
  );
  const parsed = JSON.parse(out) as { file: string; mono: number[] };
  return { file: Buffer.from(parsed.file, 'base64'), mono: parsed.mono };
}

const AUDIO = { sampleRate: 16_000, maxSeconds: 2 };

function refused(f: () => unknown): { status: number; message: string } {
  try {
    f();
  } catch (e) {
    return { status: (e as { status: number }).status, message: (e as Error).message };
  }
  throw new Error('not refused');
}

describe('WAV inputs of the Node service (wav.js) against Python', () => {
  it.each([
    [8, 1],
    [16, 1],
    [16, 2],
    [24, 2],
    [32, 1],
  ])('PCM %i-bit, %i channel(s): the mono samples the Python service decodes', (bits, channels) => {
    const { file, mono } = pythonWav({ rate: 16_000, channels, bits, frames: 1600 });
    const sound = wav.decodeWav(file, 'audio', AUDIO);
    expect([sound.rate, sound.channels, sound.frames]).toEqual([16_000, channels, 1600]);
    expect(Array.from(wav.toChannels(sound, 'audio'))).toEqual(mono);
  });

  it('float32 stereo: mixed down to mono, or kept as two planar channels for a [N, 2, T] model', () => {
    const { file, mono } = pythonWav({ rate: 16_000, channels: 2, bits: 32, frames: 800, float: true });
    const sound = wav.decodeWav(file, 'audio', AUDIO);
    expect(Array.from(wav.toChannels(sound, 'audio'))).toEqual(mono);
    const planar = wav.toChannels(sound, 'audio', 2);
    expect(planar[0]).toBe(sound.samples[0]);
    expect(planar[800]).toBe(sound.samples[1]);
    expect(planar[801]).toBe(sound.samples[3]);
  });

  it('refusals: wrong rate and too long (422, from the header), not a WAV or an encoding it lacks (415), truncated (422)', () => {
    const at8k = pythonWav({ rate: 8000, channels: 1, bits: 16, frames: 100 }).file;
    expect(refused(() => wav.decodeWav(at8k, 'audio', AUDIO))).toEqual({
      status: 422,
      message: 'audio: sampled at 8000 Hz; the model takes 16000 Hz',
    });
    const long = pythonWav({ rate: 16_000, channels: 1, bits: 16, frames: 40_000 }).file;
    expect(refused(() => wav.decodeWav(long, 'audio', AUDIO))).toEqual({
      status: 422,
      message: 'audio: 2.5 s long; the limit is 2 s',
    });
    // Only the header is needed to refuse it: the samples may not even be there.
    expect(refused(() => wav.decodeWav(long.subarray(0, 64), 'audio', AUDIO)).message).toMatch(/2.5 s long/);
    const mp3 = Buffer.from('ID3\x04\x00\x00\x00\x00\x00\x00 some mp3 frames', 'latin1');
    expect(refused(() => wav.decodeWav(mp3, 'audio', AUDIO))).toMatchObject({ status: 415 });
    expect(refused(() => wav.decodeWav(mp3, 'audio', AUDIO)).message).toMatch(/^audio: not a WAV file \(PCM/);
    const alaw = Buffer.from(at8k);
    alaw.writeUInt16LE(6, 20); // WAVE_FORMAT_ALAW
    expect(refused(() => wav.decodeWav(alaw, 'audio', { sampleRate: 8000, maxSeconds: 2 }))).toEqual({
      status: 415,
      message:
        'audio: a WAV file of encoding 6, 16-bit: this service decodes PCM 8/16/24/32-bit integer or 32/64-bit float',
    });
    const ok = pythonWav({ rate: 16_000, channels: 1, bits: 16, frames: 1000 }).file;
    const cut = refused(() => wav.decodeWav(ok.subarray(0, 1000), 'audio', AUDIO));
    expect(cut.status).toBe(422);
    expect(cut.message).toMatch(/^audio: truncated WAV: 956 of 2000 data bytes/);
    const three = pythonWav({ rate: 16_000, channels: 3, bits: 16, frames: 10 }).file;
    expect(refused(() => wav.toChannels(wav.decodeWav(three, 'audio', AUDIO), 'audio', 2)).message).toBe(
      'audio: a sound of 3 channels; the model takes 2 (or mono)',
    );
  });
});
