// The ECS GPU AMI a deploy would launch, as the GPU fit check needs it: the region's SSM
// parameter (its JSON value names the AMI and its version), then EC2 DescribeImages for
// the AMI's name and description (which is where a driver version would be written).
// Amazon Linux 2023 first, as gpu-capacity-api.ts launches it, else Amazon Linux 2.

import type * as Ec2Sdk from '@aws-sdk/client-ec2';
import type * as SsmSdk from '@aws-sdk/client-ssm';
import type { AwsTarget } from '../../core/deploy/aws-apis.js';
import type { GpuAmiApi, GpuAmiFacts } from '../../core/deploy/gpu-fit-apis.js';
import { call } from './aws-call.js';

export const GPU_AMI_PARAMETERS: { name: string; os: GpuAmiFacts['os'] }[] = [
  { name: '/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended', os: 'amazon-linux-2023' },
  { name: '/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended', os: 'amazon-linux-2' },
];

interface RecommendedValue {
  image_id?: string;
  image_name?: string;
  image_version?: string;
}

function parseValue(value: string | undefined): RecommendedValue | undefined {
  if (!value) return undefined;
  try {
    return JSON.parse(value) as RecommendedValue;
  } catch {
    // The `/image_id` sub-parameter holds the id alone.
    return /^ami-[0-9a-f]+$/.test(value.trim()) ? { image_id: value.trim() } : undefined;
  }
}

export function createGpuAmiApi(
  ssmSdk: typeof SsmSdk,
  ssmClient: SsmSdk.SSMClient,
  ec2Sdk: typeof Ec2Sdk,
  ec2Client: Ec2Sdk.EC2Client,
): GpuAmiApi {
  return {
    async recommendedGpuAmi() {
      const r = await call('look up the ECS GPU AMI', () =>
        ssmClient.send(new ssmSdk.GetParametersCommand({ Names: GPU_AMI_PARAMETERS.map((p) => p.name) })),
      );
      for (const p of GPU_AMI_PARAMETERS) {
        const value = parseValue(r.Parameters?.find((x) => x.Name === p.name)?.Value);
        if (!value?.image_id) continue;
        const images = await call(`describe the ECS GPU AMI ${value.image_id}`, () =>
          ec2Client.send(new ec2Sdk.DescribeImagesCommand({ ImageIds: [value.image_id!] })),
        );
        const image = images.Images?.[0];
        const name = image?.Name ?? value.image_name;
        const version = value.image_version?.replace(/^.*?(\d{8}).*$/, '$1');
        return {
          id: value.image_id,
          os: p.os,
          ...(name ? { name } : {}),
          ...(image?.Description ? { description: image.Description } : {}),
          ...(version ? { version } : {}),
        };
      }
      return undefined;
    },
  };
}

/** Its own SSM and EC2 clients, for a caller that has no deploy APIs at hand (plans). */
export async function gpuAmiApiFor(target: AwsTarget): Promise<{ api: GpuAmiApi; destroy(): void }> {
  const [ssmSdk, ec2Sdk] = await Promise.all([import('@aws-sdk/client-ssm'), import('@aws-sdk/client-ec2')]);
  const config = {
    region: target.region,
    ...(target.profile ? { profile: target.profile } : {}),
    ...(target.endpointUrl ? { endpoint: target.endpointUrl } : {}),
  };
  const ssm = new ssmSdk.SSMClient(config);
  const ec2 = new ec2Sdk.EC2Client(config);
  return {
    api: createGpuAmiApi(ssmSdk, ssm, ec2Sdk, ec2),
    destroy() {
      ssm.destroy();
      ec2.destroy();
    },
  };
}
