// `mlship rollout` on a real local stack: two wrapped versions of a model (the candidate
// answers differently on exactly 10 % of the inputs), the stack's NGINX in front. One stack
// for the whole file: a canary split measured through the proxy, the answers compared, a
// rollback, a shadow slowed 10x and stopped, the relay's copies through a proxy short of local
// ports (TIME_WAIT ports reused), a candidate injected with 5xx rolled back by `watch`, and a
// promotion.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cpuCgroup } from '../../src/adapters/cgroups.js';
import { LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { freePort } from '../helpers/net.js';
import {
  type Answer,
  predictAll as predictLoad,
  type StatusJson,
  wrapRolloutArgs,
} from '../helpers/predict-load.js';
import { requires } from '../helpers/requires.js';

const engine = await requireEngine();
// Settings of the proxy's network namespace changed from the host (root, as CI runs).
const hasNsenter =
  !engine ||
  requires(
    'nsenter (root)',
    spawnSync('nsenter', ['-t', String(process.pid), '-n', 'true']).status === 0,
    'install util-linux and run the tests as root',
  );
const BIN = path.resolve('bin/mlship.js');
const NAME = `mlship-rollout-${process.pid}`;
const NGINX = 'mlship-local/nginx:1.22';
// The same NGINX without njs loaded (as a user's own image may be): rollouts fall back to reloads.
const NGINX_WITHOUT_NJS = `mlship-test/nginx-without-njs:${process.pid}`;
let dir: string;
let port: number;

function mlship(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
    timeout: 900_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

type Status = StatusJson;

function rolloutStatus(extra: string[] = []): Status {
  const r = mlship(['rollout', 'status', 'model', '--json', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Status;
}

/** The CLI without blocking this process's event loop (requests keep flowing meanwhile). */
function mlshipAsync(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { ...process.env, CI: 'true' } });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += String(d);
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

/** Polls status until `done` (the mirror's background predictions are logged a moment later). */
async function settledStatus(done: (s: Status) => boolean, extra: string[] = []): Promise<Status> {
  let status = rolloutStatus(extra);
  for (let i = 0; i < 20 && !done(status); i++) {
    await new Promise((r) => setTimeout(r, 500));
    status = rolloutStatus(extra);
  }
  return status;
}

/** The PIDs of the proxy's NGINX workers: a reload replaces them all. */
function nginxWorkers(): string[] {
  const r = spawnSync(
    'docker',
    [
      'exec',
      container('proxy'),
      'sh',
      '-c',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
      'for p in /proc/[0-9]*; do case "$(head -c 21 "$p/cmdline" 2>/dev/null)" in "nginx: worker process") echo "${p#/proc/}";; esac; done',
    ],
    { encoding: 'utf8' },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean).sort();
}

function container(service: string): string {
  const r = spawnSync(
    'docker',
    [
      'ps',
      '-aq',
      '--filter',
      `label=com.docker.compose.project=${NAME}`,
      '--filter',
      `label=com.docker.compose.service=${service}`,
    ],
    { encoding: 'utf8' },
  );
  return r.stdout.trim();
}

/** A container's CPU weight (0: docker's default, 1024) and cap (0: none), as the engine keeps them. */
function cpuOf(id: string): { shares: number; nanoCpus: number } {
  const r = spawnSync('docker', ['inspect', '-f', '{{.HostConfig.CpuShares}} {{.HostConfig.NanoCpus}}', id], {
    encoding: 'utf8',
  });
  const [shares, nanoCpus] = r.stdout.trim().split(' ').map(Number);
  return { shares: shares!, nanoCpus: nanoCpus! };
}

/**
 * A container's cgroup parent as the engine keeps it, and that parent's cpu.idle file in the
 * host's CPU hierarchy (cgroup v1's cpu controller, else v2).
 */
function parentOf(id: string): { parent: string; file: string } {
  const [parent = '', pid = ''] = spawnSync(
    'docker',
    ['inspect', '-f', '{{.HostConfig.CgroupParent}}|{{.State.Pid}}', id],
    { encoding: 'utf8' },
  )
    .stdout.trim()
    .split('|');
  const cg = cpuCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))!;
  return { parent, file: path.join('/sys/fs/cgroup', cg.mount, path.posix.dirname(cg.path), 'cpu.idle') };
}

/** A container's cgroup parent and that parent's cpu.idle ('' when it has none). */
function cgroupOf(id: string): { parent: string; idle: string } {
  const { parent, file } = parentOf(id);
  return { parent, idle: existsSync(file) ? readFileSync(file, 'utf8').trim() : '' };
}

/** The scheduling classes of a container's processes (`ps` cls: TS for SCHED_OTHER, IDL for SCHED_IDLE). */
function schedClasses(id: string): string[] {
  const r = spawnSync('docker', ['top', id, '-eo', 'pid,cls'], { encoding: 'utf8' });
  return [
    ...new Set(
      r.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/)[1]!),
    ),
  ];
}

/**
 * Keep-alive connections NGINX closed while a request was on its way (an old worker leaving
 * after a reload closes its idle connections). Counted, and asserted to stay 0: a change of
 * share rewrites the routing state and does not reload NGINX. Sent again (as HTTP clients do
 * for a request on a reused connection) only so that a regression shows as this count.
 */
let keepAliveRaces = 0;
/** The same, by the part of a test that was sending (see `during`). */
const racesIn: Record<string, number> = {};
let phase = 'setup';

/**
 * Marks the part of a test the next requests belong to, after a moment in which this process
 * takes note of connections the proxy closed while `mlship()` (spawnSync) blocked it: a reload
 * at `rollout start` closes the idle ones, and a real client, whose event loop is not blocked
 * for seconds, drops them as they close (bench/rollout `parts=start` measures that case).
 */
async function during(name: string) {
  await new Promise((r) => setTimeout(r, 200));
  phase = name;
}

async function post(x: number, headers: Record<string, string>): Promise<Response> {
  const send = () =>
    fetch(`http://127.0.0.1:${port}/api/model/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ x }),
    });
  // A proxy reload closes its idle keep-alive connections: a request sent on one at that moment
  // fails before any answer (counted; the tests assert there are none).
  for (let attempt = 0; ; attempt++) {
    try {
      return await send();
    } catch (e) {
      if ((e as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET' || attempt >= 4) throw e;
      keepAliveRaces++;
      racesIn[phase] = (racesIn[phase] ?? 0) + 1;
    }
  }
}

/** Predictions for x = from..to-1 through the proxy, `concurrency` at a time. */
function predictAll(from: number, to: number, concurrency = 16, headers: Record<string, string> = {}) {
  return predictLoad((x) => post(x, headers), from, to, concurrency);
}

/**
 * `n` requests for x = from.. due at `rate`/s (an open loop: each timed from when it was due,
 * so a slower primary shows as latency, not as fewer requests); the p99 of the answered ones.
 */
async function openLoop(from: number, n: number, rate: number): Promise<{ p99: number; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      post(from + i, {}).then(
        async (r) => {
          await r.arrayBuffer();
          if (r.status === 200) latencies.push(performance.now() - due);
          else failed++;
        },
        () => {
          failed++;
        },
      ),
    );
  }
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  return { p99: latencies[Math.floor(0.99 * (latencies.length - 1))] ?? Number.NaN, failed };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const v1 = (x: number) => x * 2;
const v2 = (x: number) => x * 2 + (x % 10 === 0 ? 1 : 0);

beforeAll(async () => {
  if (!engine) return;
  await requireImage(engine, LOCAL_PYTHON_IMAGE);
  await requireImage(engine, NGINX);
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-rollout-it-'));
  port = await freePort();
  for (const [version, out] of [
    ['v1', 'services/model'],
    ['v2', 'services/model-v2'],
  ] as const) {
    const w = mlship(wrapRolloutArgs(version, out, 'model'));
    expect(w.code, w.stderr).toBe(0);
  }
  writeFileSync(
    path.join(dir, 'mlship.yaml'),
    [
      'version: 1',
      `name: ${NAME}`,
      'services:',
      '  model:',
      '    path: services/model',
      'proxy:',
      `  image: ${NGINX}`,
      `  port: ${port}`,
      // The machine is shared and loaded: a mirror that waits longer than this is skipped (by
      // design), and the tests count what the candidate saw. The stack's setting, so nginx.conf
      // is ready with it and `rollout start` reloads nothing.
      '  shadow_timeout_ms: 2000',
      '',
    ].join('\n'),
  );
  const up = mlship(['compose', 'up', '--json']);
  expect(up.code, up.stderr).toBe(0);
}, 900_000);

afterAll(() => {
  if (!engine || !dir) return;
  mlship(['compose', 'down', '--volumes']);
  spawnSync('docker', ['rm', '-f', container('model-candidate')], { stdio: 'ignore' });
  spawnSync('docker', ['rmi', '-f', `${NAME}/model:dev`, `${NAME}/model-candidate:dev`, NGINX_WITHOUT_NJS], {
    stdio: 'ignore',
  });
});

describe.runIf(engine)('mlship rollout on the local stack (real NGINX, two wrapped versions)', () => {
  // A test that failed half-way leaves no running rollout to the next one.
  afterEach(() => {
    const file = path.join(dir, 'deploy/compose/rollouts.json');
    if (existsSync(file) && JSON.parse(readFileSync(file, 'utf8')).rollouts.model?.status === 'running')
      mlship(['rollout', 'rollback', 'model', '--reason', 'test cleanup']);
  });

  it('the golden nginx.conf files (sticky canary with mirror, shadow; with the routing state or not) pass nginx -t in the NGINX image', () => {
    const hosts = ['detector', 'pose-2d', 'pose-3d', 'pose-2d-candidate', 'pose-3d-candidate', 'frontend'];
    const files = [
      'canary-nginx.conf',
      'shadow-nginx.conf',
      'canary-state-nginx.conf',
      'shadow-state-nginx.conf',
    ];
    for (const file of files) {
      const r = spawnSync(
        'docker',
        [
          'run',
          '--rm',
          ...hosts.flatMap((h) => ['--add-host', `${h}:127.0.0.1`]),
          '-v',
          `${path.resolve('test/golden/rollout', file)}:/etc/nginx/conf.d/default.conf:ro`,
          '-v',
          `${path.resolve('templates/compose/route.js')}:/etc/nginx/mlship-routing/route.js:ro`,
          NGINX,
          'nginx',
          '-t',
        ],
        { encoding: 'utf8' },
      );
      expect(r.status, `${file}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toContain('test is successful');
    }
  });

  it('canary 10 % with the rest mirrored: 10 % ± 2 % of 2,000 requests reach the candidate, answers compared', async () => {
    // Keep-alive connections open to the proxy, then `start`: nginx.conf was ready for the
    // rollout, so NGINX keeps its workers (no reload) and no connection closes under a request.
    await during('start');
    expect((await predictAll(0, 64)).filter((a) => a.status !== 200)).toEqual([]);
    const workers = nginxWorkers();
    expect(workers.length).toBeGreaterThan(0);
    const conf = readFileSync(path.join(dir, 'deploy/compose/proxy/nginx.conf'), 'utf8');
    const start = mlship([
      'rollout',
      'start',
      'model',
      '--canary',
      '10',
      '--mirror',
      '--record-sample',
      '1',
      '--path',
      'services/model-v2',
      '--json',
    ]);
    expect(start.code, start.stderr).toBe(0);
    // What it prints is what it recorded: the stack's shadow timeout (proxy.shadow_timeout_ms), not the default.
    expect(JSON.parse(start.stdout).rollout).toMatchObject({
      mode: 'canary',
      weight: 10,
      shadowTimeoutMs: 2000,
    });
    expect(nginxWorkers()).toEqual(workers);
    expect(readFileSync(path.join(dir, 'deploy/compose/proxy/nginx.conf'), 'utf8')).toBe(conf);
    expect(racesIn.start ?? 0).toBe(0);
    // No pause (see `during`): the split's first requests go out at once on the connections
    // opened before `start`; racesIn.canary, asserted 0 below, counts any that was closed.
    phase = 'canary';
    // The configuration the proxy runs passes nginx -t in the NGINX image itself.
    const check = spawnSync('docker', ['exec', container('proxy'), 'nginx', '-t'], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);

    const answers = await predictAll(0, 2000);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const candidate = answers.filter((a) => a.version === 'candidate');
    expect(answers.filter((a) => a.version === 'stable').length + candidate.length).toBe(2000);
    expect(candidate.length / 2000).toBeGreaterThanOrEqual(0.08);
    expect(candidate.length / 2000).toBeLessThanOrEqual(0.12);
    // Each version answered as itself.
    for (const a of answers) expect(a.prediction).toBe(a.version === 'candidate' ? v2(a.x) : v1(a.x));

    // The header override, for testing.
    const forced = await predictAll(10, 30, 4, { 'X-Model-Version': 'candidate' });
    expect(forced.every((a) => a.version === 'candidate' && a.prediction === v2(a.x))).toBe(true);

    // The mirror's background predictions and log lines settle within a moment.
    const status = await settledStatus(
      (st) => (st.comparison.agreement?.pairs ?? 0) >= 0.95 * (2000 - candidate.length),
      // The candidate answers its own share and predicts every mirrored request too (ten times
      // the stable's work here): on a loaded 2-core machine it can be significantly slower,
      // which the latency gate rightly flags. This test is about the split and the comparison,
      // so it widens that gate only; the error and agreement gates stay as they are.
      ['--min-requests', '100', '--max-latency-increase', '20'],
    );
    const stableAnswered = answers.length - candidate.length;
    expect(status.comparison.stable.requests).toBe(stableAnswered);
    // The candidate answered its share and predicted the mirrored requests too (all but a few
    // whose mirror timed out on a loaded machine).
    const pairs = status.comparison.agreement!.pairs;
    console.info(
      `canary: ${candidate.length}/2000 to the candidate; ${status.comparison.candidate.requests} candidate requests; ${pairs} pairs of ${stableAnswered} mirrored; agreement ${(status.comparison.agreement!.rate * 100).toFixed(2)} %`,
    );
    expect(pairs).toBeGreaterThanOrEqual(0.95 * stableAnswered);
    expect(status.comparison.candidate.requests).toBeGreaterThanOrEqual(candidate.length + pairs);
    // The recorded agreement rate matches the known share (v2 differs on 10 % of inputs) within 2 points.
    expect(Math.abs(status.comparison.agreement!.rate - 0.9)).toBeLessThanOrEqual(0.02);
    expect(status.verdict.decision, status.verdict.reasons.join('; ')).toBe('promote');

    // promote --to N under 16 keep-alive clients: each share is in force when the command
    // returns, and no request fails (the routing state changes; NGINX is not reloaded).
    let load = true;
    const loaded: Answer[] = [];
    const traffic = (async () => {
      for (let from = 3000; load; from += 160) loaded.push(...(await predictAll(from, from + 160)));
    })();
    for (const share of [100, 0, 50, 10]) {
      const step = await mlshipAsync(['rollout', 'promote', 'model', '--to', String(share)]);
      expect(step.code, step.stderr).toBe(0);
      const now = await predictAll(100_000, 100_200, 8);
      const toCandidate = now.filter((a) => a.version === 'candidate').length;
      if (share === 100) expect(toCandidate).toBe(200);
      else if (share === 0) expect(toCandidate).toBe(0);
      else expect(Math.abs(toCandidate / 200 - share / 100)).toBeLessThanOrEqual(0.1);
    }
    load = false;
    await traffic;
    console.info(
      `promote --to 100, 0, 50, 10 under load: ${loaded.length} requests, ${racesIn.canary ?? 0} keep-alive races`,
    );
    expect(loaded.length).toBeGreaterThan(0);
    expect(loaded.filter((a) => a.status !== 200)).toEqual([]);
    // Every request of this test, the split and the steps under load: none met a closing connection.
    expect(racesIn.canary ?? 0).toBe(0);
  });

  it('rollback: every request to stable, the candidate stopped and kept for its logs', async () => {
    const r = mlship(['rollout', 'rollback', 'model', '--reason', 'test']);
    expect(r.code, r.stderr).toBe(0);
    const answers = await predictAll(0, 200);
    expect(answers.every((a) => a.status === 200 && a.prediction === v1(a.x))).toBe(true);
    // The proxy no longer routes by version at all.
    expect(answers.every((a) => a.version === null)).toBe(true);
    const state = spawnSync('docker', ['inspect', '-f', '{{.State.Status}}', container('model-candidate')], {
      encoding: 'utf8',
    });
    expect(state.stdout.trim()).toBe('exited');
    const file = JSON.parse(readFileSync(path.join(dir, 'deploy/compose/rollouts.json'), 'utf8'));
    expect(file.rollouts.model.status).toBe('rolled-back');
    expect(file.rollouts.model.history.at(-1)).toMatchObject({ action: 'rollback', reason: 'test' });
  });

  it('shadow: at the lowest CPU weight and SCHED_IDLE, it sees the mirrored requests, clients get only stable answers; slowed 10x it adds under 5 ms to the primary p99, stopped no error', async () => {
    const start = mlship([
      'rollout',
      'start',
      'model',
      '--shadow',
      '--record-sample',
      '1',
      '--shadow-cpus',
      '1',
      '--path',
      'services/model-v2',
    ]);
    expect(start.code, start.stderr).toBe(0);
    // The shadow runs on what the primary leaves idle (the stable keeps docker's default 1024).
    expect(cpuOf(container('model-candidate'))).toEqual({ shares: 2, nanoCpus: 1e9 });
    expect(cpuOf(container('model')).shares).toBe(0);
    // Every process of the shadow at SCHED_IDLE (only CPU time nobody else wants); the stable's not.
    expect(start.stderr + start.stdout).toMatch(/model-candidate: at SCHED_IDLE/);
    expect(schedClasses(container('model-candidate'))).toEqual(['IDL']);
    expect(schedClasses(container('model'))).toEqual(['TS']);
    // SCHED_IDLE counts only within a cgroup: the shadow's container is in a cgroup parent of
    // its own beside the engine's, marked idle on the host (the engine's cgroupfs driver, as root
    // here); the stable's parent is the engine's, not idle.
    expect(start.stderr + start.stdout).toMatch(/model-candidate: in the idle cgroup \/mlship-shadow/);
    expect(cgroupOf(container('model-candidate'))).toEqual({ parent: '/mlship-shadow', idle: '1' });
    expect(cgroupOf(container('model'))).toEqual({ parent: '', idle: '0' });
    const timed = async (from: number, to: number) => {
      const t0 = performance.now();
      const answers = await predictAll(from, to, 8);
      return { answers, ms: performance.now() - t0 };
    };
    const shadowed = await timed(0, 500);
    expect(
      shadowed.answers.every((a) => a.status === 200 && a.version === 'stable' && a.prediction === v1(a.x)),
    ).toBe(true);
    const status = await settledStatus((st) => (st.comparison.agreement?.pairs ?? 0) >= 475);
    expect(status.comparison.stable.requests).toBe(500);
    expect(status.comparison.candidate.requests).toBeGreaterThanOrEqual(475);
    expect(Math.abs(status.comparison.agreement!.rate - 0.9)).toBeLessThanOrEqual(0.02);
    // What became of the mirrored requests: each predicted, or counted as not.
    expect(status.mirror).toEqual({
      mirrored: 500,
      predicted: status.comparison.candidate.requests,
      notPredicted: 500 - status.comparison.candidate.requests,
    });

    // The shadow slowed 10x (capped at a tenth of its CPU: each of its predictions takes at
    // least 10x as long, and its queue drops what it cannot predict): the primary's p99 stays
    // within 5 ms of its p99 beside the shadow at full speed. By turns, 5 rounds of both, the
    // order alternating: the median of the rounds' differences, so that the machine's own swings
    // (other tests share its 2 cores) fall on both sides of each.
    const rounds: { slowed: number; full: number }[] = [];
    for (let round = 0; round < 5; round++) {
      const p99 = { slowed: 0, full: 0 };
      for (const slowed of round % 2 ? [true, false] : [false, true]) {
        const cap = spawnSync('docker', [
          'update',
          '--cpus',
          slowed ? '0.1' : '1',
          container('model-candidate'),
        ]);
        expect(cap.status, String(cap.stderr)).toBe(0);
        const run = await openLoop(10_000 + round * 2000 + (slowed ? 1000 : 0), 800, 200);
        expect(run.failed).toBe(0);
        p99[slowed ? 'slowed' : 'full'] = run.p99;
      }
      rounds.push(p99);
    }
    const differences = rounds.map((r) => r.slowed - r.full);
    console.info(
      `shadow slowed 10x: primary p99 slowed / full speed per round ${rounds.map((r) => `${r.slowed.toFixed(1)} / ${r.full.toFixed(1)}`).join(', ')} ms (800 requests at 200/s per run); median difference ${median(differences).toFixed(1)} ms`,
    );
    expect(median(differences)).toBeLessThanOrEqual(5);
    spawnSync('docker', ['update', '--cpus', '1', container('model-candidate')], { stdio: 'ignore' });

    // The shadow stopped: the primary answers every request all the same.
    spawnSync('docker', ['stop', '-t', '1', container('model-candidate')], { stdio: 'ignore' });
    const stopped = await timed(500, 1000);
    expect(stopped.answers.filter((a) => a.status !== 200)).toEqual([]);
    console.info(
      `shadow: ${status.comparison.candidate.requests}/500 mirrored requests predicted, agreement ${(status.comparison.agreement!.rate * 100).toFixed(2)} %; 500 requests in ${shadowed.ms.toFixed(0)} ms with the shadow up, ${stopped.ms.toFixed(0)} ms with it stopped`,
    );
    // Promoted to a canary (share 0), it will answer clients: the default weight and no cap
    // (every CPU of the engine), in place.
    // Started again it runs at SCHED_OTHER: put back at SCHED_IDLE as `start` leaves a shadow (from
    // the host: the test's way, not mlship's), so that the promotion has to take it out of it.
    spawnSync('docker', ['start', container('model-candidate')], { stdio: 'ignore' });
    for (const pid of spawnSync('docker', ['top', container('model-candidate'), '-eo', 'pid'], {
      encoding: 'utf8',
    })
      .stdout.trim()
      .split('\n')
      .slice(1))
      spawnSync('chrt', ['--idle', '-a', '-p', '0', pid.trim()], { stdio: 'ignore' });
    expect(schedClasses(container('model-candidate'))).toEqual(['IDL']);
    const idleId = container('model-candidate');
    const canary = mlship(['rollout', 'promote', 'model', '--to', '0']);
    expect(canary.code, canary.stderr).toBe(0);
    // A container cannot leave SCHED_IDLE by itself: recreated at the default policy before any
    // request reaches it.
    expect(canary.stderr + canary.stdout).toMatch(/recreating model-candidate at the default CPU policy/);
    expect(container('model-candidate')).not.toBe(idleId);
    expect(schedClasses(container('model-candidate'))).toEqual(['TS']);
    expect(cgroupOf(container('model-candidate'))).toEqual({ parent: '', idle: '0' });
    const engineCpus = Number(spawnSync('docker', ['info', '-f', '{{.NCPU}}'], { encoding: 'utf8' }).stdout);
    expect(cpuOf(container('model-candidate'))).toEqual({ shares: 1024, nanoCpus: engineCpus * 1e9 });
    const back = mlship(['rollout', 'rollback', 'model', '--reason', 'shadow test over']);
    expect(back.code, back.stderr).toBe(0);
  });

  it.runIf(hasNsenter)(
    "shadow through 1,000 ports: the proxy reuses the relay's TIME_WAIT ports (tcp_tw_reuse=1), 2,000 copies at 400/s and none fails to connect; at the kernel's default they run out",
    async () => {
      const proxy = container('proxy');
      const reuse = spawnSync('docker', ['exec', proxy, 'cat', '/proc/sys/net/ipv4/tcp_tw_reuse'], {
        encoding: 'utf8',
      });
      expect(reuse.stdout.trim(), reuse.stderr).toBe('1');
      const pid = spawnSync('docker', ['inspect', '-f', '{{.State.Pid}}', proxy], {
        encoding: 'utf8',
      }).stdout.trim();
      // From the host, in the proxy's network namespace (the test's way, not mlship's).
      const sysctl = (name: string, value: string) => {
        const r = spawnSync(
          'nsenter',
          ['-t', pid, '-n', 'sh', '-c', `echo "${value}" > /proc/sys/net/ipv4/${name}`],
          { encoding: 'utf8' },
        );
        expect(r.status, r.stderr).toBe(0);
      };
      /** Copies the relay could not send: no free local port to the candidate (EADDRNOTAVAIL). */
      const unsent = async (from: number) => {
        const since = Math.floor(Date.now() / 1000) - 1;
        const run = await openLoop(from, 2000, 400);
        await new Promise((r) => setTimeout(r, 1000));
        const logs = spawnSync('docker', ['logs', '--since', String(since), proxy], { encoding: 'utf8' });
        const errors = `${logs.stdout}\n${logs.stderr}`.split('\n');
        return { ...run, unsent: errors.filter((l) => l.includes('Cannot assign requested address')).length };
      };
      // 1,000 local ports instead of 28,232. Each copy the candidate took leaves a TIME_WAIT
      // socket for 60 s (the relay closes first; a starved shadow takes fewer than 400 a second,
      // the rest are dropped before a connection): at tcp_tw_reuse=1 a port is taken over after
      // 1 s, so 400 a second need about 400 of them; at the default they are all taken within the
      // run. 500 ports left too little room for the open loop's catch-up after a stall of the
      // machine (a CI run on Dec 6: primary p99 672 ms, 1 copy unsent): the rest of 1,000 is
      // 1.5 s of copies at 400/s. The shadow's cgroup parent is not idle for this test (the test's way): in an idle
      // one, under this load, it is starved of every connection, and neither count would say
      // anything about the proxy's ports.
      sysctl('ip_local_port_range', '40000 40999');
      let idleFile = '';
      try {
        const start = mlship(['rollout', 'start', 'model', '--shadow', '--path', 'services/model-v2']);
        expect(start.code, start.stderr).toBe(0);
        idleFile = parentOf(container('model-candidate')).file;
        writeFileSync(idleFile, '0');
        const reused = await unsent(30_000);
        // The kernel's default (2): TIME_WAIT ports are reused on loopback only.
        sysctl('tcp_tw_reuse', '2');
        const atDefault = await unsent(40_000);
        console.info(
          `relay through 1,000 ports, 2,000 copies at 400/s: ${reused.unsent} not sent at tcp_tw_reuse=1 (primary p99 ${reused.p99.toFixed(1)} ms), ${atDefault.unsent} at the default (${atDefault.failed} client requests failed)`,
        );
        expect(reused).toMatchObject({ unsent: 0, failed: 0 });
        expect(atDefault.unsent).toBeGreaterThan(100);
      } finally {
        if (idleFile) writeFileSync(idleFile, '1');
        sysctl('tcp_tw_reuse', '1');
        sysctl('ip_local_port_range', '32768 60999');
      }
    },
  );

  it('watch rolls back a candidate that fails 20 % of requests: weights 100/0, the reason, exit 1', async () => {
    const start = mlship([
      'rollout',
      'start',
      'model',
      '--canary',
      '50',
      '--path',
      'services/model-v2',
      '--env',
      'FAIL_EVERY=5',
    ]);
    expect(start.code, start.stderr).toBe(0);
    await during('watch');
    const watch: ChildProcess = spawn(
      process.execPath,
      [
        BIN,
        'rollout',
        'watch',
        'model',
        '--steps',
        '50,100',
        '--bake',
        '10m',
        '--interval',
        '1s',
        '--min-requests',
        '100',
      ],
      { cwd: dir, env: { ...process.env, CI: 'true' } },
    );
    let stderr = '';
    watch.stderr!.on('data', (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((resolve) => watch.on('exit', resolve));
    let code: number | null | undefined;
    void exited.then((c) => {
      code = c;
    });
    try {
      // Traffic until watch decides (bounded: 6,000 requests).
      const answers: Answer[] = [];
      for (let from = 0; code === undefined && from < 6000; from += 200)
        answers.push(...(await predictAll(from, from + 200, 8)));
      const failed = answers.filter((a) => a.status !== 200);
      // Only the candidate's injected failures (x % 5 == 1) reach clients, and only until the rollback.
      expect(failed.every((a) => a.version === 'candidate' && a.x % 5 === 1)).toBe(true);
      expect(await exited, stderr).toBe(1);
      expect(stderr).toMatch(/rolled back model: 5xx rate/);
      console.info(
        `watch: rolled back after ${answers.filter((a) => a.version === 'candidate').length} candidate answers (${failed.length} 5xx); ${racesIn.watch ?? 0} keep-alive races (${keepAliveRaces} in all tests so far, by part: ${JSON.stringify(racesIn)})`,
      );
    } finally {
      if (code === undefined) watch.kill();
    }
    const after = await predictAll(0, 100);
    expect(after.every((a) => a.status === 200 && a.version === null && a.prediction === v1(a.x))).toBe(true);
    // The steps (50 %, 100 %) and the rollback under load changed the routing state, never reloaded
    // NGINX: no request met a closing keep-alive connection.
    expect(racesIn.watch ?? 0).toBe(0);
    const file = JSON.parse(readFileSync(path.join(dir, 'deploy/compose/rollouts.json'), 'utf8'));
    expect(file.rollouts.model.status).toBe('rolled-back');
    expect(file.rollouts.model.history.at(-1).reason).toMatch(/5xx rate/);
  });

  it('promote: the candidate becomes the stable service, mlship.yaml says so, traffic moved once', async () => {
    const start = mlship(['rollout', 'start', 'model', '--canary', '10', '--path', 'services/model-v2']);
    expect(start.code, start.stderr).toBe(0);
    const p = mlship(['rollout', 'promote', 'model']);
    expect(p.code, p.stderr).toBe(0);
    const answers = await predictAll(0, 100);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers.every((a) => a.prediction === v2(a.x) && a.version === null)).toBe(true);
    expect(readFileSync(path.join(dir, 'mlship.yaml'), 'utf8')).toContain('path: services/model-v2');
    expect(container('model-candidate')).toBe('');
  });

  it('an NGINX without njs: one warning, the share in nginx.conf and a reload per change, the split as before', async () => {
    const build = spawnSync('docker', ['build', '-q', '-t', NGINX_WITHOUT_NJS, '-'], {
      input: `FROM ${NGINX}\nRUN rm /etc/nginx/modules-enabled/50-mod-http-js.conf\n`,
      encoding: 'utf8',
    });
    expect(build.status, build.stderr).toBe(0);
    const config = path.join(dir, 'mlship.yaml');
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace(`image: ${NGINX}`, `image: ${NGINX_WITHOUT_NJS}`),
    );
    const up = mlship(['compose', 'up', '--json']);
    expect(up.code, up.stderr).toBe(0);
    const start = mlship(['rollout', 'start', 'model', '--canary', '10', '--path', 'services/model']);
    expect(start.code, start.stderr).toBe(0);
    expect(start.stderr.match(/no JavaScript module \(njs\)/g)).toHaveLength(1);
    const conf = () => readFileSync(path.join(dir, 'deploy/compose/proxy/nginx.conf'), 'utf8');
    expect(conf()).not.toContain('js_import');
    expect(conf()).toContain('    10% candidate;');
    const split = await predictAll(0, 1000);
    expect(split.filter((a) => a.status !== 200)).toEqual([]);
    const share = split.filter((a) => a.version === 'candidate').length / 1000;
    expect(Math.abs(share - 0.1)).toBeLessThanOrEqual(0.03);
    const all = mlship(['rollout', 'promote', 'model', '--to', '100']);
    expect(all.code, all.stderr).toBe(0);
    expect(conf()).toContain('    * candidate;');
    await during('without njs');
    expect((await predictAll(0, 100)).every((a) => a.version === 'candidate')).toBe(true);
    const back = mlship(['rollout', 'rollback', 'model', '--reason', 'test', '--destroy']);
    expect(back.code, back.stderr).toBe(0);
    expect((await predictAll(0, 100)).every((a) => a.status === 200 && a.version === null)).toBe(true);
  });
});
