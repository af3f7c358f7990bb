// A stack planned for moto's account and region, with the deploy adapters pointed at moto and
// tagging what they create with the stack: the set-up of the tests that apply parts of a stack
// to moto by hand (operate, rollouts on ECS), and a rollout of one of its services there.

import path from 'node:path';
import { expect } from 'vitest';
import { createDeployApis } from '../../src/adapters/aws/deploy-apis.js';
import type { AwsDeployApis } from '../../src/core/deploy/aws-apis.js';
import { type EcsPlanResult, planEcs } from '../../src/core/deploy/plan.js';
import { EcsRollout, type EcsRolloutDeps } from '../../src/core/rollout/ecs.js';
import type { Clock } from '../../src/io/clock.js';
import type { Moto } from './moto.js';

export const MOTO_ACCOUNT = '123456789012';

export async function planOnMoto(
  moto: Moto,
  file: string,
  region: string,
): Promise<{ plan: EcsPlanResult; aws: AwsDeployApis }> {
  const plan = await planEcs({
    file,
    imageTag: 'abc123',
    force: false,
    writeFiles: false,
    region,
    accountId: MOTO_ACCOUNT,
  });
  const aws = createDeployApis({ region, endpointUrl: moto.endpoint, tags: { 'mlship:stack': plan.stack } });
  return { plan, aws };
}

export interface MotoRollout {
  plan: EcsPlanResult;
  aws: AwsDeployApis;
  /** The project's folder: mlship.yaml, and the rollouts' state in deploy/ecs-rollouts.json. */
  dir: string;
  clock: Clock;
  /** Each wait for a stable service, as `<service> <task definition>:<revision>`. */
  waited: string[];
  /** The rolled-out service (default iris). */
  service?: string;
  /** A service whose deployment fails: its wait throws `<service> did not become stable: the deployment failed (test)`. */
  failOn?: string;
  /** Any other dependency in place of moto's adapter (a test's log, metric answers, the proxy's bake). */
  deps?: Partial<EcsRolloutDeps>;
  /** The rollouts' state (default deploy/ecs-rollouts.json in `dir`). */
  stateFile?: string;
}

/**
 * A rollout on moto through the deploy adapters. moto's services are stable at once, so the
 * wait checks that the service runs the revision it was asked to and records it (the CLI waits
 * for running tasks).
 */
export function ecsRolloutOnMoto(o: MotoRollout): EcsRollout {
  const { plan, aws } = o;
  return new EcsRollout(
    {
      ecs: aws.ecs,
      elb: aws.elb,
      ec2: aws.ec2,
      logs: aws.logs,
      cloudwatch: aws.cloudwatch,
      clock: o.clock,
      log: () => undefined,
      waitStable: async (name, td) => {
        if (name === o.failOn) throw new Error(`${name} did not become stable: the deployment failed (test)`);
        expect((await aws.ecs.describeService(plan.stack, name))?.taskDefinition).toBe(td);
        o.waited.push(`${name} ${td.split('/').pop()}`);
      },
      ...o.deps,
    },
    {
      plan,
      configFile: path.join(o.dir, 'mlship.yaml'),
      stateFile: o.stateFile ?? path.join(o.dir, 'deploy', 'ecs-rollouts.json'),
    },
    o.service ?? 'iris',
  );
}
