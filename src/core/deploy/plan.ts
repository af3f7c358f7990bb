// `mlship deploy ecs` (files mode): the stack → ECS task definitions, service
// plans and a cluster file under deploy/ecs/, plus a plan of what would be
// created and an itemised monthly cost estimate. Nothing is sent to AWS here.

import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { keyPositions, readConfigText } from '../../config/load.js';
import type { Project } from '../../config/schema.js';
import type { Stack, StackService } from '../../config/stack-model.js';
import {
  type EcsTranslation,
  type PublicPort,
  taskGpus,
  translateToEcs,
} from '../../generators/ecs-task-definitions.js';
import { FileExistsError } from '../../io/errors.js';
import { exists, writeFileAtomic } from '../../io/files.js';
import { requireAccount, requireRegion } from '../aws/aws-config.js';
import { generateCompose } from '../compose/generate.js';
import { isComposeFile } from '../compose/user-compose.js';
import { parseBytes, parseDuration } from '../stack/compose-import.js';
import { loadComposeStack } from '../stack/load-stack.js';
import { assertGpuFit, type GpuFit, type GpuFitSource, gpuFitOfPlan } from './gpu-fit.js';
import {
  DEFAULT_GPU_INSTANCE,
  gpuInstanceFor,
  HOURS_PER_MONTH,
  PRICES,
  PRICES_DATE,
  PRICES_REGION,
} from './prices.js';

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
  /** Check the GPU images against the instance type and the GPU AMI's driver (gpu-fit.ts). */
  gpuFit?: GpuFitSource;
}

export interface CostLine {
  item: string;
  monthlyUsd: number;
  detail: string;
}

/** An image `--apply` builds before pushing it: the service's own source. */
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
  /** Images to build from source before a push, for the services that ECR will serve. */
  builds: ImageBuild[];
  outDir: string;
  written: string[];
  translation: EcsTranslation;
  /** The shared load balancer, when a service publishes a port. */
  loadBalancer?: LoadBalancerPlan;
  /** EC2 instance type of the GPU task's instances (the estimate prices it). */
  gpuInstanceType: string;
  /** How each GPU container's image fits that instance type (when checked). */
  gpuFit?: GpuFit[];
  plan: string[];
  cost: {
    lines: CostLine[];
    totalMonthlyUsd: number;
    pricesDate: string;
    pricesRegion: string;
    note?: string;
  };
}

export const GENERATED_MARKER = '.mlship-generated';

/** mlship.yaml → the stack model, through the same compose generation `compose up` runs. */
/** The stack a deploy translates, and the project it came from (none for a compose file). */
export interface DeployStack {
  stack: Stack;
  /** Start-up grace per service (mlship.yaml), for health-check grace periods. */
  grace: Record<string, number>;
  project?: Project;
}

/** Reads the stack of a deploy from mlship.yaml or from a compose file. */
export async function loadDeployStack(file: string): Promise<DeployStack> {
  if (await isComposeFile(file)) return { stack: await loadComposeStack(file), grace: {} };
  return stackFromProject(file);
}

export async function stackFromProject(file: string): Promise<DeployStack & { project: Project }> {
  const gen = await generateCompose({ configFile: file, force: true, dryRun: true });
  const { project } = gen;
  const services: StackService[] = [];
  const locate = await projectLocator(file, project);
  for (const [name, svc] of Object.entries(gen.stack.compose.services)) {
    if (svc.profiles && !svc.profiles.includes('gpu')) continue; // the CPU copies are for machines without GPUs
    const environment: Record<string, string> = {};
    const secretEnv: string[] = [];
    // Values that interpolate a generated secret are secrets themselves on ECS.
    for (const [k, v] of Object.entries(svc.environment ?? {})) {
      if (v.includes('${')) secretEnv.push(k);
      else environment[k] = v;
    }
    const device = svc.deploy?.resources.reservations?.devices[0];
    const memory = svc.deploy?.resources.limits?.memory;
    const ports = [
      ...(svc.expose ?? []).map((p) => ({ container: Number(p), protocol: 'tcp' as const })),
      ...(svc.ports ?? []).map((p) => {
        const parts = p.split(':');
        // Locally everything is published on loopback; on ECS only the proxy faces the outside,
        // on the HTTP port (the local port is only chosen not to clash on a developer's machine).
        const proxy = svc.labels['dev.mlship.role'] === 'proxy';
        return {
          container: Number(parts[parts.length - 1]),
          published: proxy ? 80 : Number(parts[parts.length - 2]),
          protocol: 'tcp' as const,
          ...(proxy ? {} : { hostIp: '127.0.0.1' }),
        };
      }),
    ];
    services.push({
      name,
      role: (svc.labels['dev.mlship.role'] as StackService['role']) ?? 'other',
      image: svc.image,
      ...(svc.build ? { build: { context: path.resolve(gen.outDir, svc.build.context) } } : {}),
      environment,
      secretEnv,
      secrets: [],
      ports,
      volumes: (svc.volumes ?? []).map((v) => ({
        type: v.type,
        source: v.source,
        target: v.target,
        readOnly: Boolean(v.read_only),
      })),
      dependsOn: Object.entries(svc.depends_on ?? {}).map(([d, c]) => ({
        service: d,
        condition: c.condition === 'service_healthy' ? ('healthy' as const) : ('started' as const),
      })),
      healthcheck: {
        test: svc.healthcheck.test,
        intervalSeconds: parseDuration(svc.healthcheck.interval) ?? 30,
        timeoutSeconds: parseDuration(svc.healthcheck.timeout) ?? 5,
        retries: svc.healthcheck.retries,
        startPeriodSeconds: parseDuration(svc.healthcheck.start_period) ?? 0,
      },
      ...(svc.deploy?.resources.limits?.cpus ? { cpus: Number(svc.deploy.resources.limits.cpus) } : {}),
      ...(memory ? { memoryBytes: parseBytes(memory)! } : {}),
      ...(device ? { gpus: device.count } : {}),
      labels: {},
      profiles: [],
      ...locate(name, svc.labels['dev.mlship.role'] ?? 'other'),
    });
  }
  const grace = Object.fromEntries(
    Object.entries(project.services).map(([n, s]) => [n, s.startup_grace_seconds]),
  );
  return {
    stack: {
      name: project.name,
      file,
      services,
      volumes: Object.keys(gen.stack.compose.volumes ?? {}),
      secrets: [],
      warnings: [],
    },
    grace,
    project,
  };
}

/** mlship.yaml field of a model service that each translated compose field comes from. */
const MODEL_FIELDS: Record<string, string[]> = {
  volumes: ['model'],
  deploy: ['gpu', 'cpu', 'memory'],
  depends_on: ['depends_on'],
  healthcheck: ['startup_grace_seconds'],
  ports: ['port'],
  build: ['path'],
  environment: ['env', 'secrets'],
};

/**
 * Where each generated service comes from in mlship.yaml, so a deploy warning names its line:
 * a model service's key (and the key of the field behind each compose field), or the section
 * (proxy, database, storage, frontend) of the others.
 */
async function projectLocator(
  file: string,
  project: Project,
): Promise<(service: string, role: string) => Pick<StackService, 'origin' | 'fieldOrigins'>> {
  const sections = ['proxy', 'database', 'storage', 'frontend'];
  const paths: string[][] = sections.map((s) => [s]);
  for (const name of Object.keys(project.services)) {
    paths.push(['services', name]);
    for (const keys of Object.values(MODEL_FIELDS)) for (const k of keys) paths.push(['services', name, k]);
  }
  const at = keyPositions(await readConfigText(file), paths);
  const where = (key: string) => {
    const pos = at.get(key);
    return pos ? { file, ...pos } : undefined;
  };
  return (service, role) => {
    if (role !== 'model' || !project.services[service]) {
      const origin = where(role) ?? { file, line: 1, column: 1 };
      return { origin };
    }
    const origin = where(`services.${service}`) ?? { file, line: 1, column: 1 };
    const fieldOrigins: Record<string, { file: string; line: number; column: number }> = {};
    for (const [field, keys] of Object.entries(MODEL_FIELDS)) {
      const found = keys.map((k) => where(`services.${service}.${k}`)).find(Boolean);
      if (found) fieldOrigins[field] = found;
    }
    return { origin, fieldOrigins };
  };
}

function usd(n: number): number {
  return Math.round(n * 100) / 100;
}

export function estimateCost(
  t: EcsTranslation,
  options: { gpuInstanceType: string; logsGbPerServiceMonth: number },
): EcsPlanResult['cost'] {
  const lines: CostLine[] = [];
  for (const td of t.taskDefinitions) {
    const svc = t.services.find((s) => s.taskFamily === td.family)!;
    if (svc.launchType === 'FARGATE') {
      const vcpu = Number(td.cpu) / 1024;
      const gb = Number(td.memory) / 1024;
      const cost =
        (vcpu * PRICES.fargateVcpuHour + gb * PRICES.fargateGbHour) * HOURS_PER_MONTH * svc.desiredCount;
      lines.push({
        item: `Fargate ${svc.name}`,
        monthlyUsd: usd(cost),
        detail: `${vcpu} vCPU, ${gb} GB × ${svc.desiredCount} task, 730 h`,
      });
    } else {
      const price = PRICES.gpuInstanceHour[options.gpuInstanceType];
      lines.push({
        item: `GPU instance for ${svc.name}`,
        monthlyUsd: usd((price ?? 0) * HOURS_PER_MONTH),
        detail: price
          ? `${options.gpuInstanceType} on demand, 730 h (runs even when idle)`
          : `${options.gpuInstanceType}: no bundled price`,
      });
    }
  }
  const tasks = t.services.reduce((n, s) => n + s.desiredCount, 0);
  const publicServices = t.services.filter((s) => s.publicPorts.length > 0);
  if (publicServices.length) {
    lines.push({
      item: 'Application Load Balancer (shared)',
      monthlyUsd: usd((PRICES.albHour + PRICES.albLcuHour) * HOURS_PER_MONTH),
      detail: `one ALB for ${publicServices.map((s) => s.name).join(', ')}: hourly charge plus ~1 LCU`,
    });
  }
  lines.push({
    item: 'Public IPv4 addresses',
    monthlyUsd: usd((tasks + (publicServices.length ? 2 : 0)) * PRICES.publicIpv4Hour * HOURS_PER_MONTH),
    detail: `${tasks} task(s) in public subnets${publicServices.length ? ' + 2 for the load balancer' : ''}, $${PRICES.publicIpv4Hour}/h each`,
  });
  const logsGb = options.logsGbPerServiceMonth * t.services.length;
  lines.push({
    item: 'CloudWatch Logs',
    monthlyUsd: usd(logsGb * (PRICES.logsIngestGb + PRICES.logsStorageGbMonth)),
    detail: `~${logsGb} GB/month ingested and kept (set --logs-gb to change)`,
  });
  const total = usd(lines.reduce((n, l) => n + l.monthlyUsd, 0));
  return {
    lines,
    totalMonthlyUsd: total,
    pricesDate: PRICES_DATE,
    pricesRegion: PRICES_REGION,
    note: `not included: a NAT gateway if tasks run in private subnets ($${usd(PRICES.natGatewayHour * HOURS_PER_MONTH)}/month + $${PRICES.natGatewayGb}/GB), data transfer`,
  };
}

/** Names of the shared load balancer's resources (ALB and target group names: at most 32 characters). */
export function loadBalancerNames(stack: string) {
  return {
    loadBalancer: awsName(stack, 32),
    securityGroup: `${stack}-alb`,
    targetGroup: (service: string, port: number) => awsName(`${stack}-${service}-${port}`, 32),
  };
}

/** A name of [A-Za-z0-9-], at most `max` long (a hash keeps shortened names apart), no hyphen at the ends. */
export function awsName(wanted: string, max: number): string {
  const clean = wanted
    .replace(/[^A-Za-z0-9-]/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  const name = clean.startsWith('internal-') ? `lb-${clean}` : clean;
  if (name.length <= max) return name;
  const hash = createHash('sha256').update(wanted).digest('hex').slice(0, 6);
  return `${name.slice(0, max - 7).replace(/-$/, '')}-${hash}`;
}

/** One listener of the shared load balancer. */
export interface ListenerPlan {
  port: number;
  protocol: 'HTTP' | 'HTTPS';
  /** The ECS service and published port it forwards to; absent for a redirect to HTTPS. */
  forward?: PublicPort & { service: string };
  /** HTTP that answers with a permanent redirect to HTTPS on this port. */
  redirectToHttps?: number;
}

export interface LoadBalancerPlan {
  name: string;
  securityGroup: string;
  certificateArn?: string;
  listeners: ListenerPlan[];
}

/**
 * The shared load balancer of a stack whose services publish ports: an HTTP listener per port,
 * or with a certificate HTTPS, where port 80 becomes HTTPS on 443 plus a redirect from 80.
 */
export function loadBalancerOf(
  stack: string,
  t: EcsTranslation,
  certificateArn?: string,
): LoadBalancerPlan | undefined {
  const ports = t.services.flatMap((s) => s.publicPorts.map((p) => ({ service: s.name, ...p })));
  if (!ports.length) return undefined;
  const names = loadBalancerNames(stack);
  const listeners: ListenerPlan[] = [];
  const taken = new Set(ports.map((p) => p.listener));
  for (const p of ports) {
    if (!certificateArn) listeners.push({ port: p.listener, protocol: 'HTTP', forward: p });
    else if (p.listener === 80 && !taken.has(443)) {
      listeners.push({ port: 443, protocol: 'HTTPS', forward: p });
      listeners.push({ port: 80, protocol: 'HTTP', redirectToHttps: 443 });
    } else listeners.push({ port: p.listener, protocol: 'HTTPS', forward: p });
  }
  listeners.sort((a, b) => a.port - b.port);
  return {
    name: names.loadBalancer,
    securityGroup: names.securityGroup,
    ...(certificateArn ? { certificateArn } : {}),
    listeners,
  };
}

function loadBalancerPlanLines(lb: LoadBalancerPlan | undefined): string[] {
  if (!lb) return [];
  const describe = (l: ListenerPlan) =>
    l.forward
      ? `${l.protocol} :${l.port} → ${l.forward.container}:${l.forward.containerPort} (health ${l.forward.healthCheckPath})`
      : `HTTP :${l.port} redirects to HTTPS :${l.redirectToHttps}`;
  const containerPorts = [
    ...new Set(lb.listeners.flatMap((l) => (l.forward ? [l.forward.containerPort] : []))),
  ];
  return [
    `load balancer ${lb.name} (Application Load Balancer, internet-facing, shared): ${lb.listeners.map(describe).join(', ')}${lb.certificateArn ? `; certificate ${lb.certificateArn}` : ''}`,
    `security group ${lb.securityGroup} (the load balancer's: tcp ${lb.listeners.map((l) => l.port).join(', ')} from anywhere); the tasks' security groups let it reach port(s) ${containerPorts.join(', ')}`,
  ];
}

export async function planEcs(options: EcsPlanOptions): Promise<EcsPlanResult> {
  const loaded = options.loaded ?? (await loadDeployStack(options.file));
  const { stack } = loaded;
  const aws = loaded.project?.aws;
  // The CLI resolves both as every AWS command does (core/aws/aws-config.ts); direct callers
  // may pass them or rely on mlship.yaml.
  const region = requireRegion({ region: options.region ?? aws?.region });
  const accountId = requireAccount({ accountId: options.accountId ?? aws?.account_id });
  const registry = `${accountId}.dkr.ecr.${region}.amazonaws.com`;
  // Services built from source are pushed to ECR under <stack>/<service>:<commit>.
  const images = Object.fromEntries(
    stack.services
      .filter((s) => !s.image || s.image.startsWith(`${stack.name}/`) || s.image.endsWith(':dev'))
      .map((s) => [s.name, `${registry}/${stack.name}/${s.name}:${options.imageTag}`]),
  );
  const exec = options.executionRoleArn ?? aws?.execution_role_arn;
  const task = options.taskRoleArn ?? aws?.task_role_arn;
  const translation = translateToEcs(stack, {
    region,
    accountId,
    images,
    startupGrace: loaded.grace,
    ...(exec ? { executionRoleArn: exec } : {}),
    ...(task ? { taskRoleArn: task } : {}),
  });
  translation.warnings.unshift(...stack.warnings);
  // Without --gpu-instance: the cheapest bundled type that holds the GPU task's GPUs and memory.
  const gpuTask = translation.taskDefinitions.find((t) => t.requiresCompatibilities?.includes('EC2'));
  const gpuNeeds = gpuTask ? { gpus: taskGpus(gpuTask), memoryMiB: Number(gpuTask.memory ?? 0) } : undefined;
  const gpuInstanceType =
    options.gpuInstanceType ??
    (gpuNeeds && gpuInstanceFor(gpuNeeds.gpus, gpuNeeds.memoryMiB)) ??
    DEFAULT_GPU_INSTANCE;
  const gpuFit =
    options.gpuFit && gpuTask
      ? await gpuFitOfPlan(stack.name, translation.taskDefinitions, gpuInstanceType, options.gpuFit)
      : undefined;
  if (gpuFit) assertGpuFit(gpuFit);
  const cost = estimateCost(translation, {
    gpuInstanceType,
    logsGbPerServiceMonth: options.logsGbPerServiceMonth ?? 1,
  });
  const loadBalancer = loadBalancerOf(stack.name, translation, options.certificateArn);
  const plan = [
    `cluster ${stack.name} (Fargate${translation.services.some((s) => s.launchType === 'EC2') ? ` + an EC2 capacity provider with ${gpuInstanceType}` : ''})`,
    ...(translation.services.some((s) => s.launchType === 'EC2')
      ? [
          `GPU capacity mlship-${stack.name}-gpu: an Auto Scaling group of ${gpuInstanceType}${options.gpuInstanceType || !gpuNeeds ? '' : ` (the cheapest bundled type for ${gpuNeeds.gpus} GPU(s) and ${gpuNeeds.memoryMiB} MiB; --gpu-instance to choose)`} (ECS GPU AMI, 100 GiB gp3) that ECS scales with the GPU task, from 0; an instance role and profile`,
          ...(gpuFit ?? []).flatMap((f) => f.lines),
          'note: GPU tasks (EC2, awsvpc) get no public IP: image pulls go through the instance, but their own outbound calls (weights from S3 or HTTPS) need a NAT gateway or VPC endpoints',
        ]
      : []),
    `log group ${translation.logGroup}`,
    ...Object.keys(images).map(
      (s) => `ECR repository ${stack.name}/${s} (scan on push, immutable tags, keep the last 20 images)`,
    ),
    ...translation.taskDefinitions.map(
      (td) =>
        `task definition ${td.family} (${td.requiresCompatibilities?.join(', ')}, ${td.containerDefinitions?.length} container(s))`,
    ),
    ...translation.services.map(
      (s) =>
        `service ${s.name}: ${s.desiredCount} × ${s.launchType}, Service Connect${s.publicPorts.length ? `, public port${s.publicPorts.length > 1 ? 's' : ''} ${s.publicPorts.map((p) => p.listener).join(', ')} via the shared load balancer` : ', no load balancer (not public)'}`,
    ),
    ...loadBalancerPlanLines(loadBalancer),
  ];

  const outDir = path.resolve(
    options.outDir ?? path.join(path.dirname(path.resolve(options.file)), 'deploy', 'ecs'),
  );
  const writeFiles = options.writeFiles ?? true;
  if (
    writeFiles &&
    !options.force &&
    (await exists(outDir)) &&
    !(await exists(path.join(outDir, GENERATED_MARKER)))
  ) {
    const entries = await readdir(outDir);
    if (entries.length > 0) throw new FileExistsError(outDir);
  }
  const written: string[] = [];
  const write = async (rel: string, data: unknown) => {
    if (!writeFiles) return;
    const p = path.join(outDir, rel);
    await writeFileAtomic(p, `${JSON.stringify(data, null, 2)}\n`);
    written.push(p);
  };
  for (const td of translation.taskDefinitions) await write(`task-definitions/${td.family}.json`, td);
  await write('services.json', translation.services);
  await write('cluster.json', { clusterName: stack.name, logGroup: translation.logGroup, region });
  if (loadBalancer) await write('load-balancer.json', loadBalancer);
  await write('plan.json', { plan, cost, warnings: translation.warnings });
  if (writeFiles) {
    await writeFileAtomic(
      path.join(outDir, GENERATED_MARKER),
      'Files generated by `mlship deploy ecs`; regenerated on every run.\n',
    );
  }
  const stackDir = path.dirname(path.resolve(options.file));
  const builds: ImageBuild[] = stack.services
    .filter((s) => s.build && images[s.name])
    .map((s) => ({
      service: s.name,
      tag: `${stack.name}/${s.name}:dev`,
      context: path.resolve(stackDir, s.build!.context),
      ...(s.build!.dockerfile ? { dockerfile: s.build!.dockerfile } : {}),
      ...(s.build!.target ? { target: s.build!.target } : {}),
      ...(s.build!.args ? { args: s.build!.args } : {}),
    }));
  return {
    stack: stack.name,
    region,
    builds,
    outDir,
    written,
    translation,
    ...(loadBalancer ? { loadBalancer } : {}),
    gpuInstanceType,
    ...(gpuFit ? { gpuFit } : {}),
    plan,
    cost,
  };
}
