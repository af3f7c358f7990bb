#!/usr/bin/env node
// bench/rollout: what a rollout costs the primary and how soon it decides, in one run.
// 1. Primary latency through the stack's NGINX with no rollout vs a shadow rollout (every
//    request mirrored to the candidate), at c=16 and c=64, alternating, `rounds` rounds.
// 2. Routing changes under load: the candidate's share changed 8 times (`rollout promote --to
//    N`) while c=16 keep-alive clients send requests, failed requests counted: `reload` on an
//    NGINX without njs (the baseline: each change reloads NGINX), `steps` on mlship-local/nginx
//    with njs (each change rewrites the routing state, no reload); `start`: 3 rollout starts
//    and rollbacks under the same load, with njs (the reloads counted from NGINX's worker PIDs:
//    none since nginx.conf is ready for a rollout).
// 3. Decision time: the verdict's own code on simulated traffic (stable 1 % 5xx, candidate
//    3 %, 10 % canary): candidate requests until "roll back", against the budget `status` names.
// 4. `shadow` (shadow-cost.mjs): the primary's latency with the mirror off and a shadow in each
//    of the configurations listed there (paused, at SCHED_IDLE as `start --shadow` makes it, its
//    cgroup idle, slowed 10x, ...), closed and open loop at c=16 and c=64, alternating, `rounds`
//    rounds, with each process's CPU and the primary's waits for a CPU.
// `latency` runs on both proxies (njs's per-request cost: `latency-nonjs` rows are the baseline).
// Usage: npm run build && node bench/rollout/run.mjs [rounds=2] [requests=2000] [parts=latency,reload,steps,start,shadow]
// Needs the local images of scripts/local-base-images.sh.
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { shadowCost } from './shadow-cost.mjs';

const rounds = Number(process.argv[2] ?? 2);
const requests = Number(process.argv[3] ?? 2000);
const parts = (process.argv[4] ?? 'latency,reload,steps,start,shadow').split(',');
const NJS = 'mlship-local/nginx:1.22';
// The same image without njs loaded: what a user's own NGINX image without the module gets.
const NO_NJS = 'mlship-bench/nginx-without-njs:1.22';
const root = path.resolve('bench/.work/rollout');
const bin = path.resolve('bin/mlship.js');
// Another run on the same engine needs its own stack name and port.
const name = process.env.BENCH_ROLLOUT_NAME ?? 'mlship-bench-rollout';
const port = Number(process.env.BENCH_ROLLOUT_PORT ?? 18791);
const env = { ...process.env, CI: 'true' };
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });

function mlship(args) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mlship ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/** The same, without blocking this process's event loop (the load keeps running meanwhile). */
function mlshipAsync(args) {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [bin, ...args], { cwd: root, env }, (e, stdout, stderr) =>
      e ? reject(new Error(`mlship ${args.join(' ')} failed:\n${stderr}`)) : resolve(stdout),
    ),
  );
}

/** `n` predictions at concurrency `c`: latencies (ms) of the answered ones, failures by kind. */
async function load(n, c) {
  const latencies = [];
  let status5xx = 0;
  let socketErrors = 0;
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const x = next++;
      const t0 = performance.now();
      try {
        const r = await fetch(`http://127.0.0.1:${port}/api/model/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ x }),
        });
        await r.arrayBuffer();
        if (r.status >= 500) status5xx++;
        else latencies.push(performance.now() - t0);
      } catch {
        socketErrors++;
      }
    }
  };
  await Promise.all(Array.from({ length: c }, worker));
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { p50: q(0.5), p99: q(0.99), status5xx, socketErrors };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

for (const [version, out] of [
  ['v1', 'services/model'],
  ['v2', 'services/model-v2'],
]) {
  mlship([
    'wrap',
    '--entry',
    `${path.resolve('fixtures/rollout', version, 'predict.py')}:predict`,
    '--out',
    out,
    '--name',
    'model',
    '--base-image',
    'mlship-local/python:3.11-slim',
  ]);
}
const withoutNjs = parts.includes('latency') || parts.includes('reload');
if (withoutNjs) {
  const noNjs = spawnSync('docker', ['build', '-q', '-t', NO_NJS, '-'], {
    input: `FROM ${NJS}\nRUN rm /etc/nginx/modules-enabled/50-mod-http-js.conf\n`,
    encoding: 'utf8',
  });
  if (noNjs.status !== 0) throw new Error(`building ${NO_NJS} failed:\n${noNjs.stderr}`);
}

/** The stack's proxy on `image` (compose up recreates it when the image changes). */
function useProxy(image) {
  writeFileSync(
    path.join(root, 'mlship.yaml'),
    `version: 1\nname: ${name}\nservices:\n  model:\n    path: services/model\nproxy:\n  image: ${image}\n  port: ${port}\n`,
  );
  mlship(['compose', 'up', '--no-smoke']);
}

const changes = [];
try {
  // Every part shares one stack; the proxy's image changes between them.
  if (withoutNjs) useProxy(NO_NJS);
  if (parts.includes('latency')) await latency('without njs (reloads)');
  if (parts.includes('reload')) changes.push(await sharesUnderLoad('without njs: reload at each change'));
  useProxy(NJS);
  if (parts.includes('shadow'))
    await shadowCost({ root, name, port, mlship, rounds, requests, nginxImage: NJS });
  if (parts.includes('latency')) await latency('with njs (routing state)');
  if (parts.includes('steps')) changes.push(await sharesUnderLoad('with njs: routing state, no reload'));
  if (parts.includes('start')) changes.push(await startsUnderLoad());
  if (changes.length) {
    console.log('\n## routing changes under c=16 keep-alive load\n');
    console.log('| proxy | changes | s | requests | 5xx | closed under a request |');
    console.log('|---|---|---:|---:|---:|---:|');
    for (const c of changes)
      console.log(
        `| ${c.what} | ${c.changes} | ${c.seconds} | ${c.requests} | ${c.status5xx} | ${c.socketErrors} |`,
      );
  }
} finally {
  spawnSync(process.execPath, [bin, 'compose', 'down', '--volumes'], { cwd: root, env, stdio: 'ignore' });
  spawnSync('docker', ['rmi', '-f', `${name}/model:dev`, `${name}/model-candidate:dev`, NO_NJS], {
    stdio: 'ignore',
  });
}

// 1. Shadow on vs off.
async function latency(proxy) {
  const results = { off: { 16: [], 64: [] }, on: { 16: [], 64: [] } };
  await load(500, 16); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const mode of round % 2 ? ['on', 'off'] : ['off', 'on']) {
      if (mode === 'on') mlship(['rollout', 'start', 'model', '--shadow', '--path', 'services/model-v2']);
      await load(300, 16); // the new configuration warm
      for (const c of [16, 64]) results[mode][c].push(await load(requests, c));
      if (mode === 'on') mlship(['rollout', 'rollback', 'model', '--reason', 'bench']);
    }
  }
  console.log(
    `\n## primary latency, shadow off vs on, proxy ${proxy} (${rounds} rounds of ${requests} requests; load ${os.loadavg()[0].toFixed(1)})\n`,
  );
  console.log('| c | shadow | p50 ms (median) | p99 ms (median) | p99 runs | failed |');
  console.log('|---:|---|---:|---:|---|---:|');
  for (const c of [16, 64]) {
    for (const mode of ['off', 'on']) {
      const rs = results[mode][c];
      console.log(
        `| ${c} | ${mode} | ${median(rs.map((r) => r.p50)).toFixed(1)} | ${median(rs.map((r) => r.p99)).toFixed(1)} | ${rs.map((r) => r.p99.toFixed(1)).join(', ')} | ${rs.reduce((s, r) => s + r.status5xx + r.socketErrors, 0)} |`,
      );
    }
    const d = median(results.on[c].map((r) => r.p99)) - median(results.off[c].map((r) => r.p99));
    console.log(`|   | overhead | | ${d >= 0 ? '+' : ''}${d.toFixed(1)} | | |`);
  }
}

// 2. Routing changes under load.
/** c=16 keep-alive load in batches of 400 until `stop()`; failures counted. */
function background() {
  let on = true;
  const total = { requests: 0, status5xx: 0, socketErrors: 0 };
  const running = (async () => {
    while (on) {
      const r = await load(400, 16);
      total.requests += 400;
      total.status5xx += r.status5xx;
      total.socketErrors += r.socketErrors;
    }
  })();
  return async () => {
    on = false;
    await running;
    return total;
  };
}

async function sharesUnderLoad(what) {
  await mlshipAsync(['rollout', 'start', 'model', '--canary', '10', '--path', 'services/model-v2']);
  await load(300, 16); // past a reload at start (none when nginx.conf is ready)
  const stop = background();
  const started = performance.now();
  const steps = [20, 30, 40, 50, 10, 20, 30, 40];
  for (const to of steps) await mlshipAsync(['rollout', 'promote', 'model', '--to', String(to)]);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const during = await stop();
  mlship(['rollout', 'rollback', 'model', '--reason', 'bench', '--destroy']);
  return { what, changes: `${steps.length} × promote --to`, seconds, ...during };
}

/** The PIDs of the proxy's NGINX workers (a reload replaces them all). */
function nginxWorkers() {
  const id = spawnSync(
    'docker',
    [
      'ps',
      '-q',
      '--filter',
      `label=com.docker.compose.project=${name}`,
      '--filter',
      'label=com.docker.compose.service=proxy',
    ],
    { encoding: 'utf8' },
  ).stdout.trim();
  const loop =
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
    'for p in /proc/[0-9]*; do case "$(head -c 21 "$p/cmdline" 2>/dev/null)" in "nginx: worker process") echo "${p#/proc/}";; esac; done';
  return spawnSync('docker', ['exec', id, 'sh', '-c', loop], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .sort()
    .join(',');
}

async function startsUnderLoad() {
  const stop = background();
  const started = performance.now();
  let reloads = 0;
  for (let i = 0; i < 3; i++) {
    const before = nginxWorkers();
    await mlshipAsync(['rollout', 'start', 'model', '--canary', '10', '--path', 'services/model-v2']);
    if (nginxWorkers() !== before) reloads++;
    await mlshipAsync(['rollout', 'rollback', 'model', '--reason', 'bench']);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const during = await stop();
  mlship(['rollout', 'rollback', 'model', '--reason', 'bench', '--destroy']);
  return {
    what: 'with njs: 3 × (start, rollback)',
    changes: `3 starts (${reloads} reloaded NGINX: its workers replaced), 3 rollbacks (state changes)`,
    seconds,
    ...during,
  };
}

// 3. Decision time on simulated traffic, by the verdict's own code.
const { compare, verdict, DEFAULT_GATES } = await import(path.resolve('dist/core/rollout/verdict.js'));
const { requestsToDetect } = await import(path.resolve('dist/core/rollout/stats.js'));
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const share = 0.1;
const needed = [];
// What `status` names for these rates (one-sided, power 80 %, 9 stable requests per candidate one).
const budget = requestsToDetect(0.01, 0.03, DEFAULT_GATES.alpha, 0.8, 9);
for (let run = 0; run < 200; run++) {
  const random = rng(run + 1);
  const samples = { stable: [], candidate: [], pairs: [] };
  for (let i = 1; i <= 200_000; i++) {
    const toCandidate = random() < share;
    const rate = toCandidate ? 0.03 : 0.01;
    (toCandidate ? samples.candidate : samples.stable).push({
      requestId: String(i),
      status: random() < rate ? 500 : 200,
      durationMs: 10,
    });
    // Looked at every 50 requests, as `watch` looks at intervals.
    if (i % 50) continue;
    const c = compare(samples, DEFAULT_GATES, share);
    if (verdict(c, DEFAULT_GATES).decision === 'rollback') {
      needed.push(samples.candidate.length);
      break;
    }
  }
}
needed.sort((a, b) => a - b);
console.log('\n## decision time: stable 1 % 5xx, candidate 3 %, 10 % canary, α = 0.01, 200 simulated runs\n');
console.log(
  `rolled back in ${needed.length}/200 runs; candidate requests needed: median ${needed[100]}, p90 ${needed[180]}; budget named by status (power 80 %): ${budget}`,
);
