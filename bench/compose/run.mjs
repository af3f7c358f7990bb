#!/usr/bin/env node
// bench/compose: time from `mlship compose up` to every service healthy, against
// `docker-compose up -d` plus polling health by hand, on the same stack (a
// wrapped iris model, NGINX, PostgreSQL, the front end), alternating, one run.
// Images are built once first, so both sides measure start-up, not builds.
// Usage: npm run build && node bench/compose/run.mjs [rounds=3]
// Needs the local images of scripts/local-base-images.sh.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const rounds = Number(process.argv[2] ?? 3);
const root = path.resolve('bench/.work/compose');
const bin = path.resolve('bin/mlship.js');
const name = 'mlship-bench-compose';
const env = { ...process.env, CI: 'true' };
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });

function mlship(args) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mlship ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}
function compose(args) {
  return execFileSync('docker-compose', ['-p', name, '-f', 'compose.yaml', ...args], {
    cwd: path.join(root, 'deploy/compose'),
    stdio: 'pipe',
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

mlship([
  'wrap',
  path.resolve('fixtures/wrap/iris/model.joblib'),
  '--out',
  'services/iris',
  '--name',
  'iris',
  '--base-image',
  'mlship-local/python:3.11-slim',
]);
writeFileSync(
  path.join(root, 'mlship.yaml'),
  `version: 1\nname: ${name}\nservices:\n  iris:\n    path: services/iris\nproxy:\n  image: mlship-local/nginx:1.22\n  port: 18790\ndatabase:\n  image: mlship-local/postgres:15\nfrontend:\n  image: mlship-local/nginx:1.22\n`,
);
mlship(['compose', 'generate']);
compose(['build', '-q']);

async function baseline() {
  const t0 = performance.now();
  compose(['up', '-d', '--remove-orphans']);
  for (;;) {
    const ids = execFileSync('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${name}`], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean);
    const states = ids.length
      ? execFileSync('docker', ['inspect', '--format', '{{.State.Health.Status}}', ...ids], {
          encoding: 'utf8',
        })
          .split('\n')
          .filter(Boolean)
      : [];
    if (states.length === 4 && states.every((s) => s === 'healthy')) break;
    await sleep(250);
  }
  return (performance.now() - t0) / 1000;
}
function viaMlship(extra) {
  const t0 = performance.now();
  mlship(['compose', 'up', '--no-build', ...extra]);
  return (performance.now() - t0) / 1000;
}

const results = { baseline: [], mlship: [], mlshipSmoke: [] };
for (let i = 0; i < rounds; i++) {
  for (const [key, fn] of [
    ['baseline', baseline],
    ['mlship', () => viaMlship(['--no-smoke'])],
    ['mlshipSmoke', () => viaMlship([])],
  ]) {
    results[key].push(await fn());
    mlship(['compose', 'down', '--volumes']);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(results.baseline);
console.log(`${rounds} rounds, alternating; seconds from the command to all 4 services healthy\n`);
console.log('| how | median s | runs | vs baseline |');
console.log('|---|---:|---|---:|');
for (const [label, key] of [
  ['docker-compose up -d + polling health (250 ms)', 'baseline'],
  ['mlship compose up --no-build --no-smoke', 'mlship'],
  ['mlship compose up --no-build (with smoke test)', 'mlshipSmoke'],
]) {
  const m = median(results[key]);
  console.log(
    `| ${label} | ${m.toFixed(1)} | ${results[key].map((x) => x.toFixed(1)).join(', ')} | ${key === 'baseline' ? '-' : `${(((m - base) / base) * 100).toFixed(1)}%`} |`,
  );
}
spawnSync('docker', ['rmi', '-f', `${name}/iris:dev`], { stdio: 'ignore' });
