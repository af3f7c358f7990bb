// The stack model → ECS task definitions and service plans, as typed
// RegisterTaskDefinitionCommandInput objects (serialized by the caller).
// GPU services share one EC2 task; every other service is its own Fargate task.
// Pure and deterministic, written as passes over one translation context: placing
// services in tasks, then each container (environment, secrets, ports, mounts,
// weights, health check), then the task definitions and the services that run them.
// Every compromise is a warning at the service's origin; what would keep a service from
// starting at all is a refusal (the apply stops before anything is created).

import type {
  ContainerDefinition,
  HealthCheck,
  MountPoint,
  RegisterTaskDefinitionCommandInput,
  Volume,
} from '@aws-sdk/client-ecs';
import { type Stack, type StackService, type StackWarning, serviceWarning } from '../config/stack-model.js';

export interface EcsTranslateOptions {
  region: string;
  /** 12-digit account id; secrets ARNs and image URIs use it. */
  accountId: string;
  executionRoleArn?: string;
  taskRoleArn?: string;
  /** Image URI per service (ECR after a push); defaults to the service's image. */
  images?: Record<string, string>;
  /** Where secrets live: SSM Parameter Store (default) or Secrets Manager. */
  secretsStore?: 'ssm' | 'secretsmanager';
  /** Start-up grace per service (seconds), from mlship.yaml; else the health check's start period. */
  startupGrace?: Record<string, number>;
  /** The weights each model service downloads at start-up (MODEL_URL), from the deploy's plan. */
  weights?: Record<string, { url: string; sha256?: string; sizeBytes?: number }>;
  /** Mount targets each service's image carries (baked by the deploy), which are no longer mounts. */
  bakedMounts?: Record<string, string[]>;
  /** Named volumes that are EFS file systems: ids as the apply knows them (placeholders in a plan). */
  efs?: Record<string, { fileSystemId: string; accessPointId: string }>;
}

/** The task definition name of a named volume mounted from EFS. */
export const efsVolumeName = (volume: string) => `efs-${volume.replace(/[^A-Za-z0-9_-]/g, '-')}`;

export interface EcsServicePlan {
  /** ECS service name. */
  name: string;
  taskFamily: string;
  launchType: 'FARGATE' | 'EC2';
  /** A Fargate capacity provider instead of the launch type (FARGATE_SPOT for queue workers). */
  capacityProvider?: string;
  desiredCount: number;
  /** Containers of the task and their Service Connect port names. */
  containers: { name: string; portName?: string; port?: number }[];
  /**
   * Ports published to the outside (compose `ports:` with a host port, not on loopback): each is
   * an HTTP listener on the stack's one shared Application Load Balancer, forwarding to a container.
   */
  publicPorts: PublicPort[];
  healthCheckGracePeriodSeconds: number;
}

export interface PublicPort {
  /** The load balancer's listener port (the published port). */
  listener: number;
  container: string;
  containerPort: number;
  /** HTTP path the load balancer checks (from the service's health check, else "/"). */
  healthCheckPath: string;
  /** Seconds between the load balancer's checks (the service's health-check interval, 5-300). */
  healthCheckIntervalSeconds: number;
}

export interface EcsTranslation {
  taskDefinitions: RegisterTaskDefinitionCommandInput[];
  services: EcsServicePlan[];
  logGroup: string;
  warnings: StackWarning[];
  /** What would keep a service from starting on ECS: `--apply` refuses while any is left. */
  refusals: StackWarning[];
}

/** Valid Fargate (cpu units → memory MiB) combinations. */
export const FARGATE_SIZES: { cpu: number; memory: number[] }[] = [
  { cpu: 256, memory: [512, 1024, 2048] },
  { cpu: 512, memory: [1024, 2048, 3072, 4096] },
  { cpu: 1024, memory: range(2048, 8192, 1024) },
  { cpu: 2048, memory: range(4096, 16384, 1024) },
  { cpu: 4096, memory: range(8192, 30720, 1024) },
  { cpu: 8192, memory: range(16384, 61440, 4096) },
  { cpu: 16384, memory: range(32768, 122880, 8192) },
];

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

/** The smallest valid Fargate size with at least the requested cpu units and memory MiB. */
export function fargateSize(cpu: number, memory: number): { cpu: number; memory: number } | undefined {
  for (const size of FARGATE_SIZES) {
    if (size.cpu < cpu) continue;
    const mem = size.memory.find((m) => m >= memory);
    if (mem !== undefined) return { cpu: size.cpu, memory: mem };
  }
  return undefined;
}

/** ECS's allowed health-check ranges (RegisterTaskDefinition API). */
export const HEALTH_LIMITS = {
  interval: [5, 300],
  timeout: [2, 60],
  retries: [1, 10],
  startPeriod: [0, 300],
} as const;

/** Fargate's task storage: 20 GiB included, up to 200 GiB. */
export const FARGATE_STORAGE_GIB = { included: 20, max: 200 } as const;
/** Where a GPU instance keeps downloaded weights between tasks (created by its user data). */
export const GPU_WEIGHTS_CACHE = { hostPath: '/var/lib/mlship/weights', containerPath: '/var/cache/mlship' };

function clamp(v: number, [lo, hi]: readonly [number, number]): number {
  return Math.min(hi, Math.max(lo, Math.round(v)));
}

// Defaults when a compose service sets no limits: enough for a small model server.
const DEFAULT_MODEL = { cpu: 1024, memory: 2048 };
const DEFAULT_OTHER = { cpu: 256, memory: 512 };

/** Well-known ports of protocols an Application Load Balancer (HTTP only) cannot carry. */
const NOT_HTTP: Record<number, string> = {
  5432: 'PostgreSQL',
  3306: 'MySQL',
  6379: 'Redis',
  27017: 'MongoDB',
  5672: 'AMQP',
  9092: 'Kafka',
  2181: 'ZooKeeper',
  1883: 'MQTT',
  11211: 'memcached',
};

/** The HTTP path a service's health check requests on `port`, if it requests one. */
export function healthPathOf(s: StackService, port: number): string | undefined {
  const text = (s.healthcheck?.test ?? []).join(' ');
  for (const m of text.matchAll(
    /https?:\/\/(?:127\.0\.0\.1|localhost|0\.0\.0\.0)(?::(\d+))?(\/[^\s'"`)]*)?/g,
  )) {
    const p = m[1] ? Number(m[1]) : 80;
    if (p === port) return m[2] || '/';
  }
  return undefined;
}

/** GPUs a task definition asks for: the sum of its containers' GPU resource requirements. */
export function taskGpus(td: RegisterTaskDefinitionCommandInput): number {
  return (td.containerDefinitions ?? []).reduce(
    (n, c) => n + Number(c.resourceRequirements?.find((r) => r.type === 'GPU')?.value ?? 0),
    0,
  );
}

/** The state every pass reads and adds to. */
interface Context {
  stack: Stack;
  options: EcsTranslateOptions;
  logGroup: string;
  /** Task family of each service. */
  taskOf: Map<string, string>;
  gpuServices: StackService[];
  cpuServices: StackService[];
  /** Which service a published port's listener forwards to. */
  listenerOwner: Map<number, string>;
  warnings: StackWarning[];
  refusals: StackWarning[];
}

const warn = (ctx: Context, svc: StackService, field: string, message: string, fix?: string) =>
  ctx.warnings.push(serviceWarning(ctx.stack, svc, field, message, fix));
const refuse = (ctx: Context, svc: StackService, field: string, message: string, fix?: string) =>
  ctx.refusals.push(serviceWarning(ctx.stack, svc, field, message, fix));

// ---- pass 1: which task each service runs in ---------------------------------------------

function placeServices(stack: Stack, options: EcsTranslateOptions): Context {
  const gpuServices = stack.services.filter((s) => s.gpus !== undefined && s.gpus !== 0);
  const cpuServices = stack.services.filter((s) => !gpuServices.includes(s));
  const taskOf = new Map<string, string>();
  for (const s of gpuServices) taskOf.set(s.name, `${stack.name}-gpu`);
  for (const s of cpuServices) taskOf.set(s.name, `${stack.name}-${s.name}`);
  return {
    stack,
    options,
    logGroup: `/mlship/${stack.name}`,
    taskOf,
    gpuServices,
    cpuServices,
    listenerOwner: new Map(),
    warnings: [],
    refusals: [],
  };
}

// ---- pass 2: each container ------------------------------------------------------------------

function environmentOf(
  ctx: Context,
  svc: StackService,
  gpuTask: boolean,
): ContainerDefinition['environment'] {
  const env: Record<string, string> = { ...svc.environment };
  const w = ctx.options.weights?.[svc.name];
  if (w) {
    // The service downloads its weights once at start-up and checks them (app/weights.py).
    env.MODEL_URL = w.url;
    if (w.sha256) env.MODEL_SHA256 = w.sha256;
    env.AWS_REGION ??= ctx.options.region;
    // On a GPU instance the download is kept on the host: a restarted task does not repeat it.
    if (gpuTask) env.MODEL_CACHE_DIR = GPU_WEIGHTS_CACHE.containerPath;
  }
  return Object.entries(env)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => ({ name, value }));
}

function secretsOf(ctx: Context, svc: StackService): ContainerDefinition['secrets'] {
  const { options, stack } = ctx;
  const arn = (name: string) =>
    options.secretsStore === 'secretsmanager'
      ? `arn:aws:secretsmanager:${options.region}:${options.accountId}:secret:${stack.name}/${name}`
      : `arn:aws:ssm:${options.region}:${options.accountId}:parameter/${stack.name}/${name}`;
  const named = [
    ...svc.secretEnv,
    ...svc.secrets.map((s) => s.name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')),
  ].map((name) => ({ name, valueFrom: arn(name) }));
  const given = Object.entries(svc.secretFrom ?? {}).map(([name, valueFrom]) => ({ name, valueFrom }));
  return [...named, ...given].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Mounts: what the image carries (baked by the deploy) is no mount; a read-only bind mount is
 * something the service cannot start without (a refusal, fixed by --bake-mounts); data mounts
 * are warnings until they have a managed home.
 */
function mountsOf(ctx: Context, svc: StackService): MountPoint[] {
  const baked = new Set(ctx.options.bakedMounts?.[svc.name] ?? []);
  const efs: MountPoint[] = [];
  for (const v of svc.volumes) {
    if (baked.has(v.target)) continue;
    if (v.type === 'volume' && v.source && ctx.options.efs?.[v.source]) {
      efs.push({ sourceVolume: efsVolumeName(v.source), containerPath: v.target, readOnly: v.readOnly });
      continue;
    }
    const what = `${v.type} mount ${v.source ?? '(anonymous)'} → ${v.target}`;
    if (v.type === 'bind' && /docker\.sock$/.test(v.source ?? '')) {
      refuse(ctx, svc, 'volumes', `${what}: tasks have no Docker engine to talk to`, 'remove the mount');
    } else if (v.type === 'bind' && v.readOnly) {
      refuse(
        ctx,
        svc,
        'volumes',
        `${what} is a file the service reads, and a task has no host files: it could not start`,
        'deploy with --bake-mounts (the file is copied into an image of the stack), or COPY it in the Dockerfile; model weights: weights.url',
      );
    } else {
      warn(
        ctx,
        svc,
        'volumes',
        `${what} is not carried over (a task has no host files)`,
        svc.role === 'database'
          ? 'use Amazon RDS for the database, or EFS for data that must persist'
          : 'use EFS or S3 for data that must persist',
      );
    }
  }
  return efs;
}

/** The task's EFS volumes: each named volume its containers mount, with transit encryption. */
function efsVolumes(ctx: Context, services: StackService[]): Volume[] {
  const names = [
    ...new Set(
      services.flatMap((s) =>
        s.volumes
          .filter((v) => v.type === 'volume' && v.source && ctx.options.efs?.[v.source])
          .map((v) => v.source!),
      ),
    ),
  ];
  return names.map((n) => ({
    name: efsVolumeName(n),
    efsVolumeConfiguration: {
      fileSystemId: ctx.options.efs![n]!.fileSystemId,
      transitEncryption: 'ENABLED',
      authorizationConfig: { accessPointId: ctx.options.efs![n]!.accessPointId, iam: 'DISABLED' },
    },
  }));
}

function dependsOnOf(ctx: Context, svc: StackService): ContainerDefinition['dependsOn'] {
  for (const d of svc.dependsOn) {
    if (ctx.taskOf.get(d.service) !== ctx.taskOf.get(svc.name)) {
      warn(
        ctx,
        svc,
        'depends_on',
        `depends on ${d.service}, which runs in another task: ECS orders containers only within a task`,
        'make the service retry until its dependency answers (Service Connect resolves the name)',
      );
    }
  }
  const same = svc.dependsOn.filter((d) => ctx.taskOf.get(d.service) === ctx.taskOf.get(svc.name));
  return same.map((d) => ({
    containerName: d.service,
    condition:
      d.condition === 'healthy'
        ? ('HEALTHY' as const)
        : d.condition === 'completed'
          ? ('SUCCESS' as const)
          : ('START' as const),
  }));
}

function healthCheckOf(ctx: Context, svc: StackService): HealthCheck {
  const h = svc.healthcheck!;
  const wanted = {
    interval: h.intervalSeconds ?? 30,
    timeout: h.timeoutSeconds ?? 5,
    retries: h.retries ?? 3,
    startPeriod:
      (ctx.options.startupGrace?.[svc.name] ?? h.startPeriodSeconds ?? 0) + downloadSeconds(ctx, svc),
  };
  const out: Required<Pick<HealthCheck, 'interval' | 'timeout' | 'retries' | 'startPeriod'>> = {
    interval: clamp(wanted.interval, HEALTH_LIMITS.interval),
    timeout: clamp(wanted.timeout, HEALTH_LIMITS.timeout),
    retries: clamp(wanted.retries, HEALTH_LIMITS.retries),
    startPeriod: clamp(wanted.startPeriod, HEALTH_LIMITS.startPeriod),
  };
  for (const k of Object.keys(out) as (keyof typeof out)[]) {
    if (Math.round(wanted[k]) !== out[k]) {
      const [lo, hi] = HEALTH_LIMITS[k];
      warn(
        ctx,
        svc,
        'healthcheck',
        `health check ${k} ${wanted[k]} is outside ECS's range ${lo}-${hi}; using ${out[k]}`,
        k === 'startPeriod'
          ? 'the service keeps the full start-up grace as its healthCheckGracePeriodSeconds'
          : undefined,
      );
    }
  }
  return { command: h.test, ...out };
}

/** What ECS cannot take as it is, said once per service: no image, UDP ports, "all" GPUs, a long stop grace. */
function warnUnsupported(ctx: Context, svc: StackService, image: string | undefined): void {
  if (!image)
    warn(
      ctx,
      svc,
      'build',
      'no image: the service is built locally',
      'mlship deploy pushes built images to ECR and fills this in',
    );
  for (const p of svc.ports.filter((p) => p.protocol === 'udp'))
    warn(ctx, svc, 'ports', `udp port ${p.container} is not reachable through Service Connect`);
  if (svc.gpus === 'all')
    warn(ctx, svc, 'deploy', 'GPU count "all" becomes 1 GPU per container on ECS', 'set an explicit count');
  if (svc.stopGraceSeconds !== undefined && svc.stopGraceSeconds > 120)
    warn(
      ctx,
      svc,
      'stop_grace_period',
      `stop grace of ${svc.stopGraceSeconds} s is cut to ECS's maximum of 120 s`,
    );
}

function containerDefinition(ctx: Context, svc: StackService, gpuTask: boolean): ContainerDefinition {
  const { stack, options } = ctx;
  const image = options.images?.[svc.name] ?? svc.image;
  warnUnsupported(ctx, svc, image);
  const shared = Object.keys(svc.sysctls ?? {}).filter((n) => n.startsWith('net.'));
  if (gpuTask && ctx.gpuServices.length > 1 && shared.length)
    warn(
      ctx,
      svc,
      'sysctls',
      `${shared.join(', ')} will apply to every container of the GPU task (one network namespace in awsvpc mode)`,
    );
  const efsMounts = mountsOf(ctx, svc);
  const environment = environmentOf(ctx, svc, gpuTask);
  const secrets = secretsOf(ctx, svc);
  const dependsOn = dependsOnOf(ctx, svc);
  const tcpPorts = svc.ports.filter((p) => p.protocol === 'tcp');
  const gpuCount = svc.gpus === 'all' ? 1 : svc.gpus;
  const weightsCache: MountPoint[] =
    gpuTask && options.weights?.[svc.name]
      ? [
          {
            sourceVolume: 'mlship-weights-cache',
            containerPath: GPU_WEIGHTS_CACHE.containerPath,
            readOnly: false,
          },
        ]
      : [];
  return {
    name: svc.name,
    image: image ?? `${stack.name}/${svc.name}`,
    essential: true,
    ...(svc.command ? { command: svc.command } : {}),
    ...(svc.entrypoint ? { entryPoint: svc.entrypoint } : {}),
    ...(environment?.length ? { environment } : {}),
    ...(secrets?.length ? { secrets } : {}),
    ...(tcpPorts.length
      ? {
          portMappings: tcpPorts.map((p) => ({
            containerPort: p.container,
            protocol: 'tcp' as const,
            name: p.name ?? `${svc.name}-${p.container}`,
            appProtocol: p.appProtocol ?? 'http',
          })),
        }
      : {}),
    ...(weightsCache.length || efsMounts.length ? { mountPoints: [...weightsCache, ...efsMounts] } : {}),
    ...(svc.user ? { user: svc.user } : {}),
    ...(svc.workingDir ? { workingDirectory: svc.workingDir } : {}),
    ...(svc.stopGraceSeconds !== undefined
      ? { stopTimeout: Math.min(120, Math.round(svc.stopGraceSeconds)) }
      : {}),
    // In awsvpc mode a network setting applies to the whole task (for the shared GPU task: warned above).
    ...(svc.sysctls
      ? { systemControls: Object.entries(svc.sysctls).map(([namespace, value]) => ({ namespace, value })) }
      : {}),
    ...(gpuCount ? { resourceRequirements: [{ type: 'GPU' as const, value: String(gpuCount) }] } : {}),
    ...(dependsOn?.length ? { dependsOn } : {}),
    logConfiguration: {
      logDriver: 'awslogs',
      options: {
        'awslogs-group': ctx.logGroup,
        'awslogs-region': options.region,
        'awslogs-stream-prefix': svc.name,
      },
    },
    ...(svc.healthcheck ? { healthCheck: healthCheckOf(ctx, svc) } : {}),
  };
}

/**
 * Published ports become listeners of one shared load balancer: a port bound to loopback is
 * for the local machine only, and a listener port can forward to one service only.
 */
function publicPortsOf(ctx: Context, s: StackService): PublicPort[] {
  const out: PublicPort[] = [];
  for (const p of s.ports) {
    if (p.published === undefined || p.hostIp === '127.0.0.1' || p.hostIp === 'localhost') continue;
    if (p.protocol !== 'tcp') {
      warn(
        ctx,
        s,
        'ports',
        `published udp port ${p.published} is not exposed: an Application Load Balancer carries HTTP only`,
        'put a Network Load Balancer in front of it yourself',
      );
      continue;
    }
    const notHttp = NOT_HTTP[p.container];
    if (notHttp) {
      warn(
        ctx,
        s,
        'ports',
        `published port ${p.published} (${notHttp}) is not exposed to the internet: an Application Load Balancer carries HTTP only`,
        'other services reach it through Service Connect; drop the published port',
      );
      continue;
    }
    const owner = ctx.listenerOwner.get(p.published);
    if (owner) {
      warn(
        ctx,
        s,
        'ports',
        `port ${p.published} is already published by ${owner}; the load balancer's listener ${p.published} forwards to ${owner} only`,
        `publish another port, or route ${s.name} through ${owner}`,
      );
      continue;
    }
    ctx.listenerOwner.set(p.published, s.name);
    out.push({
      listener: p.published,
      container: s.name,
      containerPort: p.container,
      healthCheckPath: healthPathOf(s, p.container) ?? '/',
      healthCheckIntervalSeconds: clamp(s.healthcheck?.intervalSeconds ?? 30, HEALTH_LIMITS.interval),
    });
  }
  return out;
}

// ---- pass 3: task definitions and services ----------------------------------------------------

function baseInput(
  ctx: Context,
  family: string,
): Pick<
  RegisterTaskDefinitionCommandInput,
  'family' | 'networkMode' | 'executionRoleArn' | 'taskRoleArn' | 'tags'
> {
  return {
    family,
    networkMode: 'awsvpc',
    ...(ctx.options.executionRoleArn ? { executionRoleArn: ctx.options.executionRoleArn } : {}),
    ...(ctx.options.taskRoleArn ? { taskRoleArn: ctx.options.taskRoleArn } : {}),
    tags: [
      { key: 'mlship:stack', value: ctx.stack.name },
      { key: 'mlship:managed', value: 'true' },
    ],
  };
}

const graceOf = (ctx: Context, s: StackService) =>
  Math.max(ctx.options.startupGrace?.[s.name] ?? 0, s.healthcheck?.startPeriodSeconds ?? 0, 0) +
  downloadSeconds(ctx, s);

/**
 * A conservative rate for the weights' download and checksum at start-up (a task on Fargate reads
 * S3 at 50-100 MB/s; the SHA-256 check reads the file again): the start-up grace is a budget for
 * loading the model, and a 1 GiB download must not eat it, or ECS replaces a task still downloading.
 */
const WEIGHTS_MIB_PER_SECOND = 20;

/** Seconds added to a service's grace for the weights it downloads before it can answer. */
function downloadSeconds(ctx: Context, s: StackService): number {
  const bytes = ctx.options.weights?.[s.name]?.sizeBytes;
  return bytes ? Math.round(bytes / 2 ** 20 / WEIGHTS_MIB_PER_SECOND) : 0;
}

function containersOf(s: StackService): EcsServicePlan['containers'][number] {
  const p = s.ports.find((x) => x.protocol === 'tcp');
  return {
    name: s.name,
    ...(p ? { portName: p.name ?? `${s.name}-${p.container}`, port: p.container } : {}),
  };
}

/**
 * Containers of one awsvpc task share a network namespace: two listening on the same port cannot
 * both start (ECS refuses such a task definition). Each clash is a refusal at the later service.
 */
function portClashes(ctx: Context, services: StackService[]): void {
  const owner = new Map<number, string>();
  for (const s of services) {
    for (const p of s.ports.filter((x) => x.protocol === 'tcp')) {
      const first = owner.get(p.container);
      if (!first) owner.set(p.container, s.name);
      else if (first !== s.name)
        refuse(
          ctx,
          s,
          'ports',
          `port ${p.container} is also ${first}'s: GPU services share one task, and a task's containers share one network`,
          `give ${s.name} another port (services.${s.name}.port in mlship.yaml, or its server's port)`,
        );
    }
  }
}

function gpuTask(ctx: Context): { td: RegisterTaskDefinitionCommandInput; service: EcsServicePlan } {
  const services = ctx.gpuServices;
  portClashes(ctx, services);
  const family = `${ctx.stack.name}-gpu`;
  const memory = services.reduce((n, s) => n + Math.ceil((s.memoryBytes ?? 4 * 1024 ** 3) / 1024 ** 2), 0);
  const containerDefinitions = services.map((s) => containerDefinition(ctx, s, true));
  const cache: Volume[] = [
    ...(services.some((s) => ctx.options.weights?.[s.name])
      ? [{ name: 'mlship-weights-cache', host: { sourcePath: GPU_WEIGHTS_CACHE.hostPath } }]
      : []),
    ...efsVolumes(ctx, services),
  ];
  return {
    td: {
      ...baseInput(ctx, family),
      requiresCompatibilities: ['EC2'],
      memory: String(memory),
      containerDefinitions,
      ...(cache.length ? { volumes: cache } : {}),
    },
    service: {
      name: family,
      taskFamily: family,
      launchType: 'EC2',
      desiredCount: 1,
      containers: services.map(containersOf),
      publicPorts: services.flatMap((s) => publicPortsOf(ctx, s)),
      healthCheckGracePeriodSeconds: Math.max(...services.map((s) => graceOf(ctx, s))),
    },
  };
}

/** Task storage for weights downloaded at start-up: the file, its partial copy's headroom, the image. */
function ephemeralStorage(
  ctx: Context,
  s: StackService,
): RegisterTaskDefinitionCommandInput['ephemeralStorage'] {
  const bytes = ctx.options.weights?.[s.name]?.sizeBytes;
  if (!bytes) return undefined;
  const needed = Math.ceil(bytes / 1024 ** 3 + 10);
  if (needed <= FARGATE_STORAGE_GIB.included) return undefined;
  if (needed > FARGATE_STORAGE_GIB.max) {
    refuse(
      ctx,
      s,
      'weights',
      `weights of ${Math.round(bytes / 1024 ** 3)} GiB do not fit Fargate's largest task storage (${FARGATE_STORAGE_GIB.max} GiB)`,
      'run the service on a GPU (EC2) instance, or make the weights smaller',
    );
    return { sizeInGiB: FARGATE_STORAGE_GIB.max };
  }
  return { sizeInGiB: needed };
}

function fargateTask(
  ctx: Context,
  s: StackService,
): { td: RegisterTaskDefinitionCommandInput; service: EcsServicePlan } {
  const family = ctx.taskOf.get(s.name)!;
  const fallback = s.role === 'model' ? DEFAULT_MODEL : DEFAULT_OTHER;
  const wantCpu = s.cpus !== undefined ? Math.ceil(s.cpus * 1024) : fallback.cpu;
  const wantMem = s.memoryBytes !== undefined ? Math.ceil(s.memoryBytes / 1024 ** 2) : fallback.memory;
  const size = fargateSize(wantCpu, wantMem);
  if (!size) {
    warn(
      ctx,
      s,
      'deploy.resources',
      `${wantCpu} cpu units and ${wantMem} MiB exceed Fargate's largest size (16 vCPU, 120 GiB)`,
      'lower the limits, or run it on EC2',
    );
  } else if (size.cpu !== wantCpu || size.memory !== wantMem) {
    warn(
      ctx,
      s,
      'deploy.resources',
      `Fargate has no ${wantCpu} cpu / ${wantMem} MiB size; rounded up to ${size.cpu} cpu / ${size.memory} MiB`,
    );
  }
  const largest = FARGATE_SIZES[FARGATE_SIZES.length - 1]!;
  const chosen = size ?? { cpu: largest.cpu, memory: largest.memory[largest.memory.length - 1]! };
  const storage = ephemeralStorage(ctx, s);
  return {
    td: {
      ...baseInput(ctx, family),
      requiresCompatibilities: ['FARGATE'],
      cpu: String(chosen.cpu),
      memory: String(chosen.memory),
      runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: 'X86_64' },
      ...(storage ? { ephemeralStorage: storage } : {}),
      containerDefinitions: [containerDefinition(ctx, s, false)],
      ...(efsVolumes(ctx, [s]).length ? { volumes: efsVolumes(ctx, [s]) } : {}),
    },
    service: {
      name: s.name,
      taskFamily: family,
      launchType: 'FARGATE',
      desiredCount: 1,
      containers: [containersOf(s)],
      publicPorts: publicPortsOf(ctx, s),
      healthCheckGracePeriodSeconds: graceOf(ctx, s),
    },
  };
}

export function translateToEcs(stack: Stack, options: EcsTranslateOptions): EcsTranslation {
  const ctx = placeServices(stack, options);
  const tasks = [
    ...(ctx.gpuServices.length ? [gpuTask(ctx)] : []),
    ...ctx.cpuServices.map((s) => fargateTask(ctx, s)),
  ];
  return {
    taskDefinitions: tasks.map((t) => t.td),
    services: tasks.map((t) => t.service),
    logGroup: ctx.logGroup,
    warnings: ctx.warnings,
    refusals: ctx.refusals,
  };
}
