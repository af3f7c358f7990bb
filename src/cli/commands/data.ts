// `mlship data push`: the local stack's database and files into the cloud resources that
// `mlship deploy ecs --apply` created (core/data/push.ts), with progress on stderr and a
// summary (or --json) on stdout. A mismatch exits 1 after the summary has named it.

import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_DUMP_COMPRESSION } from '../../core/data/local-database.js';
import type { DataPushResult } from '../../core/data/push.js';
import { UsageError } from '../../io/errors.js';
import type { IoHost } from '../../io/io-host.js';
import type { CliContext, Register } from '../context.js';
import { deployedStack } from '../deployed-stack.js';
import { examples } from '../examples.js';
import { parseInteger } from './serve.js';

interface PushFlags {
  file: string;
  region?: string;
  accountId?: string;
  profile?: string;
  endpointUrl?: string;
  only?: string;
  replace: boolean;
  subnets?: string;
  securityGroups?: string;
  publicIp: boolean;
  localContainer?: string;
  sourceBucket?: string;
  restoreImage?: string;
  fetchImage?: string;
  dumpCompression?: number;
}

const cacheDir = (env: NodeJS.ProcessEnv) =>
  path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache'), 'mlship');

function bar(done: number, total: number): string {
  const share = total ? Math.min(1, done / total) : 0;
  const n = Math.round(share * 20);
  return `[${'#'.repeat(n)}${'-'.repeat(20 - n)}] ${Math.floor(share * 100)}%`;
}

const mib = (n: number) => `${(n / 1024 ** 2).toFixed(1)} MiB`;

/** A line per tenth of each part (plain logs stay short; the live terminal gets the same lines). */
function progressLines(io: IoHost) {
  const last = new Map<string, number>();
  return (part: 'dump' | 'upload' | 'restore' | 'files', done: number, total?: number) => {
    const step = total ? Math.floor((done / total) * 10) : Math.floor(done / (256 * 1024 ** 2));
    if (last.get(part) === step && done !== total) return;
    last.set(part, step);
    const what =
      part === 'files'
        ? `${done} of ${total} objects`
        : total
          ? `${mib(done)} of ${mib(total)}`
          : `${mib(done)}`;
    io.info(`${part.padEnd(7)} ${total ? bar(done, total) : ''} ${what}`.replace(/ {2,}/g, ' '));
  };
}

/** The database's steps in seconds: where a push's time went. */
function timeLine(s: NonNullable<DataPushResult['database']>['seconds']): string {
  const of = [
    s.fetch !== undefined ? `the task had the whole dump after ${s.fetch.toFixed(1)} s` : '',
    s.verify !== undefined ? `verify lines ${s.verify.toFixed(1)} s` : '',
  ].filter(Boolean);
  return `  time: dump ${s.dump.toFixed(1)} s (uploaded and restored alongside), rest of the upload ${s.upload.toFixed(1)} s, restore after it ${s.restore.toFixed(1)} s${of.length ? ` (${of.join('; ')})` : ''}`;
}

export function render(r: DataPushResult): string {
  const lines: string[] = [];
  const d = r.database;
  if (d) {
    lines.push(
      `database ${d.identifier} (${d.engine} ${d.localMajor} → ${d.cloudMajor}): ${d.outcome === 'already' ? 'already held exactly this data, nothing restored' : `restored ${d.tables.length} table(s), ${d.rows} row(s)`}; dump ${mib(d.dumpBytes)}${d.dumpReused ? ' (reused)' : ''}, ${mib(d.uploadedBytes)} uploaded${d.resumedBytes ? `, ${mib(d.resumedBytes)} already there` : ''}`,
      ...d.tables.map((t) => `  ${t.table}: ${t.rows} row(s), checksum ${t.checksum}`),
      timeLine(d.seconds),
    );
  }
  const f = r.files;
  if (f) {
    lines.push(
      `files ${f.sourceBucket} → s3://${f.bucket}: ${f.objects} object(s), ${mib(f.bytes)}; ${f.copied} copied (${mib(f.copiedBytes)}), ${f.skipped} already there`,
    );
  }
  lines.push(
    r.mismatches.length
      ? `${r.mismatches.length} mismatch(es):\n${r.mismatches.map((m) => `  ${m}`).join('\n')}`
      : 'verified: every table and object matches',
  );
  return lines.join('\n');
}

async function push(ctx: CliContext, flags: PushFlags): Promise<void> {
  if (flags.only !== undefined && flags.only !== 'database' && flags.only !== 'files')
    throw new UsageError(`--only ${flags.only}: expected database or files`, {
      hint: '--only database, or --only files',
    });
  const { file, loaded, aws, plan } = await deployedStack(ctx, flags);
  const { createDeployApis } = await import('../../adapters/aws/deploy-apis.js');
  const apis = createDeployApis({
    region: plan.region,
    ...(aws.profile ? { profile: aws.profile } : {}),
    ...(aws.endpointUrl ? { endpointUrl: aws.endpointUrl } : {}),
  });
  const { dataPush, localObjectStore, taskNetwork } = await import('../../core/data/push.js');
  const { readFile } = await import('node:fs/promises');
  const { parseEnv } = await import('../../core/compose/generate.js');
  const envFile = path.join(loaded.project ? loaded.baseDir : path.dirname(file), '.env');
  const localEnv = Object.fromEntries(parseEnv(await readFile(envFile, 'utf8').catch(() => '')));
  const store = plan.storage ? localObjectStore(loaded, plan.storage.service, localEnv, ctx.env) : undefined;
  const { createObjectStoreApi } = await import('../../adapters/aws/s3.js');
  const source = store && flags.only !== 'database' ? await createObjectStoreApi(store) : undefined;
  try {
    const db = plan.databases[0];
    let restore: import('../../core/data/deps.js').RestoreRunner | undefined;
    if (db && flags.only !== 'files') {
      const { ecsRestoreRunner } = await import('../../core/data/ecs-restore.js');
      const { defaultRestoreImage, DEFAULT_FETCH_IMAGE } = await import('../../core/data/restore-task.js');
      const network = await taskNetwork(apis.ec2, {
        ...(flags.subnets ? { subnets: flags.subnets.split(',') } : {}),
        ...(flags.securityGroups ? { securityGroups: flags.securityGroups.split(',') } : {}),
      });
      const state = await apis.rds.describe(db.settings.kind, db.identifier);
      const cloudMajor =
        db.engine === 'postgres'
          ? (state?.engineVersion?.split('.')[0] ?? String(db.localMajor ?? ''))
          : (state?.engineVersion?.split('.').slice(0, 2).join('.') ?? '8.0');
      restore = ecsRestoreRunner(
        apis,
        {
          stack: plan.stack,
          region: plan.region,
          accountId: plan.accountId,
          db,
          bucket: plan.bucket,
          ...(plan.kmsKeyId ? { kmsKeyId: plan.kmsKeyId } : {}),
          cluster: plan.stack,
          logGroup: plan.translation.logGroup,
          restoreImage: flags.restoreImage ?? defaultRestoreImage(db.engine, cloudMajor),
          fetchImage: flags.fetchImage ?? DEFAULT_FETCH_IMAGE,
          ...network,
          assignPublicIp: flags.publicIp,
          ...(aws.endpointUrl ? { iamPropagationSeconds: 0 } : {}),
        },
        (l) => ctx.io.info(l),
      );
    }
    const result = await dataPush(
      plan,
      {
        engine: await ctx.engine(),
        aws: apis,
        ...(source ? { source } : {}),
        ...(restore ? { restore } : {}),
        log: (l) => ctx.io.info(l),
        progress: progressLines(ctx.io),
        cacheDir: cacheDir(ctx.env),
      },
      {
        replace: flags.replace,
        ...(flags.only ? { only: flags.only as 'database' | 'files' } : {}),
        ...(flags.localContainer ? { localContainer: flags.localContainer } : {}),
        ...(flags.dumpCompression !== undefined ? { dumpCompression: flags.dumpCompression } : {}),
        ...((flags.sourceBucket ?? store?.bucket)
          ? { sourceBucket: flags.sourceBucket ?? store?.bucket }
          : {}),
      },
    );
    ctx.io.result(result, render(result));
    if (!result.ok) process.exitCode = 1;
  } finally {
    source?.destroy();
    apis.destroy();
  }
}

export const registerData: Register = (program: Command, holder) => {
  const data = program.command('data').description("move the local stack's data to the cloud");
  data
    .command('push')
    .description(
      "copy the local stack's database (dump → the stack's bucket → a one-off ECS task in the VPC restores it) and its files (every object of the local bucket) to the resources deploy ecs --apply created, and verify both",
    )
    .option('-f, --file <path>', 'mlship.yaml or a compose file', 'mlship.yaml')
    .option('--region <region>', 'AWS region (default: aws.region in mlship.yaml)')
    .option('--account-id <id>', 'AWS account id (default: aws.account_id in mlship.yaml)')
    .option('--profile <name>', 'AWS profile (default: the SDK chain)')
    .option('--endpoint-url <url>', 'AWS endpoint override (emulators such as moto)')
    .option('--only <part>', 'database or files (default: both)')
    .option('--replace', 'replace a cloud database that already has tables (its data is lost)', false)
    .option(
      '--subnets <ids>',
      'subnets of the restore task: those given to deploy ecs --apply (default: the default VPC)',
    )
    .option(
      '--security-groups <ids>',
      'security groups of the restore task: those of the services, which the database admits',
    )
    .option(
      '--no-public-ip',
      'no public IP for the restore task (its subnets reach S3 and the images through NAT or endpoints)',
    )
    .option(
      '--local-container <name>',
      'the local database container, when not started by the stack (mlship compose up)',
    )
    .option(
      '--source-bucket <name>',
      'the bucket of the local object store to copy (default: storage.bucket)',
    )
    .option(
      '--restore-image <image>',
      'image of the restore container (default: the official image of the cloud major, e.g. postgres:16)',
    )
    .option(
      '--dump-compression <level>',
      `pg_dump's compression level, 0 (none) to 9 (smallest, slowest) (default: ${DEFAULT_DUMP_COMPRESSION}: about 3x faster than pg_dump's own default 6 for a dump about 8 % larger)`,
      parseInteger('--dump-compression', 0, 9),
    )
    .option(
      '--fetch-image <image>',
      'image that copies the dump out of the bucket (default: the official AWS CLI image)',
    )
    .addHelpText(
      'after',
      examples([
        ['mlship data push', 'the database and the files, verified'],
        ['mlship data push --only files --json', 'the objects only, a summary for tools'],
        ['mlship data push --replace', 'the cloud database already has tables: replace them'],
      ]),
    )
    .action(async (flags: PushFlags) => push(holder.get(), flags));
};
