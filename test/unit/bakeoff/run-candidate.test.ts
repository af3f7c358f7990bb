// One candidate against a fake engine: what is sent (GPU device requests, memory
// limit, labels, read-only inputs), timeout handling, GPU memory sampling, build
// failures, and that the container is always removed.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import type { ContainerInfo } from '../../../src/adapters/docker/engine.js';
import {
  type BuildOptions,
  type ContainerHandle,
  type ContainerSpec,
  containerCreateOptions,
  RUN_LABEL,
} from '../../../src/adapters/docker/engine.js';
import type { Exec } from '../../../src/adapters/exec.js';
import { CandidateSchema } from '../../../src/config/bakeoff-schema.js';
import type { BakeoffEngine } from '../../../src/core/bakeoff/deps.js';
import { builtinMatrix } from '../../../src/core/bakeoff/matrix.js';
import { resolveCandidate } from '../../../src/core/bakeoff/resolve.js';
import { CANDIDATE_LABEL, type CandidateJob, runCandidate } from '../../../src/core/bakeoff/run-candidate.js';
import { BuildFailedError, EngineError } from '../../../src/io/errors.js';

interface Behaviour {
  exitCode?: number;
  hang?: boolean;
  oom?: boolean;
  log?: string;
  buildError?: BuildFailedError;
}

class FakeEngine implements BakeoffEngine {
  readonly endpoint = {
    source: 'default socket' as const,
    address: 'unix:///var/run/docker.sock',
    socketPath: '/var/run/docker.sock',
  };
  started: ContainerSpec[] = [];
  builds: BuildOptions[] = [];
  killed: string[] = [];
  removed = 0;
  constructor(private readonly b: Behaviour = {}) {}
  async info() {
    return {
      runtimes: [],
      defaultRuntime: 'runc',
      cpus: 2,
      memoryBytes: 8e9,
      storageDriver: 'overlay2',
      rootDir: '/',
      serverVersion: '20.10',
    };
  }
  async version() {
    return { version: '20.10', apiVersion: '1.41', os: 'linux', arch: 'amd64' };
  }
  async build(o: BuildOptions) {
    this.builds.push(o);
    if (this.b.buildError) throw this.b.buildError;
    o.onProgress?.({ step: 'Step 1/3 : FROM python:3.11-slim' });
    return {
      imageId: `sha256:${'b'.repeat(64)}`,
      tags: o.tags,
      steps: [],
      cachedSteps: 1,
      contextBytes: 0,
      contextFiles: 0,
    };
  }
  async inspectImage(ref: string) {
    return {
      id: ref.startsWith('sha256:') ? ref : `sha256:${'b'.repeat(64)}`,
      tags: [],
      sizeBytes: 123_000_000,
      created: '',
      labels: {},
      env: [],
      cmd: null,
      entrypoint: null,
      workdir: '',
      user: '',
      exposedPorts: [],
      layers: [],
      repoDigests: [],
    };
  }
  async start(spec: ContainerSpec): Promise<ContainerHandle> {
    this.started.push(spec);
    const started = new Date('2026-01-01T00:00:00Z');
    let finish!: (code: number) => void;
    const done = new Promise<number>((resolve) => {
      finish = resolve;
    });
    let finished: Date | undefined;
    if (!this.b.hang) setTimeout(() => finish(this.b.oom ? 137 : (this.b.exitCode ?? 0)), 30);
    const handle = {
      id: 'c0ffee',
      inspect: async (): Promise<ContainerInfo> => ({
        running: false,
        status: 'exited',
        exitCode: this.b.oom ? 137 : (this.b.exitCode ?? 0),
        oomKilled: Boolean(this.b.oom),
        startedAt: started.toISOString(),
        finishedAt: (finished ?? started).toISOString(),
        healthLog: [],
        ports: {},
        mounts: [],
      }),
      hostPort: async () => undefined,
      followLogs: async () => undefined,
      logs: async () => this.b.log ?? 'hello\n',
      stop: async () => undefined,
      kill: async (signal?: string) => {
        this.killed.push(signal ?? 'SIGKILL');
        finish(137);
      },
      wait: async () => {
        const exitCode = await done;
        finished = new Date(started.getTime() + 1500);
        return { exitCode };
      },
      remove: async () => {
        this.removed++;
      },
      stats: async () => ({ memoryBytes: 20 * 1024 ** 2, memoryPeakBytes: 64 * 1024 ** 2 }),
    };
    return handle;
  }
  archiveReads: string[] = [];
  async getArchive(_id: string, p: string) {
    this.archiveReads.push(p);
    if (p !== '/opt/mlship') return undefined;
    // As the engine names entries: from the directory's base name.
    const pack = tar.pack();
    pack.entry({ name: 'mlship/', type: 'directory' });
    pack.entry({ name: 'mlship/pip-freeze.txt' }, 'numpy==1.26.4\npip==24.0\n');
    pack.entry({ name: 'mlship/gpu-probe.json' }, '{"frameworks": []}\n');
    pack.finalize();
    return pack as unknown as Readable;
  }
}

const noExec: Exec = async () => ({ exitCode: 127, stdout: '', stderr: '', notFound: true, timedOut: false });

function job(fields: Record<string, unknown>, hostGpuCount = 0): CandidateJob {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-run-candidate-'));
  writeFileSync(path.join(dir, 'input.txt'), 'x');
  const candidate = CandidateSchema.parse({ repo: './r', run: 'python demo.py', ...fields });
  return {
    name: 'det',
    candidate,
    plan: resolveCandidate(candidate, {
      matrix: builtinMatrix(),
      compilesCuda: { yes: false, evidence: [] },
      host: { driver: hostGpuCount ? '550.54.15' : null, count: hostGpuCount },
      baseImageOverride: 'local/python:3.11',
    }),
    facts: { compilesCuda: { yes: false, evidence: [] }, requirementFiles: [] },
    source: {
      repo: './r',
      location: dir,
      ref: 'HEAD',
      commit: 'a'.repeat(40),
      contextDir: dir,
      sourceDir: 'src',
    },
    cloneMs: 5,
    runId: 'unit-run',
    configDir: dir,
    outputsDir: path.join(dir, 'out'),
    hostGpuCount,
  };
}

const control = { title: () => undefined, output: () => undefined };

describe('runCandidate', () => {
  it('sends GPU device requests, the memory limit, labels and read-only inputs; records the freeze; removes the container', async () => {
    const engine = new FakeEngine();
    const j = job(
      { gpus: 2, memory: '512Mi', inputs: ['input.txt', { source: 'input.txt', target: '/data/in.txt' }] },
      2,
    );
    const outcome = await runCandidate(j, engine, { exec: noExec }, control, new AbortController().signal);
    expect(outcome.report.status).toBe('passed');
    const spec = engine.started[0]!;
    expect(spec.gpus).toBe(2);
    expect(spec.cmd).toEqual(['sh', '-c', 'python demo.py']);
    expect(spec.workdir).toBe('/workspace/repo');
    expect(spec.labels).toEqual({ [RUN_LABEL]: 'unit-run', [CANDIDATE_LABEL]: 'det' });
    const sent = containerCreateOptions(spec);
    expect(sent.HostConfig?.DeviceRequests).toEqual([
      { Driver: 'nvidia', Count: 2, Capabilities: [['gpu']] },
    ]);
    expect(sent.HostConfig?.Memory).toBe(512 * 1024 ** 2);
    expect(sent.HostConfig?.MemorySwap).toBe(512 * 1024 ** 2);
    expect(sent.HostConfig?.Mounts).toEqual([
      {
        Type: 'bind',
        Source: path.join(j.configDir, 'input.txt'),
        Target: '/workspace/inputs/input.txt',
        ReadOnly: true,
      },
      { Type: 'bind', Source: path.join(j.configDir, 'input.txt'), Target: '/data/in.txt', ReadOnly: true },
    ]);
    expect(outcome.report.metrics.runMs).toBe(1500);
    expect(outcome.report.metrics.peakMemoryBytes).toBe(64 * 1024 ** 2);
    expect(outcome.lock?.pipFreeze).toEqual(['numpy==1.26.4', 'pip==24.0']);
    // The freeze and the GPU probe in one archive read (the engine serialises reads per container).
    expect(engine.archiveReads.filter((r) => r.startsWith('/opt/mlship'))).toEqual(['/opt/mlship']);
    expect(engine.removed).toBe(1);
    // The Dockerfile was written into the context, and built with the run's labels.
    expect(readFileSync(path.join(j.source.contextDir, engine.builds[0]!.dockerfile!), 'utf8')).toMatch(
      /^FROM local\/python:3\.11$/m,
    );
    expect(engine.builds[0]!.labels).toEqual({ [RUN_LABEL]: 'unit-run', [CANDIDATE_LABEL]: 'det' });
  });

  it("mounts the download cache read-write with the clients' cache variables; the candidate's own env wins", async () => {
    const engine = new FakeEngine();
    const j = {
      ...job({ env: { TORCH_HOME: '/opt/torch' } }),
      weightsCache: '/home/u/.cache/mlship/weights',
    };
    await runCandidate(j, engine, { exec: noExec }, control, new AbortController().signal);
    const spec = engine.started[0]!;
    expect(spec.mounts).toContainEqual({
      type: 'bind',
      source: '/home/u/.cache/mlship/weights',
      target: '/mlship/weights',
    });
    expect(spec.env).toMatchObject({
      HF_HOME: '/mlship/weights/huggingface',
      XDG_CACHE_HOME: '/mlship/weights/xdg',
      TORCH_HOME: '/opt/torch',
    });
    const none = new FakeEngine();
    await runCandidate(job({}), none, { exec: noExec }, control, new AbortController().signal);
    expect(none.started[0]!.env?.HF_HOME).toBeUndefined();
  });

  it('gpus: "all" asks for every GPU; gpus: 0 sends no device request', async () => {
    const all = new FakeEngine();
    await runCandidate(job({ gpus: 'all' }, 1), all, { exec: noExec }, control, new AbortController().signal);
    expect(containerCreateOptions(all.started[0]!).HostConfig?.DeviceRequests).toEqual([
      { Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] },
    ]);
    const none = new FakeEngine();
    await runCandidate(job({}), none, { exec: noExec }, control, new AbortController().signal);
    expect(containerCreateOptions(none.started[0]!).HostConfig?.DeviceRequests).toBeUndefined();
  });

  it('kills a hanging example at its timeout and classifies it, removing the container', async () => {
    const engine = new FakeEngine({ hang: true, log: 'waiting\n' });
    const t0 = Date.now();
    const outcome = await runCandidate(
      job({ timeout: '1s' }),
      engine,
      { exec: noExec },
      control,
      new AbortController().signal,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(engine.killed).toEqual(['SIGKILL']);
    expect(outcome.report.run.timedOut).toBe(true);
    expect(outcome.report.failure?.category).toBe('timeout');
    expect(engine.removed).toBe(1);
  });

  it('samples GPU memory through nvidia-smi when GPUs are used (peak minus baseline)', async () => {
    const readings = [1000, 1000, 3500, 5200, 4000];
    const exec: Exec = async (file, args) => {
      expect(file).toBe('nvidia-smi');
      expect(args).toContain('--query-gpu=memory.used');
      const v = readings.shift() ?? 1000;
      return { exitCode: 0, stdout: `${v}\n`, stderr: '', notFound: false, timedOut: false };
    };
    const engine = new (class extends FakeEngine {
      override async start(spec: ContainerSpec) {
        const h = await super.start(spec);
        const wait = h.wait.bind(h);
        return {
          ...h,
          wait: async () => {
            await new Promise((r) => setTimeout(r, 1800));
            return wait();
          },
        };
      }
    })();
    const outcome = await runCandidate(
      job({ gpus: 1 }, 1),
      engine,
      { exec },
      control,
      new AbortController().signal,
    );
    expect(outcome.report.metrics.gpuMemoryBytes).toBe((5200 - 1000) * 1024 * 1024);
  });

  it('a failed build is classified and starts no container', async () => {
    const engine = new FakeEngine({
      buildError: new BuildFailedError(
        'The command returned a non-zero code: 1',
        'Step 7/9 : RUN pip install -r requirements.txt',
        ['ERROR: No matching distribution found for detectron3==0.1'],
      ),
    });
    const outcome = await runCandidate(
      job({}),
      engine,
      { exec: noExec },
      control,
      new AbortController().signal,
    );
    expect(outcome.report.failure).toMatchObject({
      category: 'dependency_install_failed',
      package: 'detectron3',
    });
    expect(outcome.report.log.phase).toBe('build');
    expect(outcome.lock).toBeNull();
    expect(engine.started).toEqual([]);
  });

  it('--frozen reuses the locked image when it exists, else rebuilds with the freeze pinned', async () => {
    const frozen = {
      imageId: `sha256:${'c'.repeat(64)}`,
      imageTag: 't',
      pipFreeze: ['numpy==1.26.4', 'pip==24.0'],
    };
    const present = new FakeEngine();
    await runCandidate(
      { ...job({}), frozen },
      present,
      { exec: noExec },
      control,
      new AbortController().signal,
    );
    expect(present.builds).toEqual([]);
    expect(present.started[0]!.image).toBe(frozen.imageId);

    const gone = new (class extends FakeEngine {
      override async inspectImage(ref: string) {
        if (ref === frozen.imageId) throw new Error('No such image');
        return super.inspectImage(ref);
      }
    })();
    const j = { ...job({}), frozen };
    await runCandidate(j, gone, { exec: noExec }, control, new AbortController().signal);
    expect(gone.builds).toHaveLength(1);
    const dockerfile = readFileSync(path.join(j.source.contextDir, gone.builds[0]!.dockerfile!), 'utf8');
    expect(dockerfile).toMatch(/printf '%s\\n' numpy==1\.26\.4 pip==24\.0 > \/opt\/mlship\/constraints\.txt/);
  });

  it('an engine without the NVIDIA runtime is a host problem, reported for that candidate', async () => {
    const engine = new (class extends FakeEngine {
      override async start(spec: ContainerSpec): Promise<ContainerHandle> {
        this.started.push(spec);
        throw new EngineError(
          'create container from sha256:b: could not select device driver "nvidia" with capabilities: [[gpu]]',
        );
      }
    })();
    const outcome = await runCandidate(
      job({ gpus: 1 }, 1),
      engine,
      { exec: noExec },
      control,
      new AbortController().signal,
    );
    expect(outcome.report.failure).toMatchObject({ category: 'host_gpu_unavailable', origin: 'host' });
    expect(outcome.report.failure?.hint).toMatch(/NVIDIA Container Toolkit/);
  });

  it('OOM-killed runs are out_of_memory', async () => {
    const engine = new FakeEngine({ oom: true });
    const outcome = await runCandidate(
      job({ memory: '64Mi' }),
      engine,
      { exec: noExec },
      control,
      new AbortController().signal,
    );
    expect(outcome.report.run.oomKilled).toBe(true);
    expect(outcome.report.failure?.category).toBe('out_of_memory');
  });
});
