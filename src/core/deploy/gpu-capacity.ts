// The EC2 capacity a GPU task runs on (`deploy ecs --apply`): an instance role and
// profile, a launch template on the region's ECS GPU AMI, an Auto Scaling group and a
// capacity provider with managed scaling, so instances follow the GPU tasks down to zero.

import { GPU_WEIGHTS_CACHE } from '../../generators/ecs-task-definitions.js';
import type { ApplyDeps, ApplyOptions, DeployNetwork } from './deps.js';
import { awsName, type EcsPlanResult } from './plan.js';

/** The GPU instances: an Auto Scaling group behind a capacity provider of the cluster. */
export interface GpuCapacityResult {
  instanceType: string;
  ami: string;
  capacityProvider: string;
  autoScalingGroup: string;
  maxInstances: number;
  created: string[];
}

/** Names of the GPU capacity of a stack. */
export function gpuCapacityNames(stack: string) {
  const name = awsName(`mlship-${stack}-gpu`, 64);
  return {
    instanceProfile: awsName(`mlship-${stack}-gpu-instance`, 64),
    launchTemplate: name,
    autoScalingGroup: name,
    capacityProvider: name,
  };
}

/**
 * What the GPU instances run at boot: join the cluster, with GPU support; and the folder where
 * tasks keep downloaded weights between restarts (the services run as non-root users, and a
 * host folder ECS would create is root's: sticky and writable for all, as /tmp is).
 */
export function gpuUserData(cluster: string): string {
  return [
    '#!/bin/bash',
    "cat >> /etc/ecs/ecs.config <<'EOF'",
    `ECS_CLUSTER=${cluster}`,
    'ECS_ENABLE_GPU_SUPPORT=true',
    'EOF',
    `mkdir -p ${GPU_WEIGHTS_CACHE.hostPath} && chmod 1777 ${GPU_WEIGHTS_CACHE.hostPath}`,
    '',
  ].join('\n');
}

export async function ensureGpuCapacity(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  network: DeployNetwork,
  options: ApplyOptions,
): Promise<GpuCapacityResult> {
  const { gpu } = deps.aws;
  const names = gpuCapacityNames(plan.stack);
  const instanceType = options.gpuInstanceType ?? plan.gpuInstanceType;
  const tasks = plan.translation.services
    .filter((s) => s.launchType === 'EC2')
    .reduce((n, s) => n + s.desiredCount, 0);
  // A rolling deployment starts the new task before stopping the old one: twice the instances.
  const maxInstances = Math.max(1, tasks) * 2;
  const created: string[] = [];
  const profile = await gpu.ensureInstanceProfile(names.instanceProfile);
  if (profile.created) created.push(`instance role and profile ${names.instanceProfile}`);
  const template = await gpu.ensureLaunchTemplate({
    name: names.launchTemplate,
    imageId: network.gpuAmi!,
    instanceType,
    instanceProfileArn: profile.arn,
    securityGroups: network.securityGroups,
    userData: gpuUserData(plan.stack),
    volumeGb: 100,
  });
  if (template.created) created.push(`launch template ${names.launchTemplate}`);
  else if (template.changed)
    deps.log(`launch template ${names.launchTemplate}: new version (AMI or instance type changed)`);
  const group = await gpu.ensureAutoScalingGroup({
    name: names.autoScalingGroup,
    launchTemplateId: template.id,
    subnets: network.subnets,
    maxSize: maxInstances,
  });
  if (group.created)
    created.push(`Auto Scaling group ${names.autoScalingGroup} (0 to ${maxInstances} × ${instanceType})`);
  const provider = await gpu.ensureCapacityProvider({
    name: names.capacityProvider,
    autoScalingGroupArn: group.arn,
    cluster: plan.stack,
  });
  if (provider.created) created.push(`capacity provider ${names.capacityProvider}`);
  for (const c of created) deps.log(`created ${c}`);
  return {
    instanceType,
    ami: network.gpuAmi!,
    capacityProvider: names.capacityProvider,
    autoScalingGroup: names.autoScalingGroup,
    maxInstances,
    created,
  };
}
