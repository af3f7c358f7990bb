// `deploy ecs` operating the stack (issue 21) against moto's real AWS APIs, through the
// adapters the CLI uses: the CloudWatch dashboard and alarms with their thresholds, the SNS
// topic and e-mail subscription, the AWS Budget and its forecast notifications, the WAF
// rate-based rule on the load balancer, the API keys secret, the mlship:stack tag on each,
// a second apply that changes nothing, and --destroy's removal followed by the tag scan.
// The load balancer is created here through the SDK (deploy-ecs.test.ts covers the apply
// that creates it; this file needs no engine).

import { cpSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as asgSdk from '@aws-sdk/client-auto-scaling';
import * as budgetsSdk from '@aws-sdk/client-budgets';
import * as cwSdk from '@aws-sdk/client-cloudwatch';
import * as ec2Sdk from '@aws-sdk/client-ec2';
import * as elbSdk from '@aws-sdk/client-elastic-load-balancing-v2';
import * as snsSdk from '@aws-sdk/client-sns';
import * as wafSdk from '@aws-sdk/client-wafv2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { budgetOf, createBudgetsApi } from '../../src/adapters/aws/budgets-api.js';
import { alarmInput } from '../../src/adapters/aws/cloudwatch-api.js';
import { rateRule } from '../../src/adapters/aws/waf-api.js';
import type { AwsDeployApis } from '../../src/core/deploy/aws-apis.js';
import { alarmSpecs } from '../../src/core/deploy/cloudwatch-dashboard.js';
import { gpuCapacityNames } from '../../src/core/deploy/gpu-capacity.js';
import {
  destroyOperate,
  ensureOperate,
  prepareOperate,
  scanLeftovers,
} from '../../src/core/deploy/operate.js';
import { type EcsPlanResult, loadBalancerNames } from '../../src/core/deploy/plan.js';
import { loadServiceModel, validateShape } from '../helpers/aws-model.js';
import { type Moto, startMoto } from '../helpers/moto.js';
import { planOnMoto } from '../helpers/moto-stack.js';

const REGION = 'eu-west-1';
const moto: Moto | undefined = await startMoto();

describe.runIf(moto)('deploy ecs: dashboard, alarms, alerts, budget, WAF and the tag scan (moto)', () => {
  let plan: EcsPlanResult;
  let aws: AwsDeployApis;
  let lbArn: string;
  const log: string[] = [];
  const clientConfig = () => ({
    region: REGION,
    endpoint: moto!.endpoint,
    credentials: {
      accessKeyId: moto!.env.AWS_ACCESS_KEY_ID!,
      secretAccessKey: moto!.env.AWS_SECRET_ACCESS_KEY!,
    },
  });
  const cw = () => new cwSdk.CloudWatchClient(clientConfig());

  beforeAll(async () => {
    Object.assign(process.env, moto!.env);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-operate-'));
    cpSync('fixtures/compose/operate/mlship.yaml', path.join(dir, 'mlship.yaml'));
    // moto's account: the budget lives in the account the plan names.
    ({ plan, aws } = await planOnMoto(moto!, path.join(dir, 'mlship.yaml'), REGION));
    // The stack's load balancer and target groups, as the apply leaves them.
    const ec2 = new ec2Sdk.EC2Client(clientConfig());
    const subnets = await ec2.send(
      new ec2Sdk.DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }),
    );
    const elb = new elbSdk.ElasticLoadBalancingV2Client(clientConfig());
    const names = loadBalancerNames(plan.stack);
    const stackTags = [
      { Key: 'mlship:managed', Value: 'true' },
      { Key: 'mlship:stack', Value: plan.stack },
    ];
    const lb = await elb.send(
      new elbSdk.CreateLoadBalancerCommand({
        Name: names.loadBalancer,
        Subnets: (subnets.Subnets ?? []).slice(0, 2).map((s) => s.SubnetId!),
        Type: 'application',
        Tags: stackTags,
      }),
    );
    lbArn = lb.LoadBalancers![0]!.LoadBalancerArn!;
    for (const l of plan.loadBalancer?.listeners ?? []) {
      if (!l.forward) continue;
      await elb.send(
        new elbSdk.CreateTargetGroupCommand({
          Name: names.targetGroup(l.forward.container, l.forward.containerPort),
          Protocol: 'HTTP',
          Port: l.forward.containerPort,
          VpcId: subnets.Subnets![0]!.VpcId!,
          TargetType: 'ip',
          Tags: stackTags,
        }),
      );
    }
    // The GPU service's Auto Scaling group (its instances' count is the idle-GPU alarm's metric).
    const asg = new asgSdk.AutoScalingClient(clientConfig());
    const group = gpuCapacityNames(plan.stack).autoScalingGroup;
    await asg.send(
      new asgSdk.CreateLaunchConfigurationCommand({
        LaunchConfigurationName: group,
        ImageId: 'ami-12c6146b',
        InstanceType: 'g4dn.xlarge',
      }),
    );
    await asg.send(
      new asgSdk.CreateAutoScalingGroupCommand({
        AutoScalingGroupName: group,
        LaunchConfigurationName: group,
        MinSize: 0,
        MaxSize: 2,
        VPCZoneIdentifier: subnets.Subnets![0]!.SubnetId!,
      }),
    );
    asg.destroy();
    ec2.destroy();
    elb.destroy();
  });
  afterAll(async () => {
    aws?.destroy();
    await moto?.stop();
  });

  it('the plan: dashboard, alarms, topic, budget, WAF and keys secret of the operate fixture', () => {
    const op = plan.operate!;
    expect(op.topic).toEqual({ name: `mlship-${plan.stack}-alerts`, email: 'ops@example.com' });
    expect(op.budget).toMatchObject({ monthlyUsd: 50, percents: [50, 80, 100], email: 'ops@example.com' });
    expect(op.waf?.rateLimit).toBe(500);
    expect(op.apiKeys?.secret).toBe(`${plan.stack}/api-keys`);
    expect(op.models.map((m) => [m.container, m.sloP99Ms, m.gpu]).sort()).toEqual([
      ['iris', 250, false],
      ['llm', undefined, true],
    ]);
    expect(plan.loadBalancer?.listeners.some((l) => l.forward)).toBe(true);
  });

  it("the requests moto takes loosely are valid for botocore's models: alarms, budget, web ACL", () => {
    const lb = {
      loadBalancer: 'app/ops-demo/e83e9ad3b72c000f',
      targetGroups: [{ dimension: 'targetgroup/ops-demo-proxy-80/11487ca11d161d79', container: 'proxy' }],
    };
    const specs = alarmSpecs(plan.operate!, ['arn:aws:sns:eu-west-1:123456789012:t'], lb);
    expect(specs.length).toBeGreaterThanOrEqual(6);
    const cwModel = loadServiceModel('cloudwatch');
    if (cwModel)
      for (const a of specs)
        expect(
          validateShape(cwModel, 'PutMetricAlarmInput', alarmInput(a, { 'mlship:stack': 'x' })),
          a.name,
        ).toEqual([]);
    const spec = {
      accountId: plan.accountId,
      name: plan.operate!.budget!.name,
      monthlyUsd: 50,
      tag: { key: 'mlship:stack', value: plan.stack },
      forecastPercents: [50, 80, 100],
      email: 'ops@example.com',
    };
    const budgetsModel = loadServiceModel('budgets');
    if (budgetsModel)
      expect(
        validateShape(budgetsModel, 'CreateBudgetRequest', {
          AccountId: spec.accountId,
          Budget: budgetOf(spec),
          ResourceTags: [{ Key: 'mlship:stack', Value: plan.stack }],
        }),
      ).toEqual([]);
    const wafModel = loadServiceModel('wafv2');
    if (wafModel) expect(validateShape(wafModel, 'Rule', rateRule(plan.operate!.waf!.name, 500))).toEqual([]);
  });

  it('--apply: everything created with its settings and the stack tag; a second apply changes nothing', async () => {
    const keys = await prepareOperate(plan, { aws, log: (l) => log.push(l) }, 'key-hash-1 "ci";\n');
    expect(keys).toBe('created');
    const first = await ensureOperate(
      plan,
      { aws, log: (l) => log.push(l) },
      { apiKeys: keys, services: [{ name: 'proxy', action: 'created' }] },
    );
    expect(first.dashboard).toBe(plan.operate!.dashboard);
    expect(first.topic?.subscription).toMatch(/^(created|pending)$/);
    expect(first.budget).toEqual({ name: plan.operate!.budget!.name, created: true, changed: [] });
    expect(first.waf).toMatchObject({ created: true, associated: true });
    expect(log.join('\n')).toMatch(/confirmation e-mail/);
    expect(log.join('\n')).not.toContain('key-hash-1');

    // The dashboard: the widgets of the issue, on the stack's load balancer and namespace.
    const dash = await cw().send(new cwSdk.GetDashboardCommand({ DashboardName: first.dashboard }));
    const body = JSON.parse(dash.DashboardBody!) as { widgets: { properties: { title?: string } }[] };
    const titles = body.widgets.map((w) => w.properties.title ?? '').join('\n');
    for (const t of [/latency/i, /5xx/i, /healthy/i, /CPU/i, /memory/i, /GPU/i])
      expect(titles, `no widget matches ${t}`).toMatch(t);
    expect(dash.DashboardBody).toContain(plan.operate!.namespace);
    expect(dash.DashboardBody).toContain(lbArn.split(':loadbalancer/')[1]);

    // The alarms: each with its threshold, notifying the topic.
    const alarms = await cw().send(
      new cwSdk.DescribeAlarmsCommand({ AlarmNamePrefix: plan.operate!.alarmPrefix }),
    );
    const metricAlarms = alarms.MetricAlarms ?? [];
    expect(metricAlarms.map((a) => a.AlarmName).sort()).toEqual([...first.alarms].sort());
    for (const a of metricAlarms) expect(a.AlarmActions, a.AlarmName).toEqual([first.topic!.arn]);
    const byName = (re: RegExp) => metricAlarms.find((a) => re.test(a.AlarmName!));
    const slo = byName(/iris.*p99/);
    expect(slo?.Threshold).toBe(250);
    expect(slo?.ExtendedStatistic ?? JSON.stringify(slo?.Metrics)).toContain('p99');
    const idle = byName(/idle/i);
    expect(idle, 'an alarm for a GPU instance idle for 2 hours').toBeDefined();
    const idlePeriod = idle!.Metrics?.find((m) => m.MetricStat)?.MetricStat?.Period ?? 0;
    expect(idlePeriod * (idle!.EvaluationPeriods ?? 0)).toBe(2 * 3600);
    expect(idle!.Metrics?.find((m) => m.ReturnData)?.Expression).toMatch(/instances > 0.*requests/);
    expect(byName(/unhealthy/i)).toBeDefined();
    expect(metricAlarms.filter((a) => /5xx/i.test(a.AlarmName!)).length).toBeGreaterThanOrEqual(2);

    // The topic and its e-mail subscription.
    const sns = new snsSdk.SNSClient(clientConfig());
    const subs = await sns.send(new snsSdk.ListSubscriptionsByTopicCommand({ TopicArn: first.topic!.arn }));
    expect(subs.Subscriptions?.map((s) => [s.Protocol, s.Endpoint])).toEqual([['email', 'ops@example.com']]);

    // The budget: monthly, on the cost-allocation tag, forecast alerts at 50/80/100% to the address.
    const budgets = new budgetsSdk.BudgetsClient(clientConfig());
    const b = await budgets.send(
      new budgetsSdk.DescribeBudgetCommand({ AccountId: plan.accountId, BudgetName: first.budget!.name }),
    );
    expect(b.Budget).toMatchObject({
      TimeUnit: 'MONTHLY',
      BudgetType: 'COST',
      CostFilters: { TagKeyValue: [`user:mlship:stack$${plan.stack}`] },
    });
    expect(Number(b.Budget?.BudgetLimit?.Amount)).toBe(50);
    const notes = await budgets.send(
      new budgetsSdk.DescribeNotificationsForBudgetCommand({
        AccountId: plan.accountId,
        BudgetName: first.budget!.name,
      }),
    );
    expect(
      (notes.Notifications ?? []).map((n) => [n.NotificationType, n.Threshold, n.ThresholdType]).sort(),
    ).toEqual([
      ['FORECASTED', 100, 'PERCENTAGE'],
      ['FORECASTED', 50, 'PERCENTAGE'],
      ['FORECASTED', 80, 'PERCENTAGE'],
    ]);

    // The web ACL: one rate-based rule at the planned limit, on the load balancer.
    const waf = new wafSdk.WAFV2Client(clientConfig());
    const onLb = await waf.send(new wafSdk.GetWebACLForResourceCommand({ ResourceArn: lbArn }));
    expect(onLb.WebACL?.ARN).toBe(first.waf!.arn);
    expect(onLb.WebACL?.Rules?.[0]?.Statement?.RateBasedStatement).toMatchObject({
      Limit: 500,
      AggregateKeyType: 'IP',
    });
    expect(onLb.WebACL?.Rules?.[0]?.Action).toEqual({ Block: {} });

    // Every resource of the stack carries mlship:stack: the scan by tag finds each.
    const tagged = (await aws.tagging.resourcesTagged('mlship:stack', plan.stack)).map((r) => r.arn);
    // (moto's tagging API does not cover WAF, dashboards or budgets: the ACL's tags are read from WAF.)
    for (const arn of [first.topic!.arn, lbArn]) expect(tagged).toContain(arn);
    for (const name of first.alarms)
      expect(
        tagged.some((a) => a.endsWith(`:alarm:${name}`)),
        name,
      ).toBe(true);
    const aclTags = await waf.send(new wafSdk.ListTagsForResourceCommand({ ResourceARN: first.waf!.arn }));
    expect(aclTags.TagInfoForResource?.TagList).toContainEqual({ Key: 'mlship:stack', Value: plan.stack });
    expect(tagged.some((a) => a.includes(':secret:') && a.includes(`${plan.stack}/api-keys`))).toBe(true);
    const alarmTags = await cw().send(
      new cwSdk.ListTagsForResourceCommand({ ResourceARN: metricAlarms[0]!.AlarmArn! }),
    );
    expect(alarmTags.Tags).toContainEqual({ Key: 'mlship:stack', Value: plan.stack });

    // Again: nothing created, nothing changed, nothing re-associated; the keys unchanged.
    expect(await prepareOperate(plan, { aws, log: (l) => log.push(l) }, 'key-hash-1 "ci";\n')).toBe(
      'unchanged',
    );
    const second = await ensureOperate(plan, { aws, log: (l) => log.push(l) }, { apiKeys: 'unchanged' });
    expect(second.budget).toEqual({ name: first.budget!.name, created: false, changed: [] });
    expect(second.waf).toMatchObject({
      arn: first.waf!.arn,
      created: false,
      changed: false,
      associated: false,
    });
    expect(second.topic?.arn).toBe(first.topic!.arn);
    expect(second.alarms).toEqual(first.alarms);
    expect(second.alarmsRemoved).toEqual([]);
    sns.destroy();
    budgets.destroy();
    waf.destroy();
  });

  it('a changed WAF limit is updated in place; an alarm of a removed service is deleted', async () => {
    const op = plan.operate!;
    const { budget: _kept, ...withoutBudget } = op;
    const changed = {
      ...plan,
      operate: {
        ...withoutBudget,
        waf: { ...op.waf!, rateLimit: 1000 },
        models: op.models.filter((m) => m.container !== 'iris'),
      },
    } as EcsPlanResult;
    const r = await ensureOperate(changed, { aws, log: () => undefined });
    expect(r.waf).toMatchObject({ created: false, changed: true, associated: false });
    expect(r.alarmsRemoved.length).toBeGreaterThan(0);
    expect(r.alarmsRemoved.every((n) => n.includes('iris'))).toBe(true);
    const back = await ensureOperate(plan, { aws, log: () => undefined });
    expect(back.waf).toMatchObject({ changed: true });
    expect(back.alarms.some((n) => n.includes('iris'))).toBe(true);
  });

  it('a changed budget: amount updated (UpdateBudget checked against botocore, moto lacks it), alerts follow', async () => {
    const model = loadServiceModel('budgets');
    const client = new budgetsSdk.BudgetsClient(clientConfig());
    const updates: unknown[] = [];
    const real = client.send.bind(client) as (c: unknown) => Promise<unknown>;
    (client as unknown as { send: (c: unknown) => Promise<unknown> }).send = async (c: unknown) => {
      if (!(c instanceof budgetsSdk.UpdateBudgetCommand)) return real(c);
      updates.push(c.input);
      return {}; // UpdateBudgetResponse has no members.
    };
    const api = createBudgetsApi(budgetsSdk, client, { 'mlship:stack': plan.stack });
    const spec = {
      accountId: plan.accountId,
      name: plan.operate!.budget!.name,
      monthlyUsd: 80,
      tag: { key: 'mlship:stack', value: plan.stack },
      forecastPercents: [80, 100],
      email: 'ops@example.com',
    };
    expect(await api.ensureBudget(spec)).toEqual({
      created: false,
      changed: ['amount and filter', 'removed the 50% alert'],
    });
    expect(updates).toHaveLength(1);
    expect((updates[0] as { NewBudget: { BudgetLimit: unknown } }).NewBudget.BudgetLimit).toEqual({
      Amount: '80.00',
      Unit: 'USD',
    });
    if (model) expect(validateShape(model, 'UpdateBudgetRequest', updates[0])).toEqual([]);
    // Back to the plan's alerts: the 50% one added again, through moto.
    const back = await api.ensureBudget({ ...spec, monthlyUsd: 50, forecastPercents: [50, 80, 100] });
    expect(back.changed).toEqual(['added the 50% alert']);
    client.destroy();
  });

  it('--destroy: all of it removed, the scan lists what is still billed until nothing is', async () => {
    const removed = await destroyOperate(plan, { aws, log: () => undefined });
    expect(removed).toEqual([
      `web ACL ${plan.operate!.waf!.name}`,
      `dashboard ${plan.operate!.dashboard}`,
      expect.stringMatching(/^\d+ alarm\(s\) /),
      `SNS topic ${plan.operate!.topic!.name}`,
      `budget ${plan.operate!.budget!.name}`,
      `secret ${plan.operate!.apiKeys!.secret} (recoverable for 7 days)`,
    ]);
    const dashboards = await cw().send(new cwSdk.ListDashboardsCommand({}));
    expect(dashboards.DashboardEntries ?? []).toEqual([]);
    expect(await aws.cloudwatch.alarmNames(plan.operate!.alarmPrefix)).toEqual([]);
    // Twice is harmless: nothing left to remove.
    expect(await destroyOperate(plan, { aws, log: () => undefined })).toEqual([]);

    // The load balancer is destroyEcs's (deploy-ecs.test.ts): while it is there, the scan names it.
    const deletedSecrets = [plan.operate!.apiKeys!.secret];
    const before = await scanLeftovers(
      plan,
      { aws, log: () => undefined },
      { deleteData: false, deletedSecrets },
    );
    expect(before.billed.some((a) => a === lbArn)).toBe(true);
    const elb = new elbSdk.ElasticLoadBalancingV2Client(clientConfig());
    await elb.send(new elbSdk.DeleteLoadBalancerCommand({ LoadBalancerArn: lbArn }));
    const groups = await elb.send(new elbSdk.DescribeTargetGroupsCommand({}));
    for (const g of groups.TargetGroups ?? [])
      await elb.send(new elbSdk.DeleteTargetGroupCommand({ TargetGroupArn: g.TargetGroupArn! }));
    elb.destroy();
    const after = await scanLeftovers(
      plan,
      { aws, log: () => undefined },
      { deleteData: false, deletedSecrets },
    );
    expect(after.billed).toEqual([]);
    // The keys secret is still listed while it can be recovered (7 days), and costs nothing.
    for (const a of after.free) expect(a).toMatch(/:secret:.*api-keys/);
  });
});
