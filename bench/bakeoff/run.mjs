#!/usr/bin/env node
// Benchmark for `mlship bakeoff` (not a test): in one run,
//  1. per-candidate overhead beyond the example's own run time: container create,
//     start, stats sampling, copy-out of outputs and the pip freeze, remove
//     (containerMs - runMs from the report), over several sequential candidates;
//  2. the concurrency speed-up: two CPU-light candidates with -j 2 against one alone
//     (whole command wall time, images already built).
// Goals (issue 7): overhead < 1 s median; two concurrently <= 1.2x one.
// With --baseline <dir> (another mlship checkout, built: e.g. the branch point), its CLI runs the
// same overhead rounds interleaved with this one's, so the two are measured under the same load.
// Usage: npm run build && node bench/bakeoff/run.mjs [--rounds 3] [--base-image mlship-local/python:3.11-slim] [--baseline <dir>]
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DockerEngine } from '../../dist/adapters/docker/engine.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const rounds = Number(arg('--rounds', '3'));
const baseImage = arg(
  '--base-image',
  process.env.MLSHIP_TEST_PYTHON_IMAGE ?? 'mlship-local/python:3.11-slim',
);
const hold = Number(arg('--hold', '2'));
const CLI = path.resolve('bin/mlship.js');
const BASELINE = arg('--baseline', undefined);
const BASELINE_CLI = BASELINE ? path.resolve(BASELINE, 'bin/mlship.js') : undefined;
const runId = `bench-bakeoff-${randomBytes(3).toString('hex')}`;
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'bench',
  GIT_AUTHOR_EMAIL: 'bench@mlship.dev',
  GIT_COMMITTER_NAME: 'bench',
  GIT_COMMITTER_EMAIL: 'bench@mlship.dev',
  GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-bakeoff-'));
const names = ['light-1', 'light-2', 'light-3', 'light-4', 'light-5'];
for (const name of names) {
  const repo = path.join(dir, name);
  mkdirSync(repo);
  // CPU-light: sleeps, then writes one small output (so copy-out is exercised).
  writeFileSync(
    path.join(repo, 'example.py'),
    `import os, time\ntime.sleep(${hold})\nos.makedirs("out", exist_ok=True)\nopen("out/result.txt", "w").write("${name}\\n")\n`,
  );
  for (const args of [
    ['init', '-q'],
    ['add', '-A'],
    ['commit', '-q', '-m', name],
  ]) {
    execFileSync('git', ['-c', 'init.defaultBranch=main', ...args], { cwd: repo, env: GIT_ENV });
  }
}
writeFileSync(
  path.join(dir, 'bakeoff.yaml'),
  `candidates:\n${names
    .map(
      (n) =>
        `  ${n}:\n    repo: ./${n}\n    run: python example.py\n    outputs: [out/result.txt]\n    timeout: 60s\n    memory: 256Mi\n`,
    )
    .join('')}`,
);

function bakeoff(extra, cli = CLI) {
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    [
      cli,
      '--json',
      'bakeoff',
      '--base-image',
      baseImage,
      '--cache-dir',
      path.join(dir, 'cache'),
      '--run-id',
      runId,
      ...extra,
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`bakeoff failed (${r.status}):\n${r.stderr}`);
  return { ms, report: JSON.parse(r.stdout) };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

try {
  process.stderr.write(`warm-up: building ${names.length} images…\n`);
  bakeoff(['-j', '1']);
  if (BASELINE_CLI) bakeoff(['-j', '1', '-o', 'baseline-results'], BASELINE_CLI);

  const overhead = [];
  const baselineOverhead = [];
  const phases = [];
  const floor = [];
  const engine = await DockerEngine.connect();
  for (let r = 0; r < rounds; r++) {
    const { report } = bakeoff(['-j', '1']);
    // The engine's own floor, interleaved: the same image and example through the adapter,
    // with nothing of mlship's (no stats, no copy-out): create, start, wait, remove.
    for (const c of report.candidates) {
      const t0 = performance.now();
      const h = await engine.start({
        image: c.image.id,
        cmd: ['sh', '-c', 'python example.py'],
        workdir: '/workspace/repo',
        labels: { 'dev.mlship.run': runId },
      });
      await h.wait();
      const state = await h.inspect();
      await h.remove();
      floor.push(performance.now() - t0 - (Date.parse(state.finishedAt) - Date.parse(state.startedAt)));
    }
    for (const c of report.candidates) {
      if (c.status !== 'passed') throw new Error(`${c.name} failed: ${c.failure?.message}`);
      overhead.push(c.metrics.containerMs - c.metrics.runMs);
      phases.push({ run: c.metrics.runMs, container: c.metrics.containerMs, build: c.metrics.buildMs });
    }
    if (BASELINE_CLI) {
      const base = bakeoff(['-j', '1', '-o', 'baseline-results'], BASELINE_CLI).report;
      for (const c of base.candidates) baselineOverhead.push(c.metrics.containerMs - c.metrics.runMs);
    }
    process.stderr.write(`overhead round ${r + 1}/${rounds} done\n`);
  }

  const one = [];
  const two = [];
  for (let r = 0; r < rounds; r++) {
    one.push(bakeoff(['--only', 'light-1', '-j', '1']).ms);
    two.push(bakeoff(['--only', 'light-1,light-2', '-j', '2']).ms);
    process.stderr.write(`concurrency round ${r + 1}/${rounds} done\n`);
  }
  const twoSeq = [];
  for (let r = 0; r < rounds; r++) twoSeq.push(bakeoff(['--only', 'light-1,light-2', '-j', '1']).ms);

  const result = {
    machine: `${os.cpus().length} CPUs, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`,
    exampleSeconds: hold,
    rounds,
    overheadMs: {
      samples: overhead.length,
      median: Math.round(median(overhead)),
      p90: Math.round(pct(overhead, 0.9)),
      max: Math.round(Math.max(...overhead)),
    },
    engineFloorMs: { median: Math.round(median(floor)), p90: Math.round(pct(floor, 0.9)) },
    ...(BASELINE_CLI
      ? {
          baseline: {
            cli: BASELINE_CLI,
            overheadMedianMs: Math.round(median(baselineOverhead)),
            ratio: Number((median(overhead) / median(baselineOverhead)).toFixed(2)),
          },
        }
      : {}),
    mlshipAddedMs: Math.round(median(overhead) - median(floor)),
    cachedBuildMs: { median: Math.round(median(phases.map((p) => p.build))) },
    concurrency: {
      oneMs: Math.round(median(one)),
      twoConcurrentMs: Math.round(median(two)),
      twoSequentialMs: Math.round(median(twoSeq)),
      ratio: Number((median(two) / median(one)).toFixed(2)),
    },
  };
  const ok1 = result.overheadMs.median < 1000;
  const ok2 = result.concurrency.ratio <= 1.2;
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    `load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  process.stdout.write(
    `\noverhead per candidate: median ${result.overheadMs.median} ms, p90 ${result.overheadMs.p90} ms (goal < 1000 ms: ${ok1 ? 'met' : 'MISSED'}); the bare engine lifecycle alone: median ${result.engineFloorMs.median} ms\n` +
      `one candidate ${result.concurrency.oneMs} ms; two with -j 2 ${result.concurrency.twoConcurrentMs} ms (${result.concurrency.ratio}x, goal <= 1.2x: ${ok2 ? 'met' : 'MISSED'}); two with -j 1 ${result.concurrency.twoSequentialMs} ms\n`,
  );
} finally {
  // Remove this benchmark's images (containers are removed by every run).
  const ids = execFileSync('docker', ['images', '-q', '--filter', `label=dev.mlship.run=${runId}`], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean);
  if (ids.length) spawnSync('docker', ['rmi', '-f', ...new Set(ids)], { stdio: 'ignore' });
}
