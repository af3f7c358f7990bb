// `mlship doctor --image IMAGE [--gpu-instance TYPE]`: what an image needs of a GPU, and
// whether it runs on an instance type, answered offline before anything is pushed. The
// image's dev.mlship.cuda.* labels are read from the local engine, else from the
// registry's image config (no pull); an image without them (built outside mlship) is
// probed the way mlship builds probe theirs: its frameworks asked in a container.

import type { ContainerClient } from '../../adapters/docker/engine.js';
import type { Matrix } from '../bakeoff/matrix.js';
import {
  checkGpuFit,
  defaultAmiDriver,
  GPU_FIT_DATE,
  GPU_LABELS,
  type ImageGpu,
  type ImageLabels,
  INSTANCE_GPUS,
  imageGpuFromLabels,
  imageGpuFromProbe,
  instanceGpu,
} from '../deploy/gpu-fit.js';
import { probeImage } from '../deploy/gpu-probe-image.js';
import type { Check, DoctorReport } from './doctor.js';

export interface ImageFitDeps {
  images: ImageLabels;
  /** To probe a local image without labels; absent: no engine (labels only). */
  engine?: Pick<ContainerClient, 'start'>;
  matrix: Matrix;
  runId: string;
}

function describe(g: ImageGpu): string {
  if (!g.cuda) return `${g.framework ?? 'no framework'}: a CPU build`;
  return `${g.framework ?? 'framework unknown'}: CUDA ${g.cuda}, built for ${g.archs.join(', ') || 'architectures not recorded'}; needs driver >= ${g.minDriverCompat ?? '?'} (>= ${g.minDriver ?? '?'} for full support)`;
}

/** The image's GPU needs (labels, else a probe) and, with an instance type, its fit there. */
export async function imageFit(
  o: { image: string; instanceType?: string },
  deps: ImageFitDeps,
): Promise<DoctorReport & { imageGpu?: ImageGpu }> {
  const checks: Check[] = [];
  const found = await deps.images.labels(o.image);
  let gpu = imageGpuFromLabels(found?.labels);
  let how = found
    ? `${GPU_LABELS.cuda} labels (${found.source === 'local' ? 'local image' : "registry's image config, no pull"})`
    : '';
  if (!found) {
    checks.push({
      id: 'image',
      title: 'Image',
      required: true,
      status: 'fail',
      detail: `${o.image}: not on this engine, and the registry does not have it (or needs credentials)`,
      fix: 'check the reference; for a private registry, `docker login` first (doctor reads ~/.docker/config.json)',
    });
    return { ok: false, checks };
  }
  if (!gpu && found.source === 'local' && deps.engine) {
    const probed = await probeImage(o.image, deps.engine, deps.runId);
    if ('frameworks' in probed) {
      gpu = imageGpuFromProbe(probed.frameworks, deps.matrix) ?? {
        framework: null,
        cuda: null,
        archs: [],
        minDriver: null,
        minDriverCompat: null,
      };
      how = 'probed: its frameworks asked in a container (no labels)';
    } else how = `no labels, and the probe failed: ${probed.error}`;
  }
  checks.push({
    id: 'image',
    title: 'Image GPU build',
    required: false,
    status: gpu ? 'ok' : 'warn',
    detail: gpu
      ? `${describe(gpu)} (from ${how})`
      : `${o.image}: no ${GPU_LABELS.cuda} labels${how ? `; ${how}` : ''}`,
    ...(gpu
      ? {}
      : {
          fix:
            found.source === 'registry'
              ? 'pull it and run doctor --image again: a local image without labels is probed'
              : 'the image needs python to be probed; images mlship builds carry the labels',
        }),
  });
  if (o.instanceType) {
    const fit = checkGpuFit({
      image: o.image,
      imageGpu: gpu,
      instanceType: o.instanceType,
      driver: defaultAmiDriver(),
      matrix: deps.matrix,
    });
    const known = instanceGpu(o.instanceType);
    checks.push({
      id: 'gpu-fit',
      title: 'GPU fit',
      required: true,
      status: fit.problems.length ? 'fail' : known && gpu ? 'ok' : 'warn',
      detail: fit.lines.join('; '),
      ...(fit.problems.length
        ? { fix: fit.problems.join(' | ') }
        : known
          ? {}
          : {
              fix: `instance families in the table dated ${GPU_FIT_DATE}: ${INSTANCE_GPUS.map((g) => g.family).join(', ')}`,
            }),
    });
  }
  return {
    ok: checks.every((c) => !(c.required && c.status === 'fail')),
    checks,
    ...(gpu ? { imageGpu: gpu } : {}),
  };
}
