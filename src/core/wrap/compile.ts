// `mlship wrap --compile onnx` and `--quantize int8`: the model is converted (skl2onnx,
// onnxmltools for LightGBM/XGBoost) and/or quantized (ONNX Runtime's dynamic int8), then
// checked against the original on the example and a sample: every label equal, every
// probability or value within a stated tolerance. Otherwise wrap refuses, showing the
// worst differences; nothing is written. The conversion and the check run in mlship's
// converter image, with the onnxruntime the service will use.

import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BuildOptions, BuildResult, RunOptions, RunResult } from '../../adapters/docker/engine.js';
import { type ConverterExtra, converterFiles, converterImage } from '../../generators/wrap-compile.js';
import type { JsonValue } from '../../generators/wrap-input.js';
import type { ModelKind, WeightsSpec, WrapSpec } from '../../generators/wrap-spec.js';
import { MlshipError, UsageError } from '../../io/errors.js';
import { type CheckRows, checkRows } from './compile-inputs.js';

export interface CompileOptions {
  compile?: 'onnx';
  quantize?: 'int8';
  /** Request bodies to check on (.jsonl, .json list, .csv); default: generated around the example. */
  checkData?: string;
  /** Allowed |original − converted| / max(1, |original|) of probabilities and values. */
  tolerance?: number;
}

/** Default tolerances: float32 conversion is near-exact; int8 weights are not. */
export const DEFAULT_TOLERANCE = { compile: 1e-4, quantize: 0.05 } as const;

export interface Difference {
  row: number;
  source: string;
  what: 'label' | 'output';
  original: unknown;
  converted: unknown;
  difference: number | null;
}

export interface CompileReport {
  from: ModelKind;
  compile?: 'onnx';
  quantize?: 'int8';
  checkedOn: string;
  rows: number;
  output: 'labels' | 'labels and probabilities' | 'values';
  labels?: { matched: number; total: number };
  tolerance: number;
  maxDifference: number;
  /** Inputs whose probabilities or values differ by more than the tolerance allows. */
  outputsOver: number;
  equal: boolean;
  worst: Difference[];
  sizeBytes: { before: number; after: number };
  /** Median time of one call with one thread, 1 row and 64 rows. */
  latencyMs: { before: { '1': number; '64': number }; after: { '1': number; '64': number } };
}

/** What conversion needs from the engine (narrow, so tests may pass a fake). */
export interface ConverterEngine {
  imageExists(ref: string): Promise<boolean>;
  build(options: BuildOptions): Promise<BuildResult>;
  run(options: RunOptions): Promise<RunResult>;
}

export interface ConvertRequest extends CompileOptions {
  model: string;
  kind: ModelKind;
  example: JsonValue;
  baseImage: string;
  /** "uid:gid" the converter runs as, so its output belongs to the user. */
  user?: string;
}

export interface Converted {
  /** The converted model, in a temporary directory removed by `cleanup`. */
  file: string;
  report: CompileReport;
  cleanup(): Promise<void>;
}

/** The libraries (beyond scikit-learn) the pickled model needs, read from the module names it holds. */
export async function extrasFor(model: string): Promise<ConverterExtra[]> {
  // A pickle names the modules of the classes it holds: a LightGBM or XGBoost model needs its
  // library to load. (The bare name is not enough: LightGBM's own parameters mention xgboost.)
  const text = (await readFile(model)).toString('latin1');
  return (['lightgbm', 'xgboost'] as const).filter((lib) =>
    new RegExp(`\\b${lib}\\.(sklearn|basic|core)\\b`).test(text),
  );
}

/** The converter image for these extras, built when it is not there yet. */
export async function ensureConverter(
  engine: ConverterEngine,
  baseImage: string,
  extras: ConverterExtra[],
): Promise<string> {
  const files = converterFiles(baseImage, extras);
  const image = converterImage(files);
  if (await engine.imageExists(image)) return image;
  const context = await mkdtemp(path.join(os.tmpdir(), 'mlship-converter-'));
  try {
    for (const f of files) await writeFile(path.join(context, f.path), f.content);
    await engine.build({ context, tags: [image] });
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  return image;
}

function validate(request: Pick<ConvertRequest, 'kind' | 'compile'>): void {
  if (request.kind === 'sklearn' || (request.kind === 'onnx' && !request.compile)) return;
  if (request.kind === 'onnx') {
    throw new UsageError('--compile onnx: the model is ONNX already', { hint: 'drop --compile' });
  }
  throw new UsageError(`--compile/--quantize take a scikit-learn (or LightGBM/XGBoost) or ONNX model file`, {
    hint: 'TorchScript and your own functions are served as they are',
  });
}

type Verdict =
  | { report: Omit<CompileReport, 'from' | 'checkedOn'> }
  | { error: string }
  /** No JSON line at all: the converter crashed (its stderr says why). */
  | undefined;

/** The converter's last JSON line on stdout (warnings may come before it). */
function parseVerdict(result: RunResult): Verdict {
  const line = [...result.stdoutTail].reverse().find((l) => l.trim().startsWith('{'));
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(line ?? '') as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (raw.error) return { error: String(raw.error) };
  return {
    report: {
      rows: raw.rows as number,
      output: raw.output as CompileReport['output'],
      ...(raw.labels ? { labels: raw.labels as NonNullable<CompileReport['labels']> } : {}),
      tolerance: raw.tolerance as number,
      maxDifference: raw.max_difference as number,
      outputsOver: (raw.outputs_over as number | undefined) ?? 0,
      equal: raw.equal as boolean,
      worst: raw.worst as Difference[],
      sizeBytes: raw.size_bytes as CompileReport['sizeBytes'],
      latencyMs: raw.latency_ms as CompileReport['latencyMs'],
    },
  };
}

/** Converts and checks; throws (writing nothing) when the converted model answers differently. */
export async function convertModel(request: ConvertRequest, engine: ConverterEngine): Promise<Converted> {
  validate(request);
  const inputs: CheckRows = await checkRows(request.example, request.checkData);
  const image = await ensureConverter(engine, request.baseImage, await extrasFor(request.model));
  const work = await mkdtemp(path.join(os.tmpdir(), 'mlship-compile-'));
  const cleanup = () => rm(work, { recursive: true, force: true });
  try {
    await writeFile(
      path.join(work, 'rows.json'),
      JSON.stringify({ rows: inputs.rows, sources: inputs.sources }),
    );
    const modelName = path.basename(request.model);
    const tolerance =
      request.tolerance ?? (request.quantize ? DEFAULT_TOLERANCE.quantize : DEFAULT_TOLERANCE.compile);
    const sklearn = request.kind === 'sklearn';
    const result = await engine.run({
      image,
      cmd: [
        `/in/${modelName}`,
        '/work/rows.json',
        '/work/model.onnx',
        '--compile',
        sklearn ? 'onnx' : 'none',
        '--quantize',
        request.quantize ?? 'none',
        '--tolerance',
        String(tolerance),
      ],
      mounts: [
        { type: 'bind', source: path.dirname(request.model), target: '/in', readOnly: true },
        { type: 'bind', source: work, target: '/work' },
      ],
      ...(request.user ? { user: request.user } : {}),
      tailLines: 20,
    });
    const verdict = parseVerdict(result);
    if (!verdict || 'error' in verdict) {
      throw new MlshipError(
        'COMPILE_FAILED',
        'failed',
        `cannot convert ${modelName}: ${verdict?.error ?? `the converter exited with code ${result.exitCode}`}`,
        {
          details: verdict ? [] : result.stderrTail.slice(-10),
          hint: 'serve the model as it is (without --compile/--quantize)',
        },
      );
    }
    const report: CompileReport = {
      from: request.kind,
      ...(sklearn ? { compile: 'onnx' as const } : {}),
      ...(request.quantize ? { quantize: request.quantize } : {}),
      checkedOn: inputs.description,
      ...verdict.report,
    };
    if (!report.equal) throw notEqual(modelName, report);
    await stat(path.join(work, 'model.onnx'));
    return { file: path.join(work, 'model.onnx'), report, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

function short(value: unknown): string {
  const text = JSON.stringify(value, (_k, v) => (typeof v === 'number' ? Number(v.toPrecision(6)) : v));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function notEqual(modelName: string, r: CompileReport): MlshipError {
  const labels = r.labels && r.labels.matched < r.labels.total;
  const what = labels
    ? `${r.labels!.total - r.labels!.matched} of ${r.labels!.total} labels differ`
    : `${r.outputsOver} of ${r.rows} outputs differ by more than ${r.tolerance} × max(1, |original|)`;
  return new MlshipError(
    'COMPILE_NOT_EQUAL',
    'failed',
    `the ${r.quantize ? 'quantized' : 'compiled'} ${modelName} does not answer as the original: ${what}; nothing written`,
    {
      details: [
        `checked on ${r.checkedOn}`,
        'worst differences:',
        ...r.worst.map(
          (d) =>
            `  ${d.source}: ${d.what} ${short(d.original)} → ${short(d.converted)}${d.difference === null ? '' : ` (difference ${d.difference.toPrecision(3)})`}`,
        ),
      ],
      hint: 'serve the model as it is (drop --compile/--quantize); or, if these differences are acceptable, pass --tolerance',
    },
  );
}

/** The compiled model's weights: mounted from the service's weights/ folder, or baked in. */
export function compiledWeights(modelFile: string, bake: boolean): { weights: WeightsSpec; file: string } {
  const name = `${path.basename(modelFile).replace(/\.[^.]+$/, '')}.onnx`;
  const file = `weights/${name}`;
  const target = `/models/${name}`;
  return {
    file,
    weights: bake ? { mode: 'bake', file, target } : { mode: 'mount', source: file, target },
  };
}

/** The part of a resolved wrap that compiling changes. */
interface WrapParts {
  spec: WrapSpec;
  model?: string;
}

/**
 * Converts the resolved model and returns the spec that serves the converted one (an ONNX
 * model on onnxruntime), its weights file and the report (also written as compile-report.json).
 */
export async function compileForWrap(
  resolved: WrapParts,
  options: CompileOptions & { user?: string },
  engine: (() => Promise<ConverterEngine>) | undefined,
) {
  const { spec, model } = resolved;
  if (!model || spec.weights.mode === 'url') {
    throw new UsageError('--compile/--quantize need the model file itself', {
      hint: 'pass the local model file (downloading the converted model from a URL is not supported)',
    });
  }
  if (spec.runtime !== 'python') throw new UsageError('--compile/--quantize are for the python runtime');
  validate({ kind: spec.kind, ...(options.compile ? { compile: options.compile } : {}) });
  if (!engine)
    throw new MlshipError('NO_ENGINE', 'environment', 'converting a model needs the Docker engine');
  const converted = await convertModel(
    {
      ...options,
      model,
      kind: spec.kind,
      example: spec.example,
      baseImage: spec.baseImage,
    },
    await engine(),
  );
  const { weights, file } = compiledWeights(model, spec.weights.mode === 'bake');
  return {
    spec: { ...spec, kind: 'onnx' as const, weights, compiledFrom: spec.kind },
    weightsFile: { path: file, copyFrom: converted.file },
    reportFile: { path: 'compile-report.json', content: `${JSON.stringify(converted.report, null, 2)}\n` },
    report: converted.report,
    cleanup: converted.cleanup,
  };
}
