// Waiting until services are stable, Service Connect and endpoints, driven by
// recorded ECS answers at the adapter boundary (moto never runs tasks and drops
// serviceConnectConfiguration), with a fake clock so nothing sleeps.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DescribeServicesResponse, DescribeTasksResponse, Service, Task } from '@aws-sdk/client-ecs';
import { describe, expect, it } from 'vitest';
import { createServiceInput } from '../../../src/adapters/aws/create-service-input.js';
import { applyEcs } from '../../../src/core/deploy/apply.js';
import type { AwsDeployApis, CreateServiceSpec } from '../../../src/core/deploy/aws-apis.js';
import type { ApplyOptions } from '../../../src/core/deploy/deps.js';
import { type EcsPlanResult, planEcs } from '../../../src/core/deploy/plan.js';
import { rolloutOf } from '../../../src/core/deploy/wait.js';
import type { Clock } from '../../../src/io/clock.js';
import { OperationFailedError } from '../../../src/io/errors.js';
import { runPool, type TaskRunner } from '../../../src/io/progress.js';
import { strictAws } from '../../helpers/aws-fake.js';
import { loadServiceModel, validateShape } from '../../helpers/aws-model.js';

interface Recording {
  note: string;
  DescribeServices: DescribeServicesResponse[];
  ListTasks?: { taskArns: string[] };
  DescribeTasks?: DescribeTasksResponse;
}

const RECORDED = path.resolve('fixtures/deploy/recorded');
const recording = (name: string): Recording =>
  JSON.parse(readFileSync(path.join(RECORDED, `${name}.json`), 'utf8')) as Recording;
const SCENARIOS = ['rollout-completed', 'rollout-rolled-back', 'rollout-never-finishes'];
const model = loadServiceModel('ecs');
const POLL = 15;

const root = path.join(os.tmpdir(), `mlship-apply-wait-${process.pid}`);
async function planOf(compose: string, certificateArn?: string): Promise<EcsPlanResult> {
  const dir = path.join(root, 'shop');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'compose.yaml'), compose);
  return planEcs({
    file: path.join(dir, 'compose.yaml'),
    outDir: path.join(dir, 'out'),
    region: 'eu-west-1',
    accountId: '123456789012',
    imageTag: '9c1e2f3a4b5c',
    force: true,
    ...(certificateArn ? { certificateArn } : {}),
  });
}
const API = [
  'name: shop',
  'services:',
  '  api:',
  '    image: shop/api:dev',
  '    ports: ["8000"]',
  '    healthcheck:',
  '      test: ["CMD", "true"]',
  '      start_period: 120s',
  '',
].join('\n');

function fakeClock(): Clock & { elapsed(): number } {
  let t = 1_763_892_000_000;
  const start = t;
  return {
    now: () => t,
    monotonic: () => t,
    sleep: async (ms) => {
      t += ms;
    },
    elapsed: () => (t - start) / 1000,
  };
}

/** A TaskRunner that records what a user would see. */
function recordingRunner(): TaskRunner & { lines: string[]; titles: string[] } {
  const lines: string[] = [];
  const titles: string[] = [];
  return {
    lines,
    titles,
    run: (tasks, options) =>
      runPool(tasks, options ?? {}, (task) => {
        titles.push(task.title);
        return { title: (t) => titles.push(t), output: (l) => lines.push(`${task.title}|${l}`) };
      }),
  };
}

/**
 * An AWS double whose ECS answers DescribeServices (and ListTasks/DescribeTasks) from a
 * recording, one recorded answer per call; everything else succeeds. Calls are logged.
 */
function fakeAws(
  rec: Recording | undefined,
  existing?: { taskDefinition: string; loadBalancers?: Service['loadBalancers'] },
) {
  const calls: { name: string; input: unknown }[] = [];
  const created: CreateServiceSpec[] = [];
  let polls = 0;
  const log =
    <A extends unknown[], R>(name: string, fn: (...a: A) => R) =>
    (...a: A): R => {
      calls.push({ name, input: a });
      return fn(...a);
    };
  const aws = {
    ec2: {
      defaultNetwork: async () => ({
        vpcId: 'vpc-1',
        subnets: ['subnet-a', 'subnet-a2', 'subnet-b'],
        securityGroups: ['sg-1'],
      }),
      subnets: log('subnets', async (ids: string[]) =>
        ids.map((id) => ({ id, vpcId: 'vpc-1', zone: `eu-west-1${id.slice(7, 8)}` })),
      ),
      vpcDns: async () => ({ support: true, hostnames: true }),
      instanceTypeOffered: async () => true,
      instanceTypeInfo: async () => ({ gpus: 4, memoryMiB: 196608 }),
      ensureSecurityGroup: log('ensureSecurityGroup', async () => ({ id: 'sg-alb', created: true })),
      allowIngress: log('allowIngress', async () => ({ added: true })),
    },
    elb: {
      ensureLoadBalancer: log('ensureLoadBalancer', async () => ({
        arn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/shop/1',
        dnsName: 'shop-1.eu-west-1.elb.amazonaws.com',
        created: true,
        managed: true,
      })),
      ensureTargetGroup: log('ensureTargetGroup', async (spec: { name: string }) => ({
        arn: `arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/${spec.name}/1`,
        created: true,
        changed: false,
      })),
      ensureListener: log('ensureListener', async () => ({
        arn: 'listener-1',
        created: true,
        changed: false,
      })),
    },
    gpu: {
      gpuAmi: log('gpuAmi', async () => 'ami-0gpu'),
      ensureInstanceProfile: log('ensureInstanceProfile', async (name: string) => ({
        arn: `arn:aws:iam::123456789012:instance-profile/${name}`,
        created: true,
      })),
      ensureLaunchTemplate: log('ensureLaunchTemplate', async () => ({
        id: 'lt-1',
        created: true,
        changed: false,
      })),
      ensureAutoScalingGroup: log('ensureAutoScalingGroup', async (spec: { name: string }) => ({
        arn: `arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:1:autoScalingGroupName/${spec.name}`,
        created: true,
      })),
      ensureCapacityProvider: log('ensureCapacityProvider', async () => ({ created: true, attached: true })),
    },
    acm: { certificateStatus: log('certificateStatus', async () => 'ISSUED' as string | undefined) },
    secrets: { missingParameters: async () => [], secretExists: async () => true },
    iam: {
      roleExists: async () => true,
      // The stack names no roles of its own: mlship's exist already (created: false, so no wait).
      ensureServiceRole: log('ensureServiceRole', async (spec: { name: string }) => ({
        arn: `arn:aws:iam::123456789012:role/${spec.name}`,
        created: false,
        changed: [],
        managed: true,
      })),
    },
    logs: { ensureLogGroup: log('ensureLogGroup', async () => ({ created: true })) },
    ecr: {},
    ecs: {
      ensureCluster: log('ensureCluster', async () => ({ created: false })),
      // An older, different revision exists, so the plan registers revision 2.
      latestTaskDefinition: log('latestTaskDefinition', async (family: string) => ({
        family,
        revision: 1,
        status: 'ACTIVE',
        taskDefinitionArn: `arn:aws:ecs:eu-west-1:123456789012:task-definition/${family}:1`,
        containerDefinitions: [],
      })),
      registerTaskDefinition: log('registerTaskDefinition', async (input: { family?: string }) => ({
        arn: `arn:aws:ecs:eu-west-1:123456789012:task-definition/${input.family}:2`,
        revision: 2,
      })),
      describeService: log('describeService', async (_c: string, name: string) =>
        existing
          ? ({
              serviceName: name,
              taskDefinition: existing.taskDefinition,
              loadBalancers: existing.loadBalancers ?? [],
            } as Service)
          : undefined,
      ),
      createService: log('createService', async (spec: CreateServiceSpec) => {
        created.push(spec);
      }),
      updateService: log('updateService', async () => undefined),
      describeServices: log('describeServices', async (_c: string, names: string[]) => {
        const answers = rec!.DescribeServices;
        const answer = answers[Math.min(polls++, answers.length - 1)]!;
        return (answer.services ?? []).filter((s) => names.includes(s.serviceName!));
      }),
      listStoppedTasks: log('listStoppedTasks', async () => rec?.ListTasks?.taskArns ?? []),
      describeTasks: log(
        'describeTasks',
        async (_c: string, arns: string[]) =>
          (rec?.DescribeTasks?.tasks ?? []).filter((t) => arns.includes(t.taskArn!)) as Task[],
      ),
    },
    destroy: () => undefined,
  };
  /** The arguments of every call to `name`, in order. */
  const inputs = (name: string) => calls.filter((c) => c.name === name).map((c) => c.input);
  return { aws: strictAws(aws), calls, created, inputs, polls: () => polls };
}

const options = (over: Partial<ApplyOptions> = {}): ApplyOptions => ({
  localImages: {},
  force: false,
  wait: true,
  pollSeconds: POLL,
  ...over,
});

/** `--apply --no-wait` with the given AWS double and no engine or log. */
const applyNoWait = (plan: EcsPlanResult, aws: AwsDeployApis) =>
  applyEcs(plan, { aws, engine: {} as never, log: () => undefined }, options({ wait: false }));

describe('recorded ECS answers', () => {
  it.runIf(model)('are shaped exactly like the ECS API answers (botocore model)', () => {
    for (const name of SCENARIOS) {
      const rec = recording(name);
      expect(rec.DescribeServices.length).toBeGreaterThan(1);
      for (const [i, answer] of rec.DescribeServices.entries())
        expect(validateShape(model!, 'DescribeServicesResponse', answer), `${name}[${i}]`).toEqual([]);
      if (rec.ListTasks) expect(validateShape(model!, 'ListTasksResponse', rec.ListTasks)).toEqual([]);
      if (rec.DescribeTasks)
        expect(validateShape(model!, 'DescribeTasksResponse', rec.DescribeTasks)).toEqual([]);
    }
  });
});

describe('deploy ecs --apply: waiting until stable', () => {
  it('in progress, then completed: waits with per-service progress and reports the time it took', async () => {
    const rec = recording('rollout-completed');
    const fake = fakeAws(rec);
    const clock = fakeClock();
    const tasks = recordingRunner();
    const r = await applyEcs(
      await planOf(API),
      { aws: fake.aws, engine: {} as never, log: () => undefined, tasks, clock },
      options(),
    );
    expect(r.services).toEqual([{ name: 'api', action: 'created' }]);
    // One DescribeServices per recorded answer, until the one that is COMPLETED with all tasks running.
    const done = rec.DescribeServices.findIndex((a) =>
      a.services!.every(
        (s) =>
          s.runningCount === s.desiredCount &&
          s.deployments!.find((d) => d.status === 'PRIMARY')!.rolloutState === 'COMPLETED',
      ),
    );
    expect(fake.polls()).toBe(done + 1);
    expect(r.stable).toEqual([{ name: 'api', seconds: done * POLL }]);
    expect(clock.elapsed()).toBe(done * POLL);
    // Progress: every distinct running/desired count the answers before went through, once each.
    const seen = [
      ...new Set(
        rec.DescribeServices.slice(0, done).map(
          (a) => `${a.services![0]!.runningCount}/${a.services![0]!.desiredCount} running`,
        ),
      ),
    ];
    for (const s of seen) expect(tasks.lines.some((l) => l.startsWith('api:') && l.includes(s))).toBe(true);
    expect(new Set(tasks.lines).size).toBe(tasks.lines.length);
    expect(tasks.titles.at(-1)).toBe(`api: stable (${done * POLL}s)`);
  });

  it('circuit breaker rolled back: the service, the rollout reason, stopped tasks, and where the logs are', async () => {
    const rec = recording('rollout-rolled-back');
    const last = rec.DescribeServices.at(-1)!.services![0]!;
    const failed = last.deployments!.find((d) => d.rolloutState === 'FAILED')!;
    const fake = fakeAws(rec, { taskDefinition: last.taskDefinition! });
    const plan = await planOf(API);
    const err = (await applyEcs(
      plan,
      {
        aws: fake.aws,
        engine: {} as never,
        log: () => undefined,
        tasks: recordingRunner(),
        clock: fakeClock(),
      },
      options(),
    ).catch((e: unknown) => e)) as OperationFailedError;
    expect(err).toBeInstanceOf(OperationFailedError);
    expect(err.code).toBe('DEPLOY_FAILED');
    expect(err.details).toHaveLength(1);
    const detail = err.details[0]!;
    expect(detail).toContain(
      `service api: deployment failed, the circuit breaker rolled back to ${last.taskDefinition!.split('/').pop()}`,
    );
    expect(detail).toContain(failed.rolloutStateReason!);
    const task = rec.DescribeTasks!.tasks![0]!;
    expect(detail).toContain(task.stoppedReason!);
    expect(detail).toContain(`${task.containers![0]!.name}: exit code ${task.containers![0]!.exitCode}`);
    expect(detail).toContain(`log group ${plan.translation.logGroup}, stream prefix api`);
    expect(plan.translation.logGroup).toBe('/mlship/shop');
    expect(err.hint).toContain(`aws logs tail ${plan.translation.logGroup}`);
    // The update was sent, and nothing was torn down: the log group stays for debugging.
    expect(fake.calls.filter((c) => c.name === 'updateService')).toHaveLength(1);
    expect(fake.calls.some((c) => /delete/i.test(c.name))).toBe(false);
  });

  it('a service that DescribeServices does not show yet (MISSING) is waited for, not failed', async () => {
    const rec = recording('rollout-completed');
    const arn = rec.DescribeServices[0]!.services![0]!.serviceArn!;
    const missing = { services: [], failures: [{ arn, reason: 'MISSING' }] };
    if (model) expect(validateShape(model, 'DescribeServicesResponse', missing)).toEqual([]);
    const fake = fakeAws({ ...rec, DescribeServices: [missing, ...rec.DescribeServices] });
    const r = await applyEcs(
      await planOf(API),
      { aws: fake.aws, engine: {} as never, log: () => undefined, clock: fakeClock() },
      options(),
    );
    expect(r.stable.map((s) => s.name)).toEqual(['api']);
    expect(fake.polls()).toBe(rec.DescribeServices.length + 1);
  });

  it('an older PRIMARY is a rollback only once our deployment was seen (answers are eventually consistent)', () => {
    const rec = recording('rollout-rolled-back');
    const last = rec.DescribeServices.at(-1)!.services![0]!;
    const failed = last.deployments!.find((d) => d.rolloutState === 'FAILED')!;
    const primary = last.deployments!.find((d) => d.status === 'PRIMARY')!;
    const withoutOurs = { ...last, deployments: last.deployments!.filter((d) => d !== failed) };
    expect(rolloutOf(withoutOurs, failed.taskDefinition!, false).kind).toBe('progress');
    expect(rolloutOf(withoutOurs, failed.taskDefinition!, true)).toMatchObject({
      kind: 'failed',
      rolledBackTo: primary.taskDefinition!.split('/').pop(),
    });
    expect(rolloutOf(last, failed.taskDefinition!, false)).toEqual({
      kind: 'failed',
      reason: failed.rolloutStateReason,
      rolledBackTo: primary.taskDefinition!.split('/').pop(),
    });
  });

  it('never finishing: gives up after the default timeout (health-check grace + 10 minutes)', async () => {
    const fake = fakeAws(recording('rollout-never-finishes'));
    const clock = fakeClock();
    const plan = await planOf(API);
    const grace = plan.translation.services[0]!.healthCheckGracePeriodSeconds;
    expect(grace).toBeGreaterThan(0);
    const err = (await applyEcs(
      plan,
      { aws: fake.aws, engine: {} as never, log: () => undefined, tasks: recordingRunner(), clock },
      options(),
    ).catch((e: unknown) => e)) as OperationFailedError;
    expect(err.code).toBe('DEPLOY_TIMEOUT');
    expect(err.message).toBe(`1 service(s) not stable within ${grace + 600}s`);
    expect(err.details[0]).toMatch(/^service api: not stable after \d+s \(0\/1 running, 1 pending/);
    expect(clock.elapsed()).toBeLessThanOrEqual(grace + 600);
    expect(clock.elapsed()).toBeGreaterThan(grace + 600 - POLL);
  });

  it('--wait-timeout bounds the wait; --no-wait does not poll at all', async () => {
    const slow = fakeAws(recording('rollout-never-finishes'));
    const clock = fakeClock();
    await expect(
      applyEcs(
        await planOf(API),
        { aws: slow.aws, engine: {} as never, log: () => undefined, clock },
        options({ waitTimeoutSeconds: 40 }),
      ),
    ).rejects.toMatchObject({ code: 'DEPLOY_TIMEOUT' });
    expect(clock.elapsed()).toBeLessThanOrEqual(40);
    expect(slow.polls()).toBe(Math.floor(40 / POLL) + 1);

    const none = fakeAws(recording('rollout-never-finishes'));
    const r = await applyEcs(
      await planOf(API),
      { aws: none.aws, engine: {} as never, log: () => undefined, clock: fakeClock() },
      options({ wait: false }),
    );
    expect(r.stable).toEqual([]);
    expect(none.polls()).toBe(0);
  });

  it('unchanged services are not waited for', async () => {
    const plan = await planOf(API);
    const fake = fakeAws(recording('rollout-never-finishes'), {
      taskDefinition: 'arn:aws:ecs:eu-west-1:123456789012:task-definition/shop-api:2',
    });
    const r = await applyEcs(
      plan,
      { aws: fake.aws, engine: {} as never, log: () => undefined, clock: fakeClock() },
      options(),
    );
    expect(r.services).toEqual([{ name: 'api', action: 'unchanged' }]);
    expect(fake.polls()).toBe(0);
  });
});

describe('deploy ecs --apply: Service Connect and endpoints', () => {
  const STACK = [
    'name: shop',
    'services:',
    '  api:',
    '    image: shop/api:dev',
    '    ports: ["8000"]',
    '  web:',
    '    image: shop/web:dev',
    '    ports: ["80:3000"]',
    '  worker:',
    '    image: shop/worker:dev',
    '',
  ].join('\n');

  it('CreateService carries Service Connect with the port name of the task definition', async () => {
    const plan = await planOf(STACK);
    const fake = fakeAws(undefined);
    await applyNoWait(plan, fake.aws);
    expect(fake.created.map((c) => c.serviceName)).toEqual(plan.translation.services.map((s) => s.name));
    for (const spec of fake.created) {
      const input = createServiceInput(spec);
      if (model) expect(validateShape(model, 'CreateServiceRequest', input)).toEqual([]);
      const td = plan.translation.taskDefinitions.find((t) => spec.taskDefinition.includes(`/${t.family}:`))!;
      const mappings = (td.containerDefinitions ?? []).flatMap((c) =>
        (c.portMappings ?? []).map((m) => ({ container: c.name!, ...m })),
      );
      const sc = input.serviceConnectConfiguration!;
      expect(sc.enabled).toBe(true);
      expect(sc.namespace).toBe(plan.stack);
      if (!mappings.length) {
        // No port to offer: a client of the namespace, so it still resolves the others' names.
        expect(sc.services).toBeUndefined();
        continue;
      }
      // Every container port of the task, under its container's name.
      expect(sc.services).toHaveLength(mappings.length);
      for (const entry of sc.services!) {
        const mapping = mappings.find((m) => m.name === entry.portName);
        expect(mapping, `portName ${entry.portName} is a named port mapping of ${td.family}`).toBeDefined();
        expect(entry.discoveryName).toBe(mapping!.container);
        expect(entry.clientAliases).toEqual([{ port: mapping!.containerPort, dnsName: mapping!.container }]);
      }
    }
    expect(fake.created.filter((c) => c.serviceConnect?.services.length)).toHaveLength(2);
    expect(fake.created.find((c) => c.serviceName === 'worker')?.serviceConnect).toEqual({
      namespace: 'shop',
      services: [],
    });
    expect(createServiceInput(fake.created[0]!).deploymentConfiguration?.deploymentCircuitBreaker).toEqual({
      enable: true,
      rollback: true,
    });
  });

  it('reports endpoints: <service>:<port> in the namespace; a published port through the load balancer', async () => {
    const plan = await planOf(STACK);
    const r = await applyNoWait(plan, fakeAws(undefined).aws);
    const byName = Object.fromEntries(r.endpoints.map((e) => [e.service, e]));
    expect(byName.api).toEqual({
      service: 'api',
      serviceConnect: { namespace: 'shop', dnsName: 'api', port: 8000 },
      public: [],
    });
    expect(byName.web!.serviceConnect).toEqual({ namespace: 'shop', dnsName: 'web', port: 3000 });
    expect(byName.web!.public).toEqual([
      {
        port: 80,
        url: 'http://shop-1.eu-west-1.elb.amazonaws.com/',
        loadBalancerDns: 'shop-1.eu-west-1.elb.amazonaws.com',
        note: "http://shop-1.eu-west-1.elb.amazonaws.com/ → web:3000 (a new load balancer's name takes a few minutes to resolve)",
      },
    ]);
    expect(byName.worker).toEqual({ service: 'worker', public: [] });
  });

  it('the shared load balancer: one per stack, a target group and listener per published port, tasks reachable from it', async () => {
    const plan = await planOf(STACK);
    const fake = fakeAws(undefined);
    const r = await applyNoWait(plan, fake.aws);
    const { inputs } = fake;
    // One subnet per Availability Zone (an ALB takes no two of one zone), in the tasks' VPC.
    expect(inputs('ensureLoadBalancer')).toEqual([
      [{ name: 'shop', subnets: ['subnet-a', 'subnet-b'], securityGroups: ['sg-alb'] }],
    ]);
    expect(inputs('ensureSecurityGroup')).toEqual([
      [{ vpcId: 'vpc-1', name: 'shop-alb', description: 'mlship: load balancer of stack shop' }],
    ]);
    expect(inputs('allowIngress')).toEqual([
      ['sg-alb', { port: 80, cidr: '0.0.0.0/0', description: 'mlship: HTTP listener' }],
      ['sg-1', { port: 3000, fromGroup: 'sg-alb', description: 'mlship: load balancer of stack shop' }],
    ]);
    expect(inputs('ensureTargetGroup')).toEqual([
      [
        {
          name: 'shop-web-3000',
          vpcId: 'vpc-1',
          port: 3000,
          healthCheckPath: '/',
          healthCheckIntervalSeconds: 30,
        },
      ],
    ]);
    const web = fake.created.find((c) => c.serviceName === 'web')!;
    expect(web.loadBalancers).toEqual([
      {
        targetGroupArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-web-3000/1',
        containerName: 'web',
        containerPort: 3000,
      },
    ]);
    if (model) expect(validateShape(model, 'CreateServiceRequest', createServiceInput(web))).toEqual([]);
    expect(fake.created.find((c) => c.serviceName === 'api')!.loadBalancers).toBeUndefined();
    // The target group is attached to the listener before the service that uses it is created.
    const order = fake.calls.map((c) => c.name);
    expect(order.indexOf('ensureListener')).toBeLessThan(order.indexOf('createService'));
    expect(r.loadBalancer).toMatchObject({
      name: 'shop',
      created: true,
      listeners: [
        { port: 80, service: 'web', container: 'web', containerPort: 3000, targetGroup: 'shop-web-3000' },
      ],
      ingressAdded: [{ group: 'sg-1', port: 3000 }],
    });
  });

  it('with a certificate: HTTPS on 443 with the TLS 1.2/1.3 policy, 80 redirects to it, the endpoint is https', async () => {
    const cert = 'arn:aws:acm:eu-west-1:123456789012:certificate/0c9b1f2e';
    const plan = await planOf(STACK, cert);
    const fake = fakeAws(undefined);
    const r = await applyNoWait(plan, fake.aws);
    const { inputs } = fake;
    expect(inputs('certificateStatus')).toEqual([[cert]]);
    const arn = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/shop/1';
    expect(inputs('ensureListener')).toEqual([
      [{ loadBalancerArn: arn, port: 80, protocol: 'HTTP', redirectToHttpsPort: 443 }],
      [
        {
          loadBalancerArn: arn,
          port: 443,
          protocol: 'HTTPS',
          targetGroupArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-web-3000/1',
          certificateArn: cert,
        },
      ],
    ]);
    // The load balancer's group opens both ports; the tasks' group only the container port.
    expect(
      inputs('allowIngress').map((input) => {
        const [g, rule] = input as [string, { port: number }];
        return [g, rule.port];
      }),
    ).toEqual([
      ['sg-alb', 80],
      ['sg-alb', 443],
      ['sg-1', 3000],
    ]);
    expect(r.endpoints.find((e) => e.service === 'web')!.public[0]).toMatchObject({
      port: 443,
      url: 'https://shop-1.eu-west-1.elb.amazonaws.com/',
    });

    for (const [status, message] of [
      [
        'PENDING_VALIDATION',
        `certificate ${cert} is PENDING_VALIDATION, and a listener takes only an ISSUED one`,
      ],
      [undefined, `certificate ${cert} does not exist in this region`],
    ] as const) {
      const pending = fakeAws(undefined);
      pending.aws.acm.certificateStatus = async () => status;
      const err = (await applyNoWait(plan, pending.aws).catch((e: unknown) => e)) as OperationFailedError;
      expect(err.details).toEqual([expect.stringContaining(message)]);
      expect(pending.calls.some((c) => c.name === 'ensureLoadBalancer')).toBe(false);
    }
  });

  it('a GPU task: instances from the ECS GPU AMI in an Auto Scaling group behind a capacity provider the service uses', async () => {
    const plan = await planOf(
      [
        'name: shop',
        'services:',
        '  llm:',
        '    image: shop/llm:dev',
        '    ports: ["8000"]',
        '    deploy:',
        '      resources:',
        '        limits: { memory: 12g }',
        '        reservations:',
        '          devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }]',
        '  api:',
        '    image: shop/api:dev',
        '    ports: ["8080"]',
        '',
      ].join('\n'),
    );
    expect(plan.gpuInstanceType).toBe('g4dn.xlarge'); // 1 GPU, 12 GiB: fits 90% of 16 GiB
    const fake = fakeAws(undefined);
    const r = await applyNoWait(plan, fake.aws);
    const { inputs } = fake;
    expect(inputs('ensureInstanceProfile')).toEqual([['mlship-shop-gpu-instance']]);
    const [[template]] = inputs('ensureLaunchTemplate') as [[Record<string, unknown>]];
    expect(template).toEqual({
      name: 'mlship-shop-gpu',
      imageId: 'ami-0gpu',
      instanceType: 'g4dn.xlarge',
      instanceProfileArn: 'arn:aws:iam::123456789012:instance-profile/mlship-shop-gpu-instance',
      securityGroups: ['sg-1'],
      userData:
        "#!/bin/bash\ncat >> /etc/ecs/ecs.config <<'EOF'\nECS_CLUSTER=shop\nECS_ENABLE_GPU_SUPPORT=true\nEOF\nmkdir -p /var/lib/mlship/weights && chmod 1777 /var/lib/mlship/weights\n",
      volumeGb: 100,
    });
    // Twice the task count: a rolling deployment runs the new task before stopping the old one.
    expect(inputs('ensureAutoScalingGroup')).toEqual([
      [
        {
          name: 'mlship-shop-gpu',
          launchTemplateId: 'lt-1',
          subnets: ['subnet-a', 'subnet-a2', 'subnet-b'],
          maxSize: 2,
        },
      ],
    ]);
    expect(inputs('ensureCapacityProvider')).toEqual([
      [
        {
          name: 'mlship-shop-gpu',
          autoScalingGroupArn:
            'arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:1:autoScalingGroupName/mlship-shop-gpu',
          cluster: 'shop',
        },
      ],
    ]);
    const order = fake.calls.map((c) => c.name);
    expect(order.indexOf('ensureCluster')).toBeLessThan(order.indexOf('ensureCapacityProvider'));
    expect(order.indexOf('ensureCapacityProvider')).toBeLessThan(order.indexOf('createService'));
    const gpuService = fake.created.find((c) => c.serviceName === 'shop-gpu')!;
    expect(gpuService.capacityProvider).toBe('mlship-shop-gpu');
    const input = createServiceInput(gpuService);
    expect(input.capacityProviderStrategy).toEqual([
      { capacityProvider: 'mlship-shop-gpu', weight: 1, base: 0 },
    ]);
    expect(input.launchType).toBeUndefined();
    expect(input.networkConfiguration?.awsvpcConfiguration?.assignPublicIp).toBe('DISABLED');
    if (model) expect(validateShape(model, 'CreateServiceRequest', input)).toEqual([]);
    expect(createServiceInput(fake.created.find((c) => c.serviceName === 'api')!).launchType).toBe('FARGATE');
    expect(r.gpuCapacity).toMatchObject({ instanceType: 'g4dn.xlarge', ami: 'ami-0gpu', maxInstances: 2 });
  });

  it('a service created before it had a load balancer is updated to use it; then it is unchanged', async () => {
    const plan = await planOf(STACK);
    const arn = 'arn:aws:ecs:eu-west-1:123456789012:task-definition/shop-web:2';
    const tg = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-web-3000/1';
    const before = fakeAws(undefined, { taskDefinition: arn });
    const r = await applyNoWait(plan, before.aws);
    expect(r.services.find((s) => s.name === 'web')).toEqual({ name: 'web', action: 'updated' });
    const update = before.calls.find(
      (c) => c.name === 'updateService' && (c.input as [{ service: string }])[0].service === 'web',
    );
    expect((update!.input as [{ loadBalancers: unknown }])[0].loadBalancers).toEqual([
      { targetGroupArn: tg, containerName: 'web', containerPort: 3000 },
    ]);
    const after = fakeAws(undefined, {
      taskDefinition: arn,
      loadBalancers: [{ targetGroupArn: tg, containerName: 'web', containerPort: 3000 }],
    });
    const again = await applyNoWait(plan, after.aws);
    expect(again.services.find((s) => s.name === 'web')).toEqual({ name: 'web', action: 'unchanged' });
  });

  it('pre-deploy: a published port needs subnets in two zones of one VPC; a name taken by a foreign load balancer is left alone', async () => {
    const plan = await planOf(STACK);
    const fake = fakeAws(undefined);
    const deps = { aws: fake.aws, engine: {} as never, log: () => undefined };
    const err = (await applyEcs(
      plan,
      deps,
      options({ wait: false, subnets: ['subnet-a', 'subnet-a2'] }),
    ).catch((e: unknown) => e)) as OperationFailedError;
    expect(err).toBeInstanceOf(OperationFailedError);
    expect(err.details).toEqual([
      'the load balancer needs subnets in at least two Availability Zones; all are in eu-west-1a (fix: pass --subnets with one in another zone)',
    ]);
    expect(fake.calls.some((c) => c.name === 'ensureLoadBalancer' || c.name === 'ensureLogGroup')).toBe(
      false,
    );

    fake.aws.elb.ensureLoadBalancer = async () => ({
      arn: 'x',
      dnsName: 'x',
      created: false,
      managed: false,
    });
    await expect(applyEcs(plan, deps, options({ wait: false }))).rejects.toThrow(
      'a load balancer named shop exists and was not created by mlship; it is left alone',
    );
    expect(fake.created).toEqual([]);
  });
});

describe('deploy ecs --apply: a new commit with an unchanged image', () => {
  async function run(localTags: string[]) {
    const plan = await planOf(API);
    const td = plan.translation.taskDefinitions[0]!;
    const ecrImage = td.containerDefinitions![0]!.image!;
    const before = `127.0.0.1:5000/${ecrImage.slice(ecrImage.indexOf('/') + 1, ecrImage.lastIndexOf(':'))}:0ld0c0mm1t00`;
    const registered = {
      ...structuredClone(td),
      containerDefinitions: td.containerDefinitions!.map((c) => ({ ...c, image: before })),
      taskDefinitionArn: `arn:aws:ecs:eu-west-1:123456789012:task-definition/${td.family}:1`,
      revision: 1,
      status: 'ACTIVE',
    };
    const fake = fakeAws(undefined, { taskDefinition: registered.taskDefinitionArn });
    (fake.aws.ecs as { latestTaskDefinition: unknown }).latestTaskDefinition = async () => registered;
    const pushed: string[] = [];
    const engine = {
      imageExists: async () => true,
      inspectImage: async () => ({ tags: localTags }),
      tag: async () => undefined,
      push: async (ref: string) => {
        pushed.push(ref);
        return { digest: 'sha256:0', layersPushed: 1, layersSkipped: 3 };
      },
    };
    const r = await applyEcs(
      plan,
      { aws: fake.aws, engine: engine as never, log: () => undefined },
      options({ wait: false, registry: '127.0.0.1:5000', localImages: { api: 'shop/api:dev' } }),
    );
    return { r, pushed, before, fake };
  }

  it('the same local image under the registered tag: not pushed, no new revision, service unchanged', async () => {
    const { r, pushed, before, fake } = await run(['shop/api:dev', '127.0.0.1:5000/shop/api:0ld0c0mm1t00']);
    expect(pushed).toEqual([]);
    expect(r.pushes).toEqual([{ service: 'api', image: before, skipped: true }]);
    expect(r.taskDefinitions[0]!.registered).toBe(false);
    expect(r.services).toEqual([{ name: 'api', action: 'unchanged' }]);
    expect(fake.calls.some((c) => c.name === 'registerTaskDefinition')).toBe(false);
  });

  it('a different image: pushed under the new tag, one new revision, service updated', async () => {
    const { r, pushed } = await run(['shop/api:dev']);
    expect(pushed).toEqual([expect.stringMatching(/^127\.0\.0\.1:5000\/shop\/api:9c1e2f3a4b5c$/)]);
    expect(r.taskDefinitions[0]!.registered).toBe(true);
    expect(r.services).toEqual([{ name: 'api', action: 'updated' }]);
  });
});
