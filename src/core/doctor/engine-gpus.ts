// Which GPUs the engine's host has, asked of the engine rather than of this machine: a
// short-lived container with a GPU device request runs nvidia-smi (the NVIDIA container
// toolkit puts it there), so a remote DOCKER_HOST or Docker context with GPUs is used as
// such, and a laptop whose engine runs elsewhere is not mistaken for a GPU host. Engines
// without the NVIDIA runtime are asked nothing; a local one falls back to the local nvidia-smi
// (hook-only setups that register no runtime).

import type { ContainerHandle, ContainerSpec, EngineInfo } from '../../adapters/docker/engine.js';
import { RUN_LABEL } from '../../adapters/docker/engine.js';
import type { Exec } from '../../adapters/exec.js';
import type { HostGpuReport } from '../../generators/bakeoff-report-schema.js';

export interface GpuProbeEngine {
  readonly endpoint: { address: string; socketPath?: string; host?: string; protocol?: string };
  start(spec: ContainerSpec): Promise<ContainerHandle>;
}

export interface EngineGpus {
  gpus: HostGpuReport[];
  driver: string | null;
  /** Who answered: a container on the engine's host, this machine's nvidia-smi, or nobody. */
  source: 'engine' | 'local' | 'none';
  /** Why there is no answer, or how it was found. */
  note: string;
}

const FIELDS = 'index,name,driver_version,memory.total';
/** compute_cap needs driver 510+; older drivers refuse the field, so the query is repeated without it. */
export const NVIDIA_SMI_QUERY = `nvidia-smi --query-gpu=${FIELDS},compute_cap --format=csv,noheader,nounits || nvidia-smi --query-gpu=${FIELDS} --format=csv,noheader,nounits`;

/** Parses `nvidia-smi --query-gpu=index,name,driver_version,memory.total[,compute_cap] --format=csv,noheader,nounits`. */
export function parseGpuQuery(stdout: string): HostGpuReport[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.split(',').map((s) => s.trim()))
    .filter((p) => p.length >= 4 && /^\d+$/.test(p[0]!))
    .map((p) => ({
      index: Number(p[0]),
      name: p[1]!,
      driver: p[2]!,
      memoryMiB: Number(p[3]),
      ...(p[4] && /^\d+\.\d+$/.test(p[4]) ? { computeCapability: p[4] } : {}),
    }));
}

export function isLocalEngine(e: GpuProbeEngine['endpoint']): boolean {
  return Boolean(e.socketPath) && !e.host && e.protocol !== 'ssh';
}

async function askEngine(
  engine: GpuProbeEngine,
  image: string,
  runId: string,
  timeoutMs: number,
): Promise<{ ok: true; stdout: string } | { ok: false; reason: string }> {
  let handle: ContainerHandle;
  try {
    handle = await engine.start({
      image,
      entrypoint: ['sh', '-c'],
      cmd: [NVIDIA_SMI_QUERY],
      gpus: 'all',
      labels: { [RUN_LABEL]: runId },
    });
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
  const timer = setTimeout(() => void handle.kill('SIGKILL').catch(() => undefined), timeoutMs);
  try {
    const { exitCode } = await handle.wait();
    const out = await handle.logs(50);
    return exitCode === 0
      ? { ok: true, stdout: out }
      : { ok: false, reason: `nvidia-smi exited ${exitCode}: ${out.trim().split('\n').pop() ?? ''}` };
  } finally {
    clearTimeout(timer);
    await handle.remove().catch(() => undefined);
  }
}

async function askLocal(exec: Exec): Promise<HostGpuReport[]> {
  const r = await exec('sh', ['-c', NVIDIA_SMI_QUERY], { timeoutMs: 10_000 });
  return r.exitCode === 0 ? parseGpuQuery(r.stdout) : [];
}

/** The GPUs of the engine's host; never throws (no answer is an answer: no GPU). */
export async function findEngineGpus(
  engine: GpuProbeEngine,
  info: Pick<EngineInfo, 'runtimes'>,
  o: { image: string; exec: Exec; runId: string; timeoutMs?: number },
): Promise<EngineGpus> {
  const where = engine.endpoint.address;
  const found = (gpus: HostGpuReport[], source: EngineGpus['source'], note: string): EngineGpus => ({
    gpus,
    driver: gpus[0]?.driver ?? null,
    source: gpus.length ? source : 'none',
    note,
  });
  if (info.runtimes.includes('nvidia')) {
    const r = await askEngine(engine, o.image, o.runId, o.timeoutMs ?? 60_000);
    if (r.ok) return found(parseGpuQuery(r.stdout), 'engine', `nvidia-smi in a container on ${where}`);
    return found(
      [],
      'none',
      `the engine at ${where} has the NVIDIA runtime, but nvidia-smi in a container of ${o.image} failed: ${r.reason}`,
    );
  }
  if (isLocalEngine(engine.endpoint)) {
    const gpus = await askLocal(o.exec);
    return found(
      gpus,
      'local',
      gpus.length
        ? 'nvidia-smi on this machine (the engine registers no NVIDIA runtime)'
        : 'no NVIDIA GPU on this machine',
    );
  }
  return found([], 'none', `the engine at ${where} has no NVIDIA runtime registered`);
}
