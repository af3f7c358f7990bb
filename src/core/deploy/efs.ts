// The named volumes a stack still has once its database and files are managed (a
// service's own data folder) become EFS file systems: encrypted at rest and in transit,
// mounted from the tasks' subnets through an access point owned by the container's user,
// reachable only from the tasks' security groups. File system ids exist only once the
// apply creates them: the plan's task definitions carry placeholders the apply replaces.

import type { RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import type { Stack } from '../../config/stack-model.js';
import { isManagedCandidate } from './database.js';
import type { ApplyDeps, DeployNetwork } from './deps.js';

export interface EfsVolumePlan {
  volume: string;
  /** The file system's creation token (idempotency). */
  token: string;
  mounts: { service: string; target: string }[];
  /** The container user the access point belongs to (numeric `user:`; else the image's, at apply). */
  uid?: number;
}

export const efsPlaceholders = (volume: string) => ({
  fileSystemId: `fs-planned-${volume}`,
  accessPointId: `fsap-planned-${volume}`,
});

export function planEfs(stack: Stack): EfsVolumePlan[] {
  const byVolume = new Map<string, EfsVolumePlan>();
  for (const s of stack.services) {
    // A database kept as a task (--keep-db-container) keeps its old behaviour and warning.
    if (isManagedCandidate(s)) continue;
    for (const v of s.volumes) {
      if (v.type !== 'volume' || !v.source) continue;
      const plan = byVolume.get(v.source) ?? {
        volume: v.source,
        token: `mlship-${stack.name}-${v.source}`,
        mounts: [],
      };
      plan.mounts.push({ service: s.name, target: v.target });
      const uid = /^(\d+)/.exec(s.user ?? '')?.[1];
      if (uid !== undefined && plan.uid === undefined) plan.uid = Number(uid);
      byVolume.set(v.source, plan);
    }
  }
  return [...byVolume.values()];
}

export interface EfsResult {
  volume: string;
  fileSystemId: string;
  accessPointId: string;
  created: boolean;
}

/** Creates what each volume needs, and returns the ids that replace the plan's placeholders. */
export async function ensureEfs(
  stack: string,
  plans: EfsVolumePlan[],
  deps: ApplyDeps,
  network: DeployNetwork,
  userOf: (volume: EfsVolumePlan) => Promise<number>,
): Promise<EfsResult[]> {
  if (!plans.length) return [];
  const subnets = await deps.aws.ec2.subnets(network.subnets);
  // EFS takes one mount target per Availability Zone.
  const perZone = new Map<string, string>();
  for (const s of subnets) if (!perZone.has(s.zone)) perZone.set(s.zone, s.id);
  const sg = await deps.aws.ec2.ensureSecurityGroup({
    vpcId: subnets[0]!.vpcId,
    name: `${stack}-efs`,
    description: `mlship: the file systems of stack ${stack}, reachable from its tasks only`,
  });
  for (const group of network.securityGroups)
    await deps.aws.ec2.allowIngress(sg.id, {
      port: 2049,
      fromGroup: group,
      description: `mlship: tasks of stack ${stack}`,
    });
  const tags = { 'mlship:stack': stack, 'mlship:managed': 'true' };
  const results: EfsResult[] = [];
  for (const p of plans) {
    const fs = await deps.aws.efs.ensureFileSystem(p.token, tags);
    await deps.aws.efs.ensureMountTargets(fs.id, [...perZone.values()], sg.id);
    const uid = await userOf(p);
    const ap = await deps.aws.efs.ensureAccessPoint({
      fileSystemId: fs.id,
      name: p.token,
      path: `/${p.volume}`,
      uid,
      gid: uid,
      tags,
    });
    deps.log(
      `file system ${p.token} (${fs.id}): ${fs.created ? 'created' : 'exists'}, access point for uid ${uid}`,
    );
    results.push({ volume: p.volume, fileSystemId: fs.id, accessPointId: ap.id, created: fs.created });
  }
  return results;
}

/** The task definition with the apply's EFS ids in place of the plan's placeholders. */
export function withEfsIds(
  td: RegisterTaskDefinitionCommandInput,
  ids: EfsResult[],
): RegisterTaskDefinitionCommandInput {
  if (!td.volumes?.some((v) => v.efsVolumeConfiguration)) return td;
  return {
    ...td,
    volumes: td.volumes.map((v) => {
      const c = v.efsVolumeConfiguration;
      const real = c && ids.find((i) => efsPlaceholders(i.volume).fileSystemId === c.fileSystemId);
      return real && c
        ? {
            ...v,
            efsVolumeConfiguration: {
              ...c,
              fileSystemId: real.fileSystemId,
              authorizationConfig: { ...c.authorizationConfig, accessPointId: real.accessPointId },
            },
          }
        : v;
    }),
  };
}
