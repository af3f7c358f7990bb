// The local stack's S3-compatible storage, through the AWS SDK: creates the
// configured bucket once the server is healthy. Credentials are passed in (from
// the stack's .env) and never logged.

import type { S3Api } from '../../core/deploy/aws-apis.js';

export interface S3Target {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

/** Creates the bucket unless it exists; returns whether it was created. */
export async function ensureBucket(target: S3Target): Promise<boolean> {
  const { S3Client, HeadBucketCommand, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: target.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
  });
  try {
    try {
      await client.send(new HeadBucketCommand({ Bucket: target.bucket }));
      return false;
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== 404) throw e;
    }
    await client.send(new CreateBucketCommand({ Bucket: target.bucket }));
    return true;
  } finally {
    client.destroy();
  }
}

/**
 * The local stack's object store as an S3Api (its S3 API on a host port, with the stack's
 * keys): the source of `mlship data push`. Path-style, as local servers have no DNS names.
 */
export async function createObjectStoreApi(
  target: Omit<S3Target, 'bucket'>,
): Promise<S3Api & { destroy(): void }> {
  const [sdk, { createS3Api }] = await Promise.all([import('@aws-sdk/client-s3'), import('./s3-api.js')]);
  const client = new sdk.S3Client({
    endpoint: target.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
  });
  return Object.assign(createS3Api(sdk, client), { destroy: () => client.destroy() });
}
