// A rollout's samples from what the wrapped services log, one JSON object per line (app/logs.py,
// server.js): "request" lines (every answered request: status, duration, request id),
// "shadow" lines (a mirrored request predicted in the background) and "answer" lines (the
// answers the proxy asked both versions to record), as `docker logs` returns them.

import type { Rollout } from '../../config/rollout-schema.js';
import type { RequestSample, RolloutSamples } from './verdict.js';

const PREDICT_PATHS = new Set(['/predict', '/predict/batch']);

export interface ParsedLog {
  samples: RequestSample[];
  answers: Map<string, unknown>;
  /** Lines that were not JSON objects (a service that is not a wrapped one logs those). */
  otherLines: number;
  /** Mirrored requests this service predicted (its "shadow" lines; also among `samples`). */
  shadowPredictions: number;
}

export function parseServiceLog(lines: Iterable<string>): ParsedLog {
  const samples: RequestSample[] = [];
  const answers = new Map<string, unknown>();
  let otherLines = 0;
  let shadowPredictions = 0;
  for (const raw of lines) {
    const line = raw.trim();
    if (!line) continue;
    let entry: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(line.slice(line.indexOf('{')));
      if (!parsed || typeof parsed !== 'object') throw new Error('not an object');
      entry = parsed as Record<string, unknown>;
    } catch {
      otherLines++;
      continue;
    }
    const rid = typeof entry.request_id === 'string' ? entry.request_id : undefined;
    const status = typeof entry.status === 'number' ? entry.status : undefined;
    const duration = typeof entry.duration_ms === 'number' ? entry.duration_ms : undefined;
    if (!rid) continue;
    if (entry.msg === 'answer' && 'answer' in entry) answers.set(rid, entry.answer);
    else if (
      (entry.msg === 'request' || entry.msg === 'shadow') &&
      typeof entry.path === 'string' &&
      PREDICT_PATHS.has(entry.path) &&
      status !== undefined &&
      duration !== undefined &&
      // 202: a mirrored request accepted, whose outcome its "shadow" line carries.
      status !== 202
    ) {
      samples.push({ requestId: rid, status, durationMs: duration });
      if (entry.msg === 'shadow') shadowPredictions++;
    }
  }
  return { samples, answers, otherLines, shadowPredictions };
}

/**
 * What became of the mirrored requests: every prediction the stable version answered was
 * mirrored; those the candidate has no "shadow" line for were dropped by its full queue,
 * skipped by the proxy (the mirror's timeouts, then 5 s of skip), or are still being predicted.
 */
export function mirrorOutcome(stable: ParsedLog, candidate: ParsedLog): MirrorOutcome {
  const mirrored = stable.samples.length;
  const predicted = candidate.shadowPredictions;
  return { mirrored, predicted, notPredicted: Math.max(0, mirrored - predicted) };
}

export interface MirrorOutcome {
  mirrored: number;
  predicted: number;
  notPredicted: number;
}

/** Stable and candidate logs → the rollout's samples, answers paired by request id. */
export function rolloutSamples(stable: ParsedLog, candidate: ParsedLog): RolloutSamples {
  const pairs: RolloutSamples['pairs'] = [];
  for (const [requestId, answer] of stable.answers) {
    if (candidate.answers.has(requestId))
      pairs.push({ requestId, stable: answer, candidate: candidate.answers.get(requestId) });
  }
  return { stable: stable.samples, candidate: candidate.samples, pairs };
}

/** The candidate's part of the requests, for the power estimate (a shadow's: all, weighing as the stable's). */
export function candidateShare(rollout: Pick<Rollout, 'mode' | 'weight'>): number {
  return rollout.mode === 'shadow' ? 0.5 : Math.max(rollout.weight, 1) / 100;
}
