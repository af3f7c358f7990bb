// `mlship deploy ecs --scale <service>=<tasks>`: how many tasks a deployed service runs.
// 0 stops a service without deleting it; for the GPU task, its instances stop too (the
// capacity provider scales the Auto Scaling group with the tasks), which is how a GPU
// model that is not in use stops costing an instance-hour.

import { UsageError } from '../../io/errors.js';
import type { AwsDeployApis } from './aws-apis.js';
import { gpuCapacityNames } from './gpu-capacity.js';
import type { EcsPlanResult } from './plan.js';

export interface ScaleChange {
  /** The ECS service (the GPU task's services share one). */
  service: string;
  /** The stack services it runs. */
  containers: string[];
  from: number;
  to: number;
}

/** Parses `web=2,llm=0` against the plan's services; a GPU service may be named by any of its containers. */
export function parseScale(text: string, plan: EcsPlanResult): Map<string, number> {
  const wanted = new Map<string, number>();
  const known = plan.translation.services.flatMap((s) => [s.name, ...s.containers.map((c) => c.name)]);
  for (const part of text.split(',').filter(Boolean)) {
    const m = /^([A-Za-z0-9_.-]+)=(\d{1,4})$/.exec(part.trim());
    if (!m) {
      throw new UsageError(`--scale "${part}" is not <service>=<tasks>`, {
        hint: 'e.g. --scale web=2,llm=0',
      });
    }
    const svc = plan.translation.services.find(
      (s) => s.name === m[1] || s.containers.some((c) => c.name === m[1]),
    );
    if (!svc) {
      throw new UsageError(`--scale: no service ${m[1]} in stack ${plan.stack}`, {
        hint: `one of: ${[...new Set(known)].join(', ')}`,
      });
    }
    const count = Number(m[2]);
    if (wanted.has(svc.name) && wanted.get(svc.name) !== count) {
      throw new UsageError(`--scale names ${svc.name} twice with different counts`, {
        hint: `GPU services share the task ${svc.name}: scale it once`,
      });
    }
    wanted.set(svc.name, count);
  }
  if (!wanted.size) throw new UsageError('--scale needs at least one <service>=<tasks>');
  return wanted;
}

export async function scaleEcs(
  plan: EcsPlanResult,
  wanted: Map<string, number>,
  aws: AwsDeployApis,
): Promise<ScaleChange[]> {
  const changes: ScaleChange[] = [];
  for (const [name, to] of wanted) {
    const existing = await aws.ecs.describeService(plan.stack, name);
    if (!existing) {
      throw new UsageError(`service ${name} is not deployed in cluster ${plan.stack}`, {
        hint: 'deploy it first: mlship deploy ecs --apply',
      });
    }
    const from = existing.desiredCount ?? 0;
    const svc = plan.translation.services.find((s) => s.name === name)!;
    // More GPU tasks need more instances: room for twice the tasks, for rolling deployments.
    if (svc.launchType === 'EC2' && to > 1)
      await aws.gpu.resizeAutoScalingGroup(gpuCapacityNames(plan.stack).autoScalingGroup, to * 2);
    if (from !== to) await aws.ecs.scaleService(plan.stack, name, to);
    changes.push({ service: name, containers: svc.containers.map((c) => c.name), from, to });
  }
  return changes;
}
