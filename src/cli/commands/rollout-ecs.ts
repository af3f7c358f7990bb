// `mlship rollout ... --target ecs`: the ECS target built from the same pieces `deploy ecs`
// uses (the stack's plan, AWS resolved as every AWS command resolves it, the deploy APIs
// tagged with the stack, deploy's wait), and the candidate's image built and pushed beside
// the stable one when it comes from --path. Kept out of rollout.ts, which wires the commands.

import path from 'node:path';
import type { Rollout } from '../../config/rollout-schema.js';
import type { RolloutTarget } from '../../core/rollout/target.js';
import type { Gates } from '../../core/rollout/verdict.js';
import type { CliContext } from '../context.js';
import { deployedStack } from '../deployed-stack.js';

export interface EcsTargetFlags {
  file: string;
  region?: string;
  accountId?: string;
  profile?: string;
  endpointUrl?: string;
  registry?: string;
}

/** The ECS target, and what to call once the command is done (the SDK clients). */
export async function ecsTarget(
  ctx: CliContext,
  service: string,
  flags: EcsTargetFlags,
  gateOverride?: Partial<Gates>,
): Promise<{ target: RolloutTarget; close(): void }> {
  const [{ createDeployApis }, { EcsRollout }, { waitUntilStable }, { realClock }, { ecsRolloutsFile }] =
    await Promise.all([
      import('../../adapters/aws/deploy-apis.js'),
      import('../../core/rollout/ecs.js'),
      import('../../core/deploy/wait.js'),
      import('../../io/clock.js'),
      import('../../core/rollout/state.js'),
    ]);
  const { file, aws: resolved, plan } = await deployedStack(ctx, flags);
  const aws = createDeployApis({
    region: plan.region,
    ...(resolved.profile ? { profile: resolved.profile } : {}),
    ...(resolved.endpointUrl ? { endpointUrl: resolved.endpointUrl } : {}),
    tags: { 'mlship:stack': plan.stack },
  });
  const log = (l: string) => ctx.io.info(l);
  const target = new EcsRollout(
    {
      ecs: aws.ecs,
      elb: aws.elb,
      cloudwatch: aws.cloudwatch,
      ec2: aws.ec2,
      logs: aws.logs,
      clock: realClock,
      log,
      waitStable: async (name, taskDefinition) => {
        const svc = plan.translation.services.find((s) => `${s.name}-candidate` === name || s.name === name)!;
        await waitUntilStable(
          plan,
          [{ plan: { ...svc, name }, taskDefinition }],
          { aws, log, tasks: ctx.io.tasks },
          { localImages: {}, force: false, wait: true },
        );
      },
      candidateImage: async (rollout: Rollout, stableImage: string) =>
        buildAndPush(ctx, rollout, stableImage, { ecr: aws.ecr, registry: flags.registry, file }),
      bakeProxyImage: async (base, files) =>
        bakeAndPush(ctx, base, files, { ecr: aws.ecr, registry: flags.registry, file }),
    },
    { plan, configFile: file, stateFile: ecsRolloutsFile(file) },
    service,
    gateOverride,
  );
  return { target, close: () => aws.destroy() };
}

interface PushTo {
  ecr: { authorization(): Promise<import('../../adapters/docker/engine.js').RegistryAuth> };
  registry?: string;
  file: string;
}

/** --path on ECS: the candidate built on this engine and pushed beside the stable image (tag candidate-<id>). */
async function buildAndPush(
  ctx: CliContext,
  rollout: Rollout,
  stableImage: string,
  opts: PushTo,
): Promise<string> {
  const context = path.resolve(path.dirname(opts.file), rollout.candidate.path!);
  ctx.io.info(`building the candidate from ${rollout.candidate.path}`);
  return buildPushBeside(
    ctx,
    context,
    `mlship-candidate/${rollout.service}:dev`,
    stableImage,
    'candidate',
    opts,
  );
}

/** What building and pushing need of the command's context. */
type BuildContext = { io: Pick<CliContext['io'], 'info'>; engine: CliContext['engine'] };

/**
 * A rollout the proxy routes on ECS: the proxy's image from before the rollout with the
 * rollout's nginx.conf copied over its mount target, as deploy bakes it (config-images.ts),
 * pushed beside it (tag rollout-<id>).
 */
export async function bakeAndPush(
  ctx: BuildContext,
  base: string,
  files: Record<string, string>,
  opts: PushTo,
): Promise<string> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { rolloutBakeDockerfile } = await import('../../core/deploy/config-images.js');
  const context = path.join(
    path.dirname(path.resolve(opts.file)),
    'deploy',
    'ecs',
    'images',
    'proxy-rollout',
  );
  await mkdir(path.join(context, 'mounts'), { recursive: true });
  const targets = Object.keys(files);
  for (const [i, t] of targets.entries()) await writeFile(path.join(context, 'mounts', String(i)), files[t]!);
  await writeFile(path.join(context, 'Dockerfile'), rolloutBakeDockerfile(base, targets));
  ctx.io.info(`baking the rollout's routing into the proxy image (FROM ${base})`);
  return buildPushBeside(ctx, context, 'mlship-proxy/rollout:dev', base, 'rollout', opts);
}

/** Builds `context`, tags the result `<prefix>-<image id>` in `beside`'s repository (or --registry), pushes it. */
async function buildPushBeside(
  ctx: BuildContext,
  context: string,
  local: string,
  beside: string,
  prefix: string,
  opts: PushTo,
): Promise<string> {
  const { formatImageRef, imageName, inRegistry, parseImageRef, withTag } = await import(
    '../../config/image-ref.js'
  );
  const engine = await ctx.engine();
  const built = await engine.build({ context, tags: [local] });
  const base = parseImageRef(beside);
  const ref = withTag(
    opts.registry ? inRegistry(base, opts.registry) : base,
    `${prefix}-${built.imageId.replace(/^sha256:/, '').slice(0, 12)}`,
  );
  await engine.tag(local, imageName(ref), ref.tag!);
  await engine.push(formatImageRef(ref), opts.registry ? undefined : await opts.ecr.authorization());
  ctx.io.info(`pushed ${formatImageRef(ref)}`);
  return formatImageRef(ref);
}
