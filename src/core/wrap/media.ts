// Which request fields of a wrapped model are files, and how they are decoded, preprocessed and
// answered (issue 18): from mlship.yaml (`inputs:`, `preprocess:`, `output:`, `labels:`,
// `fetch_allow:`), flags, "@file" values in the example, and an ONNX model's own input and output
// shapes (an NCHW float tensor with 1 or 3 channels is an image). Every problem names where it
// was declared and how to fix it, before anything is written.

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { FetchPrefix, type PreprocessSchema } from '../../config/media-schema.js';
import type { Service } from '../../config/schema.js';
import type { JsonValue } from '../../generators/wrap-input.js';
import {
  AUDIO_MEDIA_TYPES,
  DEFAULT_MAX_FILE_BYTES,
  DEFAULT_MAX_PIXELS,
  type FileInput,
  type FileKind,
  IMAGE_MEDIA_TYPES,
  type ImagePreprocess,
  type MediaOutput,
  type MediaSpec,
  type ModelKind,
} from '../../generators/wrap-spec.js';
import { UsageError } from '../../io/errors.js';
import { sampleFile } from './media-samples.js';
import { checkModelFormat, type OnnxInput } from './model-format.js';

type Preprocess = z.infer<typeof PreprocessSchema>;

export interface MediaFlags {
  /** --fetch-allow: prefixes references may be fetched from. */
  fetchAllow?: string[];
  /** --output image|json. */
  output?: 'json' | 'image';
  /** --labels: a text file, one class name per line. */
  labels?: string;
}

export interface MediaInput {
  cwd: string;
  kind: ModelKind;
  /** The Node runtime feeds one file field per ONNX input (Python: the model file's one input). */
  runtime?: 'python' | 'node';
  model?: string;
  example?: JsonValue;
  exampleFile?: string;
  /** The service's settings in mlship.yaml, and its name there (for error messages). */
  service?: { name: string; config: Service };
  flags: MediaFlags;
}

export interface MediaResolved {
  media?: MediaSpec;
  /** The example with "@file" references made base64 (small files) or left out (large ones). */
  example?: JsonValue;
  /** What was inferred, said to the user. */
  notes: string[];
}

/** Files up to this size are kept in app/example.json (base64): the warm-up call and /docs example. */
const EXAMPLE_FILE_BYTES = 256 * 1024;

const EXTENSION_KIND: [RegExp, FileKind, string][] = [
  [/\.png$/i, 'image', 'image/png'],
  [/\.jpe?g$/i, 'image', 'image/jpeg'],
  [/\.webp$/i, 'image', 'image/webp'],
  [/\.wav$/i, 'audio', 'audio/wav'],
];

function where(input: MediaInput, key: string): string {
  return input.service ? `mlship.yaml services.${input.service.name}.${key}` : `--${key}`;
}

/** The MediaSpec of a service, or none when it has no file inputs and answers JSON. */
export async function resolveMedia(input: MediaInput): Promise<MediaResolved> {
  const svc = input.service?.config;
  const notes: string[] = [];
  const onnx = input.kind === 'onnx' && input.model ? await onnxShapes(input.model) : undefined;
  const { example, references } = await exampleFiles(input);
  const declared = declaredFields(input, references);
  const inferred = declared.length === 0 && onnx ? inferImageInput(onnx.inputs) : undefined;
  if (inferred)
    notes.push(`file input "${inferred.name}": an image, from the ONNX input shape [${inferred.dims}]`);
  const names = inferred ? [{ name: inferred.name, kind: 'image' as const }] : declared;
  const output = resolveOutput(input, onnx?.outputs, notes);
  checkPreprocessFields(input, names);
  if (names.length === 0 && output.kind === 'json') return { notes };
  const inputs = names.map((f) => fileInput(input, f.name, f.kind, onnx?.inputs));
  checkModelFileFields(input, inputs, example, onnx?.inputs);
  const labels = await resolveLabels(input);
  const media: MediaSpec = {
    inputs,
    output,
    ...(labels ? { labels } : {}),
    fetchAllow: fetchAllow(input.flags.fetchAllow) ?? svc?.fetch_allow ?? [],
    maxPixels: svc?.max_pixels ?? DEFAULT_MAX_PIXELS,
  };
  // A file the example does not give is a stand-in (a grey image, silence): a complete request.
  const complete: Record<string, JsonValue> = { ...((example ?? {}) as Record<string, JsonValue>) };
  for (const f of inputs) if (complete[f.name] === undefined) complete[f.name] = sampleFile(f);
  return { media, example: complete, notes };
}

async function onnxShapes(model: string): Promise<{ inputs: OnnxInput[]; outputs: OnnxInput[] } | undefined> {
  const format = await checkModelFormat(model, 'onnx');
  if (!format.ok) return undefined; // reported by the model check, with its reason
  return { inputs: format.onnxInputs ?? [], outputs: format.onnxOutputs ?? [] };
}

/** "@cat.jpg" values of the example: read, kept as base64 when small, the field's kind noted. */
async function exampleFiles(
  input: MediaInput,
): Promise<{ example?: JsonValue; references: Map<string, FileKind> }> {
  const references = new Map<string, FileKind>();
  const given = input.example;
  if (given === undefined || given === null || typeof given !== 'object' || Array.isArray(given)) {
    return { ...(given !== undefined ? { example: given } : {}), references };
  }
  const out: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(given)) {
    if (typeof value !== 'string' || !value.startsWith('@')) {
      out[key] = value;
      continue;
    }
    const file = path.resolve(path.dirname(input.exampleFile ?? path.join(input.cwd, 'x')), value.slice(1));
    const known = EXTENSION_KIND.find(([re]) => re.test(file));
    references.set(key, input.service?.config.inputs?.[key]?.kind ?? known?.[1] ?? 'file');
    const size = await stat(file).then(
      (s) => s.size,
      () => {
        throw new UsageError(
          `example ${input.exampleFile ?? ''}: field "${key}" refers to ${file}, which is not there`,
          {
            hint: `put the file there, or change "${key}": "@<file>" to a file next to the example`,
          },
        );
      },
    );
    if (size <= EXAMPLE_FILE_BYTES) {
      const data = (await readFile(file)).toString('base64');
      out[key] = `data:${known?.[2] ?? 'application/octet-stream'};base64,${data}`;
    }
  }
  return { example: out, references };
}

function declaredFields(input: MediaInput, references: Map<string, FileKind>) {
  const fields = new Map<string, FileKind>(references);
  for (const [name, declared] of Object.entries(input.service?.config.inputs ?? {}))
    fields.set(name, declared.kind);
  return [...fields].map(([name, kind]) => ({ name, kind }));
}

/** A 4-d tensor of 1 or 3 channels (NCHW, or NHWC) whose height and width are at least 8. */
function imageLayout(
  dims: OnnxInput['dims'],
): { layout: 'NCHW' | 'NHWC'; c: number; h: number | string; w: number | string } | undefined {
  if (dims?.length !== 4) return undefined;
  const big = (d: number | string | null) => (typeof d === 'number' && d >= 8) || typeof d === 'string';
  const [, a, b, c] = dims;
  if ((a === 1 || a === 3) && big(b!) && big(c!)) return { layout: 'NCHW', c: a, h: b!, w: c! };
  if ((c === 1 || c === 3) && big(a!) && big(b!) && a !== 1 && a !== 3)
    return { layout: 'NHWC', c, h: a!, w: b! };
  return undefined;
}

/** onnx.TensorProto.DataType: 1 float, 2 uint8, 10 float16. */
const IMAGE_DTYPES: Record<number, ImagePreprocess['dtype']> = { 1: 'float32', 2: 'uint8', 10: 'float16' };

function inferImageInput(inputs: OnnxInput[]): { name: string; dims: string } | undefined {
  if (inputs.length !== 1) return undefined;
  const only = inputs[0]!;
  const layout = imageLayout(only.dims);
  if (layout?.layout !== 'NCHW' || IMAGE_DTYPES[only.elemType] !== 'float32') return undefined;
  if (typeof layout.h !== 'number' || typeof layout.w !== 'number') return undefined;
  return { name: only.name || 'image', dims: only.dims!.map((d) => d ?? '?').join(', ') };
}

function resolveOutput(input: MediaInput, outputs: OnnxInput[] | undefined, notes: string[]): MediaOutput {
  const declared = input.flags.output ?? input.service?.config.output;
  if (declared !== undefined) {
    const o = typeof declared === 'string' ? { kind: declared } : declared;
    const guess = outputs?.[0] ? imageLayout(outputs[0].dims) : undefined;
    if (o.kind === 'json') return { kind: 'json' };
    return {
      kind: 'image',
      layout: ('layout' in o && o.layout) || guess?.layout || 'NCHW',
      scale: 'scale' in o && o.scale !== undefined ? ratio(o.scale) : outputScale(outputs?.[0]),
    };
  }
  const first = outputs?.[0];
  const guess = first ? imageLayout(first.dims) : undefined;
  if (!first || !guess) return { kind: 'json' };
  notes.push(
    `output "${first.name}": an image, from the ONNX output shape [${first.dims!.map((d) => d ?? '?').join(', ')}]`,
  );
  return { kind: 'image', layout: guess.layout, scale: outputScale(first) };
}

/** A float image is taken as 0..1 (times 255); 8-bit pixels as they are. */
function outputScale(output: OnnxInput | undefined): number {
  return output?.elemType === 2 ? 1 : 255;
}

export function ratio(value: number | string): number {
  if (typeof value === 'number') return value;
  const [a, b] = value.split('/').map(Number);
  return a! / b!;
}

function fileInput(
  input: MediaInput,
  name: string,
  kind: FileKind,
  onnx: OnnxInput[] | undefined,
): FileInput {
  const declared = input.service?.config.inputs?.[name];
  const pre = input.service?.config.preprocess?.[name];
  const base = {
    name,
    kind,
    maxBytes: declared?.max_bytes ?? DEFAULT_MAX_FILE_BYTES,
    accept:
      declared?.accept ??
      (kind === 'image'
        ? IMAGE_MEDIA_TYPES
        : kind === 'audio'
          ? AUDIO_MEDIA_TYPES
          : ['application/octet-stream']),
  };
  if (kind === 'audio') {
    if (pre && (pre.resize || pre.size !== undefined || pre.mean))
      throw kindMismatch(input, name, 'an audio field', 'sample_rate and max_seconds');
    return { ...base, audio: { sampleRate: pre?.sample_rate ?? 16_000, maxSeconds: pre?.max_seconds ?? 30 } };
  }
  if (kind === 'file') {
    if (pre) throw kindMismatch(input, name, 'a generic file field', 'nothing: your function gets the bytes');
    return base;
  }
  if (pre?.sample_rate !== undefined || pre?.max_seconds !== undefined)
    throw kindMismatch(
      input,
      name,
      'an image field',
      'resize, size, channels, layout, scale, mean/std, dtype',
    );
  // A model file needs the tensor; your function gets the decoded image unless you declare one.
  // Several inputs (the Node runtime): the field's tensor is the input of its name.
  const tensor = onnx?.length === 1 ? onnx[0] : onnx?.find((t) => t.name === name);
  if (!pre && input.kind === 'entry') return base;
  return { ...base, image: imagePreprocess(input, name, pre, tensor) };
}

function kindMismatch(input: MediaInput, field: string, what: string, takes: string): UsageError {
  return new UsageError(
    `${where(input, `preprocess.${field}`)}: "${field}" is ${what}; its preprocess takes ${takes}`,
    {
      hint: `remove the settings of another kind from preprocess.${field}, or declare inputs.${field}.kind`,
    },
  );
}

function imagePreprocess(
  input: MediaInput,
  name: string,
  pre: Preprocess | undefined,
  tensor: OnnxInput | undefined,
): ImagePreprocess {
  const shape = tensor ? imageLayout(tensor.dims) : undefined;
  const size =
    sizeOf(pre?.size) ??
    (shape && typeof shape.w === 'number' && typeof shape.h === 'number'
      ? { width: shape.w, height: shape.h }
      : undefined);
  if (!size) {
    throw new UsageError(
      `${where(input, `preprocess.${name}.size`)}: the size the model takes for "${name}" is not known`,
      {
        hint: `declare it in mlship.yaml, e.g. preprocess: { ${name}: { size: "224x224" } } (the ONNX input does not fix it)`,
      },
    );
  }
  const dtype = pre?.dtype ?? (tensor ? IMAGE_DTYPES[tensor.elemType] : undefined) ?? 'float32';
  const channels = pre?.channels ?? (shape?.c === 1 ? 'L' : 'RGB');
  const count = channels === 'L' ? 1 : 3;
  const spread = (v: number[] | undefined) =>
    v && v.length === 1 && count > 1 ? Array(count).fill(v[0]) : (v ?? []);
  if (shape && (shape.c === 1) !== (channels === 'L')) {
    throw new UsageError(
      `${where(input, `preprocess.${name}.channels`)}: ${channels} gives ${count} channel(s), but the model's input ${tensor!.name} has ${shape.c}`,
      {
        hint: `set channels to ${shape.c === 1 ? 'L' : 'RGB or BGR'}`,
      },
    );
  }
  return {
    resize: pre?.resize ?? 'letterbox',
    ...size,
    channels,
    layout: pre?.layout ?? shape?.layout ?? 'NCHW',
    scale: pre?.scale !== undefined ? ratio(pre.scale) : dtype === 'uint8' ? 1 : 1 / 255,
    mean: spread(pre?.mean),
    std: spread(pre?.std),
    dtype,
  };
}

function sizeOf(size: number | string | undefined): { width: number; height: number } | undefined {
  if (size === undefined) return undefined;
  if (typeof size === 'number') return { width: size, height: size };
  const [w, h] = size.split('x').map(Number);
  return { width: w!, height: h! };
}

/**
 * A model file takes one tensor: its one file field, and no other field. The Node runtime feeds
 * several: one file field (image, audio or bytes) per ONNX input, by name or in order.
 */
function checkModelFileFields(
  input: MediaInput,
  inputs: FileInput[],
  example: JsonValue | undefined,
  onnx: OnnxInput[] | undefined,
): void {
  if (input.kind === 'entry' || inputs.length === 0) return;
  const others =
    example && typeof example === 'object' && !Array.isArray(example)
      ? Object.keys(example).filter((k) => !inputs.some((f) => f.name === k))
      : [];
  const fields = [...inputs.map((f) => f.name), ...others].map((n) => `"${n}"`).join(', ');
  if (input.runtime === 'node') {
    if (others.length > 0 || (onnx && onnx.length !== inputs.length)) {
      throw new UsageError(
        `the model takes ${onnx?.length ?? '?'} input(s) (${(onnx ?? []).map((t) => t.name).join(', ')}); the request has ${fields}`,
        {
          hint: 'declare one file field per model input (named as the input, or in its order) and no other field',
        },
      );
    }
    return;
  }
  if (inputs.length > 1 || others.length > 0 || inputs[0]!.kind === 'file') {
    throw new UsageError(
      `a model file takes one tensor: one image or audio field, but the request has ${fields}`,
      {
        hint: 'keep one file field, wrap your own function with --entry to combine several inputs, or use --runtime node (one file field per ONNX input)',
      },
    );
  }
}

/** preprocess: for a field that is no file of the request is a mistake worth saying. */
function checkPreprocessFields(input: MediaInput, files: { name: string }[]): void {
  for (const key of Object.keys(input.service?.config.preprocess ?? {})) {
    if (files.some((f) => f.name === key)) continue;
    const known = files.length ? ` (the file fields are ${files.map((f) => `"${f.name}"`).join(', ')})` : '';
    throw new UsageError(
      `${where(input, `preprocess.${key}`)}: "${key}" is not a file field of the request${known}`,
      {
        hint: `declare it under inputs: (e.g. inputs: { ${key}: { kind: image } }), or write "${key}": "@file.jpg" in the example`,
      },
    );
  }
}

async function resolveLabels(input: MediaInput): Promise<string[] | undefined> {
  const declared = input.flags.labels ?? input.service?.config.labels;
  if (declared === undefined || Array.isArray(declared)) return declared;
  const file = path.resolve(input.cwd, declared);
  const text = await readFile(file, 'utf8').catch(() => {
    throw new UsageError(`labels file ${declared} not found`, {
      hint: 'a text file with one class name per line, in the order of the model outputs',
    });
  });
  const labels = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (labels.length < 2)
    throw new UsageError(`labels file ${declared} has ${labels.length} class name(s)`, {
      hint: 'one class name per line, at least two',
    });
  return labels;
}

function fetchAllow(prefixes: string[] | undefined): string[] | undefined {
  for (const p of prefixes ?? []) {
    const checked = FetchPrefix.safeParse(p);
    if (!checked.success) {
      throw new UsageError(`--fetch-allow ${p}: ${checked.error.issues[0]?.message}`, {
        hint: 'e.g. --fetch-allow s3://uploads/ --fetch-allow https://images.example.com/public/',
      });
    }
  }
  return prefixes;
}
