// The stack and how AWS is configured for it, read once for every command that talks to the
// deployed stack (deploy ecs, data push, rollout --target ecs): mlship.yaml (or a compose
// file), the AWS flags resolved as `mlship doctor` prints them, credentials checked before
// anything is built or changed, and the stack's plan (names only, no files written).

import path from 'node:path';
import type { AwsSettings, ResolvedAws } from '../core/aws/aws-config.js';
import type { CliContext } from './context.js';

export interface AwsCliFlags {
  file: string;
  region?: string;
  accountId?: string;
  profile?: string;
  endpointUrl?: string;
}

/** The AWS flags resolved against the project's `aws:` settings (credentials checked when required). */
export async function resolveAwsFor(
  ctx: CliContext,
  flags: Omit<AwsCliFlags, 'file'>,
  settings: AwsSettings | undefined,
  credentials: 'required' | 'if-needed',
): Promise<ResolvedAws> {
  const [{ awsFlagsOf, resolveAws, requireIdentity }, { createAwsEnvironment }] = await Promise.all([
    import('../core/aws/aws-config.js'),
    import('../adapters/aws/environment.js'),
  ]);
  const aws = await resolveAws(
    awsFlagsOf({
      region: flags.region,
      accountId: flags.accountId,
      profile: flags.profile,
      endpointUrl: flags.endpointUrl,
    }),
    settings,
    createAwsEnvironment(ctx.env),
    { credentials },
  );
  if (credentials === 'required') requireIdentity(aws);
  return aws;
}

export async function stackAndAws(
  ctx: CliContext,
  flags: AwsCliFlags,
  credentials: 'required' | 'if-needed',
) {
  const { loadDeployStack } = await import('../core/deploy/plan.js');
  const loaded = await loadDeployStack(path.resolve(ctx.cwd, flags.file));
  const aws = await resolveAwsFor(ctx, flags, loaded.project?.aws, credentials);
  return { loaded, aws };
}

/** The deployed stack's plan (credentials required): what data push and rollouts on ECS act on. */
export async function deployedStack(ctx: CliContext, flags: AwsCliFlags) {
  const { planEcs } = await import('../core/deploy/plan.js');
  const file = path.resolve(ctx.cwd, flags.file);
  const { loaded, aws } = await stackAndAws(ctx, flags, 'required');
  const plan = await planEcs({
    file,
    loaded,
    imageTag: 'latest',
    force: false,
    writeFiles: false,
    ...(aws.region ? { region: aws.region } : {}),
    ...(aws.accountId ? { accountId: aws.accountId } : {}),
  });
  return { file, loaded, aws, plan };
}
