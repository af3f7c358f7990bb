// A multipart upload fed while its content is produced: `data push` sends the database dump
// to the bucket as pg_dump writes it, instead of after (the upload then hides behind the
// dump). Parts are cut at exactly `partBytes` so that, if the run is killed after the dump
// finished, uploading the kept file with the same part size resumes this upload (its parts
// are listed by number and size). A few parts go up at once; the producer waits when they
// are all busy, so memory stays at a few parts whatever the dump's size.

import type * as S3Sdk from '@aws-sdk/client-s3';
import type { StreamUploadSpec, UploadStream } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

const PARALLEL_PARTS = 4;
/** S3's limit on the parts of one upload. */
const MAX_PARTS = 10_000;

/** Completes a multipart upload from the ETags of its parts, by part number. */
export function completeUpload(
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

export async function startStreamUpload(
  s3Sdk: typeof S3Sdk,
  client: S3Sdk.S3Client,
  spec: StreamUploadSpec,
): Promise<UploadStream> {
  const { bucket: Bucket, key: Key, partBytes } = spec;
  const send = client.send.bind(client) as (command: unknown) => Promise<{ ETag?: string }>;
  const uploadId = (
    await call(`start the upload of ${Key}`, () =>
      client.send(new s3Sdk.CreateMultipartUploadCommand({ Bucket, Key })),
    )
  ).UploadId!;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let partNumber = 0;
  let uploadedBytes = 0;
  let failure: unknown;
  const etags = new Map<number, string>();
  const busy = new Set<Promise<void>>();

  const sendPart = (body: Buffer) => {
    const PartNumber = ++partNumber;
    if (PartNumber > MAX_PARTS) {
      failure ??= new Error(`${Key} needs more than ${MAX_PARTS} parts of ${partBytes} bytes`);
      return;
    }
    const p = call(`upload part ${PartNumber} of ${Key}`, () =>
      send(
        new s3Sdk.UploadPartCommand({
          Bucket,
          Key,
          UploadId: uploadId,
          PartNumber,
          ContentLength: body.length,
          Body: body,
        }),
      ),
    ).then(
      (r) => {
        etags.set(PartNumber, r.ETag!);
        uploadedBytes += body.length;
        spec.onProgress?.(uploadedBytes);
      },
      (e) => {
        failure ??= e;
      },
    );
    const tracked = p.finally(() => busy.delete(tracked));
    busy.add(tracked);
  };
  /** Cuts every full part out of what is pending. */
  const cut = () => {
    while (pendingBytes >= partBytes) {
      const all = Buffer.concat(pending, pendingBytes);
      sendPart(all.subarray(0, partBytes));
      const rest = all.subarray(partBytes);
      pending = rest.length ? [rest] : [];
      pendingBytes = rest.length;
    }
  };
  const settle = async () => {
    while (busy.size) await Promise.race(busy);
    if (failure) throw failure;
  };

  return {
    write(chunk) {
      if (failure) return Promise.reject(failure);
      pending.push(chunk);
      pendingBytes += chunk.length;
      cut();
      if (busy.size < PARALLEL_PARTS) return undefined;
      return Promise.race(busy).then(() => {
        if (failure) throw failure;
      });
    },
    async finish() {
      cut();
      // The last part (S3 allows it under 5 MiB); an empty content is one empty part.
      if (pendingBytes > 0 || partNumber === 0) sendPart(Buffer.concat(pending, pendingBytes));
      pending = [];
      pendingBytes = 0;
      await settle();
      await completeUpload(s3Sdk, client, { Bucket, Key, UploadId: uploadId }, etags);
      return { uploadedBytes };
    },
    async abort() {
      pending = [];
      await Promise.allSettled(busy);
      await call(`abort the upload of ${Key}`, () =>
        client.send(new s3Sdk.AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId })),
      );
    },
  };
}
