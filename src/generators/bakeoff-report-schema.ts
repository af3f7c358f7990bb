// The bakeoff-report.json schema (documented in docs/bakeoff.md). Stable: fields are
// only ever added; a breaking change bumps schemaVersion. Renderers and core share it.

import type { RankMetric } from '../config/bakeoff-schema.js';

export const REPORT_SCHEMA_VERSION = 1;

export type FailureCategory =
  | 'clone_failed'
  | 'dependency_install_failed'
  | 'build_failed'
  | 'host_gpu_unavailable'
  | 'cuda_driver_mismatch'
  | 'cuda_arch_mismatch'
  | 'out_of_memory'
  | 'timeout'
  | 'missing_output'
  | 'nonzero_exit'
  | 'engine_error';

/** Where to look: the machine, the image mlship built, the candidate's code, or bakeoff.yaml. */
export type FailureOrigin = 'host' | 'image' | 'candidate' | 'config';

export interface Failure {
  category: FailureCategory;
  origin: FailureOrigin;
  message: string;
  hint: string;
  /** The log lines that matched, at most a few. */
  evidence: string[];
  /** Package named by a dependency failure. */
  package?: string;
}

export interface ReportPlan {
  python: string;
  framework: { name: string; version: string; requirement: string; indexUrl: string | null } | null;
  /** CUDA version of the image, null for CPU. */
  cuda: string | null;
  flavor: 'slim' | 'runtime' | 'devel';
  baseImage: string;
  reasons: string[];
}

export interface CopiedFile {
  path: string;
  bytes: number;
  savedAs: string;
}

export interface CandidateReport {
  name: string;
  status: 'passed' | 'failed';
  /** 1 = best by rankBy; null when failed. */
  rank: number | null;
  source: { repo: string; ref: string; commit: string | null };
  plan: ReportPlan | null;
  image: { tag: string; id: string; sizeBytes: number } | null;
  metrics: {
    cloneMs: number | null;
    buildMs: number | null;
    /** The example's own run time (engine start → exit). */
    runMs: number | null;
    /** Wall time from container create to its removal: runMs plus mlship's overhead (create, start, stats, copy-out, remove). */
    containerMs: number | null;
    peakMemoryBytes: number | null;
    memoryLimitBytes: number | null;
    /** Peak GPU memory in use during the run (whole GPUs), when nvidia-smi is available. */
    gpuMemoryBytes: number | null;
    imageSizeBytes: number | null;
  };
  run: { exitCode: number | null; timedOut: boolean; oomKilled: boolean; gpus: number | 'all' };
  outputs: { pattern: string; files: CopiedFile[] }[];
  failure: Failure | null;
  /** The tail of the log of the last phase that ran. */
  log: { phase: 'clone' | 'build' | 'run'; lines: string[] };
}

export interface BakeoffReport {
  schemaVersion: typeof REPORT_SCHEMA_VERSION;
  tool: { name: 'mlship'; version: string };
  runId: string;
  /** ISO 8601, UTC. */
  createdAt: string;
  config: string;
  rankBy: RankMetric[];
  host: {
    cpus: number;
    memoryBytes: number;
    engine: string;
    driver: string | null;
    gpus: { index: number; name: string; driver: string; memoryMiB: number }[];
  };
  summary: { total: number; passed: number; failed: number; best: string | null };
  /** Passed candidates in rank order, then failed ones in config order. */
  candidates: CandidateReport[];
}
