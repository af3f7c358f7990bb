// What `mlship wrap` decided, as one plain object: the single input of the
// service generators. Built by core/wrap from flags, mlship.yaml and detection.

import type { JsonValue } from './wrap-input.js';

export type ModelKind = 'sklearn' | 'onnx' | 'torchscript' | 'entry';

export const KIND_TITLES: Record<ModelKind, string> = {
  sklearn: 'a scikit-learn model (joblib/pickle)',
  onnx: 'an ONNX model (onnxruntime)',
  torchscript: 'a TorchScript model (torch)',
  entry: 'your Python function',
};

export type WeightsSpec =
  /** Read-only mount of a host file at `target` (the default). `source` is relative to the output directory. */
  | { mode: 'mount'; source: string; target: string; sha256?: string }
  /** Downloaded at start-up and checked. */
  | { mode: 'url'; url: string; sha256: string; target: string }
  /** Copied into the image (--bake-weights): `weights/<file>` in the output directory. */
  | { mode: 'bake'; file: string; target: string; sha256?: string }
  /** No weights (an entry point that needs none). */
  | { mode: 'none' };

export interface WrapSpec {
  name: string;
  runtime: 'python' | 'node';
  kind: ModelKind;
  /** For kind "entry": the module and function to call, and the user files copied to user/. */
  entry?: { module: string; function: string };
  example: JsonValue;
  /** A request model of your own (--schema file.py:Class), used instead of the inferred one. */
  userSchema?: { className: string; source: string };
  /** NaN, Infinity and overflowing numbers accepted (models that take NaN as missing); default: 422. */
  allowNonFinite?: boolean;
  /** Set when `kind` is the result of wrap --compile/--quantize: the kind of the original model. */
  compiledFrom?: ModelKind;
  port: number;
  /** 0: one per CPU, decided at start-up. */
  workers: number;
  maxBodyBytes: number;
  maxQueue: number;
  batching?: { maxBatchSize: number; maxLatencyMs: number };
  startupGraceSeconds: number;
  baseImage: string;
  weights: WeightsSpec;
  /** The user's requirements.txt, copied to requirements-user.txt (entry points). */
  hasUserRequirements: boolean;
  /** Extra pinned packages of the model runtime, installed after it. */
  extraRequirements: string[];
}

export interface GeneratedFile {
  /** Relative to the output directory, forward slashes. */
  path: string;
  content: string;
}

export const DEFAULT_BASE_IMAGES = { python: 'python:3.11-slim', node: 'node:22-slim' } as const;

/** Pinned model runtimes, one layer each (after the shared serving layer). */
export const MODEL_REQUIREMENTS: Record<ModelKind, string[]> = {
  sklearn: ['scikit-learn==1.9.1', 'scipy==1.17.1', 'joblib==1.6.0', 'threadpoolctl==3.8.0'],
  onnx: ['onnxruntime==1.32.0'],
  torchscript: ['--extra-index-url https://download.pytorch.org/whl/cpu', 'torch==2.15.0+cpu'],
  entry: [],
};

/** Largest /predict/batch request: the batching limit when set, else a fixed bound. */
export function maxBatchInputs(spec: WrapSpec): number {
  return Math.max(spec.batching?.maxBatchSize ?? 0, 256);
}
