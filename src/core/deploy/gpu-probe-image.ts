// What an image's frameworks were built for, asked in a short-lived container of it (the
// probe bake-off candidates run at build time), and the same answer written on the image as
// dev.mlship.cuda.* labels. `doctor --image` probes images built elsewhere; `deploy ecs
// --apply` labels the GPU images it builds, so the GPU fit reads them like a candidate's.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BuildOptions, BuildResult, ContainerClient } from '../../adapters/docker/engine.js';
import { gpuProbeProgram } from '../../generators/gpu-probe.js';
import { builtinMatrix, type Matrix } from '../bakeoff/matrix.js';
import { type FrameworkProbe, gpuLabels, imageGpuFromProbe } from './gpu-fit.js';

/** The frameworks of the image (torch, TensorFlow, ONNX Runtime) and their CUDA builds. */
export async function probeImage(
  image: string,
  engine: Pick<ContainerClient, 'start'>,
  runId: string,
): Promise<{ frameworks: FrameworkProbe[] } | { error: string }> {
  let handle: Awaited<ReturnType<ContainerClient['start']>>;
  try {
    handle = await engine.start({
      image,
      entrypoint: ['python', '-c'],
      cmd: [gpuProbeProgram()],
      labels: { 'dev.mlship.run': runId },
    });
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
  const timer = setTimeout(() => void handle.kill('SIGKILL').catch(() => undefined), 120_000);
  try {
    const { exitCode } = await handle.wait();
    const out = (await handle.logs(20)).trim().split('\n').pop() ?? '';
    if (exitCode !== 0) return { error: `the probe exited ${exitCode}: ${out}` };
    return { frameworks: (JSON.parse(out) as { frameworks: FrameworkProbe[] }).frameworks };
  } catch (e) {
    return { error: `the probe printed no answer: ${(e as Error).message}` };
  } finally {
    clearTimeout(timer);
    await handle.remove().catch(() => undefined);
  }
}

/**
 * Probes a built image and puts what it found on it as labels (a label-only layer FROM it,
 * tagged like it: a RUN cannot set a label). The labels found, or why there are none (the
 * image then stays as it was, and the GPU fit says "unknown").
 */
export async function labelImageGpu(
  built: { imageId: string; tag: string; labels: Record<string, string> },
  engine: Pick<ContainerClient, 'start'> & { build(options: BuildOptions): Promise<BuildResult> },
  runId: string,
  matrix: Matrix = builtinMatrix(),
): Promise<{ labels: Record<string, string> } | { error: string }> {
  const probed = await probeImage(built.imageId, engine, runId);
  if ('error' in probed) return probed;
  const gpu = imageGpuFromProbe(probed.frameworks, matrix);
  if (!gpu) return { error: 'no torch, TensorFlow or ONNX Runtime in the image' };
  const labels = gpuLabels(gpu);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mlship-gpu-labels-'));
  try {
    await writeFile(path.join(dir, 'Dockerfile'), `FROM ${built.imageId}\n`);
    await engine.build({ context: dir, tags: [built.tag], labels: { ...built.labels, ...labels } });
    return { labels };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
