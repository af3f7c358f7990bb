// Amazon RDS: the stack's database. Aurora Serverless v2 (a cluster with one `db.serverless`
// writer, scaling to 0 ACU when the engine version allows it), or one RDS instance. Always
// encrypted, never publicly accessible, with backups and deletion protection.

import type * as RdsSdk from '@aws-sdk/client-rds';
import type { DbCreateSpec, DbState, RdsApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

const notFound = (e: unknown) =>
  /DBClusterNotFoundFault|DBInstanceNotFound|DBSubnetGroupNotFoundFault/.test(
    (e as { name?: string }).name ?? '',
  );
const tagList = (tags: Record<string, string>) =>
  Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
const managed = (tags: { Key?: string; Value?: string }[] | undefined) =>
  Boolean(tags?.some((t) => t.Key === 'mlship:managed' && t.Value === 'true'));

export function createRdsApi(rdsSdk: typeof RdsSdk, client: RdsSdk.RDSClient): RdsApi {
  const describeCluster = async (id: string): Promise<DbState | undefined> => {
    const r = await call(`look up database cluster ${id}`, () =>
      client.send(new rdsSdk.DescribeDBClustersCommand({ DBClusterIdentifier: id })).catch((e) => {
        if (notFound(e)) return { DBClusters: [] };
        throw e;
      }),
    );
    const c = r.DBClusters?.[0];
    if (!c) return undefined;
    const s = c.ServerlessV2ScalingConfiguration;
    return {
      identifier: id,
      status: c.Status ?? 'unknown',
      ...(c.Endpoint ? { endpoint: c.Endpoint } : {}),
      ...(c.Port ? { port: c.Port } : {}),
      ...(c.EngineVersion ? { engineVersion: c.EngineVersion } : {}),
      ...(s
        ? {
            scaling: {
              minCapacity: s.MinCapacity ?? 0,
              maxCapacity: s.MaxCapacity ?? 1,
              ...(s.SecondsUntilAutoPause !== undefined
                ? { secondsUntilAutoPause: s.SecondsUntilAutoPause }
                : {}),
            },
          }
        : {}),
      deletionProtection: Boolean(c.DeletionProtection),
      managed: managed(c.TagList),
    };
  };
  const describeInstance = async (id: string): Promise<DbState | undefined> => {
    const r = await call(`look up database ${id}`, () =>
      client.send(new rdsSdk.DescribeDBInstancesCommand({ DBInstanceIdentifier: id })).catch((e) => {
        if (notFound(e)) return { DBInstances: [] };
        throw e;
      }),
    );
    const i = r.DBInstances?.[0];
    if (!i) return undefined;
    return {
      identifier: id,
      status: i.DBInstanceStatus ?? 'unknown',
      ...(i.Endpoint?.Address ? { endpoint: i.Endpoint.Address } : {}),
      ...(i.Endpoint?.Port ? { port: i.Endpoint.Port } : {}),
      ...(i.EngineVersion ? { engineVersion: i.EngineVersion } : {}),
      deletionProtection: Boolean(i.DeletionProtection),
      managed: managed(i.TagList),
    };
  };

  async function createAurora(spec: DbCreateSpec): Promise<void> {
    await call(`create database cluster ${spec.identifier}`, () =>
      client.send(
        new rdsSdk.CreateDBClusterCommand({
          DBClusterIdentifier: spec.identifier,
          Engine: spec.engine,
          EngineVersion: spec.engineVersion,
          DatabaseName: spec.database,
          MasterUsername: spec.username,
          MasterUserPassword: spec.password,
          Port: spec.port,
          DBSubnetGroupName: spec.subnetGroup,
          VpcSecurityGroupIds: spec.securityGroups,
          StorageEncrypted: true,
          DeletionProtection: true,
          BackupRetentionPeriod: spec.backupRetentionDays,
          CopyTagsToSnapshot: true,
          ...(spec.scaling
            ? {
                ServerlessV2ScalingConfiguration: {
                  MinCapacity: spec.scaling.minCapacity,
                  MaxCapacity: spec.scaling.maxCapacity,
                  ...(spec.scaling.minCapacity === 0
                    ? { SecondsUntilAutoPause: spec.scaling.secondsUntilAutoPause }
                    : {}),
                },
              }
            : {}),
          Tags: tagList(spec.tags),
        }),
      ),
    );
  }

  async function createInstance(spec: DbCreateSpec): Promise<void> {
    await call(`create database ${spec.identifier}`, () =>
      client.send(
        new rdsSdk.CreateDBInstanceCommand({
          DBInstanceIdentifier: spec.identifier,
          DBInstanceClass: spec.instanceClass ?? 'db.t4g.micro',
          Engine: spec.engine,
          EngineVersion: spec.engineVersion,
          DBName: spec.database,
          MasterUsername: spec.username,
          MasterUserPassword: spec.password,
          Port: spec.port,
          AllocatedStorage: 20,
          MaxAllocatedStorage: 100,
          StorageType: 'gp3',
          DBSubnetGroupName: spec.subnetGroup,
          VpcSecurityGroupIds: spec.securityGroups,
          PubliclyAccessible: false,
          StorageEncrypted: true,
          DeletionProtection: true,
          BackupRetentionPeriod: spec.backupRetentionDays,
          CopyTagsToSnapshot: true,
          Tags: tagList(spec.tags),
        }),
      ),
    );
  }

  return {
    async engineVersions(engine) {
      const out: { version: string; scalesToZero?: boolean }[] = [];
      let marker: string | undefined;
      do {
        const r = await call(`list the ${engine} engine versions`, () =>
          client.send(new rdsSdk.DescribeDBEngineVersionsCommand({ Engine: engine, Marker: marker })),
        );
        for (const v of r.DBEngineVersions ?? []) {
          if (!v.EngineVersion) continue;
          const min = v.ServerlessV2FeaturesSupport?.MinCapacity;
          out.push({ version: v.EngineVersion, ...(min !== undefined ? { scalesToZero: min === 0 } : {}) });
        }
        marker = r.Marker;
      } while (marker);
      return out;
    },
    async ensureSubnetGroup(name, subnets, tags) {
      const existing = await call(`look up DB subnet group ${name}`, () =>
        client.send(new rdsSdk.DescribeDBSubnetGroupsCommand({ DBSubnetGroupName: name })).catch((e) => {
          if (notFound(e)) return { DBSubnetGroups: [] };
          throw e;
        }),
      );
      if (existing.DBSubnetGroups?.length) return { created: false };
      await call(`create DB subnet group ${name}`, () =>
        client.send(
          new rdsSdk.CreateDBSubnetGroupCommand({
            DBSubnetGroupName: name,
            DBSubnetGroupDescription: 'mlship: the subnets of the stack database (those of its tasks)',
            SubnetIds: subnets,
            Tags: tagList(tags),
          }),
        ),
      );
      return { created: true };
    },
    describe: (kind, id) => (kind === 'aurora' ? describeCluster(id) : describeInstance(id)),
    async create(spec) {
      if (spec.kind === 'aurora') await createAurora(spec);
      else await createInstance(spec);
    },
    async ensureWriter(cluster, engine, tags) {
      const id = `${cluster}-writer`;
      if (await describeInstance(id)) return { created: false };
      await call(`create the writer of ${cluster}`, () =>
        client.send(
          new rdsSdk.CreateDBInstanceCommand({
            DBInstanceIdentifier: id,
            DBClusterIdentifier: cluster,
            DBInstanceClass: 'db.serverless',
            Engine: engine,
            PubliclyAccessible: false,
            Tags: tagList(tags),
          }),
        ),
      );
      return { created: true };
    },
    async modify(kind, id, changes) {
      if (kind === 'aurora') {
        await call(`change database cluster ${id}`, () =>
          client.send(
            new rdsSdk.ModifyDBClusterCommand({
              DBClusterIdentifier: id,
              ApplyImmediately: true,
              ...(changes.backupRetentionDays ? { BackupRetentionPeriod: changes.backupRetentionDays } : {}),
              ...(changes.scaling
                ? {
                    ServerlessV2ScalingConfiguration: {
                      MinCapacity: changes.scaling.minCapacity,
                      MaxCapacity: changes.scaling.maxCapacity,
                      ...(changes.scaling.minCapacity === 0
                        ? { SecondsUntilAutoPause: changes.scaling.secondsUntilAutoPause }
                        : {}),
                    },
                  }
                : {}),
            }),
          ),
        );
      } else if (changes.backupRetentionDays) {
        await call(`change database ${id}`, () =>
          client.send(
            new rdsSdk.ModifyDBInstanceCommand({
              DBInstanceIdentifier: id,
              ApplyImmediately: true,
              BackupRetentionPeriod: changes.backupRetentionDays,
            }),
          ),
        );
      }
    },
    async deleteWithSnapshot(kind, id, snapshot) {
      if (kind === 'aurora') {
        await call(`allow deleting ${id}`, () =>
          client.send(
            new rdsSdk.ModifyDBClusterCommand({
              DBClusterIdentifier: id,
              DeletionProtection: false,
              ApplyImmediately: true,
            }),
          ),
        );
        await call(`delete the writer of ${id}`, () =>
          client
            .send(new rdsSdk.DeleteDBInstanceCommand({ DBInstanceIdentifier: `${id}-writer` }))
            .catch((e) => {
              if (!notFound(e)) throw e;
            }),
        );
        await call(`delete database cluster ${id}`, () =>
          client.send(
            new rdsSdk.DeleteDBClusterCommand({
              DBClusterIdentifier: id,
              FinalDBSnapshotIdentifier: snapshot,
            }),
          ),
        );
      } else {
        await call(`allow deleting ${id}`, () =>
          client.send(
            new rdsSdk.ModifyDBInstanceCommand({
              DBInstanceIdentifier: id,
              DeletionProtection: false,
              ApplyImmediately: true,
            }),
          ),
        );
        await call(`delete database ${id}`, () =>
          client.send(
            new rdsSdk.DeleteDBInstanceCommand({
              DBInstanceIdentifier: id,
              FinalDBSnapshotIdentifier: snapshot,
            }),
          ),
        );
      }
    },
    async deleteSubnetGroup(name) {
      return call(`delete DB subnet group ${name}`, () =>
        client.send(new rdsSdk.DeleteDBSubnetGroupCommand({ DBSubnetGroupName: name })).then(
          () => true,
          (e) => {
            if (notFound(e)) return false;
            throw e;
          },
        ),
      );
    },
  };
}
