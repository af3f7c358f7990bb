// The stateful half on AWS, decided before anything is created: which service becomes a
// managed database and how its clients read it, which engine version the region offers
// for the local major (from a recorded DescribeDBEngineVersions answer, checked against
// botocore's model: moto does not implement the call), the object storage that becomes
// the stack's bucket, and what the database costs idle and at most.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as RdsSdk from '@aws-sdk/client-rds';
import { describe, expect, it } from 'vitest';
import { createRdsApi } from '../../../src/adapters/aws/rds-api.js';
import { type ManagedDatabase, manageDatabases, secretValue } from '../../../src/core/deploy/database.js';
import { chooseEngineVersion } from '../../../src/core/deploy/database-apply.js';
import type { ApplyDeps } from '../../../src/core/deploy/deps.js';
import { planEcs } from '../../../src/core/deploy/plan.js';
import { manageStorage } from '../../../src/core/deploy/storage.js';
import { importCompose } from '../../../src/core/stack/compose-import.js';
import { UsageError } from '../../../src/io/errors.js';
import { strictAws } from '../../helpers/aws-fake.js';
import { loadServiceModel, validateShape } from '../../helpers/aws-model.js';
import { corpusFiles } from '../../helpers/corpus.js';

const RECORDED = path.resolve(
  'fixtures/deploy/recorded/rds-describe-db-engine-versions-aurora-postgresql.json',
);
const rdsModel = loadServiceModel('rds');
const OPTS = { region: 'eu-west-1', accountId: '123456789012', keepContainers: false };
const corpus = (name: string) => corpusFiles('compose', /\.ya?ml$/).find((f) => path.basename(f) === name);

function stackOf(text: string, name = 'shop') {
  return importCompose('/p/compose.yaml', text, name);
}

/** The RDS adapter over a client that answers DescribeDBEngineVersions with the recording. */
function recordedRds() {
  const recorded = JSON.parse(readFileSync(RECORDED, 'utf8')) as { DBEngineVersions: unknown[] };
  const sdk = {
    DescribeDBEngineVersionsCommand: class {
      constructor(readonly input: unknown) {}
    },
  };
  const client = { send: async () => ({ DBEngineVersions: recorded.DBEngineVersions }) };
  return createRdsApi(sdk as unknown as typeof RdsSdk, client as unknown as RdsSdk.RDSClient);
}

function db(over: Partial<ManagedDatabase> & { major?: number; min?: number } = {}): ManagedDatabase {
  const { major, min, ...rest } = over;
  return {
    service: 'db',
    engine: 'postgres',
    image: `postgres:${major ?? 16}`,
    ...(major !== undefined || !('major' in over) ? { localMajor: major ?? 16 } : {}),
    awsEngine: 'aurora-postgresql',
    settings: {
      kind: 'aurora',
      minCapacity: min ?? 0,
      maxCapacity: 2,
      secondsUntilAutoPause: 300,
      instanceClass: 'db.t4g.micro',
      backupRetentionDays: 7,
    },
    identifier: 'mlship-shop-db',
    subnetGroup: 'mlship-shop-db',
    securityGroup: 'shop-db',
    database: 'app',
    username: 'app',
    port: 5432,
    secretName: 'shop/database',
    urls: {},
    ...rest,
  };
}

const deps = (log: string[] = []) =>
  ({
    aws: strictAws({ rds: { engineVersions: (e: string) => recordedRds().engineVersions(e) } }),
    log: (l: string) => log.push(l),
  }) as unknown as ApplyDeps;

describe('the engine version, from what the region offers', () => {
  it.skipIf(!rdsModel)("the recorded answer is valid for the RDS API's own model", () => {
    const { note: _note, ...answer } = JSON.parse(readFileSync(RECORDED, 'utf8'));
    expect(validateShape(rdsModel!, 'DBEngineVersionMessage', answer)).toEqual([]);
  });

  it('the newest version of the local major that pauses at 0 ACU', async () => {
    expect(await chooseEngineVersion(db({ major: 16 }), deps())).toBe('16.6');
    expect(await chooseEngineVersion(db({ major: 15 }), deps())).toBe('15.7');
    // Without a minimum of 0, the newest of the major, pausing or not.
    expect(await chooseEngineVersion(db({ major: 16, min: 0.5 }), deps())).toBe('16.6');
  });

  it('a local major newer than the region offers is refused with the way back', async () => {
    const e = await chooseEngineVersion(db({ major: 18 }), deps()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).message).toBe(
      'postgres 18 (the local image postgres:18) is newer than what the region offers for aurora-postgresql (17, 16, 15)',
    );
    expect((e as UsageError).hint).toMatch(/use postgres:17 locally/);
    const old = await chooseEngineVersion(db({ major: 12 }), deps()).catch((x: unknown) => x);
    expect((old as UsageError).message).toMatch(/postgres 12 .* is not among what the region offers/);
    expect((old as UsageError).hint).toMatch(/upgrade the local database to 15 first/);
  });

  it('without a major in the tag (postgres:alpine), the newest offered', async () => {
    expect(await chooseEngineVersion(db({ image: 'postgres:alpine', localMajor: undefined }), deps())).toBe(
      '17.4',
    );
  });

  it('an endpoint that cannot list versions (an emulator) gets the bundled, dated table, said in the log', async () => {
    const log: string[] = [];
    const failing = {
      aws: strictAws({
        rds: {
          engineVersions: async () => {
            const { OperationFailedError } = await import('../../../src/io/errors.js');
            throw new OperationFailedError(
              'AWS_ERROR',
              'list the aurora-postgresql engine versions failed: 500',
            );
          },
        },
      }),
      log: (l: string) => log.push(l),
    } as unknown as ApplyDeps;
    expect(await chooseEngineVersion(db({ major: 16 }), failing)).toBe('16.8');
    expect(log[0]).toMatch(/could not be read .*using the table of \d{4}-\d{2}-\d{2}/);
  });
});

describe('a database service becomes a managed database', () => {
  it('nextcloud + postgres (public corpus): the database leaves the tasks, its client reads host and password from the secret', () => {
    const file = corpus('nextcloud-postgres.yaml');
    if (!file) return expect(file).toBeUndefined(); // the corpus test reports the missing corpus
    const stack = importCompose(file, readFileSync(file, 'utf8'), 'nc');
    const m = manageDatabases(stack, undefined, OPTS);
    expect(m.stack.services.map((s) => s.name)).toEqual(['nc']);
    expect(m.databases).toMatchObject([
      {
        service: 'db',
        engine: 'postgres',
        awsEngine: 'aurora-postgresql',
        database: 'nextcloud',
        username: 'nextcloud',
        port: 5432,
        volume: 'db_data',
      },
    ]);
    const nc = m.stack.services[0]!;
    expect(nc.environment.POSTGRES_HOST).toBeUndefined();
    expect(nc.secretFrom).toEqual({
      POSTGRES_HOST: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:nc/database:host::',
      POSTGRES_PASSWORD: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:nc/database:password::',
    });
    expect(nc.secretEnv).not.toContain('POSTGRES_PASSWORD');
  });

  it('a URL naming the database keeps its form, with the cloud host and credentials; MariaDB becomes Aurora MySQL with a warning', () => {
    const stack = stackOf(`services:
  api:
    image: shop/api:1
    environment:
      DATABASE_URL: mysql+pymysql://shop:dev@db:3306/shop?charset=utf8mb4
    depends_on: [db]
  db:
    image: mariadb:10.6.4-focal
    environment: { MYSQL_DATABASE: shop, MYSQL_USER: shop }
    volumes: ["db_data:/var/lib/mysql"]
volumes: { db_data: {} }
`);
    const m = manageDatabases(stack, undefined, OPTS);
    const [d] = m.databases;
    expect(d).toMatchObject({
      engine: 'mariadb',
      awsEngine: 'aurora-mysql',
      database: 'shop',
      username: 'shop',
      port: 3306,
    });
    expect(d!.urls).toEqual({
      'api.DATABASE_URL': 'mysql+pymysql://{username}:{password}@{host}:{port}/shop?charset=utf8mb4',
    });
    expect(
      secretValue(d!, { password: 'p/w+x', host: 'mlship-shop-db.cluster-x.eu-west-1.rds.amazonaws.com' })[
        'api.DATABASE_URL'
      ],
    ).toBe(
      'mysql+pymysql://shop:p%2Fw%2Bx@mlship-shop-db.cluster-x.eu-west-1.rds.amazonaws.com:3306/shop?charset=utf8mb4',
    );
    expect(m.stack.services[0]!.dependsOn).toEqual([]);
    expect(m.warnings.map((w) => w.message)).toEqual([expect.stringMatching(/MariaDB becomes Aurora MySQL/)]);
  });

  it('stays a task without a data volume, with x-mlship kind container, or with --keep-db-container', () => {
    const ephemeral = stackOf('services:\n  db:\n    image: postgres:16\n');
    expect(manageDatabases(ephemeral, undefined, OPTS).databases).toEqual([]);
    const opted = stackOf(
      'services:\n  db:\n    image: postgres:16\n    volumes: ["pg:/var/lib/postgresql/data"]\n    x-mlship: { aws: { kind: container } }\nvolumes: { pg: {} }\n',
    );
    expect(manageDatabases(opted, undefined, OPTS).databases).toEqual([]);
    const rds = stackOf(
      'services:\n  db:\n    image: postgres:16\n    volumes: ["pg:/var/lib/postgresql/data"]\n    x-mlship: { aws: { kind: rds, instance_class: db.t4g.small } }\nvolumes: { pg: {} }\n',
    );
    expect(manageDatabases(rds, undefined, OPTS).databases[0]).toMatchObject({
      awsEngine: 'postgres',
      settings: { kind: 'rds', instanceClass: 'db.t4g.small' },
    });
    expect(manageDatabases(rds, undefined, { ...OPTS, keepContainers: true }).databases).toEqual([]);
  });
});

describe('object storage becomes the stack bucket', () => {
  it('the MinIO service leaves; its clients lose the endpoint and keys and get S3_BUCKET', () => {
    const stack = stackOf(`services:
  api:
    image: shop/api:1
    environment: { S3_ENDPOINT_URL: "http://minio:9000", AWS_ACCESS_KEY_ID: minio, AWS_SECRET_ACCESS_KEY: "\${MINIO_PASSWORD}" }
    depends_on: [minio]
  minio:
    image: minio/minio:RELEASE.2024-11-07T00-52-20Z
    volumes: ["objects:/data"]
volumes: { objects: {} }
`);
    const r = manageStorage(stack, undefined, 'mlship-shop-eu-west-1-123456789012');
    expect(r.stack.services.map((s) => s.name)).toEqual(['api']);
    const api = r.stack.services[0]!;
    expect(api.environment).toEqual({ S3_BUCKET: 'mlship-shop-eu-west-1-123456789012' });
    expect(api.secretEnv).toEqual([]);
    expect(r.storage).toEqual({ service: 'minio', versioning: false });
    expect(r.warnings[0]!.message).toMatch(/reaches the stack's bucket .* with the task role/);
  });
});

describe('the plan of a stack with a database and files', () => {
  it('prices the database idle (paused: storage and secret) and at most, and lists it instead of its task', async () => {
    const r = await planEcs({
      file: 'fixtures/compose/pipeline/mlship.yaml',
      region: 'eu-west-1',
      accountId: '123456789012',
      imageTag: 't',
      force: true,
      writeFiles: false,
    });
    expect(r.translation.taskDefinitions.map((t) => t.family)).not.toContain('pose-pipeline-database');
    expect(r.translation.taskDefinitions.map((t) => t.family)).not.toContain('pose-pipeline-storage');
    expect(r.plan.find((p) => p.startsWith('database '))).toMatch(
      /^database mlship-pose-pipeline-db: Aurora Serverless v2 \(aurora-postgresql 16\), 0-2 ACU, pauses after 300 s idle instead of the database task; encrypted, private/,
    );
    expect(r.plan.find((p) => p.startsWith('S3 bucket'))).toMatch(
      /the files of storage, which is no task on ECS/,
    );
    expect(r.roles.task?.inlinePolicies['mlship-storage']?.Statement.map((s) => s.Sid)).toEqual([
      'ListStackBucket',
      'ReadWriteStackObjects',
      'KeepMlshipObjects',
    ]);
  });
});
