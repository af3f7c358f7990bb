// The stack model → ECS task definitions and service plans, as typed
// RegisterTaskDefinitionCommandInput objects (serialized by the caller).
// GPU services share one EC2 task; every other service is its own Fargate task.
// Pure and deterministic; every compromise is a warning at the service's origin.

import type {
  ContainerDefinition,
  HealthCheck,
  RegisterTaskDefinitionCommandInput,
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
}

export interface EcsServicePlan {
  /** ECS service name. */
  name: string;
  taskFamily: string;
  launchType: 'FARGATE' | 'EC2';
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

export function translateToEcs(stack: Stack, options: EcsTranslateOptions): EcsTranslation {
  const warnings: StackWarning[] = [];
  const logGroup = `/mlship/${stack.name}`;
  const warn = (svc: StackService, field: string, message: string, fix?: string) =>
    warnings.push(serviceWarning(stack, svc, field, message, fix));
  const secretArn = (name: string) =>
    options.secretsStore === 'secretsmanager'
      ? `arn:aws:secretsmanager:${options.region}:${options.accountId}:secret:${stack.name}/${name}`
      : `arn:aws:ssm:${options.region}:${options.accountId}:parameter/${stack.name}/${name}`;

  const gpuServices = stack.services.filter((s) => s.gpus !== undefined && s.gpus !== 0);
  const cpuServices = stack.services.filter((s) => !gpuServices.includes(s));
  const gpuTask = gpuServices.length ? `${stack.name}-gpu` : undefined;
  const taskOf = new Map<string, string>();
  for (const s of gpuServices) taskOf.set(s.name, gpuTask!);
  for (const s of cpuServices) taskOf.set(s.name, `${stack.name}-${s.name}`);

  function container(svc: StackService): ContainerDefinition {
    const image = options.images?.[svc.name] ?? svc.image;
    if (!image)
      warn(
        svc,
        'build',
        'no image: the service is built locally',
        'mlship deploy pushes built images to ECR and fills this in',
      );
    for (const v of svc.volumes) {
      warn(
        svc,
        'volumes',
        `${v.type} mount ${v.source ?? '(anonymous)'} → ${v.target} is not carried over (a task has no host files)`,
        v.readOnly
          ? 'bake the file into the image (COPY), or for model weights download them from S3 at start-up (weights.url)'
          : svc.role === 'database'
            ? 'use Amazon RDS for the database, or EFS for data that must persist'
            : 'use EFS or S3 for data that must persist',
      );
    }
    for (const d of svc.dependsOn) {
      if (taskOf.get(d.service) !== taskOf.get(svc.name)) {
        warn(
          svc,
          'depends_on',
          `depends on ${d.service}, which runs in another task: ECS orders containers only within a task`,
          'make the service retry until its dependency answers (Service Connect resolves the name)',
        );
      }
    }
    const sameTaskDeps = svc.dependsOn.filter((d) => taskOf.get(d.service) === taskOf.get(svc.name));
    const environment = Object.entries(svc.environment)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value }));
    const secrets = [
      ...svc.secretEnv,
      ...svc.secrets.map((s) => s.name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')),
    ]
      .sort()
      .map((name) => ({ name, valueFrom: secretArn(name) }));
    const tcpPorts = svc.ports.filter((p) => p.protocol === 'tcp');
    for (const p of svc.ports.filter((p) => p.protocol === 'udp')) {
      warn(svc, 'ports', `udp port ${p.container} is not reachable through Service Connect`);
    }
    const gpuCount = svc.gpus === 'all' ? 1 : svc.gpus;
    if (svc.gpus === 'all')
      warn(svc, 'deploy', 'GPU count "all" becomes 1 GPU per container on ECS', 'set an explicit count');
    const def: ContainerDefinition = {
      name: svc.name,
      image: image ?? `${stack.name}/${svc.name}`,
      essential: true,
      ...(svc.command ? { command: svc.command } : {}),
      ...(svc.entrypoint ? { entryPoint: svc.entrypoint } : {}),
      ...(environment.length ? { environment } : {}),
      ...(secrets.length ? { secrets } : {}),
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
      ...(svc.user ? { user: svc.user } : {}),
      ...(svc.workingDir ? { workingDirectory: svc.workingDir } : {}),
      ...(svc.stopGraceSeconds !== undefined
        ? { stopTimeout: Math.min(120, Math.round(svc.stopGraceSeconds)) }
        : {}),
      ...(gpuCount ? { resourceRequirements: [{ type: 'GPU' as const, value: String(gpuCount) }] } : {}),
      ...(sameTaskDeps.length
        ? {
            dependsOn: sameTaskDeps.map((d) => ({
              containerName: d.service,
              condition:
                d.condition === 'healthy'
                  ? ('HEALTHY' as const)
                  : d.condition === 'completed'
                    ? ('SUCCESS' as const)
                    : ('START' as const),
            })),
          }
        : {}),
      logConfiguration: {
        logDriver: 'awslogs',
        options: {
          'awslogs-group': logGroup,
          'awslogs-region': options.region,
          'awslogs-stream-prefix': svc.name,
        },
      },
    };
    if (svc.healthcheck) def.healthCheck = healthCheck(svc);
    if (svc.stopGraceSeconds !== undefined && svc.stopGraceSeconds > 120) {
      warn(
        svc,
        'stop_grace_period',
        `stop grace of ${svc.stopGraceSeconds} s is cut to ECS's maximum of 120 s`,
      );
    }
    return def;
  }

  function healthCheck(svc: StackService): HealthCheck {
    const h = svc.healthcheck!;
    const wanted = {
      interval: h.intervalSeconds ?? 30,
      timeout: h.timeoutSeconds ?? 5,
      retries: h.retries ?? 3,
      startPeriod: options.startupGrace?.[svc.name] ?? h.startPeriodSeconds ?? 0,
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

  function baseInput(
    family: string,
  ): Pick<
    RegisterTaskDefinitionCommandInput,
    'family' | 'networkMode' | 'executionRoleArn' | 'taskRoleArn' | 'tags'
  > {
    return {
      family,
      networkMode: 'awsvpc',
      ...(options.executionRoleArn ? { executionRoleArn: options.executionRoleArn } : {}),
      ...(options.taskRoleArn ? { taskRoleArn: options.taskRoleArn } : {}),
      tags: [
        { key: 'mlship:stack', value: stack.name },
        { key: 'mlship:managed', value: 'true' },
      ],
    };
  }

  const taskDefinitions: RegisterTaskDefinitionCommandInput[] = [];
  const services: EcsServicePlan[] = [];
  const graceOf = (s: StackService) =>
    Math.max(options.startupGrace?.[s.name] ?? 0, s.healthcheck?.startPeriodSeconds ?? 0, 0);
  const containersOf = (s: StackService) => {
    const p = s.ports.find((x) => x.protocol === 'tcp');
    return {
      name: s.name,
      ...(p ? { portName: p.name ?? `${s.name}-${p.container}`, port: p.container } : {}),
    };
  };

  // Published ports become listeners of one shared load balancer: a port bound to loopback is
  // for the local machine only, and a listener port can forward to one service only.
  const listenerOwner = new Map<number, string>();
  const publicPortsOf = (s: StackService): PublicPort[] => {
    const out: PublicPort[] = [];
    for (const p of s.ports) {
      if (p.published === undefined || p.hostIp === '127.0.0.1' || p.hostIp === 'localhost') continue;
      if (p.protocol !== 'tcp') {
        warn(
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
          s,
          'ports',
          `published port ${p.published} (${notHttp}) is not exposed to the internet: an Application Load Balancer carries HTTP only`,
          'other services reach it through Service Connect; drop the published port',
        );
        continue;
      }
      const owner = listenerOwner.get(p.published);
      if (owner) {
        warn(
          s,
          'ports',
          `port ${p.published} is already published by ${owner}; the load balancer's listener ${p.published} forwards to ${owner} only`,
          `publish another port, or route ${s.name} through ${owner}`,
        );
        continue;
      }
      listenerOwner.set(p.published, s.name);
      out.push({
        listener: p.published,
        container: s.name,
        containerPort: p.container,
        healthCheckPath: healthPathOf(s, p.container) ?? '/',
        healthCheckIntervalSeconds: clamp(s.healthcheck?.intervalSeconds ?? 30, HEALTH_LIMITS.interval),
      });
    }
    return out;
  };

  if (gpuTask) {
    const memory = gpuServices.reduce(
      (n, s) => n + Math.ceil((s.memoryBytes ?? 4 * 1024 ** 3) / 1024 ** 2),
      0,
    );
    taskDefinitions.push({
      ...baseInput(gpuTask),
      requiresCompatibilities: ['EC2'],
      memory: String(memory),
      containerDefinitions: gpuServices.map(container),
    });
    services.push({
      name: gpuTask,
      taskFamily: gpuTask,
      launchType: 'EC2',
      desiredCount: 1,
      containers: gpuServices.map(containersOf),
      publicPorts: gpuServices.flatMap(publicPortsOf),
      healthCheckGracePeriodSeconds: Math.max(...gpuServices.map(graceOf)),
    });
  }
  for (const s of cpuServices) {
    const family = taskOf.get(s.name)!;
    const fallback = s.role === 'model' ? DEFAULT_MODEL : DEFAULT_OTHER;
    const wantCpu = s.cpus !== undefined ? Math.ceil(s.cpus * 1024) : fallback.cpu;
    const wantMem = s.memoryBytes !== undefined ? Math.ceil(s.memoryBytes / 1024 ** 2) : fallback.memory;
    const size = fargateSize(wantCpu, wantMem);
    if (!size) {
      warn(
        s,
        'deploy.resources',
        `${wantCpu} cpu units and ${wantMem} MiB exceed Fargate's largest size (16 vCPU, 120 GiB)`,
        'lower the limits, or run it on EC2',
      );
    } else if (size.cpu !== wantCpu || size.memory !== wantMem) {
      warn(
        s,
        'deploy.resources',
        `Fargate has no ${wantCpu} cpu / ${wantMem} MiB size; rounded up to ${size.cpu} cpu / ${size.memory} MiB`,
      );
    }
    const largest = FARGATE_SIZES[FARGATE_SIZES.length - 1]!;
    const chosen = size ?? { cpu: largest.cpu, memory: largest.memory[largest.memory.length - 1]! };
    taskDefinitions.push({
      ...baseInput(family),
      requiresCompatibilities: ['FARGATE'],
      cpu: String(chosen.cpu),
      memory: String(chosen.memory),
      runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: 'X86_64' },
      containerDefinitions: [container(s)],
    });
    services.push({
      name: s.name,
      taskFamily: family,
      launchType: 'FARGATE',
      desiredCount: 1,
      containers: [containersOf(s)],
      publicPorts: publicPortsOf(s),
      healthCheckGracePeriodSeconds: graceOf(s),
    });
  }
  return { taskDefinitions, services, logGroup, warnings };
}
