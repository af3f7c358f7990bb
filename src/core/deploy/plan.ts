// `mlship deploy ecs` (files mode): the stack → ECS task definitions, service plans and a
// cluster file under deploy/ecs/, the images of the stack (built services, and the files
// services mount locally baked into images), the stack's bucket and the weights it will
// hold, the roles the tasks run with, a plan of what would be created and an itemised
// monthly cost estimate. Nothing is sent to AWS here.

import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Project } from '../../config/schema.js';
import type { Stack } from '../../config/stack-model.js';
import { type EcsTranslation, taskGpus, translateToEcs } from '../../generators/ecs-task-definitions.js';
import { FileExistsError } from '../../io/errors.js';
import { exists, writeFileAtomic } from '../../io/files.js';
import { requireAccount, requireRegion } from '../aws/aws-config.js';
import type { ServiceRoleSpec } from './aws-apis.js';
import { type BakePlan, bakeWarning, planBakes } from './config-images.js';
import { type CostEstimate, type CostLine, estimateCost, usd } from './cost.js';
import { type ManagedDatabase, manageDatabases } from './database.js';
import { type DeployStack, loadDeployStack } from './deploy-stack.js';
import { type EfsVolumePlan, efsPlaceholders, planEfs } from './efs.js';
import { assertGpuFit, type GpuFit, type GpuFitSource, gpuFitOfPlan } from './gpu-fit.js';
import { type LoadBalancerPlan, loadBalancerOf, loadBalancerPlanLines } from './load-balancer-plan.js';
import {
  type OperateOptions,
  type OperatePlan,
  operateCostLines,
  operatePlanLines,
  planOperate,
  worstCase,
} from './operate-plan.js';
import { DEFAULT_GPU_INSTANCE, gpuInstanceFor, HOURS_PER_MONTH, PRICES } from './prices.js';
import {
  type ManagedQueue,
  manageQueues,
  queueCost,
  queuePlanLines,
  withWorkerServices,
  workerImages,
} from './queues.js';
import { roleArn, roleSpecs, type TaskRoleNeeds } from './roles.js';
import { type ManagedStorage, manageStorage } from './storage.js';
import { ChecksumCache, formatBytes, planWeights, stackBucketName, type WeightsPlan } from './weights.js';

export type { CostLine } from './cost.js';
export type { DeployStack } from './deploy-stack.js';
export { loadDeployStack, stackFromProject } from './deploy-stack.js';
export {
  type ListenerPlan,
  type LoadBalancerPlan,
  loadBalancerNames,
  loadBalancerOf,
} from './load-balancer-plan.js';
export { awsName } from './names.js';

export interface EcsPlanOptions {
  file: string;
  outDir?: string;
  region?: string;
  accountId?: string;
  executionRoleArn?: string;
  taskRoleArn?: string;
  /** Tag of the images pushed to ECR (the git commit). */
  imageTag: string;
  gpuInstanceType?: string;
  /** ACM certificate for HTTPS listeners on the shared load balancer. */
  certificateArn?: string;
  /** Log volume per service per month, for the estimate. */
  logsGbPerServiceMonth?: number;
  force: boolean;
  /** Write deploy/ecs/ (default); `--destroy` only needs the names. */
  writeFiles?: boolean;
  /** The stack, when the caller already read it (so mlship.yaml is read once). */
  loaded?: DeployStack;
  /** Bake every read-only bind mount of a compose file's services into images (--bake-mounts). */
  bakeMounts?: boolean;
  /** Where checksums of weights files are kept between runs (a JSON file); none: hash each time. */
  checksumCache?: string;
  /** Keep database services as tasks (their data does not survive a restart), as before. */
  keepDbContainer?: boolean;
  /** SSE-KMS key of the stack's bucket (default SSE-S3). */
  kmsKeyId?: string;
  /** Check the GPU images against the instance type and the GPU AMI's driver (gpu-fit.ts). */
  gpuFit?: GpuFitSource;
  /** Dashboard, alarms, alerts, budget and WAF of the stack (flags over aws.* of mlship.yaml). */
  operate?: OperateOptions;
}

/** An image `--apply` builds before pushing it: a service's own source, or its baked files. */
export interface ImageBuild {
  service: string;
  /** Local tag the build produces (what `mlship compose up` builds too). */
  tag: string;
  context: string;
  dockerfile?: string;
  target?: string;
  args?: Record<string, string>;
}

export interface EcsPlanResult {
  stack: string;
  /** The AWS region the plan is for (flag, else aws.region). */
  region: string;
  accountId: string;
  /** Images to build before a push, in order (a baked image builds on its service's own). */
  builds: ImageBuild[];
  /** The local image each container's ECR image is pushed from. */
  localImages: Record<string, string>;
  outDir: string;
  written: string[];
  translation: EcsTranslation;
  /** The stack's own bucket (weights, and the files of storage:), private and encrypted. */
  bucket: string;
  weights: WeightsPlan[];
  /** The database that becomes Aurora or RDS (with --keep-db-container: none). */
  databases: ManagedDatabase[];
  /** The local object storage that becomes the stack's bucket. */
  storage?: ManagedStorage;
  /** Named volumes that become EFS file systems. */
  efs: EfsVolumePlan[];
  /** The workers' SQS queues (and dead-letter queues), for the apply and for alarms on them. */
  queues?: ManagedQueue[];
  kmsKeyId?: string;
  bakes: BakePlan[];
  /** The roles mlship creates and owns (absent where the user names a role of their own). */
  roles: { execution?: ServiceRoleSpec; task?: ServiceRoleSpec };
  /** The shared load balancer, when a service publishes a port. */
  loadBalancer?: LoadBalancerPlan;
  /** EC2 instance type of the GPU task's instances (the estimate prices it). */
  gpuInstanceType: string;
  /** How each GPU container's image fits that instance type (when checked). */
  gpuFit?: GpuFit[];
  /** Dashboard, alarms, alerts, budget, WAF and API keys of the running stack. */
  operate?: OperatePlan;
  plan: string[];
  cost: CostEstimate;
}

export const GENERATED_MARKER = '.mlship-generated';

/** Which services ECR serves: those built from source, and those with baked files. */
function ecrImages(
  loaded: DeployStack,
  bakes: BakePlan[],
  registry: string,
  tag: string,
): Record<string, string> {
  const { stack } = loaded;
  const built = stack.services.filter(
    (s) => !s.image || s.image.startsWith(`${stack.name}/`) || s.image.endsWith(':dev'),
  );
  const names = new Set([...built.map((s) => s.name), ...bakes.map((b) => b.service)]);
  return Object.fromEntries(
    stack.services
      .filter((s) => names.has(s.name))
      .map((s) => [s.name, `${registry}/${stack.name}/${s.name}:${tag}`]),
  );
}

/** Source builds first, then the baked images that start from them. */
function buildsOf(
  loaded: DeployStack,
  images: Record<string, string>,
  bakes: BakePlan[],
  outDir: string,
): { builds: ImageBuild[]; localImages: Record<string, string> } {
  const { stack } = loaded;
  const builds: ImageBuild[] = stack.services
    .filter((s) => s.build && images[s.name])
    .map((s) => ({
      service: s.name,
      tag: `${stack.name}/${s.name}:dev`,
      context: path.resolve(loaded.baseDir, s.build!.context),
      ...(s.build!.dockerfile ? { dockerfile: s.build!.dockerfile } : {}),
      ...(s.build!.target ? { target: s.build!.target } : {}),
      ...(s.build!.args ? { args: s.build!.args } : {}),
    }));
  for (const b of bakes) builds.push({ service: b.service, tag: b.tag, context: bakeDir(outDir, b.service) });
  const localImages: Record<string, string> = {};
  for (const b of builds) localImages[b.service] = b.tag; // a baked image replaces the source one
  return { builds, localImages };
}

const bakeDir = (outDir: string, service: string) => path.join(outDir, 'images', service);

/**
 * The roles the tasks run with: the user's own where named, else mlship's per stack. The
 * task role only exists when the stack's tasks need to be allowed something (their weights).
 */
function roleArns(
  stack: string,
  accountId: string,
  project: Project | undefined,
  options: EcsPlanOptions,
  needs: TaskRoleNeeds,
) {
  const userExecution = options.executionRoleArn ?? project?.aws?.execution_role_arn;
  const userTask = options.taskRoleArn ?? project?.aws?.task_role_arn;
  const mlship = roleSpecs(stack, [], needs);
  const mlshipTask = Object.keys(mlship.task.inlinePolicies).length
    ? roleArn(accountId, mlship.task.name)
    : undefined;
  return {
    userExecution,
    userTask,
    execution: userExecution ?? roleArn(accountId, mlship.execution.name),
    task: userTask ?? mlshipTask,
  };
}

function planLines(
  r: Omit<EcsPlanResult, 'plan' | 'cost' | 'written' | 'outDir'>,
  explicit: boolean,
): string[] {
  const { translation } = r;
  const gpu = translation.services.some((s) => s.launchType === 'EC2');
  const gpuTask = translation.taskDefinitions.find((t) => t.requiresCompatibilities?.includes('EC2'));
  const uploads = r.weights.filter((w) => w.upload);
  return [
    `cluster ${r.stack} (Fargate${gpu ? ` + an EC2 capacity provider with ${r.gpuInstanceType}` : ''})`,
    ...(gpu && gpuTask
      ? [
          `GPU capacity mlship-${r.stack}-gpu: an Auto Scaling group of ${r.gpuInstanceType}${explicit ? '' : ` (the cheapest bundled type for ${taskGpus(gpuTask)} GPU(s) and ${gpuTask.memory} MiB; --gpu-instance to choose)`} (ECS GPU AMI, 100 GiB gp3) that ECS scales with the GPU task, from 0; an instance role and profile`,
          ...(r.gpuFit ?? []).flatMap((f) => f.lines),
          'note: GPU tasks (EC2, awsvpc) get no public IP: image pulls go through the instance, but their own outbound calls (weights from S3 or HTTPS) need a NAT gateway or VPC endpoints',
        ]
      : []),
    ...(uploads.length || r.storage
      ? [
          `S3 bucket ${r.bucket} (private: Block Public Access, ${r.kmsKeyId ? `SSE-KMS with ${r.kmsKeyId}` : 'SSE-S3'} encryption${r.storage?.versioning ? ', versioning' : ''}${r.storage?.expireUploadsDays ? `, uploads/ expire after ${r.storage.expireUploadsDays} days` : ''}; tagged mlship:stack)${r.storage ? `: the files of ${r.storage.service}, which is no task on ECS (its clients get S3_BUCKET and use the task role)` : ''}`,
        ]
      : []),
    ...r.efs.map(
      (e) =>
        `file system ${e.token} (EFS, encrypted at rest and in transit) for volume ${e.volume} of ${e.mounts.map((m) => `${m.service}:${m.target}`).join(', ')}; mount targets in the tasks' subnets, reachable from their security groups only`,
    ),
    ...r.databases.map(
      (d) =>
        `database ${d.identifier}: ${d.settings.kind === 'aurora' ? `Aurora Serverless v2 (${d.awsEngine}${d.localMajor !== undefined ? ` ${d.localMajor}` : ''}), ${d.settings.minCapacity}-${d.settings.maxCapacity} ACU${d.settings.minCapacity === 0 ? `, pauses after ${d.settings.secondsUntilAutoPause} s idle` : ''}` : `RDS ${d.settings.instanceClass} (${d.awsEngine}${d.localMajor !== undefined ? ` ${d.localMajor}` : ''})`} instead of the ${d.service} task; encrypted, private (the tasks' subnets, security group ${d.securityGroup} admits only the tasks), ${d.settings.backupRetentionDays}-day backups, deletion protection; credentials in Secrets Manager ${d.secretName} (the password is generated there, never printed)`,
    ),
    ...r.weights.map((w) =>
      w.upload
        ? `weights of ${w.service}: ${path.basename(w.upload.file)} (${formatBytes(w.upload.sizeBytes)}, sha256 ${w.sha256!.slice(0, 12)}…) → ${w.url}, uploaded unless already there; MODEL_URL and MODEL_SHA256 on the container`
        : `weights of ${w.service}: downloaded from ${w.url} at start-up (MODEL_URL)`,
    ),
    ...r.bakes.map(
      (b) =>
        `image ${r.stack}/${b.service} (baked): ${b.base} with ${b.mounts.join(', ')} copied in (${formatBytes(b.sizeBytes)}; locally mounted, no host files on ECS)`,
    ),
    ...(r.roles.execution
      ? [`IAM role ${r.roles.execution.name}: pulls images, writes logs, reads only the stack's own secrets`]
      : []),
    ...(r.roles.task
      ? [
          `IAM role ${r.roles.task.name}: the tasks' role, allowed ${Object.keys(r.roles.task.inlinePolicies).join(', ')} only`,
        ]
      : []),
    `log group ${translation.logGroup}`,
    ...Object.keys(r.localImages).map(
      (s) => `ECR repository ${r.stack}/${s} (scan on push, immutable tags, keep the last 20 images)`,
    ),
    ...translation.taskDefinitions.map(
      (td) =>
        `task definition ${td.family} (${td.requiresCompatibilities?.join(', ')}, ${td.containerDefinitions?.length} container(s)${td.ephemeralStorage ? `, ${td.ephemeralStorage.sizeInGiB} GiB task storage for its weights` : ''})`,
    ),
    ...queuePlanLines(r.queues ?? []),
    ...translation.services.map(
      (s) =>
        `service ${s.name}: ${s.desiredCount} × ${s.launchType}, Service Connect${s.publicPorts.length ? `, public port${s.publicPorts.length > 1 ? 's' : ''} ${s.publicPorts.map((p) => p.listener).join(', ')} via the shared load balancer` : ', no load balancer (not public)'}`,
    ),
    ...loadBalancerPlanLines(r.loadBalancer),
  ];
}

/** Refuses to write into a folder mlship did not create (without --force). */
async function checkOutDir(outDir: string, force: boolean): Promise<void> {
  if (force || !(await exists(outDir)) || (await exists(path.join(outDir, GENERATED_MARKER)))) return;
  if ((await readdir(outDir)).length > 0) throw new FileExistsError(outDir);
}

async function writePlanFiles(
  outDir: string,
  r: Omit<EcsPlanResult, 'written' | 'outDir'>,
): Promise<string[]> {
  const written: string[] = [];
  const write = async (rel: string, data: string | Buffer) => {
    const p = path.join(outDir, rel);
    await writeFileAtomic(p, data);
    written.push(p);
  };
  const json = (data: unknown) => `${JSON.stringify(data, null, 2)}\n`;
  for (const td of r.translation.taskDefinitions) await write(`task-definitions/${td.family}.json`, json(td));
  await write('services.json', json(r.translation.services));
  await write(
    'cluster.json',
    json({ clusterName: r.stack, logGroup: r.translation.logGroup, region: r.region }),
  );
  if (r.loadBalancer) await write('load-balancer.json', json(r.loadBalancer));
  for (const b of r.bakes) {
    await write(`images/${b.service}/Dockerfile`, b.dockerfile);
    for (const f of b.files) await write(`images/${b.service}/${f.path}`, f.content);
  }
  await write(
    'plan.json',
    json({ plan: r.plan, cost: r.cost, warnings: r.translation.warnings, refusals: r.translation.refusals }),
  );
  await writeFileAtomic(
    path.join(outDir, GENERATED_MARKER),
    'Files generated by `mlship deploy ecs`; regenerated on every run.\n',
  );
  return written;
}

/** What the stack's database costs: idle (Aurora paused: storage only), and at most. */
export function databaseCost(db: ManagedDatabase): { line: CostLine; worstMonthlyUsd: number } {
  const s = db.settings;
  const secret = PRICES.secretsManagerSecretMonth;
  if (s.kind === 'aurora') {
    const idle = s.minCapacity * PRICES.auroraAcuHour * HOURS_PER_MONTH + PRICES.auroraGbMonth + secret;
    return {
      line: {
        item: `Aurora Serverless v2 ${db.identifier}`,
        monthlyUsd: usd(idle),
        detail:
          s.minCapacity === 0
            ? `paused when idle: storage $${PRICES.auroraGbMonth}/GB-month and its secret; each active hour $${PRICES.auroraAcuHour} per ACU (1 GB assumed)`
            : `${s.minCapacity} ACU always on, storage $${PRICES.auroraGbMonth}/GB-month (1 GB assumed), its secret`,
      },
      worstMonthlyUsd: usd(
        s.maxCapacity * PRICES.auroraAcuHour * HOURS_PER_MONTH + PRICES.auroraGbMonth + secret,
      ),
    };
  }
  const hour = PRICES.rdsInstanceHour[s.instanceClass] ?? 0;
  const month = hour * HOURS_PER_MONTH + 20 * PRICES.rdsGp3GbMonth + secret;
  return {
    line: {
      item: `RDS ${s.instanceClass} ${db.identifier}`,
      monthlyUsd: usd(month),
      detail: hour ? `always on, 20 GB gp3, its secret` : `${s.instanceClass}: no bundled price`,
    },
    worstMonthlyUsd: usd(month),
  };
}

/** The estimate, plus what the stack's bucket keeps (the weights; S3 standard storage). */
function costOf(
  r: Omit<EcsPlanResult, 'cost' | 'plan' | 'written' | 'outDir'>,
  options: EcsPlanOptions,
): CostEstimate {
  const cost = estimateCost(r.translation, {
    gpuInstanceType: r.gpuInstanceType,
    logsGbPerServiceMonth: options.logsGbPerServiceMonth ?? 1,
  });
  const weightsGb = r.weights.reduce((n, w) => n + (w.upload?.sizeBytes ?? 0), 0) / 1024 ** 3;
  if (weightsGb > 0) {
    const line = {
      item: 'S3 (weights)',
      monthlyUsd: usd(weightsGb * PRICES.s3GbMonth),
      detail: `${weightsGb.toFixed(2)} GB kept in ${r.bucket}`,
    };
    cost.lines.push(line);
    cost.totalMonthlyUsd = usd(cost.totalMonthlyUsd + line.monthlyUsd);
  }
  if (r.efs.length) {
    cost.lines.push({
      item: 'EFS (volumes)',
      monthlyUsd: 0,
      detail: `${r.efs.map((e) => e.volume).join(', ')}: $${PRICES.efsGbMonth}/GB-month of what they hold, elastic throughput per GB read and written`,
    });
  }
  const queues = queueCost(r.translation, r.queues ?? []);
  cost.lines.push(...queues.lines);
  if (queues.notes.length) cost.note = [cost.note, ...queues.notes].filter(Boolean).join('; ');
  for (const db of r.databases) {
    const { line, worstMonthlyUsd } = databaseCost(db);
    cost.lines.push(line);
    cost.totalMonthlyUsd = usd(cost.totalMonthlyUsd + line.monthlyUsd);
    if (worstMonthlyUsd > line.monthlyUsd)
      cost.note = `${cost.note ? `${cost.note}; ` : ''}the database at its maximum ${db.settings.maxCapacity} ACU all month: $${worstMonthlyUsd.toFixed(2)}`;
  }
  return cost;
}

/** The estimate with what running the stack costs (dashboard, alarms, WAF), and its worst case. */
function withOperateCost(
  cost: CostEstimate,
  r: Omit<EcsPlanResult, 'cost' | 'plan' | 'written' | 'outDir'>,
): CostEstimate {
  // Beside the logs they come from; the stack's data stays last.
  const at = cost.lines.findIndex((l) => l.item === 'CloudWatch Logs') + 1 || cost.lines.length;
  const extra = operateCostLines(r.operate!, Boolean(r.loadBalancer));
  cost.lines.splice(at, 0, ...extra);
  cost.totalMonthlyUsd = usd(cost.totalMonthlyUsd + extra.reduce((n, l) => n + l.monthlyUsd, 0));
  const gpuTasks = r.translation.services
    .filter((s) => s.launchType === 'EC2')
    .reduce((n, s) => n + s.desiredCount, 0);
  cost.worstCase = worstCase(cost, {
    gpuTasks,
    ...(gpuTasks ? { gpuInstanceHourUsd: PRICES.gpuInstanceHour[r.gpuInstanceType] ?? 0 } : {}),
    databases: r.databases.map((db) => {
      const c = databaseCost(db);
      return { item: c.line.item, worstMonthlyUsd: c.worstMonthlyUsd };
    }),
  });
  return cost;
}

/**
 * The stateful half first: the database and the files move to managed services, then the
 * queues, and the services that use them are pointed there (what is left runs as tasks).
 */
function manageData(
  loaded: DeployStack,
  options: EcsPlanOptions,
  region: string,
  accountId: string,
  bucket: string,
) {
  const managedDb = manageDatabases(loaded.stack, loaded.project, {
    region,
    accountId,
    keepContainers: options.keepDbContainer ?? false,
  });
  const managedFiles = manageStorage(managedDb.stack, loaded.project, bucket);
  const managedQueues = manageQueues(managedFiles.stack, loaded.project, { region, accountId });
  return { managedDb, managedFiles, managedQueues };
}

/** The managed services' and the baked volumes' warnings beside the translation's, the queues' refusals, the workers. */
function gatherWarnings(
  translation: EcsPlanResult['translation'],
  stack: Stack,
  managedWarnings: EcsPlanResult['translation']['warnings'],
  managedQueues: ReturnType<typeof manageQueues>,
  bakes: EcsPlanResult['bakes'],
): void {
  translation.warnings.unshift(...stack.warnings, ...managedWarnings);
  translation.refusals.push(...managedQueues.refusals);
  withWorkerServices(translation, managedQueues.queues);
  for (const b of bakes) {
    const message = bakeWarning(b);
    if (message)
      translation.warnings.push({
        file: stack.file,
        line: 1,
        column: 1,
        path: `services.${b.service}.volumes`,
        message,
      });
  }
}

/** The roles mlship creates: the execution role unless the user names one, the task role when a task needs one. */
function rolesToCreate(
  stackName: string,
  translation: EcsPlanResult['translation'],
  taskNeeds: Parameters<typeof roleSpecs>[2],
  arns: { userExecution?: unknown; userTask?: unknown; task?: unknown },
): EcsPlanResult['roles'] {
  const specs = roleSpecs(stackName, translation.taskDefinitions, taskNeeds);
  return {
    ...(arns.userExecution ? {} : { execution: specs.execution }),
    ...(!arns.userTask && arns.task ? { task: specs.task } : {}),
  };
}

export async function planEcs(options: EcsPlanOptions): Promise<EcsPlanResult> {
  const loaded = options.loaded ?? (await loadDeployStack(options.file));
  const { project } = loaded;
  // The CLI resolves both as every AWS command does (core/aws/aws-config.ts); direct callers
  // may pass them or rely on mlship.yaml.
  const region = requireRegion({ region: options.region ?? project?.aws?.region });
  const accountId = requireAccount({ accountId: options.accountId ?? project?.aws?.account_id });
  const outDir = path.resolve(
    options.outDir ?? path.join(path.dirname(path.resolve(options.file)), 'deploy', 'ecs'),
  );
  const bucket = stackBucketName(loaded.stack.name, accountId, region);
  const { managedDb, managedFiles, managedQueues } = manageData(loaded, options, region, accountId, bucket);
  const stack = managedQueues.stack;
  const tasks = await planTasks(
    loaded,
    stack,
    options,
    { region, accountId, bucket, outDir },
    {
      storage: Boolean(managedFiles.storage),
      queues: managedQueues.queues,
    },
  );
  const { translation, bakes, weights, efs, taskNeeds, arns } = tasks;
  gatherWarnings(translation, stack, [...managedDb.warnings, ...managedFiles.warnings], managedQueues, bakes);
  // Before the roles: the proxy's API keys secret is one the execution role must read.
  const operate = planOperate(
    stack,
    translation,
    project,
    {
      ...options.operate,
      // The workers' queues: a backlog panel, and an alarm when a dead-letter queue is not empty.
      queues: managedQueues.queues.map((q) => ({ name: q.name, deadLetter: q.deadLetter.name })),
    },
    region,
    accountId,
  );
  const roles = rolesToCreate(stack.name, translation, taskNeeds, arns);
  const { gpuInstanceType, gpuFit } = await planGpu(stack.name, translation, options);
  const loadBalancer = loadBalancerOf(stack.name, translation, options.certificateArn);
  const partial = {
    stack: stack.name,
    region,
    accountId,
    builds: tasks.builds,
    localImages: tasks.localImages,
    translation,
    bucket,
    weights,
    databases: managedDb.databases,
    efs,
    ...(managedFiles.storage ? { storage: managedFiles.storage } : {}),
    ...(managedQueues.queues.length ? { queues: managedQueues.queues } : {}),
    ...(options.kmsKeyId ? { kmsKeyId: options.kmsKeyId } : {}),
    bakes,
    roles,
    ...(loadBalancer ? { loadBalancer } : {}),
    gpuInstanceType,
    ...(gpuFit ? { gpuFit } : {}),
    operate,
  };
  return finishPlan(partial, options, outDir);
}

/** The plan's lines and cost added, then its files written (unless told not to). */
async function finishPlan(
  partial: Omit<EcsPlanResult, 'plan' | 'cost' | 'outDir' | 'written' | 'operate'> & { operate: OperatePlan },
  options: EcsPlanOptions,
  outDir: string,
): Promise<EcsPlanResult> {
  const result = {
    ...partial,
    plan: [
      ...planLines(partial, Boolean(options.gpuInstanceType)),
      ...operatePlanLines(partial.operate, Boolean(partial.loadBalancer)),
    ],
    cost: withOperateCost(costOf(partial, options), partial),
  };
  const writeFiles = options.writeFiles ?? true;
  if (writeFiles) await checkOutDir(outDir, options.force);
  const written = writeFiles ? await writePlanFiles(outDir, result) : [];
  return { ...result, outDir, written };
}

/** What runs as tasks: EFS volumes, weights, baked mounts, images and builds, roles' ARNs, the task definitions. */
async function planTasks(
  loaded: DeployStack,
  stack: Stack,
  options: EcsPlanOptions,
  where: { region: string; accountId: string; bucket: string; outDir: string },
  managed: { storage: boolean; queues: ManagedQueue[] },
) {
  const { region, accountId, bucket } = where;
  const efs = planEfs(stack);
  const cache = new ChecksumCache(options.checksumCache);
  const weights = await planWeights(stack.services, bucket, cache);
  await cache.save();
  const built = new Set(stack.services.filter((s) => s.build).map((s) => s.name));
  const bakes = await planBakes(stack.services, {
    stack: stack.name,
    baseDir: loaded.baseDir,
    generated: loaded.generated,
    // mlship.yaml stacks: always (the proxy's and front end's generated files); compose files: on request.
    services: loaded.project || options.bakeMounts ? 'all' : [],
    builtTag: (s) => (built.has(s) ? `${stack.name}/${s}:dev` : undefined),
  });
  const registry = `${accountId}.dkr.ecr.${region}.amazonaws.com`;
  const images = ecrImages(loaded, bakes, registry, options.imageTag);
  Object.assign(images, workerImages(images, managed.queues));
  const { builds, localImages } = buildsOf(loaded, images, bakes, where.outDir);
  const taskNeeds = {
    weights,
    ...(managed.storage ? { bucketAccess: { bucket } } : {}),
    ...(managed.queues.length ? { queues: managed.queues.map((q) => q.arn) } : {}),
  };
  const arns = roleArns(stack.name, accountId, loaded.project, options, taskNeeds);
  const translation = translateToEcs(stack, {
    region,
    accountId,
    images,
    startupGrace: loaded.grace,
    executionRoleArn: arns.execution,
    ...(arns.task ? { taskRoleArn: arns.task } : {}),
    weights: Object.fromEntries(
      weights.map((w) => [
        w.service,
        {
          url: w.url,
          ...(w.sha256 ? { sha256: w.sha256 } : {}),
          ...(w.upload ? { sizeBytes: w.upload.sizeBytes } : {}),
        },
      ]),
    ),
    bakedMounts: Object.fromEntries(bakes.map((b) => [b.service, b.mounts])),
    efs: Object.fromEntries(efs.map((e) => [e.volume, efsPlaceholders(e.volume)])),
  });
  return { efs, weights, bakes, builds, localImages, taskNeeds, arns, translation };
}

/** Without --gpu-instance: the cheapest bundled type that holds the GPU task's GPUs and memory; its fit. */
async function planGpu(stack: string, translation: EcsTranslation, options: EcsPlanOptions) {
  const gpuTask = translation.taskDefinitions.find((t) => t.requiresCompatibilities?.includes('EC2'));
  const gpuInstanceType =
    options.gpuInstanceType ??
    (gpuTask && gpuInstanceFor(taskGpus(gpuTask), Number(gpuTask.memory ?? 0))) ??
    DEFAULT_GPU_INSTANCE;
  const gpuFit =
    options.gpuFit && gpuTask
      ? await gpuFitOfPlan(stack, translation.taskDefinitions, gpuInstanceType, options.gpuFit)
      : undefined;
  if (gpuFit) assertGpuFit(gpuFit);
  return { gpuInstanceType, gpuFit };
}
