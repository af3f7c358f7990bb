// The generated services fetch s3:// weights with a signer of their own (no SDK in the
// image): the Python one must sign exactly as botocore does, for keys that need encoding,
// session tokens, query strings and custom endpoints. Needs .venv (botocore).

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requires } from '../helpers/requires.js';

const PYTHON = path.resolve('.venv/bin/python');
const hasBotocore = requires('botocore (.venv)', existsSync(PYTHON), 'pip install -r requirements-dev.txt');

const creds = {
  key: 'AKIDEXAMPLE',
  secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  token: 'IQo/Jb3Jp+Z2luX2V=',
};
const CASES = [
  {
    url: 'https://stack-us-east-1-123.s3.us-east-1.amazonaws.com/mlship/weights/ab12/model.joblib',
    region: 'us-east-1',
    creds,
  },
  {
    url: 'https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/models/a%20b%2Bc%C3%A9.onnx',
    region: 'eu-west-1',
    creds,
  },
  {
    url: 'http://127.0.0.1:5123/bucket/k?versionId=x%20y&acl=',
    region: 'us-east-1',
    creds: { key: 'AKID', secret: 's' },
  },
];

describe('S3 request signing of the generated Python service', () => {
  it.skipIf(!hasBotocore)('matches botocore for every case', () => {
    const out = execFileSync(
      PYTHON,
      [
        path.resolve('test/tools/s3-signature.py'),
        path.resolve('templates/wrap/python/app/weights.py'),
        JSON.stringify(CASES),
      ],
      { encoding: 'utf8' },
    );
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { url: string; mine: string; botocore: string });
    expect(lines).toHaveLength(CASES.length);
    for (const l of lines) expect(l.mine, l.url).toBe(l.botocore);
  });

  // The queue worker signs SQS calls (JSON protocol, payload hashed) with the same signer.
  it.skipIf(!hasBotocore)('signs SQS requests as botocore does', () => {
    const cases = [
      {
        url: 'https://sqs.eu-west-1.amazonaws.com/',
        region: 'eu-west-1',
        creds,
        target: 'AmazonSQS.ReceiveMessage',
        payload: {
          QueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/shop-iris-jobs',
          MaxNumberOfMessages: 10,
        },
      },
      {
        url: 'http://queue:9324/',
        region: 'us-east-1',
        creds: { key: 'AKID', secret: 's' },
        target: 'AmazonSQS.DeleteMessageBatch',
        payload: {
          QueueUrl: 'http://queue:9324/000000000000/q',
          Entries: [{ Id: '0', ReceiptHandle: 'a+b/c=' }],
        },
      },
    ];
    const out = execFileSync(
      PYTHON,
      [
        path.resolve('test/tools/sqs-signature.py'),
        path.resolve('templates/wrap/python/app/weights.py'),
        JSON.stringify(cases),
      ],
      { encoding: 'utf8' },
    );
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { url: string; mine: string; botocore: string });
    expect(lines).toHaveLength(cases.length);
    for (const l of lines) expect(l.mine, l.url).toBe(l.botocore);
  });
});
