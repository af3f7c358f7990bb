// The job queues of the local stack, once its queue server answers: each worker's queue and
// dead-letter queue (redrive after queue.max_receive_count receives, the visibility timeout
// from the worker's time budget), created with the same calls `deploy ecs` makes on AWS. Then
// the smoke job of `compose up`: three copies of each worker's example go through its queue,
// and the three results must come back from object storage.

import {
  deadLetterQueueName,
  jobKeys,
  jobQueueName,
  visibilityTimeoutSeconds,
} from '../../config/job-queues.js';
import type { Clock } from '../../io/clock.js';
import type { QueueSpec } from '../deploy/aws-apis.js';
import type { JobQueue, JobStore } from '../jobs/deps.js';
import { submitItems, waitForJob } from '../jobs/jobs.js';
import { serviceExample } from './example.js';
import type { ComposeGenerateResult } from './generate.js';

export interface LocalJobApis {
  queue: JobQueue & { ensureQueue(spec: QueueSpec): Promise<{ url: string; arn: string; created: boolean }> };
  store: JobStore;
  destroy(): void;
}

export interface JobSmokeResult {
  service: string;
  job: string;
  items: number;
  done: number;
  seconds: number;
  error?: string;
}

/** Creates every worker's queue (and dead-letter queue) unless it exists; their names. */
export async function ensureLocalQueues(apis: LocalJobApis, gen: ComposeGenerateResult): Promise<string[]> {
  const { project } = gen;
  const created: string[] = [];
  for (const [name, svc] of Object.entries(project.services)) {
    if (!svc.worker || !project.queue) continue;
    const visibility = visibilityTimeoutSeconds(svc.worker.item_timeout_seconds);
    const base = {
      visibilityTimeoutSeconds: visibility,
      retentionSeconds: project.queue.retention_days * 86_400,
    };
    const dlq = await apis.queue.ensureQueue({
      ...base,
      name: deadLetterQueueName(project.name, name),
      encrypted: false,
      tags: {},
    });
    const main = await apis.queue.ensureQueue({
      ...base,
      name: jobQueueName(project.name, name),
      deadLetter: { arn: dlq.arn, maxReceiveCount: project.queue.max_receive_count },
      encrypted: false,
      tags: {},
    });
    created.push(jobQueueName(project.name, name));
    if (main.created) created.push(deadLetterQueueName(project.name, name));
  }
  return created;
}

/** A three-item job through each worker, end to end (queue → worker → object storage). */
export async function smokeJobs(
  apis: LocalJobApis,
  gen: ComposeGenerateResult,
  clock: Clock,
  timeoutSeconds: number,
): Promise<JobSmokeResult[]> {
  const { project } = gen;
  const target = {
    where: 'local',
    stack: project.name,
    bucket: project.storage?.bucket ?? '',
    queueName: (s: string) => jobQueueName(project.name, s),
    deadLetterName: (s: string) => deadLetterQueueName(project.name, s),
  };
  const deps = { queue: apis.queue, store: apis.store, clock, log: () => undefined };
  const out: JobSmokeResult[] = [];
  for (const [service, svc] of Object.entries(project.services)) {
    if (!svc.worker) continue;
    const example = (await serviceExample(gen, service)) ?? {};
    const job = `smoke-${service}-${clock.now()}`;
    const t0 = clock.monotonic();
    const items = [0, 1, 2].map((i) => ({ id: String(i), line: i + 1, input: example }));
    try {
      await submitItems(deps, target, { items, input: 'compose up smoke test', service, job });
      const status = await waitForJob(deps, target, job, { timeoutSeconds, pollMs: 500 });
      const results = await apis.store.list(jobKeys(job).results);
      out.push({
        service,
        job,
        items: 3,
        done: results.length,
        seconds: Math.round((clock.monotonic() - t0) / 100) / 10,
        ...(status.failed
          ? { error: `${status.failed} item(s) failed: see jobs/${job}/failures/ in the bucket` }
          : {}),
      });
    } catch (e) {
      out.push({ service, job, items: 3, done: 0, seconds: 0, error: (e as Error).message });
    }
  }
  return out;
}
