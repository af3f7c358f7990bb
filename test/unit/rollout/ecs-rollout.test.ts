// The decisions of a rollout on ECS, without AWS: where its rules go and what they match, what
// it refuses, the candidate's revision, the weights of each step, the alarms both services roll
// back on (checked against botocore's model), the GetMetricData request, and the comparison and
// verdict from answers in GetMetricData's response shape (moto has no load balancer metrics:
// the values are chosen, each file says so; the shape is checked against botocore's model).

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TaskDefinition } from '@aws-sdk/client-ecs';
import { describe, expect, it } from 'vitest';
import { alarmInput, metricDataInput } from '../../../src/adapters/aws/cloudwatch-api.js';
import { rolloutTargets } from '../../../src/core/deploy/apply.js';
import { type EcsPlanResult, planEcs } from '../../../src/core/deploy/plan.js';
import { candidateHealth } from '../../../src/core/rollout/ecs.js';
import {
  candidateMetricAlarms,
  candidateTaskDefinition,
  compareFromMetrics,
  ecsRolloutLayout,
  metricQueries,
  promotedTaskDefinition,
  proxyRouteReasons,
  refuseOnEcs,
  sideAlarms,
  weightsAt,
} from '../../../src/core/rollout/ecs-plan.js';
import { rolloutFromFlags } from '../../../src/core/rollout/options.js';
import { DEFAULT_GATES, verdict } from '../../../src/core/rollout/verdict.js';
import { UsageError } from '../../../src/io/errors.js';
import { loadServiceModel, validateShape } from '../../helpers/aws-model.js';

const root = path.join(os.tmpdir(), `mlship-rollout-ecs-unit-${process.pid}`);
async function planOf(name: string, yaml: string): Promise<EcsPlanResult> {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'mlship.yaml'), yaml);
  return planEcs({
    file: path.join(dir, 'mlship.yaml'),
    imageTag: 'abc123',
    force: false,
    writeFiles: false,
    region: 'eu-west-1',
    accountId: '123456789012',
  });
}
const project = (extra = '', proxy = 'proxy: {}') => `version: 1
name: ro-demo
services:
  iris:
    image: registry.example/iris:1.4.0
    slo_p99_ms: 250
  llm:
    image: registry.example/llm:0.9
    gpu: true
${extra}${proxy}
`;
const LB = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/ro-demo/50dc6c495c0c9188';
const TG = (n: string) =>
  `arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/${n}/73e2d6bc24d8a067`;
const recorded = (name: string) =>
  JSON.parse(readFileSync(`fixtures/rollout/recorded/metric-data-canary-${name}.json`, 'utf8')) as {
    window: { candidatePercent: number };
    GetMetricData: { MetricDataResults: { Id: string; Values: number[] }[] };
  };
/** Values by query id, as the adapter returns them. */
const valuesOf = (name: string) =>
  Object.fromEntries(recorded(name).GetMetricData.MetricDataResults.map((r) => [r.Id, r.Values]));

describe('rollout on ECS: layout and refusals', () => {
  it('behind the proxy: a rule for /api/<service>/* that strips the prefix, on the proxy listener', async () => {
    const plan = await planOf('proxy', project());
    const l = ecsRolloutLayout(plan, 'iris');
    expect(l).toMatchObject({
      cluster: 'ro-demo',
      candidateService: 'iris-candidate',
      container: 'iris',
      port: 8080,
      listenerPort: 80,
      paths: ['/api/iris/*'],
      rewrite: { regex: '^/api/iris/(.*)$', replace: '/$1' },
      targetGroups: { stable: 'ro-demo-iris-s-8080', candidate: 'ro-demo-iris-c-8080' },
      sloP99Ms: 250,
      alarmPrefix: 'mlship-ro-demo-rollout-iris-',
    });
    // Two rules per service (header override, split), each service its own pair.
    expect(l.priority % 2).toBe(0);
    expect(new RegExp(l.rewrite!.regex).exec('/api/iris/predict')?.[1]).toBe('predict');
  });

  it('refuses what it cannot route: an unknown service, a GPU service, no load balancer', async () => {
    const plan = await planOf('proxy2', project());
    expect(() => ecsRolloutLayout(plan, 'nope')).toThrow(/no model service nope.*/);
    expect(() => ecsRolloutLayout(plan, 'llm')).toThrow(/GPU instances/);
    const bare = await planOf('bare', project('', ''));
    expect(() => ecsRolloutLayout(bare, 'iris')).toThrow(/no load balancer/);
    expect(ecsRolloutLayout(plan, 'iris')).toMatchObject({
      behindProxy: true,
      apiKeys: false,
      rateLimit: false,
    });
    const keys = await planOf('keys', project('', 'proxy:\n  auth: api_key'));
    expect(ecsRolloutLayout(keys, 'iris')).toMatchObject({
      behindProxy: true,
      apiKeys: true,
      rateLimit: false,
    });
    const limited = await planOf(
      'limited',
      project('', 'proxy:\n  rate_limit:\n    requests_per_second: 5\n    burst: 10'),
    );
    expect(ecsRolloutLayout(limited, 'iris')).toMatchObject({ apiKeys: false, rateLimit: true });
  });

  it('the proxy routes what the load balancer cannot: a shadow, a mirror, a sticky split, any rollout behind API keys; --shadow-cpus is refused', () => {
    const now = new Date('2026-12-02T10:00:00Z');
    const r = (flags: Parameters<typeof rolloutFromFlags>[1]) => rolloutFromFlags('iris', flags, now);
    const L = { service: 'iris', behindProxy: true, apiKeys: false, rateLimit: false };
    expect(proxyRouteReasons(r({ canary: '10', image: 'x:1' }), L)).toEqual([]);
    expect(proxyRouteReasons(r({ ab: '50', image: 'x:1' }), L)).toEqual([]);
    expect(proxyRouteReasons(r({ shadow: true, image: 'x:1' }), L)).toEqual([
      'a shadow: the load balancer cannot mirror',
    ]);
    expect(proxyRouteReasons(r({ canary: '10', mirror: true, image: 'x:1' }), L)).toEqual([
      '--mirror: the load balancer cannot mirror',
    ]);
    expect(proxyRouteReasons(r({ ab: '50', stickyCookie: 'uid', image: 'x:1' }), L)).toEqual([
      '--sticky-cookie: the load balancer cannot keep a cookie of yours on one version',
    ]);
    expect(
      proxyRouteReasons(r({ canary: '10', stickyHeader: 'X-User-Id', image: 'x:1' }), {
        ...L,
        apiKeys: true,
      }),
    ).toEqual([
      '--sticky-header: the load balancer cannot keep a header of yours on one version',
      'the proxy checks API keys, which a load balancer rule would pass by',
    ]);
    expect(proxyRouteReasons(r({ canary: '10', image: 'x:1' }), { ...L, rateLimit: true })).toEqual([
      "the proxy limits each client's request rate, which a load balancer rule would pass by",
    ]);
    // A service on a listener of its own: a weighted split only.
    const own = { ...L, behindProxy: false };
    expect(proxyRouteReasons(r({ canary: '10', image: 'x:1' }), own)).toEqual([]);
    expect(() => proxyRouteReasons(r({ canary: '10', mirror: true, image: 'x:1' }), own)).toThrow(
      /listener of its own, not behind the stack's proxy/,
    );
    // The shadow is its own ECS service on its own CPUs: the local cap means nothing there.
    expect(() => refuseOnEcs(r({ shadow: true, shadowCpus: '0.5', image: 'x:1' }))).toThrow(UsageError);
    expect(() => refuseOnEcs(r({ canary: '10', mirror: true, image: 'x:1' }))).not.toThrow();
  });
});

describe('rollout on ECS: what it sends', () => {
  it("the candidate's revision: the running one with the new image and environment, registrable", async () => {
    const plan = await planOf('td', project());
    const planned = plan.translation.taskDefinitions.find((t) => t.family === 'ro-demo-iris')!;
    // As DescribeTaskDefinition answers: the registered fields plus read-only ones.
    const running = {
      ...planned,
      taskDefinitionArn: 'arn:aws:ecs:eu-west-1:123456789012:task-definition/ro-demo-iris:7',
      revision: 7,
      status: 'ACTIVE',
      registeredAt: new Date('2026-12-01T00:00:00Z'),
      compatibilities: ['EC2', 'FARGATE'],
      requiresAttributes: [{ name: 'com.amazonaws.ecs.capability.logging-driver.awslogs' }],
    } as TaskDefinition;
    const td = candidateTaskDefinition(running, 'iris', 'acct.dkr.ecr.eu-west-1.amazonaws.com/iris:v2', {
      BATCH_MAX_SIZE: '16',
    });
    const c = td.containerDefinitions!.find((x) => x.name === 'iris')!;
    expect(c.image).toBe('acct.dkr.ecr.eu-west-1.amazonaws.com/iris:v2');
    expect(c.environment).toContainEqual({ name: 'MLSHIP_MODEL_VERSION', value: 'candidate' });
    expect(c.environment).toContainEqual({ name: 'BATCH_MAX_SIZE', value: '16' });
    const names = c.environment!.map((e) => e.name!);
    expect(names).toEqual([...names].sort());
    expect(c.healthCheck).toEqual(planned.containerDefinitions![0]!.healthCheck);
    expect([td.family, td.cpu, td.memory, td.executionRoleArn]).toEqual([
      planned.family,
      planned.cpu,
      planned.memory,
      planned.executionRoleArn,
    ]);
    expect(td).not.toHaveProperty('revision');
    // Its tasks log apart from stable's (a shadow's status reads each side's streams), in the same group.
    const logs = (x: { containerDefinitions?: { logConfiguration?: unknown }[] }) =>
      x.containerDefinitions![0]!.logConfiguration as { options: Record<string, string> };
    expect(logs(planned).options['awslogs-stream-prefix']).toBe('iris');
    expect(logs(td).options).toEqual({ ...logs(planned).options, 'awslogs-stream-prefix': 'iris-candidate' });
    // A stable service running a promoted candidate's revision: the next candidate takes the plain prefix.
    const next = candidateTaskDefinition({ ...running, ...td } as TaskDefinition, 'iris', 'x:3', {});
    expect(logs(next).options['awslogs-stream-prefix']).toBe('iris');
    const model = loadServiceModel('ecs');
    if (model) expect(validateShape(model, 'RegisterTaskDefinitionRequest', td)).toEqual([]);
    // Promoted: the candidate's version (image, --env) as a stable revision, unlabelled, under the
    // stable prefix; the next rollout's candidate takes `-candidate` again.
    const promoted = promotedTaskDefinition({ ...running, ...td } as TaskDefinition, 'iris');
    const p = promoted.containerDefinitions!.find((x) => x.name === 'iris')!;
    expect(p.image).toBe('acct.dkr.ecr.eu-west-1.amazonaws.com/iris:v2');
    expect(p.environment).toEqual(c.environment!.filter((e) => e.name !== 'MLSHIP_MODEL_VERSION'));
    expect(p.environment).toContainEqual({ name: 'BATCH_MAX_SIZE', value: '16' });
    expect(logs(promoted).options).toEqual(logs(planned).options);
    expect({ ...promoted, containerDefinitions: [] }).toEqual({ ...td, containerDefinitions: [] });
    const after = candidateTaskDefinition({ ...running, ...promoted } as TaskDefinition, 'iris', 'x:4', {});
    expect(logs(after).options['awslogs-stream-prefix']).toBe('iris-candidate');
    if (model) expect(validateShape(model, 'RegisterTaskDefinitionRequest', promoted)).toEqual([]);
    expect(() => promotedTaskDefinition({ ...running, ...td } as TaskDefinition, 'other')).toThrow(
      /no container other/,
    );
  });

  it('the weights of each step: the candidate its percent, stable the rest', () => {
    const arns = { stable: TG('s'), candidate: TG('c') };
    expect([10, 50, 100, 0].map((w) => weightsAt(w, arns).map((x) => x.weight))).toEqual([
      [90, 10],
      [50, 50],
      [0, 100],
      [100, 0],
    ]);
  });

  it("each side's alarms: 5xx above 5 % and p99 above the slo (in seconds), valid PutMetricAlarm requests", async () => {
    const plan = await planOf('alarms', project());
    const l = ecsRolloutLayout(plan, 'iris');
    const alarms = sideAlarms(
      l,
      'candidate',
      { loadBalancer: LB, targetGroup: TG('ro-demo-iris-c-8080') },
      'ro-demo',
    );
    expect(alarms.map((a) => [a.name, a.threshold])).toEqual([
      ['mlship-ro-demo-rollout-iris-candidate-5xx', 5],
      ['mlship-ro-demo-rollout-iris-candidate-p99-above-slo', 0.25],
    ]);
    expect(alarms[1]!.metric).toMatchObject({
      namespace: 'AWS/ApplicationELB',
      name: 'TargetResponseTime',
      statistic: 'p99',
      dimensions: {
        LoadBalancer: 'app/ro-demo/50dc6c495c0c9188',
        TargetGroup: 'targetgroup/ro-demo-iris-c-8080/73e2d6bc24d8a067',
      },
    });
    const model = loadServiceModel('cloudwatch');
    if (model)
      for (const a of alarms) expect(validateShape(model, 'PutMetricAlarmInput', alarmInput(a))).toEqual([]);
    const noSlo = { ...l, sloP99Ms: undefined };
    expect(sideAlarms(noSlo, 'stable', { loadBalancer: LB, targetGroup: TG('s') }, 'ro-demo')).toHaveLength(
      1,
    );
  });

  it('a candidate the proxy routes: its alarms on its own embedded metrics (ModelVersion=candidate, p99 in ms), valid PutMetricAlarm requests; none without a namespace', async () => {
    const plan = await planOf('emf-alarms', project());
    const l = ecsRolloutLayout(plan, 'iris');
    const td = plan.translation.taskDefinitions.find((t) => t.family === 'ro-demo-iris')!;
    const alarms = candidateMetricAlarms(l, td, 'ro-demo');
    expect(alarms.map((a) => [a.name, a.threshold])).toEqual([
      ['mlship-ro-demo-rollout-iris-candidate-5xx', 5],
      ['mlship-ro-demo-rollout-iris-candidate-p99-above-slo', 250],
    ]);
    // The namespace and service name the deploy gives the container (operate-plan.ts), the version apart.
    const dims = { Service: 'iris', ModelVersion: 'candidate' };
    expect(alarms[0]!.math!.metrics).toEqual({
      errors: { namespace: 'mlship/ro-demo', name: 'Errors5xx', dimensions: dims, statistic: 'Sum' },
      requests: { namespace: 'mlship/ro-demo', name: 'Requests', dimensions: dims, statistic: 'Sum' },
    });
    expect(alarms[1]!.metric).toEqual({
      namespace: 'mlship/ro-demo',
      name: 'Latency',
      dimensions: dims,
      statistic: 'p99',
    });
    const model = loadServiceModel('cloudwatch');
    if (model)
      for (const a of alarms) expect(validateShape(model, 'PutMetricAlarmInput', alarmInput(a))).toEqual([]);
    const bare = {
      containerDefinitions: td.containerDefinitions!.map((c) => ({
        ...c,
        environment: (c.environment ?? []).filter((e) => e.name !== 'MLSHIP_METRICS_NAMESPACE'),
      })),
    };
    expect(candidateMetricAlarms(l, bare, 'ro-demo')).toEqual([]);
  });

  it('the GetMetricData request: both target groups, whole-window counts and percentiles, minutes', () => {
    const queries = metricQueries({ loadBalancer: LB, stable: TG('s'), candidate: TG('c') }, 1790);
    expect(queries).toHaveLength(12);
    expect(queries.find((q) => q.id === 'candidate_p99')).toMatchObject({
      statistic: 'p99',
      periodSeconds: 1800,
    });
    expect(queries.find((q) => q.id === 'stable_minutes')).toMatchObject({
      statistic: 'Average',
      periodSeconds: 60,
    });
    const model = loadServiceModel('cloudwatch');
    if (model)
      expect(
        validateShape(
          model,
          'GetMetricDataInput',
          JSON.parse(
            JSON.stringify(
              metricDataInput(
                queries,
                Date.parse('2026-12-02T10:00:00Z'),
                Date.parse('2026-12-02T10:30:00Z'),
              ),
            ),
          ),
        ),
      ).toEqual([]);
  });
});

describe('rollout on ECS: the comparison and verdict from the load balancer metrics', () => {
  const model = loadServiceModel('cloudwatch');
  it("the answers used here have GetMetricData's response shape", () => {
    if (!model) return;
    for (const name of ['healthy', '5xx', 'slow', 'early'])
      expect(validateShape(model, 'GetMetricDataOutput', recorded(name).GetMetricData), name).toEqual([]);
  });

  const decide = (name: string) => {
    const c = compareFromMetrics(valuesOf(name), DEFAULT_GATES, recorded(name).window.candidatePercent);
    return { c, v: verdict(c, DEFAULT_GATES) };
  };

  it('a canary like stable: promote, with the counts and percentiles in milliseconds', () => {
    const { c, v } = decide('healthy');
    expect(v.decision).toBe('promote');
    expect([c.stable.requests, c.candidate.requests, c.candidate.errors5xx]).toEqual([27000, 3000, 3]);
    expect([c.stable.p50Ms, c.candidate.p99Ms]).toEqual([12, 92]);
  });

  it('a canary answering 5 % 5xx: roll back, by the two-proportion z-test', () => {
    const { c, v } = decide('5xx');
    expect(v.decision).toBe('rollback');
    expect(c.errors.pValue).toBeLessThan(1e-10);
    expect(v.reasons[0]).toMatch(/^5xx rate 5\.00 % vs 0\.10 %/);
  });

  it("a canary 60 % slower every minute: roll back, by Mann-Whitney U on the minutes' averages", () => {
    const { c, v } = decide('slow');
    expect(v.decision).toBe('rollback');
    expect(c.latency.p50Ratio).toBeCloseTo(20 / 12, 5);
    expect(c.latency.pValue).toBeLessThan(0.01);
    expect(v.reasons.join()).toMatch(/latency p50 20\.0 ms vs 12\.0 ms/);
  });

  it('three minutes in: hold, with how many candidate requests are missing', () => {
    const { v } = decide('early');
    expect(v).toMatchObject({ decision: 'hold', needsRequests: 700 });
  });

  it('no metrics at all (a new target group): hold with 0 requests, never promote', () => {
    const c = compareFromMetrics({}, DEFAULT_GATES, 10);
    expect(c.candidate.requests).toBe(0);
    expect(verdict(c, DEFAULT_GATES).decision).toBe('hold');
  });
});

describe("rollout on ECS: the candidate's health", () => {
  it('missing, a failed deployment, or no task left is down; a running service is not', () => {
    expect(candidateHealth(undefined, true)).toEqual({ health: 'missing', down: true });
    expect(candidateHealth({ desiredCount: 2, runningCount: 2, pendingCount: 0 }, true)).toEqual({
      health: 'running (2/2)',
      down: false,
    });
    expect(
      candidateHealth(
        { desiredCount: 2, runningCount: 1, deployments: [{ status: 'PRIMARY', rolloutState: 'FAILED' }] },
        true,
      ).down,
    ).toBe(true);
    expect(candidateHealth({ desiredCount: 2, runningCount: 0, pendingCount: 0 }, true).down).toBe(true);
    // A rolled-back rollout's candidate at 0 tasks is expected, not down.
    expect(candidateHealth({ desiredCount: 0, runningCount: 0, pendingCount: 0 }, false).down).toBe(false);
  });
});

describe('rollout on ECS: deploy ecs --apply keeps what a rollout left on the stable service', () => {
  it("keeps the stable service's rollout target group, nothing else", () => {
    const kept = rolloutTargets('ro-demo', 'iris', [
      { targetGroupArn: TG('ro-demo-iris-s-8080'), containerName: 'iris', containerPort: 8080 },
      { targetGroupArn: TG('ro-demo-iris-c-8080'), containerName: 'iris', containerPort: 8080 },
      { targetGroupArn: TG('ro-demo-iris-8080'), containerName: 'iris', containerPort: 8080 },
      { targetGroupArn: TG('ro-demo-web-s-8080'), containerName: 'web', containerPort: 8080 },
    ]);
    expect(kept.map((k) => k.targetGroupArn)).toEqual([TG('ro-demo-iris-s-8080')]);
  });
});
