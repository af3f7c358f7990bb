// A stack planned for moto's account and region, with the deploy adapters pointed at moto and
// tagging what they create with the stack: the set-up of the tests that apply parts of a stack
// to moto by hand (operate, rollouts on ECS).

import { createDeployApis } from '../../src/adapters/aws/deploy-apis.js';
import type { AwsDeployApis } from '../../src/core/deploy/aws-apis.js';
import { type EcsPlanResult, planEcs } from '../../src/core/deploy/plan.js';
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
