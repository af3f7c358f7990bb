// Where `deploy ecs` reads what the GPU fit check needs: image labels from the local engine
// (reached only if a GPU image is checked) or the registry's image config, and with --apply
// the region's ECS GPU AMI through SSM and EC2 (clients made on first use and closed after).

import { gpuAmiApiFor } from '../adapters/aws/gpu-ami-api.js';
import { createImageLabels } from '../adapters/docker/image-labels.js';
import { builtinMatrix } from '../core/bakeoff/matrix.js';
import type { AwsTarget } from '../core/deploy/aws-apis.js';
import type { GpuAmiApi, GpuFitSource } from '../core/deploy/gpu-fit.js';
import type { CliContext } from './context.js';

export function gpuFitSource(ctx: CliContext, aws: AwsTarget | undefined): GpuFitSource {
  const gpuAmi: GpuAmiApi | undefined = aws
    ? {
        async recommendedGpuAmi() {
          const { api, destroy } = await gpuAmiApiFor(aws);
          try {
            return await api.recommendedGpuAmi();
          } finally {
            destroy();
          }
        },
      }
    : undefined;
  return {
    images: createImageLabels({ engine: () => ctx.engine(), timeoutMs: 5000 }),
    ...(gpuAmi ? { gpuAmi } : {}),
    matrix: builtinMatrix(),
  };
}
