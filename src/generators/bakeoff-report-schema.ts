// The bakeoff-report.json schema (documented in docs/bakeoff.md). Stable: fields are
// only ever added; a breaking change bumps schemaVersion. Renderers and core share it.

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
  | 'download_failed'
  | 'score_failed'
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

/** What the HTML report shows of an output file (read when the report is written). */
export interface OutputPreview {
  kind: 'image' | 'text' | 'json' | 'other';
  /** The first bytes of a text or JSON file (pretty-printed JSON when it parses). */
  text?: string;
  /** The file is longer than `text`. */
  truncated?: boolean;
}

export interface CopiedFile {
  path: string;
  bytes: number;
  savedAs: string;
  preview?: OutputPreview;
}

/** The score command's verdict on a candidate that ran. */
export interface ScoreReport {
  /** Named metrics the command printed ({} when it failed). */
  metrics: Record<string, number>;
  /** A scoring problem: the run's own result still stands. */
  failure: Failure | null;
  ms: number | null;
}

/** What an image says it needs of a GPU (its dev.mlship.cuda.* labels). */
export interface ImageGpu {
  framework: string | null;
  /** CUDA runtime version of the framework build; null: a CPU build. */
  cuda: string | null;
  /** GPU architectures compiled in (sm_XY, and compute_XY for PTX). */
  archs: string[];
  minDriver: string | null;
  minDriverCompat: string | null;
}

/** One GPU of the engine's host. */
export interface HostGpuReport {
  index: number;
  name: string;
  driver: string;
  memoryMiB: number;
  /** e.g. "8.6", when nvidia-smi reports it. */
  computeCapability?: string;
}

export interface RankBy {
  metric: string;
  direction: 'asc' | 'desc';
}

export interface CandidateReport {
  name: string;
  status: 'passed' | 'failed';
  /** 1 = best by rankBy; null when failed. */
  rank: number | null;
  source: { repo: string; ref: string; commit: string | null };
  plan: ReportPlan | null;
  image: { tag: string; id: string; sizeBytes: number; gpu?: ImageGpu } | null;
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
  /** The candidate's inputs by file name (the rows of the side-by-side outputs). */
  inputs?: string[];
  outputs: { pattern: string; files: CopiedFile[] }[];
  failure: Failure | null;
  /** Set when a score command is configured and the candidate ran. */
  score?: ScoreReport | null;
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
  /** Metric names, most important first ("run_time", "score.pck"). */
  rankBy: string[];
  /** The same with each metric's direction (added in 1.1). */
  ranking?: RankBy[];
  host: {
    cpus: number;
    memoryBytes: number;
    engine: string;
    driver: string | null;
    gpus: HostGpuReport[];
    /** Who answered: nvidia-smi in a container on the engine's host, the local nvidia-smi (--plan), or none. */
    gpuSource?: 'engine' | 'local' | 'none';
  };
  /** The host directory mounted as every candidate's download cache; null: none. */
  weightsCache?: string | null;
  summary: { total: number; passed: number; failed: number; best: string | null };
  /** Passed candidates in rank order, then failed ones in config order. */
  candidates: CandidateReport[];
}
