// `deploy ecs --apply` for the stack's job queues: the dead-letter queue first (the queue's
// redrive policy names its ARN), then the queue; FARGATE_SPOT on the cluster when a worker
// asks for it (before the services); the workers' scaling once their services exist (a
// scalable target names its service). Each step finds what exists first: a re-run changes
// nothing.

import type { ApplyDeps } from './deps.js';
import type { ManagedQueue } from './queues.js';
import { workerScalingSpec } from './worker-scaling.js';

export interface QueueResult {
  name: string;
  url: string;
  created: boolean;
  changed: string[];
  deadLetter: { name: string; created: boolean };
}

export async function ensureQueues(
  queues: ManagedQueue[],
  stack: string,
  deps: ApplyDeps,
): Promise<QueueResult[]> {
  const tags = { 'mlship:stack': stack, 'mlship:managed': 'true' };
  const results: QueueResult[] = [];
  for (const q of queues) {
    const dlq = await deps.aws.sqs.ensureQueue({
      name: q.deadLetter.name,
      visibilityTimeoutSeconds: q.visibilityTimeoutSeconds,
      // Dead letters are kept as long as SQS allows: they are the items to look at and retry.
      retentionSeconds: 14 * 86_400,
      encrypted: true,
      tags,
    });
    const main = await deps.aws.sqs.ensureQueue({
      name: q.name,
      visibilityTimeoutSeconds: q.visibilityTimeoutSeconds,
      retentionSeconds: q.retentionSeconds,
      deadLetter: { arn: dlq.arn, maxReceiveCount: q.maxReceiveCount },
      encrypted: true,
      tags,
    });
    deps.log(
      `queue ${q.name}: ${main.created ? 'created' : main.changed.length ? `corrected: ${main.changed.join(', ')}` : 'exists'} (dead letters: ${q.deadLetter.name})`,
    );
    results.push({
      name: q.name,
      url: main.url,
      created: main.created,
      changed: main.changed,
      deadLetter: { name: q.deadLetter.name, created: dlq.created },
    });
  }
  return results;
}

export async function ensureSpotCapacity(
  queues: ManagedQueue[],
  stack: string,
  deps: ApplyDeps,
): Promise<void> {
  if (!queues.some((q) => q.spot)) return;
  const r = await deps.aws.scaling.ensureFargateSpot(stack);
  if (r.added) deps.log(`cluster ${stack}: FARGATE_SPOT capacity provider added (Spot workers)`);
}

export interface ScalingResult {
  service: string;
  minTasks: number;
  maxTasks: number;
  created: boolean;
  changed: string[];
}

export async function ensureWorkersScaling(
  queues: ManagedQueue[],
  stack: string,
  deps: ApplyDeps,
): Promise<ScalingResult[]> {
  const results: ScalingResult[] = [];
  for (const q of queues) {
    const spec = workerScalingSpec(stack, q);
    const r = await deps.aws.scaling.ensureWorkerScaling(spec);
    deps.log(
      `scaling of ${q.worker}: ${spec.minTasks}-${spec.maxTasks} tasks, ${spec.tracking.targetValue} waiting item(s) per task (${r.created ? 'created' : r.changed.length ? `corrected: ${r.changed.join(', ')}` : 'unchanged'})`,
    );
    results.push({ service: q.worker, minTasks: spec.minTasks, maxTasks: spec.maxTasks, ...r });
  }
  return results;
}
