// `mlship wrap`: from a model file or a Python function to a service directory
// (Dockerfile, server, tests). Resolves and checks the inputs (resolve.ts, checks.ts),
// renders them with the generators, and writes only what it may (plan.ts): a file the
// user changed since the last wrap is never replaced without `force`.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ExampleError } from '../../generators/wrap-input.js';
import { generateNodeService } from '../../generators/wrap-node.js';
import { generatePythonService } from '../../generators/wrap-python.js';
import type { GeneratedFile, ModelKind, WrapSpec } from '../../generators/wrap-spec.js';
import { UsageError } from '../../io/errors.js';
import type { WrapChecks } from './checks.js';
import { type CompileReport, type ConverterEngine, compileForWrap } from './compile.js';
import { MANIFEST_FILE, manifestFor, readManifest, templateVersion, type WrapManifest } from './manifest.js';
import { type FilePlan, type Planned, planFiles, planManifest, showPlan, writePlan } from './plan.js';
import type { WrapCheckDeps } from './probe.js';
import { type Resolved, resolve, type WrapOptions } from './resolve.js';

export { imageName, manifestFor } from './manifest.js';
export type { FileAction, FilePlan } from './plan.js';
export { FileConflictError, sha256File } from './plan.js';
export { detectKind, type WrapOptions } from './resolve.js';

export interface WrapResult {
  dir: string;
  name: string;
  kind: ModelKind;
  runtime: 'python' | 'node';
  image: string;
  dryRun: boolean;
  files: FilePlan[];
  manifest: WrapManifest;
  /** What was checked before writing, and what could not be. */
  checks: WrapChecks;
  /** The example file used, or what the example was written from when there was none. */
  example: { file?: string; generatedFrom?: string };
  /** With --compile/--quantize: what was checked, sizes and latencies before and after. */
  compile?: CompileReport;
}

export interface WrapDeps extends WrapCheckDeps {
  /** Runs the converter image; asked for by --compile/--quantize only, once the flags are checked. */
  converter?: () => Promise<ConverterEngine>;
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

/**
 * Plans (and unless dry-running, writes) the service files and the manifest that records them.
 * Shared by `mlship wrap` and `mlship wrap --upgrade`.
 */
export async function renderInto(
  outDir: string,
  spec: WrapSpec,
  planned: Planned[],
  options: {
    policy: 'refuse' | 'force' | 'keep';
    dryRun: boolean;
    mlshipVersion: string | undefined;
    /** Files recorded by the previous manifest that this render does not produce but keeps. */
    carried?: Record<string, string>;
  },
): Promise<{ files: FilePlan[]; manifest: WrapManifest; previous: WrapManifest | undefined }> {
  const previous = await readManifest(outDir);
  const plan = await planFiles(outDir, planned, previous, options.policy);
  const hashes: Record<string, string> = { ...options.carried };
  for (const p of plan) hashes[p.path] = p.hash;
  const manifest = manifestFor(spec, hashes, templateVersion(spec.runtime, options.mlshipVersion));
  plan.push(await planManifest(outDir, MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`));
  if (!options.dryRun) await writePlan(outDir, plan);
  return { files: await showPlan(outDir, plan, options.dryRun), manifest, previous };
}

/**
 * The service's example file as it is on disk when it is the example used: a service's own
 * example (yours, maybe edited) is read, never reformatted.
 */
export async function exampleAsIs(
  files: GeneratedFile[],
  outDir: string,
  exampleFile: string | undefined,
): Promise<GeneratedFile[]> {
  const rel = exampleFile && path.relative(outDir, exampleFile).split(path.sep).join('/');
  if (!rel || rel.startsWith('..')) return files;
  const text = await readFile(exampleFile!, 'utf8');
  return files.map((f) => (f.path === rel ? { path: f.path, content: text } : f));
}

export async function runWrap(options: WrapOptions, deps: WrapDeps = {}): Promise<WrapResult> {
  if (options.convert && !options.model) {
    // Said before the inputs are loaded and checked: there is no model file to convert.
    throw new UsageError('--compile/--quantize need the model file itself', {
      hint: 'TorchScript and your own functions are served as they are; pass a .joblib/.pkl or .onnx file',
    });
  }
  const resolved = await resolve(options, deps);
  if (!options.convert) return writeService(resolved, options);
  const compiled = await compileForWrap(resolved, options.convert, deps.converter);
  try {
    const result = await writeService(
      {
        ...resolved,
        spec: compiled.spec,
        weightsFile: compiled.weightsFile,
        userFiles: [...resolved.userFiles, compiled.reportFile],
      },
      options,
    );
    return { ...result, compile: compiled.report };
  } finally {
    await compiled.cleanup();
  }
}

async function writeService(r: Resolved, options: WrapOptions): Promise<WrapResult> {
  const planned: Planned[] = [
    ...(await exampleAsIs(generateService(r.spec), r.outDir, r.example.file)),
    ...r.userFiles,
    ...(r.weightsFile ? [r.weightsFile] : []),
  ];
  const { files, manifest } = await renderInto(r.outDir, r.spec, planned, {
    policy: options.force ? 'force' : 'refuse',
    dryRun: options.dryRun,
    mlshipVersion: options.mlshipVersion,
  });
  return {
    dir: r.outDir,
    name: r.spec.name,
    kind: r.spec.kind,
    runtime: r.spec.runtime,
    image: manifest.image,
    dryRun: options.dryRun,
    files,
    manifest,
    checks: r.checks,
    example: r.example,
  };
}
