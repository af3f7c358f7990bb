// `deploy ecs --destroy` decisions with an AWS double and a fake clock: the order AWS
// requires, waiting for draining services and a load balancer's network interfaces,
// and what is kept. The real calls are tested against moto in test/docker/deploy-ecs.test.ts.

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { destroyEcs } from '../../../src/core/deploy/destroy.js';
import { type EcsPlanResult, planEcs } from '../../../src/core/deploy/plan.js';
import { strictAws } from '../../helpers/aws-fake.js';

const root = path.join(os.tmpdir(), `mlship-destroy-${process.pid}`);

async function plan(): Promise<EcsPlanResult> {
  mkdirSync(root, { recursive: true });
  writeFileSync(
    path.join(root, 'compose.yaml'),
    'name: shop\nservices:\n  web:\n    build: ./web\n    ports: ["80:3000"]\n  worker:\n    image: shop/worker:dev\n',
  );
  return planEcs({
    file: path.join(root, 'compose.yaml'),
    region: 'eu-west-1',
    accountId: '123456789012',
    imageTag: 'x',
    force: true,
    writeFiles: false,
  });
}

function fake(over: { groupBusyFor?: number; clusterBusyFor?: number; managed?: boolean } = {}) {
  const calls: string[] = [];
  let t = 0;
  let groupTries = 0;
  let clusterTries = 0;
  const aws = {
    iam: {
      deleteServiceRole: async (name: string) => {
        calls.push(`deleteRole ${name}`);
        return true;
      },
    },
    s3: { bucketState: async () => 'missing' as const },
    ecs: {
      deleteService: async (_c: string, name: string) => {
        calls.push(`deleteService ${name}`);
        return true;
      },
      activeRevisions: async (family: string) => [
        `arn:aws:ecs:eu-west-1:123456789012:task-definition/${family}:3`,
      ],
      deregisterTaskDefinition: async (arn: string) => {
        calls.push(`deregister ${arn.split('/').pop()}`);
      },
      deleteCluster: async () => {
        calls.push('deleteCluster');
        return ++clusterTries > (over.clusterBusyFor ?? 0) ? true : ('busy' as const);
      },
    },
    elb: {
      findLoadBalancer: async () => ({
        arn: 'lb-arn',
        vpcId: 'vpc-1',
        managed: over.managed ?? true,
        securityGroups: ['sg-alb'],
      }),
      deleteLoadBalancer: async () => {
        calls.push('deleteLoadBalancer');
        return { listeners: 1, targetGroups: ['shop-web-3000'] };
      },
      deleteTargetGroups: async (names: string[]) => {
        calls.push(`deleteTargetGroups ${names.join(',')}`);
        return [];
      },
    },
    gpu: {
      deleteCapacity: async () => {
        calls.push('deleteCapacity');
        return [];
      },
    },
    ec2: {
      defaultNetwork: async () => ({ vpcId: 'vpc-1', subnets: ['subnet-a'], securityGroups: ['sg-1'] }),
      findSecurityGroup: async () => 'sg-alb',
      revokeIngressFrom: async (group: string, from: string) => {
        calls.push(`revoke ${from} from ${group}`);
        return 1;
      },
      deleteSecurityGroup: async () => {
        calls.push('deleteSecurityGroup');
        return ++groupTries > (over.groupBusyFor ?? 0) ? ('deleted' as const) : ('in-use' as const);
      },
    },
  };
  const clock = {
    now: () => t,
    monotonic: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
  };
  return { aws: strictAws(aws), calls, clock, elapsed: () => t / 1000 };
}

describe('deploy ecs --destroy', () => {
  it('removes in the order AWS accepts and keeps images and logs', async () => {
    const f = fake();
    const r = await destroyEcs(await plan(), { aws: f.aws, log: () => undefined, clock: f.clock });
    expect(f.calls).toEqual([
      'deleteService web',
      'deleteService worker',
      'deleteCapacity',
      'deleteLoadBalancer',
      'deleteTargetGroups shop-web-3000',
      'revoke sg-alb from sg-1',
      'deleteSecurityGroup',
      'deregister shop-web:3',
      'deregister shop-worker:3',
      'deleteCluster',
      // mlship's roles of the stack: nothing billed, nothing kept in them.
      'deleteRole mlship-shop-execution',
    ]);
    expect(r.remaining).toEqual([]);
    expect(r.kept).toEqual([
      'ECR repositories shop/web, shop/worker (remove with: aws ecr delete-repository --force --repository-name <name>)',
      'log group /mlship/shop (remove with: aws logs delete-log-group --log-group-name /mlship/shop)',
    ]);
  });

  it("waits for a deleted load balancer's interfaces and for draining services, polling", async () => {
    const f = fake({ groupBusyFor: 3, clusterBusyFor: 2 });
    const r = await destroyEcs(
      await plan(),
      { aws: f.aws, log: () => undefined, clock: f.clock },
      { pollSeconds: 10 },
    );
    expect(f.calls.filter((c) => c === 'deleteSecurityGroup')).toHaveLength(4);
    expect(f.calls.filter((c) => c === 'deleteCluster')).toHaveLength(3);
    expect(f.elapsed()).toBe(50);
    expect(r.removed).toContain('cluster shop');
    expect(r.remaining).toEqual([]);
  });

  it('gives up after the timeout and says what is left, to be removed by the next run', async () => {
    const f = fake({ groupBusyFor: 1000, clusterBusyFor: 1000 });
    const r = await destroyEcs(
      await plan(),
      { aws: f.aws, log: () => undefined, clock: f.clock },
      { pollSeconds: 15, waitTimeoutSeconds: 60 },
    );
    expect(r.remaining).toEqual([
      "security group shop-alb (sg-alb): still in use by the load balancer's network interfaces",
      'cluster shop: its services are still draining',
    ]);
    expect(f.elapsed()).toBeLessThanOrEqual(60);
  });

  it('a load balancer mlship did not create is left alone', async () => {
    const f = fake({ managed: false });
    const r = await destroyEcs(await plan(), { aws: f.aws, log: () => undefined, clock: f.clock });
    expect(f.calls).not.toContain('deleteLoadBalancer');
    expect(r.kept[0]).toBe('load balancer shop (not created by mlship)');
  });
});
