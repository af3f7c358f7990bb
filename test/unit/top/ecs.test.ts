// `mlship top --aws`: the rows and CloudWatch queries of a deployed stack, through the real
// CloudWatch adapter over a client that checks every GetMetricData request against
// botocore's model and answers with a GetMetricData answer in the API's shape (also checked
// against the model; moto has no values for these metrics). Replicas and queues come from
// fakes here; test/tools/top-ecs.test.ts reads them from moto.

import { readFileSync } from 'node:fs';
import * as cwSdk from '@aws-sdk/client-cloudwatch';
import type { Service } from '@aws-sdk/client-ecs';
import { describe, expect, it } from 'vitest';
import { createCloudWatchApi } from '../../../src/adapters/aws/cloudwatch-api.js';
import { EcsTopSource, type EcsTopStack, ecsRows } from '../../../src/core/top/ecs.js';
import { fakeClock } from '../../../src/io/clock.js';
import { loadServiceModel, validateShape } from '../../helpers/aws-model.js';

const model = loadServiceModel('cloudwatch');
const recorded = JSON.parse(readFileSync('fixtures/top/get-metric-data.json', 'utf8')) as {
  answer: cwSdk.GetMetricDataCommandOutput;
};

const STACK: EcsTopStack = {
  stack: 'shop',
  region: 'eu-west-1',
  cluster: 'shop',
  services: [
    { name: 'iris', containers: ['iris'] },
    { name: 'proxy', containers: ['proxy'] },
    { name: 'iris-worker', containers: ['iris-worker'] },
  ],
  models: ['iris'],
  workers: ['iris-worker'],
  namespace: 'mlship/shop',
  queues: [{ service: 'iris', name: 'shop-iris-jobs', deadLetter: 'shop-iris-jobs-dlq' }],
};
const LB = {
  loadBalancer: 'app/shop/50dc6c495c0c9188',
  targetGroups: [{ dimension: 'targetgroup/shop-proxy-80/73e2d6bc24d8a067', container: 'proxy' }],
};

describe('mlship top on ECS', () => {
  it('queries per model its own metrics, per load-balanced service its target group; ids CloudWatch accepts', () => {
    const rows = ecsRows(STACK, LB);
    expect(rows.map((r) => [r.name, r.role, Object.keys(r.queries).join(',')])).toEqual([
      ['iris', 'model', 'requests,errors,p50,p99,inFlight'],
      ['proxy', 'proxy', 'requests,errors,p50,p99'],
      ['iris-worker', 'worker', ''],
    ]);
    expect(rows[0]!.queries.p99).toEqual({
      id: 'm0_0_p99',
      metric: { namespace: 'mlship/shop', name: 'Latency', dimensions: { Service: 'iris' } },
      statistic: 'p99',
      periodSeconds: 60,
    });
    expect(rows[1]!.queries.requests!.metric).toEqual({
      namespace: 'AWS/ApplicationELB',
      name: 'RequestCount',
      dimensions: { TargetGroup: LB.targetGroups[0]!.dimension, LoadBalancer: LB.loadBalancer },
    });
    for (const q of rows.flatMap((r) => Object.values(r.queries)))
      expect(q.id).toMatch(/^[a-z][a-zA-Z0-9_]*$/);
  });

  it('a snapshot of the last complete minute: rates, 5xx share, percentiles in ms, replicas, queues', async () => {
    const sent: cwSdk.GetMetricDataCommandInput[] = [];
    const client = {
      async send(command: cwSdk.GetMetricDataCommand) {
        sent.push(command.input);
        if (model) expect(validateShape(model, 'GetMetricDataInput', command.input)).toEqual([]);
        return recorded.answer;
      },
    } as unknown as cwSdk.CloudWatchClient;
    if (model) expect(validateShape(model, 'GetMetricDataOutput', recorded.answer)).toEqual([]);
    const described: Partial<Service>[] = [
      { serviceName: 'iris', runningCount: 2, desiredCount: 2 },
      { serviceName: 'proxy', runningCount: 1, desiredCount: 1 },
      { serviceName: 'iris-worker', runningCount: 0, desiredCount: 1 },
    ];
    const source = new EcsTopSource(
      {
        ecs: {
          async describeServices(cluster, names) {
            expect([cluster, names]).toEqual(['shop', ['iris', 'proxy', 'iris-worker']]);
            return described as Service[];
          },
        },
        cloudwatch: createCloudWatchApi(cwSdk, client),
        loadBalancer: async () => LB,
        queue: {
          queueUrl: async (name) => `https://sqs/${name}`,
          counts: async (url) =>
            url.endsWith('dlq') ? { visible: 0, inFlight: 0 } : { visible: 40, inFlight: 5 },
        },
        clock: fakeClock(Date.parse('2026-12-02T12:00:30Z')),
      },
      STACK,
    );
    const s = await source.snapshot();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.StartTime).toEqual(new Date('2026-12-02T11:55:00Z'));
    expect(sent[0]!.EndTime).toEqual(new Date('2026-12-02T12:00:00Z'));
    expect(sent[0]!.MetricDataQueries).toHaveLength(9);
    const [iris, proxy, worker] = s.services;
    expect(iris).toMatchObject({ name: 'iris', replicas: { running: 2, desired: 2 }, inFlight: 3 });
    expect(iris!.requestsPerSecond).toBe(20);
    expect(iris!.errorRate).toBe(0.005);
    expect([iris!.p50Ms, iris!.p99Ms]).toEqual([4.2, 31.5]);
    expect(proxy!.requestsPerSecond).toBe(20.5);
    expect(proxy!.errorRate).toBe(0);
    expect(proxy!.p50Ms).toBeCloseTo(5.1, 9);
    expect(proxy!.p99Ms).toBeCloseTo(40.2, 9);
    expect(worker).toEqual({
      name: 'iris-worker',
      role: 'worker',
      versions: [],
      replicas: { running: 0, desired: 1 },
    });
    expect(s.queues).toEqual([
      { service: 'iris', name: 'shop-iris-jobs', waiting: 40, inFlight: 5, deadLetters: 0 },
    ]);
    expect(s).toMatchObject({ where: 'eu-west-1', windowSeconds: 60, at: '2026-12-02T12:00:00.000Z' });
  });
});
