import { describe, expect, it } from 'vitest';
import type { ContainerHandle, ContainerInfo, ContainerSpec } from '../../../src/adapters/docker/engine.js';
import type { Exec, ExecResult } from '../../../src/adapters/exec.js';
import { type DoctorDeps, type DoctorEngine, runDoctor } from '../../../src/core/doctor/doctor.js';
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

/** nvidia-smi's answer as recorded on a g5.12xlarge (4 × A10G, driver 570.133.20). */
const RECORDED_SMI =
  '0, NVIDIA A10G, 570.133.20, 23028, 8.6\n1, NVIDIA A10G, 570.133.20, 23028, 8.6\n2, NVIDIA A10G, 570.133.20, 23028, 8.6\n3, NVIDIA A10G, 570.133.20, 23028, 8.6\n';

/** A container that prints `output` and exits `exitCode`; the specs it was started with are kept. */
function gpuContainers(output: string, exitCode = 0) {
  const started: ContainerSpec[] = [];
  let removed = 0;
  const start = async (spec: ContainerSpec): Promise<ContainerHandle> => {
    started.push(spec);
    return {
      id: 'smi',
      inspect: async () => ({}) as ContainerInfo,
      hostPort: async () => undefined,
      followLogs: async () => undefined,
      logs: async () => output,
      stop: async () => undefined,
      kill: async () => undefined,
      wait: async () => ({ exitCode }),
      remove: async () => {
        removed++;
      },
      stats: async () => ({ memoryBytes: 0 }),
    };
  };
  return { start, started, removed: () => removed };
}

const engine: DoctorEngine = {
  endpoint: {
    source: 'default socket',
    address: 'unix:///var/run/docker.sock',
    socketPath: '/var/run/docker.sock',
  },
  start: gpuContainers(RECORDED_SMI).start,
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
    expect(c.nvidia?.detail).toBe(
      '4 GPU(s): NVIDIA A10G (8.6), NVIDIA A10G (8.6), NVIDIA A10G (8.6), NVIDIA A10G (8.6); driver 570.133.20; found by nvidia-smi in a container on unix:///var/run/docker.sock',
    );
    expect(c.compose?.detail).toMatch(/2\.29\.1 \(v2 plugin\)/);
    expect(c.buildkit?.detail).toMatch(/buildx v0\.16\.2/);
    expect(c.docker?.detail).toMatch(/27\.1\.0 \(API 1\.46/);
  });

  it('GPUs are found through the engine: a remote DOCKER_HOST with the NVIDIA runtime answers from its own host', async () => {
    const smi = gpuContainers(RECORDED_SMI);
    const remote: DoctorEngine = {
      ...engine,
      endpoint: {
        source: 'DOCKER_HOST',
        address: 'tcp://gpu-box:2376',
        host: 'gpu-box',
        port: 2376,
        protocol: 'https',
      },
      start: smi.start,
    };
    // The local machine has no GPU: what it says must not matter.
    const r = await runDoctor(
      deps({ connectEngine: async () => remote, gpuProbeImage: 'mirror.local/python:3.11-slim' }),
    );
    expect(byId(r).nvidia?.detail).toMatch(
      /^4 GPU\(s\): NVIDIA A10G \(8\.6\).*driver 570\.133\.20; found by nvidia-smi in a container on tcp:\/\/gpu-box:2376$/,
    );
    expect(smi.started).toHaveLength(1);
    expect(smi.started[0]).toMatchObject({
      image: 'mirror.local/python:3.11-slim',
      gpus: 'all',
      entrypoint: ['sh', '-c'],
    });
    expect(smi.started[0]!.cmd![0]).toMatch(
      /^nvidia-smi --query-gpu=index,name,driver_version,memory\.total,compute_cap /,
    );
    expect(smi.removed()).toBe(1);
    // A remote engine without the NVIDIA runtime is asked nothing, and has no GPU.
    const plain = gpuContainers(RECORDED_SMI);
    const noRuntime = await runDoctor(
      deps({
        connectEngine: async () => ({
          ...remote,
          start: plain.start,
          info: async () => ({ ...(await engine.info()), runtimes: ['runc'] }),
        }),
      }),
    );
    expect(plain.started).toHaveLength(0);
    expect(byId(noRuntime).nvidia).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/tcp:\/\/gpu-box:2376 has no NVIDIA runtime/),
    });
  });

  it('a local engine without the runtime falls back to the local nvidia-smi (older drivers: no compute capability)', async () => {
    const r = await runDoctor(
      deps({
        connectEngine: async () => ({
          ...engine,
          info: async () => ({ ...(await engine.info()), runtimes: ['runc'] }),
        }),
        exec: async (file, args) =>
          file === 'sh' && args[1]!.startsWith('nvidia-smi')
            ? ok('0, Tesla T4, 470.57.02, 15109\n')
            : missing,
      }),
    );
    expect(byId(r).nvidia?.detail).toBe(
      '1 GPU(s): Tesla T4; driver 470.57.02; found by nvidia-smi on this machine (the engine registers no NVIDIA runtime)',
    );
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
    const noSmi = { ...engine, start: gpuContainers('nvidia-smi: not found', 127).start };
    const noGpu = await runDoctor(
      deps({
        connectEngine: async () => noSmi,
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
    const wantsGpu = await runDoctor(
      deps({ connectEngine: async () => noSmi, exec: fakeExec({}), projectNeedsGpu: true }),
    );
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
