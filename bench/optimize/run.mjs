#!/usr/bin/env node
// Benchmark of `mlship optimize --write` on a small ML service (FastAPI, numpy,
// scikit-learn, a ~200 MB weights file, a compile step). Builds the naive
// Dockerfile and the rewritten one side by side, then for each: final image
// size, rebuild time after a one-line source change, and bytes pushed to the
// local registry after that change. Run manually (not part of the tests):
//
//   npm run build && node bench/optimize/run.mjs [--registry 127.0.0.1:5000] [--weights-mb 200]
//
// Needs a Docker engine, the local base image mlship-local/python:3.11-slim,
// PyPI and the Debian mirror reachable from containers, and a registry.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  cpSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { DockerEngine } = await import(path.join(root, 'dist/adapters/docker/engine.js'));
const { measureImage } = await import(path.join(root, 'dist/core/optimize/layers.js'));

const { values } = parseArgs({
  options: {
    registry: { type: 'string', default: '127.0.0.1:5000' },
    'weights-mb': { type: 'string', default: '200' },
    keep: { type: 'boolean', default: false },
  },
});
const registry = values.registry;
const weightsBytes = Number(values['weights-mb']) * 1024 * 1024;
const work = path.join(root, 'bench/.work/optimize');
const runId = `bench-${Date.now()}`;
const LABELS = { 'dev.mlship.bench': 'optimize', 'dev.mlship.run': runId };

const log = (m) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const mb = (n) => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${(n / 1024).toFixed(1)} kB`);

function writeWeights(file) {
  // Random bytes: they do not compress, like real float weights, so the push figures are honest.
  mkdirSync(path.dirname(file), { recursive: true });
  const fd = openSync(file, 'w');
  const chunk = 8 * 1024 * 1024;
  for (let n = 0; n < weightsBytes; n += chunk) writeSync(fd, randomBytes(Math.min(chunk, weightsBytes - n)));
  closeSync(fd);
}

function prepare(variant) {
  const dir = path.join(work, variant);
  rmSync(dir, { recursive: true, force: true });
  cpSync(path.join(root, 'bench/optimize/service'), dir, { recursive: true });
  writeWeights(path.join(dir, 'app/model/weights.bin'));
  return dir;
}

function optimize(dir) {
  const r = spawnSync(
    process.execPath,
    [path.join(root, 'bin/mlship.js'), 'optimize', 'Dockerfile', '--write', '--yes'],
    {
      cwd: dir,
      encoding: 'utf8',
    },
  );
  if (r.status !== 0)
    throw new Error(`mlship optimize --write failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

function changeOneLine(dir) {
  const file = path.join(dir, 'app/main.py');
  writeFileSync(file, readFileSync(file, 'utf8').replace('VERSION = "1"', 'VERSION = "2"'));
}

/** Builder stages of the rewrite, tagged (from the cache) so they can be removed at the end. */
const stageTags = [];

async function build(engine, dir, tag) {
  const t0 = performance.now();
  const r = await engine.build({ context: dir, tags: [tag], labels: LABELS });
  if (readFileSync(path.join(dir, 'Dockerfile'), 'utf8').includes(' AS mlship-build')) {
    const stageTag = `${tag}-mlship-build`;
    await engine.build({ context: dir, tags: [stageTag], target: 'mlship-build', labels: LABELS });
    stageTags.push(stageTag);
  }
  return {
    seconds: (performance.now() - t0) / 1000,
    cachedSteps: r.cachedSteps,
    steps: r.steps.length,
    imageId: r.imageId,
  };
}

async function manifest(repo, tag) {
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, {
    headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  if (!res.ok) throw new Error(`registry manifest ${repo}:${tag}: HTTP ${res.status}`);
  return res.json();
}

/** Pushes and returns the bytes the registry did not have: blobs of this manifest missing from `known`. */
async function push(engine, image, repo, tag, known) {
  const ref = `${registry}/${repo}:${tag}`;
  const [name] = [`${registry}/${repo}`];
  await engine.tag(image, name, tag);
  const t0 = performance.now();
  const r = await engine.push(ref, { username: '', password: '', serveraddress: registry });
  const seconds = (performance.now() - t0) / 1000;
  const m = await manifest(repo, tag);
  const blobs = [m.config, ...m.layers];
  const fresh = blobs.filter((b) => !known.has(b.digest));
  for (const b of blobs) known.add(b.digest);
  return {
    seconds,
    layersPushed: r.layersPushed,
    layersSkipped: r.layersSkipped,
    bytesPushed: fresh.reduce((n, b) => n + b.size, 0),
    bytesTotal: blobs.reduce((n, b) => n + b.size, 0),
  };
}

async function runVariant(engine, variant, dir) {
  const repo = `mlship-bench/${variant}-${runId}`;
  const known = new Set();
  log(`${variant}: first build`);
  const first = await build(engine, dir, `mlship-bench/${variant}:v1`);
  const sizeV1 = (await engine.inspectImage(`mlship-bench/${variant}:v1`)).sizeBytes;
  log(`${variant}: push v1`);
  const push1 = await push(engine, `mlship-bench/${variant}:v1`, repo, 'v1', known);
  changeOneLine(dir);
  log(`${variant}: rebuild after a one-line change`);
  const rebuild = await build(engine, dir, `mlship-bench/${variant}:v2`);
  const inspect = await engine.inspectImage(`mlship-bench/${variant}:v2`);
  log(`${variant}: push v2`);
  const push2 = await push(engine, `mlship-bench/${variant}:v2`, repo, 'v2', known);
  const layers = await measureImage(`mlship-bench/${variant}:v2`, engine, 3);
  return {
    variant,
    first,
    sizeV1,
    rebuild,
    sizeBytes: inspect.sizeBytes,
    layers: inspect.layers.length,
    push1,
    push2,
    wastedBytes: layers.wastedBytes,
    layerSizes: layers.layers.map((l) => ({ bytes: l.sizeBytes, createdBy: l.createdBy.slice(0, 120) })),
  };
}

const engine = await DockerEngine.connect();
await engine.ping();
mkdirSync(work, { recursive: true });
log(`preparing work dirs in ${work} (weights ${mb(weightsBytes)})`);
const naiveDir = prepare('naive');
const optDir = prepare('optimized');
const rewriteReport = optimize(optDir);
writeFileSync(path.join(work, 'rewrite-report.txt'), rewriteReport);
log(`rewritten Dockerfile:\n${readFileSync(path.join(optDir, 'Dockerfile'), 'utf8')}`);

const naive = await runVariant(engine, 'naive', naiveDir);
const opt = await runVariant(engine, 'optimized', optDir);

const ratio = (a, b) => (b ? a / b : Number.NaN);
const rows = [
  ['final image size', mb(naive.sizeBytes), mb(opt.sizeBytes), ratio(opt.sizeBytes, naive.sizeBytes), 0.3],
  [
    'rebuild after a one-line change',
    `${naive.rebuild.seconds.toFixed(1)} s`,
    `${opt.rebuild.seconds.toFixed(1)} s`,
    ratio(opt.rebuild.seconds, naive.rebuild.seconds),
    0.1,
  ],
  [
    'bytes pushed after the change',
    mb(naive.push2.bytesPushed),
    mb(opt.push2.bytesPushed),
    ratio(opt.push2.bytesPushed, naive.push2.bytesPushed),
    0.01,
  ],
];
const table = [
  '| metric | naive | `--write` output | ratio | goal | met |',
  '|---|---:|---:|---:|---:|:---:|',
  ...rows.map(
    ([m, a, b, r, goal]) =>
      `| ${m} | ${a} | ${b} | ${r < 0.001 ? r.toExponential(1) : r.toFixed(3)}x | <= ${goal}x | ${r <= goal ? 'yes' : 'no'} |`,
  ),
].join('\n');
const extra = [
  `| first (cold-ish) build | ${naive.first.seconds.toFixed(1)} s | ${opt.first.seconds.toFixed(1)} s |`,
  `| steps cached in the rebuild | ${naive.rebuild.cachedSteps}/${naive.rebuild.steps} | ${opt.rebuild.cachedSteps}/${opt.rebuild.steps} |`,
  `| compressed bytes in the registry (v2) | ${mb(naive.push2.bytesTotal)} | ${mb(opt.push2.bytesTotal)} |`,
  `| layers | ${naive.layers} | ${opt.layers} |`,
  `| bytes wasted (overwritten/deleted) | ${mb(naive.wastedBytes)} | ${mb(opt.wastedBytes)} |`,
].join('\n');
const results = { when: new Date().toISOString(), weightsBytes, naive, optimized: opt, table, extra };
writeFileSync(path.join(work, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
const breakdown = (r) => r.layerSizes.map((l) => `  ${mb(l.bytes).padStart(10)}  ${l.createdBy}`).join('\n');
process.stderr.write(`naive layers:\n${breakdown(naive)}\noptimized layers:\n${breakdown(opt)}\n`);
process.stdout.write(
  `${table}\n\n| other figures | naive | \`--write\` output |\n|---|---:|---:|\n${extra}\n`,
);

if (!values.keep) {
  for (const t of stageTags) await engine.removeImage(t, true).catch(() => undefined);
  for (const v of ['naive', 'optimized']) {
    for (const t of ['v1', 'v2']) {
      await engine.removeImage(`${registry}/mlship-bench/${v}-${runId}:${t}`, true).catch(() => undefined);
      await engine.removeImage(`mlship-bench/${v}:${t}`, true).catch(() => undefined);
    }
  }
}
