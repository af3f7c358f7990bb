// Files in and out of a wrapped Python service (issue 18): the request fields a file becomes
// (with the OpenAPI keywords the front end reads), and the modules that decode, preprocess and
// encode them, rendered from the declaration in the spec.

import { type InputField, inferFields, type JsonValue, pythonIdentifier } from './wrap-input.js';
import type { FileInput, GeneratedFile, ImagePreprocess, MediaSpec, WrapSpec } from './wrap-spec.js';
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
    fields: media.inputs.map((f) => ({
      ...f,
      py: py.get(f.name) ?? f.name,
      affine: f.image ? imageAffine(f.image) : undefined,
    })),
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

/** Python text of one float32 factor per channel: a scalar when all channels share it. */
function perChannel(values: number[], layout: ImagePreprocess['layout']): string {
  // float32 keeps about 7 digits: 9 print any of them exactly.
  const text = values.map((v) => String(Number(v.toPrecision(9))));
  if (text.every((v) => v === text[0])) return `np.float32(${text[0]})`;
  const list = `np.float32([${text.join(', ')}])`;
  return layout === 'NCHW' ? `${list}.reshape(${values.length}, 1, 1)` : list;
}

/**
 * The declared scale, mean and std of an image folded into x * gain - offset (app/media.py), so
 * that preprocessing is one multiply from 8-bit pixels and one subtract, not four float passes.
 */
export function imageAffine(image: ImagePreprocess): {
  gain: string;
  offset: string;
  hasOffset: boolean;
  identity: boolean;
  declared: string;
} {
  const channels = image.channels === 'L' ? 1 : 3;
  const std = image.std.length ? image.std : Array(channels).fill(1);
  const mean = image.mean.length ? image.mean : Array(channels).fill(0);
  const gain = std.map((s) => image.scale / s);
  const offset = mean.map((m, i) => m / std[i]);
  const hasOffset = offset.some((o) => o !== 0);
  return {
    gain: perChannel(gain, image.layout),
    offset: perChannel(offset, image.layout),
    hasOffset,
    identity: !hasOffset && gain.every((g) => g === 1),
    declared: image.mean.length
      ? `scale ${image.scale}, mean [${image.mean.join(', ')}], std [${image.std.join(', ')}],`
      : `scale ${image.scale}, no mean/std,`,
  };
}
