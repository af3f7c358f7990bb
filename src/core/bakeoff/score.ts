// The score of a candidate that ran: the user's command, in the candidate's image (or a
// scoring image of its own), with the candidate's copied outputs, the shared inputs and
// the config directory mounted read-only; it prints one JSON object of named metrics.
// A scoring problem is its own failure (score_failed) and never changes the run's result.

import { mkdir } from 'node:fs/promises';
import type { ContainerHandle, MountSpec } from '../../adapters/docker/engine.js';
import { RUN_LABEL } from '../../adapters/docker/engine.js';
import type { ScoreConfig } from '../../config/bakeoff-schema.js';
import type { Failure, ScoreReport } from '../../generators/bakeoff-report-schema.js';
import { DockerUnavailableError } from '../../io/errors.js';
import { stripAnsi } from './classify.js';
import { CANDIDATE_LABEL, INPUTS_DIR, parseDuration, WEIGHTS_DIR, weightsEnv } from './container-spec.js';
import type { BakeoffEngine } from './deps.js';

export const OUTPUTS_DIR = '/workspace/outputs';
export const CONFIG_DIR = '/workspace/bakeoff';

export interface ScoreJob {
  name: string;
  score: ScoreConfig;
  /** The candidate's image (scored in it unless `score.image` is set). */
  imageId: string;
  /** Host directory with the candidate's copied outputs. */
  outputsDir: string;
  configDir: string;
  inputs: MountSpec[];
  weightsCache?: string;
  runId: string;
  /** Score metrics `rank_by` needs (without the "score." prefix). */
  wanted: string[];
}

function failed(message: string, hint: string, evidence: string[]): Failure {
  return { category: 'score_failed', origin: 'config', message, hint, evidence };
}

function fail(message: string, hint: string, evidence: string[]): { failure: Failure } {
  return { failure: failed(message, hint, evidence) };
}

/** The metrics of a score command's output: the last line that is a JSON object of numbers. */
export function parseScore(
  lines: string[],
  wanted: string[],
): { metrics: Record<string, number> } | { failure: Failure } {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (!line.startsWith('{')) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) continue;
    const entries = Object.entries(value as Record<string, unknown>);
    const bad = entries.filter(([, v]) => typeof v !== 'number' || !Number.isFinite(v)).map(([k]) => k);
    if (bad.length) {
      return fail(
        `the score command printed values that are not numbers: ${bad.join(', ')}`,
        'print numbers only, e.g. {"pck": 0.83, "latency_ms": 41}',
        [line],
      );
    }
    const metrics = Object.fromEntries(entries) as Record<string, number>;
    const missing = wanted.filter((w) => !(w in metrics));
    if (missing.length) {
      return fail(
        `the score command printed no ${missing.join(', ')}, which rank_by ranks by`,
        `print ${missing.map((m) => `"${m}"`).join(', ')} in its JSON object, or change rank_by`,
        [line],
      );
    }
    return { metrics };
  }
  return fail(
    'the score command printed no JSON object of metrics',
    'print one line such as {"pck": 0.83} on stdout (the last such line counts)',
    lines.slice(-3),
  );
}

async function startScore(job: ScoreJob, engine: BakeoffEngine): Promise<ContainerHandle> {
  return engine.start({
    image: job.score.image ?? job.imageId,
    cmd: ['sh', '-c', job.score.run],
    workdir: CONFIG_DIR,
    env: {
      ...(job.weightsCache ? weightsEnv() : {}),
      MLSHIP_OUTPUTS: OUTPUTS_DIR,
      MLSHIP_INPUTS: INPUTS_DIR,
      MLSHIP_CANDIDATE: job.name,
    },
    mounts: [
      { type: 'bind', source: job.outputsDir, target: OUTPUTS_DIR, readOnly: true },
      { type: 'bind', source: job.configDir, target: CONFIG_DIR, readOnly: true },
      ...job.inputs,
      ...(job.weightsCache ? [{ type: 'bind' as const, source: job.weightsCache, target: WEIGHTS_DIR }] : []),
    ],
    labels: { [RUN_LABEL]: job.runId, [CANDIDATE_LABEL]: job.name },
  });
}

/** Runs the score command once; its metrics, or why there are none. */
export async function scoreCandidate(
  job: ScoreJob,
  engine: BakeoffEngine,
  signal: AbortSignal,
): Promise<ScoreReport> {
  const t0 = performance.now();
  const done = (r: { metrics: Record<string, number> } | { failure: Failure }): ScoreReport => ({
    metrics: 'metrics' in r ? r.metrics : {},
    failure: 'failure' in r ? r.failure : null,
    ms: Math.round(performance.now() - t0),
  });
  await mkdir(job.outputsDir, { recursive: true });
  let handle: ContainerHandle;
  try {
    handle = await startScore(job, engine);
  } catch (e) {
    if (e instanceof DockerUnavailableError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    return done(
      fail(`the score command could not start: ${message}`, 'check score.image and score.run', [message]),
    );
  }
  let timedOut = false;
  const timeoutMs = parseDuration(job.score.timeout);
  const timer = setTimeout(() => {
    timedOut = true;
    void handle.kill('SIGKILL').catch(() => undefined);
  }, timeoutMs);
  const onAbort = () => void handle.kill('SIGKILL').catch(() => undefined);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const { exitCode } = await handle.wait();
    const lines = stripAnsi(await handle.logs(200))
      .split('\n')
      .filter((l) => l.trim());
    if (timedOut) {
      return done(
        fail(
          `the score command did not finish within ${Math.round(timeoutMs / 1000)} s`,
          'raise score.timeout, or make the scoring faster',
          lines.slice(-2),
        ),
      );
    }
    if (exitCode !== 0) {
      return done(
        fail(
          `the score command exited with code ${exitCode}`,
          'its output below shows why; it runs in /workspace/bakeoff with the outputs in /workspace/outputs',
          lines.slice(-3),
        ),
      );
    }
    return done(parseScore(lines, job.wanted));
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    await handle.remove();
  }
}
