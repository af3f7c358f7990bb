// `mlship jobs submit|status|results|retry`: batch predictions through a service's queue
// worker. A job is a manifest and one message per item; the worker writes one result (or
// failure record) object per item (config/job-queues.ts has the layout). Everything a job
// is lives in the queue and the bucket, so any machine with access can follow it, and a
// submit that is run again sends only the items that have no result yet.

import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jobKeys, SQS_MAX_BODY_BYTES } from '../../config/job-queues.js';
import { OperationFailedError, UsageError } from '../../io/errors.js';
import type { JobsDeps, JobTarget } from './deps.js';
import { type Item, readItems } from './inputs.js';

export interface JobManifest {
  job: string;
  service: string;
  queue: string;
  items: number;
  input: string;
  createdAt: number;
  submissions: { at: number; sent: number; byKey: number }[];
}

/** What the worker writes for an item that failed (templates/wrap/python/app/worker.py). */
export interface FailureRecord {
  job: string;
  item: string;
  error: { type: string; message: string };
  attempts: number;
  final: boolean;
  dead_letter?: boolean;
}

export interface SubmitResult {
  job: string;
  service: string;
  where: string;
  items: number;
  sent: number;
  /** Items that already had a result (a re-run of the same submit). */
  alreadyDone: number;
  /** Items too large for a message body, sent by object key. */
  byKey: number;
}

export interface JobStatus {
  job: string;
  service: string;
  where: string;
  items: number;
  done: number;
  /** Failed for good (final failure record, no result). */
  failed: number;
  /** Of those, the items that went to the dead-letter queue (`jobs retry` brings them back). */
  deadLettered: number;
  /** Failed at least once, will be tried again. */
  retrying: number;
  pending: number;
  complete: boolean;
  /** The queue as a whole (SQS cannot count one job's messages). */
  queue: { visible: number; inFlight: number; deadLetter: number };
  ratePerSecond?: number;
  etaSeconds?: number;
}

const SEND_CONCURRENCY = 8;
const READ_CONCURRENCY = 16;

/** A stable job id: the service and the items, so running the same submit again resumes it. */
export function jobIdFor(service: string, items: Item[]): string {
  const hash = createHash('sha256');
  hash.update(service);
  for (const item of items) hash.update(`\n${JSON.stringify(item.input)}`);
  return `${service}-${hash.digest('hex').slice(0, 12)}`;
}

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkJobId(job: string): string {
  if (!JOB_ID.test(job)) {
    throw new UsageError(`invalid job id ${JSON.stringify(job)}`, {
      hint: 'a job id is letters, digits, ".", "_" and "-" (at most 128), as `mlship jobs submit` prints it',
    });
  }
  return job;
}

async function queueUrlOf(deps: JobsDeps, name: string, where: string): Promise<string> {
  const url = await deps.queue.queueUrl(name);
  if (!url) {
    throw new UsageError(`there is no queue ${name} (${where})`, {
      hint:
        where === 'local'
          ? 'add `worker: {}` to the service and `queue: {}` to mlship.yaml, then `mlship compose up`'
          : 'add `worker: {}` to the service and `queue: {}` to mlship.yaml, then `mlship deploy ecs --apply`',
    });
  }
  return url;
}

/** Runs `fn` over `values`, at most `limit` at a time, in order of the results. */
export async function mapLimit<T, R>(values: T[], limit: number, fn: (v: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(values.length);
  let next = 0;
  const run = async () => {
    while (next < values.length) {
      const i = next++;
      out[i] = await fn(values[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, values.length) }, run));
  return out;
}

function idsUnder(prefix: string, keys: { key: string }[]): Set<string> {
  return new Set(keys.map((k) => k.key.slice(prefix.length).replace(/\.json$/, '')));
}

/** The message body of an item: inline when it fits SQS's limit, else its input goes by key. */
async function bodyOf(deps: JobsDeps, job: string, item: Item): Promise<{ body: string; byKey: boolean }> {
  const body = JSON.stringify({ job, item: item.id, input: item.input });
  // Headroom under SQS's limit for the message's own attributes.
  if (Buffer.byteLength(body) <= SQS_MAX_BODY_BYTES - 1024) return { body, byKey: false };
  const key = jobKeys(job).input(item.id);
  await deps.store.putJson(key, item.input);
  return { body: JSON.stringify({ job, item: item.id, input_key: key }), byKey: true };
}

export async function submitJob(
  deps: JobsDeps,
  target: JobTarget,
  options: { file: string; service: string; job?: string },
): Promise<SubmitResult> {
  const items = await readItems(options.file);
  return submitItems(deps, target, { ...options, items, input: path.basename(options.file) });
}

/** Sends the items that have no result yet, and records the job's manifest. */
export async function submitItems(
  deps: JobsDeps,
  target: JobTarget,
  options: { items: Item[]; input: string; service: string; job?: string },
): Promise<SubmitResult> {
  const { items } = options;
  const job = checkJobId(options.job ?? jobIdFor(options.service, items));
  const queueName = target.queueName(options.service);
  const url = await queueUrlOf(deps, queueName, target.where);
  const keys = jobKeys(job);
  const done = idsUnder(keys.results, await deps.store.list(keys.results));
  const todo = items.filter((i) => !done.has(i.id));
  const before = await deps.store.getJson<JobManifest>(keys.manifest);
  if (before && before.service !== options.service) {
    throw new UsageError(`job ${job} belongs to service ${before.service}, not ${options.service}`);
  }
  let byKey = 0;
  let sent = 0;
  const batches: Item[][] = [];
  for (let i = 0; i < todo.length; i += 10) batches.push(todo.slice(i, i + 10));
  await mapLimit(batches, SEND_CONCURRENCY, async (batch) => {
    const entries = await Promise.all(
      batch.map(async (item) => {
        const b = await bodyOf(deps, job, item);
        if (b.byKey) byKey++;
        return { id: item.id, body: b.body };
      }),
    );
    let refused = await deps.queue.sendBatch(url, entries);
    if (refused.length) {
      // A batch entry SQS refused (throttling, a transient error) is sent once more on its own.
      const again = entries.filter((e) => refused.some((r) => r.id === e.id));
      refused = await deps.queue.sendBatch(url, again);
    }
    if (refused.length) {
      throw new OperationFailedError(
        'JOB_SEND_FAILED',
        `the queue refused ${refused.length} item(s) of job ${job}`,
        {
          details: refused.slice(0, 10).map((r) => `item ${r.id}: ${r.reason}`),
          hint: 'run the same submit again: it sends only the items that have no result',
        },
      );
    }
    sent += entries.length;
    deps.progress?.('sending', sent, todo.length);
  });
  const manifest: JobManifest = {
    job,
    service: options.service,
    queue: queueName,
    items: items.length,
    input: options.input,
    createdAt: before?.createdAt ?? deps.clock.now(),
    submissions: [...(before?.submissions ?? []), { at: deps.clock.now(), sent, byKey }],
  };
  await deps.store.putJson(keys.manifest, manifest);
  return {
    job,
    service: options.service,
    where: target.where,
    items: items.length,
    sent,
    alreadyDone: items.length - todo.length,
    byKey,
  };
}

async function manifestOf(deps: JobsDeps, job: string): Promise<JobManifest> {
  const manifest = await deps.store.getJson<JobManifest>(jobKeys(checkJobId(job)).manifest);
  if (!manifest) {
    throw new UsageError(`no job ${job} in this stack's storage`, {
      hint: 'the id is the one `mlship jobs submit` printed; local jobs and AWS jobs live apart (--aws)',
    });
  }
  return manifest;
}

/** Failure records of items without a result (a record is stale once its item succeeded). */
async function openFailures(deps: JobsDeps, job: string, done: Set<string>): Promise<FailureRecord[]> {
  const keys = jobKeys(job);
  const listed = [...idsUnder(keys.failures, await deps.store.list(keys.failures))].filter(
    (id) => !done.has(id),
  );
  const records = await mapLimit(listed, READ_CONCURRENCY, (id) =>
    deps.store.getJson<FailureRecord>(keys.failure(id)),
  );
  return records.filter((r): r is FailureRecord => r !== undefined);
}

export async function jobStatus(deps: JobsDeps, target: JobTarget, job: string): Promise<JobStatus> {
  const manifest = await manifestOf(deps, job);
  const keys = jobKeys(job);
  const results = await deps.store.list(keys.results);
  const done = idsUnder(keys.results, results);
  const failures = await openFailures(deps, job, done);
  const failed = failures.filter((f) => f.final);
  const [url, dlqUrl] = await Promise.all([
    deps.queue.queueUrl(target.queueName(manifest.service)),
    deps.queue.queueUrl(target.deadLetterName(manifest.service)),
  ]);
  const counts = url ? await deps.queue.counts(url) : { visible: 0, inFlight: 0 };
  const dead = dlqUrl ? await deps.queue.counts(dlqUrl) : { visible: 0, inFlight: 0 };
  const pending = manifest.items - done.size - failed.length;
  const times = results.map((r) => r.lastModified).sort((a, b) => a - b);
  const span = times.length > 1 ? (times[times.length - 1]! - times[0]!) / 1000 : 0;
  const rate = span > 0 ? (times.length - 1) / span : undefined;
  return {
    job,
    service: manifest.service,
    where: target.where,
    items: manifest.items,
    done: done.size,
    failed: failed.length,
    deadLettered: failed.filter((f) => f.dead_letter).length,
    retrying: failures.length - failed.length,
    pending: Math.max(0, pending),
    complete: pending <= 0,
    queue: { visible: counts.visible, inFlight: counts.inFlight, deadLetter: dead.visible + dead.inFlight },
    ...(rate ? { ratePerSecond: Math.round(rate * 10) / 10 } : {}),
    ...(rate && pending > 0 ? { etaSeconds: Math.ceil(pending / rate) } : {}),
  };
}

/** Polls the job's status until every item has a result or a final failure. */
export async function waitForJob(
  deps: JobsDeps,
  target: JobTarget,
  job: string,
  options: { timeoutSeconds: number; pollMs?: number },
): Promise<JobStatus> {
  const deadline = deps.clock.monotonic() + options.timeoutSeconds * 1000;
  for (;;) {
    const status = await jobStatus(deps, target, job);
    deps.progress?.('done', status.done + status.failed, status.items);
    if (status.complete) return status;
    if (deps.clock.monotonic() > deadline) {
      throw new OperationFailedError(
        'JOB_TIMEOUT',
        `job ${job}: ${status.pending} of ${status.items} item(s) still pending after ${options.timeoutSeconds} s`,
        {
          hint: `nothing is lost: \`mlship jobs status ${job}\` follows it, \`mlship jobs results ${job}\` collects it`,
        },
      );
    }
    await deps.clock.sleep(options.pollMs ?? 2000);
  }
}

export interface JobResults {
  job: string;
  out: string;
  items: number;
  done: number;
  failed: number;
  pending: number;
  /** The first failures, with their reasons (all of them are in the output file). */
  failures: { item: string; type: string; message: string; attempts: number; deadLetter: boolean }[];
}

/** Writes one line per item, in input order: its output, its final failure, or that it is pending. */
export async function jobResults(deps: JobsDeps, job: string, out: string): Promise<JobResults> {
  const manifest = await manifestOf(deps, job);
  const keys = jobKeys(job);
  const done = idsUnder(keys.results, await deps.store.list(keys.results));
  const failures = new Map(
    (await openFailures(deps, job, done)).filter((f) => f.final).map((f) => [f.item, f]),
  );
  const ids = Array.from({ length: manifest.items }, (_, i) => String(i));
  let read = 0;
  const lines = await mapLimit(ids, READ_CONCURRENCY, async (id) => {
    if (done.has(id)) {
      const r = await deps.store.getJson<{ output: unknown }>(keys.result(id));
      deps.progress?.('reading', ++read, done.size);
      return JSON.stringify({ item: id, output: r?.output });
    }
    const f = failures.get(id);
    if (f) return JSON.stringify({ item: id, error: f.error, attempts: f.attempts });
    return JSON.stringify({ item: id, pending: true });
  });
  await writeFile(out, `${lines.join('\n')}\n`);
  const failed = [...failures.values()];
  return {
    job,
    out,
    items: manifest.items,
    done: done.size,
    failed: failed.length,
    pending: manifest.items - done.size - failed.length,
    failures: failed.slice(0, 20).map((f) => ({
      item: f.item,
      type: f.error.type,
      message: f.error.message,
      attempts: f.attempts,
      deadLetter: Boolean(f.dead_letter),
    })),
  };
}

/**
 * Moves the job's items from the dead-letter queue back to its queue (a fresh receive count),
 * and removes their failure records. Other jobs' dead letters are left where they were.
 */
export async function retryJob(
  deps: JobsDeps,
  target: JobTarget,
  job: string,
): Promise<{ job: string; moved: number; leftForOtherJobs: number }> {
  const manifest = await manifestOf(deps, job);
  const url = await queueUrlOf(deps, target.queueName(manifest.service), target.where);
  const dlq = await queueUrlOf(deps, target.deadLetterName(manifest.service), target.where);
  const others: string[] = [];
  let moved = 0;
  let empty = 0;
  // Messages stay invisible while the scan runs (so each is seen once), then others go back.
  while (empty < 2) {
    const messages = await deps.queue.receive(dlq, 10, 1, 120);
    if (!messages.length) {
      empty++;
      continue;
    }
    empty = 0;
    const mine: { receipt: string; body: string; item: string }[] = [];
    for (const m of messages) {
      const parsed = parseBody(m.body);
      if (parsed?.job === job) mine.push({ ...m, item: parsed.item });
      else others.push(m.receipt);
    }
    if (mine.length) {
      const refused = await deps.queue.sendBatch(
        url,
        mine.map((m, i) => ({ id: String(i), body: m.body })),
      );
      const sent = mine.filter((_, i) => !refused.some((r) => r.id === String(i)));
      await deps.queue.deleteBatch(
        dlq,
        sent.map((m) => m.receipt),
      );
      await Promise.all(sent.map((m) => deps.store.delete(jobKeys(job).failure(m.item))));
      moved += sent.length;
      deps.log(`moved ${moved} item(s) of ${job} back to ${target.queueName(manifest.service)}`);
    }
  }
  for (let i = 0; i < others.length; i += 10) await deps.queue.release(dlq, others.slice(i, i + 10));
  return { job, moved, leftForOtherJobs: others.length };
}

function parseBody(body: string): { job: string; item: string } | undefined {
  try {
    const v = JSON.parse(body) as { job?: unknown; item?: unknown };
    return typeof v.job === 'string' && typeof v.item === 'string' ? { job: v.job, item: v.item } : undefined;
  } catch {
    return undefined;
  }
}
