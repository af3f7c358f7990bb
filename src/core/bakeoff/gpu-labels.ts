// The GPU needs of a candidate image as labels: what the image's gpu-probe step found
// (frameworks and their CUDA builds), written on a label-only layer after the build
// (a RUN cannot set a label), read by `deploy ecs` and `doctor --image` (GPU fit).

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RUN_LABEL } from '../../adapters/docker/engine.js';
import type { ImageGpu } from '../../generators/bakeoff-report-schema.js';
import { type FrameworkProbe, gpuLabels } from '../deploy/gpu-fit.js';
import { CANDIDATE_LABEL } from './container-spec.js';
import type { BakeoffEngine } from './deps.js';

export function parseProbe(text: string | undefined): FrameworkProbe[] {
  try {
    const doc = JSON.parse(text ?? '') as { frameworks?: FrameworkProbe[] };
    return Array.isArray(doc.frameworks) ? doc.frameworks : [];
  } catch {
    return [];
  }
}

/**
 * The image's GPU needs as labels: a label-only layer on the built image (FROM it, no
 * filesystem change), tagged as the candidate's image. Labels cannot come from the build
 * itself, whose steps cannot set a label from what a RUN found.
 */
export async function labelGpu(
  job: { runId: string; name: string },
  engine: BakeoffEngine,
  built: { imageId: string; imageTag: string },
  gpu: ImageGpu,
  signal: AbortSignal,
): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mlship-bakeoff-labels-'));
  try {
    await writeFile(path.join(dir, 'Dockerfile'), `FROM ${built.imageId}\n`);
    const r = await engine.build({
      context: dir,
      tags: [built.imageTag],
      labels: { [RUN_LABEL]: job.runId, [CANDIDATE_LABEL]: job.name, ...gpuLabels(gpu) },
      signal,
    });
    return r.imageId;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
