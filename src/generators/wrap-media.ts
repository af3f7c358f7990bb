// Files in and out of a wrapped Python service (issue 18): the request fields a file becomes
// (with the OpenAPI keywords the front end reads), and the modules that decode, preprocess and
// encode them, rendered from the declaration in the spec.

import { type InputField, inferFields, type JsonValue, pythonIdentifier } from './wrap-input.js';
import type { FileInput, GeneratedFile, MediaSpec, WrapSpec } from './wrap-spec.js';
import { renderTemplate, staticTemplate } from './wrap-templates.js';

const MEDIA_TYPE_OF: Record<FileInput['kind'], string> = {
  image: 'image/*',
  audio: 'audio/*',
  file: 'application/octet-stream',
};

/** The OpenAPI keywords of a file field (the contract the front end and the Node service share). */
export function fileFieldSchema(input: FileInput): Record<string, JsonValue> {
  const described: Record<string, JsonValue> = {
    kind: input.kind,
    max_bytes: input.maxBytes,
    accept: input.accept,
    ...(input.image ? { width: input.image.width, height: input.image.height } : {}),
    ...(input.audio ? { sample_rate: input.audio.sampleRate } : {}),
  };
  return {
    contentEncoding: 'base64',
    contentMediaType: MEDIA_TYPE_OF[input.kind],
    'x-mlship-file': described,
  };
}

/** The request fields of a service with files: the example's other fields, then the files. */
export function mediaFields(
  spec: WrapSpec,
  media: MediaSpec,
): { fields: InputField[]; inputMode: 'tensor' | 'dict' } {
  const names = new Set(media.inputs.map((f) => f.name));
  const example = (spec.example ?? {}) as Record<string, JsonValue>;
  const rest = Object.fromEntries(Object.entries(example).filter(([k]) => !names.has(k)));
  const taken = new Set<string>();
  const others = Object.keys(rest).length ? inferFields(rest) : [];
  for (const f of others) taken.add(f.py);
  const files: InputField[] = media.inputs.map((f) => ({
    name: f.name,
    py: pythonIdentifier(f.name, taken),
    shape: { kind: 'string' },
    file: fileFieldSchema(f),
  }));
  return { fields: [...others, ...files], inputMode: spec.kind === 'entry' ? 'dict' : 'tensor' };
}

/** app/media.py (declared preprocessing, editable), app/files.py, app/media_api.py, the pins. */
export function mediaFiles(spec: WrapSpec, media: MediaSpec, fields: InputField[]): GeneratedFile[] {
  const py = new Map(fields.map((f) => [f.name, f.py]));
  const content = renderTemplate('python/app/media.py', {
    fields: media.inputs.map((f) => ({ ...f, py: py.get(f.name) ?? f.name })),
    output: {
      kind: media.output.kind,
      layout: media.output.layout ?? 'NCHW',
      scale: media.output.scale ?? 1,
    },
    labels: media.labels,
    // Scores per input answered as probabilities: labels were given, or a model file classifies images.
    classifier: media.labels !== undefined || (spec.kind !== 'entry' && media.output.kind === 'json'),
  });
  return [
    { path: 'app/media.py', content },
    ...['app/files.py', 'app/media_api.py', 'requirements-media.txt', 'tests/test_media.py'].map((p) => ({
      path: p,
      content: staticTemplate(`python/${p}`),
    })),
  ];
}
