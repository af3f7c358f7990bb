// `mlship deploy ecs --apply`: pre-deploy checks, ECR repositories and pushes,
// log group, cluster (and the GPU task's capacity), task definitions, the shared
// load balancer, services, and waiting until they are stable. Every step is idempotent:
// a re-run with nothing changed registers no revision and updates no service, and
// a run that failed part-way is finished by the next one.

import type { RegisterTaskDefinitionCommandInput, TaskDefinition } from '@aws-sdk/client-ecs';
import type { PushProgress, RegistryAuth } from '../../adapters/docker/engine.js';
import {
  formatImageRef,
  type ImageRef,
  imageName,
  inRegistry,
  isEcr,
  parseImageRef,
  withTag,
} from '../../config/image-ref.js';
import { UsageError } from '../../io/errors.js';
import type { ServiceConnectSpec, ServiceLoadBalancer } from './aws-apis.js';
import { preDeployChecks } from './checks.js';
import { chooseEngineVersion, type DatabaseResult, ensureDatabase } from './database-apply.js';
import type { ApplyDeps, ApplyOptions, DeployNetwork } from './deps.js';
import { type EfsResult, type EfsVolumePlan, ensureEfs, withEfsIds } from './efs.js';
import { ensureGpuCapacity, type GpuCapacityResult } from './gpu-capacity.js';
import { healthCheckTools, missingHealthCheckTools } from './health-tools.js';
import { ensureLoadBalancer, type LoadBalancerResult, sameLoadBalancers } from './load-balancer.js';
import { loadBalancerNames } from './load-balancer-plan.js';
import type { EcsPlanResult, ListenerPlan } from './plan.js';
import {
  ensureQueues,
  ensureSpotCapacity,
  ensureWorkersScaling,
  type QueueResult,
  type ScalingResult,
} from './queues-apply.js';
import {
  type BucketResult,
  ensureLocalSecrets,
  ensureRoles,
  ensureStackBucket,
  ensureWeights,
  type RoleResult,
} from './stack-resources.js';
import { waitUntilStable } from './wait.js';
import type { WeightsUploadResult } from './weights.js';

export interface ServiceEndpoints {
  service: string;
  /** `<discovery name>:<port>` inside the Service Connect namespace (the stack name). */
  serviceConnect?: { namespace: string; dnsName: string; port: number };
  /** Published ports: a listener of the shared load balancer each. */
  public: { port: number; url?: string; loadBalancerDns?: string; note: string }[];
}

export interface ApplyResult {
  cluster: { name: string; created: boolean };
  logGroup: { name: string; created: boolean };
  repositories: { name: string; created: boolean }[];
  pushes: {
    service: string;
    image: string;
    skipped: boolean;
    digest?: string;
    layersPushed?: number;
    movingTag?: string;
  }[];
  taskDefinitions: { family: string; arn: string; registered: boolean }[];
  services: { name: string; action: 'created' | 'updated' | 'unchanged' }[];
  loadBalancer?: LoadBalancerResult;
  gpuCapacity?: GpuCapacityResult;
  /** The stack's bucket, when it has something to hold (weights). */
  bucket?: BucketResult;
  weights: WeightsUploadResult[];
  roles: RoleResult[];
  databases: DatabaseResult[];
  efs: EfsResult[];
  /** The workers' queues and their scaling (empty without `queue:`). */
  queues: QueueResult[];
  scaling: ScalingResult[];
  /** SSM parameters created from the stack's .env (names only). */
  secretsCreated: string[];
  /** Services waited for; empty with --no-wait or when nothing changed. */
  stable: { name: string; seconds: number }[];
  endpoints: ServiceEndpoints[];
}

/** Whether every field we send is already what ECS has (ECS adds defaults and read-only fields). */
export function sameAsRegistered(wanted: unknown, actual: unknown): boolean {
  if (wanted === undefined) return true;
  if (Array.isArray(wanted)) {
    return (
      Array.isArray(actual) &&
      actual.length === wanted.length &&
      wanted.every((w, i) => sameAsRegistered(w, actual[i]))
    );
  }
  if (wanted !== null && typeof wanted === 'object') {
    if (actual === null || typeof actual !== 'object') return false;
    return Object.entries(wanted).every(([k, v]) =>
      sameAsRegistered(v, (actual as Record<string, unknown>)[k]),
    );
  }
  return wanted === actual;
}

/** The user the access point of a volume belongs to: the service's, else its local image's, else root. */
async function efsUser(deps: ApplyDeps, options: ApplyOptions, v: EfsVolumePlan): Promise<number> {
  if (v.uid !== undefined) return v.uid;
  for (const m of v.mounts) {
    const image = options.localImages[m.service];
    if (!image || !(await deps.engine.imageExists(image))) continue;
    const user = /^(\d+)/.exec((await deps.engine.inspectImage(image)).user)?.[1];
    if (user) return Number(user);
  }
  return 0;
}

/** What would keep a service from starting on ECS stops the apply before anything is created. */
async function refuseWhatCannotStart(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
): Promise<void> {
  const details = plan.translation.refusals.map(
    (w) => `${w.file}:${w.line}:${w.column} ${w.path}: ${w.message}${w.fix ? ` (fix: ${w.fix})` : ''}`,
  );
  if (deps.imagePrograms) {
    const needs = healthCheckTools(
      plan.translation.taskDefinitions,
      (c, image) => options.localImages[c] ?? image,
    );
    details.push(...(await missingHealthCheckTools(needs, deps.imagePrograms)));
  }
  if (!details.length) return;
  throw new UsageError(`${details.length} service setting(s) could not work on ECS; nothing was created`, {
    details,
    hint: 'fix the items above (each names its fix) and run again',
  });
}

function withoutTags(td: RegisterTaskDefinitionCommandInput): RegisterTaskDefinitionCommandInput {
  // DescribeTaskDefinition does not return tags unless asked: compare the rest.
  const { tags: _tags, ...rest } = td;
  return rest;
}

export async function applyEcs(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
): Promise<ApplyResult> {
  const { aws } = deps;
  await refuseWhatCannotStart(plan, deps, options);
  // The stack's own secrets from its .env, before the checks that look for them.
  const createdSecrets = await ensureLocalSecrets(plan, deps, options.localSecrets ?? {});
  await options.beforeChecks?.();
  const network = await preDeployChecks(plan, deps, options);
  // The database engine version the region offers for the local major: refused before anything is created.
  const versions = new Map<string, string>();
  for (const db of plan.databases) versions.set(db.identifier, await chooseEngineVersion(db, deps));
  const stack = plan.stack;
  const result = emptyResult(plan, createdSecrets);

  // 0. What the tasks need before they start: the bucket with their weights, their roles, data.
  await ensureBeforeTasks(plan, deps, options, network, versions, result);
  // 1. Images: ECR repositories, then pushes that skip what the registry already has.
  const current = await registeredTaskDefinitions(plan, deps);
  const reuse = await pushImages(plan, deps, options, current, result);
  // 2. Log group first (a failed deploy keeps its logs for debugging), cluster, GPU capacity.
  result.logGroup.created = (
    await aws.logs.ensureLogGroup(plan.translation.logGroup, options.logRetentionDays ?? 30)
  ).created;
  result.cluster.created = (await aws.ecs.ensureCluster(stack, stack)).created;
  // The instances a GPU task runs on: ECS scales them with the tasks (to zero with none).
  if (network.gpuAmi) result.gpuCapacity = await ensureGpuCapacity(plan, deps, network, options);
  // 3. Task definitions: a new revision only when something we send changed.
  const arnOf = await registerTaskDefinitions(plan, deps, options, { current, reuse }, result);
  // 4. The shared load balancer, for the services that publish a port; before the services,
  // because a service can only be created with target groups that belong to a load balancer.
  let targets = new Map<string, ServiceLoadBalancer[]>();
  if (network.balancer) {
    const lb = await ensureLoadBalancer(plan, deps, network);
    result.loadBalancer = lb.loadBalancer;
    targets = lb.targets;
  }
  // 5. Services: create the missing ones, update only those whose task definition or load
  // balancers changed; then the workers' scaling, now that their services exist.
  await ensureSpotCapacity(plan.queues ?? [], stack, deps);
  for (const svc of plan.translation.services) {
    const action = await ensureService(
      plan,
      deps,
      options,
      { svc, arn: arnOf.get(svc.taskFamily)!, targets, network },
      result,
    );
    result.services.push({ name: svc.name, action });
  }
  result.scaling = await ensureWorkersScaling(plan.queues ?? [], stack, deps);
  // 6. Wait for the changed services; a failure keeps the log group for debugging.
  await waitForChanged(plan, deps, options, arnOf, result);
  result.endpoints = plan.translation.services.map((s) =>
    endpointsOf(
      stack,
      s,
      result.loadBalancer && plan.loadBalancer
        ? { dnsName: result.loadBalancer.dnsName, listeners: plan.loadBalancer.listeners }
        : undefined,
    ),
  );
  return result;
}

function emptyResult(plan: EcsPlanResult, secretsCreated: ApplyResult['secretsCreated']): ApplyResult {
  return {
    cluster: { name: plan.stack, created: false },
    logGroup: { name: plan.translation.logGroup, created: false },
    repositories: [],
    pushes: [],
    taskDefinitions: [],
    services: [],
    weights: [],
    roles: [],
    databases: [],
    efs: [],
    queues: [],
    scaling: [],
    secretsCreated,
    stable: [],
    endpoints: [],
  };
}

/** With --wait, the services this apply created or changed, until ECS calls them stable. */
async function waitForChanged(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
  arnOf: Map<string, string>,
  result: ApplyResult,
): Promise<void> {
  const changed = plan.translation.services.filter((s) =>
    result.services.some((r) => r.name === s.name && r.action !== 'unchanged'),
  );
  if (!options.wait || !changed.length) return;
  result.stable = await waitUntilStable(
    plan,
    changed.map((s) => ({ plan: s, taskDefinition: arnOf.get(s.taskFamily)! })),
    deps,
    options,
  );
}

/** The bucket with the weights, the roles, the queues, EFS and the databases. */
async function ensureBeforeTasks(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
  network: DeployNetwork,
  versions: Map<string, string>,
  result: ApplyResult,
): Promise<void> {
  const bucket = await ensureStackBucket(plan, deps);
  if (bucket) result.bucket = bucket;
  result.weights = await ensureWeights(plan, deps);
  result.roles = await ensureRoles(plan, deps, options);
  result.queues = await ensureQueues(plan.queues ?? [], plan.stack, deps);
  result.efs = await ensureEfs(plan.stack, plan.efs, deps, network, (v) => efsUser(deps, options, v));
  for (const db of plan.databases) {
    result.databases.push(
      await ensureDatabase(db, plan.stack, versions.get(db.identifier)!, deps, network, {
        ...(options.databaseWaitSeconds ? { waitTimeoutSeconds: options.databaseWaitSeconds } : {}),
      }),
    );
  }
}

/** A revision per family when what is sent differs from the registered one; the ARN each service runs. */
async function registerTaskDefinitions(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
  images: { current: Awaited<ReturnType<typeof registeredTaskDefinitions>>; reuse: Map<string, string> },
  result: ApplyResult,
): Promise<Map<string, string>> {
  const arnOf = new Map<string, string>();
  for (const td of plan.translation.taskDefinitions) {
    const routed = withEfsIds(options.registry ? withRegistry(td, options.registry) : td, result.efs);
    const input = {
      ...routed,
      containerDefinitions: routed.containerDefinitions?.map((c) =>
        images.reuse.has(c.name!) ? { ...c, image: images.reuse.get(c.name!)! } : c,
      ),
    };
    const registered = images.current.get(td.family!);
    if (registered && sameAsRegistered(withoutTags(input), registered)) {
      arnOf.set(td.family!, registered.taskDefinitionArn!);
      result.taskDefinitions.push({
        family: td.family!,
        arn: registered.taskDefinitionArn!,
        registered: false,
      });
      continue;
    }
    const revision = await deps.aws.ecs.registerTaskDefinition(input);
    deps.log(`registered ${td.family}:${revision.revision}`);
    arnOf.set(td.family!, revision.arn);
    result.taskDefinitions.push({ family: td.family!, arn: revision.arn, registered: true });
  }
  return arnOf;
}

type PlannedService = EcsPlanResult['translation']['services'][number];

/** Creates the service, or updates it when its task definition or load balancers changed (or --force). */
async function ensureService(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
  at: {
    svc: PlannedService;
    arn: string;
    targets: Map<string, ServiceLoadBalancer[]>;
    network: DeployNetwork;
  },
  result: ApplyResult,
): Promise<'created' | 'updated' | 'unchanged'> {
  const { svc, arn, network } = at;
  const stack = plan.stack;
  const existing = await deps.aws.ecs.describeService(stack, svc.name);
  const loadBalancers = [
    ...(at.targets.get(svc.name) ?? []),
    ...rolloutTargets(stack, svc.name, existing?.loadBalancers ?? []),
  ];
  if (!existing) {
    await deps.aws.ecs.createService({
      cluster: stack,
      serviceName: svc.name,
      taskDefinition: arn,
      launchType: svc.launchType,
      ...(svc.launchType === 'EC2' && result.gpuCapacity
        ? { capacityProvider: result.gpuCapacity.capacityProvider }
        : {}),
      ...(svc.capacityProvider ? { capacityProvider: svc.capacityProvider } : {}),
      desiredCount: svc.desiredCount,
      subnets: network.subnets,
      securityGroups: network.securityGroups,
      assignPublicIp: svc.launchType === 'FARGATE',
      ...(svc.healthCheckGracePeriodSeconds
        ? { healthCheckGracePeriodSeconds: svc.healthCheckGracePeriodSeconds }
        : {}),
      serviceConnect: serviceConnectOf(stack, svc),
      ...(loadBalancers.length ? { loadBalancers } : {}),
    });
    return 'created';
  }
  const lbChanged = !sameLoadBalancers(existing.loadBalancers ?? [], loadBalancers);
  if (existing.taskDefinition === arn && !options.force && !lbChanged) return 'unchanged';
  await deps.aws.ecs.updateService({
    cluster: stack,
    service: svc.name,
    taskDefinition: arn,
    forceNewDeployment: options.force,
    // Service Connect as planned: every container's port, a client in the namespace otherwise.
    serviceConnect: serviceConnectOf(stack, svc),
    ...(lbChanged ? { loadBalancers } : {}),
    ...(lbChanged && svc.healthCheckGracePeriodSeconds
      ? { healthCheckGracePeriodSeconds: svc.healthCheckGracePeriodSeconds }
      : {}),
  });
  return 'updated';
}

/**
 * The target group a rollout (`mlship rollout --target ecs`) registered the service with: kept,
 * so that a deploy neither starts a deployment to remove it nor breaks a rule forwarding to it.
 */
export function rolloutTargets(
  stack: string,
  service: string,
  actual: { targetGroupArn?: string; containerName?: string; containerPort?: number }[],
): ServiceLoadBalancer[] {
  const names = loadBalancerNames(stack);
  return actual.flatMap((l) =>
    l.targetGroupArn &&
    l.containerName &&
    l.containerPort &&
    l.targetGroupArn.includes(`:targetgroup/${names.rolloutTargetGroup(service, l.containerPort, 'stable')}/`)
      ? [{ targetGroupArn: l.targetGroupArn, containerName: l.containerName, containerPort: l.containerPort }]
      : [],
  );
}

/** Every container port of the service under its container's name (Service Connect discovery names). */
export function serviceConnectOf(
  namespace: string,
  svc: EcsPlanResult['translation']['services'][number],
): ServiceConnectSpec {
  return {
    namespace,
    services: svc.containers.flatMap((c) =>
      c.portName && c.port ? [{ portName: c.portName, port: c.port, discoveryName: c.name }] : [],
    ),
  };
}

/** How to reach each service: Service Connect inside the namespace; published ports through the load balancer. */
export function endpointsOf(
  namespace: string,
  svc: EcsPlanResult['translation']['services'][number],
  loadBalancer?: { dnsName: string; listeners: ListenerPlan[] },
): ServiceEndpoints {
  const port = svc.containers.find((c) => c.portName && c.port);
  return {
    service: svc.name,
    ...(port?.port ? { serviceConnect: { namespace, dnsName: port.name, port: port.port } } : {}),
    public: svc.publicPorts.map((p) => {
      const listener = loadBalancer?.listeners.find(
        (l) => l.forward?.service === svc.name && l.forward.listener === p.listener,
      );
      if (!loadBalancer || !listener) {
        return { port: p.listener, note: `public port ${p.listener}: no load balancer (not applied)` };
      }
      const scheme = listener.protocol === 'HTTPS' ? 'https' : 'http';
      const defaultPort = listener.port === (scheme === 'https' ? 443 : 80);
      const url = `${scheme}://${loadBalancer.dnsName}${defaultPort ? '' : `:${listener.port}`}/`;
      return {
        port: listener.port,
        url,
        loadBalancerDns: loadBalancer.dnsName,
        note: `${url} → ${p.container}:${p.containerPort} (${scheme === 'https' ? "point your certificate's domain at it with a CNAME; " : ''}a new load balancer's name takes a few minutes to resolve)`,
      };
    }),
  };
}

/** Task definition images pointed at an overriding registry (ECR images only: those mlship pushes). */
function withRegistry(
  td: RegisterTaskDefinitionCommandInput,
  registry: string,
): RegisterTaskDefinitionCommandInput {
  return {
    ...td,
    containerDefinitions: td.containerDefinitions?.map((c) => {
      const image = parseImageRef(c.image!);
      return isEcr(image) ? { ...c, image: formatImageRef(inRegistry(image, registry)) } : c;
    }),
  };
}

/** The latest registered revision of each family (undefined before the first apply). */
async function registeredTaskDefinitions(
  plan: EcsPlanResult,
  deps: ApplyDeps,
): Promise<Map<string, TaskDefinition | undefined>> {
  const current = new Map<string, TaskDefinition | undefined>();
  for (const td of plan.translation.taskDefinitions)
    current.set(td.family!, await deps.aws.ecs.latestTaskDefinition(td.family!));
  return current;
}

/**
 * Pushes each service's local image to ECR (or the overriding registry). An image already
 * registered under an earlier tag (tags are commits: every commit is a new tag) is not pushed
 * again and keeps that reference, so an unchanged service gets no new revision. Returns the
 * services whose registered reference is reused.
 */
async function pushImages(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
  current: Map<string, TaskDefinition | undefined>,
  result: ApplyResult,
): Promise<Map<string, string>> {
  const { aws, log } = deps;
  const imageFor = new Map<string, string>();
  for (const td of plan.translation.taskDefinitions)
    for (const c of td.containerDefinitions ?? []) imageFor.set(c.name!, c.image!);
  const registeredImage = new Map<string, string>();
  for (const td of current.values())
    for (const c of td?.containerDefinitions ?? []) if (c.image) registeredImage.set(c.name!, c.image);
  const reuse = new Map<string, string>();
  const registry = { auth: undefined as RegistryAuth | undefined };
  const authorization = async () => {
    if (!options.registry) registry.auth ??= await aws.ecr.authorization();
    return registry.auth;
  };
  for (const [service, local] of Object.entries(options.localImages)) {
    const planned = imageFor.get(service);
    if (!planned) continue;
    const remote = parseImageRef(planned);
    if (!isEcr(remote)) continue; // only images mlship builds go to ECR
    const target = options.registry ? inRegistry(remote, options.registry) : remote;
    const before = registeredImage.get(service);
    const reused = before && (await unchangedSinceRegistered(deps, local, target, before));
    if (reused) {
      const ref = parseImageRef(before);
      log(`${service}: unchanged since ${ref.tag}, not pushed again`);
      reuse.set(service, before);
      if (options.movingTag) {
        // The image did not change, but the moving tag may not point at it yet.
        const moving = withTag(ref, options.movingTag);
        await deps.engine.tag(local, imageName(moving), options.movingTag);
        await deps.engine.push(formatImageRef(moving), await authorization());
      }
      result.pushes.push({
        service,
        image: before,
        skipped: true,
        ...(options.movingTag ? { movingTag: options.movingTag } : {}),
      });
      continue;
    }
    if (!options.registry) {
      const repository = remote.repository;
      const repo = await aws.ecr.ensureRepository(repository, options.keepImages ?? 20, options.movingTag);
      result.repositories.push({ name: repository, created: repo.created });
      const digest = await aws.ecr.imageDigest(repository, remote.tag!);
      if (digest) {
        log(
          `${service}: ${repository}:${remote.tag} is already in ECR (${digest.slice(0, 19)}…), not pushed again`,
        );
        result.pushes.push({ service, image: formatImageRef(target), skipped: true, digest });
        continue;
      }
    }
    result.pushes.push(await pushOne(deps, options, service, local, target, await authorization()));
  }
  return reuse;
}

/** Whether `local` is the very image pushed before under `registered` (same repository, another tag). */
async function unchangedSinceRegistered(
  deps: ApplyDeps,
  local: string,
  target: ImageRef,
  registered: string,
): Promise<boolean> {
  const before = parseImageRef(registered);
  if (formatImageRef(before) === formatImageRef(target)) return false;
  if (imageName(before) !== imageName(target)) return false;
  if (!(await deps.engine.imageExists(local))) return false;
  return (await deps.engine.inspectImage(local)).tags.includes(registered);
}

async function pushOne(
  deps: ApplyDeps,
  options: ApplyOptions,
  service: string,
  local: string,
  target: ImageRef,
  auth: RegistryAuth | undefined,
): Promise<ApplyResult['pushes'][number]> {
  if (!(await deps.engine.imageExists(local))) {
    throw new UsageError(`image ${local} of service ${service} is not on this machine`, {
      hint: 'build it first (`mlship compose up` builds every service)',
    });
  }
  const name = imageName(target);
  const tag = target.tag!;
  await deps.engine.tag(local, name, tag);
  // One line per layer and outcome (the engine repeats statuses; consecutive layers share them).
  const logged = new Set<string>();
  const pushed = await deps.engine.push(formatImageRef(target), auth, (p: PushProgress) => {
    const outcome = /Pushed|already exists|Mounted from/.exec(p.status)?.[0];
    if (!p.layer || !outcome || logged.has(`${p.layer} ${outcome}`)) return;
    logged.add(`${p.layer} ${outcome}`);
    deps.log(`${service}: layer ${p.layer} ${p.status.replace(/^Layer /, '').toLowerCase()}`);
  });
  if (options.movingTag) {
    // Same content, a second name: only a manifest is uploaded.
    await deps.engine.tag(local, name, options.movingTag);
    await deps.engine.push(formatImageRef(withTag(target, options.movingTag)), auth);
    deps.log(`${service}: ${target.repository}:${options.movingTag} now points at ${tag}`);
  }
  return {
    service,
    image: formatImageRef(target),
    skipped: false,
    ...(pushed.digest ? { digest: pushed.digest } : {}),
    layersPushed: pushed.layersPushed,
    ...(options.movingTag ? { movingTag: options.movingTag } : {}),
  };
}
