// The job queues of `deploy ecs --apply` against real AWS APIs served by moto (SQS, Application
// Auto Scaling, CloudWatch, IAM, ECS): the queue and its dead-letter queue with the redrive
// policy, encryption and visibility timeout; the worker's scalable target (from 0), its
// backlog-per-task policy and the alarm that starts the first task; FARGATE_SPOT; the task
// role allowed that queue only; a re-apply changes nothing; --destroy removes the scaling and
// keeps the queues (data) until --delete-data. No image is built: the plan's images are never
// pulled by moto.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ApplicationAutoScalingClient,
  DescribeScalableTargetsCommand,
  DescribeScalingPoliciesCommand,
} from '@aws-sdk/client-application-auto-scaling';
import { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeClustersCommand, DescribeServicesCommand, ECSClient } from '@aws-sdk/client-ecs';
import { GetRolePolicyCommand, IAMClient, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployApis } from '../../src/adapters/aws/deploy-apis.js';
import { applyEcs } from '../../src/core/deploy/apply.js';
import { destroyEcs } from '../../src/core/deploy/destroy.js';
import { scanLeftovers } from '../../src/core/deploy/operate.js';
import { planEcs } from '../../src/core/deploy/plan.js';
import { type Moto, startMoto } from '../helpers/moto.js';

const moto: Moto | undefined = await startMoto();
const STACK = 'jobs-stack';
let dir = '';

function project(spot: boolean): void {
  writeFileSync(
    path.join(dir, 'mlship.yaml'),
    [
      `name: ${STACK}`,
      'services:',
      '  iris:',
      '    path: services/iris',
      '    worker:',
      '      max_tasks: 6',
      '      backlog_per_task: 50',
      '      item_timeout_seconds: 45',
      `      spot: ${spot}`,
      'storage: {}',
      'queue:',
      '  max_receive_count: 4',
      'aws:',
      '  region: us-east-1',
      '  account_id: "123456789012"',
      '',
    ].join('\n'),
  );
}

async function planAndApply() {
  const plan = await planEcs({
    file: path.join(dir, 'mlship.yaml'),
    imageTag: 'test',
    force: true,
    writeFiles: false,
  });
  const aws = createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
  try {
    const result = await applyEcs(
      plan,
      { aws, engine: {} as never, log: () => undefined },
      { localImages: {}, force: false, wait: false, iamPropagationSeconds: 0 },
    );
    return { plan, result };
  } finally {
    aws.destroy();
  }
}

const client = <C>(make: new (c: object) => C) =>
  new make({
    region: 'us-east-1',
    endpoint: moto!.endpoint,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });

describe.skipIf(!moto)('deploy ecs: job queues and worker scaling on moto', () => {
  beforeAll(() => {
    Object.assign(process.env, moto!.env);
    dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-deploy-queues-'));
    mkdirSync(path.join(dir, 'services/iris'), { recursive: true });
    writeFileSync(path.join(dir, 'services/iris/Dockerfile'), 'FROM scratch\n');
    project(true);
  });
  afterAll(async () => {
    await moto?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('plans the queue, the scaling bounds and their cost, and exposes the queues for alarms', async () => {
    const plan = await planEcs({
      file: path.join(dir, 'mlship.yaml'),
      imageTag: 'test',
      force: true,
      writeFiles: false,
    });
    expect(plan.queues).toEqual([
      expect.objectContaining({
        service: 'iris',
        worker: 'iris-worker',
        name: 'jobs-stack-iris-jobs',
        deadLetter: expect.objectContaining({ name: 'jobs-stack-iris-jobs-dlq' }),
        visibilityTimeoutSeconds: 90,
        maxReceiveCount: 4,
        scaling: { minTasks: 0, maxTasks: 6, backlogPerTask: 50 },
        spot: true,
      }),
    ]);
    expect(plan.plan.join('\n')).toMatch(/SQS queue jobs-stack-iris-jobs .*visibility timeout 90 s/);
    expect(plan.plan.join('\n')).toMatch(
      /worker iris-worker: 0-6 task\(s\) on FARGATE_SPOT, no load balancer/,
    );
    expect(plan.cost.lines.some((l) => l.item.startsWith('SQS jobs-stack-iris-jobs'))).toBe(true);
    // Operate watches them: a backlog panel, an alarm when the dead-letter queue is not empty.
    expect(plan.operate?.queues).toEqual([
      { name: 'jobs-stack-iris-jobs', deadLetter: 'jobs-stack-iris-jobs-dlq' },
    ]);
    expect(plan.plan.join('\n')).toMatch(/dead-letter queue jobs-stack-iris-jobs-dlq not empty/);
    expect(plan.plan.join('\n')).toMatch(/CloudWatch dashboard .*queue backlog/);
    expect(plan.cost.note).toMatch(
      /iris-worker at its maximum 6 task\(s\) all month: \$\d+\.\d\d on FARGATE_SPOT/,
    );
    // The worker runs the model's image, and the queue server is no task.
    const families = plan.translation.taskDefinitions.map((t) => t.family);
    expect(families).toEqual(expect.arrayContaining([`${STACK}-iris`, `${STACK}-iris-worker`]));
    expect(families).not.toContain(`${STACK}-queue`);
    const image = (f: string) =>
      plan.translation.taskDefinitions.find((t) => t.family === f)!.containerDefinitions![0]!.image;
    expect(image(`${STACK}-iris-worker`)).toBe(image(`${STACK}-iris`));
    const env = plan.translation.taskDefinitions.find((t) => t.family === `${STACK}-iris-worker`)!
      .containerDefinitions![0]!.environment!;
    expect(env).toEqual(
      expect.arrayContaining([
        { name: 'QUEUE_NAME', value: 'jobs-stack-iris-jobs' },
        { name: 'AWS_REGION', value: 'us-east-1' },
        { name: 'S3_BUCKET', value: plan.bucket },
      ]),
    );
    expect(env.map((e) => e.name)).not.toContain('AWS_ENDPOINT_URL_SQS');
    expect(env.map((e) => e.name)).not.toContain('S3_ENDPOINT_URL');
  });

  it('creates the queue and its dead-letter queue, the scaling from zero, Spot, and a task role for that queue only', async () => {
    const { plan, result } = await planAndApply();
    expect(result.queues).toEqual([expect.objectContaining({ name: 'jobs-stack-iris-jobs', created: true })]);
    const sqs = client(SQSClient);
    const attrs = async (name: string) => {
      const url = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
      return (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] })))
        .Attributes!;
    };
    const main = await attrs('jobs-stack-iris-jobs');
    const dlq = await attrs('jobs-stack-iris-jobs-dlq');
    expect(main.VisibilityTimeout).toBe('90');
    expect(main.SqsManagedSseEnabled).toBe('true');
    expect(dlq.SqsManagedSseEnabled).toBe('true');
    expect(JSON.parse(main.RedrivePolicy!)).toEqual({
      deadLetterTargetArn: dlq.QueueArn,
      maxReceiveCount: 4,
    });
    sqs.destroy();

    const aas = client(ApplicationAutoScalingClient);
    const resource = `service/${STACK}/iris-worker`;
    const targets = await aas.send(
      new DescribeScalableTargetsCommand({ ServiceNamespace: 'ecs', ResourceIds: [resource] }),
    );
    expect(targets.ScalableTargets?.[0]).toMatchObject({ MinCapacity: 0, MaxCapacity: 6 });
    const policies = (
      await aas.send(new DescribeScalingPoliciesCommand({ ServiceNamespace: 'ecs', ResourceId: resource }))
    ).ScalingPolicies!;
    const tracking = policies.find((p) => p.PolicyType === 'TargetTrackingScaling')!;
    expect(tracking.TargetTrackingScalingPolicyConfiguration?.TargetValue).toBe(50);
    const metrics =
      tracking.TargetTrackingScalingPolicyConfiguration?.CustomizedMetricSpecification?.Metrics ?? [];
    expect(metrics.map((m) => m.MetricStat?.Metric?.MetricName ?? m.Expression)).toEqual([
      'ApproximateNumberOfMessagesVisible',
      'RunningTaskCount',
      'waiting / running',
    ]);
    const step = policies.find((p) => p.PolicyType === 'StepScaling')!;
    expect(step.StepScalingPolicyConfiguration?.StepAdjustments).toEqual([
      { MetricIntervalLowerBound: 0, ScalingAdjustment: 1 },
    ]);
    aas.destroy();

    const cw = client(CloudWatchClient);
    const alarm = (
      await cw.send(new DescribeAlarmsCommand({ AlarmNamePrefix: `mlship-${STACK}-iris-worker` }))
    ).MetricAlarms![0]!;
    // One waiting item is enough: >= 1, not > 1 (the step Copilot's workers miss).
    expect(alarm).toMatchObject({ ComparisonOperator: 'GreaterThanOrEqualToThreshold', Threshold: 1 });
    expect(alarm.AlarmActions).toEqual([step.PolicyARN]);
    expect(alarm.Metrics?.find((m) => m.ReturnData)?.Expression).toBe('IF(FILL(running, 0) < 1, waiting, 0)');
    cw.destroy();

    const ecs = client(ECSClient);
    const svc = (await ecs.send(new DescribeServicesCommand({ cluster: STACK, services: ['iris-worker'] })))
      .services![0]!;
    expect(svc.desiredCount).toBe(0);
    expect(svc.loadBalancers ?? []).toEqual([]);
    // A capacity provider strategy instead of a launch type (moto keeps no strategy to read back).
    expect(svc.launchType).not.toBe('FARGATE');
    expect(plan.translation.services.find((s) => s.name === 'iris-worker')?.capacityProvider).toBe(
      'FARGATE_SPOT',
    );
    const cluster = (await ecs.send(new DescribeClustersCommand({ clusters: [STACK] }))).clusters![0]!;
    expect(cluster.capacityProviders).toEqual(expect.arrayContaining(['FARGATE', 'FARGATE_SPOT']));
    ecs.destroy();

    const iam = client(IAMClient);
    const role = plan.roles.task!.name;
    const names = (await iam.send(new ListRolePoliciesCommand({ RoleName: role }))).PolicyNames!;
    expect(names).toContain('mlship-queues');
    const doc = JSON.parse(
      decodeURIComponent(
        (await iam.send(new GetRolePolicyCommand({ RoleName: role, PolicyName: 'mlship-queues' })))
          .PolicyDocument!,
      ),
    );
    expect(doc.Statement).toEqual([
      {
        Sid: 'ConsumeJobQueues',
        Effect: 'Allow',
        Action: [
          'sqs:GetQueueUrl',
          'sqs:GetQueueAttributes',
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:ChangeMessageVisibility',
        ],
        Resource: ['arn:aws:sqs:us-east-1:123456789012:jobs-stack-iris-jobs'],
      },
    ]);
    // Nothing else of SQS anywhere in the role (not the dead-letter queue, no wildcard).
    const all = await Promise.all(
      names.map(async (n) =>
        decodeURIComponent(
          (await iam.send(new GetRolePolicyCommand({ RoleName: role, PolicyName: n }))).PolicyDocument!,
        ),
      ),
    );
    expect(all.join('\n').match(/"sqs:[A-Za-z]+"/g)?.length).toBe(5);
    expect(all.join('\n')).not.toMatch(/"sqs:\*"|jobs-dlq/);
    iam.destroy();
  });

  it('a re-apply finds the queues and scaling as they are and changes nothing', async () => {
    const { result } = await planAndApply();
    expect(result.queues).toEqual([
      expect.objectContaining({
        created: false,
        changed: [],
        deadLetter: { name: 'jobs-stack-iris-jobs-dlq', created: false },
      }),
    ]);
    expect(result.scaling).toEqual([
      { service: 'iris-worker', minTasks: 0, maxTasks: 6, created: false, changed: [] },
    ]);
  });

  it('--destroy removes the scaling and keeps the queues; --delete-data deletes them', async () => {
    const { plan } = await planAndApply();
    const withAws = async <T>(f: (aws: ReturnType<typeof createDeployApis>) => Promise<T>) => {
      const aws = createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
      try {
        return await f(aws);
      } finally {
        aws.destroy();
      }
    };
    const destroy = (deleteData: boolean) =>
      withAws((aws) =>
        destroyEcs(
          plan,
          { aws, log: () => undefined },
          { deleteData, waitTimeoutSeconds: 0, pollSeconds: 0 },
        ),
      );
    const scan = (deleteData: boolean) =>
      withAws((aws) => scanLeftovers(plan, { aws, log: () => undefined }, { deleteData }));
    const queues = async () => {
      const sqs = client(SQSClient);
      const urls = (await sqs.send(new ListQueuesCommand({ QueueNamePrefix: STACK }))).QueueUrls ?? [];
      sqs.destroy();
      return urls.map((u) => u.split('/').pop()).sort();
    };
    const kept = await destroy(false);
    expect(kept.removed).toContain('scaling of iris-worker (scalable target, policies, alarm)');
    expect(kept.kept.join('\n')).toMatch(
      /queue jobs-stack-iris-jobs and its dead-letter queue jobs-stack-iris-jobs-dlq, with any items in them \(remove with: mlship deploy ecs --destroy --delete-data\)/,
    );
    expect(await queues()).toEqual(['jobs-stack-iris-jobs', 'jobs-stack-iris-jobs-dlq']);
    const aas = client(ApplicationAutoScalingClient);
    const targets = await aas.send(
      new DescribeScalableTargetsCommand({
        ServiceNamespace: 'ecs',
        ResourceIds: [`service/${STACK}/iris-worker`],
      }),
    );
    aas.destroy();
    expect(targets.ScalableTargets ?? []).toEqual([]);
    const cw = client(CloudWatchClient);
    const alarms = await cw.send(
      new DescribeAlarmsCommand({ AlarmNamePrefix: `mlship-${STACK}-iris-worker` }),
    );
    cw.destroy();
    expect(alarms.MetricAlarms ?? []).toEqual([]);
    // The tag scan after --destroy counts the queues as kept data, not as something billed.
    const leftovers = await scan(false);
    const sqsArns = leftovers.kept.filter((a) => a.includes(':sqs:'));
    expect(sqsArns.sort()).toEqual([plan.queues![0]!.arn, plan.queues![0]!.deadLetter.arn].sort());
    expect(leftovers.billed.filter((a) => a.includes(':sqs:'))).toEqual([]);

    const deleted = await destroy(true);
    expect(deleted.removed).toEqual(
      expect.arrayContaining([
        'queue jobs-stack-iris-jobs (and its items)',
        'queue jobs-stack-iris-jobs-dlq (and its items)',
      ]),
    );
    expect(await queues()).toEqual([]);
  });
});
