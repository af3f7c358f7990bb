// Amazon S3: the stack's bucket (Block Public Access, default encryption, tags,
// versioning, an expiry rule for uploads) and the files mlship puts in it. Large files
// go up as multipart uploads that resume: the parts an interrupted upload of the same
// key already sent are listed and not sent again.

import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type * as S3Sdk from '@aws-sdk/client-s3';
import type { BucketSpec, S3Api, UploadSpec } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

const PARALLEL_PARTS = 4;

type Status = { $metadata?: { httpStatusCode?: number }; name?: string };
const status = (e: unknown) => (e as Status).$metadata?.httpStatusCode;

/** Completes a multipart upload from the ETags of its parts, by part number. */
function completeUpload(
  s3Sdk: typeof S3Sdk,
  client: S3Sdk.S3Client,
  upload: { Bucket: string; Key: string; UploadId: string },
  etags: Map<number, string>,
) {
  return call(`finish the upload of ${upload.Key}`, () =>
    client.send(
      new s3Sdk.CompleteMultipartUploadCommand({
        ...upload,
        MultipartUpload: {
          Parts: [...etags].sort(([a], [b]) => a - b).map(([PartNumber, ETag]) => ({ PartNumber, ETag })),
        },
      }),
    ),
  );
}

export function createS3Api(s3Sdk: typeof S3Sdk, client: S3Sdk.S3Client): S3Api {
  const send = client.send.bind(client) as (command: unknown) => Promise<never>;

  async function bucketState(name: string): Promise<'owned' | 'taken' | 'missing'> {
    try {
      await client.send(new s3Sdk.HeadBucketCommand({ Bucket: name }));
      return 'owned';
    } catch (e) {
      if (status(e) === 404) return 'missing';
      if (status(e) === 403 || status(e) === 301) return 'taken';
      return call(`look up bucket ${name}`, () => Promise.reject(e));
    }
  }

  async function configure(spec: BucketSpec, created: boolean): Promise<string[]> {
    const changed: string[] = [];
    const B = spec.name;
    const block = {
      BlockPublicAcls: true,
      IgnorePublicAcls: true,
      BlockPublicPolicy: true,
      RestrictPublicBuckets: true,
    };
    const currentBlock = created
      ? undefined
      : await client.send(new s3Sdk.GetPublicAccessBlockCommand({ Bucket: B })).then(
          (r) => r.PublicAccessBlockConfiguration,
          () => undefined,
        );
    if (
      !currentBlock ||
      Object.entries(block).some(([k, v]) => currentBlock[k as keyof typeof block] !== v)
    ) {
      await call(`block public access to ${B}`, () =>
        client.send(
          new s3Sdk.PutPublicAccessBlockCommand({ Bucket: B, PublicAccessBlockConfiguration: block }),
        ),
      );
      if (!created) changed.push('public access block');
    }
    const rule = spec.kmsKeyId
      ? { SSEAlgorithm: 'aws:kms' as const, KMSMasterKeyID: spec.kmsKeyId }
      : { SSEAlgorithm: 'AES256' as const };
    const currentRule = created
      ? undefined
      : await client.send(new s3Sdk.GetBucketEncryptionCommand({ Bucket: B })).then(
          (r) => r.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault,
          () => undefined,
        );
    const sameRule =
      currentRule?.SSEAlgorithm === rule.SSEAlgorithm &&
      (!spec.kmsKeyId || currentRule.KMSMasterKeyID === spec.kmsKeyId);
    if (!sameRule) {
      await call(`set default encryption of ${B}`, () =>
        client.send(
          new s3Sdk.PutBucketEncryptionCommand({
            Bucket: B,
            ServerSideEncryptionConfiguration: {
              Rules: [{ ApplyServerSideEncryptionByDefault: rule, BucketKeyEnabled: Boolean(spec.kmsKeyId) }],
            },
          }),
        ),
      );
      if (!created) changed.push('encryption');
    }
    const versioning = await client
      .send(new s3Sdk.GetBucketVersioningCommand({ Bucket: B }))
      .then((r) => r.Status === 'Enabled');
    if (versioning !== spec.versioning && (spec.versioning || !created)) {
      // Versioning can be suspended, never removed: "off" on a versioned bucket suspends it.
      await call(`set versioning of ${B}`, () =>
        client.send(
          new s3Sdk.PutBucketVersioningCommand({
            Bucket: B,
            VersioningConfiguration: { Status: spec.versioning ? 'Enabled' : 'Suspended' },
          }),
        ),
      );
      if (!created) changed.push('versioning');
    }
    await configureExpiry(spec, changed, created);
    await configureTags(spec, changed, created);
    return changed;
  }

  async function configureExpiry(spec: BucketSpec, changed: string[], created: boolean): Promise<void> {
    const id = 'mlship-expire-uploads';
    const rules = created
      ? []
      : await client.send(new s3Sdk.GetBucketLifecycleConfigurationCommand({ Bucket: spec.name })).then(
          (r) => r.Rules ?? [],
          () => [],
        );
    const ours = rules.find((r) => r.ID === id);
    const others = rules.filter((r) => r.ID !== id);
    const same =
      spec.expire &&
      ours?.Expiration?.Days === spec.expire.days &&
      ours.Filter?.Prefix === spec.expire.prefix &&
      ours.Status === 'Enabled';
    if (spec.expire && !same) {
      await call(`set the expiry of ${spec.name}/${spec.expire.prefix}`, () =>
        client.send(
          new s3Sdk.PutBucketLifecycleConfigurationCommand({
            Bucket: spec.name,
            LifecycleConfiguration: {
              Rules: [
                ...others,
                {
                  ID: id,
                  Status: 'Enabled',
                  Filter: { Prefix: spec.expire!.prefix },
                  Expiration: { Days: spec.expire!.days },
                  AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
                },
              ],
            },
          }),
        ),
      );
      if (!created) changed.push('expiry rule');
    } else if (!spec.expire && ours) {
      await call(`remove the expiry rule of ${spec.name}`, () =>
        others.length
          ? client.send(
              new s3Sdk.PutBucketLifecycleConfigurationCommand({
                Bucket: spec.name,
                LifecycleConfiguration: { Rules: others },
              }),
            )
          : client.send(new s3Sdk.DeleteBucketLifecycleCommand({ Bucket: spec.name })),
      );
      if (!created) changed.push('expiry rule removed');
    }
  }

  async function configureTags(spec: BucketSpec, changed: string[], created: boolean): Promise<void> {
    const current = created
      ? {}
      : await client.send(new s3Sdk.GetBucketTaggingCommand({ Bucket: spec.name })).then(
          (r) => Object.fromEntries((r.TagSet ?? []).map((t) => [t.Key!, t.Value!])),
          () => ({}) as Record<string, string>,
        );
    const wanted = { ...current, ...spec.tags };
    if (Object.entries(spec.tags).every(([k, v]) => current[k] === v)) return;
    await call(`tag bucket ${spec.name}`, () =>
      client.send(
        new s3Sdk.PutBucketTaggingCommand({
          Bucket: spec.name,
          Tagging: { TagSet: Object.entries(wanted).map(([Key, Value]) => ({ Key, Value })) },
        }),
      ),
    );
    if (!created) changed.push('tags');
  }

  async function multipart(spec: UploadSpec): Promise<{ uploadedBytes: number; resumedBytes: number }> {
    const { bucket: Bucket, key: Key } = spec;
    // An upload of this key left by an interrupted run: its finished parts are kept.
    const open = await call(`list unfinished uploads of ${Key}`, () =>
      client.send(new s3Sdk.ListMultipartUploadsCommand({ Bucket, Prefix: Key })),
    );
    let uploadId = open.Uploads?.find((u) => u.Key === Key)?.UploadId;
    const done = new Map<number, { ETag: string; size: number }>();
    if (uploadId) {
      let marker: string | undefined;
      do {
        const page = await call(`list the parts already sent of ${Key}`, () =>
          client.send(
            new s3Sdk.ListPartsCommand({ Bucket, Key, UploadId: uploadId, PartNumberMarker: marker }),
          ),
        );
        for (const p of page.Parts ?? []) done.set(p.PartNumber!, { ETag: p.ETag!, size: p.Size! });
        marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (marker);
    } else {
      uploadId = (
        await call(`start the upload of ${Key}`, () =>
          client.send(
            new s3Sdk.CreateMultipartUploadCommand({ Bucket, Key, Metadata: { sha256: spec.sha256 } }),
          ),
        )
      ).UploadId!;
    }
    const parts: { PartNumber: number; start: number; end: number }[] = [];
    for (let start = 0, n = 1; start < spec.sizeBytes; start += spec.partBytes, n++)
      parts.push({ PartNumber: n, start, end: Math.min(spec.sizeBytes, start + spec.partBytes) - 1 });
    let resumedBytes = 0;
    let uploadedBytes = 0;
    const etags = new Map<number, string>();
    for (const p of parts) {
      const had = done.get(p.PartNumber);
      if (had && had.size === p.end - p.start + 1) {
        etags.set(p.PartNumber, had.ETag);
        resumedBytes += had.size;
      }
    }
    spec.onProgress?.(resumedBytes);
    const todo = parts.filter((p) => !etags.has(p.PartNumber));
    const worker = async () => {
      for (let p = todo.shift(); p; p = todo.shift()) {
        const part = p;
        const r = await call(`upload part ${part.PartNumber} of ${Key}`, () =>
          send(
            new s3Sdk.UploadPartCommand({
              Bucket,
              Key,
              UploadId: uploadId,
              PartNumber: part.PartNumber,
              ContentLength: part.end - part.start + 1,
              Body: createReadStream(spec.file, { start: part.start, end: part.end }),
            }),
          ),
        );
        etags.set(part.PartNumber, (r as { ETag: string }).ETag);
        uploadedBytes += part.end - part.start + 1;
        spec.onProgress?.(resumedBytes + uploadedBytes);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL_PARTS }, worker));
    await completeUpload(s3Sdk, client, { Bucket, Key, UploadId: uploadId! }, etags);
    return { uploadedBytes, resumedBytes };
  }

  return {
    bucketState,
    async ensureBucket(spec) {
      const state = await bucketState(spec.name);
      if (state === 'taken') throw new Error(`bucket ${spec.name} belongs to another account`);
      const created = state === 'missing';
      if (created) {
        await call(`create bucket ${spec.name}`, () =>
          client.send(
            new s3Sdk.CreateBucketCommand({
              Bucket: spec.name,
              ObjectOwnership: 'BucketOwnerEnforced',
              ...(spec.region === 'us-east-1'
                ? {}
                : {
                    CreateBucketConfiguration: {
                      LocationConstraint: spec.region as S3Sdk.BucketLocationConstraint,
                    },
                  }),
            }),
          ),
        );
      }
      return { created, changed: await configure(spec, created) };
    },
    async headObject(bucket, key) {
      try {
        const r = await client.send(new s3Sdk.HeadObjectCommand({ Bucket: bucket, Key: key }));
        return {
          sizeBytes: r.ContentLength ?? 0,
          ...(r.Metadata?.sha256 ? { sha256: r.Metadata.sha256 } : {}),
        };
      } catch (e) {
        if (status(e) === 404) return undefined;
        return call(`look up s3://${bucket}/${key}`, () => Promise.reject(e));
      }
    },
    async uploadFile(spec) {
      // Up to one part's size: one PUT.
      if (spec.sizeBytes > spec.partBytes) return multipart(spec);
      await call(`upload ${spec.key}`, () =>
        send(
          new s3Sdk.PutObjectCommand({
            Bucket: spec.bucket,
            Key: spec.key,
            ContentLength: spec.sizeBytes,
            Body: createReadStream(spec.file),
            Metadata: { sha256: spec.sha256 },
          }),
        ),
      );
      spec.onProgress?.(spec.sizeBytes);
      return { uploadedBytes: spec.sizeBytes, resumedBytes: 0 };
    },
    async isEmpty(bucket) {
      const r = await call(`list ${bucket}`, () =>
        client.send(new s3Sdk.ListObjectVersionsCommand({ Bucket: bucket, MaxKeys: 1 })),
      );
      return !(r.Versions?.length || r.DeleteMarkers?.length);
    },
    async emptyBucket(bucket) {
      let deleted = 0;
      for (;;) {
        const r = await call(`list ${bucket}`, () =>
          client.send(new s3Sdk.ListObjectVersionsCommand({ Bucket: bucket, MaxKeys: 1000 })),
        );
        const objects = [...(r.Versions ?? []), ...(r.DeleteMarkers ?? [])].map((v) => ({
          Key: v.Key!,
          ...(v.VersionId ? { VersionId: v.VersionId } : {}),
        }));
        if (!objects.length) return deleted;
        await call(`delete objects of ${bucket}`, () =>
          client.send(
            new s3Sdk.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }),
          ),
        );
        deleted += objects.length;
      }
    },
    async deleteBucket(bucket) {
      if ((await bucketState(bucket)) !== 'owned') return false;
      await call(`delete bucket ${bucket}`, () =>
        client.send(new s3Sdk.DeleteBucketCommand({ Bucket: bucket })),
      );
      return true;
    },
    async listObjects(bucket, prefix) {
      const out: { key: string; sizeBytes: number }[] = [];
      let token: string | undefined;
      do {
        const r = await call(`list ${bucket}${prefix ? `/${prefix}` : ''}`, () =>
          client.send(
            new s3Sdk.ListObjectsV2Command({
              Bucket: bucket,
              ...(prefix ? { Prefix: prefix } : {}),
              ...(token ? { ContinuationToken: token } : {}),
            }),
          ),
        );
        for (const o of r.Contents ?? []) out.push({ key: o.Key!, sizeBytes: o.Size ?? 0 });
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return out;
    },
    async getObject(bucket, key) {
      const r = await call(`read s3://${bucket}/${key}`, () =>
        client.send(new s3Sdk.GetObjectCommand({ Bucket: bucket, Key: key })),
      );
      return r.Body as Readable;
    },
    async putObject(spec) {
      await call(`upload ${spec.key}`, () =>
        client.send(
          new s3Sdk.PutObjectCommand({
            Bucket: spec.bucket,
            Key: spec.key,
            Body: spec.body,
            ContentLength: spec.body.length,
            ChecksumSHA256: Buffer.from(spec.sha256, 'hex').toString('base64'),
            Metadata: { sha256: spec.sha256 },
          }),
        ),
      );
    },
    async deleteObject(bucket, key) {
      await call(`delete s3://${bucket}/${key}`, () =>
        client.send(new s3Sdk.DeleteObjectCommand({ Bucket: bucket, Key: key })),
      );
    },
    async abortUploads(bucket, key) {
      const open = await call(`list unfinished uploads of ${key}`, () =>
        client.send(new s3Sdk.ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key })),
      );
      const ours = (open.Uploads ?? []).filter((u) => u.Key === key);
      for (const u of ours)
        await call(`abort an unfinished upload of ${key}`, () =>
          client.send(
            new s3Sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: u.UploadId }),
          ),
        );
      return ours.length;
    },
    async unfinishedUploads(bucket, prefix) {
      const keys = new Set<string>();
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      do {
        const r = await call(`list unfinished uploads under ${prefix}`, () =>
          client.send(
            new s3Sdk.ListMultipartUploadsCommand({
              Bucket: bucket,
              Prefix: prefix,
              KeyMarker: keyMarker,
              UploadIdMarker: uploadIdMarker,
            }),
          ),
        );
        for (const u of r.Uploads ?? []) keys.add(u.Key!);
        [keyMarker, uploadIdMarker] = r.IsTruncated ? [r.NextKeyMarker, r.NextUploadIdMarker] : [];
      } while (keyMarker);
      return [...keys];
    },
  };
}
