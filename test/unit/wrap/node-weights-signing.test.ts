// The generated Node service fetches s3:// weights with a signer of its own (no SDK in
// the image): it must sign exactly as the AWS SDK's own Signature V4 signer does, for keys
// that need encoding, session tokens, query strings and custom endpoints.

import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a template of the generated service, plain JavaScript without types
import { objectUrl, sign } from '../../../templates/wrap/node/weights.js';

const creds = {
  key: 'AKIDEXAMPLE',
  secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  token: 'IQo/Jb3Jp+Z2luX2V=',
};
const NOW = new Date('2026-12-02T10:00:00Z');

async function sdkSignature(url: string, region: string, c: typeof creds) {
  const u = new URL(url);
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: c.key,
      secretAccessKey: c.secret,
      ...(c.token ? { sessionToken: c.token } : {}),
    },
    region,
    service: 's3',
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: false, // S3: the path is encoded once
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method: 'GET',
      protocol: u.protocol,
      hostname: u.hostname,
      ...(u.port ? { port: Number(u.port) } : {}),
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      headers: { host: u.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    },
    { signingDate: NOW },
  );
  return signed.headers.authorization;
}

describe('S3 request signing of the generated Node service', () => {
  it.each([
    [objectUrl('stack-us-east-1-123', 'mlship/weights/ab12/model.onnx', 'us-east-1', {}), 'us-east-1', creds],
    [objectUrl('my.dotted.bucket', 'models/a b+cé(1).onnx', 'eu-west-1', {}), 'eu-west-1', creds],
    [
      `${objectUrl('bucket', 'k', 'us-east-1', { AWS_ENDPOINT_URL: 'http://127.0.0.1:5123/' })}?versionId=x%20y&acl=`,
      'us-east-1',
      { key: 'AKID', secret: 's', token: '' },
    ],
  ])('%s matches the SDK signer', async (url, region, c) => {
    const mine = sign('GET', url, region, c, NOW) as Record<string, string>;
    expect(mine.Authorization).toBe(await sdkSignature(url, region, c));
  });

  it('builds virtual-hosted URLs for AWS, path-style for dotted buckets and local endpoints', () => {
    expect(objectUrl('b', 'w/m.onnx', 'eu-west-1', {})).toBe('https://b.s3.eu-west-1.amazonaws.com/w/m.onnx');
    expect(objectUrl('a.b', 'm x.onnx', 'eu-west-1', {})).toBe(
      'https://s3.eu-west-1.amazonaws.com/a.b/m%20x.onnx',
    );
    expect(objectUrl('b', 'm', 'us-east-1', { AWS_ENDPOINT_URL_S3: 'http://minio:9000' })).toBe(
      'http://minio:9000/b/m',
    );
  });
});
