import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { awsSummary, describeAws, type ResolvedAws } from '../../core/aws/aws-config.js';
import type { EcsPlanResult } from '../../core/deploy/plan.js';
import { UsageError } from '../../io/errors.js';
import type { IoHost } from '../../io/io-host.js';
import type { CliContext, Register } from '../context.js';
import { stackAndAws } from '../deployed-stack.js';
import { examples } from '../examples.js';
import { addK8sCommand } from './deploy-k8s.js';

interface EcsFlags {
  file: string;
  out?: string;
  region?: string;
  accountId?: string;
  executionRoleArn?: string;
  taskRoleArn?: string;
  tag?: string;
  gpuInstance?: string;
  certificateArn?: string;
  logsGb: string;
  force: boolean;
  apply: boolean;
  destroy: boolean;
  scale?: string;
  build: boolean;
  movingTag?: string;
  registry?: string;
  endpointUrl?: string;
  profile?: string;
  subnets?: string;
  securityGroups?: string;
  wait: boolean;
  waitTimeout?: string;
  bakeMounts: boolean;
  keepDbContainer: boolean;
  kmsKey?: string;
  deleteData: boolean;
  local: boolean;
  down: boolean;
  localEndpointUrl?: string;
  budget?: string;
  alertEmail?: string;
  wafRateLimit?: string;
  monitoring: boolean;
}

function render(io: IoHost, r: EcsPlanResult, cwd: string, aws: ResolvedAws): string {
  const money = (n: number) => `$${n.toFixed(2)}`;
  const width = Math.max(...r.cost.lines.map((l) => l.item.length));
  return [
    `plan for stack ${r.stack} (nothing was sent to AWS):`,
    io.style('dim', `  AWS: ${describeAws(aws).join(', ')}`),
    ...r.plan.map((p) => `  + ${p}`),
    '',
    `estimated monthly cost (${r.cost.pricesRegion} list prices of ${r.cost.pricesDate}):`,
    ...r.cost.lines.map(
      (l) => `  ${l.item.padEnd(width)}  ${money(l.monthlyUsd).padStart(9)}  ${io.style('dim', l.detail)}`,
    ),
    `  ${'total'.padEnd(width)}  ${money(r.cost.totalMonthlyUsd).padStart(9)}`,
    ...(r.cost.worstCase
      ? [
          `  ${'worst case'.padEnd(width)}  ${money(r.cost.worstCase.totalMonthlyUsd).padStart(9)}  ${io.style('dim', `at maximum scale: ${r.cost.worstCase.detail}`)}`,
        ]
      : []),
    ...(r.cost.note ? [io.style('dim', `  ${r.cost.note}`)] : []),
    '',
    ...(r.translation.refusals.length
      ? [
          io.style(
            'fail',
            `--apply would refuse ${r.translation.refusals.length} thing(s) that could not work on ECS:`,
          ),
          ...r.translation.refusals.map(
            (w) =>
              `  ${w.file}:${w.line}:${w.column} ${w.path}: ${w.message}${w.fix ? io.style('dim', ` (fix: ${w.fix})`) : ''}`,
          ),
          '',
        ]
      : []),
    ...(r.translation.warnings.length
      ? [
          `${r.translation.warnings.length} thing(s) not carried over as they are:`,
          ...r.translation.warnings.map(
            (w) =>
              `  ${w.file}:${w.line}:${w.column} ${w.path}: ${w.message}${w.fix ? io.style('dim', ` (fix: ${w.fix})`) : ''}`,
          ),
          '',
        ]
      : []),
    `wrote ${r.written.length} files to ${path.relative(cwd, r.outDir) || r.outDir}`,
  ].join('\n');
}

/**
 * The AWS flags of deploy ecs (resolved with the stack by ../deployed-stack.ts).
 */
type AwsFlags = Pick<EcsFlags, 'file' | 'region' | 'accountId' | 'profile' | 'endpointUrl'>;
/** What the stack's names depend on (`mlship top --aws` reads them too). */
export type StackFlags = AwsFlags &
  Pick<EcsFlags, 'tag' | 'force' | 'budget' | 'alertEmail' | 'wafRateLimit' | 'monitoring'>;

/**
 * The stack's local .env (the passwords compose generated, or a compose file's own): its values
 * become SSM parameters the task definitions read, when missing. Never printed.
 */
async function localEnv(
  loaded: { project?: unknown; baseDir: string },
  file: string,
): Promise<Record<string, string>> {
  const { readFile } = await import('node:fs/promises');
  const { parseEnv } = await import('../../core/compose/generate.js');
  const envFile = loaded.project
    ? path.join(loaded.baseDir, '.env')
    : path.join(path.dirname(path.resolve(file)), '.env');
  const text = await readFile(envFile, 'utf8').catch(() => '');
  return Object.fromEntries(parseEnv(text));
}

/** Checksums of weights files between runs, in the user's cache folder (never in the project). */
function checksumCacheFile(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'mlship', 'checksums.json');
}

/** The stack's names (services, families, load balancer) for --scale and --destroy: no files written. */
export async function stackNames(ctx: CliContext, flags: StackFlags) {
  const { planEcs } = await import('../../core/deploy/plan.js');
  const { loaded, aws } = await stackAndAws(ctx, flags, 'required');
  const { operateOptions } = await import('./deploy-operate.js');
  const plan = await planEcs({
    file: path.resolve(ctx.cwd, flags.file),
    imageTag: flags.tag ?? 'latest',
    force: flags.force,
    writeFiles: false,
    loaded,
    operate: operateOptions(flags),
    ...(aws.region ? { region: aws.region } : {}),
    ...(aws.accountId ? { accountId: aws.accountId } : {}),
  });
  return { plan, aws };
}

function awsTarget(aws: ResolvedAws, region: string) {
  return {
    region,
    ...(aws.profile ? { profile: aws.profile } : {}),
    ...(aws.endpointUrl ? { endpointUrl: aws.endpointUrl } : {}),
  };
}

/**
 * The AWS APIs for the plan's region, through the SDK chain (or --profile, --endpoint-url);
 * what they create carries the stack's tag (budgets filter on it, the post-destroy scan finds it).
 */
export async function deployApis(aws: ResolvedAws, region: string, stack?: string) {
  const { createDeployApis } = await import('../../adapters/aws/deploy-apis.js');
  return createDeployApis({
    ...awsTarget(aws, region),
    ...(stack ? { tags: { 'mlship:stack': stack } } : {}),
  });
}

/** `--scale web=2,llm=0`: the desired task count of deployed services, nothing else. */
async function scale(ctx: CliContext, flags: EcsFlags, text: string): Promise<void> {
  const { parseScale, scaleEcs } = await import('../../core/deploy/scale.js');
  const { plan: r, aws: resolved } = await stackNames(ctx, flags);
  const wanted = parseScale(text, r);
  const aws = await deployApis(resolved, r.region, r.stack);
  try {
    const changes = await scaleEcs(r, wanted, aws);
    ctx.io.result(
      { ok: true, stack: r.stack, scaled: changes },
      changes
        .map(
          (c) =>
            `service ${c.service}${c.containers.length > 1 || c.containers[0] !== c.service ? ` (${c.containers.join(', ')})` : ''}: ${c.from === c.to ? `already ${c.to} task(s)` : `${c.from} → ${c.to} task(s)`}${c.to === 0 && r.translation.services.find((s) => s.name === c.service)?.launchType === 'EC2' ? '; its GPU instances stop once idle' : ''}`,
        )
        .join('\n'),
    );
  } finally {
    aws.destroy();
  }
}

/**
 * An apply while a rollout runs on ECS would replace the revision the rollout compares against
 * and the listener it weighs: promote or roll back first.
 */
async function refuseDuringRollout(file: string): Promise<void> {
  const { ecsRolloutsFile, readRollouts } = await import('../../core/rollout/state.js');
  const { rollouts } = await readRollouts(ecsRolloutsFile(file));
  const running = Object.values(rollouts).filter((r) => r.status === 'running');
  if (running.length)
    throw new UsageError(`a rollout of ${running.map((r) => r.service).join(', ')} is running on ECS`, {
      hint: `finish it first: mlship rollout promote ${running[0]!.service} --target ecs (or rollback)`,
    });
}

/** `--destroy`: confirmed (a prompt, or --yes), then everything `--apply` created but images and logs. */
async function destroy(ctx: CliContext, flags: EcsFlags): Promise<void> {
  const { plan: r, aws: resolved } = await stackNames(ctx, flags);
  const what = `the services, load balancer, task definitions and cluster of stack ${r.stack} in ${r.region}${flags.deleteData ? ', AND its database (after a final snapshot) and its bucket with every object' : ''}`;
  if (!ctx.global.yes) {
    if (!ctx.io.prompter.interactive) {
      throw new UsageError(`--destroy deletes ${what}; confirm with --yes`, {
        hint: `mlship deploy ecs --destroy --yes${flags.file === 'mlship.yaml' ? '' : ` -f ${flags.file}`}`,
      });
    }
    if (
      !(await ctx.io.prompter.confirm(
        `delete ${what}? (images and logs are kept${flags.deleteData ? '' : ', and so is the data'})`,
        false,
      ))
    ) {
      ctx.io.info('nothing was deleted');
      return;
    }
  }
  const waitTimeout = flags.waitTimeout === undefined ? undefined : Number(flags.waitTimeout);
  if (waitTimeout !== undefined && !(waitTimeout > 0))
    throw new UsageError(`--wait-timeout ${flags.waitTimeout} is not a positive number of seconds`);
  const { destroyEcs } = await import('../../core/deploy/destroy.js');
  const { destroyOperate, scanLeftovers } = await import('../../core/deploy/operate.js');
  const aws = await deployApis(resolved, r.region, r.stack);
  try {
    // First: the web ACL leaves the load balancer while it still exists.
    const operateRemoved = await destroyOperate(r, { aws, log: (l) => ctx.io.info(l) });
    const done = await destroyEcs(
      r,
      { aws, log: (l) => ctx.io.info(l) },
      {
        ...(flags.securityGroups ? { securityGroups: flags.securityGroups.split(',') } : {}),
        ...(waitTimeout ? { waitTimeoutSeconds: waitTimeout } : {}),
        deleteData: flags.deleteData,
      },
    );
    done.removed.unshift(...operateRemoved);
    const { renderScan } = await import('./deploy-operate.js');
    // Secrets just deleted stay listed (recoverable) for 7 days, unbilled.
    const deletedSecrets = done.removed.flatMap((x) => /^secret (\S+)/.exec(x)?.[1] ?? []);
    const scan = await scanLeftovers(
      r,
      { aws, log: (l) => ctx.io.info(l) },
      { deleteData: flags.deleteData, deletedSecrets },
    );
    ctx.io.result(
      { ok: done.remaining.length === 0, stack: r.stack, destroyed: done, scan },
      [
        done.removed.length
          ? `removed ${done.removed.length} resource(s) of stack ${r.stack}`
          : `nothing of stack ${r.stack} was left to remove`,
        ...done.kept.map((k) => `kept ${k}`),
        ...done.remaining.map((k) => `not yet removed: ${k}; run --destroy again in a few minutes`),
        ...renderScan(r.stack, scan),
      ].join('\n'),
    );
    if (done.remaining.length) process.exitCode = 1;
  } finally {
    aws.destroy();
  }
}

export const registerDeploy: Register = (program: Command, holder) => {
  const deploy = program
    .command('deploy')
    .description('step 5: run the stack on AWS ECS (or write it as Kubernetes manifests)');
  deploy
    .command('ecs')
    .description(
      'translate the stack into ECS task definitions and services, with a plan and a cost estimate',
    )
    .option('-f, --file <path>', 'mlship.yaml or a compose file', 'mlship.yaml')
    .option('-o, --out <dir>', 'where to write the files (default: deploy/ecs beside the stack file)')
    .option('--region <region>', 'AWS region (default: aws.region in mlship.yaml)')
    .option('--account-id <id>', 'AWS account id (default: aws.account_id in mlship.yaml)')
    .option('--execution-role-arn <arn>', 'task execution role')
    .option('--task-role-arn <arn>', 'task role')
    .option('--tag <tag>', 'image tag pushed to ECR (default: the git commit)')
    .option(
      '--gpu-instance <type>',
      'EC2 instance type for the GPU task (default: the cheapest that holds its GPUs and memory)',
    )
    .option(
      '--certificate-arn <arn>',
      'ACM certificate: the load balancer serves HTTPS (port 80 becomes 443, and 80 redirects to it)',
    )
    .option('--logs-gb <n>', 'log volume per service per month, for the estimate', '1')
    .option(
      '--apply',
      'create or update everything on AWS (default: only write the files and the plan)',
      false,
    )
    .option(
      '--destroy',
      'delete what --apply created (services, load balancer, task definitions, cluster); images and logs are kept',
      false,
    )
    .option(
      '--keep-db-container',
      'run a database service as a task, as before (its data does not survive a restart), instead of Aurora or RDS',
      false,
    )
    .option('--kms-key <id>', "SSE-KMS key (id or ARN) of the stack's bucket (default: SSE-S3)")
    .option(
      '--delete-data',
      "with --destroy: also delete the stack's database (after a final snapshot, which is kept and named) and its bucket",
      false,
    )
    .option(
      '--local',
      "run the stack's task definitions on this machine's Docker engine as ECS would (the deployed revisions when there are, else the planned ones) and report each container",
      false,
    )
    .option('--down', 'with --local: stop and remove what --local started', false)
    .option(
      '--local-endpoint-url <url>',
      'with --local: the AWS endpoint as containers reach it (default: --endpoint-url, with loopback as host.docker.internal)',
    )
    .option(
      '--scale <service=tasks,...>',
      'set how many tasks deployed services run (0 stops one; a GPU service at 0 stops its instances)',
    )
    .option('--registry <host>', 'push images here instead of ECR (registry emulators, pull-through setups)')
    .option('--endpoint-url <url>', 'AWS endpoint override (emulators such as moto)')
    .option('--profile <name>', 'AWS profile (default: the SDK chain: env, AWS_PROFILE, SSO, instance role)')
    .option('--subnets <ids>', 'subnets for the tasks (default: the default VPC)')
    .option('--security-groups <ids>', "security groups for the tasks (default: the default VPC's)")
    .option(
      '--moving-tag <tag>',
      'also push each built image under this tag, e.g. latest (task definitions keep the commit tag)',
    )
    .option('--no-build', 'push the images as they are on this machine, without building them first')
    .option(
      '--bake-mounts',
      "a compose file's read-only bind mounts (config files) are copied into images of the stack, as ECS tasks have no host files",
      false,
    )
    .option('--no-wait', 'do not wait until the created or updated services are stable')
    .option(
      '--budget <usd>',
      "a monthly AWS Budget for the stack's cost-allocation tag, with forecast alerts at 50/80/100% (default: aws.budget_usd)",
    )
    .option(
      '--alert-email <address>',
      'where alarms and budget alerts go (an SNS topic; confirm its e-mail once)',
    )
    .option(
      '--waf-rate-limit <requests>',
      'AWS WAF on the load balancer: block an IP address above this many requests in 5 minutes (default: aws.waf)',
    )
    .option('--no-monitoring', "no CloudWatch dashboard, alarms or services' metrics (aws.monitoring: false)")
    .option(
      '--wait-timeout <seconds>',
      'give up waiting after this long (default: the longest health-check grace + 600)',
    )
    .option(
      '--force',
      'redeploy services even when nothing changed; write into a folder mlship did not create',
      false,
    )
    .addHelpText(
      'after',
      examples([
        ['mlship deploy ecs', 'deploy/ecs/*.json and the plan for mlship.yaml'],
        [
          'mlship deploy ecs -f docker-compose.yml --region eu-west-1 --account-id 123456789012',
          'from a compose file',
        ],
        ['mlship deploy ecs --json | jq .cost', 'the itemised estimate, for tools'],
        ['mlship deploy ecs --apply', 'create or update images, cluster, task definitions and services'],
        ['mlship deploy ecs --destroy --yes', 'stop paying: delete the services, load balancer and cluster'],
        ['mlship deploy ecs --scale llm=0', 'stop a GPU model (and its instance) without deleting it'],
        [
          'mlship deploy ecs --apply --endpoint-url http://127.0.0.1:5123 --registry 127.0.0.1:5000',
          'against emulators',
        ],
        ['mlship deploy ecs --local', 'prove the deployed task definitions start: run them on this engine'],
      ]),
    )
    .action(async (flags: EcsFlags) => {
      const ctx = holder.get();
      const { planEcs } = await import('../../core/deploy/plan.js');
      const { operateOptions } = await import('./deploy-operate.js');
      if (flags.movingTag !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(flags.movingTag)) {
        const { UsageError } = await import('../../io/errors.js');
        throw new UsageError(`--moving-tag "${flags.movingTag}" is not a valid image tag`, {
          hint: 'letters, digits, "_", "." and "-", at most 128 characters (e.g. latest, stable)',
        });
      }
      if (
        flags.certificateArn !== undefined &&
        !/^arn:aws[a-z-]*:(acm:[a-z0-9-]+:\d{12}:certificate\/|iam::\d{12}:server-certificate\/)\S+$/.test(
          flags.certificateArn,
        )
      ) {
        throw new UsageError(`--certificate-arn "${flags.certificateArn}" is not a certificate ARN`, {
          hint: 'an ACM certificate of the deploy region, e.g. arn:aws:acm:eu-west-1:123456789012:certificate/<id> (aws acm list-certificates)',
        });
      }
      if ([flags.apply, flags.destroy, flags.scale !== undefined, flags.local].filter(Boolean).length > 1)
        throw new UsageError('--apply, --destroy, --scale and --local exclude each other', {
          hint: 'apply first, then run what was deployed with --local',
        });
      if (flags.deleteData && !flags.destroy)
        throw new UsageError('--delete-data goes with --destroy', {
          hint: 'mlship deploy ecs --destroy --delete-data',
        });
      if (flags.down && !flags.local)
        throw new UsageError('--down goes with --local', { hint: 'mlship deploy ecs --local --down' });
      if (flags.scale !== undefined) {
        await scale(ctx, flags, flags.scale);
        return;
      }
      if (flags.destroy) {
        await destroy(ctx, flags);
        return;
      }
      if (flags.apply) await refuseDuringRollout(path.resolve(ctx.cwd, flags.file));
      const { resolveImageTag } = await import('../image-tag.js');
      const tag = await resolveImageTag(
        ctx.io,
        path.dirname(path.resolve(ctx.cwd, flags.file)),
        flags.tag,
        flags.apply,
      );
      const { loaded, aws: resolved } = await stackAndAws(
        ctx,
        flags,
        flags.apply || flags.local ? 'required' : 'if-needed',
      );
      const r = await planEcs({
        file: path.resolve(ctx.cwd, flags.file),
        loaded,
        imageTag: tag,
        force: flags.force,
        logsGbPerServiceMonth: Number(flags.logsGb),
        ...(flags.out ? { outDir: flags.out } : {}),
        ...(resolved.region ? { region: resolved.region } : {}),
        ...(resolved.accountId ? { accountId: resolved.accountId } : {}),
        ...(flags.executionRoleArn ? { executionRoleArn: flags.executionRoleArn } : {}),
        ...(flags.taskRoleArn ? { taskRoleArn: flags.taskRoleArn } : {}),
        ...(flags.gpuInstance ? { gpuInstanceType: flags.gpuInstance } : {}),
        ...(flags.certificateArn ? { certificateArn: flags.certificateArn } : {}),
        bakeMounts: flags.bakeMounts,
        keepDbContainer: flags.keepDbContainer,
        ...(flags.kmsKey ? { kmsKeyId: flags.kmsKey } : {}),
        checksumCache: checksumCacheFile(ctx.env),
        // The GPU fit (image × instance type × AMI driver); --apply reads the region's AMI.
        gpuFit: (await import('../gpu-fit-source.js')).gpuFitSource(
          ctx,
          flags.apply && resolved.region ? awsTarget(resolved, resolved.region) : undefined,
        ),
        operate: operateOptions(flags),
      });
      if (flags.certificateArn && !r.loadBalancer)
        ctx.io.warn(
          '--certificate-arn is not used: no service publishes a port, so there is no load balancer',
        );
      if (flags.local) {
        const { runLocal } = await import('./deploy-local.js');
        const aws = await deployApis(resolved, r.region, r.stack);
        try {
          await runLocal(ctx, r, flags, aws);
        } finally {
          aws.destroy();
        }
        return;
      }
      if (!flags.apply) {
        ctx.io.result(
          {
            ok: true,
            stack: r.stack,
            aws: awsSummary(resolved),
            outDir: r.outDir,
            written: r.written,
            plan: r.plan,
            cost: r.cost,
            ...(r.loadBalancer ? { loadBalancer: r.loadBalancer } : {}),
            warnings: r.translation.warnings,
          },
          render(ctx.io, r, ctx.cwd, resolved),
        );
        return;
      }
      const waitTimeout = flags.waitTimeout === undefined ? undefined : Number(flags.waitTimeout);
      if (waitTimeout !== undefined && !(waitTimeout > 0))
        throw new UsageError(`--wait-timeout ${flags.waitTimeout} is not a positive number of seconds`);
      ctx.io.info(render(ctx.io, r, ctx.cwd, resolved));
      const { applyEcs } = await import('../../core/deploy/apply.js');
      const { buildStackImages, findLocalImages, imagePrograms } = await import(
        '../../core/deploy/images.js'
      );
      const engine = await ctx.engine();
      await buildStackImages(r, { engine, tasks: ctx.io.tasks }, { sourceBuilds: flags.build });
      const localImages = await findLocalImages(r, { engine });
      const aws = await deployApis(resolved, r.region, r.stack);
      const { applyOperate } = await import('./deploy-operate.js');
      try {
        const operate = applyOperate(ctx, r, aws, flags.file);
        let apiKeys: Awaited<ReturnType<typeof operate.before>>;
        const applied = await applyEcs(
          r,
          {
            aws,
            engine,
            log: (l) => ctx.io.info(l),
            tasks: ctx.io.tasks,
            imagePrograms: (image, programs) => imagePrograms(engine, image, programs),
          },
          {
            localImages,
            force: flags.force,
            wait: flags.wait,
            ...(waitTimeout ? { waitTimeoutSeconds: waitTimeout } : {}),
            ...(flags.registry ? { registry: flags.registry } : {}),
            ...(flags.movingTag ? { movingTag: flags.movingTag } : {}),
            ...(flags.subnets ? { subnets: flags.subnets.split(',') } : {}),
            ...(flags.securityGroups ? { securityGroups: flags.securityGroups.split(',') } : {}),
            ...(flags.gpuInstance ? { gpuInstanceType: flags.gpuInstance } : {}),
            // Emulators have no IAM propagation delay to wait out.
            ...(flags.endpointUrl ? { iamPropagationSeconds: 0 } : {}),
            localSecrets: await localEnv(loaded, flags.file),
            beforeChecks: async () => {
              apiKeys = await operate.before();
            },
          },
        );
        const operated = await operate.after(apiKeys, applied.services);
        const lines = [
          ...(applied.bucket
            ? [`bucket ${applied.bucket.name}: ${applied.bucket.created ? 'created' : 'exists'}`]
            : []),
          ...applied.weights.map(
            (w) =>
              `weights of ${w.service}: ${w.skipped ? 'already in the bucket, 0 bytes sent' : `${w.uploadedBytes} bytes sent${w.resumedBytes ? `, ${w.resumedBytes} resumed` : ''}`} (${w.url})`,
          ),
          ...applied.roles.map(
            (x) =>
              `IAM role ${x.name}: ${x.created ? 'created' : x.changed.length ? 'updated' : 'unchanged'}`,
          ),
          ...applied.secretsCreated.map((s) => `SSM parameter ${s}: created from the stack's .env`),
          ...applied.databases.map(
            (d) =>
              `database ${d.identifier} (${d.engine} ${d.engineVersion}): ${d.created ? 'created' : d.changed.length ? `changed: ${d.changed.join(', ')}` : 'unchanged'}; its clients read secret ${d.secret}`,
          ),
          `cluster ${applied.cluster.name}: ${applied.cluster.created ? 'created' : 'exists'}; log group ${applied.logGroup.name}: ${applied.logGroup.created ? 'created' : 'exists'}`,
          ...applied.pushes.map(
            (p) =>
              `image ${p.image}: ${p.skipped ? 'already there' : `pushed (${p.layersPushed ?? 0} new layer(s))`}`,
          ),
          ...applied.taskDefinitions.map(
            (t) => `task definition ${t.family}: ${t.registered ? 'registered' : 'unchanged'}`,
          ),
          ...(applied.loadBalancer
            ? [
                `load balancer ${applied.loadBalancer.name}: ${applied.loadBalancer.created ? 'created' : 'exists'} (${applied.loadBalancer.dnsName}); ${applied.loadBalancer.listeners
                  .map(
                    (l) =>
                      `listener ${l.protocol} :${l.port} ${l.redirectToHttps ? `→ HTTPS :${l.redirectToHttps}` : `→ ${l.container}:${l.containerPort}`} ${l.created ? 'created' : l.changed ? 'updated' : 'unchanged'}`,
                  )
                  .join(', ')}`,
              ]
            : []),
          ...applied.services.map(
            (x) =>
              `service ${x.name}: ${x.action}${applied.stable.some((s) => s.name === x.name) ? ', stable' : ''}`,
          ),
          ...applied.endpoints.flatMap((e) => [
            ...(e.serviceConnect
              ? [
                  `endpoint ${e.service}: ${e.serviceConnect.dnsName}:${e.serviceConnect.port} (Service Connect, namespace ${e.serviceConnect.namespace})`,
                ]
              : []),
            ...e.public.map((p) => `endpoint ${e.service}: ${p.note}`),
          ]),
          ...operate.lines(operated),
        ];
        ctx.io.result(
          {
            ok: true,
            stack: r.stack,
            aws: awsSummary(resolved),
            outDir: r.outDir,
            plan: r.plan,
            cost: r.cost,
            applied: { ...applied, operate: operated },
          },
          lines.join('\n'),
        );
      } finally {
        aws.destroy();
      }
    });
  addK8sCommand(deploy, holder);
};
