// `mlship compose up|down|ps`: checks the host ports the stack publishes before anything
// starts, runs the generated stack with docker compose, watches every service reach healthy,
// smoke-tests each model through the proxy, and on failure shows the failing service's state
// and last log lines and stops what it started (or, --keep-on-failure, says what is left).

import { readFile } from 'node:fs/promises';
import type { S3Target } from '../../adapters/aws/s3.js';
import type { ComposeCli, ComposeProject, ComposeRunner } from '../../adapters/compose.js';
import type { ContainerState, Engine } from '../../adapters/docker/engine.js';
import type { HostPorts } from '../../adapters/host-ports.js';
import { tagMajor } from '../../config/image-ref.js';
import { deadline } from '../../io/deadline.js';
import { EngineError, MlshipError, OperationFailedError } from '../../io/errors.js';
import type { TaskRunner } from '../../io/progress.js';
import { anyKey, keysFile } from '../keys/keys.js';
import { serviceExample } from './example.js';
import { type ComposeGenerateResult, parseEnv } from './generate.js';
import { checkPublishedPorts, type PortDeps, PROJECT_LABEL, SERVICE_LABEL } from './ports.js';
import { ensureLocalQueues, type JobSmokeResult, type LocalJobApis, smokeJobs } from './queues.js';

export { PROJECT_LABEL, SERVICE_LABEL } from './ports.js';

export interface ComposeRunDeps {
  engine: Pick<Engine, 'listByLabel' | 'run' | 'volumeExists' | 'listPublishing'>;
  /** Who holds a host port (the pre-flight). */
  host: HostPorts;
  ensureBucket(target: S3Target): Promise<boolean>;
  /** The local queue server and object storage, for a stack with `queue:` (its workers' jobs). */
  jobApis?(endpoints: { sqs: string; s3: string; bucket: string; secret: string }): Promise<LocalJobApis>;
  compose: ComposeRunner;
  cli: ComposeCli;
  tasks: TaskRunner;
  fetch: typeof fetch;
  log(line: string): void;
  sleep(ms: number): Promise<void>;
  now(): number;
}

export interface ServiceStatus {
  service: string;
  state: string;
  health: string | undefined;
  url?: string;
}

export interface SmokeResult {
  service: string;
  url: string;
  status: number;
  ms: number;
  prediction?: unknown;
  error?: string;
}

export interface UpResult {
  project: string;
  composeFile: string;
  compose: string;
  services: ServiceStatus[];
  smoke: SmokeResult[];
  secondsToHealthy: number;
  /** The compose profile that ran ("gpu" or "cpu"), for stacks with GPU services. */
  profile?: 'gpu' | 'cpu';
  proxyUrl?: string;
  storage?: { endpoint: string; bucket: string; created: boolean };
  /** The workers' queues, and the three-item job each ran end to end. */
  queues?: { endpoint: string; names: string[]; smoke: JobSmokeResult[] };
}

function projectOf(cli: ComposeCli, gen: ComposeGenerateResult): ComposeProject {
  return { cli, name: gen.project.name, file: gen.composeFile, dir: gen.outDir };
}

/** Healthy, or running when the service has no health check at all (user compose files). */
function ready(c: ContainerState | undefined): boolean {
  return c?.health === 'healthy' || (c?.health === undefined && c?.state === 'running');
}

function tail(text: string, n: number): string[] {
  return text.split('\n').filter(Boolean).slice(-n);
}

async function serviceStates(deps: ComposeRunDeps, project: string): Promise<Map<string, ContainerState>> {
  const list = await deps.engine.listByLabel(PROJECT_LABEL, project);
  return new Map(list.map((c) => [c.labels[SERVICE_LABEL] ?? c.name, c]));
}

/** A PostgreSQL data directory made by one major version does not start under another: check first. */
async function checkDatabaseVolume(deps: ComposeRunDeps, gen: ComposeGenerateResult): Promise<void> {
  const db = gen.project.database;
  if (!db) return;
  const volume = `${gen.project.name}_pgdata`;
  if (!(await deps.engine.volumeExists(volume))) return;
  const r = await deps.engine.run({
    image: db.image,
    entrypoint: ['cat'],
    cmd: ['/data/PG_VERSION'],
    mounts: [{ type: 'volume', source: volume, target: '/data', readOnly: true }],
    labels: { 'dev.mlship.role': 'pg-version-check' },
    timeoutMs: 30_000,
  });
  const onDisk = r.stdoutTail[0]?.trim();
  const major = tagMajor(db.image);
  const tag = major === undefined ? undefined : String(major);
  if (onDisk && tag && onDisk !== tag) {
    throw new OperationFailedError(
      'DATABASE_VERSION_MISMATCH',
      `the volume ${volume} holds a PostgreSQL ${onDisk} data directory, but database.image is ${db.image} (PostgreSQL ${tag}), which cannot start on it`,
      {
        hint: `set database.image back to a PostgreSQL ${onDisk} tag, or dump the data (pg_dumpall), remove the volume with \`mlship compose down --volumes\`, and restore it under ${tag}`,
      },
    );
  }
}

export interface UpOptions {
  timeoutSeconds?: number;
  build: boolean;
  smoke: boolean;
  profile?: 'gpu' | 'cpu';
  /** After a failure, leave what was started (and say exactly what it is) instead of removing it. */
  keepOnFailure?: boolean;
  /** The stack file as the user named it, for fixes ("set proxy.port in mlship.yaml"). */
  configFile?: string;
  /** How the user stops this stack, for hints (default `mlship compose down`). */
  downCommand?: string;
  /**
   * Writes the stack files: called after the pre-flight, so a stack that cannot start leaves no
   * file behind. Without it, `gen` is already on disk (a user's compose file).
   */
  write?: () => Promise<ComposeGenerateResult>;
}

/** The services of the active profile (all of them when the stack has no profiles). */
function activeServices(gen: ComposeGenerateResult, profile: 'gpu' | 'cpu' | undefined): string[] {
  return Object.entries(gen.stack.compose.services)
    .filter(([, s]) => !s.profiles || (profile !== undefined && s.profiles.includes(profile)))
    .map(([name]) => name);
}

/**
 * The pre-flight of `up`, with nothing written, built or started yet: every host port the
 * stack publishes is free. The CLI runs it before it looks for docker compose (a second or
 * more for the Python v1), so a taken port is reported at once; composeUp runs it again.
 */
export async function preflightUp(
  deps: PortDeps,
  planned: ComposeGenerateResult,
  options: Pick<UpOptions, 'profile' | 'configFile'>,
): Promise<void> {
  const profile = planned.stack.profiles.length ? (options.profile ?? 'cpu') : undefined;
  await checkPublishedPorts(
    deps,
    planned,
    activeServices(planned, profile),
    options.configFile ?? 'mlship.yaml',
  );
}

export async function composeUp(
  deps: ComposeRunDeps,
  planned: ComposeGenerateResult,
  options: UpOptions,
): Promise<UpResult> {
  const profile = planned.stack.profiles.length ? (options.profile ?? 'cpu') : undefined;
  const services = activeServices(planned, profile);
  await preflightUp(deps, planned, options);
  const gen = options.write ? await options.write() : planned;
  await checkDatabaseVolume(deps, gen);
  const project = projectOf(deps.cli, gen);
  const profileArgs = profile ? ['--profile', profile] : [];
  if (options.build) {
    deps.log(`building images with ${deps.cli.argv.join(' ')} ${deps.cli.version}`);
    const b = await deps.compose(project, [...profileArgs, 'build'], { timeoutMs: 60 * 60_000 });
    if (b.exitCode !== 0) {
      throw new OperationFailedError('COMPOSE_BUILD_FAILED', 'building the stack images failed', {
        details: tail(`${b.stdout}\n${b.stderr}`, 40),
        hint: 'the build output above says which step failed',
      });
    }
  }
  const before = await deps.engine.listByLabel(PROJECT_LABEL, gen.project.name);
  try {
    const started = await startAndWatch(deps, gen, services, profileArgs, options);
    const storage = await ensureStorage(deps, gen);
    const queues = await localQueues(deps, gen, storage, options.smoke);
    const proxyUrl = gen.project.proxy?.port ? `http://127.0.0.1:${gen.project.proxy.port}` : undefined;
    const smoke = options.smoke && proxyUrl ? await smokeAll(deps, gen, proxyUrl) : [];
    return {
      project: gen.project.name,
      composeFile: gen.composeFile,
      compose: `${deps.cli.argv.join(' ')} ${deps.cli.version}`,
      services: services.map((s) => ({
        service: s,
        state: started.latest.get(s)?.state ?? 'unknown',
        health: started.latest.get(s)?.health,
        ...urlOf(gen.project, s, proxyUrl),
      })),
      smoke,
      secondsToHealthy: started.secondsToHealthy,
      ...(profile ? { profile } : {}),
      ...(proxyUrl ? { proxyUrl } : {}),
      ...(storage ? { storage } : {}),
      ...(queues ? { queues } : {}),
    };
  } catch (e) {
    throw await afterFailure(deps, gen, e, before.length > 0, options);
  }
}

/** What the one poller last saw, and the first failure it found. */
interface Watched {
  latest: Map<string, ContainerState>;
  failure?: { service: string; why: string };
}

/** The first failure in one look at the services: exited, unhealthy, or past the deadline. */
function firstFailure(
  latest: Map<string, ContainerState>,
  services: string[],
  pastDeadline: boolean,
  timeoutMs: number,
): Watched['failure'] {
  for (const s of services) {
    const c = latest.get(s);
    if (c && (c.state === 'exited' || c.state === 'dead')) return { service: s, why: `exited (${c.state})` };
    if (c?.health === 'unhealthy') return { service: s, why: 'unhealthy' };
  }
  if (!pastDeadline) return undefined;
  const pending = services.find((s) => !ready(latest.get(s)))!;
  return { service: pending, why: `not healthy after ${Math.round(timeoutMs / 1000)} s` };
}

/** Looks at every service each 500 ms until all are ready or one failed. */
async function pollUntilReady(
  deps: ComposeRunDeps,
  gen: ComposeGenerateResult,
  services: string[],
  w: Watched,
  deadline: number,
  timeoutMs: number,
): Promise<void> {
  while (!w.failure) {
    w.latest = await serviceStates(deps, gen.project.name);
    if (services.every((s) => ready(w.latest.get(s)))) return;
    w.failure = firstFailure(w.latest, services, deps.now() > deadline, timeoutMs);
    if (!w.failure) await deps.sleep(500);
  }
}

/** One progress line per service, following what the poller saw. */
function progressTask(deps: ComposeRunDeps, s: string, w: Watched) {
  return {
    title: `${s}: starting`,
    run: async (control: { title(t: string): void }) => {
      let last = '';
      for (;;) {
        const c = w.latest.get(s);
        const state = c ? (c.health ? `${c.state}, ${c.health}` : c.state) : 'created';
        if (state !== last) {
          control.title(`${s}: ${state}`);
          last = state;
        }
        if (ready(c)) return;
        if (w.failure)
          throw new Error(w.failure.service === s ? w.failure.why : 'stopped: another service failed');
        await deps.sleep(250);
      }
    },
  };
}

/** The failed service's state and last log lines, as the error to show. */
async function unhealthyError(
  deps: ComposeRunDeps,
  project: ReturnType<typeof projectOf>,
  f: NonNullable<Watched['failure']>,
  w: Watched,
): Promise<OperationFailedError> {
  const logs = await deps.compose(project, ['logs', '--no-color', '--tail', '30', f.service]);
  const c = w.latest.get(f.service);
  return new OperationFailedError('COMPOSE_UNHEALTHY', `service ${f.service} ${f.why}`, {
    details: [
      `state: ${c?.state ?? 'not created'}${c?.health ? ` (${c.health})` : ''}`,
      'last log lines:',
      ...tail(logs.stdout || logs.stderr, 30),
    ],
    hint: `\`mlship compose logs ${f.service}\` shows more`,
  });
}

/** `up -d`, then every service watched until healthy; the first that fails fails the run. */
async function startAndWatch(
  deps: ComposeRunDeps,
  gen: ComposeGenerateResult,
  services: string[],
  profileArgs: string[],
  options: UpOptions,
): Promise<{ latest: Map<string, ContainerState>; secondsToHealthy: number }> {
  const project = projectOf(deps.cli, gen);
  const t0 = deps.now();
  const up = await deps.compose(project, [...profileArgs, 'up', '-d', '--remove-orphans'], {
    timeoutMs: 30 * 60_000,
  });
  if (up.exitCode !== 0) {
    throw new OperationFailedError('COMPOSE_UP_FAILED', `${deps.cli.argv.join(' ')} up failed`, {
      details: tail(`${up.stdout}\n${up.stderr}`, 40),
      hint: 'a missing image or a port already in use are the usual causes; see the lines above',
    });
  }
  // Model services may take their whole start-up grace; give everyone that plus two minutes.
  const graces = Object.values(gen.stack.compose.services).map(
    (s) => Number.parseInt(s.healthcheck.start_period, 10) || 0,
  );
  const timeoutMs = (options.timeoutSeconds ?? Math.max(...graces, 0) + 120) * 1000;
  const w: Watched = { latest: new Map() };
  // One poller for all services; each progress task waits on its own service.
  const poll = pollUntilReady(deps, gen, services, w, t0 + timeoutMs, timeoutMs);
  const outcomes = await deps.tasks.run(
    services.map((s) => progressTask(deps, s, w)),
    { concurrent: true, exitOnError: false },
  );
  await poll;
  if (w.failure || outcomes.some((o) => !o.ok))
    throw await unhealthyError(deps, project, w.failure ?? { service: services[0]!, why: 'failed' }, w);
  return { latest: w.latest, secondsToHealthy: (deps.now() - t0) / 1000 };
}

/** With storage:, the configured bucket, created through the S3 API. */
async function ensureStorage(deps: ComposeRunDeps, gen: ComposeGenerateResult): Promise<UpResult['storage']> {
  if (!gen.project.storage) return undefined;
  const st = gen.project.storage;
  const endpoint = `http://127.0.0.1:${st.host_port}`;
  const env = await readFile(gen.envFile.path, 'utf8').catch(() => '');
  const secret = parseEnv(env).get('STORAGE_PASSWORD') ?? '';
  try {
    const created = await deps.ensureBucket({
      endpoint,
      accessKeyId: 'mlship',
      secretAccessKey: secret,
      bucket: st.bucket,
    });
    return { endpoint, bucket: st.bucket, created };
  } catch (e) {
    throw new OperationFailedError(
      'STORAGE_BUCKET_FAILED',
      `could not create bucket ${st.bucket} on ${endpoint}: ${(e as Error).message}`,
      {
        hint: 'the storage service is healthy but refused the S3 call: check storage.image and `mlship compose logs storage`',
      },
    );
  }
}

async function smokeAll(
  deps: ComposeRunDeps,
  gen: ComposeGenerateResult,
  proxyUrl: string,
): Promise<SmokeResult[]> {
  const smoke: SmokeResult[] = [];
  for (const model of Object.keys(gen.project.services)) {
    smoke.push(await smokeTest(deps, gen, model, proxyUrl));
  }
  const bad = smoke.filter((s) => s.error);
  if (bad.length) {
    throw new OperationFailedError(
      'COMPOSE_SMOKE_FAILED',
      `smoke test failed through the proxy for ${bad.map((b) => b.service).join(', ')}`,
      {
        details: bad.map((b) => `${b.service}: ${b.url} → ${b.status || 'no answer'}: ${b.error}`),
        hint: 'the services are healthy but do not answer through NGINX: check proxy/nginx.conf and `mlship compose logs proxy`',
      },
    );
  }
  return smoke;
}

/**
 * A failed `up` stops what it started (never volumes: data is deleted only with --volumes), or
 * with --keep-on-failure says exactly what is left; a stack that already had containers before
 * this `up` is left as it is. The original error comes back with that said.
 */
async function afterFailure(
  deps: ComposeRunDeps,
  gen: ComposeGenerateResult,
  error: unknown,
  hadContainers: boolean,
  options: UpOptions,
): Promise<unknown> {
  if (!(error instanceof MlshipError)) return error;
  const down = options.downCommand ?? 'mlship compose down';
  const name = gen.project.name;
  const left = await deps.engine.listByLabel(PROJECT_LABEL, name).catch(() => []);
  let lines: string[];
  let hint: string;
  if (options.keepOnFailure) {
    lines = [
      `left as it is (--keep-on-failure): ${left.length} container(s) of ${name}, and its network`,
      ...left.map((c) => `  ${c.name}: ${c.state}${c.health ? ` (${c.health})` : ''}`),
    ];
    hint = `remove them with \`${down}\``;
  } else if (hadContainers) {
    lines = [`the stack already had containers before this up: left as they are (${left.length} now)`];
    hint = `\`${down}\` stops it`;
  } else {
    const r = await deps.compose(projectOf(deps.cli, gen), ['down', '--remove-orphans'], {
      timeoutMs: 5 * 60_000,
    });
    const still = await deps.engine.listByLabel(PROJECT_LABEL, name).catch(() => left);
    lines =
      r.exitCode === 0 && still.length === 0
        ? [
            `stopped and removed what this up started: ${left.length} container(s) and the network of ${name}${gen.stack.compose.volumes ? '; its volumes are kept (data)' : ''}`,
          ]
        : [
            `could not remove everything this up started: ${still.map((c) => c.name).join(', ') || tail(r.stderr, 1)[0]}`,
          ];
    hint = still.length ? `remove it with \`${down}\`` : 'fix the cause above and run up again';
  }
  const options2 = {
    details: [...error.details, ...lines],
    hint: error.hint ? `${error.hint}; ${hint}` : hint,
    cause: error,
  };
  return error.kind === 'failed'
    ? new OperationFailedError(error.code, error.message, options2)
    : new MlshipError(error.code, error.kind, error.message, options2);
}

/**
 * The workers' queues, created once the queue server is healthy (the workers wait for them),
 * and with `smoke` a three-item job through each worker.
 */
async function localQueues(
  deps: ComposeRunDeps,
  gen: ComposeGenerateResult,
  storage: UpResult['storage'],
  smoke: boolean,
): Promise<UpResult['queues']> {
  const q = gen.project.queue;
  if (!q || !storage || !deps.jobApis) return undefined;
  const env = await readFile(gen.envFile.path, 'utf8').catch(() => '');
  const endpoint = `http://127.0.0.1:${q.host_port}`;
  const apis = await deps.jobApis({
    sqs: endpoint,
    s3: storage.endpoint,
    bucket: storage.bucket,
    secret: parseEnv(env).get('STORAGE_PASSWORD') ?? '',
  });
  try {
    const names = await ensureLocalQueues(apis, gen);
    const clock = { now: () => Date.now(), monotonic: deps.now, sleep: deps.sleep };
    const jobs = smoke ? await smokeJobs(apis, gen, clock, 120) : [];
    const bad = jobs.filter((j) => j.error || j.done !== j.items);
    if (bad.length) {
      throw new OperationFailedError(
        'COMPOSE_SMOKE_FAILED',
        `the smoke job failed for ${bad.map((b) => b.service).join(', ')}`,
        {
          details: bad.map(
            (b) => `${b.service}: ${b.done} of ${b.items} result(s)${b.error ? `: ${b.error}` : ''}`,
          ),
          hint: 'the worker is healthy but did not finish three items: `mlship compose logs <service>-worker` says why',
        },
      );
    }
    return { endpoint, names, smoke: jobs };
  } finally {
    apis.destroy();
  }
}

/** POSTs the service's own example through the proxy; falls back to /readyz when it has none. */
async function smokeTest(
  deps: ComposeRunDeps,
  gen: ComposeGenerateResult,
  service: string,
  proxyUrl: string,
): Promise<SmokeResult> {
  const svc = gen.project.services[service]!;
  const example = await serviceExample(gen, service);
  const url = `${proxyUrl}/api/${service}/${example === undefined ? 'readyz' : 'predict'}`;
  const t0 = deps.now();
  const limit = deadline(Math.max(30, svc.startup_grace_seconds) * 1000);
  try {
    const r = await deps.fetch(url, {
      method: example === undefined ? 'GET' : 'POST',
      // JSON asked for: an image model answers its image as base64 in JSON (issue 18).
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...(await apiKeyHeader(gen)),
      },
      ...(example === undefined ? {} : { body: JSON.stringify(example) }),
      signal: limit.signal,
    });
    const body = (await r.json().catch(() => undefined)) as { prediction?: unknown } | undefined;
    return {
      service,
      url,
      status: r.status,
      ms: deps.now() - t0,
      ...(body && 'prediction' in body ? { prediction: body.prediction } : {}),
      ...(r.ok ? {} : { error: `HTTP ${r.status}` }),
    };
  } catch (e) {
    return { service, url, status: 0, ms: deps.now() - t0, error: (e as Error).message };
  } finally {
    limit.done();
  }
}

/** With proxy.auth: api_key, the smoke test calls with the stack's own key. */
async function apiKeyHeader(gen: ComposeGenerateResult): Promise<Record<string, string>> {
  if (gen.project.proxy?.auth !== 'api_key') return {};
  const key = await anyKey(keysFile(gen.outDir));
  return key ? { authorization: `Bearer ${key}` } : {};
}

export async function composeDown(
  deps: Pick<ComposeRunDeps, 'engine' | 'compose' | 'cli'>,
  gen: Pick<ComposeGenerateResult, 'project' | 'composeFile' | 'outDir'>,
  options: { volumes: boolean },
): Promise<{ project: string; removedVolumes: boolean; leftover: number }> {
  const project = { cli: deps.cli, name: gen.project.name, file: gen.composeFile, dir: gen.outDir };
  const r = await deps.compose(
    project,
    ['down', '--remove-orphans', ...(options.volumes ? ['--volumes'] : [])],
    {
      timeoutMs: 5 * 60_000,
    },
  );
  if (r.exitCode !== 0) {
    throw new EngineError(`${deps.cli.argv.join(' ')} down failed`, {
      details: tail(`${r.stdout}\n${r.stderr}`, 20),
    });
  }
  const leftover = (await deps.engine.listByLabel(PROJECT_LABEL, gen.project.name)).length;
  if (leftover > 0) {
    throw new EngineError(`${leftover} container(s) of ${gen.project.name} are still there after down`, {
      hint: `remove them with \`docker rm -f $(docker ps -aq --filter label=${PROJECT_LABEL}=${gen.project.name})\``,
    });
  }
  return { project: gen.project.name, removedVolumes: options.volumes, leftover };
}

export async function composePs(
  deps: Pick<ComposeRunDeps, 'engine'>,
  gen: Pick<ComposeGenerateResult, 'project'>,
): Promise<ServiceStatus[]> {
  const states = await serviceStates(deps as ComposeRunDeps, gen.project.name);
  const proxyUrl = gen.project.proxy ? `http://127.0.0.1:${gen.project.proxy.port}` : undefined;
  return [...states].map(([service, c]) => ({
    service,
    state: c.state,
    health: c.health,
    ...urlOf(gen.project, service, proxyUrl),
  }));
}

/** The URL of a service through the proxy (a `-cpu` variant answers at its model's URL). */
function urlOf(
  project: ComposeGenerateResult['project'],
  service: string,
  proxyUrl: string | undefined,
): { url?: string } {
  if (!proxyUrl) return {};
  const base = service.endsWith('-cpu') && !project.services[service] ? service.slice(0, -4) : service;
  if (project.services[base]) return { url: `${proxyUrl}/api/${base}/` };
  if (base === 'proxy') return { url: `${proxyUrl}/` };
  return {};
}
