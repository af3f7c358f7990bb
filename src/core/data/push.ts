// `mlship data push`: the local stack's data into the cloud resources `deploy ecs --apply`
// created, the database first (the longer part), then the files; each verified, and a
// summary of both. A mismatch is reported with the table or key it concerns.

import type { StackService } from '../../config/stack-model.js';
import { UsageError } from '../../io/errors.js';
import type { Ec2Api } from '../deploy/aws-apis.js';
import type { DeployStack } from '../deploy/deploy-stack.js';
import type { EcsPlanResult } from '../deploy/plan.js';
import type { DataDeps } from './deps.js';
import { type DatabasePushResult, pushDatabase } from './push-database.js';
import { type FilesPushResult, pushFiles } from './push-files.js';

export interface DataPushOptions {
  only?: 'database' | 'files';
  replace: boolean;
  localContainer?: string;
  sourceBucket?: string;
  /** pg_dump's compression level, 0-9 (PostgreSQL only). */
  dumpCompression?: number;
}

export interface DataPushResult {
  ok: boolean;
  stack: string;
  database?: DatabasePushResult;
  files?: FilesPushResult;
  mismatches: string[];
}

/** Where the local stack keeps its files: the object store's S3 endpoint on this machine, its keys, its bucket. */
export interface LocalObjectStore {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket?: string;
}

const published = (svc: StackService | undefined, port: number | undefined) =>
  svc?.ports.find((p) => p.published && (port === undefined || p.container === port))?.published ??
  svc?.ports.find((p) => p.published)?.published;

/**
 * The local object store of the stack: mlship.yaml's storage (user mlship, STORAGE_PASSWORD
 * of the stack's .env), or a compose file's MinIO-like service (its published port, its
 * root user and password). Values of the environment override (MLSHIP_SOURCE_*).
 */
export function localObjectStore(
  loaded: DeployStack,
  service: string,
  localEnv: Record<string, string>,
  env: Record<string, string | undefined>,
): LocalObjectStore | undefined {
  const st = loaded.project?.storage;
  const svc = loaded.stack.services.find((s) => s.name === service);
  const port = st ? st.host_port : published(svc, undefined);
  const value = (k: string) => svc?.environment[k] ?? localEnv[k];
  const accessKeyId =
    env.MLSHIP_SOURCE_ACCESS_KEY_ID ??
    (st ? 'mlship' : (value('MINIO_ROOT_USER') ?? value('MINIO_ACCESS_KEY')));
  const secretAccessKey =
    env.MLSHIP_SOURCE_SECRET_ACCESS_KEY ??
    (st ? localEnv.STORAGE_PASSWORD : (value('MINIO_ROOT_PASSWORD') ?? value('MINIO_SECRET_KEY')));
  const endpoint = env.MLSHIP_SOURCE_ENDPOINT_URL ?? (port ? `http://127.0.0.1:${port}` : undefined);
  if (!endpoint || !accessKeyId || !secretAccessKey) return undefined;
  return { endpoint, accessKeyId, secretAccessKey, ...(st ? { bucket: st.bucket } : {}) };
}

/** The subnets and security groups of the stack's tasks: the flags, else the default VPC's (as --apply). */
export async function taskNetwork(
  ec2: Pick<Ec2Api, 'defaultNetwork'>,
  flags: { subnets?: string[]; securityGroups?: string[] },
): Promise<{ subnets: string[]; securityGroups: string[] }> {
  if (flags.subnets?.length && flags.securityGroups?.length)
    return { subnets: flags.subnets, securityGroups: flags.securityGroups };
  const net = await ec2.defaultNetwork();
  if (!net) {
    throw new UsageError('no default VPC in this region, and no --subnets/--security-groups given', {
      hint: 'pass the --subnets and --security-groups given to mlship deploy ecs --apply',
    });
  }
  return {
    subnets: flags.subnets?.length ? flags.subnets : net.subnets,
    securityGroups: flags.securityGroups?.length ? flags.securityGroups : net.securityGroups,
  };
}

export async function dataPush(
  plan: EcsPlanResult,
  deps: DataDeps,
  options: DataPushOptions,
): Promise<DataPushResult> {
  const db = plan.databases[0];
  const wantsDb = options.only !== 'files';
  const wantsFiles = options.only !== 'database';
  if ((!db || !wantsDb) && (!plan.storage || !wantsFiles)) {
    throw new UsageError(
      `stack ${plan.stack} has no ${options.only === 'files' ? 'object storage' : options.only === 'database' ? 'managed database' : 'managed database or object storage'} to push`,
      {
        hint: 'data push copies a database service with a data volume (database: in mlship.yaml) and object storage (storage:); with --keep-db-container the database stays a task',
      },
    );
  }
  const result: DataPushResult = { ok: true, stack: plan.stack, mismatches: [] };
  if (db && wantsDb) {
    result.database = await pushDatabase(deps, {
      stack: plan.stack,
      bucket: plan.bucket,
      db,
      replace: options.replace,
      ...(options.localContainer ? { localContainer: options.localContainer } : {}),
      ...(options.dumpCompression !== undefined ? { dumpCompression: options.dumpCompression } : {}),
    });
    result.mismatches.push(...result.database.mismatches);
  }
  if (plan.storage && wantsFiles) {
    if (!deps.source) {
      throw new UsageError(`the local object store of ${plan.storage.service} is unknown`, {
        hint: 'set MLSHIP_SOURCE_ENDPOINT_URL, MLSHIP_SOURCE_ACCESS_KEY_ID and MLSHIP_SOURCE_SECRET_ACCESS_KEY',
      });
    }
    if (!options.sourceBucket) {
      throw new UsageError(`which bucket of the local ${plan.storage.service} to push is not known`, {
        hint: 'name it with --source-bucket',
      });
    }
    result.files = await pushFiles(
      {
        source: deps.source,
        target: deps.aws.s3,
        log: deps.log,
        cacheDir: deps.cacheDir,
        ...(deps.progress ? { progress: deps.progress } : {}),
      },
      { stack: plan.stack, sourceBucket: options.sourceBucket, bucket: plan.bucket },
    );
    result.mismatches.push(...result.files.mismatches);
  }
  result.ok = result.mismatches.length === 0;
  return result;
}
