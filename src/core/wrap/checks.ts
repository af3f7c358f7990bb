// `mlship wrap` checks its inputs where it receives them, before writing anything: the model
// file's format (always), then the model loaded once by the service's own runtime, the entry
// function imported and its signature, the request model imported and the example validated
// against it (when a Python with that runtime, or the built image, is on the machine). What it
// could not verify is said, never silently skipped. Also where the example comes from when the
// model says how wide its input is (n_features_in_, ONNX input shapes) and the user gave none.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ExampleError,
  inferFields,
  inputModeFor,
  type JsonValue,
  rowWidth,
} from '../../generators/wrap-input.js';
import { MODEL_REQUIREMENTS, type ModelKind } from '../../generators/wrap-spec.js';
import { MlshipError } from '../../io/errors.js';
import { checkModelFormat, EXPECTED, type FormatResult, type OnnxInput } from './model-format.js';
import {
  type ProbeOutcome,
  type ProbeProblem,
  type ProbeRequest,
  runProbe,
  type WrapCheckDeps,
} from './probe.js';

export type InputErrorCode = 'MODEL_INVALID' | 'ENTRY_INVALID' | 'SCHEMA_INVALID' | 'EXAMPLE_MISMATCH';

/** An input `mlship wrap` cannot make a working service from (exit 2, nothing written). */
export class WrapInputError extends MlshipError {
  constructor(code: InputErrorCode, message: string, hint: string, details: string[] = []) {
    super(code, 'usage', message, { hint, details });
  }
}

export interface WrapChecks {
  /** What was verified, one line each ("model.joblib: pickle protocol 4, loaded by ..."). */
  verified: string[];
  /** What could not be verified here, and why. */
  unverified: string[];
  model?: {
    format: string;
    loadedBy?: string;
    type?: string;
    /** Numbers per input row the model takes, when it says (n_features_in_, ONNX shape). */
    inputWidth?: number;
  };
}

export interface CheckInput {
  cwd: string;
  kind: ModelKind;
  runtime: 'python' | 'node';
  /** Absolute path of the local model file. */
  model?: string;
  /** Where the weights are downloaded from when there is no local file. */
  weightsUrl?: string;
  /** `importRoot`: the module is the file's dotted path from there (a whole tree as user code). */
  entry?: { file: string; function: string; importRoot?: string };
  schema?: { file: string; className: string };
  example?: JsonValue;
  /** The service image a previous wrap built, tried when no local Python has the runtime. */
  image?: string;
  /** --no-check: formats only. */
  formatsOnly: boolean;
}

export interface CheckOutcome {
  checks: WrapChecks;
  /** An example written from the model's own input description, when none was given. */
  example?: { value: JsonValue; from: string };
}

const FORMAT_ERRORS = /UnpicklingError|EOFError|InvalidProtobuf|InvalidGraph|BadZipFile|PytorchStreamReader/;

export async function checkInputs(deps: WrapCheckDeps, input: CheckInput): Promise<CheckOutcome> {
  const checks: WrapChecks = { verified: [], unverified: [] };
  const shown = (f: string) => display(f, input.cwd);
  let format: FormatResult | undefined;
  if (input.model && input.kind !== 'entry') {
    format = await checkModelFormat(input.model, input.kind);
    if (!format.ok) {
      throw new WrapInputError(
        'MODEL_INVALID',
        `${shown(input.model)} is not a model mlship can serve: ${format.problem}`,
        format.hint ?? `expected ${EXPECTED[input.kind]}`,
      );
    }
    checks.model = { format: format.format };
    checks.unverified.push(...format.notes.map((n) => `${shown(input.model!)}: ${n}`));
  }
  if (!input.model && input.weightsUrl && input.kind !== 'entry') {
    checks.unverified.push(
      `${input.weightsUrl}: no local copy to check; the service checks its SHA-256 when it downloads it`,
    );
  }
  if (input.entry) await staticEntryCheck(input.entry, shown);
  if (input.schema) await staticSchemaCheck(input.schema, shown);

  // Without an example, an ONNX model's declared input shape can still give one to predict on.
  const onnx = format?.ok ? format.onnxInputs : undefined;
  let synthesized = !input.example && !input.schema && onnx ? onnxExample(onnx, input.runtime) : undefined;
  // A given example against the declared shape: known without running anything.
  const compare = input.example !== undefined && !input.schema && input.kind !== 'entry';
  if (compare && onnx?.length === 1) checkExampleWidth(input.example!, undefined, onnx[0]);
  const example = input.example ?? synthesized?.value;
  const request = probeRequest(input, example);
  const outcome: ProbeOutcome =
    input.formatsOnly || !Object.keys(request).length
      ? { passed: [] }
      : await runProbe(deps, request, {
          sourceDir: path.dirname(input.model ?? input.entry?.file ?? input.schema!.file),
          cwd: input.cwd,
          ...(input.image && input.runtime === 'python' ? { image: input.image } : {}),
        });
  interpret(input, outcome, checks, shown);

  const width = outcome.report?.model?.n_features_in;
  if (!example && !input.schema && width !== undefined) {
    synthesized = sklearnExample(width, outcome.report?.model?.feature_names);
  }
  const onnxWidth = onnx?.length === 1 ? sampleDims(onnx[0]!) : undefined;
  if (checks.model) {
    const known = width ?? (onnxWidth && onnxWidth.length === 1 ? onnxWidth[0] : undefined);
    if (known !== undefined) checks.model.inputWidth = known;
  }
  if (compare && width !== undefined) checkExampleWidth(input.example!, width, undefined);
  return { checks, ...(synthesized ? { example: synthesized } : {}) };
}

function display(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') ? rel : file;
}

/** The model's input for the example, as the generated to_input() builds it. */
function modelInput(example: JsonValue): JsonValue | undefined {
  try {
    const fields = inferFields(example);
    const values = example as Record<string, JsonValue>;
    if (inputModeFor(fields, true) === 'tensor') return values[fields[0]!.name]!;
    return fields.flatMap((f) => {
      const v = values[f.name]!;
      return Array.isArray(v) ? v : [v];
    });
  } catch (e) {
    if (e instanceof ExampleError) return undefined; // reported with its reason when generating
    throw e;
  }
}

function probeRequest(input: CheckInput, example: JsonValue | undefined): ProbeRequest {
  const request: ProbeRequest = {};
  if (input.model && input.kind !== 'entry') {
    const sample = example !== undefined && !input.schema ? modelInput(example) : undefined;
    request.model = { kind: input.kind, path: input.model, ...(sample !== undefined ? { sample } : {}) };
  }
  if (input.entry) {
    const { file, importRoot } = input.entry;
    request.entry = {
      dir: importRoot ?? path.dirname(file),
      module: importRoot
        ? path.relative(importRoot, file).replace(/\.py$/, '').split(path.sep).join('.')
        : path.basename(file, '.py'),
      function: input.entry.function,
    };
  }
  if (input.schema && input.example !== undefined) {
    request.schema = {
      dir: path.dirname(input.schema.file),
      module: path.basename(input.schema.file, '.py'),
      class: input.schema.className,
      example: input.example,
    };
  }
  return request;
}

/** The package that loads each kind of model (the probe reports its version). */
const RUNTIME_PACKAGE: Record<Exclude<ModelKind, 'entry'>, string> = {
  sklearn: 'scikit-learn',
  onnx: 'onnxruntime',
  torchscript: 'torch',
};

/** The version the service pins of that package: "scikit-learn==1.9.1" → { "scikit-learn": "1.9.1" }. */
function pinned(kind: Exclude<ModelKind, 'entry'>): Record<string, string> {
  for (const line of MODEL_REQUIREMENTS[kind]) {
    const m = /^([A-Za-z0-9_.-]+)==([^+\s]+)/.exec(line);
    if (m?.[1] === RUNTIME_PACKAGE[kind]) return { [m[1]]: m[2]! };
  }
  return {};
}

/** Whether the Python that ran the check has the runtime versions the service pins. */
function samePins(kind: Exclude<ModelKind, 'entry'>, runtime: Record<string, string> | undefined): boolean {
  const pins = pinned(kind);
  return Object.entries(pins).every(([name, v]) => runtime?.[name]?.split('+')[0] === v);
}

function interpret(
  input: CheckInput,
  outcome: ProbeOutcome,
  checks: WrapChecks,
  shown: (f: string) => string,
): void {
  const report = outcome.report;
  if (!report) {
    const what = input.kind === 'entry' ? 'imported' : 'loaded';
    const tried = outcome.passed.length ? ` (tried ${outcome.passed.join('; ')})` : '';
    const file = input.model ?? input.entry?.file ?? input.schema?.file;
    if (!file) return;
    checks.unverified.push(
      input.formatsOnly
        ? `${shown(file)}: not ${what} (--no-check)`
        : `${shown(file)}: not ${what} here: no Python with the service's runtime${tried}; \`mlship serve\` ${what === 'loaded' ? 'loads' : 'imports'} it in the image`,
    );
    return;
  }
  const by = outcome.by ?? `python ${report.executable}`;
  if (report.model && input.model) interpretModel(input, report.model, by, checks, shown);
  if (report.entry && input.entry) interpretEntry(input.entry, report.entry, by, checks, shown);
  if (report.schema && input.schema) interpretSchema(input.schema, report.schema, by, checks, shown);
}

function interpretModel(
  input: CheckInput,
  m: NonNullable<NonNullable<ProbeOutcome['report']>['model']>,
  by: string,
  checks: WrapChecks,
  shown: (f: string) => string,
): void {
  const file = shown(input.model!);
  const kind = input.kind as Exclude<ModelKind, 'entry'>;
  const versions = Object.entries(m.runtime ?? {})
    .map(([n, v]) => `${n} ${v}`)
    .join(', ');
  const authoritative = samePins(kind, m.runtime);
  const service = Object.entries(pinned(kind))
    .map(([n, v]) => `${n} ${v}`)
    .join(', ');
  if (m.error) {
    const fatal =
      m.error.stage === 'interface' ||
      FORMAT_ERRORS.test(`${m.error.type} ${m.error.message}`) ||
      (authoritative && m.error.stage === 'load');
    const where = m.error.stage === 'predict' ? 'could not predict the example' : 'could not be loaded';
    if (fatal || (authoritative && m.error.stage === 'predict')) {
      throw new WrapInputError(
        m.error.stage === 'predict' ? 'EXAMPLE_MISMATCH' : 'MODEL_INVALID',
        `${file} ${where} by ${by} (${versions}): ${lastLine(m.error.message)}`,
        m.error.stage === 'predict'
          ? 'the example is the warm-up call of the service: make it one valid input of this model'
          : `expected ${EXPECTED[kind]}`,
        m.error.message.split('\n').slice(-8, -1),
      );
    }
    checks.unverified.push(
      `${file}: ${where} by ${by} (${versions}; the service uses ${service}): ${lastLine(m.error.message)}`,
    );
    return;
  }
  if (checks.model) {
    checks.model.loadedBy = `${by} (${versions})`;
    if (m.type) checks.model.type = m.type;
  }
  const width = m.n_features_in !== undefined ? `, ${m.n_features_in} features` : '';
  const prediction = m.prediction !== undefined ? `; predicts ${JSON.stringify(m.prediction)}` : '';
  const type = m.type?.split('.').pop() ?? 'model';
  checks.verified.push(`${file}: loaded by ${by} (${versions}): ${type}${width}${prediction}`);
  if (!authoritative) {
    checks.unverified.push(`${file}: checked with ${versions}; the service installs ${service}`);
  }
}

function interpretEntry(
  entry: NonNullable<CheckInput['entry']>,
  r: NonNullable<NonNullable<ProbeOutcome['report']>['entry']>,
  by: string,
  checks: WrapChecks,
  shown: (f: string) => string,
): void {
  const file = shown(entry.file);
  if (r.unavailable) {
    checks.unverified.push(
      `${file}: imports ${r.unavailable}, which ${by} does not have: not imported here (the image installs requirements.txt)`,
    );
    return;
  }
  const e = r.error;
  if (!e) {
    const hooks = r.hooks?.length ? ` (with ${r.hooks.map((h) => `${h}()`).join(', ')})` : '';
    checks.verified.push(`${file}: imported by ${by}; ${entry.function}(payload) takes one argument${hooks}`);
    return;
  }
  const fix = `--entry ${file}:<function>`;
  if (e.stage === 'import') throw notImported('ENTRY_INVALID', file, by, e);
  if (e.stage === 'function') {
    throw new WrapInputError(
      'ENTRY_INVALID',
      `${file} has no function ${entry.function}${e.message ? ` (${e.message})` : ''}`,
      e.defined?.length
        ? `functions there: ${e.defined.join(', ')}; use ${fix}`
        : `define ${entry.function}(payload) in ${file}`,
    );
  }
  throw new WrapInputError(
    'ENTRY_INVALID',
    `${entry.function}${e.message} in ${file} must take one argument: the request, as a dict`,
    `define it as def ${entry.function}(payload): ... (an optional load() runs once per worker)`,
  );
}

function interpretSchema(
  schema: NonNullable<CheckInput['schema']>,
  r: NonNullable<NonNullable<ProbeOutcome['report']>['schema']>,
  by: string,
  checks: WrapChecks,
  shown: (f: string) => string,
): void {
  const file = shown(schema.file);
  if (r.unavailable) {
    checks.unverified.push(`${file}: ${by} has no ${r.unavailable}: the request model was not imported here`);
    return;
  }
  const e = r.error;
  if (!e) {
    checks.verified.push(`${file}: ${schema.className} imported by ${by}; the example fits it`);
    return;
  }
  if (e.stage === 'import') throw notImported('SCHEMA_INVALID', file, by, e);
  if (e.stage === 'class') {
    throw new WrapInputError(
      'SCHEMA_INVALID',
      `${schema.className} in ${file} is ${e.message}`,
      e.defined?.length
        ? `pydantic models there: ${e.defined.join(', ')}; use --schema ${file}:<Class>`
        : `define class ${schema.className}(pydantic.BaseModel) in ${file}`,
    );
  }
  throw new WrapInputError(
    'EXAMPLE_MISMATCH',
    `the example does not fit ${schema.className} (${file}): ${e.message}`,
    'the example is the warm-up call: make it a valid request of your model',
  );
}

/** Your module raised while being imported: its own error, as the service would meet it. */
function notImported(code: InputErrorCode, file: string, by: string, e: ProbeProblem): WrapInputError {
  return new WrapInputError(
    code,
    `${file} cannot be imported (${by}): ${lastLine(e.message)}`,
    'fix the error above: the service imports this module the same way',
    e.message.split('\n').slice(-8, -1),
  );
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? text;
}

// --- without Python: the names must at least be there ------------------------------------

async function staticEntryCheck(
  entry: NonNullable<CheckInput['entry']>,
  shown: (f: string) => string,
): Promise<void> {
  const source = await readFile(entry.file, 'utf8');
  const name = entry.function.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const defines = new RegExp(
    `^(?:async\\s+def\\s+${name}\\b|def\\s+${name}\\b|${name}\\s*[:=]|(?:from\\s+\\S+\\s+)?import\\s+.*\\b${name}\\b)`,
    'm',
  );
  if (defines.test(source)) return;
  const functions = [...source.matchAll(/^(?:async\s+)?def\s+([A-Za-z_]\w*)/gm)].map((m) => m[1]!);
  const file = shown(entry.file);
  throw new WrapInputError(
    'ENTRY_INVALID',
    `${file} has no function ${entry.function}`,
    functions.length
      ? `functions there: ${functions.join(', ')}; use --entry ${file}:<function>`
      : `define ${entry.function}(payload) in ${file}`,
  );
}

async function staticSchemaCheck(
  schema: NonNullable<CheckInput['schema']>,
  shown: (f: string) => string,
): Promise<void> {
  const source = await readFile(schema.file, 'utf8');
  if (new RegExp(`^class\\s+${schema.className}\\b`, 'm').test(source)) return;
  const classes = [...source.matchAll(/^class\s+([A-Za-z_]\w*)/gm)].map((m) => m[1]!);
  const file = shown(schema.file);
  throw new WrapInputError(
    'SCHEMA_INVALID',
    `${file} has no class ${schema.className}`,
    classes.length
      ? `classes there: ${classes.join(', ')}; use --schema ${file}:<Class>`
      : `define class ${schema.className}(pydantic.BaseModel) in ${file}`,
  );
}

// --- the example from the model's own description ---------------------------------------

/** The largest example mlship writes by itself (numbers); beyond it, a person should write one. */
const MAX_SYNTHESIZED = 4096;
/** onnx.TensorProto.DataType values the service feeds: float, int32, int64, double. */
const NUMERIC_ONNX = new Set([1, 6, 7, 11]);

/** The dims of one sample (the first dim is the batch), when all are known sizes. */
export function sampleDims(input: OnnxInput): number[] | undefined {
  const dims = input.dims?.slice(1);
  if (!dims?.length || !dims.every((d): d is number => typeof d === 'number' && d > 0)) return undefined;
  return dims;
}

function zeros(dims: number[]): JsonValue {
  const [first, ...rest] = dims;
  return Array.from({ length: first! }, () => (rest.length ? zeros(rest) : 0));
}

function onnxExample(
  inputs: OnnxInput[],
  runtime: 'python' | 'node',
): { value: JsonValue; from: string } | undefined {
  if (inputs.length !== 1) return undefined;
  const input = inputs[0]!;
  const dims = sampleDims(input);
  if (!dims || !NUMERIC_ONNX.has(input.elemType)) return undefined;
  if (runtime === 'node' && dims.length !== 1) return undefined;
  if (dims.reduce((a, b) => a * b, 1) > MAX_SYNTHESIZED) return undefined;
  const name = input.name || 'input';
  return {
    value: { [name]: zeros(dims) },
    from: `the ONNX input ${name} of shape [${input.dims!.map((d) => d ?? '?').join(', ')}]`,
  };
}

function sklearnExample(width: number, names: string[] | undefined): { value: JsonValue; from: string } {
  if (names?.length === width && new Set(names).size === width) {
    return {
      value: Object.fromEntries(names.map((n) => [n, 0])),
      from: `the model's feature_names_in_ (${width} features)`,
    };
  }
  return {
    value: { features: Array.from({ length: width }, () => 0) },
    from: `the model's n_features_in_ = ${width}`,
  };
}

/** The example's numbers per row against what the model says it takes: a wrong width never starts. */
function checkExampleWidth(example: JsonValue, width: number | undefined, onnx: OnnxInput | undefined): void {
  let fields: ReturnType<typeof inferFields>;
  let mode: ReturnType<typeof inputModeFor>;
  try {
    fields = inferFields(example);
    mode = inputModeFor(fields, true);
  } catch (e) {
    if (e instanceof ExampleError) return; // reported with its reason when generating
    throw e;
  }
  const expected = width !== undefined ? [width] : onnx ? sampleDims(onnx) : undefined;
  if (!expected) return;
  const got = mode === 'tabular' ? [rowWidth(fields)] : arrayShape(example, fields[0]!.name);
  if (JSON.stringify(got) === JSON.stringify(expected)) return;
  const what =
    width !== undefined
      ? `n_features_in_ = ${width}`
      : `input ${onnx!.name} of shape [${onnx!.dims!.join(', ')}]`;
  throw new WrapInputError(
    'EXAMPLE_MISMATCH',
    `the example gives the model ${describe(mode, got)}, but the model takes ${describe(expected.length === 1 ? 'tabular' : 'tensor', expected)} (${what})`,
    'the example is the warm-up call and defines the request schema: give it exactly the model’s input',
  );
}

function describe(mode: string, dims: number[]): string {
  return mode === 'tabular' ? `${dims[0]} numbers per row` : `samples of shape [${dims.join(', ')}]`;
}

function arrayShape(example: JsonValue, field: string): number[] {
  const dims: number[] = [];
  let v = (example as Record<string, JsonValue>)[field];
  while (Array.isArray(v)) {
    dims.push(v.length);
    v = v[0];
  }
  return dims;
}
