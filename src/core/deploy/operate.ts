// `deploy ecs --apply` and `--destroy`, the running-the-stack half (issue 21): the proxy's
// API keys secret (before the apply, whose checks look for it), then after the apply the
// CloudWatch dashboard and alarms, the SNS topic of --alert-email, the AWS Budget, the WAF
// rate limit on the load balancer and the GPU group's metrics; on --destroy their removal,
// and afterwards a scan by the stack's tag of what is still there. Every step is idempotent.

import type { AwsDeployApis, TaggedResource } from './aws-apis.js';
import { alarmSpecs, arnDimension, dashboardBody, type LoadBalancerMetrics } from './cloudwatch-dashboard.js';
import { gpuCapacityNames } from './gpu-capacity.js';
import { loadBalancerNames } from './load-balancer-plan.js';
import { operateNames, STACK_TAG } from './operate-plan.js';
import type { EcsPlanResult } from './plan.js';

export interface OperateDeps {
  aws: AwsDeployApis;
  log(line: string): void;
}

export interface OperateResult {
  dashboard?: string;
  alarms: string[];
  alarmsRemoved: string[];
  topic?: { arn: string; subscription: 'created' | 'pending' | 'confirmed' };
  budget?: { name: string; created: boolean; changed: string[] };
  waf?: { arn: string; created: boolean; changed: boolean; associated: boolean };
  apiKeys?: 'created' | 'updated' | 'unchanged';
  /** Services redeployed so their tasks read the new API keys. */
  redeployed: string[];
}

/**
 * The proxy's API keys into Secrets Manager (before the apply, whose checks need the secret):
 * the local keys file's map lines; 'updated' means running proxies have old keys.
 */
export async function prepareOperate(
  plan: EcsPlanResult,
  deps: OperateDeps,
  keysMap: string | undefined,
): Promise<OperateResult['apiKeys']> {
  const keys = plan.operate?.apiKeys;
  if (!keys) return undefined;
  const value = { keys: keysMap ?? '' };
  const current = await deps.aws.secrets.jsonSecret(keys.secret);
  if (current && current.keys === value.keys) return 'unchanged';
  if (!keysMap)
    deps.log(`no API keys yet: the proxy refuses every /api/ request (mlship keys create --name <name>)`);
  const outcome = await deps.aws.secrets.putJsonSecret(keys.secret, value, { [STACK_TAG]: plan.stack });
  deps.log(`secret ${keys.secret}: ${outcome} (the proxy's API keys; values not shown)`);
  return outcome;
}

/** The load balancer's and target groups' metric dimensions, when the stack has one (also `mlship top`'s). */
export async function loadBalancerMetrics(
  plan: Pick<EcsPlanResult, 'stack' | 'loadBalancer'>,
  deps: { aws: Pick<AwsDeployApis, 'elb'> },
): Promise<LoadBalancerMetrics | undefined> {
  if (!plan.loadBalancer) return undefined;
  const names = loadBalancerNames(plan.stack);
  const lb = await deps.aws.elb.findLoadBalancer(names.loadBalancer);
  if (!lb) return undefined;
  const forwards = plan.loadBalancer.listeners.flatMap((l) => (l.forward ? [l.forward] : []));
  const byName = new Map(forwards.map((f) => [names.targetGroup(f.container, f.containerPort), f.container]));
  const arns = await deps.aws.elb.targetGroupArns([...byName.keys()]);
  return {
    loadBalancer: arnDimension(lb.arn),
    targetGroups: Object.entries(arns).map(([name, arn]) => ({
      dimension: arnDimension(arn),
      container: byName.get(name)!,
    })),
  };
}

export async function ensureOperate(
  plan: EcsPlanResult,
  deps: OperateDeps,
  context: { apiKeys?: OperateResult['apiKeys']; services?: { name: string; action: string }[] } = {},
): Promise<OperateResult> {
  const op = plan.operate;
  const result: OperateResult = { alarms: [], alarmsRemoved: [], redeployed: [] };
  if (!op) return result;
  const { aws, log } = deps;
  if (context.apiKeys) result.apiKeys = context.apiKeys;
  if (op.topic) {
    const topic = await aws.sns.ensureTopic(op.topic.name, { [STACK_TAG]: plan.stack });
    const subscription = await aws.sns.ensureEmailSubscription(topic.arn, op.topic.email);
    result.topic = { arn: topic.arn, subscription };
    if (subscription !== 'confirmed')
      log(
        `SNS topic ${op.topic.name}: ${op.topic.email} ${subscription === 'created' ? 'subscribed' : 'still'} pending: AWS sent a confirmation e-mail; alarms reach that address once its link is followed`,
      );
  }
  const lb = await loadBalancerMetrics(plan, deps);
  if (op.monitoring) {
    if (op.models.some((m) => m.gpu))
      await aws.gpu.enableGroupMetrics(gpuCapacityNames(plan.stack).autoScalingGroup);
    await aws.cloudwatch.putDashboard(op.dashboard, dashboardBody(op, plan.region, lb));
    result.dashboard = op.dashboard;
  }
  const wanted = alarmSpecs(op, result.topic ? [result.topic.arn] : [], lb);
  for (const alarm of wanted) await aws.cloudwatch.putAlarm(alarm);
  result.alarms = wanted.map((a) => a.name);
  // Alarms of services since removed (or of monitoring turned off) go too.
  // A rollout's alarms (mlship rollout --target ecs) are its own: services roll back on them.
  const stale = (await aws.cloudwatch.alarmNames(op.alarmPrefix)).filter(
    (n) => !result.alarms.includes(n) && !n.startsWith(`${op.alarmPrefix}rollout-`),
  );
  if (stale.length) await aws.cloudwatch.deleteAlarms(stale);
  result.alarmsRemoved = stale;
  if (op.budget) {
    const b = await aws.budgets.ensureBudget({
      accountId: plan.accountId,
      name: op.budget.name,
      monthlyUsd: op.budget.monthlyUsd,
      tag: { key: STACK_TAG, value: plan.stack },
      forecastPercents: op.budget.percents,
      ...(op.budget.email ? { email: op.budget.email } : {}),
    });
    result.budget = { name: op.budget.name, ...b };
  }
  if (op.waf && lb) {
    const acl = await aws.waf.ensureRateLimitAcl({
      name: op.waf.name,
      limit: op.waf.rateLimit,
      tags: { [STACK_TAG]: plan.stack },
    });
    const lbArn = (await aws.elb.findLoadBalancer(loadBalancerNames(plan.stack).loadBalancer))!.arn;
    const { associated } = await aws.waf.associate(acl.arn, lbArn);
    result.waf = { ...acl, associated };
  }
  // New keys reach running proxies only through new tasks: roll the proxy unless the apply did.
  const keys = op.apiKeys;
  const rolled = context.services?.find((s) => s.name === keys?.service)?.action;
  if (keys && context.apiKeys === 'updated' && rolled === 'unchanged') {
    const svc = await aws.ecs.describeService(plan.stack, keys.service);
    if (svc?.taskDefinition) {
      await aws.ecs.updateService({
        cluster: plan.stack,
        service: keys.service,
        taskDefinition: svc.taskDefinition,
        forceNewDeployment: true,
      });
      result.redeployed.push(keys.service);
      log(
        `service ${keys.service}: redeployed to read the new API keys (a rolling deployment: no request is dropped)`,
      );
    }
  }
  return result;
}

/**
 * Before the rest of --destroy (the WAF must leave the load balancer while it exists): the
 * web ACL, the dashboard, every alarm of the stack, its topic, its budget, the keys secret.
 */
export async function destroyOperate(plan: EcsPlanResult, deps: OperateDeps): Promise<string[]> {
  const { aws } = deps;
  const names = operateNames(plan.stack);
  const removed: string[] = [];
  const lb = await aws.elb.findLoadBalancer(loadBalancerNames(plan.stack).loadBalancer);
  if (await aws.waf.deleteAcl(names.waf, lb?.arn)) removed.push(`web ACL ${names.waf}`);
  for (const d of await aws.cloudwatch.deleteDashboards([names.dashboard])) removed.push(`dashboard ${d}`);
  const alarms = await aws.cloudwatch.alarmNames(names.alarmPrefix);
  if (alarms.length) {
    await aws.cloudwatch.deleteAlarms(alarms);
    removed.push(`${alarms.length} alarm(s) ${names.alarmPrefix}*`);
  }
  const topic = await aws.sns.findTopic(names.topic);
  if (topic) {
    await aws.sns.deleteTopic(topic);
    removed.push(`SNS topic ${names.topic}`);
  }
  if (await aws.budgets.deleteBudget(plan.accountId, names.budget)) removed.push(`budget ${names.budget}`);
  if (plan.operate?.apiKeys && (await aws.secrets.deleteSecret(names.apiKeysSecret)))
    removed.push(`secret ${names.apiKeysSecret} (recoverable for 7 days)`);
  for (const r of removed) deps.log(`removed ${r}`);
  return removed;
}

export interface LeftoverScan {
  /** Still there and billed (or billable): the goal is none. */
  billed: string[];
  /** Kept on purpose: images, logs, and the data (database, bucket, job queues) unless --delete-data. */
  kept: string[];
  /** Still listed, not billed: inactive task definitions, services and clusters, secrets scheduled for deletion. */
  free: string[];
}

/** Where a tagged resource goes in the scan; ECS services are looked up (a deleted one lingers INACTIVE). */
async function classify(
  r: TaggedResource,
  plan: EcsPlanResult,
  deps: OperateDeps,
  options: { deleteData: boolean; deletedSecrets: string[] },
): Promise<keyof LeftoverScan> {
  const [, , service, , , resource = ''] = r.arn.split(':');
  if (service === 'ecr' || service === 'logs') return 'kept';
  if (service === 'ecs') {
    // Clusters and task definitions cost nothing; a service costs while it is ACTIVE.
    const svc = /^service\/([^/]+)\/(.+)$/.exec(resource);
    if (!svc) return 'free';
    return (await deps.aws.ecs.describeService(svc[1]!, svc[2]!)) ? 'billed' : 'free';
  }
  if (service === 'secretsmanager' && options.deletedSecrets.some((n) => r.arn.includes(`:secret:${n}-`)))
    return 'free';
  const data =
    service === 'rds' ||
    (service === 'sqs' && (plan.queues ?? []).some((q) => [q.arn, q.deadLetter.arn].includes(r.arn))) ||
    (service === 's3' && r.arn.endsWith(`:::${plan.bucket}`)) ||
    (service === 'secretsmanager' && plan.databases.some((d) => r.arn.includes(`:secret:${d.secretName}`)));
  return data && !options.deleteData ? 'kept' : 'billed';
}

/** After --destroy: every resource still tagged with the stack, and whether it is kept on purpose. */
export async function scanLeftovers(
  plan: EcsPlanResult,
  deps: OperateDeps,
  options: { deleteData: boolean; deletedSecrets?: string[] },
): Promise<LeftoverScan> {
  const scan: LeftoverScan = { billed: [], kept: [], free: [] };
  const opts = { deleteData: options.deleteData, deletedSecrets: options.deletedSecrets ?? [] };
  for (const r of await deps.aws.tagging.resourcesTagged(STACK_TAG, plan.stack))
    scan[await classify(r, plan, deps, opts)].push(r.arn);
  return scan;
}
