// The objects of `mlship jobs` (manifests, inputs sent by key, results, failure records) in the
// stack's bucket: the local stack's S3-compatible server or the stack's S3 bucket on AWS.

import type * as S3Sdk from '@aws-sdk/client-s3';
import type { JobStore } from '../../core/jobs/deps.js';
import { call } from './aws-call.js';

export function createJobStore(sdk: typeof S3Sdk, client: S3Sdk.S3Client, bucket: string): JobStore {
  return {
    async putJson(key, value) {
      await call(`write s3://${bucket}/${key}`, () =>
        client.send(
          new sdk.PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: JSON.stringify(value),
            ContentType: 'application/json',
          }),
        ),
      );
    },
    async getJson<T>(key: string): Promise<T | undefined> {
      try {
        const r = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
        return JSON.parse(await r.Body!.transformToString()) as T;
      } catch (e) {
        const name = (e as { name?: string }).name;
        if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
        return call(`read s3://${bucket}/${key}`, () => Promise.reject(e));
      }
    },
    async list(prefix) {
      const out: { key: string; lastModified: number }[] = [];
      let token: string | undefined;
      do {
        const r = await call(`list s3://${bucket}/${prefix}`, () =>
          client.send(
            new sdk.ListObjectsV2Command({
              Bucket: bucket,
              Prefix: prefix,
              ...(token ? { ContinuationToken: token } : {}),
            }),
          ),
        );
        for (const o of r.Contents ?? [])
          out.push({ key: o.Key!, lastModified: o.LastModified?.getTime() ?? 0 });
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return out;
    },
    async delete(key) {
      await call(`delete s3://${bucket}/${key}`, () =>
        client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key })),
      );
    },
  };
}
