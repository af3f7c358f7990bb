// `mlship deploy ecs --apply` against real AWS APIs served by moto, pushing to a
// real local registry: creation, idempotent re-apply, changes, recovery after a
// failure part-way, and no credential in any output or file.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DescribeRepositoriesCommand, ECRClient, GetLifecyclePolicyCommand } from '@aws-sdk/client-ecr';
import { DescribeServicesCommand, ECSClient, ListTaskDefinitionsCommand } from '@aws-sdk/client-ecs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployApis } from '../../src/adapters/aws/ecs-deploy.js';
import { applyEcs } from '../../src/core/deploy/apply.js';
import { planEcs } from '../../src/core/deploy/plan.js';
import { LOCAL_DEBIAN_IMAGE, requireEngine } from '../helpers/docker.js';
import { FAKE_CREDENTIALS, type Moto, startMoto } from '../helpers/moto.js';

const engine = await requireEngine();
const BIN = path.resolve('bin/mlship.js');
let moto: Moto | undefined;
let dir: string;
const STACK = `dep-${process.pid}`;
const outputs: string[] = [];

function config(env: string): void {
  writeFileSync(
    path.join(dir, 'mlship.yaml'),
    [
      `name: ${STACK}`,
      'services:',
      '  web:',
      '    path: services/web',
      '    env:',
      `      GREETING: ${env}`,
      'aws:',
      '  region: us-east-1',
      '  account_id: "123456789012"',
      '',
    ].join('\n'),
  );
}

function mlship(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, ...moto!.env, CI: 'true' },
    timeout: 300_000,
  });
  outputs.push(r.stdout, r.stderr);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  if (!engine) return;
  moto = await startMoto();
  // The in-process adapters resolve credentials through the SDK chain, like the CLI.
  Object.assign(process.env, moto!.env);
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-deploy-it-'));
  mkdirSync(path.join(dir, 'services/web'), { recursive: true });
  writeFileSync(
    path.join(dir, 'services/web/Dockerfile'),
    `FROM ${LOCAL_DEBIAN_IMAGE}\nCMD ["sleep", "infinity"]\n`,
  );
  execFileSync('git', ['init', '-q', dir]);
  execFileSync('git', [
    '-C',
    dir,
    '-c',
    'user.email=t@t',
    '-c',
    'user.name=t',
    'commit',
    '-q',
    '--allow-empty',
    '-m',
    'x',
  ]);
  await engine.build({
    context: path.join(dir, 'services/web'),
    tags: [`${STACK}/web:dev`],
    labels: { 'dev.mlship.run': STACK },
  });
  config('hello');
}, 120_000);

afterAll(async () => {
  await moto?.stop();
  if (engine) await engine.removeImage(`${STACK}/web:dev`, true);
});

const clientConfig = () => ({
  region: 'us-east-1',
  endpoint: moto!.endpoint,
  credentials: {
    accessKeyId: FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID,
    secretAccessKey: FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
  },
});

describe.runIf(engine)('mlship deploy ecs --apply (moto + local registry)', () => {
  it('ECR: repositories created once with scan on push, immutable tags and a lifecycle policy; auth token', async () => {
    const apis = await createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
    try {
      const first = await apis.ecr.ensureRepository(`${STACK}/probe`, 7);
      const again = await apis.ecr.ensureRepository(`${STACK}/probe`, 7);
      expect(first.created).toBe(true);
      expect(again).toEqual({ uri: first.uri, created: false });
      const ecr = new ECRClient(clientConfig());
      const repo = (await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [`${STACK}/probe`] })))
        .repositories![0]!;
      expect(repo.imageTagMutability).toBe('IMMUTABLE');
      expect(repo.imageScanningConfiguration?.scanOnPush).toBe(true);
      const policy = JSON.parse(
        (await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: `${STACK}/probe` })))
          .lifecyclePolicyText!,
      );
      expect(policy.rules[0].selection).toMatchObject({ countType: 'imageCountMoreThan', countNumber: 7 });
      ecr.destroy();
      const auth = await apis.ecr.authorization();
      expect(auth.username).toBe('AWS');
      expect(auth.password.length).toBeGreaterThan(0);
      expect(await apis.ecr.imageDigest(`${STACK}/probe`, 'nope')).toBeUndefined();
    } finally {
      apis.destroy();
    }
  });

  it('first apply: pushes, creates the log group and cluster, registers and creates', () => {
    const r = mlship([
      'deploy',
      'ecs',
      '--apply',
      '--endpoint-url',
      moto!.endpoint,
      '--registry',
      '127.0.0.1:5000',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const { applied } = JSON.parse(r.stdout);
    expect(applied.cluster).toEqual({ name: STACK, created: true });
    expect(applied.logGroup.created).toBe(true);
    expect(applied.pushes[0]).toMatchObject({
      service: 'web',
      skipped: false,
      image: expect.stringMatching(new RegExp(`^127\\.0\\.0\\.1:5000/${STACK}/web:[0-9a-f]{12}$`)),
    });
    expect(applied.pushes[0].digest).toMatch(/^sha256:/);
    expect(applied.taskDefinitions).toEqual([
      { family: `${STACK}-web`, arn: expect.stringContaining(`${STACK}-web:1`), registered: true },
    ]);
    expect(applied.services).toEqual([{ name: 'web', action: 'created' }]);
  });

  it('re-apply with nothing changed registers no revision and updates nothing', async () => {
    const r = mlship([
      'deploy',
      'ecs',
      '--apply',
      '--endpoint-url',
      moto!.endpoint,
      '--registry',
      '127.0.0.1:5000',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const { applied } = JSON.parse(r.stdout);
    expect(applied.cluster.created).toBe(false);
    expect(applied.taskDefinitions[0].registered).toBe(false);
    expect(applied.services).toEqual([{ name: 'web', action: 'unchanged' }]);
    const ecs = new ECSClient(clientConfig());
    const defs = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: `${STACK}-web` }));
    expect(defs.taskDefinitionArns).toHaveLength(1);
    ecs.destroy();
  });

  it('a changed setting registers one new revision and updates only that service; --force redeploys', async () => {
    config('bonjour');
    const r = mlship([
      'deploy',
      'ecs',
      '--apply',
      '--endpoint-url',
      moto!.endpoint,
      '--registry',
      '127.0.0.1:5000',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const { applied } = JSON.parse(r.stdout);
    expect(applied.taskDefinitions[0]).toMatchObject({
      registered: true,
      arn: expect.stringContaining(`${STACK}-web:2`),
    });
    expect(applied.services).toEqual([{ name: 'web', action: 'updated' }]);
    const ecs = new ECSClient(clientConfig());
    const svc = (await ecs.send(new DescribeServicesCommand({ cluster: STACK, services: ['web'] })))
      .services![0]!;
    expect(svc.taskDefinition).toContain(`${STACK}-web:2`);
    ecs.destroy();
    const forced = mlship([
      'deploy',
      'ecs',
      '--apply',
      '--force',
      '--endpoint-url',
      moto!.endpoint,
      '--registry',
      '127.0.0.1:5000',
      '--json',
    ]);
    expect(JSON.parse(forced.stdout).applied.services).toEqual([{ name: 'web', action: 'updated' }]);
  });

  it('a failure part-way leaves a state the next run converges from', async () => {
    const two = path.join(dir, 'two');
    mkdirSync(two, { recursive: true });
    writeFileSync(
      path.join(two, 'compose.yaml'),
      `services:\n  a:\n    image: ${LOCAL_DEBIAN_IMAGE}\n    ports: ["8080"]\n  b:\n    image: ${LOCAL_DEBIAN_IMAGE}\n    ports: ["8081"]\n`,
    );
    const plan = await planEcs({
      file: path.join(two, 'compose.yaml'),
      region: 'us-east-1',
      accountId: '123456789012',
      imageTag: 'x',
      force: false,
    });
    const apis = await createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
    try {
      let calls = 0;
      const failing = {
        ...apis,
        ecs: {
          ...apis.ecs,
          createService: async (spec: Parameters<typeof apis.ecs.createService>[0]) => {
            if (++calls === 2) throw new Error('injected: throttled');
            return apis.ecs.createService(spec);
          },
        },
      };
      const deps = { engine: engine!, log: () => undefined };
      await expect(
        applyEcs(plan, { ...deps, aws: failing }, { localImages: {}, force: false, wait: false }),
      ).rejects.toThrow('injected');
      const after = await applyEcs(
        plan,
        { ...deps, aws: apis },
        { localImages: {}, force: false, wait: false },
      );
      expect(after.services).toEqual([
        { name: 'a', action: 'unchanged' },
        { name: 'b', action: 'created' },
      ]);
      expect(after.taskDefinitions.every((t) => !t.registered)).toBe(true);
    } finally {
      apis.destroy();
    }
  });

  it('no access key, secret, session token or registry password in any output or written file', async () => {
    const apis = await createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
    const registryPassword = (await apis.ecr.authorization()).password;
    apis.destroy();
    const files: string[] = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = path.join(d, n);
        if (n === '.git') continue;
        if (statSync(p).isDirectory()) walk(p);
        else files.push(readFileSync(p, 'utf8'));
      }
    };
    walk(dir);
    const haystack = [...outputs, ...files].join('\n');
    expect(outputs.length).toBeGreaterThan(4);
    for (const secret of [
      FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
      FAKE_CREDENTIALS.AWS_SESSION_TOKEN,
      FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID,
      registryPassword,
    ]) {
      expect(haystack.includes(secret), 'a credential leaked').toBe(false);
    }
  });
});
