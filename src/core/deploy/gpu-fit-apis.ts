// What the GPU fit check (gpu-fit.ts) reads from the outside world, declared here so the
// adapters implement it without importing core code: the region's ECS GPU AMI (SSM and
// EC2, adapters/aws/gpu-ami-api.ts) and an image's labels (the local engine, else the
// registry's image config: adapters/docker/image-labels.ts).

/** What the region's SSM parameter and EC2 say about the ECS GPU AMI. */
export interface GpuAmiFacts {
  id: string;
  name?: string;
  description?: string;
  /** The ECS AMI version (its release date, "20260820"). */
  version?: string;
  os: 'amazon-linux-2023' | 'amazon-linux-2';
}

export interface GpuAmiApi {
  /** The ECS-optimized GPU AMI the region's SSM parameter names (Amazon Linux 2023, else 2). */
  recommendedGpuAmi(): Promise<GpuAmiFacts | undefined>;
}

export interface ImageLabels {
  /**
   * Labels of an image, without pulling it: the local engine's when it has the image, else
   * (unless `localOnly`: names of local builds mean nothing to a registry) the registry's
   * image config; undefined when neither has it.
   */
  labels(
    ref: string,
    localOnly?: boolean,
  ): Promise<{ labels: Record<string, string>; source: 'local' | 'registry' } | undefined>;
}
