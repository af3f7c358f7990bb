// What a rollout target (the local stack today) offers the commands and `watch`: the
// status with its verdict, a new weight, promotion and rollback. A module of its own so
// watch.ts and the targets import it instead of each other.

import type { Rollout } from '../../config/rollout-schema.js';
import type { MirrorOutcome } from './samples.js';
import type { Comparison, Verdict } from './verdict.js';

export interface StatusReport {
  rollout: Rollout;
  comparison: Comparison;
  verdict: Verdict;
  /** The candidate's state as its target sees it: healthy, unhealthy, exited, stopped, missing, running (n/n). */
  candidateHealth: string;
  /** Whether the candidate can still serve: a dead candidate is a breach of its own. */
  candidateDown: boolean;
  /** A rollout that mirrors: how many mirrored requests the candidate predicted (the agreement counts only those). */
  mirror?: MirrorOutcome;
  notes: string[];
}

export interface PromoteResult {
  /** What the stable service runs now (an image, or the path it is built from). */
  stableNow: string;
  /** The project file changed so that the next deploy keeps the promoted version. */
  configChanged?: string;
  notes: string[];
}

export interface RolloutTarget {
  readonly service: string;
  /**
   * Records the rollout, starts the candidate and routes to it; undone when a part fails. Answers
   * the rollout as recorded. `stackShadowTimeout`: no --shadow-timeout was given, the stack's own
   * applies (locally: proxy.shadow_timeout_ms).
   */
  start(rollout: Rollout, options?: { stackShadowTimeout?: boolean }): Promise<Rollout>;
  status(): Promise<StatusReport>;
  /** Percent of requests to the candidate (a shadow becomes a canary). */
  setWeight(weight: number): Promise<void>;
  promote(): Promise<PromoteResult>;
  /** Weights back to 100/0 and the candidate scaled to 0, kept for inspection unless `destroy`. */
  rollback(reason: string, options?: { destroy?: boolean }): Promise<void>;
}
