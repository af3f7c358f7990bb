// The decisions of a rollout on ECS, pure so they are unit-tested without AWS: what the
// candidate's task definition is (the stable revision with the candidate's image and
// environment), the names and priorities of the target groups, listener rules and alarms,
// the weights of each step, the alarms both services roll back on, and how the load
// balancer's per-target-group metrics become the comparison and its verdict.

import type {
  ContainerDefinition,
  RegisterTaskDefinitionCommandInput,
  TaskDefinition,
} from '@aws-sdk/client-ecs';
import type { Rollout } from '../../config/rollout-schema.js';
import { UsageError } from '../../io/errors.js';
import type { AlarmSpec, MetricSeriesQuery, TargetWeight } from '../deploy/aws-apis.js';
import { arnDimension } from '../deploy/cloudwatch-dashboard.js';
import { loadBalancerNames } from '../deploy/load-balancer-plan.js';
import { operateNames, STACK_TAG } from '../deploy/operate-plan.js';
import type { EcsPlanResult } from '../deploy/plan.js';
import { type AggregateSide, type Comparison, compareAggregates, type Gates } from './verdict.js';

export const CANDIDATE_SUFFIX = '-candidate';
/** Rules of rollouts sit below this priority range's start; one pair per model service. */
const RULE_PRIORITY_BASE = 100;

export interface EcsRolloutLayout {
  cluster: string;
  service: string;
  candidateService: string;
  container: string;
  port: number;
  /** The listener the rules go on, and what they match. */
  listenerPort: number;
  paths: string[];
  rewrite?: { regex: string; replace: string };
  priority: number;
  targetGroups: { stable: string; candidate: string };
  sloP99Ms?: number;
  alarmPrefix: string;
  /** The service's requests pass through the stack's NGINX proxy (not a listener of its own). */
  behindProxy: boolean;
  /** That proxy checks API keys (a load balancer rule to the service would pass by them). */
  apiKeys: boolean;
  /** That proxy limits each client's request rate (a rule would pass by that too). */
  rateLimit: boolean;
}

/**
 * Where a service's rollout lives on the stack's load balancer: behind the proxy's listener, a
 * rule for /api/<service>/* that strips the prefix as the proxy does; for a service that
 * publishes its own port, a rule for every path of its listener. Refuses what it cannot route.
 */
export function ecsRolloutLayout(plan: EcsPlanResult, service: string): EcsRolloutLayout {
  const model = plan.operate?.models.find((m) => m.container === service);
  const svc = plan.translation.services.find((s) => s.name === model?.service);
  if (!svc || !model)
    throw new UsageError(`stack ${plan.stack} has no model service ${service} to roll out`, {
      hint: `model services: ${plan.operate?.models.map((m) => m.container).join(', ') || 'none'}`,
    });
  // GPU models share one ECS service (their instances); a candidate of one is not built.
  if (model.gpu || svc.name !== service || svc.launchType !== 'FARGATE')
    throw new UsageError(
      `${service} runs on GPU instances: a rollout on ECS is built for Fargate services only`,
      {
        hint: 'roll it out on the local stack (mlship rollout ... without --target ecs)',
      },
    );
  const container = svc.containers.find((c) => c.name === service && c.port);
  if (!container?.port) throw new UsageError(`${service} has no port for a target group`);
  const own = plan.loadBalancer?.listeners.find((l) => l.forward?.service === service);
  const proxy = plan.loadBalancer?.listeners.find((l) => l.forward && l.forward.service !== service);
  const listener = own ?? proxy;
  if (!listener)
    throw new UsageError(`stack ${plan.stack} has no load balancer to split ${service}'s traffic on`, {
      hint: 'add `proxy: {}` to mlship.yaml and deploy it (mlship deploy ecs --apply)',
    });
  const names = loadBalancerNames(plan.stack);
  const index = plan.translation.services.findIndex((s) => s.name === service);
  return {
    cluster: plan.stack,
    service,
    candidateService: `${service}${CANDIDATE_SUFFIX}`,
    container: service,
    port: container.port,
    listenerPort: listener.port,
    paths: own ? ['/*'] : [`/api/${service}/*`],
    ...(own ? {} : { rewrite: { regex: `^/api/${service}/(.*)$`, replace: '/$1' } }),
    priority: RULE_PRIORITY_BASE + 2 * index,
    targetGroups: {
      stable: names.rolloutTargetGroup(service, container.port, 'stable'),
      candidate: names.rolloutTargetGroup(service, container.port, 'candidate'),
    },
    ...(model.sloP99Ms ? { sloP99Ms: model.sloP99Ms } : {}),
    alarmPrefix: `${operateNames(plan.stack).alarmPrefix}rollout-${service}-`,
    behindProxy: !own,
    apiKeys: !own && Boolean(plan.operate?.apiKeys),
    rateLimit: !own && Boolean(plan.operate?.proxyRateLimit),
  };
}

/** What `rollout start` accepts on ECS. */
export function refuseOnEcs(rollout: Rollout): void {
  if (rollout.shadowCpus !== undefined)
    throw new UsageError('--shadow-cpus is for the local stack', {
      hint: "on ECS the shadow is its own service on its own CPUs (its revision's cpu): it takes none of the primary's",
    });
}

/**
 * Why the stack's NGINX proxy must route this rollout rather than a weighted rule of the load
 * balancer (which splits by weight per request and knows nothing else); none: the rule does.
 * A service on a listener of its own has no proxy in front: what needs one is refused.
 */
export function proxyRouteReasons(
  rollout: Rollout,
  L: Pick<EcsRolloutLayout, 'service' | 'behindProxy' | 'apiKeys' | 'rateLimit'>,
): string[] {
  const sticky = rollout.sticky && ('header' in rollout.sticky ? 'header' : 'cookie');
  const reasons = [
    ...(rollout.mode === 'shadow' ? ['a shadow: the load balancer cannot mirror'] : []),
    ...(rollout.mirror ? ['--mirror: the load balancer cannot mirror'] : []),
    ...(sticky
      ? [`--sticky-${sticky}: the load balancer cannot keep a ${sticky} of yours on one version`]
      : []),
    ...(L.apiKeys ? ['the proxy checks API keys, which a load balancer rule would pass by'] : []),
    ...(L.rateLimit
      ? ["the proxy limits each client's request rate, which a load balancer rule would pass by"]
      : []),
  ];
  if (reasons.length && !L.behindProxy)
    throw new UsageError(
      `${L.service} has a listener of its own, not behind the stack's proxy, which this rollout needs (${reasons.join('; ')})`,
      {
        hint: 'a canary or A/B by weight only (without --shadow, --mirror, --sticky-*), or roll it out on the local stack',
      },
    );
  return reasons;
}

const REGISTER_FIELDS = [
  'family',
  'taskRoleArn',
  'executionRoleArn',
  'networkMode',
  'containerDefinitions',
  'volumes',
  'placementConstraints',
  'requiresCompatibilities',
  'cpu',
  'memory',
  'pidMode',
  'ipcMode',
  'proxyConfiguration',
  'inferenceAccelerators',
  'ephemeralStorage',
  'runtimePlatform',
] as const;

/**
 * The candidate's revision: the stable service's running revision (same family, roles, sizes,
 * secrets, health check) with the candidate's image on the model container, its --env
 * overrides, and MLSHIP_MODEL_VERSION=candidate (its metrics and logs say which version); its
 * tasks log under the stream prefix `<prefix>-candidate`, so a shadow's status reads each
 * version's lines apart (ecs-logs.ts).
 */
export function candidateTaskDefinition(
  stable: TaskDefinition,
  container: string,
  image: string,
  env: Record<string, string>,
): RegisterTaskDefinitionCommandInput {
  const wanted = { ...env, MLSHIP_MODEL_VERSION: 'candidate' };
  return revise(
    stable,
    container,
    (c) => {
      const kept = (c.environment ?? []).filter((e) => !(e.name! in wanted));
      const environment = [...kept, ...Object.entries(wanted).map(([name, value]) => ({ name, value }))].sort(
        (a, b) => a.name!.localeCompare(b.name!),
      );
      return { ...c, image, environment };
    },
    candidateLogs,
  );
}

/**
 * The revision a promotion puts on the stable service: the candidate's (its image, --env, sizes)
 * as a stable version again: without MLSHIP_MODEL_VERSION (its metrics and logs no longer say
 * "candidate", its embedded metrics no longer feed the candidate's alarms) and logging under the
 * stable prefix. Registering it costs nothing; the stable service's one deployment runs it.
 */
export function promotedTaskDefinition(
  candidate: TaskDefinition,
  container: string,
): RegisterTaskDefinitionCommandInput {
  return revise(
    candidate,
    container,
    (c) => ({ ...c, environment: (c.environment ?? []).filter((e) => e.name !== 'MLSHIP_MODEL_VERSION') }),
    // Every container the candidate's revision moved to `-candidate` goes back.
    (c) =>
      c.logConfiguration?.options?.['awslogs-stream-prefix']?.endsWith(CANDIDATE_SUFFIX)
        ? candidateLogs(c)
        : c,
  );
}

/**
 * The awslogs stream prefix of the candidate's tasks: the stable one's with `-candidate`, or
 * without it when the stable service still runs a candidate's revision promoted before mlship
 * registered a stable one on promotion, so the two always differ and never grow.
 */
function candidateLogs(c: ContainerDefinition): ContainerDefinition {
  const log = c.logConfiguration;
  const prefix = log?.options?.['awslogs-stream-prefix'];
  if (log?.logDriver !== 'awslogs' || !prefix) return c;
  const other = prefix.endsWith(CANDIDATE_SUFFIX)
    ? prefix.slice(0, -CANDIDATE_SUFFIX.length)
    : `${prefix}${CANDIDATE_SUFFIX}`;
  return { ...c, logConfiguration: { ...log, options: { ...log.options, 'awslogs-stream-prefix': other } } };
}

/** What RegisterTaskDefinition takes of a described revision (to register its next one). */
function registerInput(td: TaskDefinition): RegisterTaskDefinitionCommandInput {
  const input: Record<string, unknown> = {};
  for (const k of REGISTER_FIELDS) if (td[k] !== undefined) input[k] = td[k];
  return input as unknown as RegisterTaskDefinitionCommandInput;
}

/**
 * The next revision of `td`: `change` applied to its container `container` (which it must have),
 * then `each` to every container. What RegisterTaskDefinition takes.
 */
function revise(
  td: TaskDefinition,
  container: string,
  change: (c: ContainerDefinition) => ContainerDefinition,
  each: (c: ContainerDefinition) => ContainerDefinition = (c) => c,
): RegisterTaskDefinitionCommandInput {
  if (!td.containerDefinitions?.some((c) => c.name === container))
    throw new UsageError(`${td.taskDefinitionArn ?? td.family} has no container ${container}`);
  return {
    ...registerInput(td),
    containerDefinitions: td.containerDefinitions.map((c) => each(c.name === container ? change(c) : c)),
  };
}

/** The next revision of `td` with `image` on `container`, nothing else changed (the proxy's with the mirror). */
export function withImage(
  td: TaskDefinition,
  container: string,
  image: string,
): RegisterTaskDefinitionCommandInput {
  return revise(td, container, (c) => ({ ...c, image }));
}

/** The rule's weights at `candidatePercent` (the load balancer takes 0-999 per group). */
export function weightsAt(
  candidatePercent: number,
  arns: { stable: string; candidate: string },
): TargetWeight[] {
  return [
    { targetGroupArn: arns.stable, weight: 100 - candidatePercent },
    { targetGroupArn: arns.candidate, weight: candidatePercent },
  ];
}

const alb = (name: string, dims: Record<string, string>, statistic: string) => ({
  namespace: 'AWS/ApplicationELB',
  name,
  dimensions: dims,
  statistic,
});

/** One metric of an alarm: where it is and which statistic. */
type AlarmMetric = NonNullable<AlarmSpec['metric']>;

/**
 * A rollout side's alarms from its metrics: more than 5 % of its requests 5xx for 3 of 5 minutes
 * (as the stack's own alarms), and with slo_p99_ms its p99 over it. Wired into the service's
 * deploymentConfiguration.alarms, so ECS rolls a deployment back on them.
 */
function rollbackAlarms(
  layout: EcsRolloutLayout,
  prefix: string,
  who: string,
  stack: string,
  metrics: { errors: AlarmMetric; requests: AlarmMetric; p99: AlarmMetric; latencyUnitMs: number },
): AlarmSpec[] {
  const base = {
    actions: [],
    tags: { [STACK_TAG]: stack },
    treatMissingData: 'notBreaching' as const,
    periodSeconds: 60,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    comparison: 'GreaterThanThreshold' as const,
  };
  const alarms: AlarmSpec[] = [
    {
      ...base,
      name: `${layout.alarmPrefix}${prefix}-5xx`,
      description: `mlship ${stack}: more than 5% of ${who}'s requests answered 5xx (rolls its deployment back)`,
      threshold: 5,
      math: {
        expression: 'IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)',
        label: '5xx (% of requests)',
        metrics: { errors: metrics.errors, requests: metrics.requests },
      },
    },
  ];
  if (layout.sloP99Ms)
    alarms.push({
      ...base,
      name: `${layout.alarmPrefix}${prefix}-p99-above-slo`,
      description: `mlship ${stack}: ${who}'s p99 latency above slo_p99_ms ${layout.sloP99Ms} ms (rolls its deployment back)`,
      threshold: layout.sloP99Ms / metrics.latencyUnitMs,
      metric: metrics.p99,
    });
  return alarms;
}

/** The alarms of one side on its target group's load balancer metrics. */
export function sideAlarms(
  layout: EcsRolloutLayout,
  side: 'stable' | 'candidate',
  arns: { loadBalancer: string; targetGroup: string },
  stack: string,
): AlarmSpec[] {
  const dims = { LoadBalancer: arnDimension(arns.loadBalancer), TargetGroup: arnDimension(arns.targetGroup) };
  return rollbackAlarms(layout, side, side === 'stable' ? layout.service : layout.candidateService, stack, {
    errors: alb('HTTPCode_Target_5XX_Count', dims, 'Sum'),
    requests: alb('RequestCount', dims, 'Sum'),
    // TargetResponseTime is in seconds.
    p99: alb('TargetResponseTime', dims, 'p99'),
    latencyUnitMs: 1000,
  });
}

/**
 * The candidate's alarms when the proxy routes the rollout (no target group of its own): on the
 * metrics a wrapped candidate's request lines carry in CloudWatch's embedded metric format, under
 * `ModelVersion=candidate` beside its service (templates/wrap/python/app/observability.py), in the
 * stack's namespace. None when its revision has no namespace (monitoring off, or not a wrapped
 * service).
 */
export function candidateMetricAlarms(
  layout: EcsRolloutLayout,
  candidate: Pick<TaskDefinition, 'containerDefinitions'>,
  stack: string,
): AlarmSpec[] {
  const env = candidate.containerDefinitions?.find((c) => c.name === layout.container)?.environment;
  const namespace = env?.find((e) => e.name === 'MLSHIP_METRICS_NAMESPACE')?.value;
  const service = env?.find((e) => e.name === 'SERVICE_NAME')?.value ?? layout.container;
  if (!namespace) return [];
  const emf = (name: string, statistic: string): AlarmMetric => ({
    namespace,
    name,
    dimensions: { Service: service, ModelVersion: 'candidate' },
    statistic,
  });
  return rollbackAlarms(layout, 'candidate', layout.candidateService, stack, {
    errors: emf('Errors5xx', 'Sum'),
    requests: emf('Requests', 'Sum'),
    p99: emf('Latency', 'p99'),
    latencyUnitMs: 1,
  });
}

/** The GetMetricData queries of a comparison over [start, end): counts and percentiles, and minutes. */
export function metricQueries(
  arns: { loadBalancer: string; stable: string; candidate: string },
  windowSeconds: number,
): MetricSeriesQuery[] {
  const whole = Math.max(60, Math.ceil(windowSeconds / 60) * 60);
  return (['stable', 'candidate'] as const).flatMap((side) => {
    const dims = { LoadBalancer: arnDimension(arns.loadBalancer), TargetGroup: arnDimension(arns[side]) };
    const q = (id: string, name: string, statistic: string, periodSeconds: number): MetricSeriesQuery => ({
      id: `${side}_${id}`,
      metric: { namespace: 'AWS/ApplicationELB', name, dimensions: dims },
      statistic,
      periodSeconds,
    });
    return [
      q('requests', 'RequestCount', 'Sum', whole),
      q('errors', 'HTTPCode_Target_5XX_Count', 'Sum', whole),
      q('p50', 'TargetResponseTime', 'p50', whole),
      q('p95', 'TargetResponseTime', 'p95', whole),
      q('p99', 'TargetResponseTime', 'p99', whole),
      q('minutes', 'TargetResponseTime', 'Average', 60),
    ];
  });
}

const sum = (v: number[] | undefined) => (v ?? []).reduce((a, b) => a + b, 0);

/** One side from GetMetricData's values (seconds become milliseconds). */
export function sideFromMetrics(
  values: Record<string, number[]>,
  side: 'stable' | 'candidate',
): AggregateSide {
  const requests = Math.round(sum(values[`${side}_requests`]));
  const errors5xx = Math.round(sum(values[`${side}_errors`]));
  const ms = (id: string) => {
    const v = values[`${side}_${id}`]?.[0];
    return v === undefined ? undefined : v * 1000;
  };
  const p50 = ms('p50');
  return {
    requests,
    errors5xx,
    errorRate: requests ? errors5xx / requests : 0,
    ...(p50 === undefined ? {} : { p50Ms: p50, p95Ms: ms('p95')!, p99Ms: ms('p99')! }),
    periodMeansMs: (values[`${side}_minutes`] ?? []).map((v) => v * 1000),
  };
}

export function compareFromMetrics(
  values: Record<string, number[]>,
  gates: Gates,
  candidatePercent: number,
): Comparison {
  return compareAggregates(
    sideFromMetrics(values, 'stable'),
    sideFromMetrics(values, 'candidate'),
    gates,
    candidatePercent / 100,
  );
}
