// The stack's job queues on AWS: the local SQS-compatible server (mlship.yaml `queue:`)
// becomes one SQS queue and dead-letter queue per worker (encrypted, redrive policy, a
// visibility timeout from the worker's time budget), the queue service leaves the task
// definitions, and each worker service runs without a load balancer, from `min_tasks`
// (0 by default), scaled by Application Auto Scaling on its backlog per task
// (worker-scaling.ts), on FARGATE_SPOT when `worker.spot` asks for it. What a worker may
// do is one statement of the task role: its queue, nothing else (roles.ts).

import {
  deadLetterQueueName,
  jobQueueName,
  visibilityTimeoutSeconds,
  workerOf,
} from '../../config/job-queues.js';
import type { Project } from '../../config/schema.js';
import type { Stack, StackService, StackWarning } from '../../config/stack-model.js';
import { serviceWarning } from '../../config/stack-model.js';
import type { EcsTranslation } from '../../generators/ecs-task-definitions.js';
import { type CostLine, usd } from './cost.js';
import { HOURS_PER_MONTH, PRICES } from './prices.js';

export interface ManagedQueue {
  /** The model service whose worker consumes it. */
  service: string;
  /** The worker's ECS service (and container) name. */
  worker: string;
  name: string;
  url: string;
  arn: string;
  deadLetter: { name: string; url: string; arn: string };
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  retentionSeconds: number;
  scaling: { minTasks: number; maxTasks: number; backlogPerTask: number };
  /** FARGATE_SPOT instead of FARGATE (CPU workers only). */
  spot: boolean;
}

/** SQS standard queue requests (first million a month free, not counted). */
export const SQS_PRICES = { perMillionRequests: 0.4, date: '2025-11-01' } as const;
/** What a Fargate Spot task costs against on demand (AWS: "up to 70% off"; varies by region and hour). */
export const FARGATE_SPOT_SHARE = 0.3;

function queueOf(
  stack: string,
  service: string,
  worker: string,
  config: NonNullable<Project['services'][string]['worker']>,
  queue: NonNullable<Project['queue']>,
  where: { region: string; accountId: string },
): ManagedQueue {
  const name = jobQueueName(stack, service);
  const dlq = deadLetterQueueName(stack, service);
  const url = (n: string) => `https://sqs.${where.region}.amazonaws.com/${where.accountId}/${n}`;
  const arn = (n: string) => `arn:aws:sqs:${where.region}:${where.accountId}:${n}`;
  return {
    service,
    worker,
    name,
    url: url(name),
    arn: arn(name),
    deadLetter: { name: dlq, url: url(dlq), arn: arn(dlq) },
    visibilityTimeoutSeconds: visibilityTimeoutSeconds(config.item_timeout_seconds),
    maxReceiveCount: queue.max_receive_count,
    retentionSeconds: queue.retention_days * 86_400,
    scaling: {
      minTasks: config.min_tasks,
      maxTasks: Math.max(config.max_tasks, config.min_tasks),
      backlogPerTask: config.backlog_per_task,
    },
    spot: config.spot,
  };
}

/**
 * The stack with its queue managed: the queue service removed, each worker pointed at SQS in
 * the deploy's region. GPU workers are refused (they would share the one GPU task and its
 * scaling with the HTTP services).
 */
export function manageQueues(
  stack: Stack,
  project: Project | undefined,
  where: { region: string; accountId: string },
): { stack: Stack; queues: ManagedQueue[]; warnings: StackWarning[]; refusals: StackWarning[] } {
  if (!project?.queue) return { stack, queues: [], warnings: [], refusals: [] };
  const models = Object.keys(project.services);
  const queues: ManagedQueue[] = [];
  const refusals: StackWarning[] = [];
  const services: StackService[] = [];
  for (const s of stack.services) {
    if (s.role === 'queue') continue; // SQS replaces it
    const model = s.role === 'worker' ? workerOf(s.name, models) : undefined;
    const config = model ? project.services[model]?.worker : undefined;
    if (!model || !config) {
      services.push({ ...s, dependsOn: s.dependsOn.filter((d) => d.service !== 'queue') });
      continue;
    }
    if (s.gpus) {
      refusals.push(
        serviceWarning(
          stack,
          s,
          'worker',
          'a GPU worker cannot run on ECS yet: GPU services share one EC2 task, and a worker scales on its own',
          `remove services.${model}.worker for the AWS deploy, or run the worker on CPU`,
        ),
      );
    }
    queues.push(queueOf(project.name, model, s.name, config, project.queue, where));
    const { AWS_ENDPOINT_URL_SQS: _local, ...environment } = s.environment;
    services.push({
      ...s,
      environment: { ...environment, AWS_REGION: where.region },
      dependsOn: s.dependsOn.filter((d) => d.service !== 'queue'),
    });
  }
  return { stack: { ...stack, services }, queues, warnings: [], refusals };
}

/** A worker runs its model service's image (pushed once, under the model's repository). */
export function workerImages(images: Record<string, string>, queues: ManagedQueue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const q of queues) {
    if (images[q.service]) out[q.worker] = images[q.service]!;
  }
  return out;
}

/** Worker services start at their minimum (scaling owns the count) and may run on Spot. */
export function withWorkerServices(translation: EcsTranslation, queues: ManagedQueue[]): void {
  for (const svc of translation.services) {
    const q = queues.find((x) => x.worker === svc.name);
    if (!q) continue;
    svc.desiredCount = q.scaling.minTasks;
    if (q.spot && svc.launchType === 'FARGATE') svc.capacityProvider = 'FARGATE_SPOT';
  }
}

export function queuePlanLines(queues: ManagedQueue[]): string[] {
  return queues.flatMap((q) => [
    `SQS queue ${q.name} for ${q.worker} (encrypted (SSE-SQS), visibility timeout ${q.visibilityTimeoutSeconds} s from item_timeout_seconds, kept ${Math.round(q.retentionSeconds / 86_400)} days); after ${q.maxReceiveCount} failed receives an item moves to ${q.deadLetter.name}`,
    `worker ${q.worker}: ${q.scaling.minTasks}-${q.scaling.maxTasks} task(s) on ${q.spot ? 'FARGATE_SPOT' : 'FARGATE'}, no load balancer; Application Auto Scaling keeps ${q.scaling.backlogPerTask} waiting item(s) per running task (ApproximateNumberOfMessagesVisible / RunningTaskCount)${q.scaling.minTasks === 0 ? ', and starts a task for a single waiting item' : ''}`,
  ]);
}

/** Monthly cost of a worker at its maximum, on demand or Spot. */
function workerMaxMonthly(translation: EcsTranslation, q: ManagedQueue): number | undefined {
  const svc = translation.services.find((s) => s.name === q.worker);
  const td = translation.taskDefinitions.find((t) => t.family === svc?.taskFamily);
  if (!td?.cpu || !td.memory) return undefined;
  const hour =
    (Number(td.cpu) / 1024) * PRICES.fargateVcpuHour + (Number(td.memory) / 1024) * PRICES.fargateGbHour;
  return usd(hour * HOURS_PER_MONTH * q.scaling.maxTasks * (q.spot ? FARGATE_SPOT_SHARE : 1));
}

/** The queues' requests (a line each) and what the workers cost at their maximum (the note). */
export function queueCost(
  translation: EcsTranslation,
  queues: ManagedQueue[],
): { lines: CostLine[]; notes: string[] } {
  const lines: CostLine[] = queues.map((q) => ({
    item: `SQS ${q.name} (+ dead-letter queue)`,
    monthlyUsd: 0,
    detail: `$${SQS_PRICES.perMillionRequests} per million requests beyond the free million: ~0.4 request per item (batched send, receive and delete), ~$${usd(0.4 * SQS_PRICES.perMillionRequests)} per million items; a running worker's idle long polls ~130,000 a month`,
  }));
  const notes = queues.flatMap((q) => {
    const max = workerMaxMonthly(translation, q);
    return max === undefined
      ? []
      : [
          `${q.worker} at its maximum ${q.scaling.maxTasks} task(s) all month: $${max.toFixed(2)}${q.spot ? ' on FARGATE_SPOT (~30% of on demand)' : ''}; $0 while the queue is empty${q.scaling.minTasks ? ` beyond its ${q.scaling.minTasks} minimum task(s)` : ''}`,
        ];
  });
  return { lines, notes };
}
