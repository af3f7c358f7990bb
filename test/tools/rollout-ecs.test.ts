// `mlship rollout --target ecs` against moto's real AWS APIs, through the adapters the CLI
// uses: the candidate's service, revision and target groups; the weighted listener rule
// stepped 90/10 → 50/50 → 0/100 and restored; the alarms with their thresholds, wired into
// both services' deploymentConfiguration.alarms; a rollback; a promotion that updates the
// stable service once (no second rollout); and --destroy removing the candidate's pieces,
// checked by a tag scan. moto has no load balancer metrics: `status` here sees none (hold);
// the comparison from recorded metric answers is in test/unit/rollout/ecs-rollout.test.ts.

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as cwSdk from '@aws-sdk/client-cloudwatch';
import * as ec2Sdk from '@aws-sdk/client-ec2';
import * as ecsSdk from '@aws-sdk/client-ecs';
import * as elbSdk from '@aws-sdk/client-elastic-load-balancing-v2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceInput } from '../../src/adapters/aws/create-service-input.js';
import { ruleInput } from '../../src/adapters/aws/elb-api.js';
import type { AwsDeployApis } from '../../src/core/deploy/aws-apis.js';
import { destroyEcs } from '../../src/core/deploy/destroy.js';
import { destroyOperate, scanLeftovers } from '../../src/core/deploy/operate.js';
import { type EcsPlanResult, loadBalancerNames } from '../../src/core/deploy/plan.js';
import type { EcsRolloutDeps } from '../../src/core/rollout/ecs.js';
import { rolloutFromFlags } from '../../src/core/rollout/options.js';
import { readRollouts } from '../../src/core/rollout/state.js';
import { watchRollout } from '../../src/core/rollout/watch.js';
import { fakeClock } from '../../src/io/clock.js';
import { loadServiceModel, validateShape } from '../helpers/aws-model.js';
import { runCli } from '../helpers/cli-process.js';
import { type Moto, startMoto } from '../helpers/moto.js';
import { ecsRolloutOnMoto, planOnMoto } from '../helpers/moto-stack.js';

const REGION = 'eu-west-1';
const moto: Moto | undefined = await startMoto();
const CANDIDATE_IMAGE = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/ro-demo/iris:v2';

const PROJECT = `# a model behind the stack's proxy, with a latency objective
version: 1
name: ro-demo
services:
  iris:
    image: registry.example/iris:1.4.0
    slo_p99_ms: 250
proxy: {}
aws:
  region: eu-west-1
  account_id: "123456789012"
`;

describe.runIf(moto)('rollout --target ecs (moto)', () => {
  let plan: EcsPlanResult;
  let aws: AwsDeployApis;
  let dir: string;
  let listenerArn: string;
  let albGroup: string;
  let taskGroup: string;
  const log: string[] = [];
  const waited: string[] = [];
  const config = () => ({
    region: REGION,
    endpoint: moto!.endpoint,
    credentials: {
      accessKeyId: moto!.env.AWS_ACCESS_KEY_ID!,
      secretAccessKey: moto!.env.AWS_SECRET_ACCESS_KEY!,
    },
  });
  const ecs = () => new ecsSdk.ECSClient(config());
  const elb = () => new elbSdk.ElasticLoadBalancingV2Client(config());
  const cw = () => new cwSdk.CloudWatchClient(config());
  const ec2 = () => new ec2Sdk.EC2Client(config());
  const clock = fakeClock(Date.parse('2026-12-02T12:00:00Z'));

  const target = (
    metrics?: Record<string, number[]>,
    ecsApi: EcsRolloutDeps['ecs'] = aws.ecs,
    failOn?: string,
  ) =>
    ecsRolloutOnMoto({
      plan,
      aws,
      dir,
      clock,
      waited,
      failOn,
      deps: {
        ecs: ecsApi,
        // moto has no load balancer metrics: a test may answer GetMetricData from a file.
        ...(metrics ? { cloudwatch: { ...aws.cloudwatch, metricData: async () => metrics } } : {}),
        log: (l) => log.push(l),
      },
    });
  const canary = (weight: number) =>
    rolloutFromFlags(
      'iris',
      { canary: String(weight), image: CANDIDATE_IMAGE, env: ['BATCH_MAX_SIZE=16'] },
      new Date(clock.now()),
    );
  const ruleWeights = async () => {
    const rules =
      (await elb().send(new elbSdk.DescribeRulesCommand({ ListenerArn: listenerArn }))).Rules ?? [];
    return rules
      .filter((r) => !r.IsDefault)
      .map((r) => ({
        priority: r.Priority,
        header: r.Conditions?.find((c) => c.Field === 'http-header')?.HttpHeaderConfig?.Values?.[0],
        weights: (r.Actions?.[0]?.ForwardConfig?.TargetGroups ?? []).map(
          (t) => `${t.TargetGroupArn!.split(':targetgroup/')[1]!.split('/')[0]}=${t.Weight}`,
        ),
      }));
  };
  const service = async (name: string) =>
    (
      await ecs().send(new ecsSdk.DescribeServicesCommand({ cluster: plan.stack, services: [name] }))
    ).services?.find((s) => s.status === 'ACTIVE');

  beforeAll(async () => {
    Object.assign(process.env, moto!.env);
    dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-rollout-ecs-'));
    writeFileSync(path.join(dir, 'mlship.yaml'), PROJECT);
    ({ plan, aws } = await planOnMoto(moto!, path.join(dir, 'mlship.yaml'), REGION));
    // The deployed stack as --apply leaves it: cluster, load balancer with the proxy's listener,
    // the iris service (Service Connect only, no target group of its own).
    const ec2Client = new ec2Sdk.EC2Client(config());
    const net = await ec2Client.send(
      new ec2Sdk.DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }),
    );
    const subnets = (net.Subnets ?? []).slice(0, 2).map((s) => s.SubnetId!);
    const vpcId = net.Subnets![0]!.VpcId!;
    albGroup = (await aws.ec2.ensureSecurityGroup({ vpcId, name: 'ro-demo-alb', description: 'alb' })).id;
    taskGroup = (await aws.ec2.ensureSecurityGroup({ vpcId, name: 'ro-demo-tasks', description: 'tasks' }))
      .id;
    const lb = await aws.elb.ensureLoadBalancer({
      name: loadBalancerNames(plan.stack).loadBalancer,
      subnets,
      securityGroups: [albGroup],
    });
    const proxyTg = await aws.elb.ensureTargetGroup({
      name: loadBalancerNames(plan.stack).targetGroup('proxy', 80),
      vpcId: net.Subnets![0]!.VpcId!,
      port: 80,
      healthCheckPath: '/healthz',
      healthCheckIntervalSeconds: 5,
    });
    listenerArn = (
      await aws.elb.ensureListener({
        loadBalancerArn: lb.arn,
        port: 80,
        protocol: 'HTTP',
        targetGroupArn: proxyTg.arn,
      })
    ).arn;
    await aws.ecs.ensureCluster(plan.stack, plan.stack);
    const td = plan.translation.taskDefinitions.find((t) => t.family === 'ro-demo-iris')!;
    const registered = await aws.ecs.registerTaskDefinition(td);
    await aws.ecs.createService({
      cluster: plan.stack,
      serviceName: 'iris',
      taskDefinition: registered.arn,
      launchType: 'FARGATE',
      desiredCount: 2,
      subnets,
      securityGroups: [taskGroup],
      assignPublicIp: true,
      serviceConnect: { namespace: plan.stack, services: [] },
    });
    ec2Client.destroy();
  });
  afterAll(async () => {
    aws?.destroy();
    await moto?.stop();
  });

  it("the requests moto takes loosely are valid for botocore's models: the rule, the services' alarms", () => {
    const model = loadServiceModel('elbv2');
    if (model)
      expect(
        validateShape(
          model,
          'CreateRuleInput',
          ruleInput({
            listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/ro-demo/1/2',
            priority: 102,
            paths: ['/api/iris/*'],
            header: { name: 'X-Model-Version', value: 'candidate' },
            rewrite: { regex: '^/api/iris/(.*)$', replace: '/$1' },
            weights: [
              {
                targetGroupArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/a/1',
                weight: 90,
              },
              {
                targetGroupArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/b/2',
                weight: 10,
              },
            ],
            tags: { 'mlship:rollout': 'iris' },
          }),
        ),
      ).toEqual([]);
    const candidateService = createServiceInput({
      cluster: 'ro-demo',
      serviceName: 'iris-candidate',
      taskDefinition: 'ro-demo-iris:2',
      launchType: 'FARGATE',
      desiredCount: 1,
      subnets: ['subnet-1'],
      securityGroups: [],
      assignPublicIp: true,
      deploymentAlarms: ['mlship-ro-demo-rollout-iris-candidate-5xx'],
    });
    expect(candidateService.deploymentConfiguration?.alarms).toEqual({
      alarmNames: ['mlship-ro-demo-rollout-iris-candidate-5xx'],
      enable: true,
      rollback: true,
    });
    const ecsModel = loadServiceModel('ecs');
    if (ecsModel) expect(validateShape(ecsModel, 'CreateServiceRequest', candidateService)).toEqual([]);
  });

  it('a candidate that never becomes stable: everything start created is undone, the stable service as it was', async () => {
    const before = await service('iris');
    const failing = ecsRolloutOnMoto({
      plan,
      aws,
      dir,
      clock,
      waited,
      stateFile: path.join(dir, 'deploy', 'failed.json'),
      deps: {
        log: (l) => log.push(l),
        waitStable: async () => {
          throw new Error('service iris-candidate: deployment failed, the circuit breaker stopped it');
        },
      },
    });
    await expect(failing.start(canary(10))).rejects.toThrow(/circuit breaker/);
    expect(await service('iris-candidate')).toBeUndefined();
    expect(await aws.cloudwatch.alarmNames('mlship-ro-demo-rollout-')).toEqual([]);
    expect(await aws.elb.targetGroupArns(['ro-demo-iris-c-8080'])).toEqual({});
    expect((await aws.ecs.activeRevisions('ro-demo-iris')).map((a) => a.split('/').pop())).toEqual([
      'ro-demo-iris:1',
    ]);
    const after = await service('iris');
    expect(after?.taskDefinition).toBe(before?.taskDefinition);
    expect(after?.deploymentConfiguration?.alarms?.alarmNames ?? []).toEqual([]);
    // The stable service keeps its (new) rollout group: removing it would be a deployment.
    expect(Object.keys(await aws.elb.targetGroupArns(['ro-demo-iris-s-8080']))).toEqual([
      'ro-demo-iris-s-8080',
    ]);
    expect(existsSync(path.join(dir, 'deploy', 'failed.json'))).toBe(false);
  });

  it('start: the candidate service (the tasks its share needs), its revision and target group, the alarms, the rule at 90/10', async () => {
    await target().start(canary(10));
    const candidate = await service('iris-candidate');
    // 10 % of the stable service's 2 tasks: 1 task, and what it costs while the rollout lasts.
    expect(candidate?.desiredCount).toBe(1);
    expect(log.join('\n')).toMatch(
      /created service iris-candidate, 1 task \(10 % of iris's 2\), about \$0\.\d{3} an hour \(1 × [\d.]+ vCPU, [\d.]+ GB on Fargate; list prices of \d{4}-\d\d-\d\d, [a-z]+-[a-z]+-\d\)/,
    );
    const td = (
      await ecs().send(
        new ecsSdk.DescribeTaskDefinitionCommand({ taskDefinition: candidate!.taskDefinition! }),
      )
    ).taskDefinition!;
    expect(td.family).toBe('ro-demo-iris');
    const c = td.containerDefinitions!.find((x) => x.name === 'iris')!;
    expect(c.image).toBe(CANDIDATE_IMAGE);
    expect(c.environment).toEqual(
      expect.arrayContaining([
        { name: 'BATCH_MAX_SIZE', value: '16' },
        { name: 'MLSHIP_MODEL_VERSION', value: 'candidate' },
      ]),
    );
    expect(candidate!.loadBalancers?.map((l) => [l.containerName, l.containerPort])).toEqual([
      ['iris', 8080],
    ]);
    const stable = await service('iris');
    expect(
      stable!.loadBalancers?.map((l) => l.targetGroupArn!.split(':targetgroup/')[1]!.split('/')[0]),
    ).toEqual(['ro-demo-iris-s-8080']);
    // Both services roll back on their own alarms, with no mlship process watching.
    expect(stable!.deploymentConfiguration?.alarms).toEqual({
      alarmNames: [
        'mlship-ro-demo-rollout-iris-stable-5xx',
        'mlship-ro-demo-rollout-iris-stable-p99-above-slo',
      ],
      enable: true,
      rollback: true,
    });
    // moto's CreateService reads no deploymentConfiguration (moto 5.2: responses.create_service),
    // so the candidate's alarms are checked in the request, against botocore's model, above.
    const alarms = (
      await cw().send(new cwSdk.DescribeAlarmsCommand({ AlarmNamePrefix: 'mlship-ro-demo-rollout-iris-' }))
    ).MetricAlarms!;
    expect(alarms).toHaveLength(4);
    const slo = alarms.find((a) => a.AlarmName === 'mlship-ro-demo-rollout-iris-candidate-p99-above-slo')!;
    expect([slo.Threshold, slo.ExtendedStatistic, slo.MetricName, slo.Namespace]).toEqual([
      0.25,
      'p99',
      'TargetResponseTime',
      'AWS/ApplicationELB',
    ]);
    expect(slo.Dimensions?.find((d) => d.Name === 'TargetGroup')?.Value).toMatch(
      /^targetgroup\/ro-demo-iris-c-8080\//,
    );
    const errors = alarms.find((a) => a.AlarmName === 'mlship-ro-demo-rollout-iris-stable-5xx')!;
    expect(errors.Threshold).toBe(5);
    expect(errors.Metrics?.find((m) => m.ReturnData)?.Expression).toContain('errors');
    // The rules: the header override first, then the weighted split, on the proxy's listener.
    expect(await ruleWeights()).toEqual([
      { priority: '100', header: 'candidate', weights: ['ro-demo-iris-c-8080=1'] },
      { priority: '101', header: undefined, weights: ['ro-demo-iris-s-8080=90', 'ro-demo-iris-c-8080=10'] },
    ]);
    expect(waited).toEqual([`iris-candidate ${candidate!.taskDefinition!.split('/').pop()}`]);
    // The load balancer may reach the model's port in the tasks' security group.
    const rules = await ec2().send(new ec2Sdk.DescribeSecurityGroupsCommand({ GroupIds: [taskGroup] }));
    expect(
      rules.SecurityGroups![0]!.IpPermissions?.some(
        (p) => p.FromPort === 8080 && p.UserIdGroupPairs?.some((g) => g.GroupId === albGroup),
      ),
    ).toBe(true);
  });

  it('the weights are stepped in place (50/50, 0/100), the candidate scaled before it takes more; status holds without metrics', async () => {
    const t = target();
    const before = (await ruleWeights())[1]!;
    await t.setWeight(50);
    expect((await ruleWeights())[1]!.weights).toEqual(['ro-demo-iris-s-8080=50', 'ro-demo-iris-c-8080=50']);
    expect((await service('iris-candidate'))?.desiredCount).toBe(1);
    const from = log.length;
    const waits = waited.length;
    await t.setWeight(100);
    const after = (await ruleWeights())[1]!;
    expect(after.weights).toEqual(['ro-demo-iris-s-8080=0', 'ro-demo-iris-c-8080=100']);
    // Its second task first, waited for, then every request.
    expect((await service('iris-candidate'))?.desiredCount).toBe(2);
    expect(waited.slice(waits)).toEqual([
      `iris-candidate ${(await service('iris-candidate'))!.taskDefinition!.split('/').pop()}`,
    ]);
    expect(log.slice(from)).toEqual([
      'iris-candidate: 1 → 2 tasks before it takes 100 % of the requests; waiting until it is stable',
      'listener 80: /api/iris/* → 0/100',
    ]);
    expect(after.priority).toBe(before.priority);
    const s = await t.status();
    expect(s.verdict.decision).toBe('hold');
    expect(s.comparison.candidate.requests).toBe(0);
    // moto starts no task of a Fargate service: its count is moto's, the desired count ours.
    expect(s.candidateHealth).toMatch(/^running \(\d\/2\)$/);
  });

  it('rollback: weights back to 100/0, the candidate at 0 tasks, its revision deregistered', async () => {
    await target().rollback('5xx rate 20.00 % vs 0.00 %');
    expect((await ruleWeights())[1]!.weights).toEqual(['ro-demo-iris-s-8080=100', 'ro-demo-iris-c-8080=0']);
    expect((await service('iris-candidate'))?.desiredCount).toBe(0);
    const { rollouts } = await readRollouts(path.join(dir, 'deploy', 'ecs-rollouts.json'));
    expect(rollouts.iris?.status).toBe('rolled-back');
    expect(rollouts.iris?.history.at(-1)).toMatchObject({
      action: 'rollback',
      reason: '5xx rate 20.00 % vs 0.00 %',
    });
    // Only the stable revision stays ACTIVE: the next deploy compares with it.
    const active = await aws.ecs.activeRevisions('ro-demo-iris');
    expect(active.map((a) => a.split('/').pop())).toEqual(['ro-demo-iris:1']);
    await target().rollback('done', { destroy: true });
    expect(await service('iris-candidate')).toBeUndefined();
    expect(await ruleWeights()).toEqual([]);
    // Once removed, a rollback has nothing left to change (and does not fail on what is gone).
    await target().rollback('again');
    const after = await readRollouts(path.join(dir, 'deploy', 'ecs-rollouts.json'));
    expect(after.rollouts.iris?.history.map((h) => h.action)).toEqual([
      'start',
      'step',
      'step',
      'rollback',
      'destroy',
    ]);
  });

  it('watch: a candidate answering 5 % 5xx is rolled back at the first look (weights 100/0, 0 tasks)', async () => {
    const answers = JSON.parse(
      readFileSync('fixtures/rollout/recorded/metric-data-canary-5xx.json', 'utf8'),
    ) as {
      GetMetricData: { MetricDataResults: { Id: string; Values: number[] }[] };
    };
    const values = Object.fromEntries(answers.GetMetricData.MetricDataResults.map((r) => [r.Id, r.Values]));
    await target().start(canary(10));
    const lines: string[] = [];
    const watched = watchRollout(
      target(values),
      { steps: [10, 50, 100], bakeMs: 600_000, intervalMs: 15_000, maxHoldMs: 3_600_000 },
      { clock, log: (l) => lines.push(l) },
    );
    await expect(watched).rejects.toMatchObject({ code: 'ROLLOUT_ROLLED_BACK' });
    await expect(watched).rejects.toThrow(/rolled back iris: 5xx rate 5\.00 % vs 0\.10 %/);
    expect(lines.join('\n')).toMatch(/rolling back iris: 5xx rate/);
    expect((await ruleWeights())[1]!.weights).toEqual(['ro-demo-iris-s-8080=100', 'ro-demo-iris-c-8080=0']);
    expect((await service('iris-candidate'))?.desiredCount).toBe(0);
    await target().rollback('cleaned up', { destroy: true });
    expect(await ruleWeights()).toEqual([]);
  });

  it('a promotion whose stable deployment fails: the error, every request still on the candidate, the stable revision it registered deregistered', async () => {
    await target().start(canary(10));
    const stableTd = (await service('iris'))!.taskDefinition!;
    const candidateTd = (await service('iris-candidate'))!.taskDefinition!;
    await expect(target(undefined, aws.ecs, 'iris').promote()).rejects.toThrow(/the deployment failed/);
    const tried = (await service('iris'))!.taskDefinition!;
    expect(tried).not.toBe(stableTd);
    // (Deregistered: the adapter reads only active revisions.)
    expect(await aws.ecs.latestTaskDefinition(tried)).toBeUndefined();
    expect(await aws.ecs.latestTaskDefinition(candidateTd)).toBeDefined();
    expect((await ruleWeights())[1]!.weights).toEqual(['ro-demo-iris-s-8080=0', 'ro-demo-iris-c-8080=100']);
    const { rollouts } = await readRollouts(path.join(dir, 'deploy', 'ecs-rollouts.json'));
    expect(rollouts.iris?.status).toBe('running');
    // What ECS's circuit breaker does (moto's service keeps what it was asked), then the rollback.
    await aws.ecs.updateService({
      cluster: 'ro-demo',
      service: 'iris',
      taskDefinition: stableTd,
      forceNewDeployment: false,
    });
    await target().rollback('promotion failed', { destroy: true });
    expect(await ruleWeights()).toEqual([]);
  });

  it("promote: the stable service runs the candidate's version (as a stable revision) after one update; the candidate is gone", async () => {
    await target().start(canary(10));
    const stableBefore = (await service('iris'))!;
    const candidateTd = (await service('iris-candidate'))!.taskDefinition!;
    const was = await aws.ecs.latestTaskDefinition(candidateTd);
    // What promote asks ECS to change, counted at the adapter (moto keeps one deployment whatever).
    const updates: Parameters<AwsDeployApis['ecs']['updateService']>[0][] = [];
    const e = aws.ecs;
    const counting: EcsRolloutDeps['ecs'] = {
      describeService: (c, n) => e.describeService(c, n),
      describeServices: (c, n) => e.describeServices(c, n),
      latestTaskDefinition: (f) => e.latestTaskDefinition(f),
      registerTaskDefinition: (i) => e.registerTaskDefinition(i),
      deregisterTaskDefinition: (a) => e.deregisterTaskDefinition(a),
      createService: (i) => e.createService(i),
      scaleService: (c, n, d) => e.scaleService(c, n, d),
      deleteService: (c, n) => e.deleteService(c, n),
      updateService: async (input) => {
        updates.push(input);
        await e.updateService(input);
      },
    };
    const from = log.length;
    const promoted = await target(undefined, counting).promote();
    // Every request goes to the candidate while the stable service deploys: all its tasks first.
    expect(log.slice(from, from + 2)).toEqual([
      'iris-candidate: 1 → 2 tasks before it takes 100 % of the requests; waiting until it is stable',
      'listener 80: /api/iris/* → 0/100',
    ]);
    const stableAfter = (await service('iris'))!;
    const promotedTd = stableAfter.taskDefinition!;
    expect(updates).toEqual([
      { cluster: 'ro-demo', service: 'iris', taskDefinition: promotedTd, forceNewDeployment: false },
    ]);
    // The candidate's version as a stable revision: its image, no longer labelled candidate (its
    // metrics would feed the candidate's alarms), logging under the stable prefix; the candidate's
    // own revision deregistered.
    expect(promotedTd).not.toBe(candidateTd);
    const runs = await aws.ecs.latestTaskDefinition(promotedTd);
    const model = runs!.containerDefinitions!.find((c) => c.name === 'iris')!;
    const before = was!.containerDefinitions!.find((c) => c.name === 'iris')!;
    expect(model.image).toBe(CANDIDATE_IMAGE);
    expect(before.environment).toContainEqual({ name: 'MLSHIP_MODEL_VERSION', value: 'candidate' });
    expect(model.environment).toEqual(before.environment!.filter((e) => e.name !== 'MLSHIP_MODEL_VERSION'));
    expect(model.logConfiguration?.options?.['awslogs-stream-prefix']).toBe('iris');
    expect(before.logConfiguration?.options?.['awslogs-stream-prefix']).toBe('iris-candidate');
    expect(await aws.ecs.latestTaskDefinition(candidateTd)).toBeUndefined(); // deregistered
    expect(promoted.stableNow).toBe(`${promotedTd.split('/').pop()} (${CANDIDATE_IMAGE})`);
    // The same service (not a second rollout): its ARN and creation time, one deployment.
    expect(stableAfter.serviceArn).toBe(stableBefore.serviceArn);
    expect(stableAfter.createdAt).toEqual(stableBefore.createdAt);
    expect(stableAfter.deployments).toHaveLength(1);
    expect(stableAfter.deploymentConfiguration?.alarms?.alarmNames).toHaveLength(2);
    expect(await service('iris-candidate')).toBeUndefined();
    expect(await ruleWeights()).toEqual([]);
    const groups = await aws.elb.targetGroupArns(['ro-demo-iris-s-8080', 'ro-demo-iris-c-8080']);
    expect(Object.keys(groups)).toEqual(['ro-demo-iris-s-8080']);
    const alarms = await aws.cloudwatch.alarmNames('mlship-ro-demo-rollout-iris-');
    expect(alarms.sort()).toEqual([
      'mlship-ro-demo-rollout-iris-stable-5xx',
      'mlship-ro-demo-rollout-iris-stable-p99-above-slo',
    ]);
    // mlship.yaml names the promoted image: the next deploy keeps it.
    expect(readFileSync(path.join(dir, 'mlship.yaml'), 'utf8')).toContain(`image: ${CANDIDATE_IMAGE}`);
    expect(readFileSync(path.join(dir, 'mlship.yaml'), 'utf8')).toContain('# a model behind');
    expect(promoted.configChanged).toBe(path.join(dir, 'mlship.yaml'));
    expect(waited.at(-1)).toBe(`iris ${promotedTd.split('/').pop()}`);
    await expect(target().rollback('too late')).rejects.toThrow(/was promoted: there is no candidate/);
  });

  it('the CLI: status and promote --to on ECS, deploy --apply refused meanwhile, --shadow-cpus refused, rollback by hand', async () => {
    await target().start(canary(10));
    const cli = (...args: string[]) =>
      runCli(args, { cwd: dir, env: { ...moto!.env, NO_COLOR: '1', CI: 'true' } });
    const ecsFlags = ['--target', 'ecs', '--endpoint-url', moto!.endpoint];
    const status = await cli('rollout', 'status', 'iris', ...ecsFlags, '--json');
    expect(status.code, status.stderr).toBe(0);
    const report = JSON.parse(status.stdout) as {
      verdict: { decision: string };
      rollout: { weight: number };
    };
    expect([report.verdict.decision, report.rollout.weight]).toEqual(['hold', 10]);
    const human = await cli('rollout', 'status', 'iris', ...ecsFlags);
    expect(human.stdout).toMatch(/verdict: hold/);
    expect(human.stdout).toMatch(/note: from the load balancer's metrics per target group/);
    const step = await cli('rollout', 'promote', 'iris', '--to', '50', ...ecsFlags);
    expect(step.code, step.stderr).toBe(0);
    expect((await ruleWeights())[1]!.weights).toEqual(['ro-demo-iris-s-8080=50', 'ro-demo-iris-c-8080=50']);
    const apply = await cli('deploy', 'ecs', '--apply', '--tag', 't1', '--endpoint-url', moto!.endpoint);
    expect(apply.code).toBe(2);
    expect(apply.stderr).toMatch(/a rollout of iris is running on ECS/);
    const capped = await cli(
      'rollout',
      'start',
      'iris',
      '--shadow',
      '--shadow-cpus',
      '0.5',
      '--image',
      CANDIDATE_IMAGE,
      ...ecsFlags,
    );
    expect(capped.code).toBe(2);
    expect(capped.stderr).toMatch(/--shadow-cpus is for the local stack/);
    expect(capped.stderr).not.toMatch(/\n\s+at /);
    const back = await cli('rollout', 'rollback', 'iris', '--reason', 'by hand', ...ecsFlags);
    expect(back.code, back.stderr).toBe(0);
    expect((await ruleWeights())[1]!.weights).toEqual(['ro-demo-iris-s-8080=100', 'ro-demo-iris-c-8080=0']);
    expect((await service('iris-candidate'))?.desiredCount).toBe(0);
    await target().rollback('cleaned up', { destroy: true });
  });

  it("--destroy removes a running rollout's candidate service, target groups, rules and alarms", async () => {
    await target().start(canary(10));
    expect(await service('iris-candidate')).toBeDefined();
    const deps = { aws, log: (l: string) => log.push(l) };
    await destroyOperate(plan, deps);
    const done = await destroyEcs(plan, deps, {
      waitTimeoutSeconds: 1,
      pollSeconds: 1,
      securityGroups: [taskGroup],
    });
    expect(done.removed).toContain('service iris-candidate');
    expect(await service('iris-candidate')).toBeUndefined();
    expect(await aws.elb.targetGroupArns(['ro-demo-iris-s-8080', 'ro-demo-iris-c-8080'])).toEqual({});
    expect(await aws.cloudwatch.alarmNames('mlship-ro-demo-')).toEqual([]);
    const left = await ec2().send(new ec2Sdk.DescribeSecurityGroupsCommand({ GroupIds: [taskGroup] }));
    expect(left.SecurityGroups![0]!.IpPermissions?.filter((p) => p.FromPort === 8080)).toEqual([]);
    const scan = await scanLeftovers(plan, deps, { deleteData: false });
    const rolloutLeft = scan.billed.filter((a) => /iris-(candidate|[sc]-8080)|listener-rule|rollout/.test(a));
    expect(rolloutLeft).toEqual([]);
  });
});
