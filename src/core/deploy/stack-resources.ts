// What a stack's tasks need before they can start, created by `deploy ecs --apply` before
// the task definitions that name them: the stack's bucket (private, encrypted, tagged)
// with the model weights in it, and the IAM roles mlship owns for the stack. Each step
// finds what exists first, so a re-run changes nothing and a failed run is finished by
// the next one.

import { realClock } from '../../io/clock.js';
import { OperationFailedError, UsageError } from '../../io/errors.js';
import type { ApplyDeps } from './deps.js';
import type { EcsPlanResult } from './plan.js';
import { formatBytes, uploadWeights, type WeightsUploadResult } from './weights.js';

export interface BucketResult {
  name: string;
  created: boolean;
  changed: string[];
}

export interface RoleResult {
  name: string;
  arn: string;
  created: boolean;
  changed: string[];
}

/** IAM is eventually consistent: a role ECS assumes right after its creation can fail. */
export const IAM_PROPAGATION_SECONDS = 10;

/** Whether the stack needs its bucket: weights to upload, or the stack's files (storage:). */
export function needsBucket(plan: EcsPlanResult): boolean {
  return plan.weights.some((w) => w.upload) || Boolean(plan.storage);
}

export async function ensureStackBucket(
  plan: EcsPlanResult,
  deps: ApplyDeps,
): Promise<BucketResult | undefined> {
  if (!needsBucket(plan)) return undefined;
  const state = await deps.aws.s3.bucketState(plan.bucket);
  if (state === 'taken') {
    throw new UsageError(`the bucket name ${plan.bucket} is taken by another AWS account`, {
      hint: 'bucket names are global: rename the stack (name: in mlship.yaml), or deploy to another region',
    });
  }
  const r = await deps.aws.s3.ensureBucket({
    name: plan.bucket,
    region: plan.region,
    tags: { 'mlship:stack': plan.stack, 'mlship:managed': 'true' },
    versioning: plan.storage?.versioning ?? false,
    ...(plan.kmsKeyId ? { kmsKeyId: plan.kmsKeyId } : {}),
    ...(plan.storage?.expireUploadsDays
      ? { expire: { prefix: 'uploads/', days: plan.storage.expireUploadsDays } }
      : {}),
  });
  deps.log(
    `bucket ${plan.bucket}: ${r.created ? 'created (private, encrypted)' : r.changed.length ? `corrected: ${r.changed.join(', ')}` : 'exists'}`,
  );
  return { name: plan.bucket, ...r };
}

export async function ensureWeights(plan: EcsPlanResult, deps: ApplyDeps): Promise<WeightsUploadResult[]> {
  let last = 0;
  return uploadWeights(plan.weights, {
    s3: deps.aws.s3,
    log: deps.log,
    // A line per 10% of a large file: progress without flooding a log.
    progress: (service, done, total) => {
      const tenth = Math.floor((done / total) * 10);
      if (tenth > last || done === total) {
        last = done === total ? 0 : tenth;
        deps.log(`${service}: weights ${formatBytes(done)} of ${formatBytes(total)}`);
      }
    },
  });
}

/**
 * Secrets the stack made locally (the passwords compose generated into its .env, or values in a
 * compose file's .env) that the task definitions read from SSM: created when missing, never
 * overwritten, never printed.
 */
export async function ensureLocalSecrets(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  localValues: Record<string, string>,
): Promise<string[]> {
  const created: string[] = [];
  const refs = new Set(
    plan.translation.taskDefinitions.flatMap((td) =>
      (td.containerDefinitions ?? []).flatMap((c) => (c.secrets ?? []).map((s) => s.valueFrom!)),
    ),
  );
  for (const ref of refs) {
    const m = /^arn:aws[a-z-]*:ssm:[^:]+:\d+:parameter(\/.+)$/.exec(ref);
    const variable = m?.[1]?.split('/').pop();
    if (!m || !variable || !localValues[variable]) continue;
    const outcome = await deps.aws.secrets.createParameter(m[1]!, localValues[variable]!, {
      'mlship:stack': plan.stack,
      'mlship:managed': 'true',
    });
    if (outcome === 'created') {
      created.push(m[1]!);
      deps.log(`SSM parameter ${m[1]}: created from the stack's .env (its value is not shown)`);
    }
  }
  return created;
}

/** The roles mlship owns for the stack, made to match the plan's policies exactly. */
export async function ensureRoles(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: { iamPropagationSeconds?: number },
): Promise<RoleResult[]> {
  const results: RoleResult[] = [];
  for (const spec of [plan.roles.execution, plan.roles.task]) {
    if (!spec) continue;
    const r = await deps.aws.iam.ensureServiceRole(spec);
    if (!r.managed) {
      throw new OperationFailedError(
        'ROLE_NOT_OURS',
        `IAM role ${spec.name} exists and was not created by mlship: it is left alone`,
        {
          hint: `name your own role with ${spec === plan.roles.execution ? '--execution-role-arn' : '--task-role-arn'}, or delete that role`,
        },
      );
    }
    deps.log(
      `IAM role ${spec.name}: ${r.created ? 'created' : r.changed.length ? `updated (${r.changed.join(', ')})` : 'unchanged'}`,
    );
    results.push({ name: spec.name, arn: r.arn, created: r.created, changed: r.changed });
  }
  const wait = options.iamPropagationSeconds ?? IAM_PROPAGATION_SECONDS;
  if (wait > 0 && results.some((r) => r.created)) {
    deps.log(`waiting ${wait} s: IAM is eventually consistent, and ECS may not see a new role at once`);
    await (deps.clock ?? realClock).sleep(wait * 1000);
  }
  return results;
}
