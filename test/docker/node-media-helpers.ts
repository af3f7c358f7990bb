// Shared by the tests of image models on the Node runtime and of the front end: the local
// node:22-slim stand-in, ONNX image models built at test time with the `onnx` helper API (no torch),
// and a wrapped Node image service written from a spec (the Node runtime's file settings).

import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DockerEngine } from '../../src/adapters/docker/engine.js';
import { generateService, renderInto } from '../../src/core/wrap/wrap.js';
import type { MediaSpec, WrapSpec } from '../../src/generators/wrap-spec.js';
import { LOCAL_DEBIAN_IMAGE } from '../helpers/docker.js';
import { encodePng } from '../helpers/png.js';
import { python } from './wrap-helpers.js';

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

/**
 * ONNX image models, float input [N, 3, H, W] in 0..1:
 * - classifier: the mean of each channel ×10, softmax → probabilities of red, green, blue [N, 3];
 * - invert: 1 - x, an image of the input's size (a red picture comes back cyan).
 */
export function makeImageOnnx(file: string, kind: 'classifier' | 'invert'): void {
  python(
    `
import sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save
kind = sys.argv[2]
x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
if kind == "classifier":
    w = numpy_helper.from_array((np.eye(3) * 10).astype(np.float32), "w")
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=-1),
    ]
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])
    inits = [w]
else:
    one = numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")
    nodes = [helper.make_node("Sub", ["one", "image"], ["inverted"])]
    out = helper.make_tensor_value_info("inverted", TensorProto.FLOAT, ["N", 3, "H", "W"])
    inits = [one]
graph = helper.make_graph(nodes, kind, [x], [out], initializer=inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
save(model, sys.argv[1])
`,
    [file, kind],
  );
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

/** Writes a wrapped Node image service (weights baked in) into `dir`, as `mlship wrap` would. */
export async function writeNodeImageService(
  dir: string,
  name: string,
  model: string,
  media: MediaSpec,
  batching?: { maxBatchSize: number; maxLatencyMs: number },
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
    example: { image: solidPngBase64([200, 30, 30]) },
    weights: { mode: 'bake', file: 'weights/model.onnx', target: '/models/model.onnx' },
    media,
    ...(batching ? { batching } : {}),
  };
  const planned = [...generateService(spec), { path: 'weights/model.onnx', copyFrom: model }];
  await renderInto(dir, spec, planned, { policy: 'force', dryRun: false, mlshipVersion: undefined });
}
