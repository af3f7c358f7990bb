// `mlship serve`: build (when needed) and run a wrapped service locally, wait
// until it is ready, send it the example input and report the answer.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuildResult, ContainerHandle, Engine } from '../../adapters/docker/engine.js';
import { type Clock, realClock } from '../../io/clock.js';
import { deadline } from '../../io/deadline.js';
import { OperationFailedError, UsageError } from '../../io/errors.js';
import type { TaskRunner } from '../../io/progress.js';
import { requireManifest, type WrapManifest } from '../wrap/manifest.js';

export const SERVICE_LABEL = 'dev.mlship.service';
const RUN_LABEL = 'dev.mlship.run';

export interface ServeDeps {
  engine: Pick<Engine, 'build' | 'imageExists' | 'start'>;
  tasks: TaskRunner;
  /** Registers a cleanup (container removal on Ctrl-C); returns its unregister function. */
  onCleanup?: (name: string, fn: () => Promise<void>) => () => void;
  clock?: Clock;
}

export interface BuildServiceOptions {
  dir: string;
  image?: string;
  noCache?: boolean;
}

export interface ServeOptions extends BuildServiceOptions {
  /** Build even when the image exists (a cached build is quick). */
  build: boolean;
  /** Host port; 0 picks a free one. Default: the service's own port. */
  hostPort?: number;
  env?: Record<string, string>;
  /** `host:ip` entries for the container's /etc/hosts (`host-gateway`: this machine, e.g. a local S3). */
  extraHosts?: string[];
  /** Label value that identifies this run's containers (tests remove them by it). */
  runLabel?: string;
  /** How long to wait for /readyz beyond the service's start-up grace period. */
  extraWaitMs?: number;
}

export interface ServeResult {
  url: string;
  image: string;
  containerId: string;
  readyMs: number;
  example: unknown;
  prediction: unknown;
  built: boolean;
}

async function runTask<T>(
  tasks: TaskRunner,
  title: string,
  fn: (output: (line: string) => void, setTitle: (t: string) => void) => Promise<T>,
): Promise<T> {
  let value: T | undefined;
  const [outcome] = await tasks.run([
    {
      title,
      run: async (control) => {
        value = await fn(
          (line) => control.output(line),
          (t) => control.title(t),
        );
      },
    },
  ]);
  if (!outcome?.ok) throw outcome?.error ?? new Error(`${title} failed`);
  return value as T;
}

export async function buildService(
  options: BuildServiceOptions,
  deps: Pick<ServeDeps, 'engine' | 'tasks'>,
): Promise<BuildResult> {
  const manifest = await requireManifest(options.dir);
  const image = options.image ?? manifest.image;
  return runTask(deps.tasks, `build ${image}`, (output, setTitle) =>
    deps.engine.build({
      context: options.dir,
      tags: [image],
      labels: { [SERVICE_LABEL]: manifest.name },
      ...(options.noCache ? { noCache: true } : {}),
      onProgress: (e) => {
        if (e.step) setTitle(`build ${image}: ${e.step.slice(0, 80)}`);
        if (e.line) output(e.line);
      },
    }),
  );
}

/** Polls /readyz until it answers 200; fails early when the container stops. */
async function waitReady(
  handle: ContainerHandle,
  url: string,
  timeoutMs: number,
  clock: Clock,
): Promise<number> {
  const t0 = clock.monotonic();
  let last = 'no answer yet';
  for (let i = 0; ; i++) {
    const limit = deadline(2000);
    try {
      const res = await fetch(`${url}/readyz`, { signal: limit.signal });
      if (res.ok) return clock.monotonic() - t0;
      last = `${res.status} ${(await res.text()).slice(0, 300)}`;
    } catch (e) {
      last = (e as Error).message;
    } finally {
      limit.done();
    }
    if (i % 5 === 4) {
      const state = await handle.inspect();
      if (!state.running) {
        throw new OperationFailedError(
          'SERVICE_EXITED',
          `the service exited (code ${state.exitCode}) before it was ready`,
          {
            details: (await handle.logs(40)).trimEnd().split('\n'),
            hint: 'the log above says why; a missing weights file or a model that fails the warm-up are the usual causes',
          },
        );
      }
    }
    if (clock.monotonic() - t0 > timeoutMs) {
      throw new OperationFailedError(
        'SERVICE_NOT_READY',
        `the service was not ready after ${Math.round(timeoutMs / 1000)} s (${last})`,
        {
          details: (await handle.logs(40)).trimEnd().split('\n'),
          hint: 'raise startup_grace_seconds (--startup-grace) for slow-loading models',
        },
      );
    }
    await clock.sleep(200);
  }
}

function mountsFor(dir: string, manifest: WrapManifest) {
  if (manifest.weights.mode !== 'mount') return [];
  return [
    {
      type: 'bind' as const,
      source: path.resolve(dir, manifest.weights.source),
      target: manifest.weights.target,
      readOnly: true,
    },
  ];
}

export interface RunningService {
  handle: ContainerHandle;
  result: ServeResult;
  /** Unregisters the Ctrl-C cleanup (call before leaving the container running on purpose). */
  release(): void;
}

/** The service's container started with its port, mounts and labels; a taken port is a usage error. */
async function startContainer(
  options: ServeOptions,
  deps: ServeDeps,
  manifest: Awaited<ReturnType<typeof requireManifest>>,
  image: string,
  hostPort: number,
): Promise<ContainerHandle> {
  try {
    return await deps.engine.start({
      image,
      ports: { [manifest.port]: hostPort },
      mounts: mountsFor(options.dir, manifest),
      env: options.env ?? {},
      ...(options.extraHosts?.length ? { extraHosts: options.extraHosts } : {}),
      labels: {
        [SERVICE_LABEL]: manifest.name,
        ...(options.runLabel ? { [RUN_LABEL]: options.runLabel } : {}),
      },
    });
  } catch (e) {
    if (/port is already allocated|address already in use/i.test((e as Error).message)) {
      throw new UsageError(`host port ${hostPort} is already in use`, {
        hint: 'pass --port <another port>, or --port 0 for any free one',
        cause: e,
      });
    }
    throw e;
  }
}

/** The example through /predict: its prediction, or an image answer told by its type and size. */
async function predictExample(url: string, example: unknown): Promise<unknown> {
  const res = await fetch(`${url}/predict`, {
    method: 'POST',
    // JSON asked for: an image model answers its image as base64 in JSON (issue 18).
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(example),
  });
  const type = res.headers.get('content-type') ?? '';
  const body = type.startsWith('application/json')
    ? ((await res.json()) as { prediction?: unknown })
    : { prediction: `${type.split(';')[0]}, ${(await res.arrayBuffer()).byteLength} bytes` };
  if (!res.ok) {
    throw new OperationFailedError('EXAMPLE_FAILED', `the example input was answered with ${res.status}`, {
      details: [JSON.stringify(body).slice(0, 500)],
    });
  }
  return body.prediction;
}

export async function serve(options: ServeOptions, deps: ServeDeps): Promise<RunningService> {
  const manifest = await requireManifest(options.dir);
  const image = options.image ?? manifest.image;
  const clock = deps.clock ?? realClock;
  let built = false;
  if (options.build || !(await deps.engine.imageExists(image))) {
    await buildService({ dir: options.dir, image }, deps);
    built = true;
  }
  const example = JSON.parse(await readFile(path.join(options.dir, manifest.example), 'utf8')) as unknown;
  const hostPort = options.hostPort ?? manifest.port;
  const handle = await startContainer(options, deps, manifest, image, hostPort);
  const release =
    deps.onCleanup?.(`container ${handle.id.slice(0, 12)}`, () => handle.remove()) ?? (() => undefined);
  try {
    const url = `http://127.0.0.1:${await handle.hostPort(manifest.port)}`;
    const timeoutMs = manifest.startupGraceSeconds * 1000 + (options.extraWaitMs ?? 30_000);
    const readyMs = await runTask(deps.tasks, `wait for ${url}/readyz`, () =>
      waitReady(handle, url, timeoutMs, clock),
    );
    const prediction = await predictExample(url, example);
    return {
      handle,
      release,
      result: {
        url,
        image,
        containerId: handle.id,
        readyMs: Math.round(readyMs),
        example,
        prediction,
        built,
      },
    };
  } catch (e) {
    release();
    await handle.remove();
    throw e;
  }
}
