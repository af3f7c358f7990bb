// `mlship bakeoff`: sources → resolve (every candidate, before anything runs) →
// build and run candidates concurrently → rank → reports and bakeoff.lock.

import { createHash } from 'node:crypto';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RUN_LABEL } from '../../adapters/docker/engine.js';
import { GitError } from '../../adapters/git.js';
import type { BakeoffConfig, Candidate, RankMetric } from '../../config/bakeoff-schema.js';
import { generateBakeoffDockerfile, generateSharedPrefix } from '../../generators/bakeoff-dockerfile.js';
import { renderHtmlReport, renderMarkdownReport } from '../../generators/bakeoff-report.js';
import {
  type BakeoffReport,
  type CandidateReport,
  type Failure,
  REPORT_SCHEMA_VERSION,
} from '../../generators/bakeoff-report-schema.js';
import { DockerUnavailableError, MlshipError, UsageError } from '../../io/errors.js';
import { writeFileAtomic } from '../../io/files.js';
import type { TaskSpec } from '../../io/progress.js';
import { cloneFailure } from './classify.js';
import type { BakeoffDeps } from './deps.js';
import { inspectRepo, type RepoFacts } from './detect.js';
import { type BakeoffLock, LOCK_VERSION, type LockEntry, lockText, readLock } from './lock.js';
import type { Matrix } from './matrix.js';
import {
  checkDriver,
  DriverTooOldError,
  type HostGpu,
  IncompatibleError,
  parseNvidiaSmi,
  type ResolvedPlan,
  resolveCandidate,
} from './resolve.js';
import {
  type CandidateOutcome,
  imageSpec,
  inputMounts,
  parseMemory,
  reportPlan,
  runCandidate,
} from './run-candidate.js';
import { prepareSource, type SourceTree, shortCommit } from './source.js';

export interface BakeoffOptions {
  /** The config file as shown to the user. */
  configFile: string;
  configDir: string;
  config: BakeoffConfig;
  matrix: Matrix;
  outDir: string;
  cacheDir: string;
  lockFile: string;
  runId: string;
  frozen: boolean;
  /** Resolve and show the plans (and Dockerfiles) without building or running. */
  planOnly: boolean;
  concurrency?: number;
  baseImageOverride?: string;
  /** Run only these candidates. */
  only?: string[];
}

export interface PlannedCandidate {
  name: string;
  commit: string | null;
  plan: ResolvedPlan | null;
  dockerfile: string | null;
  failure: Failure | null;
}

export interface BakeoffResult {
  report: BakeoffReport | null;
  plans: PlannedCandidate[];
  files: { json: string; markdown: string; html: string; lock: string | null } | null;
}

interface Prepared {
  name: string;
  candidate: Candidate;
  source?: SourceTree;
  facts?: RepoFacts;
  cloneMs: number;
  failure?: Failure;
  cloneLog?: string[];
  /** An error that is not the candidate's own failure (engine gone, a bug). */
  error?: unknown;
  plan?: ResolvedPlan;
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

/** Default parallelism: GPU candidates by the GPU count, others by half the CPUs. */
export function defaultConcurrency(candidates: Candidate[], cpus: number, gpuCount: number): number {
  const wantsGpu = candidates.some((c) => c.gpus === 'all' || c.gpus > 0);
  const limit = wantsGpu ? Math.max(1, gpuCount) : Math.max(1, Math.floor(cpus / 2));
  return Math.max(1, Math.min(limit, candidates.length));
}

const METRIC: Record<RankMetric, (c: CandidateReport) => number | null> = {
  run_time: (c) => c.metrics.runMs,
  build_time: (c) => c.metrics.buildMs,
  peak_memory: (c) => c.metrics.peakMemoryBytes,
  gpu_memory: (c) => c.metrics.gpuMemoryBytes,
  image_size: (c) => c.metrics.imageSizeBytes,
};

/** Passed candidates by the metrics in order (lower wins; unknown last), then failed ones. */
export function rank(candidates: CandidateReport[], by: RankMetric[]): CandidateReport[] {
  const passed = candidates.filter((c) => c.status === 'passed');
  const failed = candidates.filter((c) => c.status !== 'passed');
  passed.sort((a, b) => {
    for (const m of by) {
      const va = METRIC[m](a) ?? Number.POSITIVE_INFINITY;
      const vb = METRIC[m](b) ?? Number.POSITIVE_INFINITY;
      if (va !== vb) return va < vb ? -1 : 1;
    }
    return a.name.localeCompare(b.name);
  });
  return [...passed.map((c, i) => ({ ...c, rank: i + 1 })), ...failed.map((c) => ({ ...c, rank: null }))];
}

function failedReport(p: Prepared, failure: Failure, plan: ResolvedPlan | undefined): CandidateReport {
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

async function checkInputs(
  config: BakeoffConfig,
  names: string[],
  configDir: string,
  file: string,
): Promise<void> {
  const missing: string[] = [];
  for (const name of names) {
    for (const m of inputMounts(config.candidates[name]!, configDir)) {
      try {
        await access(m.source!);
      } catch {
        missing.push(`candidates.${name}.inputs: ${m.source} does not exist`);
      }
    }
  }
  if (missing.length) {
    throw new UsageError(`${file}: ${missing.length} input${missing.length === 1 ? '' : 's'} not found`, {
      details: missing,
      hint: 'input paths are relative to the config file',
    });
  }
}

export async function runBakeoff(o: BakeoffOptions, deps: BakeoffDeps): Promise<BakeoffResult> {
  const { io } = deps;
  const all = Object.keys(o.config.candidates);
  const unknown = (o.only ?? []).filter((n) => !all.includes(n));
  if (unknown.length) {
    throw new UsageError(`unknown candidate${unknown.length === 1 ? '' : 's'}: ${unknown.join(', ')}`, {
      hint: `candidates in ${o.configFile}: ${all.join(', ')}`,
    });
  }
  const names = o.only?.length ? all.filter((n) => o.only!.includes(n)) : all;
  await checkInputs(o.config, names, o.configDir, o.configFile);

  let lock: BakeoffLock | undefined;
  if (o.frozen) {
    lock = await readLock(o.lockFile);
    const missing = names.filter((n) => !lock!.candidates[n]);
    if (missing.length) {
      throw new UsageError(`${o.lockFile} has no entry for ${missing.join(', ')}`, {
        hint: 'run without --frozen to record them (the lock only covers candidates whose image was built)',
      });
    }
  }

  // Engine first: no engine, no bakeoff (exit 3 with how to start it).
  const engine = o.planOnly ? undefined : await deps.engine();
  const [info, version] = engine
    ? await Promise.all([engine.info(), engine.version()])
    : [undefined, undefined];
  const { host, gpus } = await probeGpus(deps);
  const cpus = info?.cpus ?? 1;
  const candidates = names.map((n) => o.config.candidates[n]!);
  const concurrency =
    o.concurrency ?? o.config.concurrency ?? defaultConcurrency(candidates, cpus, host.count);

  // -- sources --------------------------------------------------------------------
  const prepared: Prepared[] = names.map((name) => ({
    name,
    candidate: o.config.candidates[name]!,
    cloneMs: 0,
  }));
  const sourceTasks: TaskSpec[] = prepared.map((p) => ({
    title: `${p.name}: fetch ${p.candidate.repo}@${p.candidate.ref}`,
    run: async (control) => {
      const t0 = performance.now();
      try {
        p.source = await prepareSource(
          deps.git,
          o.cacheDir,
          p.candidate.repo,
          o.configDir,
          p.candidate.ref,
          lock?.candidates[p.name]?.commit,
        );
        p.facts = await inspectRepo(path.join(p.source.contextDir, p.source.sourceDir));
        control.title(`${p.name}: ${shortCommit(p.source.commit)}`);
      } catch (e) {
        if (!(e instanceof GitError)) {
          p.error = e;
          throw e;
        }
        p.failure = cloneFailure(p.candidate.repo, e.stderr, e.submodule);
        p.cloneLog = e.stderr.split('\n').filter(Boolean).slice(-50);
        throw new Error(p.failure.message);
      } finally {
        p.cloneMs = performance.now() - t0;
      }
    },
  }));
  // With live progress, outcomes come back in completion order: errors are kept on each candidate.
  await io.tasks.run(sourceTasks, { concurrent: Math.max(concurrency, 2), exitOnError: false });
  const unexpected = prepared.find((p) => p.error !== undefined);
  if (unexpected) throw unexpected.error;

  // -- resolve: every problem of every candidate before anything runs ---------------
  const incompatible: string[] = [];
  const driverProblems: string[] = [];
  for (const p of prepared) {
    if (!p.source || !p.facts) continue;
    const compilesCuda =
      p.candidate.compiles_cuda === undefined
        ? p.facts.compilesCuda
        : { yes: p.candidate.compiles_cuda, evidence: ['compiles_cuda in the config'] };
    try {
      p.plan = resolveCandidate(p.candidate, {
        matrix: o.matrix,
        compilesCuda,
        host,
        ...(o.config.base_images ? { baseImages: o.config.base_images } : {}),
        ...(o.baseImageOverride ? { baseImageOverride: o.baseImageOverride } : {}),
      });
    } catch (e) {
      if (e instanceof IncompatibleError)
        incompatible.push(`${p.name}: ${e.message}`, ...e.details.map((d) => `  ${d}`));
      else if (e instanceof DriverTooOldError)
        driverProblems.push(`${p.name}: ${e.message}`, ...e.details.map((d) => `  ${d}`));
      else throw e;
      continue;
    }
    const wantsGpu = p.candidate.gpus === 'all' || p.candidate.gpus > 0;
    if (wantsGpu && host.count === 0) {
      p.failure = {
        category: 'host_gpu_unavailable',
        origin: 'host',
        message: 'the candidate requests a GPU, but nvidia-smi finds no NVIDIA driver or GPU on this host',
        hint: 'run it on a GPU machine (with the NVIDIA Container Toolkit), or set gpus: 0 to try it on CPU',
        evidence: ['nvidia-smi: not found or no GPU'],
      };
      continue;
    }
    const driver = checkDriver(p.name, p.plan, o.matrix, host);
    if (driver?.fatal) driverProblems.push(driver.message);
    else if (driver) io.warn(driver.message);
  }
  if (incompatible.length) {
    throw new UsageError('impossible framework/CUDA/Python combinations: nothing was built', {
      details: incompatible,
      hint: 'change the candidates to one of the nearest valid combinations, or extend the matrix with --matrix <file>',
    });
  }
  if (driverProblems.length) {
    throw new MlshipError(
      'GPU_DRIVER_TOO_OLD',
      'environment',
      'the NVIDIA driver is too old for these candidates: nothing was run',
      {
        details: driverProblems,
        hint: 'update the NVIDIA driver, or pin an older cuda (or framework_version) for these candidates',
      },
    );
  }
  for (const p of prepared) {
    if (p.plan) io.info(`${p.name}: ${p.plan.baseImage}; ${p.plan.reasons.join('; ')}`);
    if (p.failure) io.warn(`${p.name}: ${p.failure.message} (${p.failure.hint})`);
  }

  const plans: PlannedCandidate[] = prepared.map((p) => ({
    name: p.name,
    commit: p.source?.commit ?? null,
    plan: p.plan ?? null,
    dockerfile:
      p.plan && p.facts && !p.failure
        ? generateBakeoffDockerfile(
            imageSpec({ name: p.name, candidate: p.candidate, plan: p.plan, facts: p.facts }),
          )
        : null,
    failure: p.failure ?? null,
  }));
  if (o.planOnly) return { report: null, plans, files: null };

  // -- build and run ----------------------------------------------------------------
  const abort = new AbortController();
  const unregister = deps.cleanup.add('bakeoff builds and runs', () => abort.abort());
  const outcomes = new Map<string, CandidateOutcome>();
  let fatal: unknown;
  const runnable = prepared.filter((p) => p.plan && p.source && p.facts && !p.failure);
  const tasks: TaskSpec[] = runnable.map((p) => ({
    title: `${p.name}: queued`,
    run: async (control) => {
      control.title(`${p.name}: starting`);
      const frozen = lock?.candidates[p.name];
      try {
        const outcome = await runCandidate(
          {
            name: p.name,
            candidate: p.candidate,
            plan: p.plan!,
            facts: p.facts!,
            source: p.source!,
            cloneMs: p.cloneMs,
            runId: o.runId,
            configDir: o.configDir,
            outputsDir: path.join(o.outDir, 'outputs', p.name),
            hostGpuCount: host.count,
            ...(frozen ? { frozen } : {}),
          },
          engine!,
          deps,
          control,
          abort.signal,
        );
        outcomes.set(p.name, outcome);
      } catch (e) {
        if (e instanceof DockerUnavailableError || abort.signal.aborted) {
          fatal ??= e;
          abort.abort();
        }
        p.error = e;
        throw e;
      }
      const r = outcomes.get(p.name)!.report;
      const secs = r.metrics.runMs === null ? '' : ` in ${(r.metrics.runMs / 1000).toFixed(1)} s`;
      control.title(`${p.name}: ${r.status}${secs}`);
      if (r.failure) throw new Error(`${r.failure.category}: ${r.failure.message}`);
    },
  }));
  try {
    if (concurrency > 1 && runnable.length > 1) {
      await warmSharedLayers(
        runnable.map((p) => ({
          name: p.name,
          prefix: generateSharedPrefix(
            imageSpec({
              name: p.name,
              candidate: p.candidate,
              plan: p.plan!,
              facts: p.facts!,
              ...(lock?.candidates[p.name] ? { frozen: lock.candidates[p.name]! } : {}),
            }),
          ),
        })),
        engine!,
        o.runId,
        abort.signal,
        (line) => io.info(line),
      );
    }
    await io.tasks.run(tasks, { concurrent: concurrency, exitOnError: false });
  } finally {
    unregister();
  }
  if (fatal) throw fatal;
  // A candidate whose run threw (the engine failed mid-way) is reported, not fatal.
  for (const p of runnable) {
    if (p.error === undefined || outcomes.has(p.name)) continue;
    const message = p.error instanceof Error ? p.error.message : String(p.error);
    const hint = p.error instanceof MlshipError && p.error.hint ? p.error.hint : 'see the error above';
    const failure: Failure = { category: 'engine_error', origin: 'host', message, hint, evidence: [message] };
    outcomes.set(p.name, { report: failedReport(p, failure, p.plan), lock: null });
  }

  const reports = prepared.map(
    (p) =>
      outcomes.get(p.name)?.report ??
      failedReport(p, p.failure ?? cloneFailure(p.candidate.repo, ''), p.plan),
  );
  const ranked = rank(reports, o.config.rank_by);
  const passed = ranked.filter((c) => c.status === 'passed').length;
  const report: BakeoffReport = {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { name: 'mlship', version: deps.mlshipVersion },
    runId: o.runId,
    createdAt: deps.now().toISOString(),
    config: o.configFile,
    rankBy: o.config.rank_by,
    host: {
      cpus,
      memoryBytes: info?.memoryBytes ?? 0,
      engine: version ? `Docker ${version.version} (API ${version.apiVersion})` : 'unknown',
      driver: host.driver,
      gpus,
    },
    summary: {
      total: ranked.length,
      passed,
      failed: ranked.length - passed,
      best: ranked.find((c) => c.rank === 1)?.name ?? null,
    },
    candidates: ranked,
  };

  const files = {
    json: path.join(o.outDir, 'bakeoff-report.json'),
    markdown: path.join(o.outDir, 'bakeoff-report.md'),
    html: path.join(o.outDir, 'bakeoff-report.html'),
    lock: o.frozen ? null : o.lockFile,
  };
  await writeFileAtomic(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(files.markdown, renderMarkdownReport(report));
  await writeFileAtomic(files.html, renderHtmlReport(report));
  if (files.lock) {
    // Candidates not run this time (--only) keep their entries, if still in the config.
    const previous = await readLock(files.lock).catch(() => undefined);
    const entries: Record<string, LockEntry> = Object.fromEntries(
      Object.entries(previous?.candidates ?? {}).filter(([n]) => all.includes(n) && !names.includes(n)),
    );
    for (const p of prepared) {
      const l = outcomes.get(p.name)?.lock;
      if (l && p.source) {
        entries[p.name] = { repo: p.candidate.repo, ref: p.candidate.ref, commit: p.source.commit, ...l };
      }
    }
    await writeFileAtomic(files.lock, lockText({ lockVersion: LOCK_VERSION, candidates: entries }));
  }
  return { report, plans, files };
}

/**
 * Builds once, before the concurrent builds, the first steps that several candidates share.
 * Two cold builds of the same steps at the same time would each make their own copy of those
 * layers (neither finds the other's in the cache yet); built first, they are one copy that every
 * candidate's build finds. A failure here is left to the candidates' own builds to report.
 */
async function warmSharedLayers(
  candidates: { name: string; prefix: string }[],
  engine: Awaited<ReturnType<BakeoffDeps['engine']>>,
  runId: string,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<void> {
  const groups = new Map<string, string[]>();
  for (const c of candidates) groups.set(c.prefix, [...(groups.get(c.prefix) ?? []), c.name]);
  for (const [prefix, names] of groups) {
    if (names.length < 2 || signal.aborted) continue;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mlship-bakeoff-shared-'));
    try {
      await writeFile(path.join(dir, 'Dockerfile'), prefix);
      const hash = createHash('sha256').update(prefix).digest('hex').slice(0, 12);
      const t0 = performance.now();
      await engine.build({
        context: dir,
        tags: [`mlship-bakeoff/shared:${hash}`],
        labels: { [RUN_LABEL]: runId },
        signal,
      });
      log(
        `shared layers of ${names.join(', ')}: built once (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
    } catch {
      // Each candidate's build runs the same steps and reports what failed.
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
