// Names and layout shared by everything that touches a job: the compose stack (the worker
// service and its queue), `deploy ecs` (the SQS queues, their scaling), `mlship jobs` (where
// items are sent and results read) and the worker itself (templates/wrap/python/app/worker.py
// writes the same keys). One place, so the four always agree.

import { createHash } from 'node:crypto';

/** Object keys of a job: <prefix><job>/{manifest.json, inputs/, results/, failures/}. */
export const JOBS_PREFIX = 'jobs/';

/** SQS limits a message body to 256 KiB: a larger item goes by object key (inputs/<item>.json). */
export const SQS_MAX_BODY_BYTES = 256 * 1024;

/** The compose service (and ECS service) that runs a model service's worker. */
export function workerServiceName(service: string): string {
  return `${service}-worker`;
}

/** The model service a worker service belongs to, when `name` is one. */
export function workerOf(name: string, services: string[]): string | undefined {
  return services.find((s) => workerServiceName(s) === name);
}

/** SQS queue names: [A-Za-z0-9_-], at most 80 characters (a hash keeps shortened names apart). */
function queueName(wanted: string): string {
  const clean = wanted.replace(/[^A-Za-z0-9_-]/g, '-');
  if (clean.length <= 80) return clean;
  const hash = createHash('sha256').update(wanted).digest('hex').slice(0, 6);
  return `${clean.slice(0, 73)}-${hash}`;
}

/** The queue a service's worker consumes, the same name locally and on AWS. */
export function jobQueueName(stack: string, service: string): string {
  return queueName(`${stack}-${service}-jobs`);
}

/** Where SQS moves an item after max_receive_count failed receives. */
export function deadLetterQueueName(stack: string, service: string): string {
  return queueName(`${stack}-${service}-jobs-dlq`);
}

/**
 * The visibility timeout of a worker's queue, from the time budget of one batch: twice the
 * budget, so a batch that runs long is still inside it when the worker's heartbeat (every third
 * of it) extends the messages; SQS allows at most 12 hours.
 */
export function visibilityTimeoutSeconds(itemTimeoutSeconds: number): number {
  return Math.min(43_200, Math.max(10, 2 * itemTimeoutSeconds));
}

/** Result, failure and input keys of one item (the worker writes the first two). */
export function jobKeys(job: string) {
  const base = `${JOBS_PREFIX}${job}`;
  return {
    manifest: `${base}/manifest.json`,
    results: `${base}/results/`,
    failures: `${base}/failures/`,
    inputs: `${base}/inputs/`,
    result: (item: string) => `${base}/results/${item}.json`,
    failure: (item: string) => `${base}/failures/${item}.json`,
    input: (item: string) => `${base}/inputs/${item}.json`,
  };
}
