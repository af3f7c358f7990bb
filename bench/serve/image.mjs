// Image serving benchmark (not a test; issue 18): a 224x224 JPEG sent by multipart to services
// `mlship wrap` generates, run by gunicorn from the host .venv (one worker, as on a small task).
//
//  1. Overhead at c=1: the service's time per image beyond the model's own (HTTP, multipart,
//     decode, preprocess, answer; for an image answer also the PNG encode), from the service's
//     own metrics (request duration sum minus model duration sum, over the same requests), and
//     the worker's CPU time per request. Side by side with the same model wrapped by the
//     baseline's templates (BASELINE, a git ref), in alternating rounds (A B B A) in the same run.
//  2. Batching at c=32 vs no batching (BATCH_MAX_SIZE=1), for a conv classifier costing 15-25 ms
//     for one image (as a ResNet-18 on a CPU) whose 32-image call costs less than 4x one image
//     (model-only costs measured first, printed); with ONNX Runtime's thread spinning off (the
//     default) and on (ORT_ALLOW_SPINNING=1), at c=1 and c=32: four services, alternating rounds
//     (A B C D, D C B A ...) so that the machine's load drift cancels.
//  3. A flood of 20 MB uploads (over the 10 MiB default limit), with and without content-length:
//     the worker's peak memory (VmHWM) before and after, and worker restarts.
//  4. ONLY=node: 1. for the Node service (`--runtime node`, `node server.js` on the host, its
//     onnxruntime-node, sharp and busboy installed once under bench/.work), the `cheap` classifier,
//     side by side with the same model wrapped by NODE_BASELINE's templates (A B B A rounds).
//
//   node bench/serve/image.mjs   # REQUESTS=300 ROUNDS=4 BATCH_REQUESTS=640 C1_REQUESTS=150 FLOOD=40
//                                # BASELINE=0558b2b ONLY=batching (2. alone)
//                                # ONLY=node NODE_BASELINE=58138f7 (4. alone)
//
// Needs: `npm run build`, .venv (requirements-dev.txt), ab (apt-get install -y apache2-utils), git.
// Prints one JSON object; the figures are in docs/benchmarks.md.

import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  cpSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const WORK = path.join(ROOT, 'bench/.work/serve-image');
const PY = path.join(ROOT, '.venv/bin/python');
const REQUESTS = Number(process.env.REQUESTS ?? 300);
const BATCH_REQUESTS = Number(process.env.BATCH_REQUESTS ?? 640);
const FLOOD = Number(process.env.FLOOD ?? 40);
const ROUNDS = Number(process.env.ROUNDS ?? 4);
const C1_REQUESTS = Number(process.env.C1_REQUESTS ?? 150);
// ONLY=batching: the batching and spinning comparisons alone (no overhead, no flood).
// ONLY=overhead: 1. alone (the overhead at c=1 against the baseline; no batching, no flood).
const ONLY = process.env.ONLY ?? '';
const BASELINE = process.env.BASELINE ?? '0558b2b';
// The Node case's baseline: main before the Node image path was profiled (issue 18's 3 ms goal).
const NODE_BASELINE = process.env.NODE_BASELINE ?? '58138f7';
const PORT = Number(process.env.PORT ?? 18180);
const BOUNDARY = 'mlshipbenchboundary';
const NODE_WORK = path.join(WORK, 'node');
mkdirSync(WORK, { recursive: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const loadavg = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

function multipart(file, type) {
  const head = `--${BOUNDARY}\r\ncontent-disposition: form-data; name="image"; filename="photo"\r\ncontent-type: ${type}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), file, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]);
}

/**
 * An mlship CLI that generates services from the baseline's templates (`git archive BASELINE
 * templates`) with this checkout's compiled code: the service files compared are the templates'.
 * `compiled`: the baseline's own code too (its src built here), for a baseline whose generator
 * writes another set of files than this checkout's (the Node case: pixels.js is new).
 */
function baselineCli(ref = BASELINE, compiled = false) {
  const dir = path.join(WORK, compiled ? 'baseline-cli-compiled' : 'baseline-cli');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const parts = compiled ? 'templates src bin package.json tsconfig.json tsconfig.build.json' : 'templates';
  execFileSync('sh', ['-c', `git -C "${ROOT}" archive ${ref} ${parts} | tar -x -C "${dir}"`]);
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  if (compiled) {
    execFileSync(
      process.execPath,
      [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: dir,
        stdio: 'inherit',
      },
    );
    return dir;
  }
  for (const p of ['dist', 'bin', 'package.json'])
    cpSync(path.join(ROOT, p), path.join(dir, p), { recursive: true });
  return dir;
}

function wrap(model, name, extra = [], cli = ROOT, work = WORK) {
  const out = path.join(work, name);
  execFileSync(
    process.execPath,
    [
      path.join(cli, 'bin/mlship.js'),
      'wrap',
      model,
      '--out',
      out,
      '--workers',
      '1',
      '--no-check',
      '--force',
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return out;
}

/** The command that runs a wrapped service: gunicorn from the host .venv, or Node for `--runtime node`. */
function serviceCommand(dir) {
  if (readFileSync(path.join(dir, 'mlship-wrap.json'), 'utf8').includes('"node"'))
    return [process.execPath, ['server.js']];
  return [PY, ['-m', 'gunicorn', '-c', 'gunicorn_conf.py', 'app.main:app']];
}

async function start(dir, model, port, env = {}) {
  // Per service (two may run from one directory): metrics of one never count in the other's.
  const metricsDir = path.join(WORK, `metrics-${path.basename(dir)}-${port}`);
  rmSync(metricsDir, { recursive: true, force: true });
  mkdirSync(metricsDir);
  // Logs to a file, not a pipe: ab runs synchronously, and a pipe nobody drains would block the
  // service once its buffer is full.
  const logFile = path.join(WORK, `${path.basename(dir)}-${port}.log`);
  const fd = openSync(logFile, 'w');
  const [command, args] = serviceCommand(dir);
  const child = spawn(command, args, {
    cwd: dir,
    env: {
      ...process.env,
      PORT: String(port),
      MODEL_PATH: model,
      PROMETHEUS_MULTIPROC_DIR: metricsDir,
      ...env,
    },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`, { headers: { connection: 'close' } })).ok) break;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  // gunicorn's worker is its child; the Node service is one process.
  const worker =
    command === PY
      ? execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' })
          .trim()
          .split('\n')[0]
      : child.pid;
  return {
    port,
    worker: Number(worker),
    log: () => readFileSync(logFile, 'utf8'),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

function ab(port, n, c, body, extra = []) {
  const file = path.join(WORK, `body-${body.length}.bin`);
  writeFileSync(file, body);
  const out = execFileSync(
    'ab',
    [
      '-q',
      '-n',
      String(n),
      '-c',
      String(c),
      '-p',
      file,
      '-T',
      `multipart/form-data; boundary=${BOUNDARY}`,
      ...extra,
      `http://127.0.0.1:${port}/predict`,
    ],
    { encoding: 'utf8', maxBuffer: 16 << 20 },
  );
  const num = (re) => Number(re.exec(out)?.[1] ?? Number.NaN);
  return {
    rps: num(/Requests per second:\s+([\d.]+)/),
    meanMs: num(/Time per request:\s+([\d.]+) \[ms\] \(mean\)/),
    failed: num(/Failed requests:\s+(\d+)/),
    non2xx: num(/Non-2xx responses:\s+(\d+)/) || 0,
  };
}

async function metrics(port) {
  const text = await (
    await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { connection: 'close' } })
  ).text();
  const sum = (name, ...labels) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(name) && labels.every((x) => l.includes(x)))
      .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return {
    requestSum: sum('mlship_request_duration_seconds_sum', 'endpoint="/predict"'),
    requestCount: sum('mlship_request_duration_seconds_count', 'endpoint="/predict"'),
    modelSum: sum('mlship_model_duration_seconds_sum'),
    batches: sum('mlship_batch_size_count'),
    batched: sum('mlship_batch_size_sum'),
  };
}

/** A, B in even rounds, B, A in odd ones (A B B A ...): a load that rises or falls through the run
 * hits both sides alike, not always the second. */
function order(round, count) {
  const ids = [...Array(count).keys()];
  return round % 2 ? ids.reverse() : ids;
}

/** The figures of one service between two snapshots (metrics and the worker's CPU time). */
async function snapshot(svc) {
  return { ...(await metrics(svc.port)), cpu: cpuMs(svc.worker) };
}

function add(total, before, after) {
  for (const k of Object.keys(after)) total[k] = (total[k] ?? 0) + after[k] - before[k];
  return total;
}

/** Service time per image beyond the model's at c=1, for each service, in alternating rounds. */
async function overhead(services, body) {
  const totals = services.map(() => ({}));
  const client = services.map(() => []);
  for (const svc of services) ab(svc.port, 30, 1, body);
  for (let round = 0; round < ROUNDS; round++) {
    for (const i of order(round, services.length)) {
      const svc = services[i];
      const before = await snapshot(svc);
      client[i].push(ab(svc.port, REQUESTS, 1, body).meanMs);
      add(totals[i], before, await snapshot(svc));
    }
  }
  return totals.map((t, i) => {
    const n = t.requestCount;
    const service = (t.requestSum / n) * 1000;
    const modelMs = (t.modelSum / n) * 1000;
    return {
      requests: n,
      client_mean_ms: +(client[i].reduce((a, b) => a + b, 0) / client[i].length).toFixed(3),
      service_ms: +service.toFixed(3),
      model_ms: +modelMs.toFixed(3),
      overhead_ms: +(service - modelMs).toFixed(3),
      // CPU the worker spent per request (model included): what a loaded machine inflates least.
      worker_cpu_ms_per_request: +(t.cpu / n).toFixed(3),
    };
  });
}

/** Throughput at concurrency `c` (`n` requests a round) of each service, in alternating rounds:
 * the load's drift hits all alike. */
async function throughput(services, body, c = 32, n = BATCH_REQUESTS) {
  const runs = services.map(() => []);
  for (const svc of services) ab(svc.port, Math.max(2 * c, 30), c, body);
  for (let round = 0; round < ROUNDS; round++) {
    for (const i of order(round, services.length)) {
      const svc = services[i];
      const before = await metrics(svc.port);
      const r = ab(svc.port, n, c, body);
      const after = await metrics(svc.port);
      const batches = after.batches - before.batches;
      runs[i].push({
        rps: r.rps,
        mean_ms: r.meanMs,
        failed: r.failed + r.non2xx,
        // No batch metric when BATCH_MAX_SIZE=1: each input is its own call.
        mean_batch: batches ? +((after.batched - before.batched) / batches).toFixed(2) : 1,
        load: loadavg(),
      });
    }
  }
  const mean = (rounds, k) => +(rounds.reduce((a, r) => a + r[k], 0) / rounds.length).toFixed(2);
  return runs.map((rounds) => ({ rps: mean(rounds, 'rps'), mean_ms: mean(rounds, 'mean_ms'), rounds }));
}

/**
 * ONNX Runtime's idle threads spinning (ORT_ALLOW_SPINNING=1) or sleeping (the default), with
 * batching off and on, at c=1 and at c=32: four services of the conv model, alternating rounds.
 */
async function spinning(conv, model, body) {
  const kinds = [];
  for (const spin of ['0', '1']) for (const size of ['1', '32']) kinds.push({ spin, batch: size });
  const specs = kinds.map((k) => [conv, model, { ORT_ALLOW_SPINNING: k.spin, BATCH_MAX_SIZE: k.batch }]);
  return withServices(specs, async (services) => {
    const c1 = await throughput(services, body, 1, C1_REQUESTS);
    const c32 = await throughput(services, body, 32, BATCH_REQUESTS);
    return kinds.map((k, i) => ({
      spinning: k.spin === '1',
      batch_max_size: Number(k.batch),
      c1: c1[i],
      c32: c32[i],
    }));
  });
}

/** CPU time (user + system) of a process so far, in ms (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function peakKb(pid) {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

/**
 * One upload of `size` bytes in 64 KiB chunks, with its content-length (refused from the header)
 * or without (chunked: counted as it arrives). Resolves with the status, or "closed" when the
 * service closed the connection while the client was still sending (also a refusal).
 */
function bigUpload(size, withLength) {
  const head = `--${BOUNDARY}\r\ncontent-disposition: form-data; name="image"; filename="big"\r\ncontent-type: image/jpeg\r\n\r\n`;
  const tail = `\r\n--${BOUNDARY}--\r\n`;
  const headers = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };
  if (withLength) headers['content-length'] = String(head.length + size + tail.length);
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port: PORT, path: '/predict', method: 'POST', headers },
      (res) => {
        res.resume();
        resolve(res.statusCode);
      },
    );
    req.on('error', () => resolve('closed'));
    const chunk = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    req.write(head);
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return req.once('drain', pump);
      }
      req.end(tail);
    };
    pump();
  });
}

async function uploads(count, withLength) {
  const statuses = [];
  for (let i = 0; i < count; i += 8) {
    const wave = Array.from({ length: Math.min(8, count - i) }, () =>
      bigUpload(20 * 1024 * 1024, withLength),
    );
    statuses.push(...(await Promise.all(wave)));
  }
  return Object.fromEntries([...new Set(statuses)].map((s) => [s, statuses.filter((x) => x === s).length]));
}

async function flood(dir, model) {
  const svc = await start(dir, model, PORT);
  try {
    const photoBody = multipart(readFileSync(path.join(WORK, 'photo.jpg')), 'image/jpeg');
    ab(svc.port, 50, 4, photoBody);
    const before = peakKb(svc.worker);
    const withLength = await uploads(FLOOD, true);
    const chunked = await uploads(FLOOD, false);
    const after = peakKb(svc.worker);
    const stillServing = ab(svc.port, 20, 1, photoBody);
    const boots = (svc.log().match(/"msg": "model ready"/g) ?? []).length;
    return {
      uploads_each_way: FLOOD,
      with_length: withLength,
      chunked,
      worker_peak_mb_before: +(before / 1024).toFixed(1),
      worker_peak_mb_after: +(after / 1024).toFixed(1),
      worker_pid_alive: readFileSync(`/proc/${svc.worker}/status`, 'utf8').includes('State'),
      model_ready_lines: boots,
      worker_restarts: boots - 1,
      photo_after_flood_failed: stillServing.failed + stillServing.non2xx,
    };
  } finally {
    await svc.stop();
  }
}

/** Services started together (each on its own port), `run` called with them, all stopped after. */
async function withServices(specs, run) {
  const services = [];
  try {
    for (const [i, [dir, model, env]] of specs.entries())
      services.push(await start(dir, model, PORT + 1 + i, env));
    return await run(services);
  } finally {
    for (const svc of services) await svc.stop();
  }
}

const pair = (dir, baseDir, model) => [
  [baseDir, model, {}],
  [dir, model, {}],
];

/** Service overhead at c=1 over the model, now and with the baseline's templates. */
async function overheads(result, body, model, base) {
  for (const [name, key] of [
    ['cheap', 'overhead_classifier'],
    ['invert', 'overhead_image_answer'],
  ]) {
    // Batching on (it dispatches at once at c=1): the model's own time is then in the metrics.
    const now = wrap(model(name), name, ['--batching']);
    const before = wrap(model(name), `${name}-baseline`, ['--batching'], base);
    const [b, n] = await withServices(pair(now, before, model(name)), (s) => overhead(s, body));
    result[key] = { baseline: b, now: n };
  }
  result.machine.load_after_overhead = loadavg();
}

/** The Node service's dependencies (its template's package.json), installed once for every Node
 * service of the run: they live in subfolders of NODE_WORK and resolve node_modules from there. */
function nodeDeps(pkgFile) {
  const { dependencies } = JSON.parse(readFileSync(pkgFile, 'utf8'));
  const pkg = path.join(NODE_WORK, 'package.json');
  const want = JSON.stringify({ name: 'bench-node-services', private: true, dependencies });
  let have = '';
  try {
    have = readFileSync(pkg, 'utf8');
  } catch {
    // first run
  }
  if (have === want) return;
  writeFileSync(pkg, want);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: NODE_WORK,
    stdio: ['ignore', 'ignore', 'inherit'],
    // As the service's Dockerfile: the binaries shipped in the package, no download.
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });
}

/** 4. The Node service's overhead at c=1 (`cheap`, JSON answer), now and with NODE_BASELINE's templates. */
async function nodeOverhead(result, body, model) {
  mkdirSync(NODE_WORK, { recursive: true });
  const extra = ['--runtime', 'node', '--batching'];
  const now = wrap(model('cheap'), 'cheap', extra, ROOT, NODE_WORK);
  const before = wrap(model('cheap'), 'cheap-baseline', extra, baselineCli(NODE_BASELINE, true), NODE_WORK);
  nodeDeps(path.join(now, 'package.json'));
  const [b, n] = await withServices(pair(now, before, model('cheap')), (s) => overhead(s, body));
  result.node_baseline = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', NODE_BASELINE], {
    encoding: 'utf8',
  }).trim();
  result.node_overhead_classifier = { baseline: b, now: n };
  result.machine.load_at_end = loadavg();
}

async function main() {
  const costs = JSON.parse(
    execFileSync(PY, [path.join(HERE, 'image_models.py'), WORK], { encoding: 'utf8' }),
  );
  const photo = readFileSync(path.join(WORK, 'photo.jpg'));
  const body = multipart(photo, 'image/jpeg');
  const model = (name) => path.join(WORK, `${name}.onnx`);
  if (ONLY === 'node') {
    const result = { machine: { cpus: os.cpus().length, load_at_start: loadavg() }, model_cost_ms: costs };
    await nodeOverhead(result, body, model);
    console.log(JSON.stringify(result, null, 2));
    return writeFileSync(path.join(WORK, 'results-node.json'), `${JSON.stringify(result, null, 2)}\n`);
  }
  const base = ONLY === 'batching' ? undefined : baselineCli();
  const conv = wrap(model('conv'), 'conv', ['--max-batch-size', '32', '--max-latency-ms', '10']);
  const result = {
    machine: { cpus: os.cpus().length, load_at_start: loadavg() },
    baseline: execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', BASELINE], {
      encoding: 'utf8',
    }).trim(),
    model_cost_ms: costs,
    photo_bytes: photo.length,
  };
  if (ONLY !== 'batching') await overheads(result, body, model, base);
  if (ONLY === 'overhead') {
    result.machine.load_at_end = loadavg();
    console.log(JSON.stringify(result, null, 2));
    return writeFileSync(path.join(WORK, 'results-overhead.json'), `${JSON.stringify(result, null, 2)}\n`);
  }
  // Batching at c=32, off (BATCH_MAX_SIZE=1) and on, with the default (no spinning), measured in
  // the same alternating rounds as the spinning comparison.
  result.spinning = await spinning(conv, model('conv'), body);
  const pick = (size) => result.spinning.find((r) => !r.spinning && r.batch_max_size === size).c32;
  const [off, on] = [pick(1), pick(32)];
  result.batching_c32 = { off: off.rps, on: on.rps, speedup: +(on.rps / off.rps).toFixed(2) };
  result.machine.load_after_batching = loadavg();
  if (FLOOD > 0 && ONLY !== 'batching')
    result.flood_20mb = await flood(path.join(WORK, 'cheap'), model('cheap'));
  result.machine.load_at_end = loadavg();
  console.log(JSON.stringify(result, null, 2));
  writeFileSync(path.join(WORK, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
}

await main();
