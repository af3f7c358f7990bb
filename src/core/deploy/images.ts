// The images `deploy ecs --apply` pushes: built from each service's own source first
// (cached layers make an unchanged service a no-op, so the pushed image is the source
// at this commit), then found under the names mlship and compose give them locally.

import type { BuildOptions, BuildResult, ContainerClient, Engine } from '../../adapters/docker/engine.js';
import type { TaskRunner } from '../../io/progress.js';
import { GPU_LABELS, gpuContainers } from './gpu-fit.js';
import { labelImageGpu } from './gpu-probe-image.js';
import type { EcsPlanResult } from './plan.js';

export interface ImageDeps {
  engine: {
    build(options: BuildOptions): Promise<BuildResult>;
    imageExists(ref: string): Promise<boolean>;
    /** To probe the GPU images built (their CUDA build as labels); absent: not labelled. */
    start?: ContainerClient['start'];
  };
  tasks: TaskRunner;
}

/**
 * Builds the images the plan pushes, in order (a baked image builds on its service's own);
 * with `sourceBuilds: false` (--no-build) only the baked ones, from the images on this
 * machine. The first failure is thrown.
 */
export async function buildStackImages(
  plan: EcsPlanResult,
  deps: ImageDeps,
  options: { sourceBuilds: boolean } = { sourceBuilds: true },
): Promise<void> {
  const baked = new Set(plan.bakes.map((b) => b.tag));
  const builds = plan.builds.filter((b) => options.sourceBuilds || baked.has(b.tag));
  const gpus = new Set(gpuContainers(plan.translation.taskDefinitions).map((c) => c.name!));
  const stackLabel = { 'dev.mlship.stack': plan.stack };
  const outcomes = await deps.tasks.run(
    builds.map((b) => ({
      title: `build ${b.tag}`,
      run: async (control) => {
        const built = await deps.engine.build({
          context: b.context,
          tags: [b.tag],
          ...(b.dockerfile ? { dockerfile: b.dockerfile } : {}),
          ...(b.target ? { target: b.target } : {}),
          ...(b.args ? { buildArgs: b.args } : {}),
          labels: stackLabel,
          onProgress: (e) => {
            if (e.step && !e.line) control.title(`build ${b.tag}: ${e.step}`);
          },
        });
        control.title(`build ${b.tag}: ${built.steps.length} steps, ${built.cachedSteps} cached`);
        if (gpus.has(b.service) && !baked.has(b.tag) && deps.engine.start) {
          const labelled = await labelImageGpu(
            { imageId: built.imageId, tag: b.tag, labels: stackLabel },
            { build: (o) => deps.engine.build(o), start: (o) => deps.engine.start!(o) },
            `mlship-deploy-${plan.stack}`,
          );
          control.title(
            'labels' in labelled
              ? `build ${b.tag}: CUDA ${labelled.labels[GPU_LABELS.cuda]} recorded for the GPU fit`
              : `build ${b.tag}: GPU needs not recorded (${labelled.error})`,
          );
        }
      },
    })),
    { concurrent: 1 },
  );
  const failed = outcomes.find((o) => !o.ok);
  if (failed) throw failed.error;
}

/**
 * The local image of each container of the stack: what the plan builds (the baked image where
 * there is one), else `<stack>/<service>:dev` (what mlship builds), else the names docker
 * compose v2 and v1 give built services.
 */
export async function findLocalImages(plan: EcsPlanResult, deps: Pick<ImageDeps, 'engine'>) {
  const localImages: Record<string, string> = {};
  for (const s of plan.translation.services.flatMap((x) => x.containers.map((c) => c.name))) {
    const planned = plan.localImages[s];
    for (const candidate of [
      ...(planned ? [planned] : []),
      `${plan.stack}/${s}:dev`,
      `${plan.stack}-${s}:latest`,
      `${plan.stack}_${s}:latest`,
    ]) {
      if (await deps.engine.imageExists(candidate)) {
        localImages[s] = candidate;
        break;
      }
    }
  }
  return localImages;
}

/**
 * Which of `programs` a local image has on its PATH (`command -v` in a short-lived container of
 * it), or undefined when the image is not on this machine or has no shell to ask with.
 */
export async function imagePrograms(
  engine: Pick<Engine, 'imageExists' | 'run'>,
  image: string,
  programs: string[],
): Promise<Set<string> | undefined> {
  if (!(await engine.imageExists(image))) return undefined;
  try {
    const r = await engine.run({
      image,
      entrypoint: [
        'sh',
        '-c',
        'for p in "$@"; do command -v "$p" >/dev/null 2>&1 && echo "$p"; done; echo sh',
        'sh',
      ],
      cmd: programs,
      user: '0',
      timeoutMs: 30_000,
      labels: { 'dev.mlship.role': 'health-check-probe' },
    });
    if (r.exitCode !== 0) return undefined;
    return new Set(r.stdoutTail.map((l) => l.trim()).filter(Boolean));
  } catch {
    return undefined; // no shell in the image: not something this check can answer
  }
}
