// A rollout in the local stack (`mlship rollout`): the candidate as a second service of the
// stack (`<name>-candidate`) with the stable one's settings, and what NGINX needs to route
// to it (the split, the header override, the mirror). Pure: the rollout and what `mlship
// wrap` recorded about the candidate come in, compose services and template data go out.

import path from 'node:path';
import type { Rollout } from '../config/rollout-schema.js';

/** What `mlship wrap` recorded about the candidate (compose-stack's WrappedServiceInfo, structurally). */
export interface CandidateWrapInfo {
  runtime: 'python' | 'node';
  port: number;
  startupGraceSeconds: number;
  weights?: { source: string; target: string };
}

/** A running rollout, with what the candidate's mlship-wrap.json says (when it has one). */
export interface ComposeRollout {
  rollout: Rollout;
  wrapped?: CandidateWrapInfo;
}

/** The fields of a compose service this module reads and sets (compose-stack's ComposeService). */
interface ServiceFields {
  image: string;
  build?: { context: string; dockerfile?: string };
  environment?: Record<string, string>;
  expose?: string[];
  volumes?: { type: 'bind' | 'volume'; source: string; target: string; read_only?: boolean }[];
  healthcheck: { test: string[]; start_period: string };
  labels: Record<string, string>;
  cpu_shares?: number;
  cgroup_parent?: string;
  deploy?: { resources: { limits?: { cpus?: string; memory?: string } } };
}

export const CANDIDATE_SUFFIX = '-candidate';
export const ROLLOUT_LABEL = 'dev.mlship.rollout';

export const candidateName = (service: string) => `${service}${CANDIDATE_SUFFIX}`;

/**
 * A shadow's CPU weight (docker's --cpu-shares; every other service keeps the default 1024).
 * Locally the shadow predicts every request again on the primary's cores; with the kernel's
 * smallest weight (what Kubernetes gives a BestEffort pod) it runs on what the primary leaves
 * idle and yields the rest. A canary or A/B candidate answers clients: normal weight.
 */
export const SHADOW_CPU_SHARES = 2;
export const DEFAULT_CPU_SHARES = 1024;

/**
 * The shadow's low weight, its idle cgroup parent when `start` made one (adapters/cgroups.ts),
 * and its cap (`--shadow-cpus`) in place of the stable's CPU limit.
 */
function shadowCpu<S extends ServiceFields>(stable: S, rollout: Rollout): Partial<ServiceFields> {
  if (rollout.mode !== 'shadow') return {};
  const resources = stable.deploy?.resources;
  return {
    cpu_shares: SHADOW_CPU_SHARES,
    ...(rollout.shadowCgroup ? { cgroup_parent: rollout.shadowCgroup } : {}),
    ...(rollout.shadowCpus !== undefined
      ? {
          deploy: {
            ...stable.deploy,
            resources: {
              ...resources,
              limits: { ...resources?.limits, cpus: String(rollout.shadowCpus) },
            },
          },
        }
      : {}),
  };
}

function rel(from: string, to: string): string {
  const r = path.relative(from, to).split(path.sep).join('/');
  return r.startsWith('.') ? r : `./${r}`;
}

export interface CandidateContext {
  project: string;
  projectDir: string;
  outDir: string;
  /** The stable service's container port. */
  stablePort: (service: string) => number;
  readinessTest: (runtime: 'python' | 'node', port: number) => string[];
}

/**
 * `<name>-candidate`: the stable service's settings (environment, limits, GPUs, dependencies,
 * health check), the candidate's image or build, its own port and weights when it is a wrapped
 * service, its version label, and a shadow's low CPU priority.
 */
export function candidateService<S extends ServiceFields>(
  stable: S,
  r: ComposeRollout,
  ctx: CandidateContext,
): S {
  const { rollout, wrapped } = r;
  const port = wrapped?.port ?? ctx.stablePort(rollout.service);
  const c = rollout.candidate;
  const { build: _build, volumes: stableVolumes, ...rest } = stable;
  const serviceDir = c.path ? path.resolve(ctx.projectDir, c.path) : undefined;
  const volumes = wrapped?.weights
    ? [
        {
          type: 'bind' as const,
          source: rel(ctx.outDir, path.resolve(serviceDir!, wrapped.weights.source)),
          target: wrapped.weights.target,
          read_only: true,
        },
      ]
    : stableVolumes;
  const candidate: ServiceFields = {
    ...rest,
    image: c.image ?? `${ctx.project}/${candidateName(rollout.service)}:dev`,
    ...(serviceDir && !c.image ? { build: { context: rel(ctx.outDir, serviceDir) } } : {}),
    environment: {
      ...stable.environment,
      PORT: String(port),
      MLSHIP_MODEL_VERSION: 'candidate',
      ...(c.recordInputs ? { MLSHIP_RECORD_INPUTS: '1' } : {}),
      ...c.env,
    },
    expose: [String(port)],
    ...(volumes?.length ? { volumes } : {}),
    healthcheck: {
      ...stable.healthcheck,
      ...(wrapped
        ? {
            test: ctx.readinessTest(wrapped.runtime, port),
            start_period: `${Math.round(wrapped.startupGraceSeconds)}s`,
          }
        : {}),
    },
    labels: { ...stable.labels, [ROLLOUT_LABEL]: 'candidate', 'dev.mlship.rollout-of': rollout.service },
    ...shadowCpu(stable, rollout),
  };
  return candidate as S;
}

/** What the NGINX templates need about one rollout (routed by nginx.conf itself, reloaded at each change). */
export interface NginxRollout {
  service: string;
  /** The service name as NGINX variables and upstreams spell it. */
  id: string;
  prefix: string;
  summary: string;
  mode: Rollout['mode'];
  weight: number;
  mirror: boolean;
  candidateHost: string;
  candidatePort: number;
  stickyVariable?: string;
  stickyWhat?: string;
  /** Percent of requests whose answers are recorded, two decimals at most (as split_clients takes it). */
  recordPercent: number;
  shadowTimeoutMs: number;
}

/** The shadow's timeout when `rollout start` is given none and the stack sets none (proxy.shadow_timeout_ms). */
export const DEFAULT_SHADOW_TIMEOUT_MS = 250;

/**
 * What nginx.conf needs so that a model service is ready for a rollout routed by the state file:
 * the same whether one runs or not (`rollout start` then reloads nothing), unless the rollout's
 * candidate listens on another port than the stable service or asks another shadow timeout.
 */
export interface NginxReady {
  service: string;
  id: string;
  prefix: string;
  candidateHost: string;
  candidatePort: number;
  shadowTimeoutMs: number;
  /** Always: the stand-in for a stopped shadow is there. */
  mirror: true;
}

export function nginxReady(
  service: string,
  stablePort: number,
  stackShadowTimeoutMs: number,
  r?: ComposeRollout,
): NginxReady {
  return {
    service,
    id: service.replace(/-/g, '_'),
    prefix: `/api/${service}`,
    candidateHost: candidateName(service),
    candidatePort: r?.wrapped?.port ?? stablePort,
    shadowTimeoutMs: r?.rollout.shadowTimeoutMs ?? stackShadowTimeoutMs,
    mirror: true,
  };
}

/** How the local proxy learns a rollout's share: a state file read per request, or a reload. */
export type ProxyRouting = 'state' | 'reload';

/** Where the proxy reads the routing state and route.js: a mounted folder (a renamed file stays visible). */
export const ROUTING_DIR = 'proxy/routing';
export const ROUTING_MOUNT = '/etc/nginx/mlship-routing';
export const ROUTING_STATE_FILE = 'state.json';

/** How an nginx.conf this module generated routes its rollouts; none: it has no rollout. */
export function routingOf(nginxConf: string): ProxyRouting | undefined {
  if (nginxConf.includes('js_import mlship_route ')) return 'state';
  return nginxConf.includes('# ---- mlship rollout of ') ? 'reload' : undefined;
}

/** NGINX images known to load njs: mlship's local stand-in for the official image (scripts/local-images/nginx). */
export function loadsNjs(image: string | undefined): boolean {
  return image !== undefined && /(^|\/)mlship-local\/nginx(:|@|$)/.test(image);
}

/** One running rollout's entry in the routing state (what route.js reads; none: stable answers, unlabelled). */
export interface RoutingEntry {
  /** Buckets 0..weight-1 of 100 go to the candidate. */
  weight: number;
  mirror: boolean;
  /** The share of requests whose answers both versions record (0-1). */
  record: number;
  /** The same header or cookie value always reaches the same version (else: by request id). */
  sticky?: { header: string } | { cookie: string };
}

/** The routing state of the running rollouts, by service. */
export function routingState(
  rollouts: Pick<Rollout, 'service' | 'mode' | 'weight' | 'mirror' | 'recordSample' | 'sticky'>[],
): string {
  const entries: Record<string, RoutingEntry> = {};
  for (const r of [...rollouts].sort((a, b) => a.service.localeCompare(b.service)))
    entries[r.service] = {
      weight: r.mode === 'shadow' ? 0 : r.weight,
      mirror: r.mode === 'shadow' || r.mirror,
      record: r.recordSample,
      ...(r.sticky ? { sticky: r.sticky } : {}),
    };
  return `${JSON.stringify(entries, null, 2)}\n`;
}

export function summarize(rollout: Pick<Rollout, 'mode' | 'weight' | 'mirror'>): string {
  if (rollout.mode === 'shadow')
    return 'shadow: every request mirrored to the candidate, answers from stable';
  const what = rollout.mode === 'ab' ? 'A/B' : 'canary';
  return `${what}, ${rollout.weight} % to the candidate${rollout.mirror ? ', the rest mirrored to it' : ''}`;
}

export function nginxRollout(r: ComposeRollout, stablePort: number): NginxRollout {
  const { rollout } = r;
  const sticky = rollout.sticky;
  const stickyVariable = sticky
    ? 'header' in sticky
      ? `$http_${sticky.header.toLowerCase().replace(/-/g, '_')}`
      : `$cookie_${sticky.cookie}`
    : undefined;
  return {
    service: rollout.service,
    id: rollout.service.replace(/-/g, '_'),
    prefix: `/api/${rollout.service}`,
    summary: summarize(rollout),
    mode: rollout.mode,
    weight: rollout.mode === 'shadow' ? 0 : rollout.weight,
    mirror: rollout.mode === 'shadow' || rollout.mirror,
    candidateHost: candidateName(rollout.service),
    candidatePort: r.wrapped?.port ?? stablePort,
    ...(stickyVariable
      ? {
          stickyVariable,
          stickyWhat: sticky && 'header' in sticky ? `${sticky.header} header` : `${sticky!.cookie} cookie`,
        }
      : {}),
    recordPercent: Math.round(rollout.recordSample * 10_000) / 100,
    shadowTimeoutMs: rollout.shadowTimeoutMs,
  };
}
