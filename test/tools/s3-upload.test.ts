// The S3 adapter against moto's S3: a large file goes up as a multipart upload that
// resumes an interrupted one (the parts already sent are not sent again), small files in
// one PUT, a streamed upload (a dump as it is written) is cut into parts of exactly the part
// size so the finished file resumes it, and the bucket gets its protections. Parts of 5 MiB (S3's minimum) keep it small.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { createDeployApis } from '../../src/adapters/aws/deploy-apis.js';
import { FAKE_CREDENTIALS, type Moto, startMoto } from '../helpers/moto.js';

const moto: Moto | undefined = await startMoto();
const PART = 5 * 1024 * 1024;

afterAll(async () => {
  await moto?.stop();
});

/** Whether the one unfinished upload of `key` has `n` parts stored. */
async function partsSent(s3: S3Client, bucket: string, key: string, n: number): Promise<boolean> {
  const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  const id = open.Uploads?.[0]?.UploadId;
  if (!id) return false;
  const parts = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: id }));
  return (parts.Parts?.length ?? 0) >= n;
}

describe.skipIf(!moto)('S3 uploads and the stack bucket (moto)', () => {
  const config = () => ({
    region: 'us-east-1',
    endpoint: moto!.endpoint,
    forcePathStyle: true,
    credentials: {
      accessKeyId: FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID,
      secretAccessKey: FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
    },
  });

  it('resumes an interrupted multipart upload: only the missing parts are sent, and the object is whole', async () => {
    Object.assign(process.env, moto!.env);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-s3-'));
    const file = path.join(dir, 'weights.bin');
    const data = randomBytes(2 * PART + 1234);
    writeFileSync(file, data);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const s3 = new S3Client(config());
    await s3.send(new CreateBucketCommand({ Bucket: 'resume-test' }));
    // An earlier run sent part 1, then died.
    const started = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: 'resume-test', Key: 'w/weights.bin', Metadata: { sha256 } }),
    );
    await s3.send(
      new UploadPartCommand({
        Bucket: 'resume-test',
        Key: 'w/weights.bin',
        UploadId: started.UploadId,
        PartNumber: 1,
        Body: data.subarray(0, PART),
      }),
    );
    const apis = createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
    const progress: number[] = [];
    try {
      const r = await apis.s3.uploadFile({
        bucket: 'resume-test',
        key: 'w/weights.bin',
        file,
        sizeBytes: data.length,
        sha256,
        partBytes: PART,
        onProgress: (n) => progress.push(n),
      });
      expect(r).toEqual({ resumedBytes: PART, uploadedBytes: data.length - PART });
      expect(progress[0]).toBe(PART);
      expect(progress.at(-1)).toBe(data.length);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'resume-test', Key: 'w/weights.bin' }));
      const body = Buffer.from(await got.Body!.transformToByteArray());
      expect(createHash('sha256').update(body).digest('hex')).toBe(sha256);
      expect(await apis.s3.headObject('resume-test', 'w/weights.bin')).toEqual({
        sizeBytes: data.length,
        sha256,
      });
      // A small file: one PUT.
      writeFileSync(path.join(dir, 'small'), 'tiny');
      expect(
        await apis.s3.uploadFile({
          bucket: 'resume-test',
          key: 's',
          file: path.join(dir, 'small'),
          sizeBytes: 4,
          sha256: 'x',
          partBytes: PART,
        }),
      ).toEqual({ uploadedBytes: 4, resumedBytes: 0 });
    } finally {
      apis.destroy();
      s3.destroy();
    }
    expect(readFileSync(file).length).toBe(data.length);
  });

  it('an upload killed before its end is resumed from the finished file: only the parts it had not sent go up', async () => {
    Object.assign(process.env, moto!.env);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-s3-'));
    const file = path.join(dir, 'db.dump');
    const data = randomBytes(3 * PART + 4321);
    writeFileSync(file, data);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const s3 = new S3Client(config());
    await s3.send(new CreateBucketCommand({ Bucket: 'stream-resume' }));
    const apis = createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
    try {
      // The run that died: it had sent two full parts of the file (and was cutting the third).
      const { UploadId } = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: 'stream-resume', Key: 'd/c.pgdump' }),
      );
      for (const n of [1, 2])
        await s3.send(
          new UploadPartCommand({
            Bucket: 'stream-resume',
            Key: 'd/c.pgdump',
            UploadId,
            PartNumber: n,
            Body: data.subarray((n - 1) * PART, n * PART),
          }),
        );
      expect(await partsSent(s3, 'stream-resume', 'd/c.pgdump', 2)).toBe(true);
      const r = await apis.s3.uploadFile({
        bucket: 'stream-resume',
        key: 'd/c.pgdump',
        file,
        sizeBytes: data.length,
        sha256,
        partBytes: PART,
      });
      expect(r).toEqual({ resumedBytes: 2 * PART, uploadedBytes: data.length - 2 * PART });
      const got = await s3.send(new GetObjectCommand({ Bucket: 'stream-resume', Key: 'd/c.pgdump' }));
      const body = Buffer.from(await got.Body!.transformToByteArray());
      expect(createHash('sha256').update(body).digest('hex')).toBe(sha256);
      expect(await apis.s3.unfinishedUploads('stream-resume', 'd/')).toEqual([]);
    } finally {
      apis.destroy();
      s3.destroy();
    }
  });

  it('the stack bucket: created once with versioning and an uploads expiry, corrected on a re-run, never recreated', async () => {
    const apis = createDeployApis({ region: 'eu-west-1', endpointUrl: moto!.endpoint });
    const s3 = new S3Client({ ...config(), region: 'eu-west-1' });
    try {
      const spec = {
        name: 'mlship-files-eu-west-1-123456789012',
        region: 'eu-west-1',
        tags: { 'mlship:stack': 'files', 'mlship:managed': 'true' },
        versioning: true,
        expire: { prefix: 'uploads/', days: 30 },
      };
      expect(await apis.s3.ensureBucket(spec)).toEqual({ created: true, changed: [] });
      expect((await s3.send(new GetBucketVersioningCommand({ Bucket: spec.name }))).Status).toBe('Enabled');
      const rules = (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: spec.name }))).Rules!;
      expect(rules).toEqual([
        expect.objectContaining({
          ID: 'mlship-expire-uploads',
          Status: 'Enabled',
          Expiration: expect.objectContaining({ Days: 30 }),
        }),
      ]);
      expect(await apis.s3.ensureBucket(spec)).toEqual({ created: false, changed: [] });
      expect(await apis.s3.ensureBucket({ ...spec, expire: { prefix: 'uploads/', days: 7 } })).toEqual({
        created: false,
        changed: ['expiry rule'],
      });
      expect(await apis.s3.bucketState(spec.name)).toBe('owned');
      expect(await apis.s3.bucketState('mlship-nobody-made-this-one')).toBe('missing');
    } finally {
      apis.destroy();
      s3.destroy();
    }
  });
});
