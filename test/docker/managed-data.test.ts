// The stateful half of a compose stack on AWS (moto): its PostgreSQL becomes Aurora
// Serverless v2 pausing at 0 ACU, its MinIO the stack's bucket, its other volume EFS; the
// client reads its database URL from the secret, key by key; a re-apply changes nothing, a
// changed capacity is a modification; --destroy keeps the data, --delete-data removes it
// after a final snapshot; a local major the region does not offer is refused first.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DescribeSecurityGroupsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeTaskDefinitionCommand, ECSClient } from '@aws-sdk/client-ecs';
import {
  DescribeAccessPointsCommand,
  DescribeFileSystemsCommand,
  DescribeMountTargetsCommand,
  EFSClient,
} from '@aws-sdk/client-efs';
import {
  DescribeDBClusterSnapshotsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_DEBIAN_IMAGE, requireEngine } from '../helpers/docker.js';
import { FAKE_CREDENTIALS, type Moto, startMoto } from '../helpers/moto.js';

const engine = await requireEngine();
const BIN = path.resolve('bin/mlship.js');
const STACK = `data-${process.pid}`;
let moto: Moto | undefined;
let dir: string;
const outputs: string[] = [];

function compose(maxCapacity: number, postgres = 'postgres:16.6-bookworm'): string {
  return [
    `name: ${STACK}`,
    'services:',
    '  api:',
    `    image: ${LOCAL_DEBIAN_IMAGE}`,
    '    command: ["sleep", "infinity"]',
    '    environment:',
    '      DATABASE_URL: postgresql://shop:dev@db:5432/shop',
    '      S3_ENDPOINT_URL: http://minio:9000',
    '    depends_on: [db, minio]',
    '    volumes: ["uploads:/srv/uploads"]',
    '  db:',
    `    image: ${postgres}`,
    '    environment: { POSTGRES_DB: shop, POSTGRES_USER: shop }',
    '    volumes: ["pg:/var/lib/postgresql/data"]',
    `    x-mlship: { aws: { max_capacity: ${maxCapacity} } }`,
    '  minio:',
    '    image: minio/minio:RELEASE.2024-11-07T00-52-20Z',
    '    volumes: ["objects:/data"]',
    'volumes: { pg: {}, objects: {}, uploads: {} }',
    '',
  ].join('\n');
}

function mlship(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir,
      env: { ...process.env, ...moto!.env, CI: 'true', XDG_CACHE_HOME: path.join(dir, '.cache') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c;
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c;
    });
    child.on('close', (code) => {
      outputs.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
  });
}

const onMoto = (file: string, ...extra: string[]) => [
  'deploy',
  'ecs',
  '-f',
  file,
  '--region',
  'us-east-1',
  '--endpoint-url',
  moto!.endpoint,
  '--tag',
  'v1',
  '--no-build',
  ...extra,
];
const config = () => ({
  region: 'us-east-1',
  endpoint: moto!.endpoint,
  credentials: {
    accessKeyId: FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID,
    secretAccessKey: FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
  },
});
const clusterOf = async (id: string) => {
  const rds = new RDSClient(config());
  try {
    return (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters?.[0];
  } catch {
    return undefined;
  } finally {
    rds.destroy();
  }
};

beforeAll(async () => {
  if (!engine) return;
  moto = await startMoto();
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-data-'));
  writeFileSync(path.join(dir, 'compose.yaml'), compose(2));
});

afterAll(async () => {
  await moto?.stop();
});

describe.runIf(engine)('databases, files and volumes become managed services (moto)', () => {
  const DB = `mlship-${STACK}-db`;
  let password = '';

  it('--apply: Aurora Serverless v2 at 0-2 ACU, private and protected; the client reads its URL from the secret', async () => {
    const r = await mlship(onMoto('compose.yaml', '--apply', '--no-wait', '--json'));
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      applied: { databases: { identifier: string; engineVersion: string; created: boolean }[] };
    };
    // moto does not list engine versions: the bundled, dated table, said in the log.
    expect(r.stderr).toMatch(/aurora-postgresql versions could not be read .* using the table of/);
    expect(out.applied.databases).toEqual([
      expect.objectContaining({ identifier: DB, engineVersion: '16.8', created: true }),
    ]);
    const cluster = await clusterOf(DB);
    expect(cluster).toMatchObject({
      Engine: 'aurora-postgresql',
      StorageEncrypted: true,
      DeletionProtection: true,
      BackupRetentionPeriod: 7,
      DatabaseName: 'shop',
      MasterUsername: 'shop',
      DBSubnetGroup: DB,
      ServerlessV2ScalingConfiguration: { MinCapacity: 0, MaxCapacity: 2, SecondsUntilAutoPause: 300 },
    });
    const rds = new RDSClient(config());
    const writer = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: `${DB}-writer` })))
      .DBInstances![0]!;
    expect(writer).toMatchObject({ DBInstanceClass: 'db.serverless', PubliclyAccessible: false });
    rds.destroy();
    // The database's security group admits the tasks' group on 5432, and nothing else.
    const ec2 = new EC2Client(config());
    const sgId = cluster!.VpcSecurityGroups![0]!.VpcSecurityGroupId!;
    const sg = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [sgId] }))).SecurityGroups![0]!;
    expect(sg.IpPermissions).toHaveLength(1);
    expect(sg.IpPermissions![0]).toMatchObject({ FromPort: 5432, ToPort: 5432, IpRanges: [] });
    expect(sg.IpPermissions![0]!.UserIdGroupPairs).toHaveLength(1);
    ec2.destroy();
    // The secret: generated password, the cluster's endpoint, the client's URL in its own form.
    const sm = new SecretsManagerClient(config());
    const secret = JSON.parse(
      (await sm.send(new GetSecretValueCommand({ SecretId: `${STACK}/database` }))).SecretString!,
    ) as Record<string, string>;
    sm.destroy();
    password = secret.password!;
    expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(secret).toMatchObject({ username: 'shop', dbname: 'shop', port: '5432', host: cluster!.Endpoint });
    expect(secret['api.DATABASE_URL']).toBe(`postgresql://shop:${password}@${cluster!.Endpoint}:5432/shop`);
    // The client: its URL and nothing of MinIO; the bucket's name; its volume on EFS.
    const ecs = new ECSClient(config());
    const td = (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: `${STACK}-api` })))
      .taskDefinition!;
    ecs.destroy();
    const c = td.containerDefinitions![0]!;
    expect(c.secrets).toEqual([
      {
        name: 'DATABASE_URL',
        valueFrom: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${STACK}/database:api.DATABASE_URL::`,
      },
    ]);
    const env = Object.fromEntries((c.environment ?? []).map((e) => [e.name, e.value]));
    expect(env).toEqual({ S3_BUCKET: `mlship-${STACK}-us-east-1-123456789012` });
    const efs = new EFSClient(config());
    const fs = (await efs.send(new DescribeFileSystemsCommand({ CreationToken: `mlship-${STACK}-uploads` })))
      .FileSystems![0]!;
    expect(fs.Encrypted).toBe(true);
    expect(td.volumes).toEqual([
      {
        name: 'efs-uploads',
        efsVolumeConfiguration: expect.objectContaining({
          fileSystemId: fs.FileSystemId,
          transitEncryption: 'ENABLED',
        }),
      },
    ]);
    expect(c.mountPoints).toEqual([
      { sourceVolume: 'efs-uploads', containerPath: '/srv/uploads', readOnly: false },
    ]);
    expect(
      (await efs.send(new DescribeMountTargetsCommand({ FileSystemId: fs.FileSystemId }))).MountTargets!
        .length,
    ).toBeGreaterThan(0);
    expect(
      (await efs.send(new DescribeAccessPointsCommand({ FileSystemId: fs.FileSystemId }))).AccessPoints,
    ).toHaveLength(1);
    efs.destroy();
    // No task for the database or the object store.
    expect(JSON.stringify(out)).not.toContain(`"${STACK}-db"`);
  });

  it('a re-apply changes nothing; a new maximum capacity is a modification, not a new cluster', async () => {
    const again = await mlship(onMoto('compose.yaml', '--apply', '--no-wait', '--json'));
    expect(again.code, again.stderr).toBe(0);
    const same = JSON.parse(again.stdout) as {
      applied: {
        databases: { created: boolean; changed: string[] }[];
        taskDefinitions: { registered: boolean }[];
      };
    };
    expect(same.applied.databases[0]).toMatchObject({ created: false, changed: [] });
    expect(same.applied.taskDefinitions.every((t) => !t.registered)).toBe(true);
    writeFileSync(path.join(dir, 'compose.yaml'), compose(4));
    const changed = await mlship(onMoto('compose.yaml', '--apply', '--no-wait', '--json'));
    expect(changed.code, changed.stderr).toBe(0);
    expect(JSON.parse(changed.stdout).applied.databases[0]).toMatchObject({
      created: false,
      changed: ['max capacity 2 → 4'],
    });
    expect((await clusterOf(DB))?.ServerlessV2ScalingConfiguration?.MaxCapacity).toBe(4);
  });

  it('--destroy keeps the database and the bucket and says how to remove them; --delete-data removes them after a final snapshot', async () => {
    const kept = await mlship(onMoto('compose.yaml', '--destroy', '--yes', '--json'));
    expect(kept.code, kept.stderr).toBe(0);
    const k = JSON.parse(kept.stdout) as { destroyed: { kept: string[] } };
    expect(k.destroyed.kept).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(
            `^database ${DB} and its data \\(remove with: mlship deploy ecs --destroy --delete-data`,
          ),
        ),
        expect.stringMatching(/^bucket mlship-.* and its objects/),
      ]),
    );
    expect(await clusterOf(DB)).toBeDefined();
    const gone = await mlship(onMoto('compose.yaml', '--destroy', '--yes', '--delete-data', '--json'));
    expect(gone.code, gone.stderr).toBe(0);
    const removed = (JSON.parse(gone.stdout) as { destroyed: { removed: string[] } }).destroyed.removed;
    const snapshot = /database .* \(final snapshot (\S+)\)/.exec(removed.join('\n'))?.[1];
    expect(snapshot).toMatch(new RegExp(`^${DB}-final-\\d{12}$`));
    const rds = new RDSClient(config());
    const snaps = await rds.send(
      new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: snapshot }),
    );
    expect(snaps.DBClusterSnapshots).toHaveLength(1);
    rds.destroy();
    expect(removed).toEqual(expect.arrayContaining([expect.stringMatching(/^bucket mlship-/)]));
  });

  it('a local major the region does not offer is refused before anything is created (exit 2)', async () => {
    writeFileSync(
      path.join(dir, 'newer.yaml'),
      compose(2, 'postgres:99').replace(`name: ${STACK}`, `name: ${STACK}-newer`),
    );
    const r = await mlship(onMoto('newer.yaml', '--apply', '--no-wait'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /postgres 99 \(the local image postgres:99\) is newer than what the region offers/,
    );
    expect(r.stderr).toMatch(/hint: use postgres:17 locally/);
    expect(await clusterOf(`mlship-${STACK}-newer-db`)).toBeUndefined();
  });

  it('the database password is in no output', () => {
    expect(password).not.toBe('');
    for (const o of outputs) expect(o).not.toContain(password);
  });
});
