// The dump of a database push and its copy in the stack's bucket (under mlship/data/, which
// the tasks' role cannot write). A first push streams pg_dump's output into a multipart
// upload while it is written (the upload hides behind the dump) and computes the verify
// lines at the same time in the dump's snapshot. The key is new for every dump, and the
// dump's SHA-256, known at its end, is checked by the restore task before it restores.
// What a killed run leaves is finished or dropped by the next, never used half-way:
// - killed during the dump: nothing is recorded; the unfinished upload (invisible: S3 shows
//   an object only once its upload completes) is aborted and the dump taken again;
// - killed after it: the dump file and its verify lines are recorded before the upload's
//   last parts; when the data has not changed, the file is uploaded to the same key with the
//   same part size, which sends only the parts the stream had not sent.

import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../io/files.js';
import type { ManagedDatabase } from '../deploy/database.js';
import { compareChecks, type TableCheck } from './checks.js';
import type { DataDeps } from './deps.js';
import { type LocalDatabase, type LocalSnapshot, openSnapshot } from './local-database.js';
import { DATA_PREFIX } from './restore-task.js';

/** Parts of the staged dump: small enough that the last one leaves little to send after the dump. */
export const DUMP_PART_BYTES = 16 * 1024 * 1024;

/** What an interrupted run left in the cache: its dump, the verify lines of its data, its key. */
export interface SavedDump {
  file: string;
  sha256: string;
  bytes: number;
  checks: TableCheck[];
  key: string;
}

export interface StagedDump {
  dump: SavedDump;
  /** The dump of an interrupted run was reused (its data had not changed). */
  reused: boolean;
  uploadedBytes: number;
  resumedBytes: number;
  /** dump: until the dump was written (the upload ran alongside); upload: what it took after. */
  seconds: { dump: number; upload: number };
}

interface Target {
  stack: string;
  bucket: string;
  db: ManagedDatabase;
}

export const stateFile = (deps: Pick<DataDeps, 'cacheDir'>, stack: string, db: ManagedDatabase) =>
  path.join(deps.cacheDir, 'data', stack, `${db.identifier}.json`);

/** Where a database's staged dumps live in the bucket. */
export const dumpPrefix = (db: ManagedDatabase) => `${DATA_PREFIX}/${db.identifier}/`;

const newDumpKey = (db: ManagedDatabase) =>
  `${dumpPrefix(db)}${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.${db.engine === 'postgres' ? 'pgdump' : 'sql'}`;

async function savedDump(file: string): Promise<SavedDump | undefined> {
  const saved = await readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as SavedDump,
    () => undefined,
  );
  if (!saved?.key) return undefined;
  const info = await stat(saved.file).catch(() => undefined);
  return info?.size === saved.bytes ? saved : undefined;
}

/**
 * Drops what earlier runs left under the database's prefix, except `keep`: unfinished
 * uploads (a dump killed half-way) and staged dumps of other data. Only called once no
 * restore is running (the push waits for those first).
 */
export async function clearStaleDumps(deps: Pick<DataDeps, 'aws'>, t: Target, keep?: string) {
  const { s3 } = deps.aws;
  const prefix = dumpPrefix(t.db);
  for (const key of await s3.unfinishedUploads(t.bucket, prefix))
    if (key !== keep) await s3.abortUploads(t.bucket, key);
  for (const o of await s3.listObjects(t.bucket, prefix))
    if (o.key !== keep) await s3.deleteObject(t.bucket, o.key);
}

/** The kept dump, in the bucket: already there, or its upload finished (resumed by parts). */
async function stageSaved(deps: DataDeps, t: Target, saved: SavedDump) {
  const { s3 } = deps.aws;
  const there = await s3.headObject(t.bucket, saved.key);
  const r =
    there?.sizeBytes === saved.bytes
      ? { uploadedBytes: 0, resumedBytes: saved.bytes }
      : await s3.uploadFile({
          bucket: t.bucket,
          key: saved.key,
          file: saved.file,
          sizeBytes: saved.bytes,
          sha256: saved.sha256,
          partBytes: DUMP_PART_BYTES,
          onProgress: (done) => deps.progress?.('upload', done, saved.bytes),
        });
  // A dump of one part or less goes up in one PUT: the streamed upload it replaced is dropped.
  await s3.abortUploads(t.bucket, saved.key);
  await clearStaleDumps(deps, t, saved.key);
  return r;
}

/** A new dump of the snapshot, streamed into the bucket while it is written. */
async function dumpStreaming(
  deps: DataDeps,
  t: Target,
  snapshot: LocalSnapshot,
  t0: number,
): Promise<StagedDump> {
  const key = newDumpKey(t.db);
  const file = path.join(deps.cacheDir, 'data', t.stack, `${t.db.identifier}.dump`);
  const stream = await clearStaleDumps(deps, t)
    .then(() =>
      deps.aws.s3.uploadStream({
        bucket: t.bucket,
        key,
        partBytes: DUMP_PART_BYTES,
        onProgress: (done) => deps.progress?.('upload', done),
      }),
    )
    .catch(async (e) => {
      await snapshot.release();
      throw e;
    });
  let dump: SavedDump;
  try {
    const written = await snapshot.dump(file, {
      progress: deps.progress,
      onChunk: (chunk) => stream.write(chunk),
    });
    dump = { file, ...written, checks: await snapshot.checks, key };
  } catch (e) {
    await stream.abort().catch(() => undefined);
    throw e;
  }
  // Recorded before the last parts: a run killed from here on resumes this upload.
  await writeFileAtomic(stateFile(deps, t.stack, t.db), `${JSON.stringify(dump)}\n`);
  const t1 = Date.now();
  const { uploadedBytes } = await stream.finish();
  const upload = (Date.now() - t1) / 1000;
  return { dump, reused: false, uploadedBytes, resumedBytes: 0, seconds: { dump: (t1 - t0) / 1000, upload } };
}

/**
 * The snapshot's dump and verify lines, staged in the bucket: the dump of an interrupted run
 * when it holds the same data, else a new one.
 */
export async function dumpAndStage(deps: DataDeps, t: Target, local: LocalDatabase): Promise<StagedDump> {
  const t0 = Date.now();
  const snapshot = await openSnapshot(deps.engine, local, t.db);
  const saved = await savedDump(stateFile(deps, t.stack, t.db));
  if (saved) {
    const checks = await snapshot.checks.catch(async (e) => {
      await snapshot.release();
      throw e;
    });
    if (compareChecks(saved.checks, checks).length === 0) {
      await snapshot.release();
      deps.log(`the dump of an interrupted push holds the same data: reused (${saved.bytes} bytes)`);
      const t1 = Date.now();
      const r = await stageSaved(deps, t, saved);
      return {
        dump: saved,
        reused: true,
        ...r,
        seconds: { dump: (t1 - t0) / 1000, upload: (Date.now() - t1) / 1000 },
      };
    }
  }
  return dumpStreaming(deps, t, snapshot, t0);
}
