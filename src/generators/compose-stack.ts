// mlship.yaml (+ each wrapped service's manifest) → compose.yaml, built as a
// typed object and serialized by the caller with `yaml` (never string templates),
// plus the two files that are text by nature: nginx.conf and the front-end page.
// Pure and deterministic: secrets are referenced as ${VARS} that compose reads
// from the generated .env, never written here.

import path from 'node:path';
import type { Project } from '../config/schema.js';
import { DEFAULT_ADDON_IMAGES } from '../config/stack-schema.js';
import { PROXY_SYSCTLS } from '../config/sysctls.js';
import {
  type ComposeRollout,
  candidateName,
  candidateService,
  nginxReady,
  nginxRollout,
  type ProxyRouting,
  ROUTING_DIR,
  ROUTING_MOUNT,
  ROUTING_STATE_FILE,
  routingState,
} from './compose-rollout.js';
import { readComposeTemplateFile, renderComposeTemplate } from './compose-templates.js';
import { queueService, workerService } from './compose-workers.js';
import { generateMonitoring, imageVersion, PROXY_STATUS_PORT } from './monitoring-stack.js';
import { API_KEYS_DIR, contentSecurityPolicy, LOCAL_KEYS_DIR } from './proxy-protection.js';

// --- the subset of the compose spec that mlship writes ------------------------------

export interface ComposeHealthcheck {
  test: string[];
  interval: string;
  timeout: string;
  retries: number;
  start_period: string;
}

export interface ComposeService {
  image: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string>;
  /** Short syntax ("127.0.0.1:8080:80"): the long form's host_ip is not understood by compose v1. */
  ports?: string[];
  expose?: string[];
  volumes?: { type: 'bind' | 'volume'; source: string; target: string; read_only?: boolean }[];
  depends_on?: Record<string, { condition: 'service_healthy' | 'service_started' }>;
  healthcheck: ComposeHealthcheck;
  restart: 'unless-stopped' | 'on-failure';
  stop_grace_period?: string;
  profiles?: string[];
  networks?: { default: { aliases: string[] } };
  labels: Record<string, string>;
  /** A shadow candidate's low CPU weight (compose-rollout's SHADOW_CPU_SHARES). */
  cpu_shares?: number;
  /** A shadow candidate's idle cgroup parent, beside the engine's (the rollout's shadowCgroup). */
  cgroup_parent?: string;
  /** Kernel settings of the container's own namespaces (the proxy's: PROXY_SYSCTLS). */
  sysctls?: Record<string, string>;
  deploy?: {
    resources: {
      limits?: { cpus?: string; memory?: string };
      reservations?: {
        devices: { driver: 'nvidia'; count: number | 'all'; capabilities: string[][] | string[] }[];
      };
    };
  };
}

/** No top-level `name:` (compose v1 rejects it): the project name is passed with `-p`. */
export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, { labels: Record<string, string> }>;
}

/** What `mlship wrap` recorded about a service (its mlship-wrap.json), when it exists. */
export interface WrappedServiceInfo {
  runtime: 'python' | 'node';
  port: number;
  startupGraceSeconds: number;
  /** Read-only weights mount: source relative to the service directory. */
  weights?: { source: string; target: string };
}

export interface ComposeInput {
  project: Project;
  /** Directory of mlship.yaml (service paths are relative to it). */
  projectDir: string;
  /** Directory the compose file is written to. */
  outDir: string;
  wrapped: Record<string, WrappedServiceInfo | undefined>;
  /** Running rollouts (`mlship rollout`): each adds its candidate service and its NGINX routing. */
  rollouts?: ComposeRollout[];
  /**
   * Where the stack runs: locally (default), or in the cloud (deploy ecs/k8s) behind a load balancer, where the proxy
   * takes the client's address from X-Forwarded-For (locally that header is the client's to forge).
   */
  target?: 'local' | 'cloud';
  /**
   * Locally, how the proxy learns a rollout's share (default 'state': read per request with njs,
   * see templates/compose/route.js; 'reload': written into nginx.conf, for an NGINX without njs).
   */
  proxyRouting?: ProxyRouting;
}

export interface GeneratedStack {
  compose: ComposeFile;
  /** Other files, relative to outDir. */
  files: { path: string; content: string }[];
  /** Variables the .env file must define (generated secrets). */
  envVariables: string[];
  /** Service names in start order, and how to reach each model through the proxy. */
  endpoints: { service: string; path: string }[];
  /** ["gpu", "cpu"] when the stack has GPU services (see withGpuCpuProfiles), else []. */
  profiles: string[];
}

export const CPU_SUFFIX = '-cpu';

/**
 * A stack with GPU services also has to run on a machine without GPUs (a laptop, CI).
 * Compose cannot depend on a service whose profile is inactive, so everything that
 * depends on a model service gets a CPU variant: profile "gpu" holds the services as
 * they are, profile "cpu" holds `<name>-cpu` copies without GPU reservations that
 * answer to the same DNS name (a network alias) and depend on each other's copies.
 * Services that depend on no model (database, storage, front end) are in no profile.
 */
export function withGpuCpuProfiles(
  services: Record<string, ComposeService>,
  modelNames: string[],
): Record<string, ComposeService> {
  const variants = new Set(modelNames);
  // Anything that (transitively) depends on a model needs a variant too (the proxy).
  let grew = true;
  while (grew) {
    grew = false;
    for (const [name, svc] of Object.entries(services)) {
      if (!variants.has(name) && Object.keys(svc.depends_on ?? {}).some((d) => variants.has(d))) {
        variants.add(name);
        grew = true;
      }
    }
  }
  const out: Record<string, ComposeService> = {};
  for (const [name, svc] of Object.entries(services)) {
    if (!variants.has(name)) {
      out[name] = svc;
      continue;
    }
    out[name] = { ...svc, profiles: ['gpu'] };
    const { deploy, ...rest } = svc;
    const limits = deploy?.resources.limits;
    const depends = Object.fromEntries(
      Object.entries(svc.depends_on ?? {}).map(([d, c]) => [variants.has(d) ? `${d}${CPU_SUFFIX}` : d, c]),
    );
    out[`${name}${CPU_SUFFIX}`] = {
      ...rest,
      ...(Object.keys(depends).length ? { depends_on: depends } : {}),
      ...(limits ? { deploy: { resources: { limits } } } : {}),
      profiles: ['cpu'],
      networks: { default: { aliases: [name] } },
      labels: { ...svc.labels, 'dev.mlship.variant': 'cpu' },
    };
  }
  return out;
}

export const STACK_LABEL = 'dev.mlship.stack';

function seconds(n: number): string {
  return `${Math.round(n)}s`;
}

/** A readiness probe that works in slim images: the runtime itself fetches the URL. */
export function readinessTest(runtime: 'python' | 'node', port: number): string[] {
  const url = `http://127.0.0.1:${port}/readyz`;
  return runtime === 'node'
    ? ['CMD', 'node', '-e', `fetch('${url}').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`]
    : ['CMD', 'python', '-c', `import urllib.request; urllib.request.urlopen('${url}', timeout=3)`];
}

/** An HTTP check for NGINX-like images, which ship wget (alpine) or curl (Debian). */
export function httpTest(port: number, p: string): string[] {
  const url = `http://127.0.0.1:${port}${p}`;
  return ['CMD-SHELL', `wget -q -O /dev/null ${url} || curl -fsS -o /dev/null ${url}`];
}

function memoryOf(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const m = /^(\d+(?:\.\d+)?)(Mi|Gi|M|G)$/.exec(text);
  if (!m) return undefined;
  const mib = Number(m[1]) * (m[2]!.startsWith('G') ? 1024 : 1);
  return `${Math.round(mib)}m`;
}

function envName(service: string): string {
  return service.toUpperCase().replace(/-/g, '_');
}

function rel(from: string, to: string): string {
  const r = path.relative(from, to).split(path.sep).join('/');
  return r.startsWith('.') ? r : `./${r}`;
}

export function generateComposeStack(input: ComposeInput): GeneratedStack {
  const { project } = input;
  const labels = { 'dev.mlship.managed': 'true', [STACK_LABEL]: project.name };
  const services: Record<string, ComposeService> = {};
  const envVariables: string[] = [];
  const volumes: ComposeFile['volumes'] = {};
  const files: GeneratedStack['files'] = [];
  const modelNames = Object.keys(project.services);
  const stablePort = (n: string) => input.wrapped[n]?.port ?? project.services[n]!.port;

  for (const name of modelNames) services[name] = modelService(input, name, labels);
  // mlship rollout: each candidate is a second service with its stable service's settings.
  const rollouts = (input.rollouts ?? []).filter((r) => services[r.rollout.service]);
  for (const r of rollouts) {
    services[candidateName(r.rollout.service)] = candidateService(services[r.rollout.service]!, r, {
      project: project.name,
      projectDir: input.projectDir,
      outDir: input.outDir,
      stablePort,
      readinessTest,
    });
  }
  if (project.database) {
    envVariables.push('POSTGRES_PASSWORD');
    volumes.pgdata = { labels };
    services.database = databaseService(project.database, labels);
  }
  if (project.storage) {
    envVariables.push('STORAGE_PASSWORD');
    volumes.objects = { labels };
    services.storage = storageService(project.storage, labels);
  }
  if (project.frontend) {
    files.push(frontendPage(project, modelNames));
    services.frontend = frontendService(project.frontend, labels);
  }
  if (project.proxy) {
    files.push(...proxyFiles(input, files, rollouts, stablePort));
    const upstreams = [...modelNames, ...rollouts.map((r) => candidateName(r.rollout.service))];
    services.proxy = proxyService(project, upstreams, labels, input.target !== 'cloud');
  }
  // Queue workers: the model's own image and settings, another command (compose-workers.ts).
  const workerNames = project.queue ? addWorkers(project, services, modelNames, labels) : [];
  if (project.monitoring) {
    const mon = generateMonitoring({
      project,
      models: modelNames.map((n) => ({
        name: n,
        port: stablePort(n),
        version: imageVersion(services[n]!.image),
      })),
      labels,
    });
    Object.assign(services, mon.services);
    files.push(...mon.files);
    envVariables.push(...mon.envVariables);
    for (const v of mon.volumes) volumes[v] = { labels };
  }
  const hasGpu = modelNames.some((n) => project.services[n]!.gpu !== false);
  return {
    compose: {
      services: hasGpu
        ? withGpuCpuProfiles(services, [
            ...modelNames,
            ...workerNames,
            ...rollouts.map((r) => candidateName(r.rollout.service)),
          ])
        : services,
      ...(Object.keys(volumes).length ? { volumes } : {}),
    },
    files,
    envVariables,
    endpoints: modelNames.map((n) => ({ service: n, path: `/api/${n}/` })),
    profiles: hasGpu ? ['gpu', 'cpu'] : [],
  };
}

/** The proxy's nginx.conf and, locally, its routing state (route.js, state.json). */
function proxyFiles(
  input: ComposeInput,
  files: GeneratedStack['files'],
  rollouts: ComposeRollout[],
  stablePort: (name: string) => number,
): GeneratedStack['files'] {
  const { project } = input;
  const proxy = project.proxy!;
  const modelNames = Object.keys(project.services);
  const page = files.find((f) => f.path === 'frontend/index.html')?.content;
  const local = input.target !== 'cloud';
  const routing: ProxyRouting = local ? (input.proxyRouting ?? 'state') : 'reload';
  const conf = {
    path: 'proxy/nginx.conf',
    content: renderComposeTemplate('nginx.conf', {
      models: modelNames.map((n) => ({ name: n, port: stablePort(n) })),
      frontend: Boolean(project.frontend),
      clientMaxBodySize: proxy.client_max_body_size,
      timeoutSeconds: proxy.timeout_seconds,
      ...protectionOf(project, page),
      behindLoadBalancer: input.target === 'cloud',
      // With the routing state every model service is ready for a rollout (nothing to reload at start).
      ...(routing === 'state'
        ? {
            ready: modelNames.map((n) =>
              nginxReady(
                n,
                stablePort(n),
                proxy.shadow_timeout_ms,
                rollouts.find((r) => r.rollout.service === n),
              ),
            ),
          }
        : { rollouts: rollouts.map((r) => nginxRollout(r, stablePort(r.rollout.service))) }),
    }),
  };
  return local ? [conf, ...routingFiles(rollouts)] : [conf];
}

/** The queue and one worker per model service that has one; answers the workers' names. */
function addWorkers(
  project: ComposeInput['project'],
  services: Record<string, ComposeService>,
  modelNames: string[],
  labels: Record<string, string>,
): string[] {
  services.queue = queueService(project.queue!, labels);
  const names: string[] = [];
  for (const name of modelNames) {
    const worker = workerService(project, name, services[name]!, labels);
    if (worker) {
      services[worker.name] = worker.service;
      names.push(worker.name);
    }
  }
  return names;
}

/** A model service: its image (or build), the stack's URLs and credentials, readiness, limits, GPUs. */
function modelService(input: ComposeInput, name: string, labels: Record<string, string>): ComposeService {
  const { project } = input;
  const svc = project.services[name]!;
  const wrapped = input.wrapped[name];
  const runtime = wrapped?.runtime ?? svc.runtime;
  const port = wrapped?.port ?? svc.port;
  const grace = wrapped?.startupGraceSeconds ?? svc.startup_grace_seconds;
  const serviceDir = path.resolve(input.projectDir, svc.path ?? `services/${name}`);
  const dependsOn: ComposeService['depends_on'] = {};
  for (const dep of svc.depends_on ?? [])
    if (project.services[dep]) dependsOn[dep] = { condition: 'service_healthy' };
  if (project.database) dependsOn.database = { condition: 'service_healthy' };
  if (project.storage) dependsOn.storage = { condition: 'service_healthy' };
  return {
    image: svc.image ?? `${project.name}/${name}:dev`,
    ...(svc.image ? {} : { build: { context: rel(input.outDir, serviceDir) } }),
    environment: modelEnvironment(input, name, port),
    expose: [String(port)],
    ...(wrapped?.weights
      ? {
          volumes: [
            {
              type: 'bind' as const,
              source: rel(input.outDir, path.resolve(serviceDir, wrapped.weights.source)),
              target: wrapped.weights.target,
              read_only: true,
            },
          ],
        }
      : {}),
    ...(Object.keys(dependsOn).length ? { depends_on: dependsOn } : {}),
    healthcheck: {
      test: readinessTest(runtime, port),
      interval: '10s',
      timeout: '5s',
      retries: 3,
      // The model's start-up grace: failures before it do not count.
      start_period: seconds(grace),
    },
    restart: 'unless-stopped',
    // gunicorn drains in-flight requests on SIGTERM within its graceful timeout.
    stop_grace_period: '30s',
    labels: { ...labels, 'dev.mlship.role': 'model' },
    ...modelResources(svc),
  };
}

/** PORT, the user's env, the dependencies' URLs (pipelines), the database URL and storage settings. */
function modelEnvironment(input: ComposeInput, name: string, port: number): Record<string, string> {
  const { project } = input;
  const svc = project.services[name]!;
  const environment: Record<string, string> = { PORT: String(port), ...(svc.env ?? {}) };
  // Pipelines (detection → 2D pose → 3D pose): each service gets its dependencies' URLs.
  for (const dep of svc.depends_on ?? []) {
    const depSvc = project.services[dep];
    if (!depSvc) continue;
    const depPort = input.wrapped[dep]?.port ?? depSvc.port;
    environment[`${envName(dep)}_URL`] = `http://${dep}:${depPort}`;
  }
  if (project.database) {
    const db = project.database;
    environment.DATABASE_URL = `postgresql://${db.user}:\${POSTGRES_PASSWORD}@database:5432/${db.database}`;
  }
  if (project.storage) {
    environment.S3_ENDPOINT_URL = `http://storage:${project.storage.port}`;
    environment.S3_BUCKET = project.storage.bucket;
    environment.AWS_ACCESS_KEY_ID = 'mlship';
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose interpolation, resolved from .env by compose
    environment.AWS_SECRET_ACCESS_KEY = '${STORAGE_PASSWORD}';
  }
  return environment;
}

/** CPU and memory limits and GPU reservations, when the service sets any. */
function modelResources(svc: Project['services'][string]): Pick<ComposeService, 'deploy'> {
  const gpuCount = svc.gpu === true ? 1 : svc.gpu === false ? 0 : svc.gpu;
  const limits = {
    ...(svc.cpu ? { cpus: String(svc.cpu) } : {}),
    ...(memoryOf(svc.memory) ? { memory: memoryOf(svc.memory)! } : {}),
  };
  if (gpuCount <= 0 && !Object.keys(limits).length) return {};
  return {
    deploy: {
      resources: {
        ...(Object.keys(limits).length ? { limits } : {}),
        ...(gpuCount > 0
          ? {
              reservations: {
                devices: [{ driver: 'nvidia' as const, count: gpuCount, capabilities: ['gpu'] }],
              },
            }
          : {}),
      },
    },
  };
}

function databaseService(
  db: NonNullable<Project['database']>,
  labels: Record<string, string>,
): ComposeService {
  return {
    image: db.image,
    environment: {
      POSTGRES_USER: db.user,
      POSTGRES_DB: db.database,
      // From the generated, git-ignored .env; compose refuses to start without it.
      // biome-ignore lint/suspicious/noTemplateCurlyInString: compose interpolation, resolved from .env by compose
      POSTGRES_PASSWORD: '${POSTGRES_PASSWORD:?run mlship compose generate to create .env}',
    },
    volumes: [{ type: 'volume', source: 'pgdata', target: '/var/lib/postgresql/data' }],
    healthcheck: {
      test: ['CMD', 'pg_isready', '-U', db.user, '-d', db.database],
      interval: '5s',
      timeout: '5s',
      retries: 10,
      start_period: '30s',
    },
    restart: 'unless-stopped',
    labels: { ...labels, 'dev.mlship.role': 'database', 'dev.mlship.pg-image': db.image },
  };
}

function storageService(st: NonNullable<Project['storage']>, labels: Record<string, string>): ComposeService {
  const minio = st.image.startsWith('minio/');
  const command = st.command ?? (minio ? ['server', '/data', '--address', `:${st.port}`] : undefined);
  return {
    image: st.image,
    ...(command ? { command } : {}),
    environment: minio
      ? {
          MINIO_ROOT_USER: 'mlship',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: compose interpolation, resolved from .env by compose
          MINIO_ROOT_PASSWORD: '${STORAGE_PASSWORD:?run mlship compose generate to create .env}',
        }
      : {},
    expose: [String(st.port)],
    // Loopback only: reachable from this machine to upload data, not from the network.
    ports: [`127.0.0.1:${st.host_port}:${st.port}`],
    volumes: [{ type: 'volume', source: 'objects', target: '/data' }],
    healthcheck: {
      test: httpTest(st.port, st.health_path),
      interval: '5s',
      timeout: '5s',
      retries: 10,
      start_period: '20s',
    },
    restart: 'unless-stopped',
    labels: { ...labels, 'dev.mlship.role': 'storage' },
  };
}

/** One page for every model service of the stack (it builds its form from each one's schema). */
function frontendPage(project: Project, modelNames: string[]): GeneratedStack['files'][number] {
  const fe = project.frontend!;
  return {
    path: 'frontend/index.html',
    content: renderComposeTemplate('index.html', {
      title: fe.title ?? `${project.name}: try the model`,
      service: fe.service ?? modelNames[0] ?? '',
      services: modelNames,
      apiKey: project.proxy?.auth === 'api_key',
    }),
  };
}

function frontendService(
  fe: NonNullable<Project['frontend']>,
  labels: Record<string, string>,
): ComposeService {
  return {
    image: fe.image,
    volumes: [{ type: 'bind', source: './frontend', target: '/usr/share/nginx/html', read_only: true }],
    healthcheck: { test: httpTest(80, '/'), interval: '5s', timeout: '5s', retries: 5, start_period: '5s' },
    restart: 'unless-stopped',
    labels: { ...labels, 'dev.mlship.role': 'frontend' },
  };
}

/** The local proxy's routing folder: route.js (njs) and the rollouts' state it reads per request. */
function routingFiles(rollouts: ComposeRollout[]): GeneratedStack['files'] {
  return [
    { path: `${ROUTING_DIR}/route.js`, content: readComposeTemplateFile('route.js') },
    { path: `${ROUTING_DIR}/${ROUTING_STATE_FILE}`, content: routingState(rollouts.map((r) => r.rollout)) },
  ];
}

/** NGINX in front of the model services (and candidates) and the front end, on loopback. */
function proxyService(
  project: Project,
  upstreams: string[],
  labels: Record<string, string>,
  local: boolean,
): ComposeService {
  const px = project.proxy!;
  const dependsOn: NonNullable<ComposeService['depends_on']> = {};
  for (const n of upstreams) dependsOn[n] = { condition: 'service_healthy' };
  if (project.frontend) dependsOn.frontend = { condition: 'service_healthy' };
  return {
    image: px.image,
    // Loopback only: a first local stack should not be reachable from the network.
    ports: [`127.0.0.1:${px.port}:80`],
    volumes: [
      {
        type: 'bind',
        source: './proxy/nginx.conf',
        target: '/etc/nginx/conf.d/default.conf',
        read_only: true,
      },
      // mlship rollout's routing state: a folder, so that a state file replaced by a rename is seen.
      ...(local
        ? [{ type: 'bind' as const, source: `./${ROUTING_DIR}`, target: ROUTING_MOUNT, read_only: true }]
        : []),
      // The API keys: a folder (a file replaced by `mlship keys` stays visible), never baked on ECS.
      ...(px.auth === 'api_key'
        ? [{ type: 'bind' as const, source: `./${LOCAL_KEYS_DIR}`, target: API_KEYS_DIR, read_only: true }]
        : []),
    ],
    depends_on: dependsOn,
    healthcheck: {
      test: httpTest(80, '/healthz'),
      interval: '5s',
      timeout: '5s',
      retries: 5,
      start_period: '5s',
    },
    restart: 'unless-stopped',
    sysctls: { ...PROXY_SYSCTLS },
    labels: { ...labels, 'dev.mlship.role': 'proxy' },
  };
}

/** The proxy's protection settings for nginx.conf (rate limit, API keys, headers, status listener). */
function protectionOf(project: Project, page: string | undefined) {
  const px = project.proxy!;
  return {
    securityHeaders: px.security_headers,
    ...(px.security_headers && page ? { csp: contentSecurityPolicy(page) } : {}),
    ...(px.rate_limit
      ? { rateLimit: { rps: px.rate_limit.requests_per_second, burst: px.rate_limit.burst } }
      : {}),
    apiKeys: px.auth === 'api_key',
    ...(project.monitoring ? { statusPort: PROXY_STATUS_PORT } : {}),
  };
}

export { DEFAULT_ADDON_IMAGES };
