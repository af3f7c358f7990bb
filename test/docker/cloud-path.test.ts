// The README path to the cloud, end to end, on the real engine and moto: init → wrap →
// compose up → deploy ecs --apply → --local, and a prediction through the proxy of the
// task definitions as deployed that equals the one compose up gave. moto never runs a
// task, so `--local` runs the registered task definitions on this engine: the weights
// come from moto's S3 (uploaded by the apply), the proxy's nginx.conf from its baked image.
// Uploads are counted on the object store's side (a proxy in front of moto).

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DescribeTaskDefinitionCommand, ECSClient, ListTaskDefinitionsCommand } from '@aws-sdk/client-ecs';
import { GetRolePolicyCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetBucketEncryptionCommand, GetPublicAccessBlockCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CountingProxy, startCountingProxy } from '../helpers/counting-proxy.js';
import { LOCAL_PYTHON_IMAGE, removeImagesTagged, requireEngine, requireImage } from '../helpers/docker.js';
import { type Moto, startMoto } from '../helpers/moto.js';
import { freePort } from '../helpers/net.js';

const engine = await requireEngine();
const BIN = path.resolve('bin/mlship.js');
const NGINX = 'mlship-local/nginx:1.22';
const STACK = `cloud-${process.pid}`;
const IRIS = path.resolve('fixtures/wrap/iris/model.joblib');
const INPUT = { sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 };
let moto: Moto | undefined;
let s3: CountingProxy;
let dir: string;
let proxyPort: number;

/**
 * The CLI, asynchronously: the counting proxy runs in this process, and a synchronous spawn
 * would stop it from answering the very requests the CLI waits for.
 */
function mlship(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir,
      env: { ...process.env, ...moto!.env, CI: 'true', XDG_CACHE_HOME: path.join(dir, '.cache') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c;
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `deploy ecs` against moto (through the counting proxy), pushing to the local registry. */
const onMoto = (...extra: string[]) => [
  'deploy',
  'ecs',
  '--region',
  'us-east-1',
  '--endpoint-url',
  `http://127.0.0.1:${s3.port}`,
  '--registry',
  '127.0.0.1:5000',
  ...extra,
];

function git(...args: string[]) {
  spawnSync('git', ['-C', dir, '-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { stdio: 'ignore' });
}

async function predict(url: string): Promise<unknown> {
  const r = await fetch(`${url.replace(/\/$/, '')}/api/iris/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(INPUT),
  });
  expect(r.status, await r.clone().text()).toBe(200);
  return ((await r.json()) as { prediction: unknown }).prediction;
}

const awsConfig = () => ({
  region: 'us-east-1',
  endpoint: moto!.endpoint,
  credentials: {
    accessKeyId: moto!.env.AWS_ACCESS_KEY_ID!,
    secretAccessKey: moto!.env.AWS_SECRET_ACCESS_KEY!,
  },
});

beforeAll(async () => {
  if (!engine) return;
  await requireImage(engine, LOCAL_PYTHON_IMAGE);
  await requireImage(engine, NGINX);
  // Containers started by --local reach moto through host.docker.internal: not only loopback.
  moto = await startMoto({ host: '0.0.0.0' });
  s3 = await startCountingProxy(moto!.endpoint);
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-cloud-'));
  proxyPort = await freePort();
  spawnSync('git', ['init', '-q', dir]);
  const init = await mlship(['init', '--yes', '--name', STACK, '--service', 'iris', '--with', 'proxy']);
  expect(init.code, init.stderr).toBe(0);
  // A mirror of the official images, as an air-gapped user sets it (nothing is pulled here).
  const config = readFileSync(path.join(dir, 'mlship.yaml'), 'utf8')
    .replace(/^proxy:.*$/m, `proxy:\n  image: ${NGINX}\n  port: ${proxyPort}`)
    .replace(/^(\s+image: nginx.*)$/m, '');
  writeFileSync(path.join(dir, 'mlship.yaml'), config);
  copyFileSync(IRIS, path.join(dir, 'model.joblib'));
  copyFileSync(path.join(path.dirname(IRIS), 'example.json'), path.join(dir, 'example.json'));
  const wrap = await mlship([
    'wrap',
    'model.joblib',
    '--out',
    'services/iris',
    '--base-image',
    LOCAL_PYTHON_IMAGE,
  ]);
  expect(wrap.code, wrap.stderr).toBe(0);
  git('add', '-A');
  git('commit', '-qm', 'stack');
}, 300_000);

afterAll(async () => {
  if (!engine || !dir) return;
  await mlship([...onMoto('--local', '--down')]);
  await mlship(['compose', 'down']);
  await s3?.close();
  await moto?.stop();
  removeImagesTagged(STACK);
});

describe.runIf(engine)(
  'from compose up to a deploy whose tasks start (moto + local registry + this engine)',
  () => {
    let composed: unknown;

    it('compose up: the model answers through the proxy', async () => {
      const r = await mlship(['compose', 'up', '--json']);
      expect(r.code, r.stderr).toBe(0);
      composed = await predict(`http://127.0.0.1:${proxyPort}`);
      expect(composed).toBe(2);
      expect((await mlship(['compose', 'down'])).code).toBe(0);
    });

    it('--apply: weights to the private, encrypted bucket (uploaded once), the proxy baked, roles of least privilege', async () => {
      const r = await mlship(onMoto('--apply', '--no-wait', '--json'));
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as {
        applied: {
          bucket: { name: string; created: boolean };
          weights: { service: string; url: string; uploadedBytes: number; skipped: boolean }[];
          roles: { name: string; created: boolean }[];
        };
      };
      const size = readFileSync(IRIS).length;
      expect(out.applied.weights).toEqual([
        expect.objectContaining({ service: 'iris', skipped: false, uploadedBytes: size }),
      ]);
      const bucket = out.applied.bucket.name;
      // Counted on the object store's side: the model file, once (any chunk framing is small).
      expect(s3.putBytes(`/${bucket}/mlship/weights/`)).toBeGreaterThanOrEqual(size);
      expect(s3.putBytes(`/${bucket}/mlship/weights/`)).toBeLessThan(size * 1.1);
      const client = new S3Client({ ...awsConfig(), forcePathStyle: true });
      const block = await client.send(new GetPublicAccessBlockCommand({ Bucket: bucket }));
      expect(Object.values(block.PublicAccessBlockConfiguration ?? {})).toEqual([true, true, true, true]);
      const encryption = await client.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
      expect(
        encryption.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault
          ?.SSEAlgorithm,
      ).toBe('AES256');
      client.destroy();
      // The task role reads the weights prefix of the stack's bucket, and nothing else.
      const iam = new IAMClient(awsConfig());
      const policy = await iam.send(
        new GetRolePolicyCommand({ RoleName: `mlship-${STACK}-task`, PolicyName: 'mlship-weights' }),
      );
      expect(JSON.parse(decodeURIComponent(policy.PolicyDocument!)).Statement).toEqual([
        {
          Sid: 'ReadModelWeights',
          Effect: 'Allow',
          Action: 's3:GetObject',
          Resource: [`arn:aws:s3:::${bucket}/mlship/weights/*`],
        },
      ]);
      iam.destroy();
      // The task definition downloads the weights it was deployed with, checked.
      const ecs = new ECSClient(awsConfig());
      const td = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: `${STACK}-iris` }));
      const env = Object.fromEntries(
        td.taskDefinition!.containerDefinitions![0]!.environment!.map((e) => [e.name, e.value]),
      );
      expect(env.MODEL_URL).toMatch(
        new RegExp(`^s3://${bucket}/mlship/weights/[0-9a-f]{64}/model\\.joblib$`),
      );
      expect(env.MODEL_SHA256).toMatch(/^[0-9a-f]{64}$/);
      const proxy = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: `${STACK}-proxy` }));
      expect(proxy.taskDefinition!.containerDefinitions![0]!.image).toMatch(/^127\.0\.0\.1:5000\/.*\/proxy:/);
      ecs.destroy();
    });

    it('--local: the deployed task definitions start, and predict what compose up predicted', async () => {
      const r = await mlship(onMoto('--local', '--json'));
      const out = JSON.parse(r.stdout) as {
        ok: boolean;
        source: string;
        containers: { container: string; status: string; detail: string; logs?: string[] }[];
        endpoints: { port: number; url: string }[];
        credentials: string;
      };
      expect(out.ok, JSON.stringify(out.containers, null, 2)).toBe(true);
      expect(r.code).toBe(0);
      expect(out.source).toBe('deployed');
      expect(Object.fromEntries(out.containers.map((c) => [c.container, c.status]))).toEqual({
        iris: 'healthy',
        proxy: 'healthy',
      });
      expect(out.credentials).toBe('task role');
      const endpoint = out.endpoints.find((e) => e.port === 80)!;
      expect(await predict(endpoint.url)).toEqual(composed);
    });

    it('a redeploy with unchanged weights sends 0 bytes; a new weights file is sent once and registers one revision', async () => {
      s3.reset();
      const again = await mlship(onMoto('--apply', '--no-wait', '--json'));
      expect(again.code, again.stderr).toBe(0);
      expect(s3.putBytes('/')).toBe(0);
      const same = JSON.parse(again.stdout) as {
        applied: {
          weights: { skipped: boolean; uploadedBytes: number }[];
          taskDefinitions: { registered: boolean }[];
        };
      };
      expect(same.applied.weights).toEqual([expect.objectContaining({ skipped: true, uploadedBytes: 0 })]);
      expect(same.applied.taskDefinitions.every((t) => !t.registered)).toBe(true);
      // A new model version: another file (the same model, stored with compression).
      spawnSync(path.resolve('.venv/bin/python'), [
        '-c',
        'import joblib, sys; joblib.dump(joblib.load(sys.argv[1]), sys.argv[2], compress=3)',
        IRIS,
        path.join(dir, 'model.joblib'),
      ]);
      const size = readFileSync(path.join(dir, 'model.joblib')).length;
      expect(size).not.toBe(readFileSync(IRIS).length);
      git('commit', '-qam', 'new weights');
      s3.reset();
      const changed = await mlship(onMoto('--apply', '--no-wait', '--json'));
      expect(changed.code, changed.stderr).toBe(0);
      const r = JSON.parse(changed.stdout) as {
        applied: {
          taskDefinitions: { family: string; registered: boolean }[];
          weights: { uploadedBytes: number }[];
        };
      };
      expect(r.applied.weights[0]!.uploadedBytes).toBe(size);
      expect(r.applied.taskDefinitions.filter((t) => t.registered).map((t) => t.family)).toEqual([
        `${STACK}-iris`,
      ]);
      const ecs = new ECSClient(awsConfig());
      const revisions = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: `${STACK}-iris` }));
      expect(revisions.taskDefinitionArns).toHaveLength(2);
      ecs.destroy();
    });
  },
);

describe.runIf(engine)(
  "a user's compose file: mounted config baked on request, what cannot start refused",
  () => {
    const sub = () => path.join(dir, 'user');

    beforeAll(() => {
      spawnSync('mkdir', ['-p', sub()]);
      writeFileSync(
        path.join(sub(), 'site.conf'),
        'server {\n  listen 80;\n  location / { default_type text/plain; return 200 "baked config\\n"; }\n}\n',
      );
      writeFileSync(
        path.join(sub(), 'compose.yaml'),
        [
          `name: ${STACK}-user`,
          'services:',
          '  web:',
          `    image: ${NGINX}`,
          '    ports: ["8081:80"]',
          '    volumes: ["./site.conf:/etc/nginx/conf.d/default.conf:ro"]',
          '    healthcheck:',
          '      test: ["CMD-SHELL", "curl -fsS http://127.0.0.1/ || exit 1"]',
          '      interval: 5s',
          '',
        ].join('\n'),
      );
    });

    it('without --bake-mounts the read-only mount is refused; so are a missing health-check program and a port used twice in one task (exit 2, nothing created)', async () => {
      const broken = path.join(sub(), 'broken.yaml');
      writeFileSync(
        broken,
        [
          `name: ${STACK}-broken`,
          'services:',
          '  web:',
          `    image: ${NGINX}`,
          '    volumes: ["./site.conf:/etc/nginx/conf.d/default.conf:ro"]',
          '  probe:',
          '    image: mlship-local/debian:bookworm-slim',
          '    command: ["sleep", "infinity"]',
          '    healthcheck:',
          '      test: ["CMD-SHELL", "curl -fsS http://127.0.0.1:9000/ || exit 1"]',
          '  gpu-a:',
          `    image: ${NGINX}`,
          '    ports: ["8080"]',
          '    deploy: { resources: { reservations: { devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }] } } }',
          '  gpu-b:',
          `    image: ${NGINX}`,
          '    ports: ["8080"]',
          '    deploy: { resources: { reservations: { devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }] } } }',
          '',
        ].join('\n'),
      );
      const r = await mlship(onMoto('-f', broken, '--apply', '--no-wait', '--tag', 'x'));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/error: 3 service setting\(s\) could not work on ECS; nothing was created/);
      expect(r.stderr).toMatch(
        /broken\.yaml:\d+:\d+ services\.web\.volumes: .*could not start \(fix: deploy with --bake-mounts/,
      );
      expect(r.stderr).toMatch(/broken\.yaml:\d+:\d+ services\.gpu-b\.ports: port 8080 is also gpu-a's/);
      expect(r.stderr).toMatch(
        /probe: its health check runs curl, which mlship-local\/debian:bookworm-slim does not have/,
      );
      const ecs = new ECSClient(awsConfig());
      const families = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: `${STACK}-broken` }));
      expect(families.taskDefinitionArns).toEqual([]);
      ecs.destroy();
    });

    it('--bake-mounts: the config file is in an image of the stack, and the deployed task serves it under --local', async () => {
      const file = path.join(sub(), 'compose.yaml');
      const applied = await mlship(
        onMoto('-f', file, '--apply', '--no-wait', '--bake-mounts', '--tag', 'v1', '--json'),
      );
      expect(applied.code, applied.stderr).toBe(0);
      const local = await mlship(onMoto('-f', file, '--local', '--tag', 'v1', '--json'));
      const out = JSON.parse(local.stdout) as {
        ok: boolean;
        endpoints: { port: number; url: string }[];
        containers: unknown[];
      };
      expect(out.ok, JSON.stringify(out.containers)).toBe(true);
      const url = out.endpoints.find((e) => e.port === 8081)!.url;
      expect(await (await fetch(url)).text()).toBe('baked config\n');
      await mlship(onMoto('-f', file, '--local', '--down'));
    });
  },
);
