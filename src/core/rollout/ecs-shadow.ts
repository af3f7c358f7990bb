// `mlship rollout start --shadow --target ecs`: the load balancer cannot mirror, so the stack's
// NGINX proxy does, as locally. The candidate runs as `<service>-candidate`, a Service Connect
// server of the stack's namespace (the proxy reaches it by that name, as it reaches the stable
// one), and the proxy moves to a new revision whose image carries the nginx.conf that
// `compose generate` renders for the cloud stack with this rollout (the same `mirror` location,
// short timeouts and recording as locally), baked the way `deploy ecs` bakes it
// (config-images.ts: FROM the running proxy image, the file copied over its mount target).
// Rollback and promotion put the proxy's previous revision back: the mirror is gone.

import type { Service, TaskDefinition } from '@aws-sdk/client-ecs';
import type { Rollout } from '../../config/rollout-schema.js';
import { UsageError } from '../../io/errors.js';
import { generateCompose } from '../compose/generate.js';
import type { CreateServiceSpec, EcsApi } from '../deploy/aws-apis.js';
import type { EcsPlanResult } from '../deploy/plan.js';
import { candidateTaskDefinition, type EcsRolloutLayout, withImage } from './ecs-plan.js';

export type ShadowRecord = NonNullable<Rollout['ecsShadow']>;
type Undo = (() => Promise<unknown>)[];

export interface ShadowDeps {
  ecs: Pick<
    EcsApi,
    | 'describeService'
    | 'latestTaskDefinition'
    | 'registerTaskDefinition'
    | 'deregisterTaskDefinition'
    | 'createService'
    | 'updateService'
    | 'scaleService'
    | 'deleteService'
  >;
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
export async function shadowProxyConf(
  configFile: string,
  plan: EcsPlanResult,
  rollout: Rollout,
): Promise<{ service: string; target: string; content: string }> {
  const bake = plan.bakes.find((b) => b.service === 'proxy');
  const gen = await generateCompose({
    configFile,
    force: true,
    dryRun: true,
    target: 'cloud',
    rollouts: [rollout],
  });
  const conf = gen.stack.files.find((f) => f.path === 'proxy/nginx.conf');
  if (!bake?.mounts[0] || !conf)
    throw new UsageError(`stack ${plan.stack} has no proxy to mirror ${rollout.service}'s requests`, {
      hint: 'add `proxy: {}` to mlship.yaml and deploy it (mlship deploy ecs --apply)',
    });
  return { service: bake.service, target: bake.mounts[0], content: conf.content };
}

/** The candidate's revision (the stable one with the candidate's image), registered. */
export async function registerCandidate(
  deps: Pick<ShadowDeps, 'ecs' | 'candidateImage' | 'log'>,
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

/** Starts a shadow: the candidate as a Service Connect server, then the proxy with the mirror. */
export async function startShadow(
  deps: ShadowDeps,
  stack: { plan: EcsPlanResult; configFile: string },
  L: EcsRolloutLayout,
  stable: Service,
  rollout: Rollout,
  undo: Undo,
): Promise<ShadowRecord> {
  const candidate = await registerCandidate(deps, L, stable, rollout, undo);
  await candidateServer(deps, L, stable, candidate, undo);
  const proxy = await mirroringProxy(deps, stack, L.cluster, rollout, undo);
  return {
    cluster: L.cluster,
    stableService: L.service,
    candidateService: L.candidateService,
    stableTaskDefinition: stable.taskDefinition!,
    candidateTaskDefinition: candidate.arn,
    ...proxy,
  };
}

/** The candidate service's place: the stable one's desired count, network and grace period. */
export function candidateServiceSpec(
  L: Pick<EcsRolloutLayout, 'cluster' | 'candidateService'>,
  stable: Service,
  taskDefinition: string,
): CreateServiceSpec {
  const network = stable.networkConfiguration?.awsvpcConfiguration;
  return {
    cluster: L.cluster,
    serviceName: L.candidateService,
    taskDefinition,
    launchType: 'FARGATE',
    desiredCount: Math.max(1, stable.desiredCount ?? 1),
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
  deps: ShadowDeps,
  L: EcsRolloutLayout,
  stable: Service,
  candidate: { arn: string; running: TaskDefinition },
  undo: Undo,
): Promise<void> {
  const mapping = candidate.running.containerDefinitions
    ?.find((c) => c.name === L.container)
    ?.portMappings?.find((p) => p.containerPort === L.port);
  if (!mapping?.name)
    throw new UsageError(`the port ${L.port} of ${L.service} has no Service Connect name in its revision`);
  await deps.ecs.createService({
    ...candidateServiceSpec(L, stable, candidate.arn),
    serviceConnect: {
      namespace: L.cluster,
      services: [{ portName: mapping.name, port: L.port, discoveryName: L.candidateService }],
    },
  });
  undo.push(() => deps.ecs.deleteService(L.cluster, L.candidateService));
  deps.log(
    `created service ${L.candidateService} (Service Connect ${L.candidateService}:${L.port}); waiting until it is stable`,
  );
  await deps.waitStable(L.candidateService, candidate.arn);
}

/** The proxy's next revision: its running one with the mirror's nginx.conf baked into the image. */
async function mirroringProxy(
  deps: ShadowDeps,
  stack: { plan: EcsPlanResult; configFile: string },
  cluster: string,
  rollout: Rollout,
  undo: Undo,
): Promise<
  Pick<
    ShadowRecord,
    'proxyService' | 'proxyTaskDefinition' | 'shadowProxyTaskDefinition' | 'shadowProxyImage'
  >
> {
  const conf = await shadowProxyConf(stack.configFile, stack.plan, rollout);
  const proxy = await deps.ecs.describeService(cluster, conf.service);
  const running = proxy?.taskDefinition && (await deps.ecs.latestTaskDefinition(proxy.taskDefinition));
  const base = running
    ? running.containerDefinitions?.find((c) => c.name === conf.service)?.image
    : undefined;
  if (!proxy || !running || !base)
    throw new UsageError(`the proxy of stack ${cluster} is not deployed`, {
      hint: 'mlship deploy ecs --apply',
    });
  if (!deps.bakeProxyImage)
    throw new UsageError('a shadow on ECS builds the proxy image with the mirror: it needs a Docker engine');
  const image = await deps.bakeProxyImage(base, { [conf.target]: conf.content });
  const revision = await deps.ecs.registerTaskDefinition(withImage(running, conf.service, image));
  undo.push(() => deps.ecs.deregisterTaskDefinition(revision.arn));
  await deps.ecs.updateService({
    cluster,
    service: conf.service,
    taskDefinition: revision.arn,
    forceNewDeployment: false,
  });
  undo.push(() => restoreProxy(deps, cluster, conf.service, proxy.taskDefinition!));
  deps.log(
    `${conf.service}: ${revision.arn.split('/').pop()} mirrors /api/${rollout.service}/ to ${rollout.service}-candidate; waiting until it is stable`,
  );
  await deps.waitStable(conf.service, revision.arn);
  return {
    proxyService: conf.service,
    proxyTaskDefinition: proxy.taskDefinition!,
    shadowProxyTaskDefinition: revision.arn,
    shadowProxyImage: image,
  };
}

/** The proxy back on its revision from before the rollout (no mirror), waited for. */
async function restoreProxy(
  deps: Pick<ShadowDeps, 'ecs' | 'waitStable' | 'log'>,
  cluster: string,
  service: string,
  taskDefinition: string,
): Promise<void> {
  await deps.ecs.updateService({ cluster, service, taskDefinition, forceNewDeployment: false });
  deps.log(`${service}: back to ${taskDefinition.split('/').pop()} (no mirror); waiting until it is stable`);
  await deps.waitStable(service, taskDefinition);
}

/** Ends a shadow: the proxy without the mirror, the candidate at 0 tasks (or removed), revisions deregistered. */
export async function stopShadow(
  deps: ShadowDeps,
  s: ShadowRecord,
  options: { destroy?: boolean },
): Promise<void> {
  await restoreProxy(deps, s.cluster, s.proxyService, s.proxyTaskDefinition);
  await deps.ecs.deregisterTaskDefinition(s.shadowProxyTaskDefinition).catch(() => undefined);
  await deps.ecs.scaleService(s.cluster, s.candidateService, 0);
  await deps.ecs.deregisterTaskDefinition(s.candidateTaskDefinition).catch(() => undefined);
  if (options.destroy) {
    await deps.ecs.deleteService(s.cluster, s.candidateService);
    deps.log(`removed ${s.candidateService}`);
  }
}

/**
 * Promotes a shadow: the stable service updated to the candidate's revision (its one rolling
 * deployment; the proxy keeps sending every request to it), then the proxy without the mirror,
 * then the candidate service removed.
 */
export async function promoteShadow(deps: ShadowDeps, s: ShadowRecord): Promise<void> {
  await deps.ecs.updateService({
    cluster: s.cluster,
    service: s.stableService,
    taskDefinition: s.candidateTaskDefinition,
    forceNewDeployment: false,
  });
  deps.log(
    `${s.stableService}: updated to ${s.candidateTaskDefinition.split('/').pop()}; waiting until it is stable`,
  );
  await deps.waitStable(s.stableService, s.candidateTaskDefinition);
  await restoreProxy(deps, s.cluster, s.proxyService, s.proxyTaskDefinition);
  await deps.ecs.deregisterTaskDefinition(s.shadowProxyTaskDefinition).catch(() => undefined);
  await deps.ecs.deleteService(s.cluster, s.candidateService);
  deps.log(`removed ${s.candidateService}`);
}
