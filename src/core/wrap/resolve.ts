// What `mlship wrap` will render, decided from flags > mlship.yaml > detection, with every input
// checked on the way (the model loads, the function imports, the example fits): the spec for
// the generators, the user's files to copy beside them, and what was verified.

import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BaseImagesSchema, Service } from '../../config/schema.js';
import type { JsonValue } from '../../generators/wrap-input.js';
import {
  DEFAULT_BASE_IMAGES,
  type ModelKind,
  type WeightsSpec,
  type WrapSpec,
} from '../../generators/wrap-spec.js';
import { UsageError } from '../../io/errors.js';
import { exists } from '../../io/files.js';
import { slugify } from '../init/init.js';
import { checkInputs, type WrapChecks } from './checks.js';
import type { CompileOptions } from './compile.js';
import { imageName, readManifest } from './manifest.js';
import { type MediaFlags, resolveMedia } from './media.js';
import type { Planned } from './plan.js';
import { sha256File } from './plan.js';
import type { WrapCheckDeps } from './probe.js';
import { resolveRanges, splitExamples } from './ranges.js';

type BaseImages = import('zod').infer<typeof BaseImagesSchema>;

export interface WrapOptions {
  cwd: string;
  /** Serialized model file (.joblib/.pkl, .onnx, .pt). */
  model?: string;
  /** "file.py:function". */
  entry?: string;
  out?: string;
  name?: string;
  runtime?: 'python' | 'node';
  /** JSON file with one example input, or a list of them (the first is the example). */
  example?: string;
  /** Your own pydantic request model, "schema.py:Request" (Python runtime). */
  schema?: string;
  port?: number;
  workers?: number;
  batching?: { maxBatchSize: number; maxLatencyMs: number };
  maxBodyBytes?: number;
  maxQueue?: number;
  startupGraceSeconds?: number;
  baseImage?: string;
  weightsUrl?: string;
  weightsSha256?: string;
  bakeWeights?: boolean;
  force: boolean;
  dryRun: boolean;
  /** --no-check: check the model's format only; do not load it or import the code. */
  formatsOnly?: boolean;
  /** A service of mlship.yaml whose settings are the defaults. */
  service?: { name: string; config: Service };
  baseImages?: BaseImages;
  /** Recorded with the template digest in mlship-wrap.json. */
  mlshipVersion?: string;
  /** NaN, Infinity and overflowing numbers accepted (default: a 422 naming the field). */
  allowNonFinite?: boolean;
  /** --compile onnx / --quantize int8, checked against the original (core/wrap/compile.ts). */
  convert?: CompileOptions & { user?: string };
  /** A whole source tree as the user code (`--from-bakeoff`: the candidate at its locked commit). */
  userTree?: UserTree;
  /** Files in and out: --fetch-allow, --output, --labels (mlship.yaml has the rest). */
  media?: MediaFlags;
}

/** User code from a tree: every file copied to user/ (paths kept), and its pinned requirements. */
export interface UserTree {
  root: string;
  /** Files relative to `root`, forward slashes. */
  files: string[];
  requirements: string;
}

export interface Resolved {
  spec: WrapSpec;
  outDir: string;
  /** The local model file, when there is one. */
  model?: string;
  /** User code and requirements, copied next to the service (entry points). */
  userFiles: Planned[];
  weightsFile?: Planned;
  checks: WrapChecks;
  /** Where the example came from: a file, or the model's description of its input. */
  example: { file?: string; generatedFrom?: string };
}

const MODEL_KINDS: [RegExp, ModelKind][] = [
  [/\.(joblib|pkl|pickle)$/i, 'sklearn'],
  [/\.onnx$/i, 'onnx'],
  [/\.(pt|pth|torchscript)$/i, 'torchscript'],
];

export function detectKind(modelFile: string): ModelKind {
  for (const [pattern, kind] of MODEL_KINDS) if (pattern.test(modelFile)) return kind;
  throw new UsageError(`cannot tell what kind of model ${path.basename(modelFile)} is`, {
    hint: 'use a .joblib/.pkl (scikit-learn), .onnx or .pt (TorchScript) file, or --entry file.py:function',
  });
}

async function requireFile(file: string, what: string): Promise<void> {
  try {
    if ((await stat(file)).isFile()) return;
  } catch {
    // reported below
  }
  throw new UsageError(`${what} ${file} not found`);
}

async function readExample(file: string): Promise<JsonValue> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as JsonValue;
  } catch (e) {
    throw new UsageError(`example input ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

const PY_TARGET = /^(.+\.py):([A-Za-z_][A-Za-z0-9_]*)$/;

/** Model or function, its kind, and the names that follow from them. */
async function resolveSource(options: WrapOptions) {
  const svc = options.service?.config;
  const at = (p: string) => path.resolve(options.cwd, p);
  const entry = options.entry ?? svc?.entry;
  const modelArg = options.model ?? svc?.model;
  const weightsUrl = options.weightsUrl ?? svc?.weights?.url;
  if (!entry && !modelArg && !weightsUrl) {
    throw new UsageError('nothing to wrap: give a model file, --entry file.py:function or --weights-url', {
      hint: 'e.g. `mlship wrap model.joblib` or `mlship wrap --entry predict.py:predict`',
    });
  }
  const model = modelArg ? at(modelArg) : undefined;
  if (model) await requireFile(model, 'model file');
  const runtime = options.runtime ?? svc?.runtime ?? 'python';

  let kind: ModelKind;
  let entrySpec: WrapSpec['entry'];
  let entryFile: string | undefined;
  if (entry) {
    const m = PY_TARGET.exec(entry);
    if (!m) throw new UsageError(`--entry "${entry}" must be file.py:function (e.g. predict.py:predict)`);
    entryFile = options.userTree ? path.join(options.userTree.root, m[1]!) : at(m[1]!);
    await requireFile(entryFile, 'entry file');
    kind = 'entry';
    // In a tree the module is its dotted path from the tree's root (user/ is on sys.path).
    const module = options.userTree
      ? path.relative(options.userTree.root, entryFile).replace(/\.py$/, '').split(path.sep).join('.')
      : path.basename(entryFile, '.py');
    entrySpec = { module, function: m[2]! };
  } else {
    // Without a local copy, the URL's file name tells the kind.
    kind = detectKind(model ?? new URL(weightsUrl!).pathname);
  }
  if (runtime === 'node' && kind !== 'onnx') {
    throw new UsageError('the node runtime serves ONNX models only', {
      hint: 'pass an .onnx file, or use the python runtime',
    });
  }
  const source = entryFile ?? model ?? at(path.posix.basename(new URL(weightsUrl!).pathname) || 'model');
  const stem = path.basename(source).replace(/\.[^.]+$/, '');
  // "model.joblib" or "predict.py" says little: the folder's name is a better service name.
  const generic = /^(model|predict|main|app|inference|serve|weights|checkpoint)$/i.test(stem);
  const name =
    options.name ?? options.service?.name ?? slugify(generic ? path.basename(path.dirname(source)) : stem);
  const outDir = at(options.out ?? `${name}-service`);
  return { model, runtime, kind, entrySpec, entryFile, weightsUrl, source, stem, name, outDir };
}

type Source = Awaited<ReturnType<typeof resolveSource>>;

/** The example file: given, beside the model, or the one a previous wrap of this service kept. */
async function findExampleFile(options: WrapOptions, src: Source): Promise<string | undefined> {
  const exampleArg = options.example ?? options.service?.config.example;
  if (exampleArg) {
    const file = path.resolve(options.cwd, exampleArg);
    await requireFile(file, 'example input');
    return file;
  }
  const dir = path.dirname(src.source);
  const previous = await readManifest(src.outDir).catch(() => undefined);
  const candidates = [
    path.join(dir, `${src.stem}.example.json`),
    path.join(dir, 'example.json'),
    path.join(dir, 'input.json'),
    ...(previous ? [path.join(src.outDir, previous.example)] : []),
  ];
  for (const c of candidates) if (await exists(c)) return c;
  return undefined;
}

async function resolveWeights(options: WrapOptions, src: Source) {
  const svc = options.service?.config;
  const bake = options.bakeWeights ?? svc?.weights?.bake ?? false;
  const { model, weightsUrl, outDir } = src;
  let weights: WeightsSpec = { mode: 'none' };
  let weightsFile: Planned | undefined;
  const fileName = weightsUrl
    ? path.posix.basename(new URL(weightsUrl).pathname) || 'model'
    : model && path.basename(model);
  const target = fileName ? `/models/${fileName}` : '';
  if (weightsUrl) {
    if (bake) throw new UsageError('--bake-weights and a weights URL exclude each other');
    const sha256 =
      options.weightsSha256 ?? svc?.weights?.sha256 ?? (model ? await sha256File(model) : undefined);
    if (!sha256) {
      throw new UsageError('weights downloaded from a URL need a checksum', {
        hint: 'pass --weights-sha256 <hex>, or the local model file so mlship computes it',
      });
    }
    weights = { mode: 'url', url: weightsUrl, sha256, target };
  } else if (model && bake) {
    weights = { mode: 'bake', file: `weights/${fileName}`, target };
    weightsFile = { path: `weights/${fileName}`, copyFrom: model };
  } else if (model) {
    weights = { mode: 'mount', source: path.relative(outDir, model).split(path.sep).join('/'), target };
  }
  return { weights, weightsFile };
}

async function resolveSchemaFile(options: WrapOptions, runtime: 'python' | 'node') {
  if (!options.schema) return undefined;
  const m = PY_TARGET.exec(options.schema);
  if (!m) throw new UsageError(`--schema "${options.schema}" must be file.py:Class (a pydantic model)`);
  if (runtime !== 'python') throw new UsageError('--schema is for the python runtime');
  const file = path.resolve(options.cwd, m[1]!);
  await requireFile(file, 'schema file');
  return { file, className: m[2]! };
}

/** An entry point's sibling modules (copied to user/) and requirements.txt; or a whole tree. */
async function userCode(
  entryFile: string | undefined,
  tree: UserTree | undefined,
): Promise<{ files: Planned[]; requirements: boolean }> {
  if (tree) {
    const files: Planned[] = tree.files.map((f) => ({
      path: `user/${f}`,
      copyFrom: path.join(tree.root, f),
    }));
    files.push({ path: 'requirements-user.txt', content: tree.requirements });
    return { files, requirements: true };
  }
  const files: Planned[] = [];
  if (!entryFile) return { files, requirements: false };
  const dir = path.dirname(entryFile);
  for (const n of (await readdir(dir)).sort()) {
    if (n.endsWith('.py') && (await stat(path.join(dir, n))).isFile()) {
      files.push({ path: `user/${n}`, content: await readFile(path.join(dir, n), 'utf8') });
    }
  }
  const req = path.join(dir, 'requirements.txt');
  if (!(await exists(req))) return { files, requirements: false };
  files.push({ path: 'requirements-user.txt', content: await readFile(req, 'utf8') });
  return { files, requirements: true };
}

function noExample(options: WrapOptions, src: Source): UsageError {
  const dir = path.relative(options.cwd, path.dirname(src.source)) || '.';
  return new UsageError('no example input found', {
    hint: `write one request body as JSON, e.g. {"features": [5.1, 3.5, 1.4, 0.2]}, to ${path.join(dir, 'example.json')} or pass --example <file>`,
  });
}

/** The example file's requests (the first is the example) and the file fields of the request. */
async function resolveRequest(options: WrapOptions, src: Awaited<ReturnType<typeof resolveSource>>) {
  const exampleFile = await findExampleFile(options, src);
  // An example file may hold several requests: the first is the example, all give number ranges.
  const all = exampleFile ? splitExamples(await readExample(exampleFile), exampleFile) : undefined;
  // Files in and out: "@file" values of the example, mlship.yaml's inputs:/preprocess:, the ONNX shapes.
  const files = await resolveMedia({
    cwd: options.cwd,
    kind: src.kind,
    runtime: src.runtime,
    ...(src.model ? { model: src.model } : {}),
    ...(all ? { example: all.example } : {}),
    ...(exampleFile ? { exampleFile } : {}),
    ...(options.service ? { service: options.service } : {}),
    flags: options.media ?? {},
  });
  return { exampleFile, all, files };
}

/** What the checks load: the model or the function, as the service will. */
function checkTarget(options: WrapOptions, src: Awaited<ReturnType<typeof resolveSource>>) {
  return {
    cwd: options.cwd,
    kind: src.kind,
    runtime: src.runtime,
    ...(src.model ? { model: src.model } : {}),
    ...(src.weightsUrl ? { weightsUrl: src.weightsUrl } : {}),
    ...(src.entryFile && src.entrySpec
      ? {
          entry: {
            file: src.entryFile,
            function: src.entrySpec.function,
            // A tree is imported from its root, as the service does (user/ on sys.path).
            ...(options.userTree ? { importRoot: options.userTree.root } : {}),
          },
        }
      : {}),
    image: imageName(src.name),
  };
}

/** Port, workers, limits and batching: flags, else mlship.yaml, else the defaults. */
function servingSettings(options: WrapOptions, svc: Service | undefined) {
  const batching =
    options.batching ??
    (svc?.batching
      ? { maxBatchSize: svc.batching.max_batch_size, maxLatencyMs: svc.batching.max_latency_ms }
      : undefined);
  return {
    port: options.port ?? svc?.port ?? 8080,
    workers: options.workers ?? svc?.workers ?? 0,
    maxBodyBytes: options.maxBodyBytes ?? svc?.max_body_bytes ?? 1_048_576,
    maxQueue: options.maxQueue ?? svc?.max_queue ?? 256,
    ...(batching ? { batching } : {}),
    startupGraceSeconds: options.startupGraceSeconds ?? svc?.startup_grace_seconds ?? 60,
  };
}

export async function resolve(options: WrapOptions, deps: WrapCheckDeps): Promise<Resolved> {
  const svc = options.service?.config;
  const src = await resolveSource(options);
  const { exampleFile, all, files } = await resolveRequest(options, src);
  const read = all?.example;
  // A request with files is not the model's input as it is: the probe loads the model only.
  const given = files.media ? undefined : read;
  const schemaFile = await resolveSchemaFile(options, src.runtime);
  const { weights, weightsFile } = await resolveWeights(options, src);

  // Checked before anything is written: the model loads, the code imports, the example fits.
  const checked = await checkInputs(deps, {
    ...checkTarget(options, src),
    ...(schemaFile ? { schema: schemaFile } : {}),
    ...(given !== undefined ? { example: given } : {}),
    formatsOnly: options.formatsOnly ?? false,
  });
  const example = files.media ? files.example : (given ?? checked.example?.value);
  if (example === undefined) throw noExample(options, src);
  checked.checks.verified.push(...files.notes);
  const { ranges, notes } = resolveRanges(all?.examples ?? [example], svc?.ranges, {
    runtime: src.runtime,
    userSchema: schemaFile !== undefined,
    example,
  });
  checked.checks.verified.push(...notes);

  const user = await userCode(src.entryFile, options.userTree);
  const spec: WrapSpec = {
    name: src.name,
    runtime: src.runtime,
    kind: src.kind,
    ...(src.entrySpec ? { entry: src.entrySpec } : {}),
    example,
    ...(schemaFile
      ? { userSchema: { className: schemaFile.className, source: await readFile(schemaFile.file, 'utf8') } }
      : {}),
    ...servingSettings(options, svc),
    baseImage: options.baseImage ?? options.baseImages?.[src.runtime] ?? DEFAULT_BASE_IMAGES[src.runtime],
    weights,
    hasUserRequirements: user.requirements,
    // s3:// weights need no SDK: the service signs its own ranged GETs (app/weights.py).
    extraRequirements: [],
    ...(options.allowNonFinite ? { allowNonFinite: true } : {}),
    ...(files.media ? { media: files.media } : {}),
    ...(ranges ? { ranges } : {}),
  };
  return {
    spec,
    outDir: src.outDir,
    ...(src.model ? { model: src.model } : {}),
    userFiles: user.files,
    ...(weightsFile ? { weightsFile } : {}),
    checks: checked.checks,
    example: exampleFile
      ? { file: exampleFile }
      : {
          generatedFrom: files.media
            ? 'the file inputs: a grey image (or silence) of the declared size'
            : checked.example!.from,
        },
  };
}
