#!/usr/bin/env node
// Benchmark of `mlship optimize --write` on a small ML service (FastAPI, numpy,
// scikit-learn, a ~200 MB weights file, a compile step), from two naive starting
// points in one run:
//   (a) the naive Dockerfile on the slim base, against `--write`;
//   (b) the naive Dockerfile on the full base (python:3.11: the toolchain is there),
//       against `--write --slim-base`.
// For each pair: final image size, rebuild time after a one-line source change,
// and bytes pushed to the local registry after that change. Run manually (not
// part of the tests):
//
//   npm run build && node bench/optimize/run.mjs [--registry 127.0.0.1:5000] [--weights-mb 200] [--classic]
//
// Builds use BuildKit, the builder of `docker build` since Docker Engine 23 (and of
// buildx); --classic measures the legacy builder instead.
//
// Needs a Docker engine, the local base image mlship-local/python:3.11-slim, PyPI
// and the Debian mirror reachable from containers, and a registry. The full base's
// stand-in, mlship-local/python:3.11, is built from full-base.Dockerfile when missing.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
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
const { LDD_CHECK } = await import(path.join(root, 'dist/core/optimize/rewrite.js'));

const { values } = parseArgs({
  options: {
    registry: { type: 'string', default: '127.0.0.1:5000' },
    'weights-mb': { type: 'string', default: '200' },
    keep: { type: 'boolean', default: false },
    classic: { type: 'boolean', default: false },
  },
});
const buildkit = !values.classic;
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

/** A copy of the service with the given naive Dockerfile as `Dockerfile` (the other one is not copied). */
function prepare(variant, dockerfile) {
  const dir = path.join(work, variant);
  rmSync(dir, { recursive: true, force: true });
  const service = path.join(root, 'bench/optimize/service');
  cpSync(service, dir, { recursive: true, filter: (f) => !/Dockerfile/.test(path.basename(f)) });
  cpSync(path.join(service, dockerfile), path.join(dir, 'Dockerfile'));
  writeWeights(path.join(dir, 'app/model/weights.bin'));
  // A line of its own per run: the build cache keeps earlier runs' v1 and v2 source layers, and
  // without it a second run would find its "rebuild after a change" already built.
  appendFileSync(path.join(dir, 'app/main.py'), `BENCH_RUN = "${runId}"\n`);
  return dir;
}

function optimize(dir, extra = []) {
  const r = spawnSync(
    process.execPath,
    [path.join(root, 'bin/mlship.js'), 'optimize', 'Dockerfile', '--write', '--yes', ...extra],
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
  const r = await engine.build({ context: dir, tags: [tag], labels: LABELS, buildkit });
  const seconds = (performance.now() - t0) / 1000;
  // Bookkeeping, not timed: the builder stage rebuilt from the cache, under a tag to remove at the end.
  if (readFileSync(path.join(dir, 'Dockerfile'), 'utf8').includes(' AS mlship-build')) {
    const stageTag = `${tag}-mlship-build`;
    await engine.build({ context: dir, tags: [stageTag], target: 'mlship-build', labels: LABELS, buildkit });
    stageTags.push(stageTag);
  }
  return {
    seconds,
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

const FULL_BASE = 'mlship-local/python:3.11';

/** Builds the stand-in for the full python:3.11 image when it is missing (kept: it is a base image). */
async function ensureFullBase(engine) {
  // Built from the current local base images (same base recipe), else rebuilt.
  const recipe = (image) =>
    spawnSync(
      'docker',
      ['image', 'inspect', '--format', '{{index .Config.Labels "dev.mlship.base-recipe"}}', image],
      {
        encoding: 'utf8',
      },
    ).stdout.trim();
  if (
    (await engine.imageExists(FULL_BASE)) &&
    recipe(FULL_BASE) === recipe('mlship-local/python:3.11-slim')
  ) {
    log(`${FULL_BASE} exists`);
    return;
  }
  const dir = path.join(work, 'full-base');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(path.join(root, 'bench/optimize/full-base.Dockerfile'), path.join(dir, 'Dockerfile'));
  log(
    `building ${FULL_BASE} (buildpack-deps:bookworm packages and CPython on the local Debian image; several minutes)`,
  );
  const t0 = performance.now();
  await engine.build({ context: dir, tags: [FULL_BASE], labels: { 'dev.mlship.bench-base': 'python-full' } });
  log(`built ${FULL_BASE} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

/** Runs the service's imports and its compiled helper, and lists shared objects that link against a missing library. */
async function smoke(engine, image) {
  const out = [];
  const r = await engine.run({
    image,
    entrypoint: ['sh', '-c'],
    cmd: [
      'cd /app && python -c \'import ctypes, fastapi, uvicorn, numpy, sklearn; ctypes.CDLL("./libfastscore.so"); print("imports ok")\'' +
        ` && (${LDD_CHECK}) | sort -u || true`,
    ],
    labels: LABELS,
    tailLines: 20,
    timeoutMs: 300_000,
    onLog: (l, stream) => stream === 'stdout' && out.push(l),
  });
  const unresolved = out.filter((l) => /not found/.test(l)).map((l) => l.trim());
  return { imports: r.exitCode === 0 && out[0] === 'imports ok', unresolved };
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
  log(`${variant}: smoke test`);
  const check = await smoke(engine, `mlship-bench/${variant}:v2`);
  log(
    `${variant}: imports ${check.imports ? 'ok' : 'FAILED'}, unresolved: ${check.unresolved.join(', ') || 'none'}`,
  );
  return {
    variant,
    smoke: check,
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
await ensureFullBase(engine);
log(`preparing work dirs in ${work} (weights ${mb(weightsBytes)})`);
const pairs = [
  {
    key: 'a',
    title: '(a) slim base: naive vs `--write`',
    naive: 'naive',
    opt: 'optimized',
    file: 'Dockerfile',
    flags: [],
  },
  {
    key: 'b',
    title: '(b) full base: naive vs `--write --slim-base`',
    naive: 'naive-full',
    opt: 'optimized-full',
    file: 'Dockerfile.full',
    flags: ['--slim-base'],
  },
];
for (const p of pairs) {
  p.naiveDir = prepare(p.naive, p.file);
  p.optDir = prepare(p.opt, p.file);
  const report = optimize(p.optDir, p.flags);
  writeFileSync(path.join(work, `rewrite-report-${p.key}.txt`), report);
  log(`rewritten Dockerfile (${p.key}):\n${readFileSync(path.join(p.optDir, 'Dockerfile'), 'utf8')}`);
}
for (const p of pairs) {
  p.naiveResult = await runVariant(engine, p.naive, p.naiveDir);
  p.optResult = await runVariant(engine, p.opt, p.optDir);
}

const ratio = (a, b) => (b ? a / b : Number.NaN);
const fmt = (r) => (r < 0.001 ? r.toExponential(1) : r.toFixed(3));
function tables(naive, opt, optName) {
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
    `| metric | naive | ${optName} | ratio | goal | met |`,
    '|---|---:|---:|---:|---:|:---:|',
    ...rows.map(
      ([m, a, b, r, goal]) =>
        `| ${m} | ${a} | ${b} | ${fmt(r)}x | <= ${goal}x | ${r <= goal ? 'yes' : 'no'} |`,
    ),
  ].join('\n');
  const extra = [
    `| other figures | naive | ${optName} |`,
    '|---|---:|---:|',
    `| first (cold-ish) build | ${naive.first.seconds.toFixed(1)} s | ${opt.first.seconds.toFixed(1)} s |`,
    `| steps cached in the rebuild | ${naive.rebuild.cachedSteps}/${naive.rebuild.steps} | ${opt.rebuild.cachedSteps}/${opt.rebuild.steps} |`,
    `| compressed bytes in the registry (v2) | ${mb(naive.push2.bytesTotal)} | ${mb(opt.push2.bytesTotal)} |`,
    `| layers | ${naive.layers} | ${opt.layers} |`,
    `| bytes wasted (overwritten/deleted) | ${mb(naive.wastedBytes)} | ${mb(opt.wastedBytes)} |`,
    `| service imports and libfastscore.so load | ${naive.smoke.imports ? 'ok' : 'FAILED'} | ${opt.smoke.imports ? 'ok' : 'FAILED'} |`,
    `| shared-object dependencies not found (ldd) | ${naive.smoke.unresolved.length} | ${opt.smoke.unresolved.length} |`,
  ].join('\n');
  return { table, extra };
}
const breakdown = (r) => r.layerSizes.map((l) => `  ${mb(l.bytes).padStart(10)}  ${l.createdBy}`).join('\n');
const results = { when: new Date().toISOString(), weightsBytes, fullBase: FULL_BASE };
const out = [];
for (const p of pairs) {
  const t = tables(
    p.naiveResult,
    p.optResult,
    `\`--write${p.flags.length ? ` ${p.flags.join(' ')}` : ''}\` output`,
  );
  results[p.key] = { title: p.title, naive: p.naiveResult, optimized: p.optResult, ...t };
  out.push(`### ${p.title}`, '', t.table, '', t.extra, '');
  process.stderr.write(
    `${p.naive} layers:\n${breakdown(p.naiveResult)}\n${p.opt} layers:\n${breakdown(p.optResult)}\n`,
  );
}
writeFileSync(path.join(work, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`${out.join('\n')}`);

if (!values.keep) {
  for (const t of stageTags) await engine.removeImage(t, true).catch(() => undefined);
  for (const v of pairs.flatMap((p) => [p.naive, p.opt])) {
    for (const t of ['v1', 'v2']) {
      await engine.removeImage(`${registry}/mlship-bench/${v}-${runId}:${t}`, true).catch(() => undefined);
      await engine.removeImage(`mlship-bench/${v}:${t}`, true).catch(() => undefined);
    }
  }
}
