// Step 4 of a bakeoff: build and run the runnable candidates, `concurrency` at a time,
// after building once the layers several of them share. Ctrl-C and a lost engine stop
// everything; an engine error in one candidate is that candidate's failure.

import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RUN_LABEL } from '../../adapters/docker/engine.js';
import { generateSharedPrefix } from '../../generators/bakeoff-dockerfile.js';
import type { Failure } from '../../generators/bakeoff-report-schema.js';
import { DockerUnavailableError, MlshipError } from '../../io/errors.js';
import type { TaskControl, TaskSpec } from '../../io/progress.js';
import { inputMounts } from './container-spec.js';
import type { BakeoffDeps, BakeoffEngine } from './deps.js';
import type { BakeoffOptions, Prepared, Selection } from './prepared.js';
import { failedReport, rankingOf } from './report.js';
import { type CandidateOutcome, imageSpec, runCandidate } from './run-candidate.js';
import { scoreCandidate } from './score.js';

export interface RunContext {
  o: BakeoffOptions;
  sel: Selection;
  engine: BakeoffEngine;
  deps: BakeoffDeps;
  hostGpuCount: number;
  concurrency: number;
}

interface RunState {
  abort: AbortController;
  outcomes: Map<string, CandidateOutcome>;
  fatal?: unknown;
}

function candidateTask(p: Prepared, ctx: RunContext, state: RunState): TaskSpec {
  const { o, sel } = ctx;
  return {
    title: `${p.name}: queued`,
    run: async (control) => {
      control.title(`${p.name}: starting`);
      const frozen = sel.lock?.candidates[p.name];
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
            hostGpuCount: ctx.hostGpuCount,
            ...(frozen ? { frozen } : {}),
            ...(o.weightsCache ? { weightsCache: o.weightsCache } : {}),
            matrix: o.matrix,
          },
          ctx.engine,
          ctx.deps,
          control,
          state.abort.signal,
        );
        state.outcomes.set(p.name, outcome);
        await scoreIfPassed(p, outcome, ctx, state, control);
      } catch (e) {
        if (e instanceof DockerUnavailableError || state.abort.signal.aborted) {
          state.fatal ??= e;
          state.abort.abort();
        }
        p.error = e;
        throw e;
      }
      const r = state.outcomes.get(p.name)!.report;
      const secs = r.metrics.runMs === null ? '' : ` in ${(r.metrics.runMs / 1000).toFixed(1)} s`;
      control.title(`${p.name}: ${r.status}${secs}`);
      if (r.failure) throw new Error(`${r.failure.category}: ${r.failure.message}`);
    },
  };
}

/** The score of a candidate that passed, when a score command is configured for it. */
async function scoreIfPassed(
  p: Prepared,
  outcome: CandidateOutcome,
  ctx: RunContext,
  state: RunState,
  control: TaskControl,
): Promise<void> {
  const score = p.candidate.score ?? ctx.o.config.score;
  const r = outcome.report;
  if (!score || r.status !== 'passed' || !r.image) return;
  control.title(`${p.name}: scoring`);
  r.score = await scoreCandidate(
    {
      name: p.name,
      score,
      imageId: r.image.id,
      outputsDir: path.join(ctx.o.outDir, 'outputs', p.name),
      configDir: ctx.o.configDir,
      inputs: inputMounts(p.candidate, ctx.o.configDir),
      runId: ctx.o.runId,
      wanted: rankingOf(ctx.o.config.rank_by)
        .map((k) => k.metric)
        .filter((m) => m.startsWith('score.'))
        .map((m) => m.slice('score.'.length)),
      ...(ctx.o.weightsCache ? { weightsCache: ctx.o.weightsCache } : {}),
    },
    ctx.engine,
    state.abort.signal,
  );
}

/** A candidate whose run threw (the engine failed mid-way) is reported, not fatal. */
function engineErrorOutcome(p: Prepared): CandidateOutcome {
  const message = p.error instanceof Error ? p.error.message : String(p.error);
  const hint = p.error instanceof MlshipError && p.error.hint ? p.error.hint : 'see the error above';
  const failure: Failure = { category: 'engine_error', origin: 'host', message, hint, evidence: [message] };
  return { report: failedReport(p, failure, p.plan), lock: null };
}

/** Builds and runs the candidates that have a plan and no failure yet; their outcomes by name. */
export async function buildAndRunAll(
  prepared: Prepared[],
  ctx: RunContext,
): Promise<Map<string, CandidateOutcome>> {
  const state: RunState = { abort: new AbortController(), outcomes: new Map() };
  const unregister = ctx.deps.cleanup.add('bakeoff builds and runs', () => state.abort.abort());
  const runnable = prepared.filter((p) => p.plan && p.source && p.facts && !p.failure);
  try {
    if (ctx.concurrency > 1 && runnable.length > 1) {
      await warmSharedLayers(
        runnable.map((p) => ({
          name: p.name,
          prefix: generateSharedPrefix(
            imageSpec({
              name: p.name,
              candidate: p.candidate,
              plan: p.plan!,
              facts: p.facts!,
              ...(ctx.sel.lock?.candidates[p.name] ? { frozen: ctx.sel.lock.candidates[p.name]! } : {}),
            }),
          ),
        })),
        ctx.engine,
        ctx.o.runId,
        state.abort.signal,
        (line) => ctx.deps.io.info(line),
      );
    }
    await ctx.deps.io.tasks.run(
      runnable.map((p) => candidateTask(p, ctx, state)),
      { concurrent: ctx.concurrency, exitOnError: false },
    );
  } finally {
    unregister();
  }
  if (state.fatal) throw state.fatal;
  for (const p of runnable) {
    if (p.error !== undefined && !state.outcomes.has(p.name))
      state.outcomes.set(p.name, engineErrorOutcome(p));
  }
  return state.outcomes;
}

/**
 * Builds once, before the concurrent builds, the first steps that several candidates share.
 * Two cold builds of the same steps at the same time would each make their own copy of those
 * layers (neither finds the other's in the cache yet); built first, they are one copy that every
 * candidate's build finds. A failure here is left to the candidates' own builds to report.
 */
async function warmSharedLayers(
  candidates: { name: string; prefix: string }[],
  engine: BakeoffEngine,
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
