// Shared by the tests of image models on the Node runtime and of the front end: the local
// node:22-slim stand-in, and a wrapped Node image service written from a spec (the Node runtime's
// file settings). The ONNX image models themselves are wrap-helpers.ts's.

import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DockerEngine } from '../../src/adapters/docker/engine.js';
import { generateService, renderInto } from '../../src/core/wrap/wrap.js';
import type { MediaSpec, WrapSpec } from '../../src/generators/wrap-spec.js';
import { LOCAL_DEBIAN_IMAGE } from '../helpers/docker.js';
import { encodePng } from '../helpers/png.js';

export const NODE_IMAGE = process.env.MLSHIP_TEST_NODE_IMAGE ?? 'mlship-local/node:22-slim';

/** Builds the node:22-slim stand-in once (kept between runs, like the other local base images). */
export async function ensureNodeImage(e: DockerEngine): Promise<void> {
  if (await e.imageExists(NODE_IMAGE)) return;
  const ctx = path.join(mkdtempSync(path.join(os.tmpdir(), 'mlship-node-base-')), 'node-base');
  const npmCli = realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  cpSync(path.dirname(path.dirname(npmCli)), path.join(ctx, 'npm'), { recursive: true });
  copyFileSync(process.execPath, path.join(ctx, 'node'));
  writeFileSync(
    path.join(ctx, 'Dockerfile'),
    [
      `FROM ${LOCAL_DEBIAN_IMAGE}`,
      'COPY node /usr/local/bin/node',
      'COPY npm /usr/local/lib/node_modules/npm',
      'RUN chmod 755 /usr/local/bin/node \\',
      ' && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\',
      ' && useradd --create-home --uid 1000 node',
      'CMD ["node"]',
      '',
    ].join('\n'),
  );
  await e.build({ context: ctx, tags: [NODE_IMAGE] });
}

/** A small PNG of one colour, as base64 (the example input of an image service). */
export function solidPngBase64(rgb: number[], size = 8): string {
  return encodePng(size, size, () => rgb).toString('base64');
}

/** The media settings of an image model taking a size×size RGB picture scaled to 0..1. */
export function imageMedia(output: 'json' | 'image', size: number, labels?: string[]): MediaSpec {
  return {
    inputs: [
      {
        name: 'image',
        kind: 'image',
        maxBytes: 256 * 1024,
        accept: ['image/png', 'image/jpeg', 'image/webp'],
        image: {
          resize: 'stretch',
          width: size,
          height: size,
          channels: 'RGB',
          layout: 'NCHW',
          scale: 1 / 255,
          mean: [],
          std: [],
          dtype: 'float32',
        },
      },
    ],
    output: output === 'image' ? { kind: 'image', layout: 'NCHW', scale: 255 } : { kind: 'json' },
    ...(labels ? { labels } : {}),
    fetchAllow: [],
    maxPixels: 4_000_000,
  };
}

/** Writes a wrapped Node service (weights baked in; file inputs when `media` is given) into `dir`, as `mlship wrap` would. */
export async function writeNodeImageService(
  dir: string,
  name: string,
  model: string,
  media: MediaSpec | undefined,
  batching?: { maxBatchSize: number; maxLatencyMs: number },
  example: WrapSpec['example'] = { image: solidPngBase64([200, 30, 30]) },
): Promise<void> {
  const spec: WrapSpec = {
    name,
    runtime: 'node',
    kind: 'onnx',
    port: 8080,
    workers: 0,
    maxBodyBytes: 1_048_576,
    maxQueue: 256,
    startupGraceSeconds: 60,
    baseImage: NODE_IMAGE,
    hasUserRequirements: false,
    extraRequirements: [],
    example,
    weights: { mode: 'bake', file: 'weights/model.onnx', target: '/models/model.onnx' },
    ...(media ? { media } : {}),
    ...(batching ? { batching } : {}),
  };
  const planned = [...generateService(spec), { path: 'weights/model.onnx', copyFrom: model }];
  await renderInto(dir, spec, planned, { policy: 'force', dryRun: false, mlshipVersion: undefined });
}
