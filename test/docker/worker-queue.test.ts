// The queue worker against a real queue and real object storage: ElasticMQ (the local stack's
// default queue server, built by scripts/local-base-images.sh) and moto's S3. The workers are the
// generated service's own `python -m app.worker`, run from the host's .venv, so killing one is a
// plain SIGKILL. The model is fixtures/wrap/slow-entry's function (x + 1; x < 0 raises; `delay`
// sleeps) with a line appended per execution, so duplicate executions can be counted.
//
// One queue server and one store for the whole file; each test uses its own queue.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobApis } from '../../src/adapters/aws/jobs-apis.js';
import { jobKeys } from '../../src/config/job-queues.js';
import type { JobTarget } from '../../src/core/jobs/deps.js';
import { type FailureRecord, retryJob, submitItems, waitForJob } from '../../src/core/jobs/jobs.js';
import { runWrap } from '../../src/core/wrap/wrap.js';
import { realClock } from '../../src/io/clock.js';
import { CI, dockerCli, requireEngine, requireImage } from '../helpers/docker.js';
import { FAKE_CREDENTIALS, type Moto, startMoto } from '../helpers/moto.js';
import { freePort } from '../helpers/net.js';

const EMQ_IMAGE = process.env.MLSHIP_TEST_ELASTICMQ_IMAGE ?? 'mlship-local/elasticmq:1.6';
const RUN = `wq${Date.now().toString(36)}`;
const BUCKET = 'jobs-test';
const PYTHON = path.resolve('.venv/bin/python');

const engine = await requireEngine();
if (!existsSync(PYTHON) && CI) throw new Error('CI is set but .venv/bin/python is missing');

let moto: Moto | undefined;
let sqsEndpoint = '';
let serviceDir = '';
let entryDir = '';
let executions = '';
let apis: Awaited<ReturnType<typeof createJobApis>>;
const workers = new Set<ChildProcess>();

function target(queue: string): JobTarget {
  return {
    where: 'local',
    stack: 'test',
    bucket: BUCKET,
    queueName: () => queue,
    deadLetterName: () => `${queue}-dlq`,
  };
}

async function makeQueue(name: string, visibility: number, maxReceives = 3): Promise<string> {
  const dlq = await apis.queue.ensureQueue({
    name: `${name}-dlq`,
    visibilityTimeoutSeconds: visibility,
    retentionSeconds: 3600,
    encrypted: false,
    tags: {},
  });
  const q = await apis.queue.ensureQueue({
    name,
    visibilityTimeoutSeconds: visibility,
    retentionSeconds: 3600,
    deadLetter: { arn: dlq.arn, maxReceiveCount: maxReceives },
    encrypted: false,
    tags: {},
  });
  return q.url;
}

async function startWorker(queue: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const port = await freePort();
  const child = spawn(PYTHON, ['-m', 'app.worker'], {
    cwd: serviceDir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      PYTHONDONTWRITEBYTECODE: '1',
      ...FAKE_CREDENTIALS,
      AWS_REGION: 'us-east-1',
      QUEUE_NAME: queue,
      S3_BUCKET: BUCKET,
      S3_ENDPOINT_URL: moto!.endpoint,
      AWS_ENDPOINT_URL_SQS: sqsEndpoint,
      PORT: String(port),
      RECEIVE_WAIT_SECONDS: '2',
      RETRY_BASE_SECONDS: '0',
      WORKER_BATCH_SIZE: '32',
      EXECUTIONS_LOG: executions,
      ...env,
    },
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr = `${stderr}${d}`.slice(-4000);
  });
  child.once('exit', () => workers.delete(child));
  workers.add(child);
  // Ready: the model answered its warm-up (the probes listen on PORT).
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return child;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`worker exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`worker not ready: ${stderr}`);
}

const exited = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve(c.exitCode)
    : new Promise<number | null>((r) => c.once('exit', (code) => r(code)));

async function stopAll(): Promise<void> {
  await Promise.all(
    [...workers].map(async (w) => {
      w.kill('SIGKILL');
      await exited(w);
    }),
  );
}

const items = (n: number, input: (i: number) => unknown) =>
  Array.from({ length: n }, (_, i) => ({ id: String(i), line: i + 1, input: input(i) }));

const deps = () => ({ queue: apis.queue, store: apis.store, clock: realClock, log: () => undefined });

describe.skipIf(!engine || !existsSync(PYTHON))('queue worker on ElasticMQ and S3 (moto)', () => {
  beforeAll(async () => {
    await requireImage(engine!, EMQ_IMAGE);
    moto = await startMoto();
    if (!moto) return;
    const port = await freePort();
    dockerCli([
      'run',
      '-d',
      '--rm',
      '--name',
      `mlship-${RUN}-queue`,
      '--label',
      'dev.mlship.managed=true',
      '--label',
      `dev.mlship.run=${RUN}`,
      '-p',
      `127.0.0.1:${port}:9324`,
      EMQ_IMAGE,
    ]);
    sqsEndpoint = `http://127.0.0.1:${port}`;
    // A JVM on a busy 2-core machine: up to two minutes.
    for (let i = 0; i < 240; i++) {
      try {
        if ((await fetch(`${sqsEndpoint}/?Action=ListQueues`)).ok) break;
      } catch {
        // starting
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    apis = await createJobApis({
      region: 'us-east-1',
      bucket: BUCKET,
      endpoints: { sqs: sqsEndpoint, s3: moto.endpoint },
      credentials: {
        accessKeyId: FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID,
        secretAccessKey: FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
      },
    });
    await fetch(`${moto.endpoint}/${BUCKET}`, { method: 'PUT' });
    serviceDir = mkdtempSync(path.join(os.tmpdir(), 'mlship-worker-'));
    // slow-entry's function, counting its executions (O_APPEND lines stay whole, whoever writes).
    const entry = mkdtempSync(path.join(os.tmpdir(), 'mlship-worker-entry-'));
    entryDir = entry;
    executions = path.join(entry, 'executions.log');
    const slow = readFileSync('fixtures/wrap/slow-entry/predict.py', 'utf8');
    writeFileSync(
      path.join(entry, 'predict.py'),
      [
        slow.replace('def predict(payload: dict) -> float:', 'def _predict(payload: dict) -> float:'),
        '',
        'def predict(payload: dict) -> float:',
        '    import os',
        '',
        '    with open(os.environ["EXECUTIONS_LOG"], "a") as log:',
        '        log.write(f"{payload[\'x\']}\\n")',
        '    return _predict(payload)',
        '',
      ].join('\n'),
    );
    // x = 0.5: the warm-ups' executions are told apart from the items' (whole numbers; the
    // request model makes x a float, so item 7 is logged as 7.0).
    writeFileSync(path.join(entry, 'example.json'), JSON.stringify({ x: 0.5, delay: 0 }));
    await runWrap({
      cwd: process.cwd(),
      entry: path.join(entry, 'predict.py:predict'),
      out: serviceDir,
      force: false,
      dryRun: false,
    });
  }, 300_000);

  afterAll(async () => {
    await stopAll();
    apis?.destroy();
    dockerCli(['rm', '-f', `mlship-${RUN}-queue`]);
    await moto?.stop();
    if (serviceDir) rmSync(serviceDir, { recursive: true, force: true });
    if (entryDir) rmSync(entryDir, { recursive: true, force: true });
  }, 60_000);

  it('10,000 items while workers are killed with SIGKILL five times: every item ends with exactly one result object', {
    timeout: 600_000,
  }, async () => {
    const queue = 'kill-test';
    await makeQueue(queue, 10);
    await Promise.all([startWorker(queue), startWorker(queue)]);
    const t0 = Date.now();
    const job = 'kill-10k';
    await submitItems(deps(), target(queue), {
      items: items(10_000, (i) => ({ x: i, delay: 0 })),
      input: 'kill test',
      service: 'slow',
      job,
    });
    // Five kills at random moments while the job runs; each killed worker is replaced.
    let kills = 0;
    while (kills < 5) {
      await new Promise((r) => setTimeout(r, 500 + Math.random() * 2500));
      const victims = [...workers];
      const victim = victims[Math.floor(Math.random() * victims.length)]!;
      victim.kill('SIGKILL');
      await exited(victim);
      kills++;
      await startWorker(queue);
    }
    const status = await waitForJob(deps(), target(queue), job, { timeoutSeconds: 420, pollMs: 5000 });
    const seconds = (Date.now() - t0) / 1000;
    expect(status.done).toBe(10_000);
    expect(status.failed).toBe(0);
    // Exactly one result object per item, and nothing else under results/.
    const keys = await apis.store.list(jobKeys(job).results);
    const ids = new Set(keys.map((k) => k.key.slice(jobKeys(job).results.length, -'.json'.length)));
    expect(keys.length).toBe(10_000);
    const missing = Array.from({ length: 10_000 }, (_, i) => String(i)).filter((i) => !ids.has(i));
    expect(missing).toEqual([]);
    const sample = await apis.store.getJson<{ output: number }>(jobKeys(job).result('4321'));
    expect(sample?.output).toBe(4322);
    // A line per execution (the warm-ups' example, x = 0.5, aside): lines beyond one per item are
    // items that ran again after a kill caught them between their write and their delete.
    const ran = readFileSync(executions, 'utf8')
      .split('\n')
      .filter((l) => /^\d+(\.0)?$/.test(l))
      .map((l) => String(Number(l)));
    expect(new Set(ran).size).toBe(10_000);
    const duplicates = ran.length - 10_000;
    console.log(
      `worker kill test: 10,000 items, 5 SIGKILLs, ${seconds.toFixed(1)} s, 0 missing, ${duplicates} duplicate execution(s)`,
    );
    expect(duplicates).toBeGreaterThanOrEqual(0);
    await stopAll();
  });

  it('a poison item reaches the dead-letter queue after max_receive_count receives; jobs retry brings it back', {
    timeout: 180_000,
  }, async () => {
    const queue = 'poison-test';
    const url = await makeQueue(queue, 5, 3);
    await startWorker(queue);
    const job = 'poison';
    await submitItems(deps(), target(queue), {
      items: items(6, (i) => ({ x: i === 2 ? -1 : i, delay: 0 })),
      input: 'poison test',
      service: 'slow',
      job,
    });
    const status = await waitForJob(deps(), target(queue), job, { timeoutSeconds: 120, pollMs: 500 });
    expect(status.done).toBe(5);
    expect(status.failed).toBe(1);
    const record = await apis.store.getJson<FailureRecord>(jobKeys(job).failure('2'));
    expect(record).toMatchObject({
      error: { type: 'ValueError', message: 'negative input' },
      attempts: 3,
      final: true,
      dead_letter: true,
    });
    // SQS moves it on the receive after the last allowed one.
    const dlq = (await apis.queue.queueUrl(`${queue}-dlq`))!;
    await until(async () => (await apis.queue.counts(dlq)).visible === 1, 60_000);
    expect((await apis.queue.counts(url)).visible).toBe(0);
    await stopAll();
    const moved = await retryJob(deps(), target(queue), job);
    expect(moved).toEqual({ job, moved: 1, leftForOtherJobs: 0 });
    expect(await apis.store.getJson(jobKeys(job).failure('2'))).toBeUndefined();
    // Back in the queue (a long poll the killed worker left open may hold it for its visibility timeout).
    const back = await apis.queue.counts(url);
    expect(back.visible + back.inFlight).toBe(1);
    expect((await apis.queue.counts(dlq)).visible).toBe(0);
  });

  it('SIGTERM in the middle of a batch: the batch is finished, the items it held are visible again within 5 s', {
    timeout: 180_000,
  }, async () => {
    const queue = 'sigterm-test';
    const url = await makeQueue(queue, 60);
    const job = 'sigterm';
    await submitItems(deps(), target(queue), {
      items: items(10, (i) => ({ x: i, delay: 1.5 })),
      input: 'sigterm test',
      service: 'slow',
      job,
    });
    // Batches of 2 slow items (3 s each batch); it holds up to 4 messages.
    const worker = await startWorker(queue, { WORKER_BATCH_SIZE: '2', WORKER_PREFETCH: '4' });
    await until(async () => (await apis.queue.counts(url)).inFlight === 4, 30_000);
    await new Promise((r) => setTimeout(r, 500)); // mid-batch
    const t0 = Date.now();
    worker.kill('SIGTERM');
    // Everything but the batch in hand is back (visibility 60 s: only a release makes it visible).
    await until(async () => (await apis.queue.counts(url)).visible >= 8, 5_000);
    const released = (Date.now() - t0) / 1000;
    expect(await exited(worker)).toBe(0);
    const done = await apis.store.list(jobKeys(job).results);
    expect(done.length).toBe(2); // the batch in hand was finished and written
    expect((await apis.queue.counts(url)).visible + done.length).toBe(10);
    console.log(`sigterm test: held items visible again ${released.toFixed(2)} s after SIGTERM`);
    // A new worker finishes the job.
    await startWorker(queue, { WORKER_BATCH_SIZE: '8' });
    const status = await waitForJob(deps(), target(queue), job, { timeoutSeconds: 90, pollMs: 500 });
    expect(status.done).toBe(10);
    await stopAll();
  });

  it('malformed bodies, a missing input object, an input over the limit: failure records, no crash', {
    timeout: 120_000,
  }, async () => {
    const queue = 'malformed-test';
    const url = await makeQueue(queue, 30);
    const worker = await startWorker(queue, { MAX_INPUT_BYTES: '2048' });
    const job = 'mal';
    await apis.store.putJson(jobKeys(job).input('2'), { x: 1, delay: 0, padding: 'x'.repeat(4096) });
    const bodies = [
      'this is not JSON',
      JSON.stringify({ job, item: '1', input_key: jobKeys(job).input('missing') }),
      JSON.stringify({ job, item: '2', input_key: jobKeys(job).input('2') }),
      JSON.stringify({ job, item: '3', input: { y: 1 } }),
      JSON.stringify({ job, item: '4', input: { x: 41, delay: 0 } }),
    ];
    expect(
      await apis.queue.sendBatch(
        url,
        bodies.map((body, i) => ({ id: String(i), body })),
      ),
    ).toEqual([]);
    await until(async () => (await apis.store.list(jobKeys(job).results)).length === 1, 60_000);
    await until(async () => (await apis.store.list(jobKeys(job).failures)).length === 3, 30_000);
    const failure = async (item: string) =>
      (await apis.store.getJson<FailureRecord>(jobKeys(job).failure(item)))!;
    expect((await failure('1')).error.type).toBe('InputMissing');
    expect((await failure('2')).error.type).toBe('InputTooLarge');
    expect((await failure('3')).error.type).toBe('InvalidInput');
    for (const item of ['1', '2', '3']) expect((await failure(item)).final).toBe(true);
    expect((await apis.store.list('jobs/_unreadable/')).length).toBeGreaterThanOrEqual(1);
    expect((await apis.store.getJson<{ output: number }>(jobKeys(job).result('4')))?.output).toBe(42);
    // Nothing is left to retry: each failed at once, and the worker is still running.
    await until(async () => {
      const c = await apis.queue.counts(url);
      return c.visible === 0 && c.inFlight === 0;
    }, 30_000);
    expect(worker.exitCode).toBeNull();
    await stopAll();
  });
});

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
