// The Python (FastAPI + gunicorn) service for a wrapped model: a list of files,
// rendered deterministically from the spec. Text files come from templates/wrap/python.

import { type InputField, inferFields, inputModeFor, needsShapeCheck, pythonType } from './wrap-input.js';
import { mediaFields, mediaFiles } from './wrap-media.js';
import {
  type GeneratedFile,
  KIND_TITLES,
  MODEL_REQUIREMENTS,
  maxBatchInputs,
  mediaBodyBytes,
  type NumberRange,
  type WrapSpec,
} from './wrap-spec.js';
import { renderTemplate, staticTemplate } from './wrap-templates.js';

const STATIC_FILES = [
  'app/__init__.py',
  'app/main.py',
  'app/threads.py',
  'app/batching.py',
  'app/observability.py',
  'app/logs.py',
  'app/rollout.py',
  'app/weights.py',
  'app/worker.py',
  'app/aws_clients.py',
  'requirements-serving.txt',
  'requirements-test.txt',
  'ruff.toml',
  'tests/conftest.py',
  'tests/test_batching.py',
  'tests/test_rollout.py',
  'tests/test_service.py',
  'tests/test_threads.py',
  'tests/test_worker.py',
] as const;

const JSON_ONLY_TESTS = new Set(['tests/test_service.py', 'tests/test_rollout.py', 'tests/test_worker.py']);

export function modelRequirements(spec: WrapSpec): string[] {
  return [...MODEL_REQUIREMENTS[spec.kind], ...spec.extraRequirements];
}

function modelPath(spec: WrapSpec): string {
  return spec.weights.mode === 'none' ? '' : spec.weights.target;
}

/** A number field's range in app/schema.py: ge/le when enforced, a published hint otherwise. */
function rangeOf(name: string, range: NumberRange | undefined): { range?: string; rangeWhy?: string } {
  if (!range) return {};
  const py = (n: number | undefined) => (n === undefined ? 'None' : String(n));
  const span = `[${range.minimum ?? '-inf'}, ${range.maximum ?? 'inf'}]`;
  if (range.strict) {
    const bounds = [
      ...(range.minimum !== undefined ? [`ge=${py(range.minimum)}`] : []),
      ...(range.maximum !== undefined ? [`le=${py(range.maximum)}`] : []),
    ];
    return {
      range: bounds.join(', '),
      rangeWhy: `Outside ${span}: 422 naming the field (ranges: in mlship.yaml).`,
    };
  }
  const where =
    range.from === 'examples' ? 'seen in the examples' : `"${name}" in mlship.yaml, strict: false`;
  return {
    range: `json_schema_extra=hint(${py(range.minimum)}, ${py(range.maximum)})`,
    rangeWhy: `${span}: ${where}; shown by the front end, not enforced.`,
  };
}

/** The request's fields and how they become the model input. */
function requestFields(spec: WrapSpec): { fields: InputField[]; inputMode: 'tabular' | 'tensor' | 'dict' } {
  // Files: the model file takes its one file field as a tensor; your function gets a dict.
  if (spec.media) return mediaFields(spec, spec.media);
  const fields = inferFields(spec.example);
  // With your own request model, its fields are yours to check; the example only has to fit it.
  const inputMode = spec.userSchema
    ? spec.kind === 'entry'
      ? 'dict'
      : 'tabular'
    : inputModeFor(fields, spec.kind !== 'entry');
  return { fields, inputMode };
}

/** What several of the service's templates are rendered with. */
type Common = {
  name: string;
  kind: WrapSpec['kind'];
  kindTitle: string;
  port: number;
  modelPath: ReturnType<typeof modelPath>;
};

/** app/settings.py: the service's limits, batching and weights, from the spec. */
function settingsFile(spec: WrapSpec, common: Common): GeneratedFile {
  return {
    path: 'app/settings.py',
    content: renderTemplate('python/app/settings.py', {
      ...common,
      maxBodyBytes: spec.media ? mediaBodyBytes(spec.media, spec.maxBodyBytes) : spec.maxBodyBytes,
      media: spec.media !== undefined,
      maxPixels: spec.media?.maxPixels ?? 0,
      fetchAllow: spec.media?.fetchAllow ?? [],
      maxQueue: spec.maxQueue,
      batchMaxSize: spec.batching?.maxBatchSize ?? 0,
      batchMaxLatencyMs: spec.batching?.maxLatencyMs ?? 0,
      maxBatchInputs: maxBatchInputs(spec),
      // A model file's own pools get the worker's threads: one call at a time uses them best.
      // Your function may wait on I/O instead: 40 at once, as FastAPI's thread pool allows.
      modelCallsAtOnce: spec.kind === 'entry' ? 40 : 1,
      modelUrl: spec.weights.mode === 'url' ? spec.weights.url : '',
      modelSha256: 'sha256' in spec.weights && spec.weights.sha256 ? spec.weights.sha256 : '',
    }),
  };
}

/** app/schema.py: the request model, its fields' types, ranges and checks. */
function schemaFile(
  spec: WrapSpec,
  fields: InputField[],
  inputMode: 'tabular' | 'tensor' | 'dict',
): GeneratedFile {
  return {
    path: 'app/schema.py',
    content: renderTemplate('python/app/schema.py', {
      inputMode,
      media: spec.media !== undefined,
      userSchema: spec.userSchema?.className,
      needsShape: fields.some((f) => needsShapeCheck(f.shape)),
      hasHints: Object.values(spec.ranges ?? {}).some((r) => !r.strict),
      allowNonFinite: spec.allowNonFinite ?? false,
      fields: fields.map((f) => ({
        py: f.py,
        type: pythonType(f.shape),
        alias: f.py === f.name ? undefined : f.name,
        ...rangeOf(f.name, spec.ranges?.[f.name]),
        list: f.shape.kind === 'array',
        file: f.file !== undefined,
        name: f.name,
      })),
    }),
  };
}

export function generatePythonService(spec: WrapSpec): GeneratedFile[] {
  const { fields, inputMode } = requestFields(spec);
  const requirements = modelRequirements(spec);
  const common: Common = {
    name: spec.name,
    kind: spec.kind,
    kindTitle: KIND_TITLES[spec.kind],
    port: spec.port,
    modelPath: modelPath(spec),
  };
  const files: GeneratedFile[] = [
    {
      path: 'Dockerfile',
      content: renderTemplate('python/Dockerfile', {
        ...common,
        baseImage: spec.baseImage,
        hasModelRequirements: requirements.length > 0,
        hasUserRequirements: spec.hasUserRequirements,
        hasMedia: spec.media !== undefined,
        hasUserCode: spec.kind === 'entry',
        bakeWeights: spec.weights.mode === 'bake',
        startupGraceSeconds: spec.startupGraceSeconds,
      }),
    },
    {
      path: '.dockerignore',
      content: renderTemplate('python/dockerignore', { bakeWeights: spec.weights.mode === 'bake' }),
    },
    {
      path: 'gunicorn_conf.py',
      content: renderTemplate('python/gunicorn_conf.py', {
        port: spec.port,
        workers: spec.workers,
        startupGraceSeconds: spec.startupGraceSeconds,
      }),
    },
    settingsFile(spec, common),
    {
      path: 'app/model.py',
      content: renderTemplate('python/app/model.py', {
        ...common,
        entryModule: spec.entry?.module ?? '',
        entryFunction: spec.entry?.function ?? '',
        squeezeOutput: spec.compiledFrom === 'sklearn',
        arrays: spec.media !== undefined,
      }),
    },
    schemaFile(spec, fields, inputMode),
    { path: 'app/example.json', content: `${JSON.stringify(spec.example, null, 2)}\n` },
    // A service with files has its own tests of them (tests/test_media.py) instead of the JSON ones;
    // rollout mirroring and the queue worker take JSON requests only, so their tests are left out.
    ...STATIC_FILES.filter((p) => !(spec.media && JSON_ONLY_TESTS.has(p))).map((p) => ({
      path: p,
      content: staticTemplate(`python/${p}`),
    })),
  ];
  if (spec.userSchema) files.push({ path: 'app/user_schema.py', content: spec.userSchema.source });
  if (spec.media) files.push(...mediaFiles(spec, spec.media, fields));
  if (requirements.length > 0) {
    files.push({
      path: 'requirements-model.txt',
      content: `# ${KIND_TITLES[spec.kind]}: pinned, installed in its own layer.\n${requirements.join('\n')}\n`,
    });
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}
