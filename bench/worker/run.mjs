// Queue worker benchmark (not a test): 10,000 items of the serving benchmark's model (a 100-tree
// random forest, bench/serve/train.py) through
//   (a) the talk's loop, fixed: receive one, predict one, write one result, delete one
//       (talk_loop.py, boto3, model loaded once), and
//   (b) mlship's generated worker (python -m app.worker: batched receives, micro-batched
//       predictions, parallel writes, batched deletes),
// on the same queue server (ElasticMQ, the local stack's default) and the same object store
// (moto's S3), with the same number of processes. Reports items/s, items lost, peak memory of
// the processes, and the time from `jobs submit` to the first result on a warm worker.
//
//   npm run build && node bench/worker/run.mjs        # PROCESSES=2 ITEMS=10000 by default
//
// Needs Docker with mlship-local/elasticmq:1.6 (scripts/local-base-images.sh) and the repo's
// .venv (moto, scikit-learn, boto3, the serving stack).

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WORK = path.join(ROOT, 'bench/.work/worker');
const PY = path.join(ROOT, '.venv/bin/python');
const ITEMS = Number(process.env.ITEMS ?? 10_000);
const PROCESSES = Number(process.env.PROCESSES ?? 2);
const IMAGE = process.env.ELASTICMQ_IMAGE ?? 'mlship-local/elasticmq:1.6';
const BUCKET = 'bench';
// boto3 (the baseline) reads AWS_DEFAULT_REGION; the generated worker reads AWS_REGION.
const CREDS = {
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_REGION: 'us-east-1',
  AWS_DEFAULT_REGION: 'us-east-1',
};

const { createJobApis } = await import(path.join(ROOT, 'dist/adapters/aws/jobs-apis.js'));
const { submitItems } = await import(path.join(ROOT, 'dist/core/jobs/jobs.js'));
const { realClock } = await import(path.join(ROOT, 'dist/io/clock.js'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function waitFor(url, seconds) {
  for (let i = 0; i < seconds * 4; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await sleep(250);
  }
  throw new Error(`${url} did not answer`);
}

/** Peak resident memory (VmHWM) of a live process, in MiB. */
function peakMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

mkdirSync(WORK, { recursive: true });
console.error('training the serving benchmark models (reused when already trained)');
console.error(execFileSync(PY, [path.join(ROOT, 'bench/serve/train.py'), WORK], { encoding: 'utf8' }).trim());
// The first of the serving benchmark's families (train.py trains all three, once: they are reused).
const MODEL = path.join(WORK, 'forest.joblib');
const service = path.join(WORK, 'service');
execFileSync(
  process.execPath,
  [
    path.join(ROOT, 'bin/mlship.js'),
    'wrap',
    MODEL,
    '--example',
    path.join(WORK, 'forest.example.json'),
    '--out',
    service,
    '--force',
    '--max-batch-size',
    '64',
    '--max-latency-ms',
    '5',
  ],
  { stdio: 'ignore' },
);
const example = JSON.parse(readFileSync(path.join(WORK, 'forest.example.json'), 'utf8'));

const s3Port = await freePort();
const moto = spawn(path.join(ROOT, '.venv/bin/moto_server'), ['-p', String(s3Port)], { stdio: 'ignore' });
const sqsPort = await freePort();
const container = `mlship-bench-queue-${process.pid}`;
execFileSync('docker', ['run', '-d', '--rm', '--name', container, '-p', `127.0.0.1:${sqsPort}:9324`, IMAGE], {
  stdio: 'ignore',
});
const S3 = `http://127.0.0.1:${s3Port}`;
const SQS = `http://127.0.0.1:${sqsPort}`;
const children = new Set();
const cleanup = () => {
  for (const c of children) c.kill('SIGKILL');
  moto.kill('SIGTERM');
  try {
    execFileSync('docker', ['rm', '-f', container], { stdio: 'ignore' });
  } catch {}
};
process.on('exit', cleanup);

try {
  await waitFor(`${S3}/moto-api/`, 60);
  await waitFor(`${SQS}/?Action=ListQueues`, 180);
  await fetch(`${S3}/${BUCKET}`, { method: 'PUT' });
  const apis = await createJobApis({
    region: 'us-east-1',
    bucket: BUCKET,
    endpoints: { sqs: SQS, s3: S3 },
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  });
  const deps = { queue: apis.queue, store: apis.store, clock: realClock, log: () => {} };
  const makeQueue = async (name) => {
    const dlq = await apis.queue.ensureQueue({
      name: `${name}-dlq`,
      visibilityTimeoutSeconds: 60,
      retentionSeconds: 3600,
      encrypted: false,
      tags: {},
    });
    return (
      await apis.queue.ensureQueue({
        name,
        visibilityTimeoutSeconds: 60,
        retentionSeconds: 3600,
        deadLetter: { arn: dlq.arn, maxReceiveCount: 3 },
        encrypted: false,
        tags: {},
      })
    ).url;
  };
  const env = (queueName, queueUrl) => ({
    ...process.env,
    ...CREDS,
    QUEUE_NAME: queueName,
    QUEUE_URL: queueUrl,
    S3_BUCKET: BUCKET,
    S3_ENDPOINT_URL: S3,
    AWS_ENDPOINT_URL_SQS: SQS,
    MODEL_PATH: MODEL,
    PYTHONDONTWRITEBYTECODE: '1',
  });
  const items = Array.from({ length: ITEMS }, (_, i) => ({ id: String(i), line: i + 1, input: example }));

  async function runCase(name, start) {
    const queueName = `bench-${name}`;
    const url = await makeQueue(queueName);
    const procs = [];
    for (let i = 0; i < PROCESSES; i++) procs.push(await start(env(queueName, url), i));
    // Items are queued before the clock starts: both cases drain the same full queue.
    await submitItems(
      deps,
      {
        where: 'local',
        stack: 'bench',
        bucket: BUCKET,
        queueName: () => queueName,
        deadLetterName: () => `${queueName}-dlq`,
      },
      { items, input: name, service: 'bench', job: name },
    );
    const t0 = performance.now();
    let done = 0;
    const peak = new Map();
    for (;;) {
      const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
      if (dead)
        throw new Error(
          `${name}: a process exited (${dead.exitCode ?? dead.signalCode}): ${dead.stderrTail}`,
        );
      for (const p of procs) peak.set(p.pid, Math.max(peak.get(p.pid) ?? 0, peakMiB(p.pid)));
      done = (await apis.store.list(`jobs/${name}/results/`)).length;
      if (done >= ITEMS || performance.now() - t0 > 1_800_000) break;
      await sleep(1000);
    }
    const seconds = (performance.now() - t0) / 1000;
    for (const p of procs) {
      p.kill('SIGTERM');
      children.delete(p);
    }
    const lost = ITEMS - done;
    const row = {
      case: name,
      processes: PROCESSES,
      items: ITEMS,
      seconds: Math.round(seconds * 10) / 10,
      itemsPerSecond: Math.round((done / seconds) * 10) / 10,
      lost,
      peakMiBPerProcess: Math.round(Math.max(...peak.values())),
    };
    console.error(JSON.stringify(row));
    return row;
  }

  /** Keeps the last lines of a child's stderr, for the reason it died. */
  const watch = (p) => {
    p.stderrTail = '';
    p.stderr.on('data', (d) => {
      p.stderrTail = `${p.stderrTail}${d}`.slice(-2000);
    });
    children.add(p);
    return p;
  };
  const startLoop = async (e) => {
    const p = watch(
      spawn(PY, [path.join(ROOT, 'bench/worker/talk_loop.py'), MODEL], {
        env: e,
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    await sleep(3000); // loads the model (a second or two) before items arrive
    return p;
  };
  const startWorker = async (e) => {
    const port = await freePort();
    const p = watch(
      spawn(PY, ['-m', 'app.worker'], {
        cwd: service,
        env: { ...e, PORT: String(port) },
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    await waitFor(`http://127.0.0.1:${port}/readyz`, 120);
    return p;
  };
  const a = await runCase('talk-loop', startLoop);
  const b = await runCase('mlship-worker', startWorker);

  // Submit → first result, on a warm worker (model loaded, long-polling an empty queue).
  const warmQueue = 'bench-warm';
  const warmUrl = await makeQueue(warmQueue);
  const warm = await startWorker(env(warmQueue, warmUrl));
  await sleep(2000);
  const firsts = [];
  for (let round = 0; round < 5; round++) {
    const job = `warm-${round}`;
    const t0 = performance.now();
    await submitItems(
      deps,
      {
        where: 'local',
        stack: 'bench',
        bucket: BUCKET,
        queueName: () => warmQueue,
        deadLetterName: () => `${warmQueue}-dlq`,
      },
      { items: items.slice(0, 1), input: 'warm', service: 'bench', job },
    );
    while ((await apis.store.list(`jobs/${job}/results/`)).length === 0) await sleep(10);
    firsts.push(performance.now() - t0);
    await sleep(1500);
  }
  warm.kill('SIGTERM');
  firsts.sort((x, y) => x - y);
  const median = firsts[2];
  console.log(`| case | processes | items | seconds | items/s | lost | peak MiB per process |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|`);
  for (const r of [a, b])
    console.log(
      `| ${r.case} | ${r.processes} | ${r.items} | ${r.seconds} | ${r.itemsPerSecond} | ${r.lost} | ${r.peakMiBPerProcess} |`,
    );
  console.log(`\nthroughput (b)/(a): ${(b.itemsPerSecond / a.itemsPerSecond).toFixed(1)}x`);
  console.log(
    `submit → first result on a warm worker: median ${median.toFixed(0)} ms of 5 (${firsts.map((f) => f.toFixed(0)).join(', ')})`,
  );
  apis.destroy();
} finally {
  cleanup();
}
