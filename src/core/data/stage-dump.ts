// The dump of a database push and its copy in the stack's bucket (under mlship/data/, which
// the tasks' role cannot write), staged as a series of part objects under the dump's key
// (<key>/part-00001.<sha256>, ... named and stored with its SHA-256, which S3 checks on
// arrival) while pg_dump writes, so the restore task can restore each part as it appears;
// once pg_dump succeeded, a manifest (<key>/manifest: every part's name, SHA-256 and size, then the
// whole dump's) closes it. Only the manifest lets the restore commit; a dump that failed
// gets a failure marker (<key>/failed) so a restore waiting for parts rolls back at once.
// The key is new for every dump. What a killed run leaves is finished or dropped by the
// next, never used half-way:
// - killed during the dump: nothing is recorded; the next run marks the dump failed (a
//   restore still waiting for it rolls back), then drops its parts and dumps again;
// - killed after it: the dump file and its verify lines are recorded before the last parts;
//   when the data has not changed, the parts missing in the bucket are sent from the kept
//   file (same part size; any other part object under the key deleted first), then the
//   manifest.

import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../io/files.js';
import type { ManagedDatabase } from '../deploy/database.js';
import { compareChecks, type RowHash, type TableCheck } from './checks.js';
import type { DataDeps } from './deps.js';
import { type LocalDatabase, type LocalSnapshot, openSnapshot } from './local-database.js';
import { DATA_PREFIX, failedKey, manifestKey, partKey, partName, partObject } from './restore-task.js';

/** Parts of the staged dump: small enough that the restore starts early and the last one is quick. */
export const DUMP_PART_BYTES = 16 * 1024 * 1024;
const PARALLEL_PARTS = 4;
const partBytes = (deps: Pick<DataDeps, 'dumpPartBytes'>) => deps.dumpPartBytes ?? DUMP_PART_BYTES;

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
  /** How the verify lines hash a row (default: the text of the row, which every version has). */
  rowHash?: RowHash;
  /** pg_dump's compression level (default: DEFAULT_DUMP_COMPRESSION). */
  dumpCompression?: number;
}

/** Called once the dump's first part is in the bucket (the restore can start), with its key. */
export type OnStaging = (key: string) => void;

export const stateFile = (deps: Pick<DataDeps, 'cacheDir'>, stack: string, db: ManagedDatabase) =>
  path.join(deps.cacheDir, 'data', stack, `${db.identifier}.json`);

/** Where a database's staged dumps live in the bucket. */
export const dumpPrefix = (db: ManagedDatabase) => `${DATA_PREFIX}/${db.identifier}/`;

const newDumpKey = (db: ManagedDatabase) =>
  `${dumpPrefix(db)}${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.${db.engine === 'postgres' ? 'pgdump' : 'sql'}`;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const manifestLine = (n: number, sum: string, bytes: number) => `${partName(n)} ${sum} ${bytes}`;

async function savedDump(file: string): Promise<SavedDump | undefined> {
  const saved = await readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as SavedDump,
    () => undefined,
  );
  if (!saved?.key) return undefined;
  const info = await stat(saved.file).catch(() => undefined);
  return info?.size === saved.bytes ? saved : undefined;
}

/** The staged dumps under the database's prefix (key: the dump's key), and which objects each has. */
async function stagedDumps(deps: Pick<DataDeps, 'aws'>, t: Target) {
  const dumps = new Map<string, string[]>();
  for (const o of await deps.aws.s3.listObjects(t.bucket, dumpPrefix(t.db))) {
    const cut = o.key.lastIndexOf('/');
    const key = cut > dumpPrefix(t.db).length ? o.key.slice(0, cut) : o.key;
    dumps.set(key, [...(dumps.get(key) ?? []), o.key.slice(key.length + 1)]);
  }
  return dumps;
}

/**
 * Marks every staged dump without a manifest as failed: a restore an interrupted run started
 * and that still waits for its parts then rolls back instead of waiting out its limit.
 */
export async function markUnfinished(deps: Pick<DataDeps, 'aws'>, t: Target) {
  for (const [key, names] of await stagedDumps(deps, t))
    if (!names.includes('manifest') && !names.includes('failed')) await putFailed(deps, t, key);
}

export const putFailed = (deps: Pick<DataDeps, 'aws'>, t: Target, key: string) =>
  deps.aws.s3.putObject({
    bucket: t.bucket,
    key: failedKey(key),
    body: Buffer.from('failed\n'),
    sha256: sha256(Buffer.from('failed\n')),
  });

/** Deletes the named objects of one staged dump. */
async function deleteNamed(deps: Pick<DataDeps, 'aws'>, t: Target, key: string, names: Iterable<string>) {
  for (const name of names) await deps.aws.s3.deleteObject(t.bucket, name ? `${key}/${name}` : key);
}

/** Deletes every object of one staged dump. */
export async function dropDump(deps: Pick<DataDeps, 'aws'>, t: Target, key: string) {
  await deleteNamed(deps, t, key, (await stagedDumps(deps, t)).get(key) ?? []);
}

/**
 * Drops what earlier runs left under the database's prefix, except the dump `keep`: staged
 * dumps of other data, and unfinished multipart uploads (of earlier versions). Only called
 * once no restore is running (the push waits for those first). Lists the prefix once; returns
 * the object names `keep` has.
 */
export async function clearStaleDumps(deps: Pick<DataDeps, 'aws'>, t: Target, keep?: string) {
  const { s3 } = deps.aws;
  const prefix = dumpPrefix(t.db);
  for (const key of await s3.unfinishedUploads(t.bucket, prefix)) await s3.abortUploads(t.bucket, key);
  const dumps = await stagedDumps(deps, t);
  for (const [key, names] of dumps) if (key !== keep) await deleteNamed(deps, t, key, names);
  return (keep && dumps.get(keep)) || [];
}

/**
 * Fills parts of exactly DUMP_PART_BYTES (or the deps' dumpPartBytes; the last one shorter)
 * as bytes arrive and stores each as it fills, a few at once (the dump waits for the oldest
 * when all are busy); reports the first part once it is in the bucket.
 */
function partWriter(deps: DataDeps, t: Target, key: string, onFirst: () => void) {
  let part = Buffer.allocUnsafe(partBytes(deps));
  let filled = 0;
  let sent = 0;
  let failure: unknown;
  const lines: string[] = [];
  const inFlight: Promise<void>[] = [];
  const store = (body: Buffer) => {
    const sum = sha256(body);
    const n = lines.push(manifestLine(lines.length + 1, sum, body.length));
    inFlight.push(
      deps.aws.s3.putObject({ bucket: t.bucket, key: partKey(key, n, sum), body, sha256: sum }).then(
        () => {
          sent += body.length;
          deps.progress?.('upload', sent);
          if (n === 1) onFirst();
        },
        (e) => {
          failure ??= e;
        },
      ),
    );
  };
  /** Waits until at most `busy` parts are in flight; throws the first failure. */
  const drain = async (busy: number) => {
    while (inFlight.length > busy) await inFlight.shift();
    if (failure) throw failure;
  };
  return {
    write(chunk: Buffer): Promise<void> | undefined {
      if (failure) return Promise.reject(failure);
      for (let at = 0; at < chunk.length; ) {
        const copied = chunk.copy(part, filled, at);
        at += copied;
        filled += copied;
        if (filled === part.length) {
          store(part);
          part = Buffer.allocUnsafe(partBytes(deps));
          filled = 0;
        }
      }
      return inFlight.length >= PARALLEL_PARTS ? drain(PARALLEL_PARTS - 1) : undefined;
    },
    /** Every part stored; the manifest's part lines. */
    async finish() {
      if (filled > 0 || lines.length === 0) store(part.subarray(0, filled));
      await drain(0);
      return { lines, uploadedBytes: sent };
    },
    settle: () => drain(0),
  };
}

const putManifest = (deps: DataDeps, t: Target, dump: SavedDump, lines: string[]) => {
  const body = Buffer.from(`${[...lines, `total ${dump.sha256} ${dump.bytes}`].join('\n')}\n`);
  return deps.aws.s3.putObject({ bucket: t.bucket, key: manifestKey(dump.key), body, sha256: sha256(body) });
};

/** The kept dump's parts in order: number, offset, length and SHA-256 (the file read once). */
async function keptParts(deps: DataDeps, saved: SavedDump) {
  const parts: { n: number; at: number; length: number; sum: string }[] = [];
  const file = await open(saved.file, 'r');
  try {
    for (let n = 1, at = 0; n === 1 || at < saved.bytes; n++, at += partBytes(deps)) {
      const body = Buffer.alloc(Math.min(partBytes(deps), saved.bytes - at));
      await file.read(body, 0, body.length, at);
      parts.push({ n, at, length: body.length, sum: sha256(body) });
    }
  } finally {
    await file.close();
  }
  return parts;
}

/**
 * The kept dump, in the bucket: the parts not there yet sent from the file, then the manifest.
 * A part's key holds its SHA-256 (which S3 checked on arrival), so a part whose key is there
 * is whole; any other part object of the dump (another SHA-256 under a number, an older
 * layout) is deleted first, before a restore can start and read it.
 */
async function stageSaved(deps: DataDeps, t: Target, saved: SavedDump, onStaging: OnStaging) {
  const { s3 } = deps.aws;
  const there = new Set(await clearStaleDumps(deps, t, saved.key));
  await s3.deleteObject(t.bucket, failedKey(saved.key));
  await s3.deleteObject(t.bucket, manifestKey(saved.key));
  const parts = await keptParts(deps, saved);
  const wanted = new Set(parts.map((p) => partObject(p.n, p.sum)));
  await deleteNamed(
    deps,
    t,
    saved.key,
    [...there].filter((name) => name.startsWith('part-') && !wanted.has(name)),
  );
  let uploadedBytes = 0;
  const file = await open(saved.file, 'r');
  try {
    for (const { n, at, length, sum } of parts) {
      if (!there.has(partObject(n, sum))) {
        const body = Buffer.alloc(length);
        await file.read(body, 0, length, at);
        await s3.putObject({ bucket: t.bucket, key: partKey(saved.key, n, sum), body, sha256: sum });
        uploadedBytes += length;
      }
      if (n === 1) onStaging(saved.key);
      deps.progress?.('upload', at + length, saved.bytes);
    }
  } finally {
    await file.close();
  }
  await putManifest(
    deps,
    t,
    saved,
    parts.map((p) => manifestLine(p.n, p.sum, p.length)),
  );
  return { uploadedBytes, resumedBytes: saved.bytes - uploadedBytes };
}

/** A new dump of the snapshot, staged part by part while it is written. */
async function dumpStaging(
  deps: DataDeps,
  t: Target,
  snapshot: LocalSnapshot,
  t0: number,
  onStaging: OnStaging,
): Promise<StagedDump> {
  const key = newDumpKey(t.db);
  const file = path.join(deps.cacheDir, 'data', t.stack, `${t.db.identifier}.dump`);
  await clearStaleDumps(deps, t).catch(async (e) => {
    await snapshot.release();
    throw e;
  });
  const parts = partWriter(deps, t, key, () => onStaging(key));
  let dump: SavedDump;
  try {
    const written = await snapshot.dump(file, { progress: deps.progress, onChunk: (c) => parts.write(c) });
    dump = { file, ...written, checks: await snapshot.checks, key };
  } catch (e) {
    await parts.settle().catch(() => undefined);
    throw e;
  }
  // Recorded before the last parts: a run killed from here on sends the rest from the file.
  await writeFileAtomic(stateFile(deps, t.stack, t.db), `${JSON.stringify(dump)}\n`);
  const t1 = Date.now();
  const { lines, uploadedBytes } = await parts.finish();
  await putManifest(deps, t, dump, lines);
  const upload = (Date.now() - t1) / 1000;
  return { dump, reused: false, uploadedBytes, resumedBytes: 0, seconds: { dump: (t1 - t0) / 1000, upload } };
}

/**
 * The snapshot's dump and verify lines, staged in the bucket: the dump of an interrupted run
 * when it holds the same data, else a new one. `onStaging` is called once its first part is
 * in the bucket.
 */
export async function dumpAndStage(
  deps: DataDeps,
  t: Target,
  local: LocalDatabase,
  onStaging: OnStaging,
): Promise<StagedDump> {
  const t0 = Date.now();
  const snapshot = await openSnapshot(deps.engine, local, t.db, t.rowHash ?? 'text', t.dumpCompression);
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
      const r = await stageSaved(deps, t, saved, onStaging);
      return {
        dump: saved,
        reused: true,
        ...r,
        seconds: { dump: (t1 - t0) / 1000, upload: (Date.now() - t1) / 1000 },
      };
    }
  }
  return dumpStaging(deps, t, snapshot, t0, onStaging);
}
