// The mlship.yaml schema. One schema, three uses: the TypeScript type, runtime
// validation with located errors, and the committed JSON Schema for editors.
// Later steps (wrap, compose, bakeoff, deploy) extend it here.

import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { BakeoffSchema } from './bakeoff-schema.js';
import { mediaServiceFields } from './media-schema.js';
import { AlertsSchema, MonitoringSchema } from './operate-schema.js';
import { rangeServiceFields } from './range-schema.js';
import {
  DatabaseSchema,
  FrontendSchema,
  ProxySchema,
  QueueSchema,
  StorageSchema,
  WorkerSchema,
} from './stack-schema.js';

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
export const ServiceName = z.string().regex(NAME, {
  message: 'must start with a letter and use only lowercase letters, digits and "-" (e.g. "pose-2d")',
});

const Memory = z
  .string()
  .regex(/^\d+(\.\d+)?(Mi|Gi|M|G)$/, { message: 'must be a size such as "512Mi" or "4Gi"' });

export const BatchingSchema = z
  .strictObject({
    max_batch_size: z
      .number()
      .int()
      .min(2)
      .max(4096)
      .default(32)
      .describe('Hard limit of inputs per model call.'),
    max_latency_ms: z
      .number()
      .min(0)
      .max(60_000)
      .default(10)
      .describe('Longest an input waits for others to join its batch.'),
  })
  .describe('Adaptive micro-batching: concurrent requests become one vectorized model call.');

export const WeightsSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^(s3|https):\/\/\S+$/, { message: 'must be an s3:// or https:// URL' })
      .optional()
      .describe('Download the weights from here at start-up instead of mounting them.'),
    sha256: z
      .string()
      .regex(/^[a-f0-9]{64}$/, { message: 'must be a lowercase hex SHA-256 (64 characters)' })
      .optional()
      .describe('Checksum the weights must match.'),
    bake: z
      .boolean()
      .default(false)
      .describe('Copy the weights into the image (off by default: they are mounted read-only).'),
  })
  .describe('Where the model weights come from at run time.');

export const ServiceSchema = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .optional()
      .describe('Directory of the service: the output of `mlship wrap`, or any folder with a Dockerfile.'),
    image: z.string().min(1).optional().describe('Image to run instead of building `path`.'),
    runtime: z.enum(['python', 'node']).default('python').describe('Serving runtime of a wrapped model.'),
    entry: z
      .string()
      .regex(/^[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$/, {
        message: 'must be "file.py:function" (e.g. "predict.py:predict")',
      })
      .optional()
      .describe('Python callable that makes a prediction.'),
    model: z
      .string()
      .min(1)
      .optional()
      .describe('Serialized model file (pickle/joblib, .onnx, TorchScript .pt).'),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(8080)
      .describe('Port the service listens on inside its container.'),
    gpu: z
      .union([z.boolean(), z.number().int().min(1)], {
        message: 'must be true, false, or a number of GPUs (e.g. 2)',
      })
      .default(false)
      .describe('GPUs the service needs: false, true (one), or a count.'),
    cpu: z.number().positive().max(192).optional().describe('CPU cores to reserve.'),
    memory: Memory.optional().describe('Memory limit, e.g. "2Gi".'),
    startup_grace_seconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(60)
      .describe(
        'How long the model may take to load before health checks count; carried into compose and ECS.',
      ),
    env: z
      .record(
        z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be a valid environment variable name' }),
        z.string(),
      )
      .optional(),
    secrets: z
      .array(z.string())
      .optional()
      .describe('Names of environment variables that hold secrets (never written in plain text).'),
    depends_on: z
      .array(ServiceName)
      .optional()
      .describe('Services this one calls; their URLs are passed as environment variables.'),
    // Serving settings used by `mlship wrap`.
    example: z
      .string()
      .min(1)
      .optional()
      .describe(
        'JSON file with one example input (or a list: the first is the example, all give number ranges as hints): defines the request schema and the warm-up call.',
      ),
    workers: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .describe('Server worker processes (default: one per CPU, at most 8).'),
    batching: BatchingSchema.optional(),
    max_body_bytes: z
      .number()
      .int()
      .min(1024)
      .default(1_048_576)
      .describe('Largest request body accepted (413 above it).'),
    max_queue: z
      .number()
      .int()
      .min(1)
      .default(256)
      .describe('Requests one worker handles at once before answering 503 with Retry-After.'),
    weights: WeightsSchema.optional(),
    ...mediaServiceFields,
    ...rangeServiceFields,
    worker: WorkerSchema.optional(),
    slo_p99_ms: z
      .number()
      .positive()
      .max(600_000)
      .optional()
      .describe('Latency objective: on AWS, an alarm fires when the p99 of /predict stays above it.'),
  })
  .describe('A model service.');

export const BaseImagesSchema = z
  .strictObject({
    python: z
      .string()
      .min(1)
      .optional()
      .describe('Base image for Python services (default python:3.11-slim).'),
    node: z.string().min(1).optional().describe('Base image for Node services (default node:22-slim).'),
    cuda: z
      .string()
      .min(1)
      .optional()
      .describe('Base image for GPU services (an nvidia/cuda tag or a mirror of it).'),
  })
  .describe('Base-image overrides, for private mirrors and air-gapped machines.');

export const RegistrySchema = z
  .strictObject({
    host: z
      .string()
      .min(1)
      .optional()
      .describe('Registry host to push to; default: the account ECR registry.'),
    repository_prefix: z
      .string()
      .regex(/^[a-z0-9]+([._/-][a-z0-9]+)*$/, {
        message: 'must be a lowercase repository path such as "ml/team-a"',
      })
      .optional(),
  })
  .describe('Where images are pushed.');

const ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;
export const AwsSchema = z
  .strictObject({
    region: z
      .string()
      .regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, { message: 'must be an AWS region such as "eu-west-1"' })
      .optional(),
    account_id: z
      .string()
      .regex(/^\d{12}$/, { message: 'must be the 12-digit account id, quoted (e.g. "123456789012")' })
      .optional(),
    profile: z.string().min(1).optional().describe('Named profile from ~/.aws/config.'),
    execution_role_arn: z
      .string()
      .regex(ARN, { message: 'must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)' })
      .optional(),
    task_role_arn: z
      .string()
      .regex(ARN, { message: 'must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)' })
      .optional(),
    ...AlertsSchema,
  })
  .describe('AWS account settings for `mlship deploy ecs`. Credentials are never stored here.');

export const ProjectSchema = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(1).default(1).describe('Config format version.'),
    name: ServiceName.describe('Project name; prefixes image, stack and cluster names.'),
    services: z.record(ServiceName, ServiceSchema).default({}).describe('Model services, by name.'),
    base_images: BaseImagesSchema.optional(),
    registry: RegistrySchema.optional(),
    aws: AwsSchema.optional(),
    proxy: ProxySchema.optional(),
    database: DatabaseSchema.optional(),
    storage: StorageSchema.optional(),
    queue: QueueSchema.optional(),
    frontend: FrontendSchema.optional(),
    monitoring: MonitoringSchema.optional(),
    bakeoff: BakeoffSchema.optional(),
    optimize: z
      .strictObject({
        ignore: z
          .array(z.string())
          .optional()
          .describe('Rule ids of `mlship optimize` to silence for this project.'),
        slim_base: z
          .boolean()
          .optional()
          .describe(
            'Let `mlship optimize --write` move the final stage from a full python/node image to its slim variant, as with --slim-base.',
          ),
      })
      .optional()
      .describe('Settings for `mlship optimize`.'),
  })
  .describe('mlship project configuration (mlship.yaml).')
  .superRefine(checkWorkers);

/** A worker needs the queue it consumes and the storage it writes to, and the Python runtime. */
function checkWorkers(
  project: {
    services: Record<string, { runtime: string; image?: string | undefined; worker?: unknown }>;
    queue?: unknown;
    storage?: unknown;
  },
  ctx: z.RefinementCtx,
): void {
  for (const [name, svc] of Object.entries(project.services)) {
    if (!svc.worker) continue;
    const path = ['services', name, 'worker'];
    if (svc.runtime === 'node')
      ctx.addIssue({
        code: 'custom',
        path,
        message:
          'the Node runtime has no queue worker (only wrapped Python services do): remove worker:, or wrap the model with --runtime python',
      });
    if (!project.queue)
      ctx.addIssue({
        code: 'custom',
        path,
        message: 'a worker consumes the job queue: add `queue: {}` at the top level',
      });
    if (!project.storage)
      ctx.addIssue({
        code: 'custom',
        path,
        message: 'a worker writes its results to object storage: add `storage: {}` at the top level',
      });
  }
}

export type Project = z.output<typeof ProjectSchema>;
export type ProjectInput = z.input<typeof ProjectSchema>;
export type Service = z.output<typeof ServiceSchema>;

export const CONFIG_FILE = 'mlship.yaml';
/**
 * The $id of the published JSON Schema: an identifier, not an address (nothing is served at
 * it). Editors reach the schema through the path `mlship init` writes: SCHEMA_FILE, relative.
 */
export const SCHEMA_ID = 'urn:mlship:schema:mlship.yaml';

/** schema/mlship.schema.json of this installed package (src/config and dist/config alike). */
export const SCHEMA_FILE = fileURLToPath(new URL('../../schema/mlship.schema.json', import.meta.url));
