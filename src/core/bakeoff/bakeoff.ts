// `mlship bakeoff`: the steps in order, each in a file of its own:
// select (select.ts) → sources (fetch-sources.ts) → resolve every candidate before
// anything runs (resolve-plans.ts) → build and run concurrently (run-all.ts) →
// rank, reports and bakeoff.lock (report.ts).

import { mkdir } from 'node:fs/promises';
import type { EngineInfo } from '../../adapters/docker/engine.js';
import type { Candidate } from '../../config/bakeoff-schema.js';
import type { BakeoffReport } from '../../generators/bakeoff-report-schema.js';
import {
  type EngineGpus,
  findEngineGpus,
  isLocalEngine,
  NVIDIA_SMI_QUERY,
  parseGpuQuery,
} from '../doctor/engine-gpus.js';
import type { BakeoffDeps, BakeoffEngine } from './deps.js';
import { fetchSources } from './fetch-sources.js';
import type { BakeoffOptions } from './prepared.js';
import { assembleReport, type ResultFiles, writeResults } from './report.js';
import type { HostGpu } from './resolve.js';
import { type PlannedCandidate, plannedCandidates, resolvePlans } from './resolve-plans.js';
import { buildAndRunAll } from './run-all.js';
import { selectCandidates } from './select.js';

export type { BakeoffOptions } from './prepared.js';
export { rank } from './report.js';
export type { PlannedCandidate } from './resolve-plans.js';

export interface BakeoffResult {
  report: BakeoffReport | null;
  plans: PlannedCandidate[];
  files: ResultFiles | null;
}

/** The image of the short-lived nvidia-smi container: one the candidates need anyway. */
export function gpuProbeImage(o: BakeoffOptions): string {
  return (
    o.config.gpu_probe_image ??
    o.baseImageOverride ??
    (o.config.base_images?.python ?? 'python:{python}-slim').replace('{python}', '3.11')
  );
}

/** The GPUs candidates will get: the engine's host's (`--plan` connects to no engine: this machine's). */
async function probeGpus(
  o: BakeoffOptions,
  engine: BakeoffEngine | undefined,
  info: EngineInfo | undefined,
  deps: BakeoffDeps,
): Promise<EngineGpus> {
  if (!engine || !info) {
    const r = await deps.exec('sh', ['-c', NVIDIA_SMI_QUERY], { timeoutMs: 10_000 });
    const gpus = r.exitCode === 0 ? parseGpuQuery(r.stdout) : [];
    return {
      gpus,
      driver: gpus[0]?.driver ?? null,
      source: gpus.length ? 'local' : 'none',
      note: 'nvidia-smi on this machine (--plan)',
    };
  }
  const found = await findEngineGpus(engine, info, {
    image: gpuProbeImage(o),
    exec: deps.exec,
    runId: o.runId,
  });
  const gpus = found.gpus.map((g) => `${g.name}${g.computeCapability ? ` (${g.computeCapability})` : ''}`);
  deps.io.info(`GPUs: ${gpus.length ? `${gpus.join(', ')}, driver ${found.driver}` : 'none'}; ${found.note}`);
  return found;
}

/** `torch_index` of the config replaces the matrix's wheel index (private mirrors). */
function withTorchIndex(o: BakeoffOptions): BakeoffOptions {
  const index = o.config.torch_index;
  return index ? { ...o, matrix: { ...o.matrix, torchIndex: index } } : o;
}

/** Default parallelism: GPU candidates by the GPU count, others by half the CPUs. */
export function defaultConcurrency(candidates: Candidate[], cpus: number, gpuCount: number): number {
  const wantsGpu = candidates.some((c) => c.gpus === 'all' || c.gpus > 0);
  const limit = wantsGpu ? Math.max(1, gpuCount) : Math.max(1, Math.floor(cpus / 2));
  return Math.max(1, Math.min(limit, candidates.length));
}

export async function runBakeoff(options: BakeoffOptions, deps: BakeoffDeps): Promise<BakeoffResult> {
  const o = withTorchIndex(options);
  const sel = await selectCandidates(o);
  // Engine first: no engine, no bakeoff (exit 3 with how to start it).
  const engine = o.planOnly ? undefined : await deps.engine();
  const [info, version] = engine
    ? await Promise.all([engine.info(), engine.version()])
    : [undefined, undefined];
  const probe = await probeGpus(o, engine, info, deps);
  const host: HostGpu = { driver: probe.driver, count: probe.gpus.length };
  const cpus = info?.cpus ?? 1;
  const concurrency =
    o.concurrency ??
    o.config.concurrency ??
    defaultConcurrency(
      sel.names.map((n) => o.config.candidates[n]!),
      cpus,
      host.count,
    );

  const prepared = await fetchSources(o, sel, concurrency, deps);
  if (o.weightsCache && !o.planOnly) await mkdir(o.weightsCache, { recursive: true });
  resolvePlans(prepared, o, host, deps.io);
  const plans = plannedCandidates(prepared);
  if (o.planOnly) return { report: null, plans, files: null };

  const outcomes = await buildAndRunAll(prepared, {
    o,
    sel,
    engine: engine!,
    deps,
    // GPU memory is sampled with the local nvidia-smi: only right when the engine is local.
    hostGpuCount: isLocalEngine(engine!.endpoint) ? host.count : 0,
    concurrency,
  });
  const report = assembleReport(
    prepared,
    outcomes,
    o,
    {
      cpus,
      memoryBytes: info?.memoryBytes ?? 0,
      engine: version ? `Docker ${version.version} (API ${version.apiVersion})` : 'unknown',
      driver: host.driver,
      gpus: probe.gpus,
      gpuSource: probe.source,
    },
    deps,
  );
  const files = await writeResults(report, prepared, outcomes, o, sel);
  return { report, plans, files };
}
