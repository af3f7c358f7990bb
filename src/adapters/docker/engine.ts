// The Docker engine adapter: the only module that talks to dockerode.
// Narrow interfaces per resource; vendor errors become typed mlship errors.

import type { Readable } from 'node:stream';
import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import { imageName, parseImageRef } from '../../config/image-ref.js';
import type { CleanupRegistry } from '../../io/cleanup.js';
import {
  DockerUnavailableError,
  EngineError,
  ImageNotFoundError,
  MlshipError,
  RegistryAuthError,
} from '../../io/errors.js';
import { listContext, packContext } from './build-context.js';
import { type BuildProgressEvent, BuildStreamParser } from './build-stream.js';
import { type EngineEndpoint, resolveEngineEndpoint } from './endpoint.js';

/** Every container, image and volume mlship creates carries this label. */
export const MANAGED_LABEL = 'dev.mlship.managed';
/** Which mlship run created it, so one run's leftovers can be removed precisely. */
export const RUN_LABEL = 'dev.mlship.run';

export interface EngineVersion {
  version: string;
  apiVersion: string;
  minApiVersion?: string;
  os: string;
  arch: string;
  kernel?: string;
}

export interface EngineInfo {
  runtimes: string[];
  defaultRuntime: string;
  cpus: number;
  memoryBytes: number;
  storageDriver: string;
  rootDir: string;
  serverVersion: string;
  /** cgroupfs or systemd (who makes the containers' cgroups). */
  cgroupDriver?: string;
  /** A rootless engine (its containers' cgroups are its user's). */
  rootless?: boolean;
}

export interface BuildOptions {
  /** Directory sent as the build context. */
  context: string;
  /** Dockerfile path relative to the context (default "Dockerfile"). */
  dockerfile?: string;
  tags: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  labels?: Record<string, string>;
  /** Use BuildKit (needed for cache mounts). */
  buildkit?: boolean;
  noCache?: boolean;
  onProgress?: (event: BuildProgressEvent) => void;
  signal?: AbortSignal;
}

export interface BuildResult {
  imageId: string;
  tags: string[];
  steps: string[];
  cachedSteps: number;
  contextBytes: number;
  contextFiles: number;
}

export interface MountSpec {
  type: 'bind' | 'volume' | 'tmpfs';
  source?: string;
  target: string;
  readOnly?: boolean;
}

export type GpuRequest = 'all' | number | string[];

export interface ContainerSpec {
  image: string;
  name?: string;
  cmd?: string[];
  entrypoint?: string[];
  env?: Record<string, string>;
  workdir?: string;
  user?: string;
  mounts?: MountSpec[];
  /** Hard memory limit in bytes; swap is capped at the same value so the limit is real. */
  memoryBytes?: number;
  /** CPU limit in cores (fractions allowed). */
  cpus?: number;
  /** Relative CPU weight under contention (docker's --cpu-shares; the default is 1024). */
  cpuShares?: number;
  gpus?: GpuRequest;
  labels?: Record<string, string>;
  /** A network name, or `container:<id>` to share another container's network namespace. */
  network?: string;
  /** Names the container answers to on `network` (besides its own). */
  networkAliases?: string[];
  /** `host:ip` entries for /etc/hosts (`host-gateway` is the host as containers reach it). */
  extraHosts?: string[];
  healthcheck?: HealthcheckSpec;
  /** Seconds between SIGTERM and SIGKILL when the container is stopped. */
  stopTimeoutSeconds?: number;
  /** Kernel settings of the container's own namespaces (docker's --sysctl). */
  sysctls?: Record<string, string>;
  /** Container port → host port (0 = any free port). */
  ports?: Record<number, number>;
  /** Remove automatically when it stops (default false for detached containers). */
  autoRemove?: boolean;
}

/** A container health check, as Docker (and ECS) run it. */
export interface HealthcheckSpec {
  /** ["CMD", ...] or ["CMD-SHELL", "..."]. */
  test: string[];
  intervalSeconds: number;
  timeoutSeconds: number;
  retries: number;
  startPeriodSeconds: number;
}

export interface RunOptions extends ContainerSpec {
  timeoutMs?: number;
  /** Called for every log line as it arrives. */
  onLog?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** How many trailing log lines to keep in the result (default 200). */
  tailLines?: number;
  /** Keep the container after it exits (default false: removed). */
  keep?: boolean;
  signal?: AbortSignal;
}

export interface RunResult {
  containerId: string;
  exitCode: number;
  oomKilled: boolean;
  timedOut: boolean;
  durationMs: number;
  stdoutTail: string[];
  stderrTail: string[];
}

export interface ImageSummary {
  id: string;
  tags: string[];
  sizeBytes: number;
  created: string;
  labels: Record<string, string>;
  env: string[];
  cmd: string[] | null;
  entrypoint: string[] | null;
  workdir: string;
  user: string;
  exposedPorts: string[];
  layers: string[];
  repoDigests: string[];
}

export interface HistoryEntry {
  id: string;
  createdBy: string;
  sizeBytes: number;
  created: number;
  comment: string;
}

export interface PushProgress {
  layer?: string;
  status: string;
  current?: number;
  total?: number;
}

export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

export interface PushResult {
  digest: string | undefined;
  /** Layers the registry already had (not uploaded again). */
  layersSkipped: number;
  layersPushed: number;
}

export interface ContainerState {
  id: string;
  name: string;
  image: string;
  state: string;
  health: string | undefined;
  labels: Record<string, string>;
}

export interface EngineClient {
  readonly endpoint: EngineEndpoint;
  ping(timeoutMs?: number): Promise<void>;
  version(): Promise<EngineVersion>;
  info(): Promise<EngineInfo>;
}

export interface ImageClient {
  build(options: BuildOptions): Promise<BuildResult>;
  inspectImage(ref: string): Promise<ImageSummary>;
  imageExists(ref: string): Promise<boolean>;
  history(ref: string): Promise<HistoryEntry[]>;
  tag(ref: string, repo: string, tag: string): Promise<void>;
  push(
    ref: string,
    auth: RegistryAuth | undefined,
    onProgress?: (p: PushProgress) => void,
  ): Promise<PushResult>;
  removeImage(ref: string, force?: boolean): Promise<void>;
  /** Pulls an image (with registry credentials, e.g. ECR's) unless it is on this machine. */
  pull(ref: string, auth?: RegistryAuth): Promise<{ pulled: boolean }>;
  /** `docker save` as a stream (a tar of config, manifest and layer tars). */
  saveImage(ref: string): Promise<Readable>;
}

export interface ContainerClient {
  volumeExists(name: string): Promise<boolean>;
  /** A user-defined bridge network (created unless it exists), labelled as mlship's. */
  ensureNetwork(name: string, labels: Record<string, string>): Promise<{ created: boolean }>;
  /** Removes the network; false when there was none. */
  removeNetwork(name: string): Promise<boolean>;
  run(options: RunOptions): Promise<RunResult>;
  start(spec: ContainerSpec): Promise<ContainerHandle>;
  listByLabel(label: string, value?: string): Promise<ContainerState[]>;
  /** Running containers that publish this host port (anyone's, not only mlship's). */
  listPublishing(port: number): Promise<ContainerState[]>;
  removeByLabel(label: string, value?: string): Promise<number>;
  /**
   * `docker cp` out of a container (running or exited): a tar stream of `path`, whose
   * entries are named from the path's basename; undefined when the path does not exist.
   */
  getArchive(containerId: string, path: string): Promise<Readable | undefined>;
  /**
   * `docker exec`: runs a command in a running container, its output streamed as it comes
   * (a multi-GB dump never sits in memory); resolves with the command's exit code.
   */
  exec(containerId: string, spec: ExecSpec): Promise<{ exitCode: number }>;
  /** A handle of a container this engine runs (found by listByLabel), to wait for it or read its logs. */
  container(id: string): ContainerHandle;
}

/** A command run inside a running container (`docker exec`). */
export interface ExecSpec {
  cmd: string[];
  env?: Record<string, string>;
  user?: string;
  /** Each chunk of standard output, in order; the next chunk waits for a returned promise. */
  onStdout?: (chunk: Buffer) => void | Promise<void>;
  onStderr?: (chunk: Buffer) => void;
}

/** What mlship reads of a container's state (from the engine's inspect answer). */
export interface ContainerInfo {
  running: boolean;
  /** created, running, exited, dead, … as the engine says. */
  status: string;
  exitCode: number;
  oomKilled: boolean;
  /** The engine's error starting it (e.g. an executable not found), if any. */
  error?: string;
  startedAt?: string;
  finishedAt?: string;
  /** starting, healthy or unhealthy, when the container has a health check. */
  health?: string;
  /** Output of the most recent health checks, newest last. */
  healthLog: { exitCode: number; output: string }[];
  /** Container port (`8080/tcp`) → host port, for published ports. */
  ports: Record<string, number>;
  mounts: { type: string; source: string; target: string; readOnly: boolean }[];
}

export interface ContainerHandle {
  readonly id: string;
  inspect(): Promise<ContainerInfo>;
  /** Host port bound to a container port. */
  hostPort(containerPort: number): Promise<number | undefined>;
  /** Streams log lines as they come, until the container's output ends. */
  followLogs(onLine: (line: string, stream: 'stdout' | 'stderr') => void): Promise<void>;
  logs(tail?: number): Promise<string>;
  stop(timeoutSeconds?: number): Promise<void>;
  kill(signal?: string): Promise<void>;
  wait(): Promise<{ exitCode: number }>;
  remove(): Promise<void>;
  stats(): Promise<{ memoryBytes: number; memoryPeakBytes?: number }>;
}

export type Engine = EngineClient & ImageClient & ContainerClient;

// ---------------------------------------------------------------------------

interface HttpishError {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string };
  reason?: string;
}

function engineMessage(e: unknown): string {
  const err = e as HttpishError & { json?: unknown };
  // The engine's own words first (JSON or plain-text body), then the transport's.
  const body =
    typeof err.json === 'string' ? err.json : (err.json as { message?: string } | undefined)?.message;
  return (body ?? err.message ?? err.reason ?? String(e)).trim();
}

function splitLines(): { push(chunk: Buffer): string[]; flush(): string[] } {
  let rest = '';
  return {
    push(chunk) {
      rest += chunk.toString('utf8');
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      return lines.map((l) => l.replace(/\r$/, ''));
    },
    flush() {
      const out = rest ? [rest] : [];
      rest = '';
      return out;
    },
  };
}

/** Reads a stream of newline-separated lines (the engine's JSON progress) to its end, line by line. */
function readLines(
  stream: NodeJS.ReadableStream,
  handle: (line: string) => void,
  translate: (e: Error) => Error,
): Promise<void> {
  const lines = splitLines();
  return new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      for (const l of lines.push(chunk)) handle(l);
    });
    stream.on('end', () => {
      for (const l of lines.flush()) handle(l);
      resolve();
    });
    stream.on('error', (e: Error) => reject(translate(e)));
  });
}

function pushTail(tail: string[], line: string, max: number): void {
  tail.push(line);
  if (tail.length > max) tail.splice(0, tail.length - max);
}

function deviceRequests(gpus: GpuRequest | undefined): Dockerode.DeviceRequest[] | undefined {
  if (gpus === undefined) return undefined;
  const base = { Driver: 'nvidia', Capabilities: [['gpu']] };
  if (gpus === 'all') return [{ ...base, Count: -1 }];
  if (typeof gpus === 'number') return [{ ...base, Count: gpus }];
  return [{ ...base, DeviceIDs: gpus }];
}

/** The create-container body for a spec; exported so tests can check what is sent. */
export function containerCreateOptions(spec: ContainerSpec): Dockerode.ContainerCreateOptions {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostPort: string; HostIp?: string }[]> = {};
  for (const [containerPort, hostPort] of Object.entries(spec.ports ?? {})) {
    exposed[`${containerPort}/tcp`] = {};
    bindings[`${containerPort}/tcp`] = [{ HostIp: '127.0.0.1', HostPort: hostPort ? String(hostPort) : '' }];
  }
  const requests = deviceRequests(spec.gpus);
  return {
    Image: spec.image,
    ...(spec.name ? { name: spec.name } : {}),
    ...(spec.cmd ? { Cmd: spec.cmd } : {}),
    ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
    ...(spec.workdir ? { WorkingDir: spec.workdir } : {}),
    ...(spec.user ? { User: spec.user } : {}),
    Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: { [MANAGED_LABEL]: 'true', ...(spec.labels ?? {}) },
    ExposedPorts: exposed,
    HostConfig: {
      AutoRemove: spec.autoRemove ?? false,
      PortBindings: bindings,
      Mounts: (spec.mounts ?? []).map((m) => ({
        Type: m.type,
        Target: m.target,
        Source: m.source ?? '',
        ReadOnly: m.readOnly ?? false,
      })),
      ...(spec.memoryBytes ? { Memory: spec.memoryBytes, MemorySwap: spec.memoryBytes } : {}),
      ...(spec.cpus ? { NanoCpus: Math.round(spec.cpus * 1e9) } : {}),
      ...(spec.cpuShares ? { CpuShares: spec.cpuShares } : {}),
      ...(requests ? { DeviceRequests: requests } : {}),
      ...(spec.network ? { NetworkMode: spec.network } : {}),
      ...(spec.extraHosts?.length ? { ExtraHosts: spec.extraHosts } : {}),
      ...(spec.sysctls ? { Sysctls: spec.sysctls } : {}),
    },
    ...(spec.stopTimeoutSeconds !== undefined ? { StopTimeout: spec.stopTimeoutSeconds } : {}),
    ...(spec.healthcheck
      ? {
          Healthcheck: {
            Test: spec.healthcheck.test,
            Interval: spec.healthcheck.intervalSeconds * 1e9,
            Timeout: spec.healthcheck.timeoutSeconds * 1e9,
            Retries: spec.healthcheck.retries,
            StartPeriod: spec.healthcheck.startPeriodSeconds * 1e9,
          },
        }
      : {}),
    ...(spec.network && spec.networkAliases?.length && !spec.network.startsWith('container:')
      ? { NetworkingConfig: { EndpointsConfig: { [spec.network]: { Aliases: spec.networkAliases } } } }
      : {}),
  };
}

export class DockerEngine implements Engine {
  /**
   * @param cleanup when given, every started container is registered for removal
   *   on SIGINT/SIGTERM until it is removed normally.
   */
  constructor(
    private readonly docker: Dockerode,
    readonly endpoint: EngineEndpoint,
    private readonly cleanup?: CleanupRegistry,
  ) {}

  /** Connects to the engine found by the discovery strategies (nothing is contacted yet). */
  static async connect(
    endpoint: EngineEndpoint = resolveEngineEndpoint(),
    cleanup?: CleanupRegistry,
  ): Promise<DockerEngine> {
    const { default: Docker } = await import('dockerode');
    const opts: Dockerode.DockerOptions = endpoint.socketPath
      ? { socketPath: endpoint.socketPath }
      : {
          host: endpoint.host,
          port: endpoint.port,
          protocol: endpoint.protocol,
          ...(endpoint.tls ?? {}),
        };
    return new DockerEngine(new Docker(opts), endpoint, cleanup);
  }

  /** Turns a transport or API error into a typed error. */
  private translate(e: unknown, context: string): MlshipError {
    if (e instanceof MlshipError) return e;
    const err = e as HttpishError;
    const code = err.code ?? '';
    if (['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT', 'EPIPE'].includes(code)) {
      return new DockerUnavailableError(this.endpoint.address, `${code} (${this.endpoint.source})`);
    }
    if (code === 'EACCES') {
      return new DockerUnavailableError(
        this.endpoint.address,
        'permission denied on the socket',
        'add your user to the docker group (`sudo usermod -aG docker $USER`, then log in again) or use rootless Docker',
      );
    }
    return new EngineError(`${context}: ${engineMessage(e)}`, { cause: e });
  }

  private async call<T>(context: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.translate(e, context);
    }
  }

  async ping(timeoutMs = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.docker.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })),
            timeoutMs,
          );
        }),
      ]);
    } catch (e) {
      throw this.translate(e, 'ping');
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  async version(): Promise<EngineVersion> {
    const v = await this.call('version', () => this.docker.version());
    return {
      version: v.Version,
      apiVersion: v.ApiVersion,
      minApiVersion: v.MinAPIVersion,
      os: v.Os,
      arch: v.Arch,
      kernel: v.KernelVersion,
    };
  }

  async info(): Promise<EngineInfo> {
    const i = await this.call('info', () => this.docker.info());
    return {
      runtimes: Object.keys(i.Runtimes ?? {}),
      defaultRuntime: i.DefaultRuntime ?? 'runc',
      cpus: i.NCPU,
      memoryBytes: i.MemTotal,
      storageDriver: i.Driver,
      rootDir: i.DockerRootDir,
      serverVersion: i.ServerVersion,
      ...(i.CgroupDriver ? { cgroupDriver: i.CgroupDriver } : {}),
      ...((i.SecurityOptions ?? []).some((o: string) => o.split(',').includes('name=rootless'))
        ? { rootless: true }
        : {}),
    };
  }

  // -- images ---------------------------------------------------------------

  async build(options: BuildOptions): Promise<BuildResult> {
    const dockerfile = options.dockerfile ?? 'Dockerfile';
    const entries = await listContext(options.context, dockerfile);
    const contextBytes = entries.reduce((n, e) => n + e.size, 0);
    const tarStream = packContext(options.context, entries);
    const buildOpts: Record<string, unknown> = {
      t: options.tags,
      dockerfile,
      buildargs: options.buildArgs ?? {},
      labels: { [MANAGED_LABEL]: 'true', ...(options.labels ?? {}) },
      rm: true,
      forcerm: true,
      ...(options.target ? { target: options.target } : {}),
      ...(options.noCache ? { nocache: true } : {}),
      ...(options.buildkit ? { version: '2' } : {}),
      ...(options.signal ? { abortSignal: options.signal } : {}),
    };
    const stream = (await this.call('build', () =>
      this.docker.buildImage(
        tarStream as unknown as NodeJS.ReadableStream,
        buildOpts as Dockerode.ImageBuildOptions,
      ),
    )) as NodeJS.ReadableStream;
    const parser = new BuildStreamParser(options.onProgress);
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => parser.write(chunk));
      stream.on('end', () => resolve());
      stream.on('error', (e) => reject(this.translate(e, 'build')));
    });
    const parsed = parser.end();
    return {
      imageId: parsed.imageId!,
      tags: options.tags,
      steps: parsed.steps,
      cachedSteps: parsed.cachedSteps,
      contextBytes,
      contextFiles: entries.filter((e) => e.type === 'file').length,
    };
  }

  async inspectImage(ref: string): Promise<ImageSummary> {
    try {
      const i = await this.docker.getImage(ref).inspect();
      return {
        id: i.Id,
        tags: i.RepoTags ?? [],
        sizeBytes: i.Size,
        created: i.Created,
        labels: i.Config?.Labels ?? {},
        env: i.Config?.Env ?? [],
        cmd: (i.Config?.Cmd as string[] | null) ?? null,
        entrypoint: (i.Config?.Entrypoint as string[] | null) ?? null,
        workdir: i.Config?.WorkingDir ?? '',
        user: i.Config?.User ?? '',
        exposedPorts: Object.keys(i.Config?.ExposedPorts ?? {}),
        layers: i.RootFS?.Layers ?? [],
        repoDigests: i.RepoDigests ?? [],
      };
    } catch (e) {
      if ((e as HttpishError).statusCode === 404) throw new ImageNotFoundError(ref);
      throw this.translate(e, `inspect image ${ref}`);
    }
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.inspectImage(ref);
      return true;
    } catch (e) {
      if (e instanceof ImageNotFoundError) return false;
      throw e;
    }
  }

  async history(ref: string): Promise<HistoryEntry[]> {
    try {
      const h = (await this.docker.getImage(ref).history()) as {
        Id: string;
        CreatedBy: string;
        Size: number;
        Created: number;
        Comment: string;
      }[];
      return h.map((e) => ({
        id: e.Id,
        createdBy: e.CreatedBy,
        sizeBytes: e.Size,
        created: e.Created,
        comment: e.Comment,
      }));
    } catch (e) {
      if ((e as HttpishError).statusCode === 404) throw new ImageNotFoundError(ref);
      throw this.translate(e, `history of ${ref}`);
    }
  }

  async tag(ref: string, repo: string, tag: string): Promise<void> {
    try {
      await this.docker.getImage(ref).tag({ repo, tag });
    } catch (e) {
      if ((e as HttpishError).statusCode === 404) throw new ImageNotFoundError(ref);
      throw this.translate(e, `tag ${ref}`);
    }
  }

  async push(
    ref: string,
    auth: RegistryAuth | undefined,
    onProgress?: (p: PushProgress) => void,
  ): Promise<PushResult> {
    const image = parseImageRef(ref);
    const { registry } = image;
    const name = imageName(image);
    const tag = image.tag ?? 'latest';
    const stream = (await this.call(`push ${ref}`, () =>
      this.docker.getImage(name).push({ tag, ...(auth ? { authconfig: auth } : {}) }),
    )) as NodeJS.ReadableStream;
    let digest: string | undefined;
    let failure: string | undefined;
    const skipped = new Set<string>();
    const pushed = new Set<string>();
    const handle = (line: string) => {
      if (!line.trim()) return;
      let msg: {
        status?: string;
        id?: string;
        error?: string;
        errorDetail?: { message?: string };
        aux?: { Digest?: string };
        progressDetail?: { current?: number; total?: number };
      };
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.error || msg.errorDetail) {
        failure ??= (msg.errorDetail?.message ?? msg.error ?? 'push failed').trim();
        return;
      }
      if (msg.aux?.Digest) digest = msg.aux.Digest;
      if (msg.id && msg.status === 'Layer already exists') skipped.add(msg.id);
      if (msg.id && msg.status === 'Pushed') pushed.add(msg.id);
      if (msg.status) {
        onProgress?.({
          status: msg.status,
          ...(msg.id ? { layer: msg.id } : {}),
          ...(msg.progressDetail?.total
            ? { current: msg.progressDetail.current, total: msg.progressDetail.total }
            : {}),
        });
      }
    };
    await readLines(stream, handle, (e) => this.translate(e, `push ${ref}`));
    if (failure) {
      if (/unauthorized|authentication required|denied|no basic auth credentials|403/i.test(failure)) {
        throw new RegistryAuthError(registry, failure);
      }
      throw new EngineError(`push ${ref} failed: ${failure}`);
    }
    return { digest, layersSkipped: skipped.size, layersPushed: pushed.size };
  }

  async removeImage(ref: string, force = false): Promise<void> {
    try {
      await this.docker.getImage(ref).remove({ force });
    } catch (e) {
      if ((e as HttpishError).statusCode === 404) return;
      throw this.translate(e, `remove image ${ref}`);
    }
  }

  async saveImage(ref: string): Promise<Readable> {
    try {
      return (await this.docker.getImage(ref).get()) as unknown as Readable;
    } catch (e) {
      if ((e as HttpishError).statusCode === 404) throw new ImageNotFoundError(ref);
      throw this.translate(e, `save ${ref}`);
    }
  }

  // -- containers -------------------------------------------------------------

  async start(spec: ContainerSpec): Promise<ContainerHandle> {
    const create = containerCreateOptions(spec);
    const container = await this.call(`create container from ${spec.image}`, async () => {
      try {
        return await this.docker.createContainer(create);
      } catch (e) {
        if ((e as HttpishError).statusCode === 404 && /image/i.test(engineMessage(e))) {
          throw new ImageNotFoundError(spec.image);
        }
        throw e;
      }
    });
    try {
      await container.start();
    } catch (e) {
      await container.remove({ force: true }).catch(() => undefined);
      throw this.translate(e, `start container from ${spec.image}`);
    }
    const unregister = this.cleanup?.add(`container ${container.id.slice(0, 12)}`, () =>
      container.remove({ force: true, v: true }).catch(() => undefined),
    );
    return new DockerContainerHandle(this.docker, container, (e, c) => this.translate(e, c), unregister);
  }

  async run(options: RunOptions): Promise<RunResult> {
    const tailLines = options.tailLines ?? 200;
    const t0 = performance.now();
    const handle = await this.start({ ...options, autoRemove: false });
    const stdoutTail: string[] = [];
    const stderrTail: string[] = [];
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      handle.kill('SIGKILL').catch(() => undefined);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const logsDone = handle.followLogs((line, stream) => {
        pushTail(stream === 'stdout' ? stdoutTail : stderrTail, line, tailLines);
        options.onLog?.(line, stream);
      });
      if (options.timeoutMs) {
        timer = setTimeout(() => {
          timedOut = true;
          handle.kill('SIGKILL').catch(() => undefined);
        }, options.timeoutMs);
      }
      const { exitCode } = await handle.wait();
      const durationMs = performance.now() - t0;
      await logsDone;
      const state = await handle.inspect();
      return {
        containerId: handle.id,
        exitCode,
        oomKilled: state.oomKilled,
        timedOut,
        durationMs,
        stdoutTail,
        stderrTail,
      };
    } finally {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (!options.keep) await handle.remove();
    }
  }

  async ensureNetwork(name: string, labels: Record<string, string>): Promise<{ created: boolean }> {
    const found = await this.call('list networks', () =>
      this.docker.listNetworks({ filters: { name: [name] } }),
    );
    if (found.some((n) => n.Name === name)) return { created: false };
    await this.call(`create network ${name}`, () =>
      this.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        Labels: { [MANAGED_LABEL]: 'true', ...labels },
      }),
    );
    return { created: true };
  }

  async removeNetwork(name: string): Promise<boolean> {
    try {
      await this.docker.getNetwork(name).remove();
      return true;
    } catch (e) {
      if ((e as HttpishError).statusCode === 404) return false;
      throw this.translate(e, `remove network ${name}`);
    }
  }

  async pull(ref: string, auth?: RegistryAuth): Promise<{ pulled: boolean }> {
    if (await this.imageExists(ref)) return { pulled: false };
    const stream = (await this.call(`pull ${ref}`, () =>
      this.docker.pull(ref, auth ? { authconfig: auth } : {}),
    )) as NodeJS.ReadableStream;
    let failure: string | undefined;
    const handle = (line: string) => {
      try {
        const msg = JSON.parse(line) as { error?: string; errorDetail?: { message?: string } };
        if (msg.error || msg.errorDetail) failure ??= (msg.errorDetail?.message ?? msg.error ?? '').trim();
      } catch {
        // a progress line that is not JSON: nothing to learn from it
      }
    };
    await readLines(stream, handle, (e) => this.translate(e, `pull ${ref}`));
    if (failure) {
      if (/unauthorized|authentication required|denied|403/i.test(failure))
        throw new RegistryAuthError(parseImageRef(ref).registry, failure);
      throw new EngineError(`pull ${ref} failed: ${failure}`);
    }
    return { pulled: true };
  }

  async volumeExists(name: string): Promise<boolean> {
    try {
      await this.docker.getVolume(name).inspect();
      return true;
    } catch (e) {
      if ((e as HttpishError).statusCode === 404) return false;
      throw this.translate(e, `inspect volume ${name}`);
    }
  }

  async listByLabel(label: string, value?: string): Promise<ContainerState[]> {
    const filter = value === undefined ? label : `${label}=${value}`;
    const list = await this.call('list containers', () =>
      this.docker.listContainers({ all: true, filters: { label: [filter] } }),
    );
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      image: c.Image,
      state: c.State,
      health: /\((healthy|unhealthy|health: starting)\)/.exec(c.Status)?.[1],
      labels: c.Labels,
    }));
  }

  async listPublishing(port: number): Promise<ContainerState[]> {
    const list = await this.call('list containers', () =>
      this.docker.listContainers({ filters: { publish: [String(port)] } }),
    );
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      image: c.Image,
      state: c.State,
      health: /\((healthy|unhealthy|health: starting)\)/.exec(c.Status)?.[1],
      labels: c.Labels,
    }));
  }

  async removeByLabel(label: string, value?: string): Promise<number> {
    const list = await this.listByLabel(label, value);
    await Promise.all(
      list.map((c) =>
        this.docker
          .getContainer(c.id)
          .remove({ force: true, v: true })
          .catch((e: HttpishError) => {
            // Already gone (auto-remove raced us) is the outcome we wanted.
            if (e.statusCode !== 404 && e.statusCode !== 409) throw this.translate(e, `remove ${c.id}`);
          }),
      ),
    );
    return list.length;
  }

  /**
   * `docker cp` out of a container (running or exited): a tar stream of `path`, whose
   * entries are named from the path's basename; undefined when the path does not exist.
   */
  async getArchive(containerId: string, path: string): Promise<Readable | undefined> {
    try {
      return (await this.docker.getContainer(containerId).getArchive({ path })) as unknown as Readable;
    } catch (e) {
      if ((e as HttpishError).statusCode === 404) return undefined;
      throw this.translate(e, `copy ${path} out of ${containerId.slice(0, 12)}`);
    }
  }

  container(id: string): ContainerHandle {
    return new DockerContainerHandle(this.docker, this.docker.getContainer(id), (e, c) =>
      this.translate(e, c),
    );
  }

  async exec(containerId: string, spec: ExecSpec): Promise<{ exitCode: number }> {
    const what = `exec ${spec.cmd[0]} in ${containerId.slice(0, 12)}`;
    const exec = await this.call(what, () =>
      this.docker.getContainer(containerId).exec({
        Cmd: spec.cmd,
        AttachStdout: true,
        AttachStderr: true,
        ...(spec.env ? { Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`) } : {}),
        ...(spec.user ? { User: spec.user } : {}),
      }),
    );
    const raw = (await this.call(what, () => exec.start({ hijack: true, stdin: false }))) as Readable;
    await demuxStream(raw, spec);
    const info = await this.call(what, () => exec.inspect());
    return { exitCode: info.ExitCode ?? -1 };
  }
}

/**
 * Splits the engine's multiplexed stream (8-byte frame headers) into stdout and stderr
 * chunks; a slow stdout consumer (a file being written) pauses the stream, so memory
 * stays bounded whatever the output's size.
 */
async function demuxStream(raw: Readable, spec: Pick<ExecSpec, 'onStdout' | 'onStderr'>): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of raw) {
    pending = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const body = pending.subarray(8, 8 + size);
      if (pending[0] === 2) spec.onStderr?.(body);
      else await spec.onStdout?.(body);
      pending = pending.subarray(8 + size);
    }
  }
}

/** The engine's inspect answer as mlship's own record (no dockerode type leaves this file). */
export function containerInfo(info: Dockerode.ContainerInspectInfo): ContainerInfo {
  const s = info.State;
  const health = (s as { Health?: { Status?: string; Log?: { ExitCode: number; Output: string }[] } }).Health;
  const ports: Record<string, number> = {};
  for (const [port, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
    const host = bindings?.[0]?.HostPort;
    if (host) ports[port] = Number(host);
  }
  return {
    running: Boolean(s?.Running),
    status: s?.Status ?? 'unknown',
    exitCode: s?.ExitCode ?? 0,
    oomKilled: Boolean(s?.OOMKilled),
    ...(s?.Error ? { error: s.Error } : {}),
    ...(s?.StartedAt && !s.StartedAt.startsWith('0001') ? { startedAt: s.StartedAt } : {}),
    ...(s?.FinishedAt && !s.FinishedAt.startsWith('0001') ? { finishedAt: s.FinishedAt } : {}),
    ...(health?.Status && health.Status !== 'none' ? { health: health.Status } : {}),
    healthLog: (health?.Log ?? []).map((l) => ({ exitCode: l.ExitCode, output: l.Output })),
    ports,
    mounts: (info.Mounts ?? []).map((m) => ({
      type: m.Type,
      source: m.Source,
      target: m.Destination,
      readOnly: !m.RW,
    })),
  };
}

class DockerContainerHandle implements ContainerHandle {
  readonly id: string;
  constructor(
    private readonly docker: Dockerode,
    private readonly container: Dockerode.Container,
    private readonly translate: (e: unknown, context: string) => MlshipError,
    private readonly unregister?: () => void,
  ) {
    this.id = container.id;
  }

  async inspect(): Promise<ContainerInfo> {
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await this.container.inspect();
    } catch (e) {
      throw this.translate(e, `inspect container ${this.id.slice(0, 12)}`);
    }
    return containerInfo(info);
  }

  async hostPort(containerPort: number): Promise<number | undefined> {
    return (await this.inspect()).ports[`${containerPort}/tcp`];
  }

  /** Streams demultiplexed log lines until the container's output ends. */
  async followLogs(onLine: (line: string, stream: 'stdout' | 'stderr') => void): Promise<void> {
    const raw = (await this.container.logs({
      follow: true,
      stdout: true,
      stderr: true,
    })) as unknown as NodeJS.ReadableStream;
    const out = new PassThrough();
    const err = new PassThrough();
    const outLines = splitLines();
    const errLines = splitLines();
    out.on('data', (c: Buffer) => {
      for (const l of outLines.push(c)) onLine(l, 'stdout');
    });
    err.on('data', (c: Buffer) => {
      for (const l of errLines.push(c)) onLine(l, 'stderr');
    });
    this.docker.modem.demuxStream(raw, out, err);
    await new Promise<void>((resolve) => {
      raw.on('end', resolve);
      raw.on('close', resolve);
      raw.on('error', () => resolve());
    });
    for (const l of outLines.flush()) onLine(l, 'stdout');
    for (const l of errLines.flush()) onLine(l, 'stderr');
  }

  async logs(tail = 200): Promise<string> {
    const buf = (await this.container.logs({
      stdout: true,
      stderr: true,
      tail,
      follow: false,
    })) as unknown as Buffer;
    return demuxBuffer(buf);
  }

  async stop(timeoutSeconds = 10): Promise<void> {
    try {
      await this.container.stop({ t: timeoutSeconds });
    } catch (e) {
      const status = (e as HttpishError).statusCode;
      if (status !== 304 && status !== 404) throw this.translate(e, `stop ${this.id}`);
    }
  }

  async kill(signal = 'SIGKILL'): Promise<void> {
    try {
      await this.container.kill({ signal });
    } catch (e) {
      const status = (e as HttpishError).statusCode;
      if (status !== 404 && status !== 409) throw this.translate(e, `kill ${this.id}`);
    }
  }

  async wait(): Promise<{ exitCode: number }> {
    try {
      const r = (await this.container.wait()) as { StatusCode: number };
      return { exitCode: r.StatusCode };
    } catch (e) {
      throw this.translate(e, `wait for container ${this.id.slice(0, 12)}`);
    }
  }

  async remove(): Promise<void> {
    try {
      await this.container.remove({ force: true, v: true });
      this.unregister?.();
    } catch (e) {
      const status = (e as HttpishError).statusCode;
      if (status === 404) this.unregister?.();
      if (status !== 404 && status !== 409) throw this.translate(e, `remove ${this.id}`);
    }
  }

  async stats(): Promise<{ memoryBytes: number; memoryPeakBytes?: number }> {
    const s = (await this.container.stats({ stream: false })) as {
      memory_stats?: { usage?: number; max_usage?: number };
    };
    return {
      memoryBytes: s.memory_stats?.usage ?? 0,
      ...(s.memory_stats?.max_usage ? { memoryPeakBytes: s.memory_stats.max_usage } : {}),
    };
  }
}

/** Demultiplexes a non-TTY log buffer (8-byte frame headers) into text. */
export function demuxBuffer(buf: Buffer): string {
  if (!Buffer.isBuffer(buf)) return String(buf);
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length) {
    const type = buf[i];
    const size = buf.readUInt32BE(i + 4);
    if (type === undefined || type > 2) return buf.toString('utf8'); // not multiplexed (TTY)
    out += buf.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  return out;
}
