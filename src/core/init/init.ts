// `mlship init`: writes a valid mlship.yaml, from answers or from flags alone, with a
// `$schema` reference editors can resolve: the installed package's schema, by a relative path.

import path from 'node:path';
import { stringify } from 'yaml';
import { parseYamlConfig } from '../../config/load.js';
import { type ProjectInput, ProjectSchema, SCHEMA_FILE } from '../../config/schema.js';
import { UsageError } from '../../io/errors.js';
import { exists } from '../../io/files.js';
import type { Prompter } from '../../io/prompts.js';

export interface InitOptions {
  dir: string;
  file: string;
  name?: string;
  service?: string;
  entry?: string;
  model?: string;
  runtime?: 'python' | 'node';
  gpu?: boolean;
  region?: string;
  pythonImage?: string;
  /** Stack add-ons for `mlship compose`: proxy, database, storage, frontend. */
  addons?: string[];
  force: boolean;
}

export const ADDONS = ['proxy', 'database', 'storage', 'frontend', 'monitoring'] as const;

export interface InitDeps {
  prompter: Prompter;
  writeNewFile(file: string, content: string, force: boolean): Promise<void>;
}

export interface InitResult {
  file: string;
  project: ProjectInput;
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** A valid name from a directory name: "My_Model v2" → "my-model-v2". */
export function slugify(text: string): string {
  const slug = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .replace(/^[^a-z]+/, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return slug || 'my-project';
}

/**
 * Where an editor finds the schema, relative to the file: the project's own install of mlship
 * when it has one (the same path on every clone after `npm ci`), else the running package's.
 */
export async function schemaReference(dir: string): Promise<string> {
  const local = path.join(dir, 'node_modules', 'mlship', 'schema', 'mlship.schema.json');
  const file = (await exists(local)) ? local : SCHEMA_FILE;
  const rel = path.relative(dir, file).split(path.sep).join('/');
  return rel.startsWith('.') || path.isAbsolute(rel) ? rel : `./${rel}`;
}

const validName = (v: string): true | string =>
  NAME.test(v) || 'use lowercase letters, digits and "-", starting with a letter';

interface InitAnswers {
  name: string;
  serviceName: string;
  runtime: 'python' | 'node';
  entry?: string;
  model?: string;
  gpu: boolean;
  region: string;
  addons: string[];
}

function checkFlags(options: InitOptions): void {
  for (const [flag, value] of [
    ['--name', options.name],
    ['--service', options.service],
  ] as const) {
    if (value !== undefined && validName(value) !== true) {
      throw new UsageError(`${flag} "${value}" is not a valid name`, {
        hint: 'use lowercase letters, digits and "-", starting with a letter',
      });
    }
  }
  for (const a of options.addons ?? []) {
    if (!(ADDONS as readonly string[]).includes(a)) {
      throw new UsageError(`unknown add-on "${a}"`, { hint: `choose from ${ADDONS.join(', ')}` });
    }
  }
}

/** What the service serves: the flags, or (interactive, neither given) a question. */
async function askServes(
  options: InitOptions,
  p: InitDeps['prompter'],
): Promise<{ entry?: string; model?: string }> {
  if (options.entry !== undefined || options.model !== undefined || !p.interactive)
    return { entry: options.entry, model: options.model };
  const kind = await p.select(
    'What does the service serve?',
    [
      { value: 'entry', name: 'a Python function (predict.py:predict)' },
      { value: 'model', name: 'a serialized model file (.joblib/.pkl, .onnx, .pt)' },
      { value: 'later', name: 'decide later' },
    ],
    'later',
  );
  if (kind === 'entry') return { entry: await p.input('Entry point', 'predict.py:predict') };
  if (kind === 'model') return { model: await p.input('Model file', 'model.joblib') };
  return {};
}

/** Each answer from its flag, or asked (in this order) when the flag is missing. */
async function askAll(options: InitOptions, p: InitDeps['prompter']): Promise<InitAnswers> {
  const name =
    options.name ??
    (await p.input('Project name', slugify(path.basename(path.resolve(options.dir))), validName));
  const serviceName = options.service ?? (await p.input('First model service name', 'model', validName));
  const runtime =
    options.runtime ??
    (await p.select('Serving runtime', [{ value: 'python' as const }, { value: 'node' as const }], 'python'));
  const { entry, model } = await askServes(options, p);
  const gpu = options.gpu ?? (await p.confirm('Does it need a GPU?', false));
  const region =
    options.region ?? (p.interactive ? await p.input('AWS region for deploys (empty to skip)', '') : '');
  const addons =
    options.addons ??
    (p.interactive && (await p.confirm('Add an NGINX proxy and a front end for `mlship compose`?', true))
      ? ['proxy', 'frontend']
      : []);
  return { name, serviceName, runtime, entry, model, gpu, region, addons };
}

export async function runInit(options: InitOptions, deps: InitDeps): Promise<InitResult> {
  checkFlags(options);
  const { name, serviceName, runtime, entry, model, gpu, region, addons } = await askAll(
    options,
    deps.prompter,
  );
  const project: ProjectInput = {
    version: 1,
    name,
    services: {
      [serviceName]: {
        path: `services/${serviceName}`,
        runtime,
        ...(entry ? { entry } : {}),
        ...(model ? { model } : {}),
        port: 8080,
        gpu,
        startup_grace_seconds: 60,
      },
    },
    ...(options.pythonImage ? { base_images: { python: options.pythonImage } } : {}),
    ...(region ? { aws: { region } } : {}),
    ...Object.fromEntries(addons.map((a) => [a, {}])),
  };
  const text = `# yaml-language-server: $schema=${await schemaReference(path.dirname(options.file))}\n${stringify(project)}`;
  // Whatever we write must pass our own validation: check before touching the disk.
  parseYamlConfig(options.file, text, ProjectSchema);
  await deps.writeNewFile(options.file, text, options.force);
  return { file: options.file, project };
}
