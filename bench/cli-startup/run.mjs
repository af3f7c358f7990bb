#!/usr/bin/env node
// bench/cli-startup: median wall time of `mlship --help` and `mlship doctor --json`
// beside `node -e 0` (the floor), measured side by side in one run.
// Usage: npm run build && node bench/cli-startup/run.mjs [runs=20]
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

const runs = Number(process.argv[2] ?? 20);
const node = process.execPath;
const cases = [
  ['node -e 0 (floor)', [node, '-e', '0']],
  ['mlship --version', [node, 'bin/mlship.js', '--version']],
  ['mlship --help', [node, 'bin/mlship.js', '--help']],
  ['mlship validate (valid file)', [node, 'bin/mlship.js', 'validate', 'fixtures/config/valid.yaml']],
  ['mlship doctor --json', [node, 'bin/mlship.js', 'doctor', '--json']],
  ['mlship doctor --json --skip aws', [node, 'bin/mlship.js', 'doctor', '--json', '--skip', 'aws']],
];

function time([cmd, ...args]) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: 'ignore', env: { ...process.env, CI: 'true' } });
  const ms = performance.now() - t0;
  if (r.status !== 0 && r.status !== 1) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
  return ms;
}

const samples = new Map(cases.map(([name]) => [name, []]));
// Interleave the cases so that machine noise hits them all alike.
for (let i = 0; i < runs + 2; i++) {
  for (const [name, argv] of cases) {
    const ms = time(argv);
    if (i >= 2) samples.get(name).push(ms); // two warm-up rounds
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const floor = median(samples.get('node -e 0 (floor)'));
console.log(`node ${process.version}, ${runs} runs each, medians (ms)\n`);
console.log('| command | median ms | p90 ms | over node floor |');
console.log('|---|---:|---:|---:|');
for (const [name, xs] of samples) {
  const s = [...xs].sort((a, b) => a - b);
  const p90 = s[Math.min(s.length - 1, Math.floor(s.length * 0.9))];
  const m = median(xs);
  console.log(
    `| ${name} | ${m.toFixed(0)} | ${p90.toFixed(0)} | ${name.includes('floor') ? '-' : `+${(m - floor).toFixed(0)}`} |`,
  );
}
