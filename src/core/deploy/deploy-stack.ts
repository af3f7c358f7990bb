// The stack a deploy translates, read once: from mlship.yaml through the same compose
// generation `compose up` runs (so what runs locally is what is deployed), or from a
// user's compose file. Carries what the translation needs beyond the stack model: the
// services' start-up grace, their weights, the generated files mounted locally, and
// where each service's fields were written (for located warnings).

import path from 'node:path';
import { keyPositions, readConfigText } from '../../config/load.js';
import type { Project } from '../../config/schema.js';
import type { ModelWeights, Stack, StackService } from '../../config/stack-model.js';
import type { WrappedServiceInfo } from '../../generators/compose-stack.js';
import { MONITORING_ROLE } from '../../generators/monitoring-stack.js';
import { API_KEYS_DIR } from '../../generators/proxy-protection.js';
import { generateCompose } from '../compose/generate.js';
import { isComposeFile } from '../compose/user-compose.js';
import { parseBytes, parseDuration } from '../stack/compose-import.js';
import { loadComposeStack } from '../stack/load-stack.js';

/** The stack a deploy translates, and the project it came from (none for a compose file). */
export interface DeployStack {
  stack: Stack;
  /** Start-up grace per service (mlship.yaml), for health-check grace periods. */
  grace: Record<string, number>;
  project?: Project;
  /** Relative bind sources of the stack are relative to this directory. */
  baseDir: string;
  /** Files compose generation writes (nginx.conf, the front end), by absolute path: their content. */
  generated: Map<string, string>;
}

/** Reads the stack of a deploy from mlship.yaml or from a compose file. */
export async function loadDeployStack(file: string): Promise<DeployStack> {
  if (await isComposeFile(file)) {
    return {
      stack: await loadComposeStack(file),
      grace: {},
      baseDir: path.dirname(path.resolve(file)),
      generated: new Map(),
    };
  }
  return stackFromProject(file);
}

type ComposeService = Awaited<ReturnType<typeof generateCompose>>['stack']['compose']['services'][string];

/** Values that interpolate a generated secret are secrets themselves on ECS. */
function splitEnvironment(svc: ComposeService): { environment: Record<string, string>; secretEnv: string[] } {
  const environment: Record<string, string> = {};
  const secretEnv: string[] = [];
  for (const [k, v] of Object.entries(svc.environment ?? {})) {
    if (v.includes('${')) secretEnv.push(k);
    else environment[k] = v;
  }
  return { environment, secretEnv };
}

/**
 * Locally everything is published on loopback; on ECS only the proxy faces the outside, on the
 * HTTP port (the local port is only chosen not to clash on a developer's machine).
 */
function portsOf(svc: ComposeService): StackService['ports'] {
  const proxy = svc.labels['dev.mlship.role'] === 'proxy';
  return [
    ...(svc.expose ?? []).map((p) => ({ container: Number(p), protocol: 'tcp' as const })),
    ...(svc.ports ?? []).map((p) => {
      const parts = p.split(':');
      return {
        container: Number(parts[parts.length - 1]),
        published: proxy ? 80 : Number(parts[parts.length - 2]),
        protocol: 'tcp' as const,
        ...(proxy ? {} : { hostIp: '127.0.0.1' }),
      };
    }),
  ];
}

/** The compose file's volumes as ECS sees them: no weights mount (uploaded), no API keys (a secret). */
function volumesOf(
  svc: ComposeService,
  outDir: string,
  weights: StackService['weights'],
): StackService['volumes'] {
  return (svc.volumes ?? [])
    .filter((v) => !(weights?.local && v.target === weights.local.target))
    .filter((v) => v.target !== API_KEYS_DIR)
    .map((v) => ({
      type: v.type,
      // Bind sources as absolute paths: compose's are relative to its output folder.
      source: v.type === 'bind' ? path.resolve(outDir, v.source) : v.source,
      target: v.target,
      readOnly: Boolean(v.read_only),
    }));
}

/** One generated compose service as the deploy's stack service (its source location added by the caller). */
function serviceFromCompose(
  name: string,
  svc: ComposeService,
  outDir: string,
  weights: StackService['weights'] | undefined,
): Omit<StackService, 'file' | 'line'> {
  const device = svc.deploy?.resources.reservations?.devices[0];
  const memory = svc.deploy?.resources.limits?.memory;
  return {
    name,
    role: (svc.labels['dev.mlship.role'] as StackService['role']) ?? 'other',
    image: svc.image,
    ...(svc.build ? { build: { context: path.resolve(outDir, svc.build.context) } } : {}),
    ...(weights ? { weights } : {}),
    ...splitEnvironment(svc),
    secrets: [],
    ports: portsOf(svc),
    volumes: volumesOf(svc, outDir, weights),
    dependsOn: Object.entries(svc.depends_on ?? {}).map(([d, c]) => ({
      service: d,
      condition: c.condition === 'service_healthy' ? ('healthy' as const) : ('started' as const),
    })),
    healthcheck: {
      test: svc.healthcheck.test,
      intervalSeconds: parseDuration(svc.healthcheck.interval) ?? 30,
      timeoutSeconds: parseDuration(svc.healthcheck.timeout) ?? 5,
      retries: svc.healthcheck.retries,
      startPeriodSeconds: parseDuration(svc.healthcheck.start_period) ?? 0,
    },
    ...(svc.deploy?.resources.limits?.cpus ? { cpus: Number(svc.deploy.resources.limits.cpus) } : {}),
    ...(memory ? { memoryBytes: parseBytes(memory)! } : {}),
    ...(device ? { gpus: device.count } : {}),
    ...(svc.sysctls ? { sysctls: { ...svc.sysctls } } : {}),
    labels: {},
    profiles: [],
  };
}

export async function stackFromProject(file: string): Promise<DeployStack & { project: Project }> {
  const gen = await generateCompose({ configFile: file, force: true, dryRun: true, target: 'cloud' });
  const { project } = gen;
  const services: StackService[] = [];
  const locate = await projectLocator(file, project);
  const monitoringVolumes = new Set<string>();
  for (const [name, svc] of Object.entries(gen.stack.compose.services)) {
    if (svc.profiles && !svc.profiles.includes('gpu')) continue; // the CPU copies are for machines without GPUs
    // Local monitoring (Prometheus, Grafana, exporters): on AWS, CloudWatch is the stack's monitoring.
    if (svc.labels['dev.mlship.role'] === MONITORING_ROLE) {
      for (const v of svc.volumes ?? []) if (v.type === 'volume') monitoringVolumes.add(v.source);
      continue;
    }
    const weights = modelWeights(project, gen.wrapped, path.dirname(path.resolve(file)), name);
    services.push({
      ...serviceFromCompose(name, svc, gen.outDir, weights),
      ...locate(name, svc.labels['dev.mlship.role'] ?? 'other'),
    });
  }
  const grace = Object.fromEntries(
    Object.entries(project.services).map(([n, s]) => [n, s.startup_grace_seconds]),
  );
  return {
    stack: {
      name: project.name,
      file,
      services,
      volumes: Object.keys(gen.stack.compose.volumes ?? {}).filter((v) => !monitoringVolumes.has(v)),
      secrets: [],
      warnings: [],
    },
    grace,
    project,
    baseDir: gen.outDir,
    generated: new Map(gen.stack.files.map((f) => [path.join(gen.outDir, f.path), f.content])),
  };
}

/**
 * Where a model service's weights come from on AWS: weights.url in mlship.yaml (nothing to
 * upload), else the file its mlship-wrap.json mounts locally (uploaded by deploy).
 */
function modelWeights(
  project: Project,
  wrapped: Record<string, WrappedServiceInfo | undefined>,
  projectDir: string,
  name: string,
): ModelWeights | undefined {
  const configured = project.services[name]?.weights;
  if (configured?.url)
    return { url: configured.url, ...(configured.sha256 ? { sha256: configured.sha256 } : {}) };
  const mount = wrapped[name]?.weights;
  if (!mount) return undefined;
  const serviceDir = path.resolve(projectDir, project.services[name]?.path ?? `services/${name}`);
  return {
    local: { path: path.resolve(serviceDir, mount.source), target: mount.target },
    ...(configured?.sha256 ? { sha256: configured.sha256 } : {}),
  };
}

/** mlship.yaml field of a model service that each translated compose field comes from. */
const MODEL_FIELDS: Record<string, string[]> = {
  volumes: ['model'],
  deploy: ['gpu', 'cpu', 'memory'],
  depends_on: ['depends_on'],
  healthcheck: ['startup_grace_seconds'],
  ports: ['port'],
  build: ['path'],
  environment: ['env', 'secrets'],
};

/**
 * Where each generated service comes from in mlship.yaml, so a deploy warning names its line:
 * a model service's key (and the key of the field behind each compose field), or the section
 * (proxy, database, storage, frontend) of the others.
 */
async function projectLocator(
  file: string,
  project: Project,
): Promise<(service: string, role: string) => Pick<StackService, 'origin' | 'fieldOrigins'>> {
  const sections = ['proxy', 'database', 'storage', 'frontend'];
  const paths: string[][] = sections.map((s) => [s]);
  for (const name of Object.keys(project.services)) {
    paths.push(['services', name]);
    for (const keys of Object.values(MODEL_FIELDS)) for (const k of keys) paths.push(['services', name, k]);
  }
  const at = keyPositions(await readConfigText(file), paths);
  const where = (key: string) => {
    const pos = at.get(key);
    return pos ? { file, ...pos } : undefined;
  };
  return (service, role) => {
    if (role !== 'model' || !project.services[service]) {
      const origin = where(role) ?? { file, line: 1, column: 1 };
      return { origin };
    }
    const origin = where(`services.${service}`) ?? { file, line: 1, column: 1 };
    const fieldOrigins: Record<string, { file: string; line: number; column: number }> = {};
    for (const [field, keys] of Object.entries(MODEL_FIELDS)) {
      const found = keys.map((k) => where(`services.${service}.${k}`)).find(Boolean);
      if (found) fieldOrigins[field] = found;
    }
    return { origin, fieldOrigins };
  };
}
