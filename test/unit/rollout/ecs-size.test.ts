// A candidate on ECS sized by its share (core/rollout/ecs-size.ts): how many tasks for which
// share, what they cost an hour, and the order of a step (more tasks before more requests,
// fewer only after fewer). The same against moto's ECS in test/tools/rollout-ecs.test.ts.

import type { Service } from '@aws-sdk/client-ecs';
import { describe, expect, it } from 'vitest';
import { candidateTasks, hourlyCost, resizeAround } from '../../../src/core/rollout/ecs-size.js';

const canary = (weight: number, mirror = false) => ({ mode: 'canary' as const, weight, mirror });

describe('candidateTasks', () => {
  it("a canary runs its share of the stable service's tasks, rounded up, at least one", () => {
    expect([10, 25, 26, 50, 100].map((w) => candidateTasks(4, canary(w)))).toEqual([1, 1, 2, 2, 4]);
    expect(candidateTasks(3, canary(34))).toBe(2);
    // The X-Model-Version override reaches it at any share; a stable service scaled to 0 too.
    expect(candidateTasks(4, canary(0))).toBe(1);
    expect(candidateTasks(0, canary(10))).toBe(1);
    expect(candidateTasks(4, { mode: 'ab', weight: 50, mirror: false })).toBe(2);
  });

  it("a shadow, or a canary with the rest mirrored to it, sees every request: the stable's count", () => {
    expect(candidateTasks(4, { mode: 'shadow', weight: 0, mirror: false })).toBe(4);
    expect(candidateTasks(4, canary(10, true))).toBe(4);
  });
});

describe('hourlyCost', () => {
  it('Fargate list prices times the tasks, with their date and region', () => {
    expect(hourlyCost({ cpu: '1024', memory: '2048' }, 1)).toBe(
      'about $0.049 an hour (1 × 1 vCPU, 2 GB on Fargate; list prices of 2025-11-01, us-east-1)',
    );
    expect(hourlyCost({ cpu: '512', memory: '1024' }, 3)).toMatch(
      /^about \$0\.074 an hour \(3 × 0\.5 vCPU, 1 GB/,
    );
  });

  it('says nothing for a revision without task-level sizes (an EC2 one)', () => {
    expect(hourlyCost({ containerDefinitions: [] }, 2)).toBeUndefined();
    expect(hourlyCost(undefined, 1)).toBeUndefined();
  });
});

describe('resizeAround', () => {
  const where = {
    cluster: 'demo',
    stableService: 'iris',
    candidateService: 'iris-candidate',
    candidateTaskDefinition: 'arn:aws:ecs:eu-west-1:1:task-definition/demo-iris:7',
  };
  const run = async (candidateNow: number, weight: number) => {
    const calls: string[] = [];
    const services: Record<string, Service> = {
      iris: { desiredCount: 4 },
      'iris-candidate': { desiredCount: candidateNow },
    };
    await resizeAround(
      {
        ecs: {
          describeServices: async (_c, names) =>
            names.map((serviceName) => ({ ...services[serviceName], serviceName })),
          scaleService: async (_c, name, n) => {
            calls.push(`scale ${name} ${n}`);
          },
        },
        waitStable: async (name, td) => {
          calls.push(`wait ${name} ${td.split('/').pop()}`);
        },
        log: () => undefined,
      },
      where,
      canary(weight),
      async () => {
        calls.push(`route ${weight}`);
      },
    );
    return calls;
  };

  it('more tasks first, waited for, then the requests', async () => {
    expect(await run(1, 50)).toEqual([
      'scale iris-candidate 2',
      'wait iris-candidate demo-iris:7',
      'route 50',
    ]);
    expect(await run(2, 100)).toEqual([
      'scale iris-candidate 4',
      'wait iris-candidate demo-iris:7',
      'route 100',
    ]);
  });

  it('fewer requests first, then fewer tasks; the same count, no scaling', async () => {
    expect(await run(4, 10)).toEqual(['route 10', 'scale iris-candidate 1']);
    expect(await run(1, 20)).toEqual(['route 20']);
  });
});
