#!/usr/bin/env node
// bench/rollout/proxy-cost.mjs: what NGINX itself spends per request on a rollout's routing,
// without the models (their CPU drowns it in bench/rollout/run.mjs on a shared machine). The
// real generated nginx.conf of fixtures/compose/pipeline (a 10 % canary of pose-2d) in the real
// proxy image, every upstream a static answer inside the same NGINX:
//   none    no rollout, nginx.conf without njs (baseline: an NGINX without njs, or any stack
//           before nginx.conf was made ready for rollouts)
//   ready   no rollout, the routing state's nginx.conf (every model service ready for one: njs
//           called per request, state.json read, nothing found)
//   reload  the share in nginx.conf (split_clients + map; an NGINX without njs)
//   state   the share read per request by njs from the routing state (route.js); the candidate
//           reached by name through the resolver (no keep-alive to it)
//   shadow  a shadow rollout (routing state): every request answered by the stable version and
//           mirrored to the candidate (its answer dropped), what the 1 ms goal is about
//   all-reload / all-state  every request to the candidate (weight 100): its upstream block with
//           keep-alive (reload) against the name resolved per request without keep-alive (state)
// Each container on its own Docker network, the candidates' names its aliases (NGINX's resolver is
// Docker's DNS, 127.0.0.11, as in the stack).
// Alternating rounds of `requests` POSTs at c=16 on keep-alive connections, one container each.
// The figure that holds on a loaded machine is the CPU NGINX spends per request (its container's
// cpuacct.usage before and after a round, less what reading it costs); latencies are the client's.
// Usage: npm run build && node bench/rollout/proxy-cost.mjs [rounds=3] [requests=20000] [concurrency=16]
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rounds = Number(process.argv[2] ?? 3);
const requests = Number(process.argv[3] ?? 20000);
const concurrency = Number(process.argv[4] ?? 16);
const IMAGE = 'mlship-local/nginx:1.22';
const root = path.resolve('bench/.work/proxy-cost');
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
const { generateCompose } = await import(path.resolve('dist/core/compose/generate.js'));

const rollout = {
  service: 'pose-2d',
  mode: 'canary',
  weight: 10,
  mirror: false,
  recordSample: 0.1,
  shadowTimeoutMs: 250,
  candidate: { path: 'services/pose-3d', env: {}, recordInputs: false },
  status: 'running',
  startedAt: '2026-01-01T00:00:00.000Z',
  history: [],
};
// The models, answered by NGINX itself.
const backends = [8080, 9000]
  .map((p) => `server { listen ${p}; location / { return 200 '{"prediction":1}'; } }`)
  .join('\n');
const hosts = ['detector', 'pose-2d', 'pose-3d', 'pose-2d-candidate', 'frontend'];

const variants = {};
const networks = [];
for (const [name, rollouts, proxyRouting] of [
  ['none', [], 'reload'],
  ['ready', [], 'state'],
  ['reload', [rollout], 'reload'],
  ['state', [rollout], 'state'],
  ['shadow', [{ ...rollout, mode: 'shadow', weight: 0, mirror: true }], 'state'],
  ['all-reload', [{ ...rollout, weight: 100 }], 'reload'],
  ['all-state', [{ ...rollout, weight: 100 }], 'state'],
]) {
  const gen = await generateCompose({
    configFile: 'fixtures/compose/pipeline/mlship.yaml',
    outDir: path.join(root, name),
    force: true,
    dryRun: true,
    rollouts,
    proxyRouting,
  });
  const dir = path.join(root, name);
  mkdirSync(path.join(dir, 'routing'), { recursive: true });
  const file = (p) => gen.stack.files.find((f) => f.path === p).content;
  writeFileSync(path.join(dir, 'default.conf'), file('proxy/nginx.conf'));
  writeFileSync(path.join(dir, 'backends.conf'), `${backends}\n`);
  writeFileSync(path.join(dir, 'routing/route.js'), file('proxy/routing/route.js'));
  writeFileSync(path.join(dir, 'routing/state.json'), file('proxy/routing/state.json'));
  const port = 18800 + Object.keys(variants).length;
  const network = `mlship-bench-proxy-cost-${name}-${process.pid}`;
  const net = spawnSync('docker', ['network', 'create', '--label', 'dev.mlship.bench=proxy-cost', network], {
    encoding: 'utf8',
  });
  if (net.status !== 0) throw new Error(`docker network create failed:\n${net.stderr}`);
  networks.push(network);
  const run = spawnSync(
    'docker',
    [
      'run',
      '-d',
      '--rm',
      '--label',
      'dev.mlship.bench=proxy-cost',
      '--network',
      network,
      ...['pose-2d-candidate', 'pose-3d-candidate', 'detector-candidate'].flatMap((h) => [
        '--network-alias',
        h,
      ]),
      '-p',
      `127.0.0.1:${port}:80`,
      ...hosts.flatMap((h) => ['--add-host', `${h}:127.0.0.1`]),
      '-v',
      `${dir}/default.conf:/etc/nginx/conf.d/default.conf:ro`,
      '-v',
      `${dir}/backends.conf:/etc/nginx/conf.d/backends.conf:ro`,
      '-v',
      `${dir}/routing:/etc/nginx/mlship-routing:ro`,
      IMAGE,
    ],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`docker run (${name}) failed:\n${run.stderr}`);
  variants[name] = {
    port,
    container: run.stdout.trim(),
    cpuUs: [],
    share: [],
    p50: [],
    p99: [],
    mean: [],
    rps: [],
  };
}

/** CPU time (ns) the container has used (cgroup v1 cpuacct; each read costs a `docker exec`). */
function cpuNs(container) {
  const r = spawnSync('docker', ['exec', container, 'cat', '/sys/fs/cgroup/cpuacct/cpuacct.usage'], {
    encoding: 'utf8',
  });
  const ns = Number(r.stdout.trim());
  if (r.status !== 0 || !Number.isFinite(ns))
    throw new Error(`reading the CPU use of ${container}: ${r.stderr}`);
  return ns;
}

/** What one read adds to the container's CPU (the median of 5 back-to-back reads). */
function readCost(container) {
  const ds = [];
  for (let i = 0, last = cpuNs(container); i < 5; i++) {
    const now = cpuNs(container);
    ds.push(now - last);
    last = now;
  }
  return median(ds);
}

async function load(port, n, c = 16) {
  const lat = [];
  let next = 0;
  let failed = 0;
  let candidate = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        next++;
        const t = performance.now();
        try {
          const r = await fetch(`http://127.0.0.1:${port}/api/pose-2d/predict`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{"x":1}',
          });
          await r.arrayBuffer();
          if (r.headers.get('x-model-version') === 'candidate') candidate++;
          if (r.status !== 200) failed++;
          else lat.push(performance.now() - t);
        } catch {
          failed++;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return {
    share: candidate / n,
    p50: q(0.5),
    p99: q(0.99),
    mean: lat.reduce((s, x) => s + x, 0) / lat.length,
    rps: n / seconds,
    failed,
  };
}

try {
  await new Promise((r) => setTimeout(r, 1000));
  for (const v of Object.values(variants)) await load(v.port, 2000); // warm-up
  let failed = 0;
  for (let round = 0; round < rounds; round++) {
    const order = Object.keys(variants);
    if (round % 2) order.reverse();
    for (const name of order) {
      const v = variants[name];
      v.readCost ??= readCost(v.container);
      const before = cpuNs(v.container);
      const r = await load(v.port, requests, concurrency);
      v.cpuUs.push((cpuNs(v.container) - before - v.readCost) / requests / 1000);
      failed += r.failed;
      for (const k of ['share', 'p50', 'p99', 'mean', 'rps']) variants[name][k].push(r[k]);
    }
  }
  console.log(
    `\n## NGINX's own cost of a rollout's routing (${rounds} rounds of ${requests} requests, c=${concurrency}; load ${os.loadavg()[0].toFixed(1)} at the end; ${failed} failed)\n`,
  );
  console.log(
    '| routing | to the candidate | NGINX CPU µs/request (rounds) | vs none | p50 ms | p99 ms | requests/s |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  const base = median(variants.none.cpuUs);
  for (const [name, v] of Object.entries(variants)) {
    const d = median(v.cpuUs) - base;
    console.log(
      `| ${name} | ${(median(v.share) * 100).toFixed(1)} % | ${median(v.cpuUs).toFixed(1)} (${v.cpuUs.map((x) => x.toFixed(1)).join(', ')}) | ${d >= 0 ? '+' : ''}${d.toFixed(1)} | ${median(v.p50).toFixed(2)} | ${median(v.p99).toFixed(2)} | ${median(v.rps).toFixed(0)} |`,
    );
  }
} finally {
  for (const v of Object.values(variants))
    spawnSync('docker', ['rm', '-f', v.container], { stdio: 'ignore' });
  for (const n of networks) spawnSync('docker', ['network', 'rm', n], { stdio: 'ignore' });
}
