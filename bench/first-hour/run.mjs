#!/usr/bin/env node
// bench/first-hour: how soon a new user's mistake is reported, side by side with the floor of
// any mlship command (`mlship --version`), in one run, cases interleaved:
//   - `mlship wrap broken.joblib` (5 KB of random bytes): refused by the format check;
//   - `mlship compose up` with the proxy's port held by a process: refused by the pre-flight
//     (it also has to find docker compose, which for v1 is a Python program);
//   - what the model check costs when it succeeds: `mlship wrap` of the iris model with the
//     project's .venv, against the same with --no-check (format only).
// Usage: npm run build && node bench/first-hour/run.mjs [runs=7]   (needs Docker and .venv)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const runs = Number(process.argv[2] ?? 7);
const node = process.execPath;
const bin = path.resolve('bin/mlship.js');
const work = mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-first-hour-'));

writeFileSync(path.join(work, 'broken.joblib'), randomBytes(5120));
writeFileSync(path.join(work, 'example.json'), '{"x": [1, 2]}');
const iris = path.resolve('fixtures/wrap/iris/model.joblib');

// A stack whose proxy port a process of ours holds.
const holder = net.createServer();
await new Promise((r) => holder.listen(0, '127.0.0.1', r));
const port = holder.address().port;
const stack = path.join(work, 'stack');
mkdirSync(path.join(stack, 'services'), { recursive: true });
spawnSync(node, [bin, 'wrap', iris, '--out', path.join(stack, 'services/iris'), '--no-check'], {
  stdio: 'ignore',
});
writeFileSync(
  path.join(stack, 'mlship.yaml'),
  `version: 1\nname: bench-first-hour\nservices:\n  iris:\n    path: services/iris\nproxy:\n  port: ${port}\n`,
);

let n = 0;
const cases = [
  ['mlship --version (floor)', [bin, '--version'], work, 0],
  ['wrap broken.joblib → exit 2', [bin, 'wrap', 'broken.joblib', '--out', 'never'], work, 2],
  ['compose up, proxy port taken → exit 3', [bin, 'compose', 'up'], stack, 3],
  [
    'wrap iris --no-check (format only)',
    () => [bin, 'wrap', iris, '--out', path.join(work, `a${n++}`), '--no-check'],
    process.cwd(),
    0,
  ],
  [
    'wrap iris (loaded by .venv/bin/python)',
    () => [bin, 'wrap', iris, '--out', path.join(work, `b${n++}`)],
    process.cwd(),
    0,
  ],
];

function time(argv, cwd, expected) {
  const args = typeof argv === 'function' ? argv() : argv;
  const t0 = performance.now();
  // Asynchronous spawn: the holder's server must keep answering while the CLI runs.
  return new Promise((resolve, reject) => {
    const child = spawn(node, args, { cwd, stdio: 'ignore', env: { ...process.env, CI: 'true' } });
    child.on('exit', (code) => {
      const ms = performance.now() - t0;
      if (code !== expected) reject(new Error(`${args.join(' ')} exited ${code}, expected ${expected}`));
      else resolve(ms);
    });
  });
}

const samples = new Map(cases.map(([name]) => [name, []]));
for (let i = 0; i < runs + 1; i++) {
  for (const [name, argv, cwd, expected] of cases) {
    const ms = await time(argv, cwd, expected);
    if (i >= 1) samples.get(name).push(ms); // one warm-up round
  }
}
holder.close();
rmSync(work, { recursive: true, force: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const floor = median(samples.get('mlship --version (floor)'));
console.log(
  `node ${process.version}, ${runs} runs each, load average ${os.loadavg()[0].toFixed(1)}, medians (ms)\n`,
);
console.log('| case | median ms | max ms | over the floor |');
console.log('|---|---:|---:|---:|');
for (const [name, xs] of samples) {
  const m = median(xs);
  console.log(
    `| ${name} | ${m.toFixed(0)} | ${Math.max(...xs).toFixed(0)} | ${name.includes('floor') ? '-' : `+${(m - floor).toFixed(0)}`} |`,
  );
}
