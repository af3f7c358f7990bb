// The queue and the object store of `mlship jobs` for one target: the local stack (its
// servers on 127.0.0.1 and its static keys) or AWS (a region, the SDK's credential chain or a
// profile, and an endpoint for emulators). SDK clients load on first use.

import type { SqsApi } from '../../core/deploy/aws-apis.js';
import type { JobQueue, JobStore } from '../../core/jobs/deps.js';
import { createJobStore } from './job-store.js';
import { createSqsApi } from './sqs-api.js';

export interface JobApisTarget {
  region: string;
  bucket: string;
  profile?: string;
  /** One endpoint for both (an emulator such as moto), or one each (the local stack). */
  endpoints?: { sqs?: string; s3?: string };
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export async function createJobApis(
  t: JobApisTarget,
): Promise<{ queue: JobQueue & SqsApi; store: JobStore; destroy(): void }> {
  const [sqsSdk, s3Sdk] = await Promise.all([import('@aws-sdk/client-sqs'), import('@aws-sdk/client-s3')]);
  const base = {
    region: t.region,
    ...(t.profile ? { profile: t.profile } : {}),
    ...(t.credentials ? { credentials: t.credentials } : {}),
  };
  const sqs = new sqsSdk.SQSClient({ ...base, ...(t.endpoints?.sqs ? { endpoint: t.endpoints.sqs } : {}) });
  const s3 = new s3Sdk.S3Client({
    ...base,
    ...(t.endpoints?.s3 ? { endpoint: t.endpoints.s3, forcePathStyle: true } : {}),
  });
  return {
    queue: createSqsApi(sqsSdk, sqs),
    store: createJobStore(s3Sdk, s3, t.bucket),
    destroy() {
      sqs.destroy();
      s3.destroy();
    },
  };
}
