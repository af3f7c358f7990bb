// The state one candidate carries through the steps of a bakeoff (sources → resolve →
// build and run → report), and the options those steps share. One object per
// candidate, filled in step by step, so each step reads what the previous one found.

import type { BakeoffConfig, Candidate } from '../../config/bakeoff-schema.js';
import type { Failure } from '../../generators/bakeoff-report-schema.js';
import type { RepoFacts } from './detect.js';
import type { BakeoffLock } from './lock.js';
import type { Matrix } from './matrix.js';
import type { ResolvedPlan } from './resolve.js';
import type { SourceTree } from './source.js';

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
  /** Host directory mounted into every candidate as its download cache (created if missing). */
  weightsCache?: string;
}

export interface Prepared {
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

/** The candidates this run covers, in config order, and the lock `--frozen` holds them to. */
export interface Selection {
  /** Every candidate of the config (the lock keeps entries of those not run). */
  all: string[];
  names: string[];
  lock?: BakeoffLock;
}
