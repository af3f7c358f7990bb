// The Node (onnxruntime-node) service for a wrapped ONNX model. The server is a
// static file; what varies is service.json (limits, batching, the input fields
// inferred from the example, the file inputs of an image model), rendered as a typed object.

import { ExampleError, inferFields, inputModeFor } from './wrap-input.js';
import {
  type GeneratedFile,
  type MediaSpec,
  maxBatchInputs,
  mediaBodyBytes,
  type WrapSpec,
} from './wrap-spec.js';
import { renderTemplate, staticTemplate } from './wrap-templates.js';

export interface NodeServiceConfig {
  name: string;
  port: number;
  maxBodyBytes: number;
  maxQueue: number;
  batchMaxSize: number;
  batchMaxLatencyMs: number;
  maxBatchInputs: number;
  modelPath: string;
  /** s3:// or https:// weights downloaded at start-up (MODEL_URL overrides it), and their checksum. */
  modelUrl?: string;
  modelSha256?: string;
  /** Infinity (from 1e999) accepted instead of a 422; JSON has no NaN for Node to parse. */
  allowNonFinite: boolean;
  fields: ReturnType<typeof inferFields>;
  /** A model's file inputs and answer (media.js); absent for a tabular model. */
  media?: MediaSpec;
}

/** What media.js decodes: images by sharp, sounds by wav.js (WAV only); a generic file is its bytes. */
const NODE_DECODES: Record<'image' | 'audio', string[]> = {
  image: ['image/png', 'image/jpeg', 'image/webp'],
  audio: ['audio/wav', 'audio/x-wav', 'audio/wave', 'audio/vnd.wave'],
};

/** The file settings the Node runtime serves (accepted types cut to what it decodes), or an error. */
function nodeMedia(media: MediaSpec): MediaSpec {
  const inputs = media.inputs.map((f) => {
    if (f.kind === 'file') return f;
    if (f.kind === 'image' && !f.image) {
      throw new ExampleError(
        `file field "${f.name}": the node runtime needs the image's preprocessing (size, channels, dtype); declare preprocess.${f.name}`,
      );
    }
    const decodes = NODE_DECODES[f.kind];
    const accept = f.accept.filter((t) => decodes.includes(t));
    if (!accept.length) {
      throw new ExampleError(
        `file field "${f.name}": the node runtime decodes ${decodes.join(', ')}, not ${f.accept.join(', ')}`,
      );
    }
    return { ...f, accept };
  });
  return { ...media, inputs };
}

export function generateNodeService(spec: WrapSpec): GeneratedFile[] {
  const media = spec.media?.inputs.length ? nodeMedia(spec.media) : undefined;
  const fields = media ? [] : inferFields(spec.example);
  if (!media && inputModeFor(fields, true) !== 'tabular') {
    throw new ExampleError(
      'the node runtime takes tabular inputs (numbers and flat lists of numbers) or file fields (images, WAV sounds, files)',
    );
  }
  const modelPath = spec.weights.mode === 'none' ? '' : spec.weights.target;
  const config: NodeServiceConfig = {
    name: spec.name,
    port: spec.port,
    maxBodyBytes: media ? mediaBodyBytes(media, spec.maxBodyBytes) : spec.maxBodyBytes,
    maxQueue: spec.maxQueue,
    batchMaxSize: spec.batching?.maxBatchSize ?? 0,
    batchMaxLatencyMs: spec.batching?.maxLatencyMs ?? 0,
    maxBatchInputs: maxBatchInputs(spec),
    modelPath,
    ...(spec.weights.mode === 'url' ? { modelUrl: spec.weights.url, modelSha256: spec.weights.sha256 } : {}),
    allowNonFinite: spec.allowNonFinite ?? false,
    fields,
    ...(media ? { media } : {}),
  };
  const bakeWeights = spec.weights.mode === 'bake';
  const files: GeneratedFile[] = [
    {
      path: 'Dockerfile',
      content: renderTemplate('node/Dockerfile', {
        baseImage: spec.baseImage,
        port: spec.port,
        modelPath,
        bakeWeights,
        startupGraceSeconds: spec.startupGraceSeconds,
        media: Boolean(media),
      }),
    },
    { path: '.dockerignore', content: renderTemplate('node/dockerignore', { bakeWeights }) },
    // Only a service with files gets the decoders (sharp adds ~20 MB to the image).
    {
      path: 'package.json',
      content: renderTemplate('node/package.json', { name: spec.name, media: Boolean(media) }),
    },
    { path: 'package-lock.json', content: lockfile(spec.name, Boolean(media)) },
    { path: 'server.js', content: staticTemplate('node/server.js') },
    ...(media
      ? ['media.js', 'media-error.js', 'pixels.js', 'wav.js'].map((p) => ({
          path: p,
          content: staticTemplate(`node/${p}`),
        }))
      : []),
    { path: 'tensors.js', content: staticTemplate('node/tensors.js') },
    { path: 'weights.js', content: staticTemplate('node/weights.js') },
    { path: 'threads.js', content: staticTemplate('node/threads.js') },
    { path: 'service.json', content: `${JSON.stringify(config, null, 2)}\n` },
    { path: 'example.json', content: `${JSON.stringify(spec.example, null, 2)}\n` },
  ];
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * The service's npm lockfile: the template's dependency tree, locked when the template changes
 * (`npm install --package-lock-only` on package.json.eta rendered without and with `media`: two
 * lockfiles), under the service's name, so that `npm ci` installs the same packages on every build.
 */
function lockfile(name: string, media: boolean): string {
  const lock = JSON.parse(
    staticTemplate(media ? 'node/package-lock-media.json' : 'node/package-lock.json'),
  ) as {
    name: string;
    packages: Record<string, { name?: string }>;
  };
  lock.name = name;
  lock.packages['']!.name = name;
  return `${JSON.stringify(lock, null, 2)}\n`;
}
