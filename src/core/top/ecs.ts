// `mlship top --aws`: the deployed stack's numbers from CloudWatch (no scrape reaches the
// tasks): per model its own metrics (the embedded metric format of its log lines: Requests,
// Errors5xx, Latency p50/p99, InFlight per Service), per load-balanced container its target
// group (RequestCount, HTTPCode_Target_5XX_Count, TargetResponseTime p50/p99); replicas are
// the ECS services' running and desired counts; queues from SQS itself (live, where
// CloudWatch's ApproximateNumberOfMessagesVisible is 5 minutes old). CloudWatch publishes a
// minute when it is over, so the rates are those of the last complete minute.

import type { Clock } from '../../io/clock.js';
import type { CloudWatchApi, EcsApi, MetricSeriesQuery } from '../deploy/aws-apis.js';
import type { LoadBalancerMetrics } from '../deploy/cloudwatch-dashboard.js';
import { operateNames } from '../deploy/operate-plan.js';
import type { EcsPlanResult } from '../deploy/plan.js';
import {
  type QueueCounts,
  queueCounts,
  type ServiceRole,
  type StackQueue,
  type TopService,
  type TopSnapshot,
  type TopSource,
} from './snapshot.js';

export interface EcsTopStack {
  stack: string;
  region: string;
  cluster: string;
  /** ECS services and the containers of their task. */
  services: { name: string; containers: string[] }[];
  /** Containers that are wrapped models (their metrics' Service dimension). */
  models: string[];
  workers: string[];
  namespace: string;
  queues: StackQueue[];
}

export interface EcsTopDeps {
  ecs: Pick<EcsApi, 'describeServices'>;
  cloudwatch: Pick<CloudWatchApi, 'metricData'>;
  /** The load balancer's and target groups' dimensions (operate.ts finds them), when there is one. */
  loadBalancer(): Promise<LoadBalancerMetrics | undefined>;
  queue?: QueueCounts;
  clock: Clock;
}

const MINUTE = 60_000;
/** How far back to look for the newest complete minute (CloudWatch may be a few minutes late). */
const LOOKBACK_MINUTES = 5;

/** What `top` needs of a deploy plan (the names `deploy ecs` gave everything). */
export function ecsTopStack(plan: EcsPlanResult): EcsTopStack {
  const queues = plan.queues ?? [];
  return {
    stack: plan.stack,
    region: plan.region,
    cluster: plan.stack,
    services: plan.translation.services.map((s) => ({
      name: s.name,
      containers: s.containers.map((c) => c.name),
    })),
    models: (plan.operate?.models ?? []).map((m) => m.container),
    workers: queues.map((q) => q.worker),
    namespace: plan.operate?.namespace ?? operateNames(plan.stack).namespace,
    queues: queues.map((q) => ({ service: q.service, name: q.name, deadLetter: q.deadLetter.name })),
  };
}

interface Row {
  name: string;
  service: string;
  role: ServiceRole;
  /** Metric queries by what they measure. */
  queries: Partial<Record<'requests' | 'errors' | 'p50' | 'p99' | 'inFlight', MetricSeriesQuery>>;
  /** Latency unit of its metric: the models log milliseconds, the load balancer seconds. */
  latencyScale: number;
}

function q(
  id: string,
  namespace: string,
  name: string,
  dims: Record<string, string>,
  stat: string,
): MetricSeriesQuery {
  return { id, metric: { namespace, name, dimensions: dims }, statistic: stat, periodSeconds: 60 };
}

/** One row per model container and per other ECS service, with the queries of its numbers. */
export function ecsRows(stack: EcsTopStack, lb: LoadBalancerMetrics | undefined): Row[] {
  const rows: Row[] = [];
  stack.services.forEach((svc, i) => {
    const models = svc.containers.filter((c) => stack.models.includes(c));
    for (const [j, container] of models.entries()) {
      const dims = { Service: container };
      const id = `m${i}_${j}`;
      rows.push({
        name: container,
        service: svc.name,
        role: 'model',
        latencyScale: 1,
        queries: {
          requests: q(`${id}_req`, stack.namespace, 'Requests', dims, 'Sum'),
          errors: q(`${id}_err`, stack.namespace, 'Errors5xx', dims, 'Sum'),
          p50: q(`${id}_p50`, stack.namespace, 'Latency', dims, 'p50'),
          p99: q(`${id}_p99`, stack.namespace, 'Latency', dims, 'p99'),
          inFlight: q(`${id}_inf`, stack.namespace, 'InFlight', dims, 'Maximum'),
        },
      });
    }
    if (models.length) return;
    const role: ServiceRole = stack.workers.includes(svc.name)
      ? 'worker'
      : svc.containers.includes('proxy')
        ? 'proxy'
        : 'other';
    const tg = lb?.targetGroups.find((t) => svc.containers.includes(t.container));
    const dims = tg ? { TargetGroup: tg.dimension, LoadBalancer: lb!.loadBalancer } : undefined;
    const ns = 'AWS/ApplicationELB';
    rows.push({
      name: svc.name,
      service: svc.name,
      role,
      latencyScale: 1000,
      queries: dims
        ? {
            requests: q(`s${i}_req`, ns, 'RequestCount', dims, 'Sum'),
            errors: q(`s${i}_err`, ns, 'HTTPCode_Target_5XX_Count', dims, 'Sum'),
            p50: q(`s${i}_p50`, ns, 'TargetResponseTime', dims, 'p50'),
            p99: q(`s${i}_p99`, ns, 'TargetResponseTime', dims, 'p99'),
          }
        : {},
    });
  });
  return rows;
}

/** A row's numbers from the newest value of each of its series (none: no traffic that minute). */
export function rowNumbers(row: Row, values: Record<string, number[]>): Partial<TopService> {
  const newest = (k: keyof Row['queries']) => {
    const query = row.queries[k];
    return query ? values[query.id]?.[0] : undefined;
  };
  if (!row.queries.requests) return {};
  const requests = newest('requests') ?? 0;
  const errors = newest('errors') ?? 0;
  const p50 = newest('p50');
  const p99 = newest('p99');
  const inFlight = newest('inFlight');
  return {
    requestsPerSecond: requests / 60,
    ...(requests > 0 ? { errorRate: errors / requests } : {}),
    ...(p50 !== undefined ? { p50Ms: p50 * row.latencyScale } : {}),
    ...(p99 !== undefined ? { p99Ms: p99 * row.latencyScale } : {}),
    ...(inFlight !== undefined ? { inFlight } : {}),
  };
}

export class EcsTopSource implements TopSource {
  private lb: Promise<LoadBalancerMetrics | undefined> | undefined;

  constructor(
    private readonly deps: EcsTopDeps,
    private readonly stack: EcsTopStack,
  ) {}

  async snapshot(): Promise<TopSnapshot> {
    this.lb ??= this.deps.loadBalancer();
    const rows = ecsRows(this.stack, await this.lb);
    const end = Math.floor(this.deps.clock.now() / MINUTE) * MINUTE;
    const queries = rows.flatMap((r) => Object.values(r.queries));
    const [values, described, queues] = await Promise.all([
      queries.length ? this.deps.cloudwatch.metricData(queries, end - LOOKBACK_MINUTES * MINUTE, end) : {},
      this.deps.ecs.describeServices(
        this.stack.cluster,
        this.stack.services.map((s) => s.name),
      ),
      this.deps.queue ? queueCounts(this.stack.queues, this.deps.queue) : [],
    ]);
    const counts = new Map(described.map((s) => [s.serviceName, s]));
    const services: TopService[] = rows.map((r) => {
      const s = counts.get(r.service);
      return {
        name: r.name,
        role: r.role,
        versions: [],
        replicas: { running: s?.runningCount ?? 0, desired: s?.desiredCount ?? 0 },
        ...rowNumbers(r, values),
        ...(s ? {} : { note: `ECS service ${r.service} not found in cluster ${this.stack.cluster}` }),
      };
    });
    return {
      stack: this.stack.stack,
      where: this.stack.region,
      at: new Date(end).toISOString(),
      windowSeconds: 60,
      services,
      queues,
      notes: ['CloudWatch: the last complete minute (its metrics arrive about a minute late)'],
    };
  }
}
