// `mlship wrap`: from a model file or a Python function to a service directory
// (Dockerfile, server, tests). Decides the spec (flags > mlship.yaml > detection),
// renders it with the generators, and writes only what it may: a file the user
// changed since the last wrap is never replaced without `force`.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createTwoFilesPatch } from 'diff';
import type { BaseImagesSchema, Service } from '../../config/schema.js';
import { ExampleError, type JsonValue } from '../../generators/wrap-input.js';
import { generateNodeService } from '../../generators/wrap-node.js';
import { generatePythonService } from '../../generators/wrap-python.js';
import {
  BOTO3_REQUIREMENT,
  DEFAULT_BASE_IMAGES,
  type GeneratedFile,
  type ModelKind,
  type WeightsSpec,
  type WrapSpec,
} from '../../generators/wrap-spec.js';
import { MlshipError, UsageError } from '../../io/errors.js';
import { exists, writeFileAtomic } from '../../io/files.js';
import { slugify } from '../init/init.js';
import { MANIFEST_FILE, readManifest, type WrapManifest } from './manifest.js';

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
  /** JSON file with one example input. */
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
  /** A service of mlship.yaml whose settings are the defaults. */
  service?: { name: string; config: Service };
  baseImages?: BaseImages;
  /** A whole source tree as the user code (`--from-bakeoff`: the candidate at its locked commit). */
  userTree?: UserTree;
}

/** User code from a tree: every file copied to user/ (paths kept), and its pinned requirements. */
export interface UserTree {
  root: string;
  /** Files relative to `root`, forward slashes. */
  files: string[];
  requirements: string;
}

export type FileAction = 'create' | 'update' | 'unchanged' | 'conflict' | 'overwrite';

export interface FilePlan {
  path: string;
  action: FileAction;
  /** With --dry-run: a unified diff (current → generated) of a text file that would change. */
  diff?: string;
}

export interface WrapResult {
  dir: string;
  name: string;
  kind: ModelKind;
  runtime: 'python' | 'node';
  image: string;
  dryRun: boolean;
  files: FilePlan[];
  manifest: WrapManifest;
}

export class FileConflictError extends MlshipError {
  constructor(dir: string, files: string[]) {
    super(
      'FILE_CONFLICT',
      'usage',
      `${files.length} file(s) in ${dir} were changed since mlship generated them`,
      {
        details: files.map((f) => `changed: ${f}`),
        hint: 'keep your edits (choose another --out), or pass --force to overwrite them; --dry-run shows the plan',
      },
    );
  }
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

/** A file planned for the output directory: text, or a copy of a (possibly large) file. */
type Planned = { path: string; content: string } | { path: string; copyFrom: string };

function sha256Text(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function hashOf(p: Planned): Promise<string> {
  return 'content' in p ? sha256Text(p.content) : sha256File(p.copyFrom);
}

async function requireFile(file: string, what: string): Promise<void> {
  try {
    if ((await stat(file)).isFile()) return;
  } catch {
    // reported below
  }
  throw new UsageError(`${what} ${file} not found`);
}

async function findExample(candidates: string[]): Promise<string | undefined> {
  for (const c of candidates) if (await exists(c)) return c;
  return undefined;
}

async function readExample(file: string): Promise<JsonValue> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as JsonValue;
  } catch (e) {
    throw new UsageError(`example input ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

interface Resolved {
  spec: WrapSpec;
  outDir: string;
  /** User code and requirements, copied next to the service (entry points). */
  userFiles: Planned[];
  weightsFile?: Planned;
}

async function resolve(options: WrapOptions): Promise<Resolved> {
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
    const m = /^(.+\.py):([A-Za-z_][A-Za-z0-9_]*)$/.exec(entry);
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

  const exampleArg = options.example ?? svc?.example;
  const sourceDir = path.dirname(source);
  const exampleFile = exampleArg
    ? at(exampleArg)
    : await findExample([
        path.join(sourceDir, `${stem}.example.json`),
        path.join(sourceDir, 'example.json'),
        path.join(sourceDir, 'input.json'),
      ]);
  if (!exampleFile) {
    throw new UsageError('no example input found', {
      hint: `write one request body as JSON, e.g. {"features": [5.1, 3.5, 1.4, 0.2]}, to ${path.join(path.relative(options.cwd, sourceDir) || '.', 'example.json')} or pass --example <file>`,
    });
  }
  await requireFile(exampleFile, 'example input');
  const example = await readExample(exampleFile);

  // Weights: mounted read-only by default, downloaded with a checksum, or baked in.
  const bake = options.bakeWeights ?? svc?.weights?.bake ?? false;
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

  let userSchema: WrapSpec['userSchema'];
  if (options.schema) {
    const m = /^(.+\.py):([A-Za-z_][A-Za-z0-9_]*)$/.exec(options.schema);
    if (!m) throw new UsageError(`--schema "${options.schema}" must be file.py:Class (a pydantic model)`);
    if (runtime !== 'python') throw new UsageError('--schema is for the python runtime');
    const file = at(m[1]!);
    await requireFile(file, 'schema file');
    userSchema = { className: m[2]!, source: await readFile(file, 'utf8') };
  }

  const userFiles: Planned[] = [];
  let hasUserRequirements = false;
  if (options.userTree) {
    const tree = options.userTree;
    userFiles.push(...tree.files.map((f) => ({ path: `user/${f}`, copyFrom: path.join(tree.root, f) })));
    userFiles.push({ path: 'requirements-user.txt', content: tree.requirements });
    hasUserRequirements = true;
  } else if (entryFile) {
    const dir = path.dirname(entryFile);
    for (const n of (await readdir(dir)).sort()) {
      if (n.endsWith('.py') && (await stat(path.join(dir, n))).isFile()) {
        userFiles.push({ path: `user/${n}`, content: await readFile(path.join(dir, n), 'utf8') });
      }
    }
    const req = path.join(dir, 'requirements.txt');
    if (await exists(req)) {
      hasUserRequirements = true;
      userFiles.push({ path: 'requirements-user.txt', content: await readFile(req, 'utf8') });
    }
  }

  const batching =
    options.batching ??
    (svc?.batching
      ? { maxBatchSize: svc.batching.max_batch_size, maxLatencyMs: svc.batching.max_latency_ms }
      : undefined);
  const spec: WrapSpec = {
    name,
    runtime,
    kind,
    ...(entrySpec ? { entry: entrySpec } : {}),
    example,
    ...(userSchema ? { userSchema } : {}),
    port: options.port ?? svc?.port ?? 8080,
    workers: options.workers ?? svc?.workers ?? 0,
    maxBodyBytes: options.maxBodyBytes ?? svc?.max_body_bytes ?? 1_048_576,
    maxQueue: options.maxQueue ?? svc?.max_queue ?? 256,
    ...(batching ? { batching } : {}),
    startupGraceSeconds: options.startupGraceSeconds ?? svc?.startup_grace_seconds ?? 60,
    baseImage: options.baseImage ?? options.baseImages?.[runtime] ?? DEFAULT_BASE_IMAGES[runtime],
    weights,
    hasUserRequirements,
    extraRequirements: weightsUrl?.startsWith('s3://') && runtime === 'python' ? [BOTO3_REQUIREMENT] : [],
  };
  return { spec, outDir, userFiles, ...(weightsFile ? { weightsFile } : {}) };
}

export function imageName(name: string): string {
  return `mlship/${name}:latest`;
}

/** The service files for a spec (both runtimes), without writing anything. */
export function generateService(spec: WrapSpec): GeneratedFile[] {
  try {
    return spec.runtime === 'node' ? generateNodeService(spec) : generatePythonService(spec);
  } catch (e) {
    if (e instanceof ExampleError) {
      throw new UsageError(`example input: ${e.message}`, {
        hint: 'the example is one request body as JSON; its fields become the request schema',
      });
    }
    throw e;
  }
}

export function manifestFor(spec: WrapSpec, files: Record<string, string>): WrapManifest {
  return {
    version: 1,
    name: spec.name,
    runtime: spec.runtime,
    kind: spec.kind,
    image: imageName(spec.name),
    port: spec.port,
    startupGraceSeconds: spec.startupGraceSeconds,
    example: spec.runtime === 'node' ? 'example.json' : 'app/example.json',
    weights: spec.weights,
    files,
  };
}

async function currentHash(file: string): Promise<string | undefined> {
  try {
    return await sha256File(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

const CHANGES: FileAction[] = ['update', 'overwrite', 'conflict'];

async function withDiff(outDir: string, p: FilePlan & { file: Planned }): Promise<FilePlan> {
  if (!CHANGES.includes(p.action) || !('content' in p.file)) return { path: p.path, action: p.action };
  const current = await readFile(path.join(outDir, p.path), 'utf8');
  const diff = createTwoFilesPatch(
    `a/${p.path}`,
    `b/${p.path}`,
    current,
    p.file.content,
    'current',
    'mlship wrap',
    {
      context: 2,
    },
  );
  return { path: p.path, action: p.action, diff };
}

export async function runWrap(options: WrapOptions): Promise<WrapResult> {
  const { spec, outDir, userFiles, weightsFile } = await resolve(options);
  const planned: Planned[] = [...generateService(spec), ...userFiles, ...(weightsFile ? [weightsFile] : [])];
  const previous = await readManifest(outDir);

  const hashes: Record<string, string> = {};
  const plan: (FilePlan & { file: Planned })[] = [];
  for (const file of planned) {
    const next = await hashOf(file);
    hashes[file.path] = next;
    const now = await currentHash(path.join(outDir, file.path));
    let action: FileAction;
    if (now === undefined) action = 'create';
    else if (now === next) action = 'unchanged';
    else if (previous?.files[file.path] === now) action = 'update';
    else action = options.force ? 'overwrite' : 'conflict';
    plan.push({ path: file.path, action, file });
  }
  const manifest = manifestFor(spec, hashes);
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  const manifestNow = await currentHash(path.join(outDir, MANIFEST_FILE));
  plan.push({
    path: MANIFEST_FILE,
    action:
      manifestNow === undefined
        ? 'create'
        : manifestNow === sha256Text(manifestText)
          ? 'unchanged'
          : 'update',
    file: { path: MANIFEST_FILE, content: manifestText },
  });

  const result: WrapResult = {
    dir: outDir,
    name: spec.name,
    kind: spec.kind,
    runtime: spec.runtime,
    image: manifest.image,
    dryRun: options.dryRun,
    files: plan.map(({ path: p, action }) => ({ path: p, action })),
    manifest,
  };
  if (options.dryRun) {
    result.files = await Promise.all(plan.map((p) => withDiff(outDir, p)));
    return result;
  }
  const conflicts = plan.filter((p) => p.action === 'conflict').map((p) => p.path);
  if (conflicts.length) throw new FileConflictError(outDir, conflicts);

  await mkdir(outDir, { recursive: true });
  for (const { action, file } of plan) {
    if (action === 'unchanged') continue;
    const target = path.join(outDir, file.path);
    if ('content' in file) {
      await writeFileAtomic(target, file.content);
    } else {
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(file.copyFrom, target);
    }
  }
  return result;
}
