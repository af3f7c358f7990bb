// Model weights on AWS: what runs locally with a read-only mount of the weights file
// runs on ECS with the file in the stack's bucket under a content-addressed key
// (`mlship/weights/<sha256>/<file name>`), and MODEL_URL and MODEL_SHA256 on the
// container. The plan hashes each file (a cache keyed by path, size and mtime keeps a
// re-plan of multi-GB weights instant); the apply uploads only what the bucket lacks,
// resuming an interrupted multipart upload, so a redeploy of unchanged weights sends
// 0 bytes.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { StackService } from '../../config/stack-model.js';
import { UsageError } from '../../io/errors.js';
import { writeFileAtomic } from '../../io/files.js';
import type { S3Api } from './aws-apis.js';

export const WEIGHTS_PREFIX = 'mlship/weights';
/** Multipart part size for weights (S3 allows 10,000 parts: 64 MiB parts carry 625 GiB). */
export const WEIGHTS_PART_BYTES = 64 * 1024 * 1024;

/** A model service's weights as the deploy carries them. */
export interface WeightsPlan {
  service: string;
  /** s3:// or https:// URL the container downloads at start-up (MODEL_URL). */
  url: string;
  sha256?: string;
  /** Set when the file is local and the apply uploads it. */
  upload?: { file: string; bucket: string; key: string; sizeBytes: number };
  /** Where the service reads them locally (its MODEL_PATH); informational on ECS. */
  target?: string;
}

/** The stack's bucket: globally unique names, so account and region are part of it. */
export function stackBucketName(stack: string, accountId: string, region: string): string {
  const wanted = `mlship-${stack}-${region}-${accountId}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  if (wanted.length <= 63) return wanted;
  const hash = createHash('sha256').update(wanted).digest('hex').slice(0, 8);
  return `mlship-${stack.slice(0, 63 - 7 - 1 - 8 - 1 - accountId.length)}-${hash}-${accountId}`.replace(
    /-+/g,
    '-',
  );
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Checksums of files by path, size and mtime, in a JSON file (hashing 10 GB takes a minute). */
export class ChecksumCache {
  private entries: Record<string, { size: number; mtimeMs: number; sha256: string }> = {};
  private loaded = false;
  private dirty = false;

  constructor(private readonly file?: string) {}

  async sha256(file: string, size: number, mtimeMs: number): Promise<string> {
    if (this.file && !this.loaded) {
      this.loaded = true;
      this.entries = await readFile(this.file, 'utf8').then(
        (t) => JSON.parse(t) as typeof this.entries,
        () => ({}),
      );
    }
    const hit = this.entries[file];
    if (hit && hit.size === size && hit.mtimeMs === mtimeMs) return hit.sha256;
    const sha256 = await sha256File(file);
    this.entries[file] = { size, mtimeMs, sha256 };
    this.dirty = true;
    return sha256;
  }

  async save(): Promise<void> {
    if (this.file && this.dirty) await writeFileAtomic(this.file, `${JSON.stringify(this.entries)}\n`);
  }
}

/**
 * The weights of each model service: a URL it already downloads from, or its local file,
 * hashed, with the key it gets in the stack's bucket. A local file that is missing is a
 * usage error naming it and the fix: the service could never start on ECS.
 */
export async function planWeights(
  services: StackService[],
  bucket: string,
  cache: ChecksumCache,
): Promise<WeightsPlan[]> {
  const plans: WeightsPlan[] = [];
  for (const s of services) {
    const w = s.weights;
    if (!w) continue;
    if (w.url) {
      plans.push({ service: s.name, url: w.url, ...(w.sha256 ? { sha256: w.sha256 } : {}) });
      continue;
    }
    if (!w.local) continue;
    const info = await stat(w.local.path).catch(() => undefined);
    if (!info?.isFile()) {
      throw new UsageError(
        `service ${s.name}: its weights ${w.local.path} ${info ? 'are not a file' : 'do not exist'}, so it could never start on ECS`,
        {
          hint: `put the model file there (mlship wrap recorded it in ${s.name}'s mlship-wrap.json), or set services.${s.name}.weights.url to where it is (s3:// or https://)`,
        },
      );
    }
    const sha256 = await cache.sha256(w.local.path, info.size, info.mtimeMs);
    if (w.sha256 && w.sha256 !== sha256) {
      throw new UsageError(
        `service ${s.name}: ${w.local.path} does not match services.${s.name}.weights.sha256 (it is ${sha256})`,
        { hint: 'put the right file there, or correct the checksum in mlship.yaml' },
      );
    }
    const key = `${WEIGHTS_PREFIX}/${sha256}/${path.basename(w.local.path)}`;
    plans.push({
      service: s.name,
      url: `s3://${bucket}/${key}`,
      sha256,
      target: w.local.target,
      upload: { file: w.local.path, bucket, key, sizeBytes: info.size },
    });
  }
  return plans;
}

export interface WeightsUploadResult {
  service: string;
  url: string;
  sizeBytes: number;
  /** Bytes sent now (0 when the bucket already had the object). */
  uploadedBytes: number;
  /** Bytes an interrupted upload had already sent, not sent again. */
  resumedBytes: number;
  skipped: boolean;
}

/** Uploads what the bucket lacks; an object already there under its checksum key is skipped. */
export async function uploadWeights(
  plans: WeightsPlan[],
  deps: {
    s3: S3Api;
    log(line: string): void;
    progress?: (service: string, done: number, total: number) => void;
  },
): Promise<WeightsUploadResult[]> {
  const results: WeightsUploadResult[] = [];
  for (const p of plans) {
    if (!p.upload) continue;
    const { bucket, key, file, sizeBytes } = p.upload;
    const there = await deps.s3.headObject(bucket, key);
    if (there && there.sizeBytes === sizeBytes) {
      deps.log(`${p.service}: weights already in s3://${bucket}/${key}, not uploaded again`);
      results.push({
        service: p.service,
        url: p.url,
        sizeBytes,
        uploadedBytes: 0,
        resumedBytes: 0,
        skipped: true,
      });
      continue;
    }
    deps.log(`${p.service}: uploading weights (${formatBytes(sizeBytes)}) to s3://${bucket}/${key}`);
    const r = await deps.s3.uploadFile({
      bucket,
      key,
      file,
      sizeBytes,
      sha256: p.sha256!,
      partBytes: WEIGHTS_PART_BYTES,
      onProgress: (done) => deps.progress?.(p.service, done, sizeBytes),
    });
    if (r.resumedBytes)
      deps.log(`${p.service}: resumed an interrupted upload (${formatBytes(r.resumedBytes)} were there)`);
    results.push({ service: p.service, url: p.url, sizeBytes, ...r, skipped: false });
  }
  return results;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
