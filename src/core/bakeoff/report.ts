// Step 5 of a bakeoff: the ranked report (JSON, Markdown, HTML) and bakeoff.lock.
// Ranking is pure (passed candidates by the metrics in order, then failed ones).

import path from 'node:path';
import type { RankKey, RankMetric } from '../../config/bakeoff-schema.js';
import { renderHtmlReport, renderMarkdownReport } from '../../generators/bakeoff-report.js';
import {
  type BakeoffReport,
  type CandidateReport,
  type Failure,
  type RankBy,
  REPORT_SCHEMA_VERSION,
} from '../../generators/bakeoff-report-schema.js';
import { writeFileAtomic } from '../../io/files.js';
import { cloneFailure } from './classify.js';
import { parseMemory } from './container-spec.js';
import type { BakeoffDeps } from './deps.js';
import { LOCK_VERSION, type LockEntry, lockText, readLock } from './lock.js';
import type { BakeoffOptions, Prepared, Selection } from './prepared.js';
import type { ResolvedPlan } from './resolve.js';
import { type CandidateOutcome, reportPlan } from './run-candidate.js';

const METRIC: Record<RankMetric, (c: CandidateReport) => number | null> = {
  run_time: (c) => c.metrics.runMs,
  build_time: (c) => c.metrics.buildMs,
  peak_memory: (c) => c.metrics.peakMemoryBytes,
  gpu_memory: (c) => c.metrics.gpuMemoryBytes,
  image_size: (c) => c.metrics.imageSizeBytes,
};

/** `rank_by` as metric and direction: built-ins written bare are ascending (lower wins). */
export function rankingOf(keys: readonly (RankKey | RankBy)[]): RankBy[] {
  return keys.map((k) => {
    if (typeof k === 'string') return { metric: k, direction: 'asc' };
    if ('metric' in k && 'direction' in k && typeof k.direction === 'string') return k as RankBy;
    const [metric, direction] = Object.entries(k)[0]!;
    return { metric, direction: direction as RankBy['direction'] };
  });
}

/** A candidate's value of a metric: a built-in measure, or `score.<name>`; null when unknown. */
export function metricValue(c: CandidateReport, metric: string): number | null {
  if (metric in METRIC) return METRIC[metric as RankMetric](c);
  const v = c.score?.metrics[metric.replace(/^score\./, '')];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Passed candidates by the metrics in order (each in its direction; unknown last), then failed ones. */
export function rank(candidates: CandidateReport[], by: readonly (RankKey | RankBy)[]): CandidateReport[] {
  const keys = rankingOf(by);
  const passed = candidates.filter((c) => c.status === 'passed');
  const failed = candidates.filter((c) => c.status !== 'passed');
  passed.sort((a, b) => {
    for (const { metric, direction } of keys) {
      const va = metricValue(a, metric);
      const vb = metricValue(b, metric);
      if (va === vb) continue;
      if (va === null) return 1;
      if (vb === null) return -1;
      return (va < vb ? -1 : 1) * (direction === 'desc' ? -1 : 1);
    }
    return a.name.localeCompare(b.name);
  });
  return [...passed.map((c, i) => ({ ...c, rank: i + 1 })), ...failed.map((c) => ({ ...c, rank: null }))];
}

export function failedReport(p: Prepared, failure: Failure, plan: ResolvedPlan | undefined): CandidateReport {
  return {
    name: p.name,
    status: 'failed',
    rank: null,
    source: { repo: p.candidate.repo, ref: p.candidate.ref, commit: p.source?.commit ?? null },
    plan: plan ? reportPlan(plan) : null,
    image: null,
    metrics: {
      cloneMs: Math.round(p.cloneMs),
      buildMs: null,
      runMs: null,
      containerMs: null,
      peakMemoryBytes: null,
      memoryLimitBytes: p.candidate.memory ? parseMemory(p.candidate.memory) : null,
      gpuMemoryBytes: null,
      imageSizeBytes: null,
    },
    run: { exitCode: null, timedOut: false, oomKilled: false, gpus: p.candidate.gpus },
    outputs: [],
    failure,
    log: { phase: 'clone', lines: p.cloneLog ?? [] },
  };
}

export interface HostFacts {
  cpus: number;
  memoryBytes: number;
  engine: string;
  driver: BakeoffReport['host']['driver'];
  gpus: BakeoffReport['host']['gpus'];
  gpuSource?: BakeoffReport['host']['gpuSource'];
}

export function assembleReport(
  prepared: Prepared[],
  outcomes: Map<string, CandidateOutcome>,
  o: BakeoffOptions,
  host: HostFacts,
  deps: Pick<BakeoffDeps, 'now' | 'mlshipVersion'>,
): BakeoffReport {
  const reports = prepared.map(
    (p) =>
      outcomes.get(p.name)?.report ??
      failedReport(p, p.failure ?? cloneFailure(p.candidate.repo, ''), p.plan),
  );
  const ranked = rank(reports, o.config.rank_by);
  const passed = ranked.filter((c) => c.status === 'passed').length;
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { name: 'mlship', version: deps.mlshipVersion },
    runId: o.runId,
    createdAt: deps.now().toISOString(),
    config: o.configFile,
    rankBy: rankingOf(o.config.rank_by).map((r) => r.metric),
    ranking: rankingOf(o.config.rank_by),
    host: {
      cpus: host.cpus,
      memoryBytes: host.memoryBytes,
      engine: host.engine,
      driver: host.driver,
      gpus: host.gpus,
      ...(host.gpuSource ? { gpuSource: host.gpuSource } : {}),
    },
    weightsCache: o.weightsCache ?? null,
    summary: {
      total: ranked.length,
      passed,
      failed: ranked.length - passed,
      best: ranked.find((c) => c.rank === 1)?.name ?? null,
    },
    candidates: ranked,
  };
}

export interface ResultFiles {
  json: string;
  markdown: string;
  html: string;
  lock: string | null;
}

/** Writes the three reports, and (unless frozen) the lock with this run's entries. */
export async function writeResults(
  report: BakeoffReport,
  prepared: Prepared[],
  outcomes: Map<string, CandidateOutcome>,
  o: BakeoffOptions,
  sel: Selection,
): Promise<ResultFiles> {
  const files: ResultFiles = {
    json: path.join(o.outDir, 'bakeoff-report.json'),
    markdown: path.join(o.outDir, 'bakeoff-report.md'),
    html: path.join(o.outDir, 'bakeoff-report.html'),
    lock: o.frozen ? null : o.lockFile,
  };
  await writeFileAtomic(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(files.markdown, renderMarkdownReport(report));
  await writeFileAtomic(files.html, renderHtmlReport(report));
  if (!files.lock) return files;
  // Candidates not run this time (--only) keep their entries, if still in the config.
  const previous = await readLock(files.lock).catch(() => undefined);
  const entries: Record<string, LockEntry> = Object.fromEntries(
    Object.entries(previous?.candidates ?? {}).filter(([n]) => sel.all.includes(n) && !sel.names.includes(n)),
  );
  for (const p of prepared) {
    const l = outcomes.get(p.name)?.lock;
    if (l && p.source) {
      entries[p.name] = { repo: p.candidate.repo, ref: p.candidate.ref, commit: p.source.commit, ...l };
    }
  }
  await writeFileAtomic(files.lock, lockText({ lockVersion: LOCK_VERSION, candidates: entries }));
  return files;
}
