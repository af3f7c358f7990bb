// The Node service's cost of an image input (issue 18), in process, side by side with the baseline
// of the same 224x224 RGB input sent as a JSON tensor (what a client had to do before files):
// decode + preprocess of a JPEG and a PNG versus JSON.parse of the tensor; and the cost of encoding
// a 224x224 image answer. It runs templates/wrap/node/media.js itself, with sharp and busboy as
// pinned in the template's package.json installed into a temporary folder (not onnxruntime: no
// model runs). Also prints what the decoders add to the service image (du of their node_modules).
//
//   node bench/serve/node-media.mjs [runs=200]

import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const RUNS = Number(process.argv[2] ?? 200);
const TEMPLATE = path.resolve('templates/wrap/node');
const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-node-media-'));

function install() {
  const pkg = readFileSync(path.join(TEMPLATE, 'package.json.eta'), 'utf8');
  const deps = JSON.parse(/"dependencies": (\{[^}]*\})/.exec(pkg)[1]);
  delete deps['onnxruntime-node'];
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'bench', private: true, type: 'module', dependencies: deps }),
  );
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: dir,
    stdio: 'inherit',
  });
  for (const f of ['media.js', 'media-error.js', 'pixels.js', 'tensors.js', 'wav.js', 'weights.js'])
    cpSync(path.join(TEMPLATE, f), path.join(dir, f));
  return deps;
}

async function median(fn) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function main() {
  const deps = install();
  const require = createRequire(path.join(dir, 'package.json'));
  const sharp = require('sharp');
  const media = await import(pathToFileURL(path.join(dir, 'media.js')).href);
  // A 224x224 picture with detail (a JPEG of a flat colour would flatter the decoder).
  const W = 224;
  const rgba = Buffer.alloc(W * W * 4);
  for (let i = 0; i < W * W; i++) {
    const x = i % W;
    const y = Math.floor(i / W);
    rgba.set([(x * 7 + y) & 255, (y * 5) & 255, ((x ^ y) * 3) & 255, 255], i * 4);
  }
  const pixels = { width: W, height: W, data: rgba };
  const raw = () => sharp(rgba, { raw: { width: W, height: W, channels: 4 } }).removeAlpha();
  const files = {
    jpeg: { bytes: await raw().jpeg({ quality: 90 }).toBuffer() },
    png: { bytes: await raw().png().toBuffer() },
  };
  const input = { name: 'image', accept: ['image/png', 'image/jpeg'] };
  const pre = {
    resize: 'crop',
    width: 224,
    height: 224,
    channels: 'RGB',
    layout: 'NCHW',
    scale: 1 / 255,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    dtype: 'float32',
  };
  const tensor = media.preprocess(await media.decodeImage(files.png, input, 4e7), pre);
  const json = JSON.stringify({
    image: [
      [...tensor.subarray(0, W * W)],
      [...tensor.subarray(W * W, 2 * W * W)],
      [...tensor.subarray(2 * W * W)],
    ],
  });
  const rows = {
    'JSON tensor (baseline): JSON.parse + Float32Array': await median(() =>
      Float32Array.from(JSON.parse(json).image.flat(2)),
    ),
    'JPEG: decode + preprocess': await median(async () =>
      media.preprocess(await media.decodeImage(files.jpeg, input, 4e7), pre),
    ),
    'PNG: decode + preprocess': await median(async () =>
      media.preprocess(await media.decodeImage(files.png, input, 4e7), pre),
    ),
    '  of which preprocess only': await median(() => media.preprocess(pixels, pre)),
    'answer: encode 224x224 PNG': await median(() => media.encodeImage(pixels)),
    'answer: encode 224x224 JPEG': await median(() => media.encodeImage(pixels, 'image/jpeg')),
  };
  const base = rows['JSON tensor (baseline): JSON.parse + Float32Array'];
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0].model}); ${RUNS} runs each, medians; ${JSON.stringify(deps)}`,
  );
  console.log(
    `request bytes: JPEG ${files.jpeg.bytes.length}, PNG ${files.png.bytes.length}, JSON tensor ${json.length}`,
  );
  const du = execFileSync('du', ['-sk', 'node_modules'], { cwd: dir, encoding: 'utf8' }).split('\t')[0];
  console.log(`node_modules of ${Object.keys(deps).join(' + ')}: ${(Number(du) / 1024).toFixed(1)} MB`);
  for (const [name, ms] of Object.entries(rows))
    console.log(`${name.padEnd(52)} ${ms.toFixed(2).padStart(7)} ms  ${(ms / base).toFixed(2)}x`);
}

main().finally(() => rmSync(dir, { recursive: true, force: true }));
