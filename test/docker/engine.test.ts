// The engine adapter against a real Docker engine: build (both builders), run,
// logs, limits, errors, push to a real registry, and no leftovers.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveEngineEndpoint } from '../../src/adapters/docker/endpoint.js';
import { DockerEngine, MANAGED_LABEL, RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { CleanupRegistry } from '../../src/io/cleanup.js';
import {
  BuildFailedError,
  DockerUnavailableError,
  ImageNotFoundError,
  RegistryAuthError,
} from '../../src/io/errors.js';
import { startAuthRegistry } from '../helpers/auth-registry.js';
import {
  countManaged,
  LOCAL_PYTHON_IMAGE,
  removeImagesTagged,
  requireEngine,
  requireImage,
} from '../helpers/docker.js';

const run = `engine-${randomBytes(4).toString('hex')}`;
const tag = `mlship-test/hello:${run}`;
const labels = { [RUN_LABEL]: run };
let engine: DockerEngine | undefined;

beforeAll(async () => {
  engine = await requireEngine();
  if (engine) await requireImage(engine, LOCAL_PYTHON_IMAGE);
});

afterAll(async () => {
  if (!engine) return;
  await engine.removeByLabel(RUN_LABEL, run);
  for (const t of [tag, `${tag}-bk`, `127.0.0.1:5000/mlship-test/hello:${run}`])
    await engine.removeImage(t, true);
  removeImagesTagged(run); // -final, and the tags pushed to the registries
});

describe.runIf(await requireEngine())('Docker engine adapter (real engine)', () => {
  it('pings and reports versions', async () => {
    await engine!.ping();
    const v = await engine!.version();
    expect(v.apiVersion).toMatch(/^1\.\d+$/);
    const info = await engine!.info();
    expect(info.cpus).toBeGreaterThan(0);
    // What `rollout start --shadow` chooses its idle parent by; this engine runs as root.
    expect(['cgroupfs', 'systemd']).toContain(info.cgroupDriver);
    expect(info.rootless).toBeUndefined();
  });

  it('builds a fixture with build args and labels, honouring .dockerignore', async () => {
    const steps: string[] = [];
    const r = await engine!.build({
      context: 'fixtures/engine/hello',
      tags: [tag],
      buildArgs: { BASE: LOCAL_PYTHON_IMAGE, GREETING: 'bonjour' },
      labels,
      onProgress: (e) => e.step && !e.line && steps.push(e.step),
    });
    expect(r.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.contextFiles).toBe(4); // Dockerfile, .dockerignore, app.py, data/keep.txt
    expect(steps[0]).toMatch(/^Step 1\/\d+ : ARG BASE/);
    const image = await engine!.inspectImage(tag);
    expect(image.labels).toMatchObject({ [MANAGED_LABEL]: 'true', [RUN_LABEL]: run });
    expect(image.env).toContain('GREETING=bonjour');
    expect(image.workdir).toBe('/app');
    const history = await engine!.history(tag);
    expect(history.some((h) => h.createdBy.includes('COPY') || h.createdBy.includes('copy'))).toBe(true);
  });

  it('a rebuild is served from the layer cache', async () => {
    const r = await engine!.build({
      context: 'fixtures/engine/hello',
      tags: [tag],
      buildArgs: { BASE: LOCAL_PYTHON_IMAGE, GREETING: 'bonjour' },
      labels,
    });
    expect(r.cachedSteps).toBeGreaterThanOrEqual(4);
  });

  it('runs the image, captures both streams, exit code, and removes the container', async () => {
    const seen: string[] = [];
    const r = await engine!.run({ image: tag, labels, env: { EXIT_CODE: '7' }, onLog: (l) => seen.push(l) });
    expect(r.exitCode).toBe(7);
    expect(r.stdoutTail).toEqual(['bonjour from mlship fixture', 'files: keep.txt']);
    expect(r.stderrTail).toEqual(['to stderr']);
    expect(seen).toContain('to stderr');
    expect(r.timedOut).toBe(false);
    expect(await countManaged(engine!, run)).toBe(0);
  });

  it('kills a container at its timeout and reports it', async () => {
    const r = await engine!.run({ image: tag, labels, cmd: ['sleep', '30'], timeoutMs: 1500 });
    expect(r.timedOut).toBe(true);
    expect(r.durationMs).toBeLessThan(10_000);
    expect(await countManaged(engine!, run)).toBe(0);
  });

  it('enforces a memory limit (OOMKilled)', async () => {
    const r = await engine!.run({
      image: tag,
      labels,
      memoryBytes: 48 * 1024 * 1024,
      cmd: ['python', '-c', 'x = bytearray(400 * 1024 * 1024); print(len(x))'],
    });
    expect(r.oomKilled).toBe(true);
    expect(r.exitCode).toBe(137);
  });

  it('mounts read-only volumes', async () => {
    const r = await engine!.run({
      image: tag,
      labels,
      mounts: [
        {
          type: 'bind',
          source: `${process.cwd()}/fixtures/engine/hello/data`,
          target: '/weights',
          readOnly: true,
        },
      ],
      cmd: ['sh', '-c', 'cat /weights/keep.txt && touch /weights/new 2>/dev/null || echo read-only'],
    });
    expect(r.stdoutTail).toEqual(['keep', 'read-only']);
  });

  it('a failing build rejects with the failing step and its output (classic builder)', async () => {
    const err = await engine!
      .build({
        context: 'fixtures/engine/broken',
        tags: [`${tag}-broken`],
        buildArgs: { BASE: LOCAL_PYTHON_IMAGE },
        labels,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    const e = err as BuildFailedError;
    expect(e.step).toMatch(/^Step 4\/\d+ : RUN echo "about to fail: missing-package-xyz" && exit 3/);
    expect(e.details).toContain('about to fail: missing-package-xyz');
    expect(e.message).toMatch(/non-zero code: 3/);
  });

  it('a failing build rejects with the failing step and its output (BuildKit)', async () => {
    const err = await engine!
      .build({
        context: 'fixtures/engine/broken',
        tags: [`${tag}-broken`],
        buildArgs: { BASE: LOCAL_PYTHON_IMAGE },
        labels,
        buildkit: true,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    const e = err as BuildFailedError;
    expect(e.step).toMatch(/RUN echo "about to fail: missing-package-xyz" && exit 3/);
    expect(e.details.join('\n')).toMatch(/about to fail: missing-package-xyz/);
    expect(e.message).toMatch(/exit code: 3/);
  });

  it('builds with BuildKit', async () => {
    const r = await engine!.build({
      context: 'fixtures/engine/hello',
      tags: [`${tag}-bk`],
      buildArgs: { BASE: LOCAL_PYTHON_IMAGE, GREETING: 'hallo' },
      labels,
      buildkit: true,
    });
    expect(r.imageId).toMatch(/^sha256:/);
    const out = await engine!.run({ image: `${tag}-bk`, labels });
    expect(out.stdoutTail[0]).toBe('hallo from mlship fixture');
  });

  it('tags and pushes to a real registry; a second push skips every layer', async () => {
    const target = `127.0.0.1:5000/mlship-test/hello:${run}`;
    await engine!.tag(tag, '127.0.0.1:5000/mlship-test/hello', run);
    const statuses = new Set<string>();
    const first = await engine!.push(target, undefined, (p) => statuses.add(p.status));
    expect(first.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(first.layersPushed + first.layersSkipped).toBeGreaterThan(0);
    const second = await engine!.push(target, undefined);
    expect(second.digest).toBe(first.digest);
    expect(second.layersPushed).toBe(0);
    expect(second.layersSkipped).toBeGreaterThan(0);
  });

  it('pushes with registry credentials; wrong or missing credentials are RegistryAuthError', async () => {
    const registry = await startAuthRegistry(5011);
    try {
      const repo = `${registry.host}/mlship-test/hello`;
      await engine!.tag(tag, repo, run);
      const target = `${repo}:${run}`;
      const noAuth = await engine!.push(target, undefined).catch((e: unknown) => e);
      expect(noAuth).toBeInstanceOf(RegistryAuthError);
      expect((noAuth as RegistryAuthError).exitCode).toBe(3);
      const wrong = await engine!
        .push(target, { username: registry.username, password: 'wrong', serveraddress: registry.host })
        .catch((e: unknown) => e);
      expect(wrong).toBeInstanceOf(RegistryAuthError);
      expect((wrong as Error).message).not.toContain(registry.password);
      const ok = await engine!.push(target, {
        username: registry.username,
        password: registry.password,
        serveraddress: registry.host,
      });
      expect(ok.digest).toMatch(/^sha256:/);
    } finally {
      await registry.stop();
    }
  });

  it('builds a chosen target stage of a multi-stage Dockerfile', async () => {
    await engine!.build({
      context: 'fixtures/engine/multistage',
      tags: [`${tag}-final`],
      buildArgs: { BASE: LOCAL_PYTHON_IMAGE },
      labels,
      target: 'builder',
    });
    const r = await engine!.run({
      image: `${tag}-final`,
      labels,
      cmd: ['sh', '-c', 'cat /artifact.txt; test -e /final.txt || echo no-final'],
    });
    expect(r.stdoutTail).toEqual(['built', 'no-final']);
  });

  it('unknown images are typed errors', async () => {
    await expect(engine!.inspectImage('mlship-test/does-not-exist:nope')).rejects.toBeInstanceOf(
      ImageNotFoundError,
    );
    await expect(engine!.run({ image: 'mlship-test/does-not-exist:nope', labels })).rejects.toBeInstanceOf(
      ImageNotFoundError,
    );
  });

  it('registered cleanups remove started containers; removeByLabel finds the rest', async () => {
    const cleanup = new CleanupRegistry();
    const e2 = await DockerEngine.connect(undefined, cleanup);
    await e2.start({ image: tag, labels, cmd: ['sleep', '60'] });
    await e2.start({ image: tag, labels, cmd: ['sleep', '60'] });
    expect(cleanup.size).toBe(2);
    expect(await countManaged(e2, run)).toBe(2);
    await cleanup.runAll(5000);
    expect(await countManaged(e2, run)).toBe(0);
    await e2.start({ image: tag, labels, cmd: ['sleep', '60'] });
    expect(await e2.removeByLabel(RUN_LABEL, run)).toBe(1);
    expect(await countManaged(e2, run)).toBe(0);
  });

  it('an unreachable engine is DockerUnavailable with a hint (exit code 3)', async () => {
    const e = await DockerEngine.connect(
      resolveEngineEndpoint({
        env: { DOCKER_HOST: 'unix:///tmp/no-such-docker.sock' },
        homedir: '/nope',
        exists: () => false,
        readFile: () => undefined,
      }),
    );
    const err = await e.ping(2000).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(DockerUnavailableError);
    expect((err as DockerUnavailableError).exitCode).toBe(3);
    expect((err as DockerUnavailableError).message).toMatch(/unix:\/\/\/tmp\/no-such-docker\.sock/);
  });
});
