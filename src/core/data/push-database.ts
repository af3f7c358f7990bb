// `mlship data push`, the database: the local database's snapshot (verify lines, and a dump
// unless the one an interrupted run left holds the same data), the dump staged encrypted in
// the stack's bucket part by part while it is written (stage-dump.ts), restored by the
// one-off task in the VPC as the parts arrive (started with the first part), and the task's
// verify lines compared with the local ones. A run that was stopped anywhere is
// finished by the next: a restore still running is waited for, a completed one is
// recognised by its verify lines (nothing is restored twice), a failed one left nothing
// (the restore is one transaction).

import { rm } from 'node:fs/promises';
import { OperationFailedError, UsageError } from '../../io/errors.js';
import type { DbState } from '../deploy/aws-apis.js';
import type { ManagedDatabase } from '../deploy/database.js';
import {
  compareChecks,
  describeDifference,
  parseChecks,
  type RowHash,
  rowHashFor,
  type TableCheck,
} from './checks.js';
import type { DataDeps, RestoreOutcome, RestoreRunner } from './deps.js';
import { findLocalDatabase, type LocalDatabase, localMajor } from './local-database.js';
import { parseSteps, RESTORE_EXIT } from './restore-task.js';
import {
  dropDump,
  dumpAndStage,
  markUnfinished,
  putFailed,
  type StagedDump,
  stateFile,
} from './stage-dump.js';

export interface DatabasePushOptions {
  stack: string;
  bucket: string;
  db: ManagedDatabase;
  replace: boolean;
  /** A local database container not started by the stack's compose project. */
  localContainer?: string;
  /** pg_dump's compression level, 0-9 (PostgreSQL only; default DEFAULT_DUMP_COMPRESSION). */
  dumpCompression?: number;
}

export interface DatabasePushResult {
  identifier: string;
  engine: string;
  localMajor: string;
  cloudMajor: string;
  tables: TableCheck[];
  rows: number;
  dumpBytes: number;
  /** The dump of an interrupted run was reused (its data had not changed). */
  dumpReused: boolean;
  uploadedBytes: number;
  resumedBytes: number;
  /** restored: now; already: the cloud database held exactly this data. */
  outcome: 'restored' | 'already';
  mismatches: string[];
  /**
   * dump: until the dump was written (the upload and the restore alongside); upload: the
   * upload's rest after it; restore: what the restore took after the dump was staged, of
   * which fetch: until the task had the whole dump (clocks of this machine and the task),
   * verify: its verify lines (the task's clock). The last two when the task printed them.
   */
  seconds: { dump: number; upload: number; restore: number; fetch?: number; verify?: number };
}

const majorOfCloud = (db: ManagedDatabase, state: DbState): string | undefined => {
  const v = state.engineVersion;
  if (!v) return undefined;
  if (db.engine === 'postgres') return v.split('.')[0];
  // Aurora MySQL 3.x reports 8.0.mysql_aurora.3.x.
  return v.split('.').slice(0, 2).join('.');
};

const newer = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true }) > 0;

/** The cloud database, and its major, which must not be older than the local data's. */
async function checkVersions(deps: DataDeps, db: ManagedDatabase, local: LocalDatabase) {
  const state = await deps.aws.rds.describe(db.settings.kind, db.identifier);
  if (!state) {
    throw new UsageError(`the cloud database ${db.identifier} does not exist yet`, {
      hint: 'create it first: mlship deploy ecs --apply (then run mlship data push again)',
    });
  }
  const onDisk = await localMajor(deps.engine, local, db);
  const cloud = majorOfCloud(db, state) ?? onDisk;
  if (newer(onDisk, cloud)) {
    const name = db.engine === 'postgres' ? 'PostgreSQL' : db.engine === 'mysql' ? 'MySQL' : 'MariaDB';
    throw new UsageError(
      `the local data is ${name} ${onDisk} (${db.engine === 'postgres' ? 'PG_VERSION of its data directory' : 'the server'}), newer than the cloud database ${db.identifier} (${name} ${cloud}): a ${onDisk} dump does not restore into ${cloud}`,
      {
        hint: `the cloud database is empty until the first push: delete it (mlship deploy ecs --destroy --delete-data) and apply again with the local image's tag ${db.engine}:${onDisk} in the stack, so the cloud runs ${onDisk}; or downgrade locally (dump, recreate the volume under ${db.engine}:${cloud}, restore)`,
      },
    );
  }
  return { onDisk, cloud };
}

/** Waits for the restores an interrupted push started (never two restores at once). */
async function finishInFlight(deps: DataDeps, runner: RestoreRunner): Promise<void> {
  for (const id of await runner.inFlight()) {
    deps.log(`a restore started by an interrupted push is still running (${id}): waiting for it`);
    await runner.wait(id);
  }
}

function restoreFailure(outcome: RestoreOutcome, runner: RestoreRunner): OperationFailedError {
  const errors = outcome.lines.filter((l) => /^mlship-error |ERROR:|error:/i.test(l));
  const tail = (errors.length ? errors : outcome.lines).slice(-12);
  if (outcome.exitCode === RESTORE_EXIT.unreachable) {
    return new OperationFailedError(
      'DATA_CLOUD_UNREACHABLE',
      `the restore task could not reach the database (${runner.where})`,
      {
        details: tail,
        hint: 'the task runs with the security groups the services use: pass the same --subnets and --security-groups as to deploy ecs --apply',
      },
    );
  }
  return new OperationFailedError(
    'DATA_RESTORE_FAILED',
    `the restore task failed (${outcome.exitCode === undefined ? (outcome.reason ?? 'it did not run') : `exit ${outcome.exitCode}`}); the cloud database is unchanged (one transaction)`,
    { details: tail, hint: 'fix what the lines above name, then run mlship data push again' },
  );
}

/**
 * The dump staged part by part, and the restore task started as soon as its first part is in
 * the bucket: it restores while the rest is dumped. A dump that fails marks its parts failed
 * and waits for the restore to roll back before it throws.
 */
async function stageAndRestore(
  deps: DataDeps,
  runner: RestoreRunner,
  opts: DatabasePushOptions & { rowHash: RowHash },
  local: LocalDatabase,
): Promise<{ staged: StagedDump; outcome: RestoreOutcome; t2: number }> {
  let started: Promise<string> | undefined;
  let startedKey = '';
  const start = (key: string) => {
    if (started) return started;
    startedKey = key;
    deps.log(`restoring the dump into ${opts.db.identifier} while it is staged (${runner.where})`);
    started = runner.start({
      dumpUrl: `s3://${opts.bucket}/${key}`,
      replace: opts.replace,
      rowHash: opts.rowHash,
    });
    started.catch(() => undefined);
    return started;
  };
  let staged: StagedDump;
  try {
    staged = await dumpAndStage(deps, opts, local, start);
  } catch (e) {
    if (started) {
      await putFailed(deps, opts, startedKey).catch(() => undefined);
      const id = await started.catch(() => undefined);
      if (id) await runner.wait(id).catch(() => undefined);
    }
    throw e;
  }
  const t2 = Date.now();
  const id = await start(staged.dump.key).catch(async (e) => {
    await putFailed(deps, opts, staged.dump.key).catch(() => undefined);
    throw e;
  });
  return { staged, outcome: await runner.wait(id), t2 };
}

export async function pushDatabase(deps: DataDeps, opts: DatabasePushOptions): Promise<DatabasePushResult> {
  const runner = deps.restore;
  if (!runner) throw new Error('pushDatabase needs a restore runner');
  const { db } = opts;
  const local = await findLocalDatabase(deps.engine, opts.stack, db, opts.localContainer);
  const versions = await checkVersions(deps, db, local);
  if ((await deps.aws.s3.bucketState(opts.bucket)) !== 'owned') {
    throw new UsageError(`the stack's bucket ${opts.bucket} does not exist yet`, {
      hint: 'create it first: mlship deploy ecs --apply (then run mlship data push again)',
    });
  }
  await markUnfinished(deps, opts);
  await finishInFlight(deps, runner);
  // Both sides hash rows the same way; the target's major is never older than the source's.
  const rowHash = db.engine === 'postgres' ? rowHashFor(versions.onDisk) : 'text';
  const { staged, outcome, t2 } = await stageAndRestore(deps, runner, { ...opts, rowHash }, local);
  const { dump } = staged;
  const cloud = parseChecks(outcome.lines);
  const diffs = compareChecks(dump.checks, cloud);
  let result: DatabasePushResult['outcome'] = 'restored';
  if (outcome.exitCode === RESTORE_EXIT.notEmpty) {
    if (diffs.length) {
      const tables = outcome.lines.find((l) => l.startsWith('mlship-target-not-empty'))?.split(' ')[1];
      throw new UsageError(
        `the cloud database ${db.identifier} already has ${tables ?? 'some'} table(s) with other data than the local database: nothing was restored`,
        {
          details: diffs.slice(0, 10).map(describeDifference),
          hint: 'mlship data push --replace replaces the cloud data with the local data (the cloud data is lost)',
        },
      );
    }
    deps.log(`the cloud database already holds exactly the local data: nothing restored`);
    result = 'already';
  } else if (outcome.exitCode !== 0) {
    // The staged parts go (the next run sends them again from the kept dump): one may be bad.
    await dropDump(deps, opts, dump.key).catch(() => undefined);
    throw restoreFailure(outcome, runner);
  }
  const mismatches = diffs.map(describeDifference);
  if (!mismatches.length) {
    // Staged data is a copy of the user's data: it does not stay in the bucket once verified.
    await dropDump(deps, opts, dump.key);
    await rm(dump.file, { force: true });
    await rm(stateFile(deps, opts.stack, db), { force: true });
  }
  return {
    identifier: db.identifier,
    engine: db.engine,
    localMajor: versions.onDisk,
    cloudMajor: versions.cloud,
    tables: dump.checks,
    rows: dump.checks.reduce((n, t) => n + t.rows, 0),
    dumpBytes: dump.bytes,
    dumpReused: staged.reused,
    uploadedBytes: staged.uploadedBytes,
    resumedBytes: staged.resumedBytes,
    outcome: result,
    mismatches,
    seconds: { ...staged.seconds, restore: (Date.now() - t2) / 1000, ...restoreSteps(outcome, t2) },
  };
}

/** The restore's steps in seconds: until the task had the whole dump, and its verify lines. */
function restoreSteps(outcome: RestoreOutcome, staged: number): { fetch?: number; verify?: number } {
  const s = parseSteps(outcome.lines);
  return {
    ...(s.fetched !== undefined ? { fetch: Math.max(0, s.fetched - staged) / 1000 } : {}),
    ...(s.restored !== undefined && s.verified !== undefined
      ? { verify: (s.verified - s.restored) / 1000 }
      : {}),
  };
}
