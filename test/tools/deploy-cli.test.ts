// The deploy commands through the built CLI (dist/): files, plans and JSON for ECS and
// Kubernetes, and how AWS is configured (region and account sources, credentials checked
// before anything is built), against moto's STS where an identity is needed.

import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { K8sManifest } from '../../src/generators/k8s-manifests.js';
import { loadK8sValidator } from '../helpers/k8s-schema.js';
import { type Moto, startMoto } from '../helpers/moto.js';

const GPU_FIXTURE = 'fixtures/deploy/gpu-pipeline/compose.yaml';
const validate = loadK8sValidator();
/** moto's STS (and every other API) on loopback; undefined only locally without .venv. */
const moto: Moto | undefined = await startMoto();

describe('mlship deploy ecs (CLI)', () => {
  it('--json: the plan, the cost and the files; --help lists it among the five steps', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-deploy-cli-'));
    cpSync('fixtures/deploy/gpu-pipeline/compose.yaml', path.join(dir, 'compose.yaml'));
    const bin = path.resolve('bin/mlship.js');
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'deploy',
        'ecs',
        '-f',
        'compose.yaml',
        '--region',
        'eu-west-1',
        '--account-id',
        '123456789012',
        '--tag',
        'abc123',
        '--json',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      written: string[];
      cost: { totalMonthlyUsd: number };
      warnings: unknown[];
    };
    expect(out.written).toHaveLength(7); // 3 task definitions (the database is managed), services, cluster, load balancer, plan
    expect(out.written.map((f) => path.basename(f))).toContain('load-balancer.json');
    expect(out.cost.totalMonthlyUsd).toBeGreaterThan(0);
    expect(out.warnings.length).toBeGreaterThan(0);
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' }).stdout;
    for (const cmd of ['bakeoff', 'wrap', 'compose', 'optimize', 'deploy'])
      expect(help).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
    const bad = spawnSync(process.execPath, [bin, 'deploy', 'ecs', '-f', 'compose.yaml'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no AWS region[\s\S]*hint: pass --region/);
    // Pushing needs a tag that names the content: outside git, --apply asks for --tag.
    const noTag = spawnSync(
      process.execPath,
      [
        bin,
        'deploy',
        'ecs',
        '-f',
        'compose.yaml',
        '--apply',
        '--region',
        'eu-west-1',
        '--account-id',
        '123456789012',
      ],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    expect(noTag.status).toBe(2);
    expect(noTag.stderr).toMatch(/not a git checkout[\s\S]*hint: pass --tag/);
  });
});

describe('mlship deploy k8s (CLI)', () => {
  it.skipIf(!validate)(
    '--json: the files, the required secret keys and located warnings; manifests on disk',
    () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-k8s-cli-'));
      cpSync(GPU_FIXTURE, path.join(dir, 'compose.yaml'));
      const bin = path.resolve('bin/mlship.js');
      const r = spawnSync(
        process.execPath,
        [bin, 'deploy', 'k8s', '-f', 'compose.yaml', '--namespace', 'ml', '--tag', 'abc123', '--json'],
        { cwd: dir, encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as {
        namespace: string;
        written: string[];
        requiredSecretKeys: string[];
        warnings: { file: string; line: number }[];
      };
      expect(out.namespace).toBe('ml');
      expect(out.written).toEqual([path.join(dir, 'deploy/k8s/manifests.yaml')]);
      expect(out.requiredSecretKeys).toEqual(['HF_TOKEN', 'POSTGRES_PASSWORD']);
      expect(out.warnings.some((w) => w.line === 43)).toBe(true);
      const docs = parseAllDocuments(readFileSync(out.written[0]!, 'utf8')).map(
        (d) => d.toJS() as K8sManifest,
      );
      expect(docs.every((d) => d.kind === 'Namespace' || d.metadata.namespace === 'ml')).toBe(true);
      for (const d of docs) expect(validate!(d), `${d.kind} ${d.metadata.name}`).toEqual([]);
      const help = spawnSync(process.execPath, [bin, 'deploy', 'k8s', '--help'], { encoding: 'utf8' });
      expect(help.stdout).toMatch(/--registry <host>/);
      expect(help.stdout).toMatch(/Examples:/);
    },
  );
});

/** The environment of a machine with no AWS configuration at all, plus `extra`. */
function bareAwsEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const home = mkdtempSync(path.join(os.tmpdir(), 'mlship-no-aws-'));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v;
  return {
    ...env,
    HOME: home,
    AWS_CONFIG_FILE: path.join(home, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    CI: 'true',
    ...extra,
  };
}

describe('how AWS is configured, as deploy ecs and doctor read it', () => {
  const bin = path.resolve('bin/mlship.js');
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-aws-config-'));
    cpSync(GPU_FIXTURE, path.join(dir, 'compose.yaml'));
  });
  afterAll(async () => {
    await moto?.stop();
  });
  const run = (args: string[], env: NodeJS.ProcessEnv) =>
    spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', env, timeout: 60_000 });

  it('AWS_REGION is the region of a plan (it used to be refused), and doctor names the same source', () => {
    const env = bareAwsEnv({ AWS_REGION: 'eu-west-2' });
    const r = run(
      ['deploy', 'ecs', '-f', 'compose.yaml', '--account-id', '123456789012', '--tag', 't', '--json'],
      env,
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { aws: Record<string, string> };
    expect(out.aws).toEqual({
      region: 'eu-west-2',
      regionSource: 'AWS_REGION',
      accountId: '123456789012',
      accountSource: '--account-id',
    });
    const doctor = run(['doctor', '--json', '--skip', 'disk'], env);
    const checks = (JSON.parse(doctor.stdout) as { checks: { id: string; detail: string }[] }).checks;
    expect(checks.find((c) => c.id === 'aws-region')?.detail).toBe('eu-west-2 (from AWS_REGION)');
    // The profile's config file is read too, as the AWS CLI reads it.
    writeFileSync(env.AWS_CONFIG_FILE!, '[profile ml]\nregion = ap-south-1\n');
    const fromProfile = run(
      ['deploy', 'ecs', '-f', 'compose.yaml', '--account-id', '123456789012', '--tag', 't', '--json'],
      bareAwsEnv({ AWS_PROFILE: 'ml', AWS_CONFIG_FILE: env.AWS_CONFIG_FILE! }),
    );
    expect(fromProfile.status, fromProfile.stderr).toBe(0);
    expect(JSON.parse(fromProfile.stdout).aws).toMatchObject({
      region: 'ap-south-1',
      regionSource: 'profile ml in ~/.aws/config',
      profile: 'ml',
      profileSource: 'AWS_PROFILE',
    });
  });

  it('--apply without credentials stops within 2 s, before any build, with the fix (exit 3)', () => {
    // An engine that does not exist: reaching a build would be a different error.
    const env = bareAwsEnv({ AWS_REGION: 'eu-west-1', DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    execGit(dir);
    const t0 = Date.now();
    const r = run(['deploy', 'ecs', '-f', 'compose.yaml', '--apply', '--account-id', '123456789012'], env);
    const seconds = (Date.now() - t0) / 1000;
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/error: no usable AWS credentials/);
    expect(r.stderr).toMatch(/hint: configure credentials before anything is built/);
    expect(r.stderr).not.toMatch(/docker|engine|build/i);
    expect(seconds).toBeLessThan(2 + 1.5); // + the Node process start-up on a loaded machine
  });

  it.skipIf(!moto)(
    'the account comes from STS when none is given; another account than the credentials is refused',
    () => {
      const env = bareAwsEnv({ ...moto!.env });
      const plan = run(
        [
          'deploy',
          'ecs',
          '-f',
          'compose.yaml',
          '--region',
          'us-east-1',
          '--endpoint-url',
          moto!.endpoint,
          '--tag',
          't',
          '--json',
        ],
        env,
      );
      expect(plan.status, plan.stderr).toBe(0);
      expect(JSON.parse(plan.stdout).aws).toMatchObject({
        accountId: '123456789012',
        accountSource: 'STS GetCallerIdentity (the credentials in use)',
      });
      const wrong = run(
        [
          'deploy',
          'ecs',
          '-f',
          'compose.yaml',
          '--apply',
          '--region',
          'us-east-1',
          '--endpoint-url',
          moto!.endpoint,
          '--account-id',
          '210987654321',
          '--tag',
          't',
        ],
        env,
      );
      expect(wrong.status).toBe(2);
      expect(wrong.stderr).toMatch(
        /the credentials in use belong to account 123456789012, but --account-id says 210987654321/,
      );
    },
  );
});

function execGit(cwd: string): void {
  spawnSync('git', ['init', '-q', cwd]);
  spawnSync('git', ['-C', cwd, 'add', '-A']);
  spawnSync('git', ['-C', cwd, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'x']);
}
