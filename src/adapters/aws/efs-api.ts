// Amazon EFS: a file system per named volume of a stack (what a named volume was locally),
// encrypted at rest, reached through mount targets in the tasks' subnets and an access
// point owned by the container's user.

import type * as EfsSdk from '@aws-sdk/client-efs';
import type { EfsApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

const tagList = (tags: Record<string, string>) =>
  Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

export function createEfsApi(efsSdk: typeof EfsSdk, client: EfsSdk.EFSClient): EfsApi {
  return {
    async ensureFileSystem(token, tags) {
      const found = await call(`look up file system ${token}`, () =>
        client.send(new efsSdk.DescribeFileSystemsCommand({ CreationToken: token })),
      );
      const fs = found.FileSystems?.[0];
      if (fs?.FileSystemId) return { id: fs.FileSystemId, created: false };
      const created = await call(`create file system ${token}`, () =>
        client.send(
          new efsSdk.CreateFileSystemCommand({
            CreationToken: token,
            Encrypted: true,
            PerformanceMode: 'generalPurpose',
            ThroughputMode: 'elastic',
            Tags: tagList({ Name: token, ...tags }),
          }),
        ),
      );
      return { id: created.FileSystemId!, created: true };
    },
    async ensureMountTargets(fileSystemId, subnets, securityGroup) {
      const existing = await call(`list the mount targets of ${fileSystemId}`, () =>
        client.send(new efsSdk.DescribeMountTargetsCommand({ FileSystemId: fileSystemId })),
      );
      const have = new Set((existing.MountTargets ?? []).map((m) => m.SubnetId));
      let created = 0;
      for (const subnet of subnets.filter((s) => !have.has(s))) {
        await call(`create a mount target of ${fileSystemId} in ${subnet}`, () =>
          client.send(
            new efsSdk.CreateMountTargetCommand({
              FileSystemId: fileSystemId,
              SubnetId: subnet,
              SecurityGroups: [securityGroup],
            }),
          ),
        );
        created++;
      }
      return { created };
    },
    async ensureAccessPoint(spec) {
      const existing = await call(`list the access points of ${spec.fileSystemId}`, () =>
        client.send(new efsSdk.DescribeAccessPointsCommand({ FileSystemId: spec.fileSystemId })),
      );
      const ap = existing.AccessPoints?.find(
        (a) => a.Name === spec.name || a.Tags?.some((t) => t.Key === 'Name' && t.Value === spec.name),
      );
      if (ap?.AccessPointId) return { id: ap.AccessPointId, created: false };
      const created = await call(`create access point ${spec.name}`, () =>
        client.send(
          new efsSdk.CreateAccessPointCommand({
            FileSystemId: spec.fileSystemId,
            PosixUser: { Uid: spec.uid, Gid: spec.gid },
            RootDirectory: {
              Path: spec.path,
              CreationInfo: { OwnerUid: spec.uid, OwnerGid: spec.gid, Permissions: '750' },
            },
            Tags: tagList({ Name: spec.name, ...spec.tags }),
          }),
        ),
      );
      return { id: created.AccessPointId!, created: true };
    },
  };
}
