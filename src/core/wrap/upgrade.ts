// `mlship wrap --upgrade <dir>`: renders an already-wrapped service again with the current
// templates and the settings recorded in its mlship-wrap.json, so fixes reach services wrapped
// before them. Files the user has not touched are brought up to date; files the user edited
// are left alone and listed (--dry-run shows the difference, --force replaces them). Services
// wrapped before the settings were recorded have them read back from the files mlship wrote.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { JsonValue } from '../../generators/wrap-input.js';
import { MODEL_REQUIREMENTS, type WrapSpec } from '../../generators/wrap-spec.js';
import { UsageError } from '../../io/errors.js';
import {
  MANIFEST_FILE,
  requireManifest,
  templateVersion,
  type WrapManifest,
  type WrapSettings,
} from './manifest.js';
import type { FilePlan } from './plan.js';
import { exampleAsIs, generateService, renderInto } from './wrap.js';

export interface UpgradeOptions {
  cwd: string;
  /** The service directory (holds mlship-wrap.json). */
  dir: string;
  force: boolean;
  dryRun: boolean;
  mlshipVersion?: string;
}

export interface UpgradeResult {
  dir: string;
  name: string;
  runtime: 'python' | 'node';
  image: string;
  dryRun: boolean;
  /** The template version the service had (undefined: wrapped before versions were recorded). */
  from?: string;
  to: string;
  files: FilePlan[];
  /** Files you edited, left as they are. */
  kept: string[];
  /** Files mlship wrote before that the current templates no longer produce: left in place. */
  obsolete: string[];
  manifest: WrapManifest;
}

/** Copies of the user's inputs (their code, requirements, baked weights): not templates. */
const USER_INPUT = /^(user\/|weights\/|requirements-user\.txt$)/;

async function read(dir: string, file: string, why: string): Promise<string> {
  try {
    return await readFile(path.join(dir, file), 'utf8');
  } catch {
    throw new UsageError(`${path.join(dir, file)} is missing: ${why}`, {
      hint: `restore it, or wrap the model again: mlship wrap <model> --out ${dir}`,
    });
  }
}

function found(text: string, pattern: RegExp, file: string, dir: string): string {
  const m = pattern.exec(text);
  if (!m) {
    throw new UsageError(`cannot read the settings of ${dir} back from ${file} (edited?)`, {
      hint: `wrap it again once with the flags you used: mlship wrap <model> --out ${dir} [flags]; later upgrades need no flags`,
    });
  }
  return m[1]!;
}

/** The settings of a service wrapped before they were recorded, read back from the files mlship wrote. */
export async function recoverSettings(dir: string, manifest: WrapManifest): Promise<WrapSettings> {
  const why = 'the settings of services wrapped before mlship recorded them are read from it';
  const dockerfile = await read(dir, 'Dockerfile', why);
  const baseImage = found(dockerfile, /^FROM (\S+)/m, 'Dockerfile', dir);
  const hasUserRequirements = 'requirements-user.txt' in manifest.files;
  if (manifest.runtime === 'node') {
    const service = JSON.parse(await read(dir, 'service.json', why)) as Record<string, number>;
    return {
      workers: 0,
      maxBodyBytes: service.maxBodyBytes ?? 1_048_576,
      maxQueue: service.maxQueue ?? 256,
      ...(service.batchMaxSize
        ? { batching: { maxBatchSize: service.batchMaxSize, maxLatencyMs: service.batchMaxLatencyMs ?? 10 } }
        : {}),
      baseImage,
      hasUserRequirements,
      extraRequirements: [],
    };
  }
  const settings = await read(dir, 'app/settings.py', why);
  const number = (name: string) =>
    Number(found(settings, new RegExp(`"${name}", ([\\d.]+)\\)`), 'app/settings.py', dir));
  const gunicorn = await read(dir, 'gunicorn_conf.py', why);
  // The worker count: `decide(n)` (thread-budget templates) or, before them, `... or n)`.
  const workers = (/_budget = decide\((\d+)\)/.exec(gunicorn) ??
    /os\.environ\.get\("WORKERS"\) or (\d+)\)/.exec(gunicorn))?.[1];
  const model = await read(dir, 'app/model.py', why);
  const schema = await read(dir, 'app/schema.py', why);
  // Before the thread-budget templates, the request model was imported "as PredictRequest".
  const userSchemaClass = /^from app\.user_schema import (\w+)(?: as PredictRequest)?$/m.exec(schema)?.[1];
  const requirements =
    'requirements-model.txt' in manifest.files ? await read(dir, 'requirements-model.txt', why) : '';
  const pinned = new Set(MODEL_REQUIREMENTS[manifest.kind]);
  const batchSize = number('BATCH_MAX_SIZE');
  return {
    ...(manifest.kind === 'entry'
      ? {
          entry: {
            module: found(model, /importlib\.import_module\("([^"]+)"\)/, 'app/model.py', dir),
            function: found(model, /self\._predict = module\.(\w+)/, 'app/model.py', dir),
          },
        }
      : {}),
    ...(userSchemaClass ? { userSchemaClass } : {}),
    workers: workers ? Number(workers) : 0,
    maxBodyBytes: number('MAX_BODY_BYTES'),
    maxQueue: number('MAX_QUEUE'),
    ...(batchSize > 1
      ? { batching: { maxBatchSize: batchSize, maxLatencyMs: number('BATCH_MAX_LATENCY_MS') } }
      : {}),
    baseImage,
    hasUserRequirements,
    extraRequirements: requirements
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#') && !pinned.has(l.trim())),
  };
}

async function specOf(dir: string, manifest: WrapManifest, settings: WrapSettings): Promise<WrapSpec> {
  const exampleText = await read(dir, manifest.example, 'it is the example the service is rendered from');
  let example: JsonValue;
  try {
    example = JSON.parse(exampleText) as JsonValue;
  } catch (e) {
    throw new UsageError(`${path.join(dir, manifest.example)} is not valid JSON: ${(e as Error).message}`);
  }
  const userSchema = settings.userSchemaClass
    ? {
        className: settings.userSchemaClass,
        source: await read(dir, 'app/user_schema.py', 'it is your request model'),
      }
    : undefined;
  return {
    name: manifest.name,
    runtime: manifest.runtime,
    kind: manifest.kind,
    ...(settings.entry ? { entry: settings.entry } : {}),
    example,
    ...(userSchema ? { userSchema } : {}),
    port: manifest.port,
    workers: settings.workers,
    maxBodyBytes: settings.maxBodyBytes,
    maxQueue: settings.maxQueue,
    ...(settings.batching ? { batching: settings.batching } : {}),
    startupGraceSeconds: manifest.startupGraceSeconds,
    baseImage: settings.baseImage,
    weights: manifest.weights,
    hasUserRequirements: settings.hasUserRequirements,
    extraRequirements: settings.extraRequirements,
    ...(settings.allowNonFinite ? { allowNonFinite: true } : {}),
    ...(settings.compiledFrom ? { compiledFrom: settings.compiledFrom } : {}),
    ...(settings.media ? { media: settings.media } : {}),
    ...(settings.ranges ? { ranges: settings.ranges } : {}),
  };
}

export async function runUpgrade(options: UpgradeOptions): Promise<UpgradeResult> {
  const dir = path.resolve(options.cwd, options.dir);
  const manifest = await requireManifest(dir);
  const settings = manifest.settings ?? (await recoverSettings(dir, manifest));
  const spec = await specOf(dir, manifest, settings);
  const generated = await exampleAsIs(generateService(spec), dir, path.join(dir, manifest.example));
  const produced = new Set(generated.map((f) => f.path));
  // Copies of the user's inputs and files no template produces any more stay recorded as they were.
  const carried = Object.fromEntries(
    Object.entries(manifest.files).filter(([p]) => !produced.has(p) && p !== MANIFEST_FILE),
  );
  const obsolete = Object.keys(carried).filter((p) => !USER_INPUT.test(p));
  const { files, manifest: next } = await renderInto(dir, spec, generated, {
    policy: options.force ? 'force' : 'keep',
    dryRun: options.dryRun,
    mlshipVersion: options.mlshipVersion,
    carried,
  });
  return {
    dir,
    name: manifest.name,
    runtime: manifest.runtime,
    image: next.image,
    dryRun: options.dryRun,
    ...(manifest.templateVersion ? { from: manifest.templateVersion } : {}),
    to: templateVersion(manifest.runtime, options.mlshipVersion),
    files,
    kept: files.filter((f) => f.action === 'kept').map((f) => f.path),
    obsolete,
    manifest: next,
  };
}
