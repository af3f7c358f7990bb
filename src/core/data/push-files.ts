// `mlship data push`, the files: every object of the local object store's bucket to the
// stack's S3 bucket under the same key. Each object's SHA-256 is computed from the bytes
// read locally and sent with it: S3 refuses an object whose bytes do not match (a single
// PUT's x-amz-checksum-sha256) and keeps it as metadata, so a re-run skips every object
// whose size and SHA-256 already match (nothing is copied twice), and a large object goes
// up as a multipart upload that resumes (a journal in the cache says which content an
// unfinished upload was of; one of other content is aborted, never completed with mixed
// parts). Finally a listing of the bucket checks every key and size.

import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { UsageError } from '../../io/errors.js';
import { writeFileAtomic } from '../../io/files.js';
import type { S3Api } from '../deploy/aws-apis.js';
import type { DataProgress } from './deps.js';

/** Objects up to this size are read into memory and sent in one PUT; larger ones in parts. */
export const SINGLE_PUT_BYTES = 16 * 1024 * 1024;
export const FILE_PART_BYTES = 16 * 1024 * 1024;
const CONCURRENCY = 16;

export interface FilesPushOptions {
  stack: string;
  sourceBucket: string;
  bucket: string;
  concurrency?: number;
}

export interface FilesPushResult {
  sourceBucket: string;
  bucket: string;
  objects: number;
  bytes: number;
  copied: number;
  copiedBytes: number;
  /** Already in the bucket with the same size and SHA-256. */
  skipped: number;
  /** Bytes of large objects an interrupted run had already sent. */
  resumedBytes: number;
  mismatches: string[];
  seconds: number;
}

export interface FilesDeps {
  source: S3Api;
  target: S3Api;
  log(line: string): void;
  progress?: DataProgress;
  cacheDir: string;
}

async function readAll(stream: Readable): Promise<{ body: Buffer; sha256: string }> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  for await (const c of stream) {
    hash.update(c as Buffer);
    chunks.push(c as Buffer);
  }
  return { body: Buffer.concat(chunks), sha256: hash.digest('hex') };
}

async function toFile(stream: Readable, file: string): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  for await (const c of stream) {
    hash.update(c as Buffer);
    if (!out.write(c)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return hash.digest('hex');
}

/** Which content each unfinished multipart upload is of, kept between runs. */
class UploadJournal {
  private entries: Record<string, string> | undefined;
  constructor(private readonly file: string) {}
  private async load() {
    this.entries ??= await readFile(this.file, 'utf8').then(
      (t) => JSON.parse(t) as Record<string, string>,
      () => ({}),
    );
    return this.entries;
  }
  async get(key: string) {
    return (await this.load())[key];
  }
  async set(key: string, sha256: string | undefined) {
    const e = await this.load();
    if (sha256) e[key] = sha256;
    else delete e[key];
    await mkdir(path.dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, `${JSON.stringify(e)}\n`);
  }
}

interface Counters {
  copied: number;
  copiedBytes: number;
  skipped: number;
  resumedBytes: number;
  done: number;
}

async function copyLarge(
  deps: FilesDeps,
  opts: FilesPushOptions,
  obj: { key: string; sizeBytes: number },
  journal: UploadJournal,
  tmp: string,
  there: { sizeBytes: number; sha256?: string } | undefined,
  n: Counters,
) {
  const file = path.join(tmp, createHash('sha256').update(obj.key).digest('hex'));
  try {
    const sha256 = await toFile(await deps.source.getObject(opts.sourceBucket, obj.key), file);
    if (there?.sizeBytes === obj.sizeBytes && there.sha256 === sha256) {
      n.skipped++;
      return;
    }
    // An unfinished upload of other content (or of unknown content) is never resumed.
    if ((await journal.get(obj.key)) !== sha256) await deps.target.abortUploads(opts.bucket, obj.key);
    await journal.set(obj.key, sha256);
    const r = await deps.target.uploadFile({
      bucket: opts.bucket,
      key: obj.key,
      file,
      sizeBytes: obj.sizeBytes,
      sha256,
      partBytes: FILE_PART_BYTES,
    });
    await journal.set(obj.key, undefined);
    n.copied++;
    n.copiedBytes += r.uploadedBytes;
    n.resumedBytes += r.resumedBytes;
  } finally {
    await rm(file, { force: true });
  }
}

async function copyOne(
  deps: FilesDeps,
  opts: FilesPushOptions,
  obj: { key: string; sizeBytes: number },
  targetSize: number | undefined,
  journal: UploadJournal,
  tmp: string,
  n: Counters,
) {
  // Only an object of the same size can be the same: then its recorded SHA-256 decides.
  const there = targetSize === obj.sizeBytes ? await deps.target.headObject(opts.bucket, obj.key) : undefined;
  if (obj.sizeBytes > SINGLE_PUT_BYTES) return copyLarge(deps, opts, obj, journal, tmp, there, n);
  const { body, sha256 } = await readAll(await deps.source.getObject(opts.sourceBucket, obj.key));
  if (there?.sha256 === sha256) {
    n.skipped++;
    return;
  }
  await deps.target.putObject({ bucket: opts.bucket, key: obj.key, body, sha256 });
  n.copied++;
  n.copiedBytes += body.length;
}

export async function pushFiles(deps: FilesDeps, opts: FilesPushOptions): Promise<FilesPushResult> {
  const t0 = Date.now();
  const objects = await deps.source.listObjects(opts.sourceBucket);
  const reserved = objects.filter((o) => o.key.startsWith('mlship/'));
  if (reserved.length) {
    throw new UsageError(
      `${reserved.length} object(s) of the local bucket ${opts.sourceBucket} are under mlship/, the prefix mlship keeps for itself in the stack's bucket (e.g. ${reserved[0]!.key})`,
      { hint: 'move them to another prefix in the local bucket, then run mlship data push again' },
    );
  }
  const targetSizes = new Map((await deps.target.listObjects(opts.bucket)).map((o) => [o.key, o.sizeBytes]));
  const journal = new UploadJournal(path.join(deps.cacheDir, 'data', opts.stack, 'uploads.json'));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mlship-files-'));
  const n: Counters = { copied: 0, copiedBytes: 0, skipped: 0, resumedBytes: 0, done: 0 };
  const queue = [...objects];
  const worker = async () => {
    for (let o = queue.shift(); o; o = queue.shift()) {
      await copyOne(deps, opts, o, targetSizes.get(o.key), journal, tmp, n);
      n.done++;
      deps.progress?.('files', n.done, objects.length);
    }
  };
  try {
    await Promise.all(
      Array.from({ length: Math.min(opts.concurrency ?? CONCURRENCY, objects.length) }, worker),
    );
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  // Every key, with its size, as the bucket lists it now.
  const after = new Map((await deps.target.listObjects(opts.bucket)).map((o) => [o.key, o.sizeBytes]));
  const mismatches = objects.flatMap((o) => {
    const size = after.get(o.key);
    if (size === undefined) return [`object ${o.key}: missing in s3://${opts.bucket}`];
    return size === o.sizeBytes
      ? []
      : [`object ${o.key}: ${o.sizeBytes} bytes locally, ${size} in s3://${opts.bucket}`];
  });
  return {
    sourceBucket: opts.sourceBucket,
    bucket: opts.bucket,
    objects: objects.length,
    bytes: objects.reduce((s, o) => s + o.sizeBytes, 0),
    copied: n.copied,
    copiedBytes: n.copiedBytes,
    skipped: n.skipped,
    resumedBytes: n.resumedBytes,
    mismatches,
    seconds: (Date.now() - t0) / 1000,
  };
}
