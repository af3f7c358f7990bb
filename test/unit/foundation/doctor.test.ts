import { describe, expect, it } from 'vitest';
import type { EngineClient } from '../../../src/adapters/docker/engine.js';
import type { Exec, ExecResult } from '../../../src/adapters/exec.js';
import { type DoctorDeps, runDoctor } from '../../../src/core/doctor/doctor.js';
import { DockerUnavailableError } from '../../../src/io/errors.js';

const ok = (stdout: string): ExecResult => ({
  exitCode: 0,
  stdout,
  stderr: '',
  notFound: false,
  timedOut: false,
});
const missing: ExecResult = { exitCode: 127, stdout: '', stderr: '', notFound: true, timedOut: false };

function fakeExec(answers: Record<string, ExecResult>): Exec {
  return async (file, args) => answers[[file, ...args].join(' ')] ?? missing;
}

const engine: EngineClient = {
  endpoint: {
    source: 'default socket',
    address: 'unix:///var/run/docker.sock',
    socketPath: '/var/run/docker.sock',
  },
  ping: async () => undefined,
  version: async () => ({ version: '27.1.0', apiVersion: '1.46', os: 'linux', arch: 'amd64' }),
  info: async () => ({
    runtimes: ['runc', 'nvidia'],
    defaultRuntime: 'runc',
    cpus: 8,
    memoryBytes: 32e9,
    storageDriver: 'overlay2',
    rootDir: '/var/lib/docker',
    serverVersion: '27.1.0',
  }),
};

function deps(over: Partial<DoctorDeps> = {}): DoctorDeps {
  return {
    nodeVersion: 'v22.12.0',
    connectEngine: async () => engine,
    exec: fakeExec({
      'docker compose version --short': ok('2.29.1'),
      'docker buildx version': ok('github.com/docker/buildx v0.16.2 abc'),
      'nvidia-smi --query-gpu=driver_version,name --format=csv,noheader': ok(
        '550.54.15, NVIDIA L4\n550.54.15, NVIDIA L4',
      ),
    }),
    resolveAws: async () => ({
      region: 'eu-west-1',
      regionSource: 'AWS_REGION',
      identity: { ok: true, account: '123456789012', arn: 'arn:aws:iam::123456789012:user/dev' },
      accountId: '123456789012',
      accountSource: 'STS GetCallerIdentity (the credentials in use)',
    }),
    freeBytes: async () => 100 * 1024 ** 3,
    cwd: '/work',
    projectNeedsGpu: true,
    ...over,
  };
}

const byId = (r: Awaited<ReturnType<typeof runDoctor>>) => Object.fromEntries(r.checks.map((c) => [c.id, c]));

describe('doctor', () => {
  it('all green on a complete GPU machine', async () => {
    const r = await runDoctor(deps());
    expect(r.ok).toBe(true);
    const c = byId(r);
    expect(Object.keys(c)).toEqual([
      'node',
      'docker',
      'buildkit',
      'nvidia',
      'compose',
      'aws-credentials',
      'aws-region',
      'disk',
    ]);
    expect(r.checks.every((x) => x.status === 'ok')).toBe(true);
    expect(c.nvidia?.detail).toBe('2 GPU(s), driver 550.54.15, nvidia runtime registered');
    expect(c.compose?.detail).toMatch(/2\.29\.1 \(v2 plugin\)/);
    expect(c.buildkit?.detail).toMatch(/buildx v0\.16\.2/);
    expect(c.docker?.detail).toMatch(/27\.1\.0 \(API 1\.46/);
  });

  it('an unreachable engine fails the run with the adapter hint as the fix', async () => {
    const r = await runDoctor(
      deps({
        connectEngine: async () => ({
          ...engine,
          ping: async () => {
            throw new DockerUnavailableError('unix:///var/run/docker.sock', 'ENOENT (default socket)');
          },
        }),
      }),
    );
    expect(r.ok).toBe(false);
    expect(byId(r).docker).toMatchObject({ status: 'fail', required: true });
    expect(byId(r).docker?.fix).toMatch(/start the engine/);
  });

  it('an old Node fails; compose v1 is accepted as a fallback', async () => {
    const r = await runDoctor(
      deps({
        nodeVersion: 'v20.20.2',
        exec: fakeExec({ 'docker-compose version --short': ok('1.29.2') }),
      }),
    );
    expect(r.ok).toBe(false);
    expect(byId(r).node).toMatchObject({ status: 'fail' });
    expect(byId(r).compose?.detail).toMatch(/docker-compose 1\.29\.2 \(v1/);
  });

  it('missing GPU only warns when the project wants one; missing AWS warns with a fix', async () => {
    const noGpu = await runDoctor(
      deps({
        exec: fakeExec({}),
        projectNeedsGpu: false,
        resolveAws: async () => ({
          region: 'eu-west-1',
          regionSource: 'AWS_REGION',
          identity: {
            ok: false,
            reason: 'CredentialsProviderError: Could not load credentials from any providers',
          },
        }),
      }),
    );
    expect(noGpu.ok).toBe(true);
    expect(byId(noGpu).nvidia?.status).toBe('ok');
    expect(byId(noGpu).compose?.status).toBe('warn');
    expect(byId(noGpu)['aws-credentials']).toMatchObject({
      status: 'warn',
      fix: expect.stringMatching(/aws configure/),
    });
    const wantsGpu = await runDoctor(deps({ exec: fakeExec({}), projectNeedsGpu: true }));
    expect(byId(wantsGpu).nvidia?.status).toBe('warn');
  });

  it('low disk warns, very low disk fails (but is not required)', async () => {
    expect(byId(await runDoctor(deps({ freeBytes: async () => 10 * 1024 ** 3 }))).disk?.status).toBe('warn');
    const r = await runDoctor(deps({ freeBytes: async () => 1024 ** 3 }));
    expect(byId(r).disk?.status).toBe('fail');
    expect(r.ok).toBe(true);
  });

  it('--skip removes checks', async () => {
    const r = await runDoctor(deps({ skip: ['aws', 'disk'] }));
    expect(r.checks.map((c) => c.id)).not.toContain('aws-credentials');
    expect(r.checks.map((c) => c.id)).not.toContain('disk');
  });
});
