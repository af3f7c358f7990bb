// `mlship bakeoff`: the steps in order, each in a file of its own:
// select (select.ts) → sources (fetch-sources.ts) → resolve every candidate before
// anything runs (resolve-plans.ts) → build and run concurrently (run-all.ts) →
// rank, reports and bakeoff.lock (report.ts).

import { mkdir } from 'node:fs/promises';
import type { Candidate } from '../../config/bakeoff-schema.js';
import type { BakeoffReport } from '../../generators/bakeoff-report-schema.js';
import type { BakeoffDeps } from './deps.js';
import { fetchSources } from './fetch-sources.js';
import type { BakeoffOptions } from './prepared.js';
import { assembleReport, type ResultFiles, writeResults } from './report.js';
import { type HostGpu, parseNvidiaSmi } from './resolve.js';
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

async function probeGpus(deps: BakeoffDeps): Promise<{ host: HostGpu; gpus: BakeoffReport['host']['gpus'] }> {
  const r = await deps.exec(
    'nvidia-smi',
    ['--query-gpu=index,name,driver_version,memory.total', '--format=csv,noheader,nounits'],
    { timeoutMs: 10_000 },
  );
  if (r.notFound || r.exitCode !== 0) return { host: { driver: null, count: 0 }, gpus: [] };
  const gpus = parseNvidiaSmi(r.stdout);
  return { host: { driver: gpus[0]?.driver ?? null, count: gpus.length }, gpus };
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
  const { host, gpus } = await probeGpus(deps);
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
    hostGpuCount: host.count,
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
      gpus,
    },
    deps,
  );
  const files = await writeResults(report, prepared, outcomes, o, sel);
  return { report, plans, files };
}
