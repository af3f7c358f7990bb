// The pieces that carry a local stack to ECS, each alone: weights (hashing, keys, what is
// uploaded), baked mounts, the roles' policies, health-check programs, the order and
// namespaces of a task's containers when run locally.

import { mkdtempSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StackService } from '../../../src/config/stack-model.js';
import type { S3Api, UploadSpec } from '../../../src/core/deploy/aws-apis.js';
import { bakeable, planBakes } from '../../../src/core/deploy/config-images.js';
import { healthCheckNeeds, missingHealthCheckTools } from '../../../src/core/deploy/health-tools.js';
import { startOrder, sysctlsOf } from '../../../src/core/deploy/local-run.js';
import { executionRolePolicies, roleNames, taskRolePolicies } from '../../../src/core/deploy/roles.js';
import {
  ChecksumCache,
  planWeights,
  sha256File,
  stackBucketName,
  uploadWeights,
  WEIGHTS_PREFIX,
} from '../../../src/core/deploy/weights.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'mlship-cloud-unit-'));

function model(
  name: string,
  weights: StackService['weights'],
  extra: Partial<StackService> = {},
): StackService {
  return {
    name,
    role: 'model',
    environment: {},
    secretEnv: [],
    secrets: [],
    ports: [],
    volumes: [],
    dependsOn: [],
    labels: {},
    profiles: [],
    ...(weights ? { weights } : {}),
    ...extra,
  };
}

describe('weights on the way to S3', () => {
  it('the stack bucket is a valid, global-unique name even for long stacks', () => {
    expect(stackBucketName('iris', '123456789012', 'eu-west-1')).toBe('mlship-iris-eu-west-1-123456789012');
    const long = stackBucketName(
      'a-very-long-stack-name-that-goes-on-and-on-forever',
      '123456789012',
      'ap-southeast-2',
    );
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z0-9][a-z0-9-]*[a-z0-9]$/);
    expect(long).toMatch(/-123456789012$/);
    expect(long).not.toBe(
      stackBucketName('a-very-long-stack-name-that-goes-on-and-on-forever', '123456789012', 'eu-west-1'),
    );
  });

  it('a local file gets a content-addressed key and URL; a configured URL is taken as it is', async () => {
    const dir = tmp();
    const file = path.join(dir, 'model.onnx');
    writeFileSync(file, 'weights v1');
    const sha = await sha256File(file);
    const plans = await planWeights(
      [
        model('a', { local: { path: file, target: '/models/model.onnx' } }),
        model('b', { url: 's3://elsewhere/m.pt', sha256: 'c'.repeat(64) }),
        model('c', undefined),
      ],
      'stack-bucket',
      new ChecksumCache(),
    );
    expect(plans).toEqual([
      {
        service: 'a',
        url: `s3://stack-bucket/${WEIGHTS_PREFIX}/${sha}/model.onnx`,
        sha256: sha,
        target: '/models/model.onnx',
        upload: { file, bucket: 'stack-bucket', key: `${WEIGHTS_PREFIX}/${sha}/model.onnx`, sizeBytes: 10 },
      },
      { service: 'b', url: 's3://elsewhere/m.pt', sha256: 'c'.repeat(64) },
    ]);
  });

  it('a missing weights file, or one that does not match its configured checksum, is refused with the fix', async () => {
    const missing = planWeights(
      [model('a', { local: { path: '/nope/model.onnx', target: '/m' } })],
      'b',
      new ChecksumCache(),
    );
    await expect(missing).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/could never start on ECS/),
    });
    const dir = tmp();
    writeFileSync(path.join(dir, 'm'), 'x');
    const wrong = planWeights(
      [model('a', { local: { path: path.join(dir, 'm'), target: '/m' }, sha256: 'a'.repeat(64) })],
      'b',
      new ChecksumCache(),
    );
    await expect(wrong).rejects.toThrow(/does not match services\.a\.weights\.sha256/);
  });

  it('checksums are cached by path, size and mtime: an unchanged file is not read again', async () => {
    const dir = tmp();
    const file = path.join(dir, 'm');
    writeFileSync(file, 'one');
    const cacheFile = path.join(dir, 'checksums.json');
    const cache = new ChecksumCache(cacheFile);
    const { size, mtimeMs } = statSync(file);
    const first = await cache.sha256(file, size, mtimeMs);
    await cache.save();
    // Same size and mtime, other content: the cache answers (a real change moves the mtime).
    writeFileSync(file, 'two');
    utimesSync(file, mtimeMs / 1000, mtimeMs / 1000);
    expect(await new ChecksumCache(cacheFile).sha256(file, size, mtimeMs)).toBe(first);
    const later = statSync(file).mtimeMs + 5000;
    utimesSync(file, later / 1000, later / 1000);
    expect(await new ChecksumCache(cacheFile).sha256(file, size, later)).toBe(await sha256File(file));
  });

  it('uploads only what the bucket lacks, with progress', async () => {
    const uploads: UploadSpec[] = [];
    const have = new Set<string>(['mlship/weights/aaa/there.onnx']);
    const s3 = {
      headObject: async (_b: string, key: string) => (have.has(key) ? { sizeBytes: 4 } : undefined),
      uploadFile: async (spec: UploadSpec) => {
        uploads.push(spec);
        spec.onProgress?.(spec.sizeBytes);
        return { uploadedBytes: spec.sizeBytes, resumedBytes: 0 };
      },
    } as unknown as S3Api;
    const progress: number[] = [];
    const results = await uploadWeights(
      [
        {
          service: 'x',
          url: 's3://b/mlship/weights/aaa/there.onnx',
          sha256: 'a',
          upload: { file: '/f1', bucket: 'b', key: 'mlship/weights/aaa/there.onnx', sizeBytes: 4 },
        },
        {
          service: 'y',
          url: 's3://b/mlship/weights/bbb/new.onnx',
          sha256: 'b',
          upload: { file: '/f2', bucket: 'b', key: 'mlship/weights/bbb/new.onnx', sizeBytes: 9 },
        },
        { service: 'z', url: 'https://models.example.com/m.onnx' },
      ],
      { s3, log: () => undefined, progress: (_s, done) => progress.push(done) },
    );
    expect(results.map((r) => [r.service, r.skipped, r.uploadedBytes])).toEqual([
      ['x', true, 0],
      ['y', false, 9],
    ]);
    expect(uploads.map((u) => u.key)).toEqual(['mlship/weights/bbb/new.onnx']);
    expect(uploads[0]!.partBytes).toBe(64 * 1024 * 1024);
    expect(progress).toEqual([9]);
  });
});

describe('files a service mounts locally, baked into its image', () => {
  it('read-only binds are baked (generated content first, else the file or folder on disk); data mounts never', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'app.conf'), 'listen 80;');
    const svc: StackService = {
      ...model('web', undefined),
      role: 'other',
      image: 'nginx:1.27',
      volumes: [
        { type: 'bind', source: './app.conf', target: '/etc/app.conf', readOnly: true },
        { type: 'bind', source: '/gen/nginx.conf', target: '/etc/nginx/conf.d/default.conf', readOnly: true },
        { type: 'bind', source: './data', target: '/data', readOnly: false },
        { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock', readOnly: true },
        { type: 'volume', source: 'pg', target: '/var/lib/postgresql/data', readOnly: false },
      ],
    };
    expect(svc.volumes.map(bakeable)).toEqual([true, true, false, false, false]);
    const [plan] = await planBakes([svc], {
      stack: 's',
      baseDir: dir,
      generated: new Map([['/gen/nginx.conf', 'server {}']]),
      services: 'all',
      builtTag: () => undefined,
    });
    expect(plan!.dockerfile).toBe(
      [
        '# Generated by mlship deploy: the files web has mounted locally, in its image for ECS.',
        'FROM nginx:1.27',
        'COPY mounts/0 /etc/app.conf',
        'COPY mounts/1 /etc/nginx/conf.d/default.conf',
        '',
      ].join('\n'),
    );
    expect(plan!.files.map((f) => [f.path, f.content.toString()])).toEqual([
      ['mounts/0', 'listen 80;'],
      ['mounts/1', 'server {}'],
    ]);
    expect(plan!.mounts).toEqual(['/etc/app.conf', '/etc/nginx/conf.d/default.conf']);
    // Compose files without --bake-mounts: nothing is baked (the translation refuses instead).
    expect(
      await planBakes([svc], {
        stack: 's',
        baseDir: dir,
        generated: new Map(),
        services: [],
        builtTag: () => undefined,
      }),
    ).toEqual([]);
    // A service built from source bakes on top of its own image.
    const built = await planBakes([{ ...svc, image: undefined, build: { context: '.' } }], {
      stack: 's',
      baseDir: dir,
      generated: new Map([['/gen/nginx.conf', 'server {}']]),
      services: 'all',
      builtTag: () => 's/web:dev',
    });
    expect(built[0]!.dockerfile).toContain('FROM s/web:dev');
  });
});

describe('the roles of a stack, least privilege', () => {
  it('the task role reads the weights prefix of the stack bucket and the objects it was given, nothing else', () => {
    const policies = taskRolePolicies({
      weights: [
        {
          service: 'a',
          url: 's3://bkt/mlship/weights/x/m',
          upload: { file: '/m', bucket: 'bkt', key: 'mlship/weights/x/m', sizeBytes: 1 },
        },
        { service: 'b', url: 's3://other/models/b.pt' },
        { service: 'c', url: 'https://example.com/c.onnx' },
      ],
    });
    expect(policies).toEqual({
      'mlship-weights': {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'ReadModelWeights',
            Effect: 'Allow',
            Action: 's3:GetObject',
            Resource: ['arn:aws:s3:::bkt/mlship/weights/*', 'arn:aws:s3:::other/models/b.pt'],
          },
        ],
      },
    });
    expect(taskRolePolicies({ weights: [] })).toEqual({});
  });

  it('the execution role reads exactly the secrets the task definitions name', () => {
    const policies = executionRolePolicies([
      {
        family: 'f',
        containerDefinitions: [
          {
            name: 'c',
            secrets: [
              { name: 'A', valueFrom: 'arn:aws:ssm:eu-west-1:123456789012:parameter/s/A' },
              { name: 'B', valueFrom: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:s/B:password::' },
            ],
          },
        ],
      },
    ]);
    expect(policies['mlship-secrets']!.Statement).toEqual([
      {
        Sid: 'ReadStackParameters',
        Effect: 'Allow',
        Action: 'ssm:GetParameters',
        Resource: ['arn:aws:ssm:eu-west-1:123456789012:parameter/s/A'],
      },
      {
        Sid: 'ReadStackSecrets',
        Effect: 'Allow',
        Action: 'secretsmanager:GetSecretValue',
        Resource: ['arn:aws:secretsmanager:eu-west-1:123456789012:secret:s/B-??????'],
      },
    ]);
    expect(roleNames('iris')).toEqual({ execution: 'mlship-iris-execution', task: 'mlship-iris-task' });
  });
});

describe('health checks need programs', () => {
  it('reads them from CMD and CMD-SHELL commands', () => {
    expect(healthCheckNeeds(['CMD', 'python', '-c', 'import x'])).toEqual({
      anyOf: ['python'],
      shell: false,
    });
    expect(
      healthCheckNeeds([
        'CMD-SHELL',
        'wget -q -O /dev/null http://127.0.0.1/ || curl -fsS http://127.0.0.1/ || exit 1',
      ]),
    ).toEqual({ anyOf: ['wget', 'curl'], shell: true });
    expect(healthCheckNeeds(['NONE'])).toBeUndefined();
  });

  it('refuses a check whose programs the image lacks; an image not on this machine is not judged', async () => {
    const needs = [
      { family: 'f', container: 'proxy', image: 'nginx', anyOf: ['wget', 'curl'], shell: true },
      { family: 'f', container: 'api', image: 'slim', anyOf: ['curl'], shell: true },
      { family: 'f', container: 'far', image: 'remote', anyOf: ['curl'], shell: true },
    ];
    const present = async (image: string) =>
      image === 'nginx' ? new Set(['wget', 'sh']) : image === 'slim' ? new Set(['sh']) : undefined;
    const problems = await missingHealthCheckTools(needs, present);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^f\/api: its health check runs curl, which slim does not have/);
  });
});

describe('a task run locally', () => {
  it('starts containers after the ones they depend on, else in their order', () => {
    const order = startOrder([
      { name: 'pose-2d', dependsOn: [{ containerName: 'detector', condition: 'HEALTHY' }] },
      { name: 'detector' },
      { name: 'sidecar' },
    ]);
    expect(order.map((c) => c.name)).toEqual(['detector', 'sidecar', 'pose-2d']);
  });

  it("systemControls: the task's network ones on the container that owns the namespace (awsvpc), the rest on their own", () => {
    const proxy = {
      name: 'proxy',
      systemControls: [{ namespace: 'net.ipv4.tcp_tw_reuse', value: '1' }],
    };
    const sidecar = {
      name: 'sidecar',
      systemControls: [
        { namespace: 'net.core.somaxconn', value: '4096' },
        { namespace: 'kernel.shmmax', value: '1000000' },
      ],
    };
    const td = { family: 't', containerDefinitions: [proxy, sidecar] };
    const owner = { id: 'owner' } as Parameters<typeof sysctlsOf>[2];
    expect(sysctlsOf(td, proxy, undefined)).toEqual({
      sysctls: { 'net.ipv4.tcp_tw_reuse': '1', 'net.core.somaxconn': '4096' },
    });
    expect(sysctlsOf(td, sidecar, owner)).toEqual({ sysctls: { 'kernel.shmmax': '1000000' } });
    expect(
      sysctlsOf({ family: 'u', containerDefinitions: [{ name: 'a' }] }, { name: 'a' }, undefined),
    ).toEqual({});
  });
});
