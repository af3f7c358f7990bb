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
  /** File inputs/outputs (images, audio): decoded, preprocessed and encoded by the service. */
  media?: MediaSpec;
  /** Ranges of number fields (by request field name): published in the schema, enforced when strict. */
  ranges?: Record<string, NumberRange>;
}

/** A number field's range: a limit the service enforces (strict), or a hint the front end shows. */
export interface NumberRange {
  minimum?: number;
  maximum?: number;
  strict: boolean;
  /** Where it comes from: the examples (always a hint) or mlship.yaml's `ranges:`. */
  from: 'examples' | 'mlship.yaml';
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

// --- files in, files out (issue 18; contract: one per field of the request) ---------------

export type FileKind = 'image' | 'audio' | 'file';

/** How a decoded image becomes one sample of the model's input tensor (app/media.py). */
export interface ImagePreprocess {
  /** stretch: to WxH ignoring aspect; crop: scale the short side, cut the centre; letterbox: fit and pad. */
  resize: 'stretch' | 'crop' | 'letterbox';
  width: number;
  height: number;
  /** Channel order the model takes; L is one grey channel. */
  channels: 'RGB' | 'BGR' | 'L';
  layout: 'NCHW' | 'NHWC';
  /** Pixel values (0..255) are multiplied by it (1/255 → 0..1). */
  scale: number;
  /** Per channel, after scale: (x - mean) / std. Empty: none. */
  mean: number[];
  std: number[];
  dtype: 'float32' | 'float16' | 'uint8';
}

/** A WAV file as one float32 sample vector (mono, -1..1). */
export interface AudioPreprocess {
  sampleRate: number;
  maxSeconds: number;
}

export interface FileInput {
  /** The request field (JSON key and multipart part name). */
  name: string;
  kind: FileKind;
  /** Larger files are a 413, counted as they arrive. */
  maxBytes: number;
  /** Media types accepted (415 otherwise). */
  accept: string[];
  image?: ImagePreprocess;
  audio?: AudioPreprocess;
}

export interface MediaOutput {
  /** image: the model's first output is an image tensor, answered as image/png (JPEG/WebP by Accept). */
  kind: 'json' | 'image';
  /** Layout of an image output tensor (one sample): NCHW means [C, H, W]. */
  layout?: 'NCHW' | 'NHWC';
  /** Output values are multiplied by it to get 0..255 (255 for a 0..1 output). */
  scale?: number;
}

/** File inputs and outputs of a wrapped service; absent for a JSON-numbers service. */
export interface MediaSpec {
  inputs: FileInput[];
  output: MediaOutput;
  /** Class names, in the order of the model's outputs (classifiers answer probabilities by label). */
  labels?: string[];
  /** Prefixes an `s3://` or `https://` reference must start with to be fetched; empty: none (SSRF). */
  fetchAllow: string[];
  /** Decoder cap: larger images are a 422 (decompression bombs). */
  maxPixels: number;
}

export const DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024;
export const DEFAULT_MAX_PIXELS = 40_000_000;
export const IMAGE_MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/webp'];
export const AUDIO_MEDIA_TYPES = ['audio/wav', 'audio/x-wav', 'audio/wave'];

/** The request body limit a media service needs: every file, base64 in JSON (4/3), and some room. */
export function mediaBodyBytes(media: MediaSpec, maxBodyBytes: number): number {
  const files = media.inputs.reduce((n, f) => n + Math.ceil((f.maxBytes * 4) / 3), 0);
  return Math.max(maxBodyBytes, files + 65_536);
}
