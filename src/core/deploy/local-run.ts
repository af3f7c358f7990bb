// `mlship deploy ecs --local`: the stack's task definitions, run on the local engine as
// ECS would run them (the retired `ecs-cli local`), so a deploy is proven to start
// before it is trusted: each task's containers share one network namespace (awsvpc),
// the first one answers to every container's Service Connect name on the stack's
// network, `secrets` are resolved from SSM / Secrets Manager (or their stand-in), the
// task role's credentials are handed in (assumed, so containers may do what the task
// may do), health checks run with their start period, `dependsOn` orders containers
// inside a task, and the load balancer's listeners are published on loopback. Each
// container is reported healthy, running, or why not. While a rollout runs on ECS, what its
// services run now: the stable and proxy services' revisions (a shadow's proxy mirrors), and
// the candidate service's under its own Service Connect name (`<service>-candidate`).

import type {
  ContainerDefinition,
  RegisterTaskDefinitionCommandInput,
  SystemControl,
} from '@aws-sdk/client-ecs';
import type { ContainerHandle, ContainerInfo, ContainerSpec, Engine } from '../../adapters/docker/engine.js';
import { isEcr, parseImageRef } from '../../config/image-ref.js';
import type { Rollout } from '../../config/rollout-schema.js';
import { SHADOW_CPU_SHARES } from '../../generators/compose-rollout.js';
import { type Clock, realClock } from '../../io/clock.js';
import { UsageError } from '../../io/errors.js';
import type { AwsCredentials, AwsDeployApis } from './aws-apis.js';

export const LOCAL_LABEL = 'dev.mlship.ecs-local';

export interface LocalRunDeps {
  engine: Pick<Engine, 'ensureNetwork' | 'removeNetwork' | 'start' | 'removeByLabel' | 'pull' | 'info'>;
  aws: Pick<AwsDeployApis, 'secrets' | 'sts' | 'ecr'>;
  log(line: string): void;
  clock?: Clock;
}

export interface LocalRunOptions {
  stack: string;
  region: string;
  taskDefinitions: RegisterTaskDefinitionCommandInput[];
  /** The load balancer's listeners: listener port → the container and port it forwards to. */
  listeners: { port: number; container: string; containerPort: number }[];
  /** The AWS endpoint as containers reach it (an emulator); none: AWS itself. */
  endpointUrl?: string;
  /** Host port of each listener (default: one the engine picks). */
  hostPorts?: Record<number, number>;
  /** How long to wait for every container (default: the longest start period + 120 s). */
  timeoutSeconds?: number;
  /**
   * Containers that run at the lowest CPU weight: a shadow candidate, which on ECS has its own
   * task's CPUs but here would take the stable service's (as `compose up` runs a local shadow).
   */
  lowPriority?: string[];
}

export type LocalStatus = 'healthy' | 'running' | 'exited' | 'unhealthy' | 'not started' | 'timed out';

export interface LocalContainerResult {
  family: string;
  container: string;
  status: LocalStatus;
  detail: string;
  /** Last log lines, when it did not come up. */
  logs?: string[];
}

export interface LocalRunResult {
  ok: boolean;
  network: string;
  containers: LocalContainerResult[];
  /** Listener → where it answers on this machine. */
  endpoints: { port: number; container: string; url: string }[];
  /** Whose credentials the containers got: the task role's, or the caller's. */
  credentials: 'task role' | 'caller' | 'none';
}

export const localNetwork = (stack: string) => `mlship-ecs-${stack}`;

/** Removes what an earlier `--local` of the stack started: its containers and network. */
export async function stopLocal(stack: string, deps: Pick<LocalRunDeps, 'engine'>): Promise<number> {
  const removed = await deps.engine.removeByLabel(LOCAL_LABEL, stack);
  await deps.engine.removeNetwork(localNetwork(stack));
  return removed;
}

/** Containers of a task in the order ECS starts them: dependencies first, else as defined. */
export function startOrder(containers: ContainerDefinition[]): ContainerDefinition[] {
  const out: ContainerDefinition[] = [];
  const placed = new Set<string>();
  let progress = true;
  while (out.length < containers.length && progress) {
    progress = false;
    for (const c of containers) {
      if (placed.has(c.name!)) continue;
      const deps = (c.dependsOn ?? []).map((d) => d.containerName!);
      if (deps.every((d) => placed.has(d) || !containers.some((x) => x.name === d))) {
        out.push(c);
        placed.add(c.name!);
        progress = true;
      }
    }
  }
  return [...out, ...containers.filter((c) => !placed.has(c.name!))];
}

/** The environment a container gets: its own, its resolved secrets, AWS region, endpoint and credentials. */
async function environmentOf(
  c: ContainerDefinition,
  deps: LocalRunDeps,
  options: LocalRunOptions,
  credentials: AwsCredentials | undefined,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const e of c.environment ?? []) env[e.name!] = e.value ?? '';
  for (const s of c.secrets ?? []) env[s.name!] = await deps.aws.secrets.value(s.valueFrom!);
  env.AWS_REGION ??= options.region;
  env.AWS_DEFAULT_REGION ??= options.region;
  if (options.endpointUrl) env.AWS_ENDPOINT_URL = options.endpointUrl;
  if (credentials) {
    env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
    env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
    if (credentials.sessionToken) env.AWS_SESSION_TOKEN = credentials.sessionToken;
  }
  return env;
}

/** The task role's credentials when they can be assumed, else the caller's (said in the report). */
async function taskCredentials(
  roleArn: string | undefined,
  deps: LocalRunDeps,
  stack: string,
): Promise<{ credentials?: AwsCredentials; kind: LocalRunResult['credentials'] }> {
  if (roleArn) {
    const assumed = await deps.aws.sts.assumeRole(roleArn, `mlship-local-${stack}`.slice(0, 64));
    if (assumed) return { credentials: assumed, kind: 'task role' };
    deps.log(
      `the task role ${roleArn.split('/').pop()} trusts ECS tasks only: containers get your credentials instead`,
    );
  }
  try {
    return { credentials: await deps.aws.sts.callerCredentials(), kind: 'caller' };
  } catch {
    return { kind: 'none' };
  }
}

/** Every image on this machine, pulled when missing (ECR with its token). */
async function pullImages(tds: RegisterTaskDefinitionCommandInput[], deps: LocalRunDeps): Promise<void> {
  const images = [...new Set(tds.flatMap((td) => (td.containerDefinitions ?? []).map((c) => c.image!)))];
  for (const image of images) {
    const auth = isEcr(parseImageRef(image)) ? await deps.aws.ecr.authorization() : undefined;
    const { pulled } = await deps.engine.pull(image, auth);
    if (pulled) deps.log(`pulled ${image}`);
  }
}

interface Started {
  family: string;
  def: ContainerDefinition;
  handle?: ContainerHandle;
  error?: string;
}

function containerSpec(
  td: RegisterTaskDefinitionCommandInput,
  c: ContainerDefinition,
  owner: ContainerHandle | undefined,
  env: Record<string, string>,
  options: LocalRunOptions,
  gpus: boolean,
): ContainerSpec {
  const h = c.healthCheck;
  const single = (td.containerDefinitions ?? []).length === 1;
  const published = owner
    ? {}
    : Object.fromEntries(
        options.listeners
          .filter((l) => td.containerDefinitions?.some((x) => x.name === l.container))
          .map((l) => [l.containerPort, options.hostPorts?.[l.port] ?? 0]),
      );
  const gpuCount = Number(c.resourceRequirements?.find((r) => r.type === 'GPU')?.value ?? 0);
  return {
    image: c.image!,
    name: `${options.stack}-local-${c.name}`,
    ...(c.command ? { cmd: c.command } : {}),
    ...(c.entryPoint ? { entrypoint: c.entryPoint } : {}),
    ...(c.workingDirectory ? { workdir: c.workingDirectory } : {}),
    ...(c.user ? { user: c.user } : {}),
    env,
    labels: {
      [LOCAL_LABEL]: options.stack,
      'dev.mlship.stack': options.stack,
      'dev.mlship.task': td.family!,
    },
    // awsvpc: the first container of a task owns the network namespace; the others join it.
    network: owner ? `container:${owner.id}` : localNetwork(options.stack),
    ...(owner ? {} : { networkAliases: (td.containerDefinitions ?? []).map((x) => x.name!) }),
    ...(owner ? {} : { ports: published, extraHosts: ['host.docker.internal:host-gateway'] }),
    ...(h?.command
      ? {
          healthcheck: {
            test: h.command,
            intervalSeconds: h.interval ?? 30,
            timeoutSeconds: h.timeout ?? 5,
            retries: h.retries ?? 3,
            startPeriodSeconds: h.startPeriod ?? 0,
          },
        }
      : {}),
    ...(c.stopTimeout !== undefined ? { stopTimeoutSeconds: c.stopTimeout } : {}),
    ...sysctlsOf(td, c, owner),
    // A Fargate task's memory is its container's when it is alone in the task.
    ...(single && td.memory ? { memoryBytes: Number(td.memory) * 1024 ** 2 } : {}),
    ...(single && td.cpu ? { cpus: Number(td.cpu) / 1024 } : {}),
    ...(options.lowPriority?.includes(c.name!) ? { cpuShares: SHADOW_CPU_SHARES } : {}),
    ...(gpus && gpuCount ? { gpus: gpuCount } : {}),
  };
}

/**
 * A container's systemControls as docker's sysctls. In awsvpc mode a network setting applies to
 * the whole task: every container's net.* ones go to the container that owns the namespace
 * (docker refuses them on a container that joins another's); the rest stay with their own.
 */
export function sysctlsOf(
  td: RegisterTaskDefinitionCommandInput,
  c: ContainerDefinition,
  owner: ContainerHandle | undefined,
): { sysctls?: Record<string, string> } {
  const set = (x: ContainerDefinition) =>
    (x.systemControls ?? []).filter((s) => s.namespace && s.value !== undefined);
  const net = (s: SystemControl) => s.namespace!.startsWith('net.');
  const others = (td.containerDefinitions ?? []).filter((x) => x !== c);
  const controls = owner
    ? set(c).filter((s) => !net(s))
    : [...set(c), ...others.flatMap((x) => set(x).filter(net))];
  return controls.length
    ? { sysctls: Object.fromEntries(controls.map((s) => [s.namespace!, s.value!])) }
    : {};
}

/** Waits until `condition` holds for a started container (dependsOn), or it cannot any more. */
async function reached(
  handle: ContainerHandle,
  condition: string,
  deadline: number,
  clock: Clock,
): Promise<ContainerInfo> {
  for (;;) {
    const info = await handle.inspect();
    const done =
      condition === 'START'
        ? info.running || info.status === 'exited'
        : condition === 'HEALTHY'
          ? info.health === 'healthy'
          : !info.running && info.status === 'exited' && (condition === 'COMPLETE' || info.exitCode === 0);
    if (done || (condition === 'HEALTHY' && (!info.running || info.health === 'unhealthy'))) return info;
    if (clock.now() > deadline) return info;
    await clock.sleep(500);
  }
}

async function startTask(
  td: RegisterTaskDefinitionCommandInput,
  deps: LocalRunDeps,
  options: LocalRunOptions,
  credentials: AwsCredentials | undefined,
  gpus: boolean,
  deadline: number,
): Promise<Started[]> {
  const clock = deps.clock ?? realClock;
  const started: Started[] = [];
  let owner: ContainerHandle | undefined;
  for (const c of startOrder(td.containerDefinitions ?? [])) {
    // dependsOn inside the task: each condition is waited for, as the ECS agent does.
    for (const d of c.dependsOn ?? []) {
      const dep = started.find((s) => s.def.name === d.containerName);
      if (!dep?.handle) continue;
      await reached(dep.handle, d.condition ?? 'START', deadline, clock);
    }
    const env = await environmentOf(c, deps, options, credentials);
    try {
      const handle = await deps.engine.start(containerSpec(td, c, owner, env, options, gpus));
      owner ??= handle;
      started.push({ family: td.family!, def: c, handle });
      deps.log(`${td.family}/${c.name}: started`);
    } catch (e) {
      started.push({ family: td.family!, def: c, error: (e as Error).message });
      if (!owner) break; // without the namespace owner the rest of the task cannot start
    }
  }
  return started;
}

/** A container's outcome: healthy (or running, without a health check), or why not. */
async function outcome(s: Started, deadline: number, clock: Clock): Promise<LocalContainerResult> {
  const base = { family: s.family, container: s.def.name! };
  if (!s.handle) return { ...base, status: 'not started', detail: s.error ?? 'not started' };
  const hasCheck = Boolean(s.def.healthCheck?.command);
  let info = await s.handle.inspect();
  while (
    info.running &&
    hasCheck &&
    info.health !== 'healthy' &&
    info.health !== 'unhealthy' &&
    clock.now() <= deadline
  ) {
    await clock.sleep(500);
    info = await s.handle.inspect();
  }
  const logs = async () => (await s.handle!.logs(30)).trimEnd().split('\n').filter(Boolean);
  if (!info.running)
    return {
      ...base,
      status: 'exited',
      detail: `exited with code ${info.exitCode}${info.oomKilled ? ' (out of memory)' : ''}${info.error ? `: ${info.error}` : ''}`,
      logs: await logs(),
    };
  if (!hasCheck) return { ...base, status: 'running', detail: 'running (no health check)' };
  if (info.health === 'healthy') return { ...base, status: 'healthy', detail: 'healthy' };
  const last = info.healthLog[info.healthLog.length - 1];
  const why = last ? `: ${last.output.trim().split('\n').pop()}` : '';
  return info.health === 'unhealthy'
    ? { ...base, status: 'unhealthy', detail: `health check failed${why}`, logs: await logs() }
    : { ...base, status: 'timed out', detail: `not healthy in time${why}`, logs: await logs() };
}

export async function runLocally(deps: LocalRunDeps, options: LocalRunOptions): Promise<LocalRunResult> {
  const clock = deps.clock ?? realClock;
  await stopLocal(options.stack, deps);
  await deps.engine.ensureNetwork(localNetwork(options.stack), {
    'dev.mlship.stack': options.stack,
    [LOCAL_LABEL]: options.stack,
  });
  await pullImages(options.taskDefinitions, deps);
  const taskRole = options.taskDefinitions.find((td) => td.taskRoleArn)?.taskRoleArn;
  const { credentials, kind } = await taskCredentials(taskRole, deps, options.stack);
  const gpus = (await deps.engine.info()).runtimes.includes('nvidia');
  const longest = Math.max(
    0,
    ...options.taskDefinitions.flatMap((td) =>
      (td.containerDefinitions ?? []).map(
        (c) =>
          (c.healthCheck?.startPeriod ?? 0) + (c.healthCheck?.interval ?? 30) * (c.healthCheck?.retries ?? 3),
      ),
    ),
  );
  const deadline = clock.now() + (options.timeoutSeconds ?? longest + 120) * 1000;
  // Tasks the load balancer reaches start last: a proxy resolves its upstreams' names at start.
  const isPublic = (td: RegisterTaskDefinitionCommandInput) =>
    options.listeners.some((l) => td.containerDefinitions?.some((c) => c.name === l.container));
  const order = [
    ...options.taskDefinitions.filter((t) => !isPublic(t)),
    ...options.taskDefinitions.filter(isPublic),
  ];
  const started: Started[] = [];
  for (const td of order) started.push(...(await startTask(td, deps, options, credentials, gpus, deadline)));
  const containers: LocalContainerResult[] = [];
  for (const s of started) containers.push(await outcome(s, deadline, clock));
  const endpoints: LocalRunResult['endpoints'] = [];
  for (const l of options.listeners) {
    const family = started.find((s) => s.def.name === l.container)?.family;
    // Ports are published on the task's first container: it owns the task's network namespace.
    const owner = started.find((s) => s.family === family && s.handle);
    const port = owner?.handle ? await owner.handle.hostPort(l.containerPort) : undefined;
    if (port) endpoints.push({ port: l.port, container: l.container, url: `http://127.0.0.1:${port}/` });
  }
  // Essential containers must be up; a non-essential one may also have finished its work.
  const ok = containers.every((c) => {
    const essential =
      started.find((s) => s.family === c.family && s.def.name === c.container)?.def.essential !== false;
    return (
      c.status === 'healthy' ||
      c.status === 'running' ||
      (!essential && c.detail.startsWith('exited with code 0'))
    );
  });
  return { ok, network: localNetwork(options.stack), containers, endpoints, credentials: kind };
}

/**
 * What to run: the revisions registered in ECS (as deployed, with the images they name), or,
 * before the first apply, the plan's, with each image mlship builds taken from this machine.
 * With `rollouts` running on ECS, the revisions their services run (rolloutTaskDefinitions).
 */
export async function taskDefinitionsToRun(
  plan: {
    translation: { taskDefinitions: RegisterTaskDefinitionCommandInput[] };
    localImages: Record<string, string>;
  },
  deps: { aws: Pick<AwsDeployApis, 'ecs'> },
  rollouts: Rollout[] = [],
): Promise<{
  taskDefinitions: RegisterTaskDefinitionCommandInput[];
  source: 'deployed' | 'planned';
  revisions: string[];
  lowPriority: string[];
}> {
  const registered = await Promise.all(
    plan.translation.taskDefinitions.map((td) =>
      deps.aws.ecs.latestTaskDefinition(td.family!).catch(() => undefined),
    ),
  );
  if (registered.every((r) => r)) {
    const deployed = registered.map((r) => r as RegisterTaskDefinitionCommandInput & { revision?: number });
    const { taskDefinitions, lowPriority } = await rolloutTaskDefinitions(deployed, rollouts, deps);
    return {
      taskDefinitions,
      source: 'deployed',
      revisions: taskDefinitions.map((r) => `${r.family}:${(r as { revision?: number }).revision}`),
      lowPriority,
    };
  }
  return {
    taskDefinitions: plan.translation.taskDefinitions.map((td) => ({
      ...td,
      containerDefinitions: td.containerDefinitions?.map((c) =>
        plan.localImages[c.name!] ? { ...c, image: plan.localImages[c.name!]! } : c,
      ),
    })),
    source: 'planned',
    revisions: [],
    lowPriority: [],
  };
}

/**
 * The family's latest revision is not what ECS runs while a rollout runs there: the candidate's
 * revision is the latest of the stable one's family. So each running rollout's services take
 * the revision it recorded (the stable one; the proxy, when it routes the rollout, its routing revision), and the
 * candidate's revision is added under its service's name, as Service Connect names it. A
 * shadow candidate's containers are also named in `lowPriority` (see LocalRunOptions).
 */
export async function rolloutTaskDefinitions(
  deployed: RegisterTaskDefinitionCommandInput[],
  rollouts: Rollout[],
  deps: { aws: Pick<AwsDeployApis, 'ecs'> },
): Promise<{ taskDefinitions: RegisterTaskDefinitionCommandInput[]; lowPriority: string[] }> {
  const out = [...deployed];
  const lowPriority: string[] = [];
  const describe = async (arn: string) => {
    const td = await deps.aws.ecs.latestTaskDefinition(arn);
    if (!td)
      throw new UsageError(`${arn}, which a running rollout records, is not an active revision`, {
        hint: 'see mlship rollout status <service> --target ecs; roll it back if it was changed by hand',
      });
    return td as RegisterTaskDefinitionCommandInput;
  };
  for (const r of rollouts.filter((x) => x.status === 'running')) {
    const rec = r.ecsProxy ?? r.ecs;
    if (!rec) continue;
    const current = [rec.stableTaskDefinition, ...(r.ecsProxy ? [r.ecsProxy.routeProxyTaskDefinition] : [])];
    for (const arn of current) {
      const td = await describe(arn);
      const i = out.findIndex((x) => x.family === td.family);
      if (i >= 0) out[i] = td;
    }
    const candidate = asService(
      await describe(rec.candidateTaskDefinition),
      rec.stableService,
      rec.candidateService,
    );
    out.push(candidate);
    if (r.ecsProxy && r.mode === 'shadow')
      lowPriority.push(...(candidate.containerDefinitions ?? []).map((c) => c.name!));
  }
  return { taskDefinitions: out, lowPriority };
}

/**
 * A revision run as another service of the same family (the candidate): its containers renamed
 * `<name><suffix>` (the suffix that makes `service` into `as`), so that the local containers and
 * the names they answer to on the stack's network are the candidate's, not the stable one's.
 */
export function asService(
  td: RegisterTaskDefinitionCommandInput,
  service: string,
  as: string,
): RegisterTaskDefinitionCommandInput {
  const suffix = as.startsWith(service) ? as.slice(service.length) : `-${as}`;
  return {
    ...td,
    containerDefinitions: (td.containerDefinitions ?? []).map((c) => ({
      ...c,
      name: `${c.name}${suffix}`,
      ...(c.dependsOn
        ? { dependsOn: c.dependsOn.map((d) => ({ ...d, containerName: `${d.containerName}${suffix}` })) }
        : {}),
    })),
  };
}
