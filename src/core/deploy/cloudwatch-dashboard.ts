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

export function dashboardBody(
  op: OperatePlan,
  region: string,
  lb?: LoadBalancerMetrics,
): { widgets: Widget[] } {
  const ns = op.namespace;
  const tg = (t: LoadBalancerMetrics['targetGroups'][number]) => [
    'TargetGroup',
    t.dimension,
    'LoadBalancer',
    lb!.loadBalancer,
  ];
  const panels: { title: string; metrics: MetricLine[]; stat?: string }[] = [];
  if (lb) {
    panels.push(
      {
        title: 'Load balancer: response time p50 / p90 / p99',
        metrics: lb.targetGroups.flatMap((t) =>
          ['p50', 'p90', 'p99'].map((stat) => [
            'AWS/ApplicationELB',
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
            'AWS/ApplicationELB',
            'HTTPCode_Target_5XX_Count',
            ...tg(t),
            { label: `${t.container} 5xx` },
          ]),
          [
            'AWS/ApplicationELB',
            'HTTPCode_ELB_5XX_Count',
            'LoadBalancer',
            lb.loadBalancer,
            { label: 'load balancer 5xx' },
          ],
        ],
      },
      {
        title: 'Load balancer: healthy and unhealthy targets',
        stat: 'Minimum',
        metrics: lb.targetGroups.flatMap((t) => [
          ['AWS/ApplicationELB', 'HealthyHostCount', ...tg(t), { label: `${t.container} healthy` }],
          [
            'AWS/ApplicationELB',
            'UnHealthyHostCount',
            ...tg(t),
            { stat: 'Maximum', label: `${t.container} unhealthy` },
          ],
        ]),
      },
    );
  }
  if (op.models.length) {
    panels.push(
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
    );
  }
  panels.push(
    {
      title: 'CPU per service (%)',
      stat: 'Average',
      metrics: op.services.map((s) => [
        'AWS/ECS',
        'CPUUtilization',
        'ClusterName',
        op.stack,
        'ServiceName',
        s,
        { label: s },
      ]),
    },
    {
      title: 'Memory per service (%)',
      stat: 'Average',
      metrics: op.services.map((s) => [
        'AWS/ECS',
        'MemoryUtilization',
        'ClusterName',
        op.stack,
        'ServiceName',
        s,
        { label: s },
      ]),
    },
  );
  if (op.queues.length) {
    panels.push({
      title: 'Queues: backlog and oldest message (s)',
      stat: 'Maximum',
      metrics: op.queues.flatMap((q) => [
        [
          'AWS/SQS',
          'ApproximateNumberOfMessagesVisible',
          'QueueName',
          q.name,
          { label: `${q.name} backlog` },
        ],
        ['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName', q.name, { label: `${q.name} oldest (s)` }],
        ...(q.deadLetter
          ? [
              [
                'AWS/SQS',
                'ApproximateNumberOfMessagesVisible',
                'QueueName',
                q.deadLetter,
                { label: `${q.deadLetter} (dead letters)` },
              ],
            ]
          : []),
      ]),
    });
  }
  if (op.models.some((m) => m.gpu)) {
    panels.push({
      title: 'GPU instances running',
      stat: 'Maximum',
      metrics: [
        [
          'AWS/AutoScaling',
          'GroupInServiceInstances',
          'AutoScalingGroupName',
          gpuCapacityNames(op.stack).autoScalingGroup,
          { label: 'GPU instances' },
        ],
      ],
    });
  }
  return { widgets: widgets(region, panels) };
}

const metric = (namespace: string, name: string, dimensions: Record<string, string>, statistic: string) => ({
  namespace,
  name,
  dimensions,
  statistic,
});

/** Every alarm of the stack, each notifying `actions` (the SNS topic, when there is one). */
export function alarmSpecs(op: OperatePlan, actions: string[], lb?: LoadBalancerMetrics): AlarmSpec[] {
  if (!op.monitoring) return [];
  const tags = { [STACK_TAG]: op.stack };
  const base = { actions, tags, treatMissingData: 'notBreaching' as const };
  const rate = (name: string, description: string, errors: MetricRef, requests: MetricRef): AlarmSpec => ({
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
  });
  const alarms: AlarmSpec[] = [];
  if (lb) {
    alarms.push(
      rate(
        `${op.alarmPrefix}5xx`,
        `mlship ${op.stack}: more than 5% of the load balancer's requests answered 5xx`,
        metric('AWS/ApplicationELB', 'HTTPCode_Target_5XX_Count', { LoadBalancer: lb.loadBalancer }, 'Sum'),
        metric('AWS/ApplicationELB', 'RequestCount', { LoadBalancer: lb.loadBalancer }, 'Sum'),
      ),
    );
    for (const t of lb.targetGroups) {
      alarms.push({
        ...base,
        name: `${op.alarmPrefix}${t.container}-unhealthy-targets`,
        description: `mlship ${op.stack}: a target of ${t.container} behind the load balancer is unhealthy`,
        comparison: 'GreaterThanThreshold',
        threshold: 0,
        periodSeconds: 60,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        metric: metric(
          'AWS/ApplicationELB',
          'UnHealthyHostCount',
          { TargetGroup: t.dimension, LoadBalancer: lb.loadBalancer },
          'Maximum',
        ),
      });
    }
  }
  for (const m of op.models) {
    const svc = { Service: m.container };
    alarms.push(
      rate(
        `${op.alarmPrefix}${m.container}-5xx`,
        `mlship ${op.stack}: more than 5% of ${m.container}'s predictions answered 5xx`,
        metric(op.namespace, 'Errors5xx', svc, 'Sum'),
        metric(op.namespace, 'Requests', svc, 'Sum'),
      ),
    );
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
    if (m.gpu) {
      // Instances running (from the group's own metric) and not one request, for two hours.
      alarms.push({
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
            requests: metric(op.namespace, 'Requests', svc, 'Sum'),
          },
        },
      });
    }
  }
  for (const q of op.queues) {
    if (!q.deadLetter) continue;
    alarms.push({
      ...base,
      name: `${op.alarmPrefix}${q.deadLetter}-not-empty`,
      description: `mlship ${op.stack}: messages in the dead-letter queue ${q.deadLetter} (jobs that failed every attempt)`,
      comparison: 'GreaterThanThreshold',
      threshold: 0,
      periodSeconds: 300,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      metric: metric('AWS/SQS', 'ApproximateNumberOfMessagesVisible', { QueueName: q.deadLetter }, 'Maximum'),
    });
  }
  return alarms;
}
