// What the Node service's new file inputs cost (issue 18), in process, side by side with the Python
// service's way in one run: decoding a WAV (templates/wrap/node/wav.js against the numpy code of the
// Python service's files.decode_wav, run by the host .venv), and giving a 3x224x224 image float16
// (templates/wrap/node/tensors.js against numpy's astype(np.float16); a float32 model input costs
// no conversion at all). Medians of RUNS runs; no model runs.
//
//   node bench/serve/node-files.mjs [runs=50]

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const RUNS = Number(process.argv[2] ?? 50);
const node = (f) => pathToFileURL(path.resolve('templates/wrap/node', f)).href;
const { decodeWav, toChannels } = await import(node('wav.js'));
const { toFloat16 } = await import(node('tensors.js'));
// Built by `npm run build`.
const { pcmWav } = await import(pathToFileURL(path.resolve('dist/core/wrap/media-samples.js')).href);

/** A 16-bit PCM WAV of `seconds` of a tone at `rate`, `channels` channels (mlship's own writer). */
function wav(seconds, rate, channels) {
  const n = seconds * rate * channels;
  return pcmWav(
    Int16Array.from({ length: n }, (_, i) => Math.round(20000 * Math.sin(i / 37))),
    rate,
    channels,
  );
}

function median(fn) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** The same work in the host .venv's Python: decode_wav's numpy code, and astype(np.float16). */
function pythonMedians(files) {
  const code = `
import io, json, sys, time, wave
import numpy as np
runs = int(sys.argv[1])
def decode(data):
    with wave.open(io.BytesIO(data)) as s:
        ch, w, n = s.getnchannels(), s.getsampwidth(), s.getnframes()
        raw = s.readframes(n)
    x = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / float(2 ** 15)
    return x.reshape(-1, ch).mean(axis=1, dtype=np.float32)
def median(fn):
    t = []
    for _ in range(runs):
        t0 = time.perf_counter(); fn(); t.append((time.perf_counter() - t0) * 1000)
    return sorted(t)[len(t) // 2]
out = {}
for name in sys.argv[2:]:
    data = open(name, "rb").read()
    out[name] = median(lambda: decode(data))
image = np.random.default_rng(0).random((3, 224, 224), dtype=np.float32)
out["float16"] = median(lambda: image.astype(np.float16))
print(json.dumps(out))
`;
  const py = path.resolve('.venv/bin/python');
  return JSON.parse(execFileSync(py, ['-c', code, String(RUNS), ...files], { encoding: 'utf8' }));
}

async function main() {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const os = await import('node:os');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-node-files-'));
  const cases = [
    ['10 s, 16 kHz, mono', wav(10, 16_000, 1)],
    ['30 s, 44.1 kHz, stereo', wav(30, 44_100, 2)],
  ].map(([label, bytes], i) => {
    const file = path.join(dir, `${i}.wav`);
    writeFileSync(file, bytes);
    return { label, bytes, file };
  });
  const python = pythonMedians(cases.map((c) => c.file));
  console.log(`runs: ${RUNS} (medians, ms); node ${process.version}`);
  for (const c of cases) {
    const audio = { sampleRate: c.bytes.readUInt32LE(24), maxSeconds: 60 };
    const ms = median(() => toChannels(decodeWav(c.bytes, 'audio', audio), 'audio', 1));
    const base = python[c.file];
    console.log(
      `WAV ${c.label} (${(c.bytes.length / 1e6).toFixed(2)} MB): node wav.js ${ms.toFixed(2)}, python decode_wav ${base.toFixed(2)}, ratio ${(ms / base).toFixed(2)}`,
    );
  }
  const image = Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => (i % 255) / 255);
  const half = median(() => toFloat16(image));
  console.log(
    `float16 of 3x224x224: node tensors.js ${half.toFixed(2)}, numpy astype ${python.float16.toFixed(2)}, ratio ${(half / python.float16).toFixed(2)}`,
  );
  rmSync(dir, { recursive: true, force: true });
}

await main();
