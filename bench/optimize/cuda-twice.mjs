#!/usr/bin/env node
// Benchmark of cuda-twice's size figure: a torch service built on a CUDA runtime
// image and the same service on python:3.11-slim (the rule's fix), side by side.
// The measured difference of the two images is compared with what
// `mlship optimize --layers` reports the switch saves (the base image's CUDA
// libraries). Goal: within 5%. Run manually (not part of the tests):
//
//   npm run build && node bench/optimize/cuda-twice.mjs [--keep]
//
// Needs a Docker engine with BuildKit, the local base images mlship-local/python:3.11-slim
// and mlship-local/debian:bookworm, and PyPI reachable from containers (torch 2.5.1
// and its nvidia-* wheels: about 3.5 GB, downloaded once into a BuildKit cache mount).
// The CUDA base is a local stand-in (cuda-twice/cuda-base.Dockerfile), built when missing
// and kept, like the other local base images.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { DockerEngine } = await import(path.join(root, 'dist/adapters/docker/engine.js'));
const { measureImage } = await import(path.join(root, 'dist/core/optimize/layers.js'));
const { runLint } = await import(path.join(root, 'dist/core/optimize/optimize.js'));
const { listContext } = await import(path.join(root, 'dist/adapters/docker/build-context.js'));
const { readFile } = await import('node:fs/promises');

const { values } = parseArgs({ options: { keep: { type: 'boolean', default: false } } });
const dir = path.join(root, 'bench/optimize/cuda-twice');
const CUDA_BASE = 'mlship-local/cuda:12.4.1-cudnn-runtime-ubuntu22.04';
const LABELS = { 'dev.mlship.bench': 'cuda-twice' };
const log = (m) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const gb = (n) => `${(n / 1024 ** 3).toFixed(3)} GB`;

const engine = await DockerEngine.connect();
if (!(await engine.imageExists(CUDA_BASE))) {
  log(`building the CUDA stand-in ${CUDA_BASE} (downloads torch's nvidia-* wheels once)`);
  await engine.build({
    context: dir,
    dockerfile: 'cuda-base.Dockerfile',
    tags: [CUDA_BASE],
    labels: { 'dev.mlship.bench-base': 'cuda-runtime' },
    buildkit: true,
  });
}

const images = { cuda: 'mlship-bench/cuda-twice:cuda', slim: 'mlship-bench/cuda-twice:slim' };
for (const [kind, tag] of Object.entries(images)) {
  log(`building ${tag}`);
  const t0 = performance.now();
  await engine.build({
    context: dir,
    dockerfile: `Dockerfile.${kind}`,
    tags: [tag],
    labels: LABELS,
    buildkit: true,
  });
  log(`  ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

// The rule fires on the CUDA Dockerfile, and --layers measures both images.
const fsDeps = {
  readText: (f) => readFile(f, 'utf8').catch(() => undefined),
  listContext: async (d, df) =>
    (await listContext(d, df)).filter((e) => e.type === 'file').map((e) => ({ path: e.name, size: e.size })),
};
const lint = await runLint(
  {
    dockerfile: 'Dockerfile.cuda',
    dockerfileAbs: path.join(dir, 'Dockerfile.cuda'),
    contextDir: dir,
    cwd: dir,
  },
  fsDeps,
);
const finding = lint.findings.find((f) => f.rule === 'cuda-twice');
if (!finding) throw new Error('cuda-twice did not report Dockerfile.cuda');
const [a, b] = [await measureImage(images.cuda, engine, 5), await measureImage(images.slim, engine, 5)];
if (!a.cudaStacks) throw new Error(`--layers found no second CUDA stack in ${images.cuda}`);
if (b.cudaStacks) throw new Error(`--layers found two CUDA stacks in ${images.slim}`);

// Both images run the service (torch imports; no GPU on this machine).
for (const tag of Object.values(images)) {
  const r = spawnSync('docker', ['run', '--rm', tag], { encoding: 'utf8' });
  log(`${tag}: ${r.stdout.trim() || r.stderr.trim()}`);
  if (r.status !== 0) throw new Error(`${tag} does not run`);
}
// The figure users see: `mlship optimize --layers` on the CUDA image, as text and as JSON.
const cli = (json) =>
  spawnSync(
    process.execPath,
    [
      path.join(root, 'bin/mlship.js'),
      ...(json ? ['--json'] : []),
      'optimize',
      '--layers',
      images.cuda,
      '--top',
      '3',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 30 * 60_000 },
  );
const text = cli(false);
if (text.status !== 0) throw new Error(`mlship optimize --layers failed (${text.status}):\n${text.stderr}`);
log(
  `mlship optimize --layers ${images.cuda}:\n${text.stdout
    .split('\n')
    .filter((l) => /cuda-twice|python:<ver>-slim/.test(l))
    .join('\n')}`,
);
const reportedByCli = JSON.parse(cli(true).stdout).cudaStacks?.systemBytes;
if (reportedByCli !== a.cudaStacks.systemBytes)
  throw new Error(`the CLI reports ${reportedByCli}, measureImage ${a.cudaStacks.systemBytes}`);

const measured = a.totalBytes - b.totalBytes;
const reported = a.cudaStacks.systemBytes;
const error = (reported - measured) / measured;
const rows = [
  ['image on the CUDA runtime stand-in', gb(a.totalBytes)],
  ['same service on python:3.11-slim', gb(b.totalBytes)],
  ['measured difference', gb(measured)],
  ["reported saving (--layers: the base's CUDA libraries)", gb(reported)],
  ['CUDA libraries the torch wheels bring (both images)', gb(a.cudaStacks.wheelBytes)],
  [
    'reported vs measured',
    `${(error * 100).toFixed(1)}% (goal: within 5%: ${Math.abs(error) <= 0.05 ? 'met' : 'not met'})`,
  ],
];
process.stdout.write(
  `${['| figure | value |', '|---|---:|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n')}\n`,
);
if (!values.keep) for (const tag of Object.values(images)) await engine.removeImage(tag, true);
