// The optional add-ons of the local stack (`mlship compose`): an NGINX reverse
// proxy, PostgreSQL, S3-compatible object storage, an SQS-compatible job queue, and a
// small front end.
// Images default to pinned upstream tags and can be overridden for mirrors.

import { z } from 'zod';
import { RateLimitSchema } from './operate-schema.js';

const Image = z.string().min(1);
const NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** Pinned defaults: a data directory made by one PostgreSQL major does not start under the next. */
export const DEFAULT_ADDON_IMAGES = {
  proxy: 'nginx:1.27.3-alpine',
  database: 'postgres:16.6-bookworm',
  storage: 'minio/minio:RELEASE.2024-11-07T00-52-20Z',
  frontend: 'nginx:1.27.3-alpine',
  queue: 'softwaremill/elasticmq-native:1.6.16',
} as const;

export const ProxySchema = z
  .strictObject({
    image: Image.default(DEFAULT_ADDON_IMAGES.proxy).describe('NGINX image (pinned).'),
    port: z.number().int().min(1).max(65535).default(8080).describe('Port published on 127.0.0.1.'),
    client_max_body_size: z
      .string()
      .regex(/^\d+[kKmMgG]?$/, { message: 'must be an NGINX size such as "10m"' })
      .default('10m')
      .describe('Largest request body NGINX forwards.'),
    timeout_seconds: z.number().int().min(1).max(3600).default(60).describe('Upstream read timeout.'),
    shadow_timeout_ms: z
      .number()
      .int()
      .min(10)
      .max(60_000)
      .default(250)
      .describe(
        "How long the proxy waits for a rollout's shadow when `rollout start` is given no --shadow-timeout (nginx.conf is ready with it: another value reloads NGINX at start).",
      ),
    rate_limit: RateLimitSchema.optional(),
    auth: z
      .enum(['none', 'api_key'])
      .default('none')
      .describe(
        'api_key: /api/ requires a key (Authorization: Bearer or X-API-Key); keys are made with `mlship keys create` and kept as a secret, never here.',
      ),
    security_headers: z
      .boolean()
      .default(true)
      .describe(
        'server_tokens off, and nosniff, frame, referrer and content-security headers on the front end.',
      ),
  })
  .describe('NGINX reverse proxy: /api/<service>/ → each model service, / → the front end.');

/** Where the database runs on AWS (`deploy ecs`). */
export const DatabaseAwsSchema = z
  .strictObject({
    kind: z
      .enum(['aurora', 'rds', 'container'])
      .default('aurora')
      .describe(
        'aurora: Aurora Serverless v2 that pauses when idle (default); rds: one always-on RDS instance; container: a Fargate task (its data does not survive a restart).',
      ),
    min_capacity: z
      .number()
      .min(0)
      .max(256)
      .default(0)
      .describe(
        'Aurora capacity units when idle; 0 pauses the database (storage is all an idle month costs).',
      ),
    max_capacity: z
      .number()
      .min(1)
      .max(256)
      .default(2)
      .describe('Aurora capacity units at most (the cost ceiling).'),
    seconds_until_auto_pause: z
      .number()
      .int()
      .min(300)
      .max(86_400)
      .default(300)
      .describe('Idle seconds before a minimum-0 Aurora database pauses.'),
    instance_class: z
      .string()
      .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, {
        message: 'must be an RDS instance class such as "db.t4g.micro"',
      })
      .default('db.t4g.micro')
      .describe('Instance class of kind: rds (the smallest Graviton class by default).'),
    backup_retention_days: z.number().int().min(1).max(35).default(7).describe('Automated backups kept.'),
  })
  .describe('The managed database `deploy ecs` creates for this stack.');

export const DatabaseSchema = z
  .strictObject({
    image: Image.default(DEFAULT_ADDON_IMAGES.database).describe('PostgreSQL image (pin the major version).'),
    database: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, { message: 'must be a lowercase SQL identifier' })
      .default('app'),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, { message: 'must be a lowercase SQL identifier' })
      .default('app'),
    aws: DatabaseAwsSchema.optional(),
  })
  .describe('PostgreSQL with a named volume; its password is generated into a git-ignored .env.');

export const StorageSchema = z
  .strictObject({
    image: Image.default(DEFAULT_ADDON_IMAGES.storage).describe(
      'S3-compatible server image (MinIO by default).',
    ),
    command: z.array(z.string()).optional().describe('Command for a non-MinIO image.'),
    port: z.number().int().min(1).max(65535).default(9000).describe('S3 API port inside the container.'),
    host_port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(9000)
      .describe('Port the S3 API is published on, on 127.0.0.1 only (to upload data and weights).'),
    health_path: z
      .string()
      .startsWith('/')
      .default('/minio/health/live')
      .describe('HTTP path that answers 200 when ready.'),
    bucket: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{2,62}$/, { message: 'must be a valid S3 bucket name' })
      .default('models'),
    expire_uploads_days: z
      .number()
      .int()
      .min(1)
      .max(3650)
      .optional()
      .describe(
        'On AWS, objects under uploads/ expire after this many days (uploads of people are a liability to keep).',
      ),
    versioning: z.boolean().default(false).describe('On AWS, keep every version of every object.'),
  })
  .describe("S3-compatible object storage (on AWS: the stack's S3 bucket).");

export const FrontendSchema = z
  .strictObject({
    image: Image.default(DEFAULT_ADDON_IMAGES.frontend).describe(
      'Image that serves the static page (NGINX).',
    ),
    service: z
      .string()
      .regex(NAME)
      .optional()
      .describe('Model service the page calls (default: the first one).'),
    title: z.string().min(1).max(80).optional(),
  })
  .describe('A static page where a person enters an input and sees the prediction.');

export const QueueSchema = z
  .strictObject({
    image: Image.default(DEFAULT_ADDON_IMAGES.queue).describe(
      'SQS-compatible server image (ElasticMQ by default).',
    ),
    command: z.array(z.string()).optional().describe('Command for another SQS-compatible image.'),
    port: z.number().int().min(1).max(65535).default(9324).describe('SQS API port inside the container.'),
    host_port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(9324)
      .describe('Port the SQS API is published on, on 127.0.0.1 only (for `mlship jobs`).'),
    health_path: z
      .string()
      .startsWith('/')
      .default('/?Action=ListQueues')
      .describe('HTTP path that answers 200 when the server is up.'),
    max_receive_count: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(3)
      .describe('Receives of a failing item before it moves to the dead-letter queue.'),
    retention_days: z
      .number()
      .int()
      .min(1)
      .max(14)
      .default(4)
      .describe('How long a waiting item (and the dead-letter queue) is kept (on AWS; SQS allows 14 days).'),
  })
  .describe(
    "The job queue of the services' workers: a local SQS-compatible server; on AWS, one SQS queue and dead-letter queue per worker.",
  );

export const WorkerSchema = z
  .strictObject({
    batch_size: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .optional()
      .describe('Items per model call (default: batching.max_batch_size, else 32).'),
    item_timeout_seconds: z
      .number()
      .int()
      .min(5)
      .max(43_200)
      .default(60)
      .describe(
        "Time budget of one batch of items: the queue's visibility timeout is derived from it (longer work is kept invisible by a heartbeat).",
      ),
    min_tasks: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(0)
      .describe('On AWS: tasks when the queue is empty.'),
    max_tasks: z.number().int().min(1).max(1000).default(4).describe('On AWS: the most tasks it scales to.'),
    backlog_per_task: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(100)
      .describe('On AWS: waiting items per running task the scaling aims for.'),
    spot: z
      .boolean()
      .default(false)
      .describe(
        'On AWS: run CPU workers on FARGATE_SPOT (about 70% cheaper; an interruption loses nothing).',
      ),
  })
  .describe(
    'A queue worker beside the service (`python -m app.worker`): same image and model, items from the job queue, results to object storage.',
  );
