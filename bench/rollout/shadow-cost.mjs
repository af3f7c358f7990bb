// bench/rollout part `shadow`: what a shadow costs the primary, with the shadow as `rollout start
// --shadow` makes it (the lowest CPU weight, cpu_shares 2, and SCHED_IDLE), with the weight alone,
// and at docker's default 1024 (the shadow's predictions competing with the primary's for the
// same cores). One shadow rollout for the whole part; each configuration is set without a reload
// or restart, the policy from the host by the processes' PIDs (a container cannot move back from
// SCHED_IDLE):
//   off      the routing state's mirror off (same NGINX configuration, the candidate idle)
//   low      mirror on, the candidate at cpu_shares 2, SCHED_OTHER (the weight alone)
//   default  mirror on, the candidate at cpu_shares 1024 (`docker update`), SCHED_OTHER
//   idle     mirror on, the candidate at cpu_shares 2 and every process in it at SCHED_IDLE,
//            in the idle cgroup parent /mlship-shadow beside the engine's (what `start --shadow`
//            does where it may write the host's cgroups: the kernel runs it only when no other
//            task wants the CPU and preempts it at once when another task wakes)
//   idle-again  the same as `idle`, measured again in another place of each round's order: the
//            configuration after `paused` (always `idle` when the order only rotated, before
//            Dec 6) measured worse than the one after it in 8 of 10 cells on Dec 5 evening,
//            whatever it was; `idle-again` did not show it in its one run beside `paused`
//   slow     as `idle`, and the candidate capped at a tenth of a CPU (`docker update --cpus 0.1`):
//            a shadow whose every prediction takes at least 10x as long (issue 20's "shadow slowed
//            10x"); its queue fills and drops what it cannot predict
//   group    as `idle`, and the candidate's cgroup marked idle too (cgroup `cpu.idle`, written on
//            the host): a task's SCHED_IDLE counts only against tasks of its own cgroup, and each
//            container is a cgroup of its own, so against the primary only the group's mark does
//   stub     mirror on, the candidate off the stack's network and a stand-in NGINX in its place
//            (same name and port) that answers 202 at once: the mirror and the relay to a shadow
//            that costs nothing and answers at once (as one on CPUs of its own would, on ECS),
//            the stand-in at the default CPU policy
//   stub-idle  as `stub`, every process of the stand-in at SCHED_IDLE (as `start --shadow` runs a
//            shadow): what the stand-in's own wake-ups at the default policy cost the primary
//   stub-kernel  as `stub`, the proxy's namespace at the kernel's tcp_tw_reuse (2: TIME_WAIT
//            ports reused on loopback only) instead of the 1 mlship sets: the relay's connection
//            per copy then leaves a TIME_WAIT socket that holds its port for 60 s (the cost before
//            Dec 5; set from the host with nsenter, as root)
//   hog      mirror off, and beside the primary a container at the shadow's weight and SCHED_IDLE
//            that only burns CPU (a busy loop per CPU of the engine, busy SHADOW_HOG_DUTY of each
//            4 ms, all of it unless told): what idle-priority work on the primary's cores costs it
//            with no mirror, no relay, no network and no log line (the floor under any shadow that
//            shares the primary's CPUs); its CPU-seconds are in the shadow's column
//   hog-group  as `hog`, the hog's cgroup marked idle too (as `group`)
//   hog-outside  as `hog`, its processes moved (CPU controller only) out of the engine's cgroup
//            `docker` into a cgroup of their own beside it, marked idle (where `rollout start
//            --shadow` puts a shadow since Dec 5): the engine's parent group is then not charged
//            for the hog's CPU when its containers (the stable, the proxy) compete with the tasks
//            outside it (the clients, the engine's own processes), and it is preempted at once
//   shim     as `idle`, and the candidate's containerd-shim (which copies its log lines to the
//            engine) moved (CPU controller only) into the idle parent beside it: what the engine's
//            copying of the shadow's line per copy costs the primary at the default policy
//   inside   as `idle`, the candidate's processes moved (CPU controller only) into a cgroup under
//            the engine's `docker` at the shadow's weight, not idle: where a shadow ran before Dec 5
//            (each container a cgroup of its own there, SCHED_IDLE counting only within it)
//   paused   mirror on, the candidate paused (`docker pause`): NGINX's mirror and the relay without
//            any shadow work (the relay answers the mirror at once, as always). The relay's copies
//            go to a shadow that never answers: its kernel queues the connections in its listen
//            backlog until that is full, then connecting fails (100 ms), so this is a lower bound
//            of the mirror's cost (no 202 comes back to read); the backlog is predicted once
//            unpaused, before the next configuration is measured (drained)
// Two kinds of load, both through the proxy on `c` keep-alive connections:
//   closed   c clients, each sends its next request when the last is answered: at c=16/64 the
//            machine is saturated, so this measures what the primary loses in throughput and
//            queueing, not a per-request overhead;
//   open     requests at a fixed rate (a share of the closed-loop capacity of `off` at c=64, half
//            unless told, the same for every configuration), each timed from when it was due (a
//            request waiting for a free connection counts its wait), so a slower primary shows as
//            latency. At half the capacity a shadow predicting every request asks for the whole
//            machine; at a quarter, the primary and its shadow leave half of it idle.
// Configurations alternate within each round, each round in a fresh order (SHADOW_ORDER); each
// round is reported, with its order.
// Environment, to measure part of it with more requests in the same time:
//   SHADOW_CONFIGS  configurations, e.g. off,paused,idle,slow (default: all)
//   SHADOW_LOOPS    closed,open (default: both)
//   SHADOW_LOADS    the open loop's shares of the capacity, e.g. 0.5,0.25 (default: 0.5)
//   SHADOW_APART=1  the shadow on CPUs of its own, as on ECS (its own service's tasks): the stable
//                   and the proxy pinned to the first half of the engine's CPUs for the whole run
//                   (`off` included, and the capacity measured so), the candidate (and the `stub`
//                   stand-in) and this process (the clients) to the other half
//   SHADOW_ENGINE_APART=1  with SHADOW_APART=1, the engine's own processes (dockerd, containerd,
//                   the shims: every container's log lines) on the other half too, for the run
//   SHADOW_RELAY    a variant of the relay that mlship does not generate, to measure what it would
//                   change: written into the stack's nginx.conf after `rollout start` and loaded
//                   with one reload before the run (every configuration has it, `off` included)
//                     keepalive  the relay's copies to the candidate on kept connections (an
//                                upstream block with the candidate's address at the reload; not
//                                with `stub`: the stand-in has another address)
//                     unix       the proxy's mirror to the relay over a unix socket, not loopback TCP
//   SHADOW_STUB_DELAY_MS  the `stub` stand-in answers each copy this much later (NGINX's echo
//                   module, in mlship-local/nginx): a shadow answering late instead of at once
//   SHADOW_HOG_DUTY  the share of each 4 ms the `hog` is busy (default 1: always)
//   SHADOW_ORDER    shuffle (default since Dec 6: each round's order drawn afresh, so no
//                   configuration always follows the same one; the seed printed, SHADOW_SEED to
//                   draw the same orders again) or rotate (each round starts one further: before
//                   Dec 6, when the configuration after `paused` was always the same one and
//                   measured worse in 8 of 10 cells)
//   SHADOW_CANDIDATE_ENV  NAME=value,... for the shadow (`rollout start --env`), e.g.
//                   LOG_LEVEL=WARNING: no log line per copy (its `predicted` column then reads 0 %:
//                   its CPU-seconds show the work)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpuCgroup } from '../../dist/adapters/cgroups.js';

const ALL_CONFIGS = [
  'off',
  'low',
  'default',
  'paused',
  'stub',
  'stub-idle',
  'stub-kernel',
  'hog',
  'hog-group',
  'hog-outside',
  'idle',
  'idle-again',
  'inside',
  'shim',
  'group',
  'slow',
];
/** Configurations with the stand-in in the candidate's place. */
const STUBBED = new Set(['stub', 'stub-idle', 'stub-kernel']);
/** Configurations with the hog beside the primary. */
const HOGGED = new Set(['hog', 'hog-group', 'hog-outside']);
/** Configurations in which the candidate predicts no mirrored request (none reaches it, or none is mirrored). */
const NOT_PREDICTING = new Set(['off', 'paused', ...STUBBED, ...HOGGED]);
/** The idle CPU cgroup beside the engine's `docker` for `hog-outside` (cgroup v1). */
const OUTSIDE = '/sys/fs/cgroup/cpu/mlship-bench-idle';
/** A CPU cgroup under the engine's `docker`, as a container's own, for `inside` (cgroup v1). */
const INSIDE = '/sys/fs/cgroup/cpu/docker/mlship-bench-inside';
const list = (name, dflt) => (process.env[name] ? process.env[name].split(',').map((x) => x.trim()) : dflt);
const CONFIGS = list('SHADOW_CONFIGS', ALL_CONFIGS);
const LOOPS = list('SHADOW_LOOPS', ['closed', 'open']);
const LOADS = list('SHADOW_LOADS', ['0.5']).map(Number);
const ORDER = process.env.SHADOW_ORDER ?? 'shuffle';
if (!['shuffle', 'rotate'].includes(ORDER))
  throw new Error(`SHADOW_ORDER=${ORDER}: expected shuffle or rotate`);
const SEED = Number(process.env.SHADOW_SEED ?? Math.floor(Math.random() * 2 ** 31));
if (!Number.isInteger(SEED)) throw new Error(`SHADOW_SEED=${process.env.SHADOW_SEED}: expected an integer`);

/** mulberry32: a small seeded generator, so that a run's orders can be drawn again. */
function seeded(seed) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(SEED);

/** The configurations of one round, in the order they are measured. */
function roundOrder(round) {
  if (ORDER === 'rotate') return CONFIGS.map((_, i) => CONFIGS[(i + round) % CONFIGS.length]);
  const order = [...CONFIGS];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
for (const c of CONFIGS)
  if (!ALL_CONFIGS.includes(c)) throw new Error(`SHADOW_CONFIGS: no configuration ${c}`);
if (!CONFIGS.includes('off')) throw new Error('SHADOW_CONFIGS: `off` is the baseline, keep it');
for (const l of LOOPS) if (l !== 'closed' && l !== 'open') throw new Error(`SHADOW_LOOPS: no loop ${l}`);
for (const x of LOADS) if (!(x > 0 && x <= 1)) throw new Error(`SHADOW_LOADS: ${x} is not a share of 0-1`);
const RELAY = process.env.SHADOW_RELAY || '';
if (!['', 'keepalive', 'unix'].includes(RELAY))
  throw new Error(`SHADOW_RELAY: no variant ${RELAY} (keepalive or unix)`);
if (RELAY === 'keepalive' && CONFIGS.some((c) => STUBBED.has(c)))
  throw new Error("SHADOW_RELAY=keepalive keeps the candidate's address: leave the stub configurations out");
const STUB_DELAY_MS = Number(process.env.SHADOW_STUB_DELAY_MS || 0);
const HOG_DUTY = Number(process.env.SHADOW_HOG_DUTY || 1);
if (!(HOG_DUTY > 0 && HOG_DUTY <= 1)) throw new Error('SHADOW_HOG_DUTY: a share of 0-1 (above 0)');
if (!(STUB_DELAY_MS >= 0)) throw new Error('SHADOW_STUB_DELAY_MS: a number of milliseconds');
/** The runs of one round: each loop, c, and (open loop) load share. */
const CELLS = [16, 64].flatMap((c) =>
  LOOPS.flatMap((loop) =>
    loop === 'closed' ? [{ c, loop, load: 1 }] : LOADS.map((load) => ({ c, loop, load })),
  ),
);
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function post(agent, port, x) {
  return new Promise((resolve) => {
    const body = JSON.stringify({ x });
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/api/model/predict',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => resolve(0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

function summary(latencies, failed, seconds) {
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { p50: q(0.5), p99: q(0.99), failed, rps: (latencies.length + failed) / seconds };
}

/** Closed loop: `c` clients on `c` connections, `n` requests in all. */
export async function closed(port, n, c) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: c });
  const lat = [];
  let failed = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        const x = next++;
        const t = performance.now();
        const status = await post(agent, port, x);
        if (status === 200) lat.push(performance.now() - t);
        else failed++;
      }
    }),
  );
  agent.destroy();
  return summary(lat, failed, (performance.now() - t0) / 1000);
}

/** Open loop: `n` requests due at `rate`/s, over at most `c` connections, timed from when due. */
export async function open(port, n, c, rate) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: c });
  const lat = [];
  let failed = 0;
  const t0 = performance.now();
  const pending = [];
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(
      post(agent, port, i).then((status) => {
        if (status === 200) lat.push(performance.now() - due);
        else failed++;
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  return summary(lat, failed, (performance.now() - t0) / 1000);
}

/**
 * The host's CPU ticks so far (/proc/stat): all of them, those stolen by the VM host's other guests,
 * and the busy ones (user, nice, system, irq, softirq, steal).
 */
export function ticks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return {
    total: f.reduce((a, b) => a + b, 0),
    steal: f[7] ?? 0,
    busy: f[0] + f[1] + f[2] + f[5] + f[6] + f[7],
  };
}

/** CPU time (s) a container has used (cgroup v1 cpuacct, read on the host: no exec in the container). */
export function cpuSeconds(id) {
  // The engine's parent, or the idle one `rollout start --shadow` gives a shadow.
  for (const parent of ['docker', 'mlship-shadow'])
    try {
      return Number(readFileSync(`/sys/fs/cgroup/cpuacct/${parent}/${id}/cpuacct.usage`, 'utf8')) / 1e9;
    } catch {}
  return Number.NaN;
}

/** A process's CPU cgroup directory on the host (cgroup v1's cpu controller, else v2). */
function pidCgroupDir(pid) {
  const cg = cpuCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  return path.join('/sys/fs/cgroup', cg.mount, cg.path);
}

/** A container's CPU cgroup directory on the host, from its first process. */
function cpuDir(id) {
  return pidCgroupDir(hostPids(id)[0]);
}

/** The fields of a /proc/<pid>/stat line after the command's name (state, ppid, ...). */
function statFields(stat) {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Every process of a container into a CPU cgroup directory (cgroup v1: the cpu controller only). */
function moveTo(id, dir) {
  for (const pid of hostPids(id)) writeFileSync(path.join(dir, 'cgroup.procs'), pid);
}

/**
 * CPU time (s) of the engine's own processes (dockerd, containerd and the shims, which carry every
 * container's log lines), from /proc: they are in no container's cgroup and on no CPU set.
 */
function daemonSeconds() {
  let ticks = 0;
  for (const { stat } of daemons()) {
    const f = statFields(stat);
    ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  }
  return ticks / 100; // USER_HZ
}

/** The engine's own processes: their PIDs and /proc stat lines. */
function daemons() {
  const found = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (/^(dockerd|containerd|containerd-shim)/.test(name)) found.push({ pid, stat });
    } catch {
      // The process ended meanwhile.
    }
  }
  return found;
}

/** A container's processes, by their host PIDs (`docker top`). */
function hostPids(id) {
  return execFileSync('docker', ['top', id, '-eo', 'pid'], { encoding: 'utf8' })
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l));
}

/**
 * Every thread of every process in a container at SCHED_IDLE (`idle`) or SCHED_OTHER, set from the
 * host by their host PIDs (the way back to SCHED_OTHER needs CAP_SYS_NICE, which a process in the
 * container lacks); checked, since a failed chrt would measure the wrong policy.
 */
function schedule(id, idle, whose) {
  const policy = idle ? '--idle' : '--other';
  const pids = hostPids(id);
  for (const pid of pids) spawnSync('chrt', [policy, '-a', '-p', '0', pid], { stdio: 'ignore' });
  const now = execFileSync('chrt', ['-p', pids[0]], { encoding: 'utf8' });
  if (!now.includes(idle ? 'SCHED_IDLE' : 'SCHED_OTHER'))
    throw new Error(`chrt ${policy} on ${whose} processes: ${now}`);
}

/**
 * Seconds the processes' threads spent runnable but waiting for a CPU (the scheduler's run_delay,
 * /proc/<pid>/task/<tid>/schedstat): how much of a latency is a wait for a CPU.
 */
function waitSeconds(pids) {
  let ns = 0;
  for (const pid of pids) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // the process ended meanwhile
    }
    for (const tid of tids) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
      } catch {
        // The thread ended meanwhile.
      }
    }
  }
  return ns / 1e9;
}

/** Mirrored requests the shadow predicted since `since` (its "shadow" log lines). */
function shadowPredictions(id, since) {
  const out = execFileSync('docker', ['logs', '--since', since.toISOString(), id], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  return out.split('\n').filter((l) => l.includes('"msg": "shadow"') || l.includes('"msg":"shadow"')).length;
}

/**
 * Until an unpaused shadow has worked off what queued while it was paused: the relay's copies
 * wait in its listen backlog (up to 2,048 of them), and their predictions would otherwise fall in
 * the next configuration's first runs (as load, and as more than 100 % predicted).
 */
async function drained(id, since) {
  let last = -1;
  for (let i = 0; i < 60; i++) {
    await sleep(500);
    const now = shadowPredictions(id, since);
    if (now === last) return;
    last = now;
  }
}

/**
 * SHADOW_RELAY's variant of the generated nginx.conf (see the header), loaded by a reload of the
 * proxy (`proxy`: its container). Each rewrite must apply, or the run would measure the original.
 */
function relayVariant(root, proxy, variant) {
  const file = path.join(root, 'deploy/compose/proxy/nginx.conf');
  let text = readFileSync(file, 'utf8');
  const candidate = /set \$mlship_candidate ([\w.-]+:\d+);/.exec(text)?.[1];
  if (!candidate) throw new Error(`SHADOW_RELAY: no relay to the candidate in ${file}`);
  const rewrites =
    variant === 'unix'
      ? [
          ['listen 127.0.0.1:8098;', 'listen unix:/run/mlship-relay.sock;'],
          [/server 127\.0\.0\.1:8098 max_fails/g, 'server unix:/run/mlship-relay.sock max_fails'],
        ]
      : [
          [
            'server {\n    listen 127.0.0.1:8098;',
            `upstream bench_candidate {\n    server ${candidate};\n    keepalive 16;\n    keepalive_timeout 4s;\n}\n\nserver {\n    listen 127.0.0.1:8098;`,
          ],
          [
            'proxy_pass http://$mlship_candidate$mlship_relay_uri;',
            'proxy_pass http://bench_candidate$mlship_relay_uri;',
          ],
        ];
  for (const [from, to] of rewrites) {
    const next = text.replace(from, to);
    if (next === text) throw new Error(`SHADOW_RELAY=${variant}: ${from} is not in ${file}`);
    text = next;
  }
  writeFileSync(file, text);
  // A configuration NGINX refuses would leave the old one running: tested first (it throws).
  execFileSync('docker', ['exec', proxy, 'nginx', '-t', '-q']);
  execFileSync('docker', ['exec', proxy, 'nginx', '-s', 'reload'], { stdio: 'ignore' });
}

/** The stand-in's nginx.conf: 202 at once, or SHADOW_STUB_DELAY_MS later (a body: the relay reads it to its end). */
function stubConf(port) {
  const answer =
    STUB_DELAY_MS > 0
      ? `echo_status 202; echo_sleep ${STUB_DELAY_MS / 1000}; echo "{}";`
      : 'return 202 "{}";';
  const module = STUB_DELAY_MS > 0 ? 'load_module /usr/lib/nginx/modules/ngx_http_echo_module.so; ' : '';
  return `${module}events {} http { access_log off; default_type application/json; server { listen ${port}; location / { ${answer} } } }`;
}

/** `nginxImage`: the stack's NGINX image (run.mjs's), which the `stub` stand-in also runs. */
export async function shadowCost({ root, name, port, mlship, rounds, requests, nginxImage }) {
  const env = list('SHADOW_CANDIDATE_ENV', []).flatMap((e) => ['--env', e]);
  mlship([
    'rollout',
    'start',
    'model',
    '--shadow',
    '--record-sample',
    '0',
    '--path',
    'services/model-v2',
    ...env,
  ]);
  const id = (service) =>
    execFileSync(
      'docker',
      [
        'ps',
        '-q',
        '--no-trunc',
        '--filter',
        `label=com.docker.compose.project=${name}`,
        '--filter',
        `label=com.docker.compose.service=${service}`,
      ],
      { encoding: 'utf8' },
    ).trim();
  const candidate = id('model-candidate');
  const stable = id('model');
  const proxy = id('proxy');
  // Before the proxy's processes are looked up: the reload starts new workers.
  if (RELAY) relayVariant(root, proxy, RELAY);
  const shares = () =>
    Number(
      execFileSync('docker', ['inspect', '-f', '{{.HostConfig.CpuShares}}', candidate], { encoding: 'utf8' }),
    );
  const generatedShares = shares();
  const engineCpus = Number(execFileSync('docker', ['info', '-f', '{{.NCPU}}'], { encoding: 'utf8' }).trim());
  const apart = process.env.SHADOW_APART === '1';
  const engineApart = apart && process.env.SHADOW_ENGINE_APART === '1';
  const cpuset = (ids, cpus) =>
    execFileSync('docker', ['update', '--cpuset-cpus', cpus, ...ids], { stdio: 'ignore' });
  const all = `0-${engineCpus - 1}`;
  const half = Math.floor(engineCpus / 2);
  /** With SHADOW_APART, the shadow's CPUs (the stand-in's too). */
  const second = `${half}-${engineCpus - 1}`;
  if (apart) {
    if (engineCpus < 2) throw new Error('SHADOW_APART needs at least 2 CPUs');
    const first = `0-${half - 1}`;
    cpuset([stable, proxy], first);
    cpuset([candidate], second);
    execFileSync('taskset', ['-a', '-p', '-c', second, String(process.pid)], { stdio: 'ignore' });
    if (engineApart)
      for (const { pid } of daemons())
        spawnSync('taskset', ['-a', '-p', '-c', second, pid], { stdio: 'ignore' });
    console.error(`apart: stable and proxy on CPUs ${first}, the shadow and the clients on ${second}`);
  }
  /** CPU seconds so far: the stable, the candidate (the hog while it runs), the proxy, the engine's own processes. */
  const cpuNow = () => [...[stable, hogId || candidate, proxy].map(cpuSeconds), daemonSeconds()];
  /** Seconds waited for a CPU so far: the stable's processes, the proxy's, the clients (this process). */
  const primary = [hostPids(stable), hostPids(proxy), [String(process.pid)]];
  const waitNow = () => primary.map(waitSeconds);
  const stateFile = path.join(root, 'deploy/compose/proxy/routing/state.json');
  /** A container's own CPU cgroup (the candidate's unless told) marked idle or not. */
  const groupIdle = (on, id = candidate) => {
    const file = path.join(cpuDir(id), 'cpu.idle');
    if (!existsSync(file)) {
      if (on) throw new Error(`group: no ${file}`);
      return;
    }
    writeFileSync(file, on ? '1' : '0');
  };
  // The proxy's tcp_tw_reuse, read and written in its network namespace from the host.
  const proxyPid = execFileSync('docker', ['inspect', '-f', '{{.State.Pid}}', proxy], {
    encoding: 'utf8',
  }).trim();
  const inProxy = (script) =>
    execFileSync('nsenter', ['-t', proxyPid, '-n', 'sh', '-c', script], { encoding: 'utf8' }).trim();
  const generatedTwReuse = inProxy('cat /proc/sys/net/ipv4/tcp_tw_reuse');
  const proxyTwReuse = (value) => {
    if (CONFIGS.includes('stub-kernel')) inProxy(`echo ${value} > /proc/sys/net/ipv4/tcp_tw_reuse`);
  };
  /** TIME_WAIT sockets in the proxy's namespace now. */
  const timeWait = () =>
    Number(/\btw (\d+)/.exec(inProxy('grep TCP: /proc/net/sockstat'))?.[1] ?? Number.NaN);
  // `stub`: a stand-in answering 202 where the relay sends the copies (the candidate's name and port).
  const nginxConf = readFileSync(path.join(root, 'deploy/compose/proxy/nginx.conf'), 'utf8');
  const [, candidateHost, candidatePort] = /set \$mlship_candidate ([\w.-]+):(\d+);/.exec(nginxConf) ?? [];
  const network = execFileSync(
    'docker',
    ['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}', candidate],
    { encoding: 'utf8' },
  ).trim();
  const stubName = `${name}-stub`;
  let stubbed = false;
  const stub = (on) => {
    if (on === stubbed) return;
    if (on) {
      execFileSync('docker', ['network', 'disconnect', network, candidate], { stdio: 'ignore' });
      const conf = stubConf(candidatePort);
      const run = [
        'run',
        '-d',
        '--rm',
        '--name',
        stubName,
        '--network',
        network,
        '--network-alias',
        candidateHost,
        ...(apart ? ['--cpuset-cpus', second] : []),
      ];
      const script = `printf '%s' '${conf}' > /tmp/stub.conf && exec nginx -g 'daemon off;' -c /tmp/stub.conf`;
      execFileSync('docker', [...run, '--entrypoint', 'sh', nginxImage, '-c', script], { stdio: 'ignore' });
    } else {
      spawnSync('docker', ['rm', '-f', stubName], { stdio: 'ignore' });
      execFileSync('docker', ['network', 'connect', '--alias', candidateHost, network, candidate], {
        stdio: 'ignore',
      });
    }
    stubbed = on;
  };
  /** A container's processes into the idle cgroup beside `docker` (on) or back into their own. */
  const outside = (id, on) => {
    if (on && !existsSync(OUTSIDE)) {
      mkdirSync(OUTSIDE);
      writeFileSync(path.join(OUTSIDE, 'cpu.idle'), '1');
    }
    moveTo(id, on ? OUTSIDE : `/sys/fs/cgroup/cpu/docker/${id}`);
  };
  /** The candidate's own CPU cgroup (its idle parent's child, as `start` made it). */
  const candidateDir = cpuDir(candidate);
  const inside = (on) => {
    if (on && !existsSync(INSIDE)) {
      mkdirSync(INSIDE);
      writeFileSync(path.join(INSIDE, 'cpu.shares'), String(generatedShares));
    }
    moveTo(candidate, on ? INSIDE : candidateDir);
  };
  // `shim`: the candidate's containerd-shim (its init's parent) into the idle parent, or back.
  const candidatePid = execFileSync('docker', ['inspect', '-f', '{{.State.Pid}}', candidate], {
    encoding: 'utf8',
  }).trim();
  const shimPid = statFields(readFileSync(`/proc/${candidatePid}/stat`, 'utf8'))[1];
  const shimHome = pidCgroupDir(shimPid);
  const shimIdle = (on) =>
    writeFileSync(path.join(on ? path.dirname(candidateDir) : shimHome, 'cgroup.procs'), shimPid);
  // `hog`: idle-priority CPU work beside the primary, in the stable's image (it has Python).
  const hogName = `${name}-hog`;
  /** The running hog's full ID ('' when none runs). */
  let hogId = '';
  const hog = (on) => {
    if (on === Boolean(hogId)) return;
    if (on) {
      const image = execFileSync('docker', ['inspect', '-f', '{{.Config.Image}}', stable], {
        encoding: 'utf8',
      }).trim();
      const loop = `import time\nbusy, rest = ${HOG_DUTY * 0.004}, ${(1 - HOG_DUTY) * 0.004}\nwhile True:\n    t = time.perf_counter()\n    while time.perf_counter() - t < busy: pass\n    if rest: time.sleep(rest)\n`;
      const script = `printf '${loop}' > /tmp/hog.py; for i in $(seq ${engineCpus}); do python /tmp/hog.py & done; wait`;
      hogId = execFileSync(
        'docker',
        [
          'run',
          '-d',
          '--rm',
          '--name',
          hogName,
          '--cpu-shares',
          String(generatedShares),
          ...(apart ? ['--cpuset-cpus', second] : []),
          '--entrypoint',
          'sh',
          image,
          '-c',
          script,
        ],
        { encoding: 'utf8' },
      ).trim();
      // Every busy loop started before its policy is set.
      const deadline = Date.now() + 10_000;
      while (hostPids(hogName).length < engineCpus + 1 && Date.now() < deadline) spawnSync('sleep', ['0.2']);
      schedule(hogName, true, "the hog's");
    } else {
      spawnSync('docker', ['rm', '-f', hogName], { stdio: 'ignore' });
      hogId = '';
    }
  };
  const configure = (config) => {
    // Unmarked first: an idle group's shares cannot be changed.
    groupIdle(false);
    const tmp = `${stateFile}.bench`;
    writeFileSync(tmp, `${JSON.stringify({ model: { weight: 0, mirror: config !== 'off' } })}\n`);
    renameSync(tmp, stateFile);
    const s = config === 'default' ? 1024 : generatedShares;
    // Every CPU of the engine: no cap in effect (`--cpus 0` would leave the last one in place).
    const cpus = config === 'slow' ? '0.1' : String(engineCpus);
    spawnSync('docker', ['update', '--cpu-shares', String(s), '--cpus', cpus, candidate], {
      stdio: 'ignore',
    });
    spawnSync('docker', [config === 'paused' ? 'pause' : 'unpause', candidate], { stdio: 'ignore' });
    stub(STUBBED.has(config));
    hog(HOGGED.has(config));
    if (hogId) {
      groupIdle(config === 'hog-group', hogId);
      outside(hogId, config === 'hog-outside');
    }
    if (CONFIGS.includes('inside')) inside(config === 'inside');
    if (CONFIGS.includes('shim')) shimIdle(config === 'shim');
    proxyTwReuse(config === 'stub-kernel' ? '2' : generatedTwReuse);
    if (STUBBED.has(config)) schedule(stubName, config === 'stub-idle', "the stand-in's");
    schedule(
      candidate,
      ['idle', 'idle-again', 'group', 'slow', 'inside', 'shim'].includes(config),
      "the candidate's",
    );
    if (config === 'group') groupIdle(true);
  };
  try {
    configure('off');
    await closed(port, 500, 16); // warm-up
    const capacity = (await closed(port, requests, 64)).rps;
    const rates = new Map(LOADS.map((x) => [x, Math.round(capacity * x)]));
    const runs = [];
    let previous = 'off';
    for (let round = 0; round < rounds; round++) {
      for (const config of roundOrder(round)) {
        const unpaused = new Date();
        configure(config);
        if (previous === 'paused' && config !== 'paused') await drained(candidate, unpaused);
        // The relay resolves the candidate's name again (valid=1s) once the stand-in is gone.
        if (STUBBED.has(previous) && !STUBBED.has(config)) await sleep(3000);
        previous = config;
        await closed(port, 200, 16); // the configuration warm
        for (const { c, loop, load: share } of CELLS) {
          const since = new Date();
          // The sockets of the run before are still there for up to 60 s: both counts are reported.
          const tw0 = timeWait();
          const cpu0 = cpuNow();
          const wait0 = waitNow();
          const t0 = ticks();
          const r =
            loop === 'closed'
              ? await closed(port, requests, c)
              : await open(port, requests, c, rates.get(share));
          const cpu = cpuNow().map((x, i) => x - cpu0[i]);
          const wait = waitNow().map((x, i) => x - wait0[i]);
          const t1 = ticks();
          const steal = (100 * (t1.steal - t0.steal)) / Math.max(1, t1.total - t0.total);
          const tw = timeWait();
          await sleep(1000); // the shadow's queue predicted (or dropped) before it is counted
          const predicted = NOT_PREDICTING.has(config) ? 0 : shadowPredictions(candidate, since);
          runs.push({
            round,
            config,
            c,
            loop,
            share,
            ...r,
            predicted,
            cpu,
            wait,
            steal,
            tw0,
            tw,
            load: os.loadavg()[0],
          });
        }
      }
    }
    report(runs, {
      rounds,
      requests,
      capacity,
      rates,
      generatedShares,
      generatedTwReuse,
      apart,
      engineApart,
    });
  } finally {
    groupIdle(false);
    if (CONFIGS.includes('inside')) inside(false);
    if (CONFIGS.includes('shim')) shimIdle(false);
    stub(false);
    hog(false);
    proxyTwReuse(generatedTwReuse);
    spawnSync('docker', ['unpause', candidate], { stdio: 'ignore' });
    if (apart) {
      cpuset([stable, proxy, candidate], all);
      execFileSync('taskset', ['-a', '-p', '-c', all, String(process.pid)], { stdio: 'ignore' });
      if (engineApart)
        for (const { pid } of daemons())
          spawnSync('taskset', ['-a', '-p', '-c', all, pid], { stdio: 'ignore' });
    }
    mlship(['rollout', 'rollback', 'model', '--reason', 'bench', '--destroy']);
  }
}

function report(
  runs,
  { rounds, requests, capacity, rates, generatedShares, generatedTwReuse, apart, engineApart },
) {
  console.log(
    `\n## shadow cost to the primary: mirror off vs a shadow at cpu_shares ${generatedShares} (low), at 1024 (default, as before), paused, a stand-in answering 202 at once in the candidate's place (stub; stub-idle with the stand-in at SCHED_IDLE; the proxy at tcp_tw_reuse ${generatedTwReuse}, stub-kernel at the kernel's 2), at cpu_shares ${generatedShares} with SCHED_IDLE (idle), the same with its cgroup idle (group), and the same capped at 0.1 CPU (slow), the mirror off with a busy loop per CPU at SCHED_IDLE beside the primary (hog, busy ${Math.round(HOG_DUTY * 100)} % of the time; hog-group with its cgroup idle, hog-outside with its processes in an idle cgroup beside the engine's; inside: the shadow's processes in a cgroup under the engine's at its weight, as before Dec 5) (measured: ${CONFIGS.join(', ')}${apart ? `; the shadow and the clients${engineApart ? ' and the engine' : ''} on CPUs apart from the stable and the proxy` : ''}${RELAY ? `; relay variant SHADOW_RELAY=${RELAY}` : ''}${STUB_DELAY_MS ? `; the stand-in answering ${STUB_DELAY_MS} ms late` : ''}${process.env.SHADOW_CANDIDATE_ENV ? `; the shadow's environment ${process.env.SHADOW_CANDIDATE_ENV}` : ''}); ${rounds} rounds of ${requests} requests per cell; closed-loop capacity (off, c=64) ${capacity.toFixed(0)} req/s, open loop at ${[...rates.values()].join(' and ')} req/s; load ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} at ${new Date().toISOString()}\n`,
  );
  console.log(
    '| loop | c | shadow | p50 ms | p99 ms (median) | p99 each round | p99 vs off | req/s | failed | shadow predicted | CPU s stable / shadow / proxy / engine | CPU wait µs per request: stable / proxy / clients | proxy TIME_WAIT before → after |',
  );
  console.log('|---|---:|---|---:|---:|---|---:|---:|---:|---:|---|---|---:|');
  const cells = [...CELLS].sort((a, b) => a.loop.localeCompare(b.loop) * -1 || b.load - a.load || a.c - b.c);
  for (const { loop, c, load: share } of cells) {
    const cell = (config) =>
      runs.filter((r) => r.loop === loop && r.c === c && r.share === share && r.config === config);
    const off = median(cell('off').map((r) => r.p99));
    for (const config of CONFIGS) {
      const rs = cell(config);
      const p99 = median(rs.map((r) => r.p99));
      const d = p99 - off;
      const cpu = [0, 1, 2, 3].map((i) => median(rs.map((r) => r.cpu[i])).toFixed(1)).join(' / ');
      // Per request, in µs: how long the primary's processes waited for a CPU.
      const wait = [0, 1, 2]
        .map((i) => median(rs.map((r) => (r.wait[i] * 1e6) / requests)).toFixed(0))
        .join(' / ');
      console.log(
        `| ${loop === 'open' ? `open ${Math.round(share * 100)} %` : loop} | ${c} | ${config} | ${median(rs.map((r) => r.p50)).toFixed(1)} | ${p99.toFixed(1)} | ${rs.map((r) => r.p99.toFixed(1)).join(', ')} | ${config === 'off' ? '' : `${d >= 0 ? '+' : ''}${d.toFixed(1)}`} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${rs.reduce((s, r) => s + r.failed, 0)} | ${NOT_PREDICTING.has(config) ? '-' : `${((median(rs.map((r) => r.predicted)) / requests) * 100).toFixed(0)} %`} | ${cpu} | ${wait} | ${median(rs.map((r) => r.tw0)).toFixed(0)} → ${median(rs.map((r) => r.tw)).toFixed(0)} |`,
      );
    }
  }
  console.log(`\nload average per run: ${runs.map((r) => r.load.toFixed(1)).join(' ')}`);
  console.log(`steal % per run: ${runs.map((r) => r.steal.toFixed(1)).join(' ')}`);
  // Each round's configurations in the order they ran (its runs are recorded in that order).
  const orders = [...Array(rounds).keys()].map((i) => [
    ...new Set(runs.filter((r) => r.round === i).map((r) => r.config)),
  ]);
  console.log(
    `order per round (SHADOW_ORDER=${ORDER}${ORDER === 'shuffle' ? `, SHADOW_SEED=${SEED}` : ''}): ${orders.map((o, i) => `${i + 1}: ${o.join(' ')}`).join('; ')}`,
  );
}
