// The CloudWatch dashboard and alarms of a deployed stack, as data: built at apply time,
// when the load balancer's and target groups' ARNs (their metrics' dimensions) are known.
// Pure; operate.ts puts them. The dashboard body follows CloudWatch's "Dashboard Body
// Structure" (widgets of type metric with metrics arrays); alarms are AlarmSpecs.

import type { AlarmSpec, MetricRef } from './aws-apis.js';
import { gpuCapacityNames } from './gpu-capacity.js';
import { IDLE_GPU_HOURS, type OperatePlan, STACK_TAG } from './operate-plan.js';

export interface LoadBalancerMetrics {
  /** The ARN suffix CloudWatch names it by: app/<name>/<id>. */
  loadBalancer: string;
  /** Per target group: its suffix targetgroup/<name>/<id>, and the container it forwards to. */
  targetGroups: { dimension: string; container: string }[];
}

/** ALB metrics name a load balancer and a target group by the end of their ARNs. */
export function arnDimension(arn: string): string {
  const lb = /:loadbalancer\/(.+)$/.exec(arn);
  if (lb) return lb[1]!;
  const tg = /:(targetgroup\/.+)$/.exec(arn);
  return tg ? tg[1]! : arn;
}

type MetricLine = (string | { stat?: string; label?: string })[];

interface Widget {
  type: 'metric' | 'text';
  x: number;
  y: number;
  width: number;
  height: number;
  properties: Record<string, unknown>;
}

function widgets(
  region: string,
  panels: { title: string; metrics: MetricLine[]; stat?: string }[],
): Widget[] {
  return panels.map((p, i) => ({
    type: 'metric',
    x: (i % 2) * 12,
    y: Math.floor(i / 2) * 6,
    width: 12,
    height: 6,
    properties: {
      title: p.title,
      region,
      view: 'timeSeries',
      stacked: false,
      period: 60,
      ...(p.stat ? { stat: p.stat } : {}),
      metrics: p.metrics,
    },
  }));
}

type Panel = { title: string; metrics: MetricLine[]; stat?: string };

export function dashboardBody(
  op: OperatePlan,
  region: string,
  lb?: LoadBalancerMetrics,
): { widgets: Widget[] } {
  const panels: Panel[] = [
    ...(lb ? loadBalancerPanels(lb) : []),
    ...modelPanels(op),
    ...resourcePanels(op),
    ...queuePanels(op),
    ...gpuPanels(op),
  ];
  return { widgets: widgets(region, panels) };
}

/** Per target group: response time percentiles, 5xx (and the balancer's own), healthy targets. */
function loadBalancerPanels(lb: LoadBalancerMetrics): Panel[] {
  const alb = 'AWS/ApplicationELB';
  const tg = (t: LoadBalancerMetrics['targetGroups'][number]) => [
    'TargetGroup',
    t.dimension,
    'LoadBalancer',
    lb.loadBalancer,
  ];
  return [
    {
      title: 'Load balancer: response time p50 / p90 / p99',
      metrics: lb.targetGroups.flatMap((t) =>
        ['p50', 'p90', 'p99'].map((stat) => [
          alb,
          'TargetResponseTime',
          ...tg(t),
          { stat, label: `${t.container} ${stat}` },
        ]),
      ),
    },
    {
      title: 'Load balancer: 5xx from targets and from the balancer',
      stat: 'Sum',
      metrics: [
        ...lb.targetGroups.map((t) => [
          alb,
          'HTTPCode_Target_5XX_Count',
          ...tg(t),
          { label: `${t.container} 5xx` },
        ]),
        [alb, 'HTTPCode_ELB_5XX_Count', 'LoadBalancer', lb.loadBalancer, { label: 'load balancer 5xx' }],
      ],
    },
    {
      title: 'Load balancer: healthy and unhealthy targets',
      stat: 'Minimum',
      metrics: lb.targetGroups.flatMap((t) => [
        [alb, 'HealthyHostCount', ...tg(t), { label: `${t.container} healthy` }],
        [alb, 'UnHealthyHostCount', ...tg(t), { stat: 'Maximum', label: `${t.container} unhealthy` }],
      ]),
    },
  ];
}

/** The model services' own metrics (embedded metric format): latency percentiles, requests, errors. */
function modelPanels(op: OperatePlan): Panel[] {
  if (!op.models.length) return [];
  const ns = op.namespace;
  return [
    {
      title: 'Model services: latency p50 / p95 / p99 (their own)',
      metrics: op.models.flatMap((m) =>
        ['p50', 'p95', 'p99'].map((stat) => [
          ns,
          'Latency',
          'Service',
          m.container,
          { stat, label: `${m.container} ${stat}` },
        ]),
      ),
    },
    {
      title: 'Model services: requests and errors',
      stat: 'Sum',
      metrics: op.models.flatMap((m) => [
        [ns, 'Requests', 'Service', m.container, { label: `${m.container} requests` }],
        [ns, 'Errors4xx', 'Service', m.container, { label: `${m.container} 4xx` }],
        [ns, 'Errors5xx', 'Service', m.container, { label: `${m.container} 5xx` }],
      ]),
    },
  ];
}

function resourcePanels(op: OperatePlan): Panel[] {
  const perService = (name: string) =>
    op.services.map((s) => ['AWS/ECS', name, 'ClusterName', op.stack, 'ServiceName', s, { label: s }]);
  return [
    { title: 'CPU per service (%)', stat: 'Average', metrics: perService('CPUUtilization') },
    { title: 'Memory per service (%)', stat: 'Average', metrics: perService('MemoryUtilization') },
  ];
}

function queuePanels(op: OperatePlan): Panel[] {
  if (!op.queues.length) return [];
  const sqs = (name: string, queue: string, label: string) => [
    'AWS/SQS',
    name,
    'QueueName',
    queue,
    { label },
  ];
  return [
    {
      title: 'Queues: backlog and oldest message (s)',
      stat: 'Maximum',
      metrics: op.queues.flatMap((q) => [
        sqs('ApproximateNumberOfMessagesVisible', q.name, `${q.name} backlog`),
        sqs('ApproximateAgeOfOldestMessage', q.name, `${q.name} oldest (s)`),
        ...(q.deadLetter
          ? [sqs('ApproximateNumberOfMessagesVisible', q.deadLetter, `${q.deadLetter} (dead letters)`)]
          : []),
      ]),
    },
  ];
}

function gpuPanels(op: OperatePlan): Panel[] {
  if (!op.models.some((m) => m.gpu)) return [];
  const group = gpuCapacityNames(op.stack).autoScalingGroup;
  return [
    {
      title: 'GPU instances running',
      stat: 'Maximum',
      metrics: [
        [
          'AWS/AutoScaling',
          'GroupInServiceInstances',
          'AutoScalingGroupName',
          group,
          { label: 'GPU instances' },
        ],
      ],
    },
  ];
}

const metric = (namespace: string, name: string, dimensions: Record<string, string>, statistic: string) => ({
  namespace,
  name,
  dimensions,
  statistic,
});

type AlarmBase = Pick<AlarmSpec, 'actions' | 'tags' | 'treatMissingData'>;

/** Every alarm of the stack, each notifying `actions` (the SNS topic, when there is one). */
export function alarmSpecs(op: OperatePlan, actions: string[], lb?: LoadBalancerMetrics): AlarmSpec[] {
  if (!op.monitoring) return [];
  const base: AlarmBase = { actions, tags: { [STACK_TAG]: op.stack }, treatMissingData: 'notBreaching' };
  return [
    ...(lb ? loadBalancerAlarms(op, base, lb) : []),
    ...op.models.flatMap((m) => modelAlarms(op, base, m)),
    ...deadLetterAlarms(op, base),
  ];
}

/** More than 5% of requests answered 5xx, over 3 of 5 minutes. */
function errorRateAlarm(
  base: AlarmBase,
  name: string,
  description: string,
  errors: MetricRef,
  requests: MetricRef,
): AlarmSpec {
  return {
    ...base,
    name,
    description,
    comparison: 'GreaterThanThreshold',
    threshold: 5,
    periodSeconds: 60,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    math: {
      expression: 'IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)',
      label: '5xx (% of requests)',
      metrics: { errors: { ...errors, statistic: 'Sum' }, requests: { ...requests, statistic: 'Sum' } },
    },
  };
}

function loadBalancerAlarms(op: OperatePlan, base: AlarmBase, lb: LoadBalancerMetrics): AlarmSpec[] {
  const alb = 'AWS/ApplicationELB';
  return [
    errorRateAlarm(
      base,
      `${op.alarmPrefix}5xx`,
      `mlship ${op.stack}: more than 5% of the load balancer's requests answered 5xx`,
      metric(alb, 'HTTPCode_Target_5XX_Count', { LoadBalancer: lb.loadBalancer }, 'Sum'),
      metric(alb, 'RequestCount', { LoadBalancer: lb.loadBalancer }, 'Sum'),
    ),
    ...lb.targetGroups.map(
      (t): AlarmSpec => ({
        ...base,
        name: `${op.alarmPrefix}${t.container}-unhealthy-targets`,
        description: `mlship ${op.stack}: a target of ${t.container} behind the load balancer is unhealthy`,
        comparison: 'GreaterThanThreshold',
        threshold: 0,
        periodSeconds: 60,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        metric: metric(
          alb,
          'UnHealthyHostCount',
          { TargetGroup: t.dimension, LoadBalancer: lb.loadBalancer },
          'Maximum',
        ),
      }),
    ),
  ];
}

/** A model's 5xx rate, its p99 above the SLO, and (GPU) instances running idle. */
function modelAlarms(op: OperatePlan, base: AlarmBase, m: OperatePlan['models'][number]): AlarmSpec[] {
  const svc = { Service: m.container };
  const alarms = [
    errorRateAlarm(
      base,
      `${op.alarmPrefix}${m.container}-5xx`,
      `mlship ${op.stack}: more than 5% of ${m.container}'s predictions answered 5xx`,
      metric(op.namespace, 'Errors5xx', svc, 'Sum'),
      metric(op.namespace, 'Requests', svc, 'Sum'),
    ),
  ];
  if (m.sloP99Ms) {
    alarms.push({
      ...base,
      name: `${op.alarmPrefix}${m.container}-p99-above-slo`,
      description: `mlship ${op.stack}: ${m.container}'s p99 latency above its slo_p99_ms of ${m.sloP99Ms} ms`,
      comparison: 'GreaterThanThreshold',
      threshold: m.sloP99Ms,
      periodSeconds: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      metric: metric(op.namespace, 'Latency', svc, 'p99'),
    });
  }
  if (m.gpu) alarms.push(idleGpuAlarm(op, base, m));
  return alarms;
}

/** Instances running (from the group's own metric) and not one request, for two hours. */
function idleGpuAlarm(op: OperatePlan, base: AlarmBase, m: OperatePlan['models'][number]): AlarmSpec {
  return {
    ...base,
    name: `${op.alarmPrefix}${m.container}-idle-gpu`,
    description: `mlship ${op.stack}: a GPU instance has run ${IDLE_GPU_HOURS} hours without a request to ${m.container} (scale it to 0: mlship deploy ecs --scale ${m.service}=0)`,
    comparison: 'GreaterThanOrEqualToThreshold',
    threshold: 1,
    periodSeconds: 3600,
    evaluationPeriods: IDLE_GPU_HOURS,
    datapointsToAlarm: IDLE_GPU_HOURS,
    math: {
      expression: 'IF(instances > 0 AND FILL(requests, 0) == 0, 1, 0)',
      label: 'GPU instances running idle',
      metrics: {
        instances: metric(
          'AWS/AutoScaling',
          'GroupInServiceInstances',
          { AutoScalingGroupName: gpuCapacityNames(op.stack).autoScalingGroup },
          'Maximum',
        ),
        requests: metric(op.namespace, 'Requests', { Service: m.container }, 'Sum'),
      },
    },
  };
}

function deadLetterAlarms(op: OperatePlan, base: AlarmBase): AlarmSpec[] {
  return op.queues.flatMap((q) =>
    q.deadLetter
      ? [
          {
            ...base,
            name: `${op.alarmPrefix}${q.deadLetter}-not-empty`,
            description: `mlship ${op.stack}: messages in the dead-letter queue ${q.deadLetter} (jobs that failed every attempt)`,
            comparison: 'GreaterThanThreshold' as const,
            threshold: 0,
            periodSeconds: 300,
            evaluationPeriods: 1,
            datapointsToAlarm: 1,
            metric: metric(
              'AWS/SQS',
              'ApproximateNumberOfMessagesVisible',
              { QueueName: q.deadLetter },
              'Maximum',
            ),
          },
        ]
      : [],
  );
}
