// What `deploy ecs` plans for running the stack (issue 21), beside what runs it: the
// services' own latency metrics (embedded metric format in their logs: the namespace set on
// each model container), a CloudWatch dashboard and alarms, an SNS topic for --alert-email,
// an AWS Budget on the stack's cost-allocation tag, an optional WAF rate limit on the load
// balancer, and the proxy's API keys from Secrets Manager. Pure: the apply (operate.ts)
// creates it; the plan prints its lines and costs, and the worst case at maximum scale.

import type { RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import type { Project } from '../../config/schema.js';
import type { Stack } from '../../config/stack-model.js';
import type { EcsTranslation } from '../../generators/ecs-task-definitions.js';
import { API_KEYS_DIR, API_KEYS_FILE } from '../../generators/proxy-protection.js';
import type { CostEstimate, CostLine } from './cost.js';
import { usd } from './cost.js';
import { awsName } from './names.js';
import { HOURS_PER_MONTH, PRICES } from './prices.js';

export const STACK_TAG = 'mlship:stack';
/** Budget alerts: forecast to pass these shares of the amount. */
export const BUDGET_PERCENTS = [50, 80, 100];
/** A GPU instance with no request for this long is idle money. */
export const IDLE_GPU_HOURS = 2;

export interface OperateOptions {
  budgetUsd?: number;
  alertEmail?: string;
  /** Requests per IP address per 5 minutes: AWS WAF on the load balancer. */
  wafRateLimit?: number;
  /** Dashboard, alarms and the services' metrics (default on). */
  monitoring?: boolean;
  /** The stack's queues and their dead-letter queues (workers, issue 16): backlog and DLQ alarms. */
  queues?: { name: string; deadLetter?: string }[];
}

export interface OperateModel {
  /** The container (stack service) and the ECS service it runs in. */
  container: string;
  service: string;
  sloP99Ms?: number;
  gpu: boolean;
}

export interface OperatePlan {
  stack: string;
  /** CloudWatch namespace of the services' own metrics. */
  namespace: string;
  monitoring: boolean;
  dashboard: string;
  /** Every alarm of the stack starts with this (how --destroy finds them). */
  alarmPrefix: string;
  models: OperateModel[];
  /** ECS services (for CPU and memory on the dashboard). */
  services: string[];
  queues: { name: string; deadLetter?: string }[];
  topic?: { name: string; email: string };
  budget?: { name: string; monthlyUsd: number; percents: number[]; email?: string };
  waf?: { name: string; rateLimit: number };
  /** The proxy's API keys: a Secrets Manager secret its task reads at start. */
  apiKeys?: { secret: string; container: string; service: string };
  /** The proxy limits each client's request rate (proxy.rate_limit), which a rollout must keep. */
  proxyRateLimit?: true;
}

export function operateNames(stack: string) {
  return {
    namespace: `mlship/${stack}`,
    dashboard: awsName(`mlship-${stack}`, 255),
    alarmPrefix: `mlship-${stack}-`,
    topic: awsName(`mlship-${stack}-alerts`, 256),
    budget: `mlship-${stack}`,
    waf: awsName(`mlship-${stack}`, 128),
    apiKeysSecret: `${stack}/api-keys`,
  };
}

function envOf(
  c: NonNullable<RegisterTaskDefinitionCommandInput['containerDefinitions']>[number],
  add: Record<string, string>,
) {
  const kept = (c.environment ?? []).filter((e) => !(e.name! in add));
  c.environment = [...kept, ...Object.entries(add).map(([name, value]) => ({ name, value }))].sort((a, b) =>
    a.name!.localeCompare(b.name!),
  );
}

/** Each container of the translation with the ECS service it runs in. */
function containersOf(t: EcsTranslation) {
  return t.services.flatMap((svc) => {
    const td = t.taskDefinitions.find((d) => d.family === svc.taskFamily);
    return (td?.containerDefinitions ?? []).map((c) => ({ svc, td: td!, c }));
  });
}

/**
 * The operate plan of a stack; also sets what the containers need for it in the translation:
 * the metrics namespace and service name on the model containers, the API keys on the proxy.
 */
export function planOperate(
  stack: Stack,
  translation: EcsTranslation,
  project: Project | undefined,
  options: OperateOptions,
  region: string,
  accountId: string,
): OperatePlan {
  const names = operateNames(stack.name);
  const monitoring = options.monitoring ?? project?.aws?.monitoring ?? true;
  const roleOf = new Map(stack.services.map((s) => [s.name, s]));
  const models: OperateModel[] = [];
  let apiKeys: OperatePlan['apiKeys'];
  for (const { svc, c } of containersOf(translation)) {
    const s = roleOf.get(c.name!);
    if (s?.role === 'model') {
      models.push({
        container: c.name!,
        service: svc.name,
        gpu: svc.launchType === 'EC2',
        ...(project?.services[c.name!]?.slo_p99_ms
          ? { sloP99Ms: project.services[c.name!]!.slo_p99_ms! }
          : {}),
      });
      if (monitoring) envOf(c, { MLSHIP_METRICS_NAMESPACE: names.namespace, SERVICE_NAME: c.name! });
    }
    if (s?.role === 'proxy' && project?.proxy?.auth === 'api_key') {
      // The keys reach the proxy as a secret and are written where nginx.conf includes them.
      const partial = `arn:aws:secretsmanager:${region}:${accountId}:secret:${names.apiKeysSecret}`;
      c.secrets = [...(c.secrets ?? []), { name: 'MLSHIP_API_KEYS', valueFrom: `${partial}:keys::` }];
      c.entryPoint = ['sh', '-c'];
      c.command = [
        `mkdir -p ${API_KEYS_DIR} && printf '%s\\n' "$MLSHIP_API_KEYS" > ${API_KEYS_DIR}/${API_KEYS_FILE} && exec nginx -g 'daemon off;'`,
      ];
      apiKeys = { secret: names.apiKeysSecret, container: c.name!, service: svc.name };
    }
  }
  const email = options.alertEmail ?? project?.aws?.alert_email;
  const budgetUsd = options.budgetUsd ?? project?.aws?.budget_usd;
  const wafLimit = options.wafRateLimit ?? project?.aws?.waf?.rate_limit;
  const hasLoadBalancer = translation.services.some((s) => s.publicPorts.length > 0);
  return {
    stack: stack.name,
    namespace: names.namespace,
    monitoring,
    dashboard: names.dashboard,
    alarmPrefix: names.alarmPrefix,
    models,
    services: translation.services.map((s) => s.name),
    queues: options.queues ?? [],
    ...(email ? { topic: { name: names.topic, email } } : {}),
    ...(budgetUsd
      ? {
          budget: {
            name: names.budget,
            monthlyUsd: budgetUsd,
            percents: BUDGET_PERCENTS,
            ...(email ? { email } : {}),
          },
        }
      : {}),
    ...(wafLimit && hasLoadBalancer ? { waf: { name: names.waf, rateLimit: wafLimit } } : {}),
    ...(apiKeys ? { apiKeys } : {}),
    ...(project?.proxy?.rate_limit && stack.services.some((s) => s.role === 'proxy')
      ? { proxyRateLimit: true as const }
      : {}),
  };
}

/** The alarms the plan will create, as people read them (the apply builds each one). */
export function plannedAlarms(op: OperatePlan, hasLoadBalancer: boolean): string[] {
  if (!op.monitoring) return [];
  return [
    ...(hasLoadBalancer
      ? [
          'load balancer 5xx above 5% of requests for 3 of 5 minutes',
          'unhealthy targets behind the load balancer for 3 minutes',
        ]
      : []),
    ...op.models.map((m) => `${m.container}: 5xx above 5% of its requests for 3 of 5 minutes`),
    ...op.models.flatMap((m) =>
      m.sloP99Ms ? [`${m.container}: p99 latency above slo_p99_ms ${m.sloP99Ms} ms for 3 of 5 minutes`] : [],
    ),
    ...op.models.flatMap((m) =>
      m.gpu ? [`${m.container}: a GPU instance running with no request for ${IDLE_GPU_HOURS} hours`] : [],
    ),
    ...op.queues.flatMap((q) => (q.deadLetter ? [`dead-letter queue ${q.deadLetter} not empty`] : [])),
  ];
}

export function operatePlanLines(op: OperatePlan, hasLoadBalancer: boolean): string[] {
  const alarms = plannedAlarms(op, hasLoadBalancer);
  const lines: string[] = [];
  if (op.monitoring) {
    lines.push(
      `metrics: each model service writes its latency, requests and errors into its log lines (CloudWatch embedded metric format, namespace ${op.namespace}; no agent)`,
      `CloudWatch dashboard ${op.dashboard}: ${hasLoadBalancer ? 'load balancer latency p50/p90/p99, 5xx and healthy targets per target group, ' : ''}per-model latency p50/p95/p99, requests and errors, CPU and memory per service${op.queues.length ? ', queue backlog' : ''}${op.models.some((m) => m.gpu) ? ', GPU instances running' : ''}`,
      `${alarms.length} CloudWatch alarm(s)${op.topic ? ` → SNS topic ${op.topic.name}` : ' (no --alert-email: visible in the console, nobody notified)'}: ${alarms.join('; ')}`,
    );
  }
  if (op.topic)
    lines.push(
      `SNS topic ${op.topic.name}: e-mail subscription for ${op.topic.email} (AWS sends a confirmation e-mail: nothing is delivered until its link is followed)`,
    );
  if (op.budget)
    lines.push(
      `AWS Budget ${op.budget.name}: $${op.budget.monthlyUsd.toFixed(2)}/month for the resources tagged ${STACK_TAG}=${op.stack}, forecast alerts at ${op.budget.percents.join('/')}%${op.budget.email ? ` to ${op.budget.email}` : ' (no --alert-email: nobody is told)'}`,
      `activate the cost-allocation tag ${STACK_TAG} once per account (Billing → Cost allocation tags, or: aws ce update-cost-allocation-tags-status --cost-allocation-tags-status TagKey=${STACK_TAG},Status=Active); until then the budget sees no cost`,
    );
  if (op.waf)
    lines.push(
      `AWS WAF web ACL ${op.waf.name} on the load balancer: blocks an IP address above ${op.waf.rateLimit} requests in 5 minutes`,
    );
  if (op.apiKeys)
    lines.push(
      `Secrets Manager secret ${op.apiKeys.secret}: the proxy's API keys (from mlship keys; written into the proxy when its task starts, never into its image)`,
    );
  return lines;
}

/** What running the stack costs on top: dashboard, alarms, custom metrics, WAF, budget. */
export function operateCostLines(op: OperatePlan, hasLoadBalancer: boolean): CostLine[] {
  const lines: CostLine[] = [];
  if (op.monitoring) {
    const alarmMetrics =
      plannedAlarms(op, hasLoadBalancer).length + op.models.length + (hasLoadBalancer ? 1 : 0);
    const custom = op.models.length * 5;
    lines.push({
      item: 'CloudWatch dashboard, alarms, metrics',
      monthlyUsd: usd(
        PRICES.cloudwatchDashboardMonth +
          alarmMetrics * PRICES.cloudwatchAlarmMetricMonth +
          custom * PRICES.cloudwatchCustomMetricMonth,
      ),
      detail: `1 dashboard ($${PRICES.cloudwatchDashboardMonth}; the first 3 of an account are free), ~${alarmMetrics} alarm metric(s), ${custom} custom metric(s) from the services' logs`,
    });
  }
  if (op.waf) {
    lines.push({
      item: 'AWS WAF (rate limit)',
      monthlyUsd: usd(PRICES.wafWebAclMonth + PRICES.wafRuleMonth),
      detail: `web ACL $${PRICES.wafWebAclMonth} + 1 rule $${PRICES.wafRuleMonth}, plus $${PRICES.wafMillionRequests} per million requests`,
    });
  }
  if (op.budget) {
    lines.push({
      item: 'AWS Budget',
      monthlyUsd: 0,
      detail: `the first 2 budgets of an account are free, then $${usd(PRICES.budgetDay * 30)}/month each`,
    });
  }
  return lines;
}

/**
 * The month at maximum scale: the GPU instances at their Auto Scaling maximum (gpu-capacity.ts:
 * twice the GPU tasks, for rolling deployments) and each database at its maximum capacity, all
 * month; everything else as estimated (Fargate services run a fixed number of tasks).
 */
export function worstCase(
  cost: CostEstimate,
  parts: {
    gpuTasks: number;
    gpuInstanceHourUsd?: number;
    databases: { item: string; worstMonthlyUsd: number }[];
  },
): NonNullable<CostEstimate['worstCase']> {
  const why: string[] = [];
  let total = 0;
  const gpuMax = Math.max(1, parts.gpuTasks) * 2;
  for (const line of cost.lines) {
    let month = line.monthlyUsd;
    if (line.item.startsWith('GPU instance for') && parts.gpuInstanceHourUsd) {
      month = parts.gpuInstanceHourUsd * HOURS_PER_MONTH * gpuMax;
      why.push(`${gpuMax} GPU instance(s) (the Auto Scaling maximum) all month`);
    }
    const db = parts.databases.find((d) => d.item === line.item);
    if (db && db.worstMonthlyUsd > month) {
      month = db.worstMonthlyUsd;
      why.push(`${line.item} at its maximum capacity all month`);
    }
    total += month;
  }
  return {
    totalMonthlyUsd: usd(total),
    detail: why.length
      ? [...new Set(why)].join('; ')
      : 'no part of this stack scales: the same as the estimate',
  };
}
