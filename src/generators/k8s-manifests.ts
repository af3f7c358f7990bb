// The stack model → Kubernetes manifests (Namespace, Deployments, Services, HPAs),
// as typed objects serialized by the caller. The sibling of ecs-task-definitions.ts:
// pure and deterministic; everything that cannot be carried over is a warning at
// the line of its field. Secrets are references to one Secret the user creates.

import { imageBaseName } from '../config/image-ref.js';
import {
  type HealthCheck,
  type Stack,
  type StackService,
  type StackWarning,
  serviceWarning,
} from '../config/stack-model.js';
import { K8S_SAFE_SYSCTLS, PROXY_SYSCTLS } from '../config/sysctls.js';

// --- the subset of the Kubernetes API that mlship emits -----------------------------

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
}

export interface Namespace {
  apiVersion: 'v1';
  kind: 'Namespace';
  metadata: ObjectMeta;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef: { name: string; key: string } };
}

export interface Probe {
  httpGet?: { path: string; port: number };
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
}

export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  ports?: { name: string; containerPort: number; protocol: 'TCP' | 'UDP' }[];
  env?: EnvVar[];
  resources: ResourceRequirements;
  volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; allowPrivilegeEscalation?: boolean };
}

export interface Volume {
  name: string;
  emptyDir?: { medium?: 'Memory' };
  secret?: { secretName: string; items: { key: string; path: string }[] };
  configMap?: { name: string; items: { key: string; path: string }[] };
}

export interface ConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: ObjectMeta;
  data: Record<string, string>;
}

/** Files a service reads through a bind mount locally, carried in a ConfigMap. */
export interface MountedFiles {
  /** Where the mount was (a file, or a folder). */
  target: string;
  /** A file mount has one entry with path ''; a folder's entries are paths inside it. */
  files: { path: string; content: string }[];
}

export interface Deployment {
  apiVersion: 'apps/v1';
  kind: 'Deployment';
  metadata: ObjectMeta;
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        containers: Container[];
        volumes?: Volume[];
        tolerations?: { key: string; operator: 'Exists'; effect: 'NoSchedule' }[];
        terminationGracePeriodSeconds?: number;
        securityContext?: { sysctls: { name: string; value: string }[] };
      };
    };
  };
}

export interface Service {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec: {
    type: 'ClusterIP' | 'LoadBalancer';
    selector: Record<string, string>;
    ports: { name: string; port: number; targetPort: number | string; protocol: 'TCP' | 'UDP' }[];
  };
}

export interface HorizontalPodAutoscaler {
  apiVersion: 'autoscaling/v2';
  kind: 'HorizontalPodAutoscaler';
  metadata: ObjectMeta;
  spec: {
    scaleTargetRef: { apiVersion: 'apps/v1'; kind: 'Deployment'; name: string };
    minReplicas: number;
    maxReplicas: number;
    metrics: {
      type: 'Resource';
      resource: { name: 'cpu'; target: { type: 'Utilization'; averageUtilization: number } };
    }[];
  };
}

export type K8sManifest = Namespace | ConfigMap | Deployment | Service | HorizontalPodAutoscaler;

export interface K8sTranslateOptions {
  /** Namespace of every object; defaults to the stack's name. */
  namespace?: string;
  /** Image per service (the registry copy of what mlship builds); defaults to the service's image. */
  images?: Record<string, string>;
  /** Start-up grace per service (seconds), from mlship.yaml; else the health check's start period. */
  startupGrace?: Record<string, number>;
  /** Services whose image mlship builds, with the numeric user the image runs as (runAsNonRoot). */
  nonRootUsers?: Record<string, number>;
  /** The files each service mounts locally (config, pages): a ConfigMap of the service each. */
  mountedFiles?: Record<string, MountedFiles[]>;
  /** Where each model service downloads its weights at start-up (MODEL_URL, MODEL_SHA256). */
  weights?: Record<string, { url: string; sha256?: string }>;
}

/** A ConfigMap holds at most 1 MiB. */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;

export interface K8sTranslation {
  namespace: string;
  /** In apply order: the Namespace first, then per service its Deployment, Services and HPA. */
  manifests: K8sManifest[];
  /** The Secret every secret reference points to; mlship never writes its values. */
  secretName: string;
  /** Keys the user must put into that Secret before the pods can start. */
  requiredSecretKeys: string[];
  /** What would be created, and choices made (such as no HPA for a GPU service), one line each. */
  plan: string[];
  warnings: StackWarning[];
}

// Probe timing for model services: /healthz and /readyz are served by every wrapped model.
const MODEL_PROBE_PERIOD = 10;
const MODEL_PROBE_TIMEOUT = 5;
const MODEL_PROBE_FAILURES = 3;
// Requests when a service sets no limits (as on ECS): enough for a small model server.
const DEFAULT_MODEL = { cpu: '1', memory: '2Gi' };
const DEFAULT_OTHER = { cpu: '250m', memory: '512Mi' };
const HPA = { minReplicas: 1, maxReplicas: 3, cpuUtilization: 70 };

/** A DNS-1035 label (what Service names need; Deployments accept it too): lowercase, dashes, ≤ 63. */
export function k8sName(name: string): string {
  const n = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return n || 'service';
}

/** CPU cores as a Kubernetes quantity: 2 → "2", 0.3 → "300m". */
export function cpuQuantity(cpus: number): string {
  return Number.isInteger(cpus) ? String(cpus) : `${Math.max(1, Math.ceil(cpus * 1000))}m`;
}

/** Bytes as a Kubernetes quantity, in the largest binary unit that divides them. */
export function memoryQuantity(bytes: number): string {
  for (const [unit, size] of [
    ['Gi', 1024 ** 3],
    ['Mi', 1024 ** 2],
    ['Ki', 1024],
  ] as const) {
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(Math.ceil(bytes));
}

// Standard ports of server images that compose files often use without declaring a port.
const WELL_KNOWN_PORTS: [RegExp, number][] = [
  [/^(postgres|postgis)$/, 5432],
  [/^(mysql|mariadb)$/, 3306],
  [/^redis$/, 6379],
  [/^mongo$/, 27017],
  [/^(nginx|httpd|caddy)$/, 80],
  [/^minio$/, 9000],
];

/** The standard port of a well-known server image (postgres:16 → 5432), by the image's last path segment. */
function wellKnownPort(image: string | undefined): { server: string; port: number } | undefined {
  const server = (image && imageBaseName(image))?.replace(/-.*$/, '');
  if (!server) return undefined;
  const hit = WELL_KNOWN_PORTS.find(([re]) => re.test(server));
  return hit ? { server, port: hit[1] } : undefined;
}

/** Ports published to the outside: a port bound to loopback is for the local machine only (as on ECS). */
function publicPorts(s: StackService) {
  return s.ports.filter(
    (p) => p.published !== undefined && p.hostIp !== '127.0.0.1' && p.hostIp !== 'localhost',
  );
}

/** Port names are IANA service names: ≤ 15 characters, lowercase, a letter in them. */
function portName(p: { container: number; protocol: 'tcp' | 'udp'; appProtocol?: string }): string {
  if (p.protocol === 'udp') return `udp-${p.container}`;
  return `${p.appProtocol === 'grpc' ? 'grpc' : p.appProtocol ? 'http' : 'tcp'}-${p.container}`;
}

/** A port as the plan shows it: 8080, or 53/udp. */
function portLabel(p: { container: number; protocol: 'tcp' | 'udp' }): string {
  return p.protocol === 'udp' ? `${p.container}/udp` : String(p.container);
}

/** The Docker health check's command as an exec probe's argv; undefined for NONE or nothing. */
function execCommand(h: HealthCheck): string[] | undefined {
  const [kind, ...rest] = h.test;
  if (kind === 'CMD' && rest.length) return rest;
  if (kind === 'CMD-SHELL' && rest.length) return ['sh', '-c', rest.join(' ')];
  if (kind !== 'NONE' && kind !== 'CMD' && kind !== 'CMD-SHELL' && h.test.length)
    return ['sh', '-c', h.test.join(' ')];
  return undefined;
}

/** A model service answers /readyz; a health check that calls it says so even without the role. */
function isModel(s: StackService): boolean {
  return s.role === 'model' || (s.healthcheck?.test.join(' ').includes('/readyz') ?? false);
}

/** The port a model's probes call: the one in its health check's URL, else its first TCP port. */
function modelPort(s: StackService): number | undefined {
  const m = s.healthcheck?.test.join(' ').match(/https?:\/\/[^/:\s'"]+:(\d+)\/readyz/);
  if (m) return Number(m[1]);
  return s.ports.find((p) => p.protocol === 'tcp')?.container;
}

/** What every step of one translation shares: names, the manifests and plan so far, warnings. */
interface Translation {
  stack: Stack;
  options: K8sTranslateOptions;
  namespace: string;
  partOf: string;
  secretName: string;
  secretKeys: Set<string>;
  /** Compose name → Kubernetes name, unique within the stack. */
  names: Map<string, string>;
  manifests: K8sManifest[];
  plan: string[];
  warn(svc: StackService, field: string, message: string, fix?: string): void;
}

export function translateToK8s(stack: Stack, options: K8sTranslateOptions = {}): K8sTranslation {
  const warnings: StackWarning[] = [];
  const namespace = k8sName(options.namespace ?? stack.name);
  const partOf = k8sName(stack.name);
  const t: Translation = {
    stack,
    options,
    namespace,
    partOf,
    secretName: `${partOf}-secrets`,
    secretKeys: new Set<string>(),
    names: uniqueNames(stack),
    manifests: [],
    plan: [`namespace ${namespace}`],
    warn: (svc, field, message, fix) => warnings.push(serviceWarning(stack, svc, field, message, fix)),
  };
  t.manifests.push({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: namespace, labels: managedBy(t) },
  });
  for (const svc of stack.services) translateService(t, svc);
  const requiredSecretKeys = [...t.secretKeys].sort();
  if (requiredSecretKeys.length) {
    t.plan.push(
      `secret ${t.secretName} (not created by mlship; create it with keys ${requiredSecretKeys.join(', ')}: kubectl -n ${namespace} create secret generic ${t.secretName} ${requiredSecretKeys.map((k) => `--from-literal=${k}=…`).join(' ')})`,
    );
  }
  return {
    namespace,
    manifests: t.manifests,
    secretName: t.secretName,
    requiredSecretKeys,
    plan: t.plan,
    warnings,
  };
}

/** Two compose names can map to one Kubernetes name (web_1, web-1): keep them apart. */
function uniqueNames(stack: Stack): Map<string, string> {
  const names = new Map<string, string>();
  for (const s of stack.services) {
    let n = k8sName(s.name);
    for (let i = 2; [...names.values()].includes(n); i++) n = `${k8sName(s.name).slice(0, 60)}-${i}`;
    names.set(s.name, n);
  }
  return names;
}

function managedBy(t: Pick<Translation, 'partOf'>): Record<string, string> {
  return { 'app.kubernetes.io/part-of': t.partOf, 'app.kubernetes.io/managed-by': 'mlship' };
}

function selectorOf(t: Pick<Translation, 'partOf'>, name: string): Record<string, string> {
  return { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': t.partOf };
}

function meta(t: Translation, name: string, svc: StackService): ObjectMeta {
  return {
    name,
    namespace: t.namespace,
    labels: {
      ...selectorOf(t, t.names.get(svc.name)!),
      'app.kubernetes.io/component': svc.role,
      ...managedBy(t),
    },
  };
}

function graceOf(t: Translation, s: StackService): number {
  return Math.max(t.options.startupGrace?.[s.name] ?? 0, s.healthcheck?.startPeriodSeconds ?? 0, 0);
}

/** Probes; a startup probe holds the others back until the start-up grace is spent (or the app is up). */
function probes(
  t: Translation,
  svc: StackService,
): Pick<Container, 'startupProbe' | 'readinessProbe' | 'livenessProbe'> {
  const grace = graceOf(t, svc);
  const port = isModel(svc) ? modelPort(svc) : undefined;
  if (port !== undefined) {
    const http = (path: string, failureThreshold: number): Probe => ({
      httpGet: { path, port },
      periodSeconds: MODEL_PROBE_PERIOD,
      timeoutSeconds: MODEL_PROBE_TIMEOUT,
      failureThreshold,
    });
    // The startup probe waits for /readyz (the model is loaded), so that a slow load is
    // never taken for a dead process: failureThreshold × periodSeconds ≥ the grace.
    const startupFailures = Math.max(MODEL_PROBE_FAILURES, Math.ceil(grace / MODEL_PROBE_PERIOD));
    return {
      startupProbe: http('/readyz', startupFailures),
      readinessProbe: http('/readyz', MODEL_PROBE_FAILURES),
      livenessProbe: http('/healthz', MODEL_PROBE_FAILURES),
    };
  }
  const h = svc.healthcheck;
  const command = h ? execCommand(h) : undefined;
  if (!h || !command) return {};
  const period = Math.max(1, Math.round(h.intervalSeconds ?? 30));
  const exec = (failureThreshold: number): Probe => ({
    exec: { command },
    periodSeconds: period,
    timeoutSeconds: Math.max(1, Math.round(h.timeoutSeconds ?? 30)),
    failureThreshold,
  });
  const failures = Math.max(1, Math.round(h.retries ?? 3));
  return {
    ...(grace > 0 ? { startupProbe: exec(Math.max(failures, Math.ceil(grace / period))) } : {}),
    readinessProbe: exec(failures),
    livenessProbe: exec(failures),
  };
}

function resources(svc: StackService, gpus: number): ResourceRequirements {
  const fallback = isModel(svc) ? DEFAULT_MODEL : DEFAULT_OTHER;
  // An explicit limit is also the request (the pod gets what it was given under compose);
  // without one, a default request lets the scheduler and the HPA reason about the pod.
  const cpu = svc.cpus !== undefined ? cpuQuantity(svc.cpus) : undefined;
  const memory = svc.memoryBytes !== undefined ? memoryQuantity(svc.memoryBytes) : undefined;
  const limits: Record<string, string> = {
    ...(cpu ? { cpu } : {}),
    ...(memory ? { memory } : {}),
    ...(gpus ? { 'nvidia.com/gpu': String(gpus) } : {}),
  };
  return {
    requests: { cpu: cpu ?? fallback.cpu, memory: memory ?? fallback.memory },
    ...(Object.keys(limits).length ? { limits } : {}),
  };
}

/** One service: its Deployment, its Services (internal, public) and its autoscaler, with their plan lines. */
function translateService(t: Translation, svc: StackService): void {
  const name = t.names.get(svc.name)!;
  const image = t.options.images?.[svc.name] ?? svc.image;
  if (!image) {
    t.warn(
      svc,
      'build',
      'no image: the service is built locally',
      'pass --registry so that the manifests name the pushed image, or set image:',
    );
  }
  const gpus = svc.gpus === 'all' ? 1 : (svc.gpus ?? 0);
  if (svc.gpus === 'all')
    t.warn(svc, 'deploy', 'GPU count "all" becomes 1 GPU per pod on Kubernetes', 'set an explicit count');
  const env = envOf(t, svc);
  const { volumes, volumeMounts } = volumesOf(t, svc, name);
  warnCarriedOver(t, svc);
  const ports = portsOf(svc);
  const securityContext = securityContextOf(t, svc);
  const container: Container = {
    name,
    image: image ?? `${t.partOf}/${name}`,
    ...(svc.entrypoint ? { command: svc.entrypoint } : {}),
    ...(svc.command ? { args: svc.command } : {}),
    ...(svc.workingDir ? { workingDir: svc.workingDir } : {}),
    ...(ports.list.length
      ? {
          ports: ports.list.map((p) => ({
            name: portName(p),
            containerPort: p.container,
            protocol: p.protocol === 'udp' ? ('UDP' as const) : ('TCP' as const),
          })),
        }
      : {}),
    ...(env.length ? { env } : {}),
    resources: resources(svc, gpus),
    ...(volumeMounts.length ? { volumeMounts } : {}),
    ...probes(t, svc),
    ...(securityContext ? { securityContext } : {}),
  };
  t.manifests.push(deploymentOf(t, svc, name, container, volumes, gpus));
  t.plan.push(
    `deployment ${name}: 1 replica${gpus ? `, ${gpus} GPU (nvidia.com/gpu)` : ''}${container.startupProbe ? `, start-up grace ${graceOf(t, svc)} s` : ''}`,
  );
  addServices(t, svc, name, ports);
  addAutoscaler(t, svc, name, gpus);
}

/** Plain values sorted by name, the weights' URL, then the secret references. */
function envOf(t: Translation, svc: StackService): EnvVar[] {
  const weights = t.options.weights?.[svc.name];
  const envValues: Record<string, string> = {
    ...svc.environment,
    // The weights are downloaded at start-up and checked (the local mount has no pod equivalent).
    ...(weights
      ? { MODEL_URL: weights.url, ...(weights.sha256 ? { MODEL_SHA256: weights.sha256 } : {}) }
      : {}),
  };
  const env: EnvVar[] = Object.entries(envValues)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([n, value]) => ({ name: n, value }));
  if (svc.weights?.local && !weights) {
    t.warn(
      svc,
      'volumes',
      `its weights ${svc.weights.local.path} are a file of this machine: the pod could not start without them`,
      'set weights.url in mlship.yaml, or pass --weights-url-prefix s3://bucket/prefix (mlship prints the upload command)',
    );
  }
  for (const key of [...svc.secretEnv].sort()) {
    t.secretKeys.add(key);
    env.push({ name: key, valueFrom: { secretKeyRef: { name: t.secretName, key } } });
  }
  return env;
}

/** File secrets, mounted files (a ConfigMap), scratch space; what cannot be carried over is a warning. */
function volumesOf(t: Translation, svc: StackService, name: string) {
  const volumes: Volume[] = [];
  const volumeMounts: NonNullable<Container['volumeMounts']> = [];
  svc.secrets.forEach((s, i) => {
    // A file secret is the Secret's key mounted as the one file compose mounted.
    const key = s.name.replace(/[^-._a-zA-Z0-9]/g, '_');
    t.secretKeys.add(key);
    volumes.push({ name: `secret-${i}`, secret: { secretName: t.secretName, items: [{ key, path: key }] } });
    volumeMounts.push({ name: `secret-${i}`, mountPath: s.target, subPath: key, readOnly: true });
  });
  const mounted = configMapOf(t, svc, name);
  if (mounted) {
    t.manifests.push(mounted.configMap);
    volumes.push(mounted.volume);
    volumeMounts.push(...mounted.mounts);
    t.plan.push(`configmap ${mounted.configMap.metadata.name}: ${mounted.targets.join(', ')} of ${name}`);
  }
  svc.volumes.forEach((v, i) => {
    if (mounted?.targets.includes(v.target)) return;
    if (v.type === 'tmpfs' || (v.type === 'volume' && !v.source)) {
      // Scratch space lives and dies with the pod, as it does with the container.
      volumes.push({ name: `scratch-${i}`, emptyDir: v.type === 'tmpfs' ? { medium: 'Memory' } : {} });
      volumeMounts.push({
        name: `scratch-${i}`,
        mountPath: v.target,
        ...(v.readOnly ? { readOnly: true } : {}),
      });
      return;
    }
    warnVolume(t, svc, v);
  });
  return { volumes, volumeMounts };
}

function warnVolume(t: Translation, svc: StackService, v: StackService['volumes'][number]): void {
  if (v.type === 'bind') {
    t.warn(
      svc,
      'volumes',
      `host bind mount ${v.source} → ${v.target} is not carried over (a pod has no files of your machine)`,
      v.readOnly
        ? 'bake the file into the image (COPY), or mount it from a ConfigMap'
        : 'use a PersistentVolumeClaim for data that must persist',
    );
    return;
  }
  t.warn(
    svc,
    'volumes',
    `named volume ${v.source} → ${v.target} is not carried over: it needs a PersistentVolumeClaim, which mlship does not create`,
    svc.role === 'database'
      ? 'use a managed database (Amazon RDS), or create a PVC and mount it in the Deployment'
      : 'create a PersistentVolumeClaim and mount it in the Deployment',
  );
}

/** The ConfigMap, its volume and mounts for the files a service mounts locally. */
function configMapOf(t: Translation, svc: StackService, name: string) {
  const sets = t.options.mountedFiles?.[svc.name];
  if (!sets?.length) return undefined;
  const bytes = sets.reduce((n, s) => n + s.files.reduce((m, f) => m + Buffer.byteLength(f.content), 0), 0);
  if (bytes > CONFIGMAP_MAX_BYTES) {
    t.warn(
      svc,
      'volumes',
      `its mounted files (${bytes} bytes) exceed a ConfigMap's 1 MiB`,
      'bake them into the image (COPY)',
    );
    return undefined;
  }
  const data: Record<string, string> = {};
  const items: { key: string; path: string }[] = [];
  const mounts: NonNullable<Container['volumeMounts']> = [];
  sets.forEach((set, i) => {
    for (const [j, f] of set.files.entries()) {
      // Keys are [-._a-zA-Z0-9]; the path inside the volume keeps the file's own name.
      const key = `m${i}-${j}-${(f.path || set.target.split('/').pop() || 'file').replace(/[^-._a-zA-Z0-9]/g, '_')}`;
      data[key] = f.content;
      const inVolume = `m${i}/${f.path || 'file'}`;
      items.push({ key, path: inVolume });
      if (!f.path) mounts.push({ name: 'files', mountPath: set.target, subPath: inVolume, readOnly: true });
    }
    if (set.files.some((f) => f.path))
      mounts.push({ name: 'files', mountPath: set.target, subPath: `m${i}`, readOnly: true });
  });
  const configMap: ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(t, `${name}-files`, svc),
    data,
  };
  return {
    configMap,
    volume: { name: 'files', configMap: { name: `${name}-files`, items } } as Volume,
    mounts,
    targets: sets.map((s) => s.target),
  };
}

/**
 * A service's sysctls in its pod's securityContext: Kubernetes' safe ones only (a kubelet that
 * does not allow another refuses the pod); the others are a warning. mlship's own proxy setting
 * (tcp_tw_reuse, for a shadow rollout's relay, which never runs on Kubernetes) is left out
 * without one.
 */
function podSysctls(
  t: Translation,
  svc: StackService,
): { securityContext?: { sysctls: { name: string; value: string }[] } } {
  const sysctls: { name: string; value: string }[] = [];
  for (const [name, value] of Object.entries(svc.sysctls ?? {})) {
    if (K8S_SAFE_SYSCTLS.has(name)) sysctls.push({ name, value });
    else if (!(svc.role === 'proxy' && PROXY_SYSCTLS[name] === value))
      t.warn(
        svc,
        'sysctls',
        `sysctl ${name} is not one of Kubernetes' safe sysctls: left out (a kubelet refuses a pod with it unless started with --allowed-unsafe-sysctls)`,
        'allow it on your nodes and add it to the pod securityContext by hand, or remove it',
      );
  }
  return sysctls.length ? { securityContext: { sysctls } } : {};
}

/** Start-up order and restart policies Kubernetes does not have. */
function warnCarriedOver(t: Translation, svc: StackService): void {
  if (svc.dependsOn.length) {
    const deps = svc.dependsOn.map((d) => d.service).join(', ');
    t.warn(
      svc,
      'depends_on',
      `depends on ${deps}: Kubernetes starts every pod at once and has no start-up order`,
      `make the service retry until ${deps} answer${svc.dependsOn.length === 1 ? 's' : ''} (readiness probes keep traffic away until then)`,
    );
  }
  if (svc.restart === 'no' || svc.restart === 'on-failure') {
    t.warn(
      svc,
      'restart',
      `restart: ${svc.restart} becomes "always" (a Deployment always restarts its pods)`,
    );
  }
}

function securityContextOf(t: Translation, svc: StackService): Container['securityContext'] | undefined {
  const uid = t.options.nonRootUsers?.[svc.name];
  const securityContext: Container['securityContext'] | undefined =
    uid !== undefined
      ? { runAsNonRoot: true, runAsUser: uid, allowPrivilegeEscalation: false }
      : svc.user && /^\d+(:\d+)?$/.test(svc.user)
        ? { runAsUser: Number(svc.user.split(':')[0]) }
        : undefined;
  if (uid === undefined && svc.user && !securityContext) {
    t.warn(
      svc,
      'user',
      `user "${svc.user}" is not numeric: Kubernetes runs the image's own user`,
      'use a uid',
    );
  }
  return securityContext;
}

type ContainerPort = { container: number; protocol: 'tcp' | 'udp'; appProtocol?: string };

/** One entry per container port and protocol; a well-known server image without any gets its standard one. */
function portsOf(svc: StackService): { list: ContainerPort[]; assumed?: { server: string; port: number } } {
  // Compose may publish one port twice.
  const declared = svc.ports.filter(
    (p, i) => svc.ports.findIndex((q) => q.container === p.container && q.protocol === p.protocol) === i,
  );
  // Compose reaches a service on any port without declaring it; a Kubernetes Service
  // needs the port, so a well-known server image gets its standard one.
  const assumed = declared.length ? undefined : wellKnownPort(svc.image);
  return assumed ? { list: [{ container: assumed.port, protocol: 'tcp' }], assumed } : { list: declared };
}

function deploymentOf(
  t: Translation,
  svc: StackService,
  name: string,
  container: Container,
  volumes: Volume[],
  gpus: number,
): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(t, name, svc),
    spec: {
      replicas: 1,
      selector: { matchLabels: selectorOf(t, name) },
      template: {
        metadata: { labels: { ...selectorOf(t, name), ...managedBy(t) } },
        spec: {
          containers: [container],
          ...(volumes.length ? { volumes } : {}),
          // GPU nodes are commonly tainted so that only pods asking for a GPU land there.
          ...(gpus
            ? { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] }
            : {}),
          ...(svc.stopGraceSeconds !== undefined
            ? { terminationGracePeriodSeconds: Math.round(svc.stopGraceSeconds) }
            : {}),
          ...podSysctls(t, svc),
        },
      },
    },
  };
}

/** The cluster-internal Service, and a LoadBalancer Service for the ports compose published. */
function addServices(
  t: Translation,
  svc: StackService,
  name: string,
  ports: ReturnType<typeof portsOf>,
): void {
  if (ports.list.length) {
    t.manifests.push(
      serviceOf(
        t,
        svc,
        name,
        'ClusterIP',
        ports.list.map((p) => [p, p.container, portName(p)]),
      ),
    );
    t.plan.push(
      `service ${name}: cluster-internal, ports ${ports.list.map(portLabel).join(', ')}${ports.assumed ? ` (the standard port of ${ports.assumed.server}: compose declared none)` : ''}`,
    );
  }
  const needed = t.stack.services.some((o) => o.dependsOn.some((d) => d.service === svc.name));
  if (!ports.list.length && (needed || svc.role === 'database' || svc.role === 'storage')) {
    t.warn(
      svc,
      'ports',
      'no port declared: no Service is created, so the other pods cannot reach it by name',
      'list the port it listens on under expose: (e.g. expose: ["5432"])',
    );
  }
  const published = publicPorts(svc).filter(
    (p, i, all) => all.findIndex((q) => q.published === p.published && q.protocol === p.protocol) === i,
  );
  if (!published.length) return;
  const publicName = `${name.slice(0, 56)}-public`;
  t.manifests.push(
    serviceOf(
      t,
      svc,
      publicName,
      'LoadBalancer',
      published.map((p) => [p, p.published!, p.container]),
      name,
    ),
  );
  t.plan.push(
    `service ${publicName}: LoadBalancer (public; billed by your cloud), ports ${published.map((p) => `${p.published} → ${portLabel(p)}`).join(', ')}`,
  );
}

function serviceOf(
  t: Translation,
  svc: StackService,
  serviceName: string,
  type: 'ClusterIP' | 'LoadBalancer',
  ports: [ContainerPort, number, number | string][],
  selectName = serviceName,
): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(t, serviceName, svc),
    spec: {
      type,
      selector: selectorOf(t, selectName),
      ports: ports.map(([p, port, targetPort]) => ({
        name: portName(p),
        port,
        targetPort,
        protocol: p.protocol === 'udp' ? 'UDP' : 'TCP',
      })),
    },
  };
}

/** A CPU autoscaler for a CPU model service; none for a GPU one, with the reason in the plan. */
function addAutoscaler(t: Translation, svc: StackService, name: string, gpus: number): void {
  if (!isModel(svc)) return;
  if (gpus) {
    t.plan.push(
      `no autoscaler for ${name}: it holds a GPU, whose load CPU utilisation does not show, and each replica needs a GPU node`,
    );
    return;
  }
  t.manifests.push({
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: meta(t, name, svc),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: HPA.minReplicas,
      maxReplicas: HPA.maxReplicas,
      metrics: [
        {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: HPA.cpuUtilization } },
        },
      ],
    },
  });
  t.plan.push(
    `autoscaler ${name}: ${HPA.minReplicas}-${HPA.maxReplicas} replicas at ${HPA.cpuUtilization}% CPU`,
  );
}
