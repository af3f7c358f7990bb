// mlship jobs, end to end against in-memory stand-ins for the queue and the store (the real ones,
// ElasticMQ and S3, are in test/docker/worker-queue.test.ts): resumable submits, large items by
// key, status, results in input order, retry from the dead-letter queue; CSV and JSONL items;
// the compose services of a stack with a worker (golden, and the compose-spec schema).

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { jobKeys, jobQueueName, SQS_MAX_BODY_BYTES } from '../../../src/config/job-queues.js';
import { generateCompose, renderComposeYaml } from '../../../src/core/compose/generate.js';
import type { JobQueue, JobStore, JobTarget } from '../../../src/core/jobs/deps.js';
import { csvRows, readItems } from '../../../src/core/jobs/inputs.js';
import { jobResults, jobStatus, retryJob, submitJob } from '../../../src/core/jobs/jobs.js';
import { fakeClock } from '../../../src/io/clock.js';
import { CORPUS } from '../../helpers/corpus.js';

class MemoryQueue implements JobQueue {
  queues = new Map<string, { id: number; body: string; hiddenUntil: number }[]>();
  next = 0;
  async queueUrl(name: string) {
    return this.queues.has(name) ? name : undefined;
  }
  async sendBatch(url: string, entries: { id: string; body: string }[]) {
    for (const e of entries) this.queues.get(url)!.push({ id: this.next++, body: e.body, hiddenUntil: 0 });
    return [];
  }
  async counts(url: string) {
    const q = this.queues.get(url)!;
    return {
      visible: q.filter((m) => !m.hiddenUntil).length,
      inFlight: q.filter((m) => m.hiddenUntil).length,
    };
  }
  async receive(url: string, max: number) {
    const free = this.queues
      .get(url)!
      .filter((m) => !m.hiddenUntil)
      .slice(0, max);
    for (const m of free) m.hiddenUntil = 1;
    return free.map((m) => ({ receipt: `${url}#${m.id}`, body: m.body }));
  }
  async deleteBatch(url: string, receipts: string[]) {
    const ids = new Set(receipts.map((r) => Number(r.split('#')[1])));
    this.queues.set(
      url,
      this.queues.get(url)!.filter((m) => !ids.has(m.id)),
    );
  }
  async release(url: string, receipts: string[]) {
    const ids = new Set(receipts.map((r) => Number(r.split('#')[1])));
    for (const m of this.queues.get(url)!) if (ids.has(m.id)) m.hiddenUntil = 0;
  }
}

class MemoryStore implements JobStore {
  objects = new Map<string, { value: unknown; at: number }>();
  clock = 0;
  async putJson(key: string, value: unknown) {
    this.clock += 1000;
    this.objects.set(key, { value: JSON.parse(JSON.stringify(value)), at: this.clock });
  }
  async getJson<T>(key: string) {
    return this.objects.get(key)?.value as T | undefined;
  }
  async list(prefix: string) {
    return [...this.objects]
      .filter(([k]) => k.startsWith(prefix))
      .map(([key, o]) => ({ key, lastModified: o.at }));
  }
  async delete(key: string) {
    this.objects.delete(key);
  }
}

const target: JobTarget = {
  where: 'local',
  stack: 'shop',
  bucket: 'models',
  queueName: (s) => jobQueueName('shop', s),
  deadLetterName: (s) => `${jobQueueName('shop', s)}-dlq`,
};

function setup() {
  const queue = new MemoryQueue();
  queue.queues.set(target.queueName('iris'), []);
  queue.queues.set(target.deadLetterName('iris'), []);
  const store = new MemoryStore();
  return { queue, store, deps: { queue, store, clock: fakeClock(1000), log: () => undefined } };
}

function file(name: string, text: string): string {
  const p = path.join(mkdtempSync(path.join(os.tmpdir(), 'mlship-jobs-')), name);
  writeFileSync(p, text);
  return p;
}

/** What the worker does for one message: the result (or a failure record), then the delete. */
async function work(env: ReturnType<typeof setup>, fail: (input: { x: number }) => boolean = () => false) {
  const url = target.queueName('iris');
  for (;;) {
    const got = await env.queue.receive(url, 10);
    if (!got.length) return;
    for (const m of got) {
      const body = JSON.parse(m.body) as {
        job: string;
        item: string;
        input?: { x: number };
        input_key?: string;
      };
      const input = body.input ?? (await env.store.getJson<{ x: number }>(body.input_key!))!;
      if (fail(input)) {
        await env.store.putJson(jobKeys(body.job).failure(body.item), {
          job: body.job,
          item: body.item,
          error: { type: 'ValueError', message: 'bad' },
          attempts: 3,
          final: true,
          dead_letter: true,
        });
        await env.queue.deleteBatch(url, [m.receipt]);
        env.queue.queues
          .get(target.deadLetterName('iris'))!
          .push({ id: env.queue.next++, body: m.body, hiddenUntil: 0 });
        continue;
      }
      await env.store.putJson(jobKeys(body.job).result(body.item), { output: input.x * 2 });
      await env.queue.deleteBatch(url, [m.receipt]);
    }
  }
}

describe('mlship jobs (core)', () => {
  const inputs = file('in.jsonl', `${[1, 2, 3, 4, 5].map((x) => JSON.stringify({ x })).join('\n')}\n`);

  it('submit sends one message per item and a manifest; the same submit again sends only items without a result', async () => {
    const env = setup();
    const first = await submitJob(env.deps, target, { file: inputs, service: 'iris' });
    expect(first).toMatchObject({ items: 5, sent: 5, alreadyDone: 0, byKey: 0 });
    expect(first.job).toMatch(/^iris-[0-9a-f]{12}$/);
    expect((await env.queue.counts(target.queueName('iris'))).visible).toBe(5);
    const bodies = env.queue.queues.get(target.queueName('iris'))!.map((m) => JSON.parse(m.body));
    expect(bodies[0]).toEqual({ job: first.job, item: '0', input: { x: 1 } });
    // Three items done, the queue lost the rest (say, purged): the re-run sends those two only.
    await env.store.putJson(jobKeys(first.job).result('0'), { output: 2 });
    await env.store.putJson(jobKeys(first.job).result('1'), { output: 4 });
    await env.store.putJson(jobKeys(first.job).result('3'), { output: 8 });
    env.queue.queues.set(target.queueName('iris'), []);
    const again = await submitJob(env.deps, target, { file: inputs, service: 'iris' });
    expect(again).toMatchObject({ job: first.job, sent: 2, alreadyDone: 3 });
    const resent = env.queue.queues.get(target.queueName('iris'))!.map((m) => JSON.parse(m.body).item);
    expect(resent).toEqual(['2', '4']);
    const manifest = await env.store.getJson<{ submissions: unknown[]; items: number }>(
      jobKeys(first.job).manifest,
    );
    expect(manifest?.items).toBe(5);
    expect(manifest?.submissions).toHaveLength(2);
  });

  it('an item over the message size limit goes by object key', async () => {
    const env = setup();
    const big = file(
      'big.jsonl',
      `${JSON.stringify({ x: 1, pad: 'y'.repeat(SQS_MAX_BODY_BYTES) })}\n{"x": 2}\n`,
    );
    const r = await submitJob(env.deps, target, { file: big, service: 'iris', job: 'big' });
    expect(r.byKey).toBe(1);
    const bodies = env.queue.queues.get(target.queueName('iris'))!.map((m) => JSON.parse(m.body));
    expect(bodies[0]).toEqual({ job: 'big', item: '0', input_key: 'jobs/big/inputs/0.json' });
    expect(bodies[1]).toEqual({ job: 'big', item: '1', input: { x: 2 } });
    expect((await env.store.getJson<{ x: number }>('jobs/big/inputs/0.json'))?.x).toBe(1);
  });

  it('status, results in input order with failures and their reasons, and retry from the dead-letter queue', async () => {
    const env = setup();
    const { job } = await submitJob(env.deps, target, { file: inputs, service: 'iris' });
    await work(env, (input) => input.x === 3);
    const status = await jobStatus(env.deps, target, job);
    expect(status).toMatchObject({
      items: 5,
      done: 4,
      failed: 1,
      deadLettered: 1,
      pending: 0,
      complete: true,
    });
    expect(status.queue).toEqual({ visible: 0, inFlight: 0, deadLetter: 1 });
    expect(status.ratePerSecond).toBeGreaterThan(0); // from the results' times (the store's clock)
    const out = file('out.jsonl', '');
    const results = await jobResults(env.deps, job, out);
    expect(results).toMatchObject({ done: 4, failed: 1, pending: 0 });
    expect(results.failures).toEqual([
      { item: '2', type: 'ValueError', message: 'bad', attempts: 3, deadLetter: true },
    ]);
    expect(
      readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { item: '0', output: 2 },
      { item: '1', output: 4 },
      { item: '2', error: { type: 'ValueError', message: 'bad' }, attempts: 3 },
      { item: '3', output: 8 },
      { item: '4', output: 10 },
    ]);
    // Another job's dead letter stays; this job's goes back, its failure record with it.
    env.queue.queues.get(target.deadLetterName('iris'))!.push({
      id: env.queue.next++,
      body: JSON.stringify({ job: 'other', item: '0', input: { x: 0 } }),
      hiddenUntil: 0,
    });
    const retried = await retryJob(env.deps, target, job);
    expect(retried).toEqual({ job, moved: 1, leftForOtherJobs: 1 });
    expect(await env.store.getJson(jobKeys(job).failure('2'))).toBeUndefined();
    expect((await env.queue.counts(target.deadLetterName('iris'))).visible).toBe(1);
    await work(env); // fixed: it succeeds now
    expect(await jobStatus(env.deps, target, job)).toMatchObject({ done: 5, failed: 0, complete: true });
  });

  it('an unknown job, a missing queue and a bad job id are usage errors that say what to do', async () => {
    const env = setup();
    await expect(jobStatus(env.deps, target, 'nope')).rejects.toThrow(/no job nope/);
    await expect(jobStatus(env.deps, target, '../x')).rejects.toThrow(/invalid job id/);
    await expect(submitJob(env.deps, target, { file: inputs, service: 'other' })).rejects.toThrow(
      /there is no queue shop-other-jobs/,
    );
  });
});

describe('items of a job', () => {
  it('CSV rows with a header become objects, numbers as numbers, quoted fields kept whole', async () => {
    const items = await readItems(file('rows.csv', 'name,x\n"a, b",1.5\nc,2\n'));
    expect(items.map((i) => i.input)).toEqual([
      { name: 'a, b', x: 1.5 },
      { name: 'c', x: 2 },
    ]);
    expect(csvRows('a,"say ""hi"""\r\n1,2')).toEqual([
      ['a', 'say "hi"'],
      ['1', '2'],
    ]);
  });

  it('a line that is not JSON is an error at its line', async () => {
    await expect(readItems(file('bad.jsonl', '{"x": 1}\n{oops\n'))).rejects.toThrow(
      /bad\.jsonl:2: not a JSON value/,
    );
  });
});

describe('compose: the queue server and a worker beside the service', () => {
  const FIXTURE = 'fixtures/compose/jobs';

  it('golden: compose.yaml of a stack with a worker', async () => {
    const r = await generateCompose({ configFile: `${FIXTURE}/mlship.yaml`, force: false, dryRun: true });
    const yaml = renderComposeYaml(r.stack);
    const golden = path.join(FIXTURE, 'expected', 'compose.yaml');
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, yaml);
    expect(yaml).toBe(readFileSync(golden, 'utf8'));
    const worker = r.stack.compose.services['iris-worker']!;
    expect(worker.command).toEqual(['python', '-m', 'app.worker']);
    expect(worker.image).toBe(r.stack.compose.services.iris!.image);
    expect(worker.build).toBeUndefined();
    expect(worker.environment).toMatchObject({
      QUEUE_NAME: 'jobs-iris-jobs',
      AWS_ENDPOINT_URL_SQS: 'http://queue:9324',
      WORKER_BATCH_SIZE: '64',
      S3_BUCKET: 'models',
    });
    expect(worker.depends_on).toMatchObject({
      queue: { condition: 'service_healthy' },
      storage: { condition: 'service_healthy' },
    });
    expect(r.stack.compose.services.queue?.ports).toEqual(['127.0.0.1:9324:9324']);
  });

  it('validates against the official compose-spec JSON schema', async () => {
    const schemaFile = path.join(CORPUS, 'schema', 'compose-spec.json');
    let schema: Record<string, unknown>;
    try {
      schema = JSON.parse(readFileSync(schemaFile, 'utf8'));
    } catch {
      if (process.env.CI) throw new Error(`CI is set but ${schemaFile} is missing`);
      console.warn(`skipping: ${schemaFile} is missing (../shared/corpus)`);
      return;
    }
    const { $schema: _meta, ...rest } = schema;
    const validate = new Ajv({ allErrors: true, strict: false }).compile(rest);
    const r = await generateCompose({ configFile: `${FIXTURE}/mlship.yaml`, force: false, dryRun: true });
    expect(validate(parse(renderComposeYaml(r.stack))), JSON.stringify(validate.errors)).toBe(true);
  });
});
