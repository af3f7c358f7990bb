// A rollout on ECS that the stack's NGINX proxy routes, as locally: a shadow or a --mirror (the
// load balancer cannot mirror), a sticky split (it cannot keep a header or cookie of yours on
// one version), or any rollout behind a proxy that checks API keys (a load balancer rule to the
// candidate would pass by them). The candidate runs as `<service>-candidate`, a Service Connect
// server of the stack's namespace (the proxy reaches it by that name, as it reaches the stable
// one), and the proxy moves to a new revision whose image carries the nginx.conf that
// `compose generate` renders for the cloud stack with this rollout (the same split, sticky key,
// `mirror` location, short timeouts, recording and API-key check as locally), baked the way
// `deploy ecs` bakes it (config-images.ts: FROM the proxy's image from before the rollout, the
// file copied over its mount target). A step of the share is the next such revision (a rolling
// deployment of the proxy: the load balancer drains the old tasks, no request is dropped).
// Rollback and promotion put the proxy's revision from before the rollout back.

import type { Service, TaskDefinition } from '@aws-sdk/client-ecs';
import type { Rollout } from '../../config/rollout-schema.js';
import { UsageError } from '../../io/errors.js';
import { generateCompose } from '../compose/generate.js';
import type { CloudWatchApi, CreateServiceSpec, EcsApi } from '../deploy/aws-apis.js';
import type { EcsPlanResult } from '../deploy/plan.js';
import {
  candidateMetricAlarms,
  candidateTaskDefinition,
  type EcsRolloutLayout,
  promotedTaskDefinition,
  withImage,
} from './ecs-plan.js';
import { candidateSize, candidateTasks } from './ecs-size.js';

export type ProxyRouteRecord = NonNullable<Rollout['ecsProxy']>;
type Undo = (() => Promise<unknown>)[];

export interface ProxyRouteDeps {
  ecs: Pick<
    EcsApi,
    | 'describeService'
    | 'describeServices'
    | 'latestTaskDefinition'
    | 'registerTaskDefinition'
    | 'deregisterTaskDefinition'
    | 'createService'
    | 'updateService'
    | 'scaleService'
    | 'deleteService'
  >;
  cloudwatch: Pick<CloudWatchApi, 'putAlarm' | 'deleteAlarms'>;
  waitStable(service: string, taskDefinition: string): Promise<void>;
  candidateImage?(rollout: Rollout, stableImage: string): Promise<string>;
  /**
   * The proxy's image with `files` (path in the image → content) copied over `base`, built and
   * pushed where ECS pulls it (beside `base`); the reference. Deploy's bake, for one file.
   */
  bakeProxyImage?(base: string, files: Record<string, string>): Promise<string>;
  log(line: string): void;
}

/** The proxy's nginx.conf of the cloud stack with this rollout: what `deploy ecs` would bake. */
async function routeProxyConf(configFile: string, rollout: Rollout): Promise<string | undefined> {
  const gen = await generateCompose({
    configFile,
    force: true,
    dryRun: true,
    target: 'cloud',
    rollouts: [rollout],
  });
  return gen.stack.files.find((f) => f.path === 'proxy/nginx.conf')?.content;
}

/** The candidate's revision (the stable one with the candidate's image), registered. */
export async function registerCandidate(
  deps: Pick<ProxyRouteDeps, 'ecs' | 'candidateImage' | 'log'>,
  L: Pick<EcsRolloutLayout, 'container'>,
  stable: Service,
  rollout: Rollout,
  undo: Undo,
): Promise<{ arn: string; running: TaskDefinition }> {
  const running = await deps.ecs.latestTaskDefinition(stable.taskDefinition!);
  const stableImage = running?.containerDefinitions?.find((c) => c.name === L.container)?.image;
  if (!running || !stableImage) throw new UsageError(`cannot read ${stable.taskDefinition}`);
  const image = rollout.candidate.image ?? (await deps.candidateImage?.(rollout, stableImage));
  if (!image)
    throw new UsageError('on ECS the candidate needs --image, or --path with an engine to build it');
  const revision = await deps.ecs.registerTaskDefinition(
    candidateTaskDefinition(running, L.container, image, rollout.candidate.env),
  );
  undo.push(() => deps.ecs.deregisterTaskDefinition(revision.arn));
  deps.log(`registered ${revision.arn.split('/').pop()} (the candidate: ${image})`);
  return { arn: revision.arn, running };
}

/** Starts the rollout: the candidate as a Service Connect server, then the proxy routing to it. */
export async function startProxyRoute(
  deps: ProxyRouteDeps,
  stack: RouteStack,
  L: EcsRolloutLayout,
  stable: Service,
  rollout: Rollout,
  undo: Undo,
): Promise<ProxyRouteRecord> {
  const candidate = await registerCandidate(deps, L, stable, rollout, undo);
  const alarms = await candidateAlarms(deps, L, candidate.running, undo);
  await candidateServer(deps, L, stable, candidate, rollout, alarms, undo);
  const proxy = await deployedProxy(deps, stack, L.cluster, rollout);
  const route = await routingProxy(deps, stack, proxy, proxy.taskDefinition, rollout, undo);
  return {
    cluster: L.cluster,
    stableService: L.service,
    candidateService: L.candidateService,
    stableTaskDefinition: stable.taskDefinition!,
    candidateTaskDefinition: candidate.arn,
    proxyService: proxy.service,
    proxyTaskDefinition: proxy.taskDefinition,
    ...route,
    alarms,
  };
}

/**
 * The candidate's rollback alarms on its own metrics (ecs-plan.ts: candidateMetricAlarms): with
 * no target group of its own, the load balancer has none for it. None, said, without them.
 */
async function candidateAlarms(
  deps: Pick<ProxyRouteDeps, 'cloudwatch' | 'log'>,
  L: EcsRolloutLayout,
  running: TaskDefinition,
  undo: Undo,
): Promise<string[]> {
  const specs = candidateMetricAlarms(L, running, L.cluster);
  if (!specs.length) {
    deps.log(
      `${L.candidateService}: no rollback alarms (its revision has no MLSHIP_METRICS_NAMESPACE: monitoring is off); \`mlship rollout watch\` rolls it back`,
    );
    return [];
  }
  for (const a of specs) await deps.cloudwatch.putAlarm(a);
  const names = specs.map((a) => a.name);
  undo.push(() => deps.cloudwatch.deleteAlarms(names));
  deps.log(`${L.candidateService}: rolls back on ${names.join(', ')}`);
  return names;
}

/** What this module needs of the stack: its plan (where the proxy's file goes) and mlship.yaml. */
export interface RouteStack {
  plan: EcsPlanResult;
  configFile: string;
}

/**
 * The candidate service's place: the tasks its share needs (ecs-size.ts), the stable one's
 * network and grace period.
 */
export function candidateServiceSpec(
  L: Pick<EcsRolloutLayout, 'cluster' | 'candidateService'>,
  stable: Service,
  taskDefinition: string,
  rollout: Pick<Rollout, 'mode' | 'weight' | 'mirror'>,
): CreateServiceSpec {
  const network = stable.networkConfiguration?.awsvpcConfiguration;
  return {
    cluster: L.cluster,
    serviceName: L.candidateService,
    taskDefinition,
    launchType: 'FARGATE',
    desiredCount: candidateTasks(stable.desiredCount ?? 1, rollout),
    subnets: network?.subnets ?? [],
    securityGroups: network?.securityGroups ?? [],
    assignPublicIp: network?.assignPublicIp === 'ENABLED',
    ...(stable.healthCheckGracePeriodSeconds
      ? { healthCheckGracePeriodSeconds: stable.healthCheckGracePeriodSeconds }
      : {}),
  };
}

/**
 * `<service>-candidate` serving the stable service's port under its own discovery name, so the
 * proxy's `server <service>-candidate:<port>` resolves; started (and stable) before the proxy
 * names it, because NGINX resolves its upstreams when it starts.
 */
async function candidateServer(
  deps: ProxyRouteDeps,
  L: EcsRolloutLayout,
  stable: Service,
  candidate: { arn: string; running: TaskDefinition },
  rollout: Rollout,
  alarms: string[],
  undo: Undo,
): Promise<void> {
  const mapping = candidate.running.containerDefinitions
    ?.find((c) => c.name === L.container)
    ?.portMappings?.find((p) => p.containerPort === L.port);
  if (!mapping?.name)
    throw new UsageError(`the port ${L.port} of ${L.service} has no Service Connect name in its revision`);
  await deps.ecs.createService({
    ...candidateServiceSpec(L, stable, candidate.arn, rollout),
    serviceConnect: {
      namespace: L.cluster,
      services: [{ portName: mapping.name, port: L.port, discoveryName: L.candidateService }],
    },
    ...(alarms.length ? { deploymentAlarms: alarms } : {}),
  });
  undo.push(() => deps.ecs.deleteService(L.cluster, L.candidateService));
  deps.log(
    `created service ${L.candidateService} (Service Connect ${L.candidateService}:${L.port}), ${candidateSize(L.service, stable.desiredCount ?? 1, candidate.running, rollout)}; waiting until it is stable`,
  );
  await deps.waitStable(L.candidateService, candidate.arn);
}

/** The proxy as deployed before the rollout: its service, revision, image and config file's path in it. */
interface DeployedProxy {
  service: string;
  taskDefinition: string;
  running: TaskDefinition;
  image: string;
  confTarget: string;
}

async function deployedProxy(
  deps: Pick<ProxyRouteDeps, 'ecs'>,
  stack: RouteStack,
  cluster: string,
  rollout: Rollout,
  taskDefinition?: string,
): Promise<DeployedProxy> {
  const bake = stack.plan.bakes.find((b) => b.service === 'proxy');
  if (!bake?.mounts[0])
    throw new UsageError(`stack ${stack.plan.stack} has no proxy to route ${rollout.service}'s requests`, {
      hint: 'add `proxy: {}` to mlship.yaml and deploy it (mlship deploy ecs --apply)',
    });
  const td = taskDefinition ?? (await deps.ecs.describeService(cluster, bake.service))?.taskDefinition;
  const running = td ? await deps.ecs.latestTaskDefinition(td) : undefined;
  const image = running?.containerDefinitions?.find((c) => c.name === bake.service)?.image;
  if (!td || !running || !image)
    throw new UsageError(`the proxy of stack ${cluster} is not deployed`, {
      hint: 'mlship deploy ecs --apply',
    });
  return { service: bake.service, taskDefinition: td, running, image, confTarget: bake.mounts[0] };
}

/** What the proxy does with the service's requests during `rollout` (its log line). */
export function routeSummary(rollout: Rollout): string {
  const to = `${rollout.service}-candidate`;
  if (rollout.mode === 'shadow') return `mirrors /api/${rollout.service}/ to ${to}`;
  const sticky = rollout.sticky
    ? `, sticky on the ${'header' in rollout.sticky ? `header ${rollout.sticky.header}` : `cookie ${rollout.sticky.cookie}`}`
    : '';
  return `sends ${rollout.weight} % of /api/${rollout.service}/ to ${to}${sticky}${rollout.mirror ? ', the rest mirrored to it' : ''}`;
}

/**
 * The proxy's next revision: its revision from before the rollout with this rollout's nginx.conf
 * baked into its image, deployed and waited for (undone if it does not become stable: back on
 * `current`, the revision it runs now).
 */
async function routingProxy(
  deps: ProxyRouteDeps,
  stack: RouteStack,
  proxy: DeployedProxy,
  current: string,
  rollout: Rollout,
  undo: Undo,
): Promise<Pick<ProxyRouteRecord, 'routeProxyTaskDefinition' | 'routeProxyImage'>> {
  const conf = await routeProxyConf(stack.configFile, rollout);
  if (!conf)
    throw new UsageError(`stack ${stack.plan.stack} has no proxy to route ${rollout.service}'s requests`, {
      hint: 'add `proxy: {}` to mlship.yaml and deploy it (mlship deploy ecs --apply)',
    });
  if (!deps.bakeProxyImage)
    throw new UsageError(
      "this rollout on ECS is routed by the stack's proxy, whose image gets the rollout's nginx.conf: it needs a Docker engine",
    );
  const image = await deps.bakeProxyImage(proxy.image, { [proxy.confTarget]: conf });
  const revision = await deps.ecs.registerTaskDefinition(withImage(proxy.running, proxy.service, image));
  undo.push(() => deps.ecs.deregisterTaskDefinition(revision.arn));
  await deps.ecs.updateService({
    cluster: stack.plan.stack,
    service: proxy.service,
    taskDefinition: revision.arn,
    forceNewDeployment: false,
  });
  undo.push(() => restoreProxy(deps, stack.plan.stack, proxy.service, current));
  deps.log(
    `${proxy.service}: ${revision.arn.split('/').pop()} ${routeSummary(rollout)}; waiting until it is stable`,
  );
  await deps.waitStable(proxy.service, revision.arn);
  return { routeProxyTaskDefinition: revision.arn, routeProxyImage: image };
}

/**
 * A step of the share (`promote --to N`, `watch`): the proxy's next revision with the rollout at
 * its new weight, baked over the image from before the rollout; the previous routing revision
 * deregistered once the new one is stable (the proxy put back on it if the new one is not).
 */
export async function stepProxyRoute(
  deps: ProxyRouteDeps,
  stack: RouteStack,
  s: ProxyRouteRecord,
  rollout: Rollout,
): Promise<ProxyRouteRecord> {
  const proxy = await deployedProxy(deps, stack, s.cluster, rollout, s.proxyTaskDefinition);
  const undo: Undo = [];
  try {
    const route = await routingProxy(deps, stack, proxy, s.routeProxyTaskDefinition, rollout, undo);
    await deps.ecs.deregisterTaskDefinition(s.routeProxyTaskDefinition).catch(() => undefined);
    return { ...s, ...route };
  } catch (e) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw e;
  }
}

/** The proxy back on a revision it ran (before the rollout, or before a failed step), waited for. */
async function restoreProxy(
  deps: Pick<ProxyRouteDeps, 'ecs' | 'waitStable' | 'log'>,
  cluster: string,
  service: string,
  taskDefinition: string,
): Promise<void> {
  await deps.ecs.updateService({ cluster, service, taskDefinition, forceNewDeployment: false });
  deps.log(`${service}: back to ${taskDefinition.split('/').pop()}; waiting until it is stable`);
  await deps.waitStable(service, taskDefinition);
}

/** Ends the rollout: the proxy as before it, the candidate at 0 tasks (or removed), revisions deregistered. */
export async function stopProxyRoute(
  deps: ProxyRouteDeps,
  s: ProxyRouteRecord,
  options: { destroy?: boolean },
): Promise<void> {
  await restoreProxy(deps, s.cluster, s.proxyService, s.proxyTaskDefinition);
  await deps.ecs.deregisterTaskDefinition(s.routeProxyTaskDefinition).catch(() => undefined);
  await deps.ecs.scaleService(s.cluster, s.candidateService, 0);
  await deps.ecs.deregisterTaskDefinition(s.candidateTaskDefinition).catch(() => undefined);
  if (options.destroy) {
    await deps.ecs.deleteService(s.cluster, s.candidateService);
    if (s.alarms?.length) await deps.cloudwatch.deleteAlarms(s.alarms);
    deps.log(`removed ${s.candidateService}${s.alarms?.length ? ' and its alarms' : ''}`);
  }
}

/**
 * The stable service on the candidate's version: its revision registered as a stable one
 * (ecs-plan.ts: promotedTaskDefinition), the service updated to it (its one rolling deployment)
 * and waited for, the candidate's revision deregistered. The new revision's ARN.
 */
export async function promoteStable(
  deps: Pick<ProxyRouteDeps, 'ecs' | 'waitStable' | 'log'>,
  cluster: string,
  service: string,
  container: string,
  candidateTaskDefinition: string,
): Promise<string> {
  const candidate = await deps.ecs.latestTaskDefinition(candidateTaskDefinition);
  if (!candidate)
    throw new UsageError(`cannot read the candidate's task definition ${candidateTaskDefinition}`);
  const promoted = await deps.ecs.registerTaskDefinition(promotedTaskDefinition(candidate, container));
  const name = promoted.arn.split('/').pop();
  deps.log(`registered ${name} (the candidate's version, as the stable one)`);
  try {
    await deps.ecs.updateService({
      cluster,
      service,
      taskDefinition: promoted.arn,
      forceNewDeployment: false,
    });
    deps.log(`${service}: updated to ${name}; waiting until it is stable`);
    await deps.waitStable(service, promoted.arn);
  } catch (e) {
    // Rolled back by ECS (or never started): the next `promote` registers its own.
    await deps.ecs.deregisterTaskDefinition(promoted.arn).catch(() => undefined);
    throw e;
  }
  await deps.ecs.deregisterTaskDefinition(candidateTaskDefinition).catch(() => undefined);
  return promoted.arn;
}

/**
 * Promotes the candidate: the stable service on the candidate's version (its one rolling
 * deployment; the proxy keeps sending requests to it, and the candidate's share to the
 * candidate), then the proxy as before the rollout, then the candidate service removed. The
 * stable service's new revision.
 */
export async function promoteProxyRoute(
  deps: ProxyRouteDeps,
  s: ProxyRouteRecord,
  container: string,
): Promise<string> {
  const promoted = await promoteStable(
    deps,
    s.cluster,
    s.stableService,
    container,
    s.candidateTaskDefinition,
  );
  await restoreProxy(deps, s.cluster, s.proxyService, s.proxyTaskDefinition);
  await deps.ecs.deregisterTaskDefinition(s.routeProxyTaskDefinition).catch(() => undefined);
  await deps.ecs.deleteService(s.cluster, s.candidateService);
  if (s.alarms?.length) await deps.cloudwatch.deleteAlarms(s.alarms);
  deps.log(`removed ${s.candidateService}${s.alarms?.length ? ' and its alarms' : ''}`);
  return promoted;
}
