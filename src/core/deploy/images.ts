// The images `deploy ecs --apply` pushes: built from each service's own source first
// (cached layers make an unchanged service a no-op, so the pushed image is the source
// at this commit), then found under the names mlship and compose give them locally.

import type { BuildOptions, BuildResult } from '../../adapters/docker/engine.js';
import type { TaskRunner } from '../../io/progress.js';
import type { EcsPlanResult } from './plan.js';

export interface ImageDeps {
  engine: {
    build(options: BuildOptions): Promise<BuildResult>;
    imageExists(ref: string): Promise<boolean>;
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
          labels: { 'dev.mlship.stack': plan.stack },
          onProgress: (e) => {
            if (e.step && !e.line) control.title(`build ${b.tag}: ${e.step}`);
          },
        });
        control.title(`build ${b.tag}: ${built.steps.length} steps, ${built.cachedSteps} cached`);
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
