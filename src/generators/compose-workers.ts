// The job queue of the local stack (`queue:` in mlship.yaml: an SQS-compatible server,
// ElasticMQ by default) and the worker beside each service that asks for one (`worker:`):
// the model service's own image, weights and settings, run as `python -m app.worker`,
// consuming that service's queue and writing results to the stack's object storage.
// Pure: the queue itself is created by `mlship compose up` once the server answers.

import { jobQueueName, workerServiceName } from '../config/job-queues.js';
import type { Project } from '../config/schema.js';

type QueueConfig = NonNullable<Project['queue']>;

/** The parts of a compose service (compose-stack.ts) a worker changes; declared here, not imported (no cycle). */
interface ServiceLike {
  image: string;
  build?: unknown;
  expose?: string[];
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: 'service_healthy' | 'service_started' }>;
  stop_grace_period?: string;
  labels: Record<string, string>;
}

/** The SQS-compatible server: published on loopback only (for `mlship jobs` on this machine). */
export function queueService(q: QueueConfig, labels: Record<string, string>) {
  // The URL is quoted: the query string of ElasticMQ's health path would be a shell glob.
  const url = `http://127.0.0.1:${q.port}${q.health_path}`;
  return {
    image: q.image,
    ...(q.command ? { command: q.command } : {}),
    expose: [String(q.port)],
    ports: [`127.0.0.1:${q.host_port}:${q.port}`],
    healthcheck: {
      test: ['CMD-SHELL', `wget -q -O /dev/null '${url}' || curl -fsS -o /dev/null '${url}'`],
      interval: '5s',
      timeout: '5s',
      retries: 10,
      start_period: '20s',
    },
    restart: 'unless-stopped' as const,
    labels: { ...labels, 'dev.mlship.role': 'queue' },
  };
}

/**
 * The worker of model service `name`, when it has `worker:`: everything the model service
 * gets (image, environment, weights mount, GPU and limits), plus its queue and the region the
 * requests are signed for, and no port of its own beyond the probes.
 */
export function workerService<S extends ServiceLike>(
  project: Project,
  name: string,
  model: S,
  labels: Record<string, string>,
): { name: string; service: Omit<S, 'build' | 'expose'> } | undefined {
  const svc = project.services[name]!;
  const q = project.queue;
  if (!svc.worker || !q) return undefined;
  const environment: Record<string, string> = {
    ...(model.environment ?? {}),
    QUEUE_NAME: jobQueueName(project.name, name),
    AWS_ENDPOINT_URL_SQS: `http://queue:${q.port}`,
    AWS_REGION: 'us-east-1',
    ...(svc.worker.batch_size ? { WORKER_BATCH_SIZE: String(svc.worker.batch_size) } : {}),
  };
  const dependsOn: NonNullable<ServiceLike['depends_on']> = {
    ...(model.depends_on ?? {}),
    queue: { condition: 'service_healthy' },
  };
  const { build: _build, expose: _expose, ...rest } = model;
  return {
    name: workerServiceName(name),
    service: {
      ...rest,
      command: ['python', '-m', 'app.worker'],
      environment,
      depends_on: dependsOn,
      // SIGTERM: the batch in hand is finished and written, the other held items are released.
      stop_grace_period: '30s',
      labels: { ...labels, 'dev.mlship.role': 'worker', 'dev.mlship.worker-of': name },
    },
  };
}
