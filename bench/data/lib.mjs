// Shared by bench/data/run.mjs and the push it kills half-way (push-child.mjs): the
// database push and the files push of the built CLI's core, against moto's S3, the restore
// task's containers run on this engine (moto never runs a task).
// `dist` (pushDb's last argument) may name another build, e.g. the baseline's: the benchmark
// then runs both versions side by side in one run.
import { createDeployApis } from '../../dist/adapters/aws/deploy-apis.js';
import { createObjectStoreApi } from '../../dist/adapters/aws/s3.js';
import { pushFiles } from '../../dist/core/data/push-files.js';

const DIST = new URL('../../dist/', import.meta.url).href;

export const CREDS = {
  AWS_ACCESS_KEY_ID: 'AKIAMLSHIPBENCH00000',
  AWS_SECRET_ACCESS_KEY: 'mlship-bench-secret',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
};
Object.assign(process.env, CREDS);

export const database = (stack) => ({
  service: 'database',
  engine: 'postgres',
  image: 'mlship-local/postgres:15',
  localMajor: 15,
  awsEngine: 'aurora-postgresql',
  settings: {
    kind: 'aurora',
    minCapacity: 0,
    maxCapacity: 2,
    secondsUntilAutoPause: 300,
    instanceClass: 'x',
    backupRetentionDays: 7,
  },
  identifier: `mlship-${stack}-db`,
  subnetGroup: 'x',
  securityGroup: 'x',
  database: 'app',
  username: 'app',
  port: 5432,
  secretName: `${stack}/database`,
  urls: {},
});

/** Pushes the database of `stack` into `target` (a container on `network`) through the bucket. */
export async function pushDb({ stack, endpoint, network, target, bucket, cacheDir }, dist = DIST) {
  const { DockerEngine } = await import(new URL('adapters/docker/engine.js', dist).href);
  const { localRestoreRunner } = await import(new URL('core/data/local-restore.js', dist).href);
  const { pushDatabase } = await import(new URL('core/data/push-database.js', dist).href);
  const engine = await DockerEngine.connect();
  const aws = createDeployApis({ region: 'us-east-1', endpointUrl: endpoint });
  const db = database(stack);
  const restore = localRestoreRunner(engine, {
    stack,
    region: 'us-east-1',
    accountId: '123456789012',
    db,
    restoreImage: 'mlship-local/postgres:15',
    fetchImage: 'mlship-local/aws-cli:1',
    network,
    secretValue: async (ref) =>
      ({ host: target, port: '5432', username: 'app', password: 'pw', dbname: 'app' })[ref.split(':').at(-3)],
    awsEnvironment: {
      ...CREDS,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: endpoint.replace('127.0.0.1', 'host.docker.internal'),
    },
  });
  try {
    return await pushDatabase(
      {
        engine,
        aws: {
          rds: {
            describe: async () => ({
              identifier: db.identifier,
              status: 'available',
              engineVersion: '15.4',
              deletionProtection: true,
              managed: true,
            }),
          },
          s3: aws.s3,
        },
        restore,
        log: (l) => process.stderr.write(`  ${l}\n`),
        cacheDir,
      },
      { stack, bucket, db, replace: false },
    );
  } finally {
    aws.destroy();
  }
}

export async function pushObjects({ stack, endpoint, source, sourceBucket, bucket, cacheDir }) {
  const aws = createDeployApis({ region: 'us-east-1', endpointUrl: endpoint });
  const src = await createObjectStoreApi({
    endpoint: source,
    accessKeyId: 'mlship',
    secretAccessKey: 'local',
  });
  try {
    return await pushFiles(
      { source: src, target: aws.s3, log: () => undefined, cacheDir },
      { stack, sourceBucket, bucket },
    );
  } finally {
    src.destroy();
    aws.destroy();
  }
}
