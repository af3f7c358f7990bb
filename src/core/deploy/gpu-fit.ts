// GPU fit: does an image's CUDA build run on an instance type's GPU, under the driver of
// the ECS GPU AMI that will be launched? Checked before anything is created, so the two
// classic errors of a first cloud GPU deploy ("Unknown CUDA arch (8.6) or GPU not
// supported", "The NVIDIA driver on your system is too old") become a refused plan with
// the fix. Pure: images describe themselves in labels (written by mlship when it builds
// them, see GPU_LABELS), the GPUs and drivers come from a bundled dated table
// (gpu-fit-data.json), and the AMI from the region's SSM parameter when it can be read.

import type { RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import type { ImageGpu } from '../../generators/bakeoff-report-schema.js';
import { MlshipError } from '../../io/errors.js';
import { builtinMatrix, compareVersions, type Matrix, sortVersions } from '../bakeoff/matrix.js';
import type { GpuAmiApi, GpuAmiFacts, ImageLabels } from './gpu-fit-apis.js';
import data from './gpu-fit-data.json' with { type: 'json' };

export type { GpuAmiApi, GpuAmiFacts, ImageGpu, ImageLabels };

/** What an image records about its GPU needs (written at build time, read without a pull). */
export const GPU_LABELS = {
  framework: 'dev.mlship.framework',
  cuda: 'dev.mlship.cuda.version',
  archs: 'dev.mlship.cuda.archs',
  minDriver: 'dev.mlship.cuda.min-driver',
  minDriverCompat: 'dev.mlship.cuda.min-driver-compat',
} as const;

export const GPU_FIT_DATE = data.updated;

export function gpuLabels(g: ImageGpu): Record<string, string> {
  return {
    ...(g.framework ? { [GPU_LABELS.framework]: g.framework } : {}),
    [GPU_LABELS.cuda]: g.cuda ?? 'none',
    [GPU_LABELS.archs]: g.archs.join(','),
    ...(g.minDriver ? { [GPU_LABELS.minDriver]: g.minDriver } : {}),
    ...(g.minDriverCompat ? { [GPU_LABELS.minDriverCompat]: g.minDriverCompat } : {}),
  };
}

export function imageGpuFromLabels(labels: Record<string, string> | undefined): ImageGpu | undefined {
  const cuda = labels?.[GPU_LABELS.cuda];
  if (!labels || cuda === undefined) return undefined;
  return {
    framework: labels[GPU_LABELS.framework] ?? null,
    cuda: cuda === 'none' || cuda === '' ? null : cuda,
    archs: (labels[GPU_LABELS.archs] ?? '').split(',').filter(Boolean),
    minDriver: labels[GPU_LABELS.minDriver] ?? null,
    minDriverCompat: labels[GPU_LABELS.minDriverCompat] ?? null,
  };
}

/** What the framework probe found in an image (see the bakeoff Dockerfile's gpu-probe step). */
export interface FrameworkProbe {
  name: string;
  version: string;
  cuda: string | null;
  archs: string[];
}

/** The image's GPU needs from its probe: the first framework with a CUDA build decides. */
export function imageGpuFromProbe(frameworks: FrameworkProbe[], matrix?: Matrix): ImageGpu | undefined {
  const f = frameworks.find((x) => x.cuda) ?? frameworks[0];
  if (!f) return undefined;
  const cuda = f.cuda ? f.cuda.split('.').slice(0, 2).join('.') : null;
  const table = cuda ? matrix?.cuda[cuda] : undefined;
  return {
    framework: `${f.name} ${f.version}`,
    cuda,
    archs: f.archs,
    minDriver: table?.minDriver ?? null,
    minDriverCompat: table?.minDriverCompat ?? null,
  };
}

export interface InstanceGpu {
  family: string;
  gpu: string;
  /** Compute capability, e.g. "8.6". */
  cc: string;
  arch?: string;
}

export const INSTANCE_GPUS: InstanceGpu[] = Object.entries(
  data.instanceGpus as Record<string, Omit<InstanceGpu, 'family'>>,
).map(([family, g]) => ({ family, ...g }));

/** The GPU of an instance type, by its family (`g5.2xlarge` → g5, `p6-b200.48xlarge` → p6-b200). */
export function instanceGpu(instanceType: string): InstanceGpu | undefined {
  const family = instanceType.split('.')[0];
  return INSTANCE_GPUS.find((g) => g.family === family);
}

interface Arch {
  kind: 'sm' | 'compute';
  cc: string;
  /** "a": architecture-specific (sm_90a runs on 9.0 only). */
  suffix: string;
}

/** "sm_86" → 8.6, "compute_90" → PTX 9.0, "sm_100a" → 10.0 (specific), "8.6+PTX" too. */
function parseArch(a: string): Arch[] {
  const m = /^(sm|compute)_(\d+)(\d)([af]?)$/.exec(a.trim());
  if (m) return [{ kind: m[1] as Arch['kind'], cc: `${m[2]}.${m[3]}`, suffix: m[4]! }];
  const list = /^(\d+)\.(\d+)(\+PTX)?$/i.exec(a.trim());
  if (!list) return [];
  const cc = `${list[1]}.${list[2]}`;
  return [{ kind: 'sm', cc, suffix: '' }, ...(list[3] ? [{ kind: 'compute' as const, cc, suffix: '' }] : [])];
}

/**
 * How a build with these architectures runs on a GPU: its own machine code (a cubin for X.y
 * runs on X.z with z ≥ y), JIT-compiled PTX (compute_XY for any GPU of X.Y or newer, which
 * needs a driver with full support of the build's CUDA), or not at all.
 */
export function runsOn(archs: string[], cc: string): 'sass' | 'ptx' | undefined {
  const [major, minor] = cc.split('.').map(Number) as [number, number];
  const parsed = archs.flatMap(parseArch);
  const sass = parsed.some((a) => {
    if (a.kind !== 'sm') return false;
    const [am, an] = a.cc.split('.').map(Number) as [number, number];
    return a.suffix === 'a' ? am === major && an === minor : am === major && an <= minor;
  });
  if (sass) return 'sass';
  return parsed.some((a) => a.kind === 'compute' && compareVersions(a.cc, cc) <= 0) ? 'ptx' : undefined;
}

/** The driver of the ECS GPU AMI, and where that answer comes from. */
export interface AmiDriver {
  driver: string | undefined;
  /** What was launched or would be: "ami-0abc (al2023-ami-ecs-gpu-hvm-2023.0.20260820-…)". */
  ami: string;
  source: string;
}

type DriverRow = { from: string; driver: string };
const AMI_DRIVERS = data.ecsGpuAmiDrivers as Record<GpuAmiFacts['os'], DriverRow[]>;

/** The driver the bundled table gives an AMI version (undefined: older than the table). */
export function tableDriver(os: GpuAmiFacts['os'], version?: string): DriverRow | undefined {
  const rows = AMI_DRIVERS[os];
  if (!version) return rows[rows.length - 1];
  return rows.filter((r) => r.from <= version).pop();
}

/** The AMI's driver: written in its name or description when it is, else the dated table. */
export function driverOfAmi(facts: GpuAmiFacts): AmiDriver {
  const ami = `${facts.id}${facts.name ? ` (${facts.name})` : ''}`;
  const said = /nvidia[^0-9]{0,30}(\d{3}\.\d{1,3}(?:\.\d{1,3})?)/i.exec(
    `${facts.description ?? ''} ${facts.name ?? ''}`,
  );
  if (said) return { driver: said[1], ami, source: 'the AMI description' };
  const version = facts.version ?? /(\d{8})/.exec(facts.name ?? '')?.[1];
  const row = tableDriver(facts.os, version);
  return row
    ? {
        driver: row.driver,
        ami,
        source: `the bundled table dated ${GPU_FIT_DATE} (ECS GPU AMI ${row.from} and later)`,
      }
    : {
        driver: undefined,
        ami,
        source: `the bundled table dated ${GPU_FIT_DATE}, which starts after this AMI`,
      };
}

/** Offline (no AWS call): the newest Amazon Linux 2023 ECS GPU AMI the table knows. */
export function defaultAmiDriver(): AmiDriver {
  const row = tableDriver('amazon-linux-2023')!;
  return {
    driver: row.driver,
    ami: 'the ECS GPU AMI (Amazon Linux 2023)',
    source: `the bundled table dated ${GPU_FIT_DATE} (AMI ${row.from} and later; --apply reads the region's)`,
  };
}

/** The newest CUDA a driver runs: fully, and through minor-version compatibility. */
export function newestCudaFor(driver: string, matrix: Matrix): { full?: string; compat?: string } {
  const versions = sortVersions(Object.keys(matrix.cuda));
  const full = versions.filter((v) => compareVersions(driver, matrix.cuda[v]!.minDriver) >= 0).pop();
  const compat = versions.filter((v) => compareVersions(driver, matrix.cuda[v]!.minDriverCompat) >= 0).pop();
  return { ...(full ? { full } : {}), ...(compat ? { compat } : {}) };
}

/** The newest torch release of the matrix with a CUDA build this driver runs (for the fix). */
function torchFor(cudaMax: string, matrix: Matrix): string | undefined {
  for (const v of sortVersions(Object.keys(matrix.frameworks.torch)).reverse()) {
    const builds = matrix.frameworks.torch[v]!.cuda.filter((c) => compareVersions(c, cudaMax) <= 0);
    if (builds.length) return `torch ${v} with CUDA ${sortVersions(builds).pop()}`;
  }
  return undefined;
}

export interface GpuFit {
  image: string;
  instanceType: string;
  gpu?: InstanceGpu;
  imageGpu?: ImageGpu;
  driver: AmiDriver;
  /** What the plan shows. */
  lines: string[];
  /** Each with its fix; any of them refuses the deploy (exit 2). */
  problems: string[];
}

function archProblem(image: string, g: ImageGpu, gpu: InstanceGpu, instanceType: string): string {
  const works = INSTANCE_GPUS.filter((x) => !x.arch && runsOn(g.archs, x.cc) === 'sass').map(
    (x) => `${x.family} (${x.gpu}, ${x.cc})`,
  );
  const [major] = gpu.cc.split('.');
  return `${image} has no kernels for the ${gpu.gpu} of ${instanceType} (compute capability ${gpu.cc}): it was built for ${g.archs.join(', ') || 'no GPU architecture'}; on the instance it would fail with "no kernel image is available" or "Unknown CUDA arch (${gpu.cc}) or GPU not supported" (fix: ${works.length ? `--gpu-instance of a family it runs on: ${works.join(', ')}; or ` : ''}a build that includes sm_${gpu.cc.replace('.', '')} (or sm_${major}0, which runs on every ${major}.x), e.g. TORCH_CUDA_ARCH_LIST="${gpu.cc}+PTX" for compiled extensions, or a framework wheel built for it)`;
}

function driverProblem(image: string, g: ImageGpu, d: AmiDriver, matrix: Matrix): string {
  const newest = newestCudaFor(d.driver!, matrix);
  const build = newest.compat ? torchFor(newest.compat, matrix) : undefined;
  return `the NVIDIA driver ${d.driver} of ${d.ami} (from ${d.source}) is too old for ${image}'s CUDA ${g.cuda}, which needs ${g.minDriverCompat} or newer; on the instance it would fail with "The NVIDIA driver on your system is too old" (fix: a build for CUDA ${newest.compat ?? 'an older release'} or older, which this driver runs${newest.full && newest.full !== newest.compat ? ` (fully up to ${newest.full})` : ''}${build ? `, e.g. ${build}` : ''}; or an AMI with a newer driver)`;
}

/** The line of a fit that cannot be checked (unknown instance, unlabelled image, CPU build); else undefined. */
function notChecked(
  o: { image: string; instanceType: string },
  head: string,
  gpu: ReturnType<typeof instanceGpu>,
  g: ImageGpu | undefined,
): string | undefined {
  if (!gpu) return `${head}: unknown: ${o.instanceType} is not in the GPU table dated ${GPU_FIT_DATE}`;
  if (!g)
    return `${head} (${gpu.gpu}, ${gpu.cc}): unknown: the image has no ${GPU_LABELS.cuda} label (\`mlship doctor --image ${o.image} --gpu-instance ${o.instanceType}\` probes it)`;
  if (!g.cuda) return `${head}: ${g.framework ?? 'the image'} is a CPU build: the ${gpu.gpu} stays unused`;
  return undefined;
}

function archTextOf(via: ReturnType<typeof runsOn> | 'unknown', archs: string[]): string {
  if (via === 'unknown') return 'architectures not recorded';
  if (via === 'sass') return `built for it (${archs.join(', ')})`;
  if (via === 'ptx') return `PTX JIT (${archs.join(', ')})`;
  return `not built for it (${archs.join(', ')})`;
}

/** The fit of one image on one instance type under one AMI driver. */
export function checkGpuFit(o: {
  image: string;
  imageGpu: ImageGpu | undefined;
  instanceType: string;
  driver: AmiDriver;
  matrix: Matrix;
}): GpuFit {
  const fit: GpuFit = {
    image: o.image,
    instanceType: o.instanceType,
    driver: o.driver,
    lines: [],
    problems: [],
  };
  const gpu = instanceGpu(o.instanceType);
  const g = o.imageGpu;
  if (gpu) fit.gpu = gpu;
  if (g) fit.imageGpu = g;
  const head = `GPU fit of ${o.image} on ${o.instanceType}`;
  const unknown = notChecked(o, head, gpu, g);
  if (unknown || !gpu || !g?.cuda) {
    if (unknown) fit.lines.push(unknown);
    return fit;
  }
  const via = g.archs.length ? runsOn(g.archs, gpu.cc) : 'unknown';
  const minCompat = g.minDriverCompat ?? o.matrix.cuda[g.cuda]?.minDriverCompat;
  const minFull = g.minDriver ?? o.matrix.cuda[g.cuda]?.minDriver;
  const gg: ImageGpu = { ...g, minDriverCompat: minCompat ?? null, minDriver: minFull ?? null };
  const driverKnown = o.driver.driver !== undefined && minCompat !== undefined;
  const tooOld = driverKnown && compareVersions(o.driver.driver!, minCompat!) < 0;
  const compatOnly =
    driverKnown && !tooOld && minFull !== undefined && compareVersions(o.driver.driver!, minFull) < 0;
  if (via === undefined) fit.problems.push(archProblem(o.image, g, gpu, o.instanceType));
  if (via === 'ptx' && compatOnly) {
    fit.problems.push(
      `${o.image} runs on the ${gpu.gpu} (${gpu.cc}) only by JIT-compiling its PTX, which the driver ${o.driver.driver} cannot do for CUDA ${g.cuda} (it runs it through minor-version compatibility only) (fix: a build with sm_${gpu.cc.replace('.', '')}, or a driver >= ${minFull})`,
    );
  }
  if (tooOld) fit.problems.push(driverProblem(o.image, gg, o.driver, o.matrix));
  const driverText =
    o.driver.driver === undefined
      ? `driver unknown (${o.driver.source})`
      : `driver ${o.driver.driver} (${o.driver.source})${tooOld ? ' too old' : compatOnly ? ' through minor-version compatibility' : ''}`;
  const archText = archTextOf(via, g.archs);
  fit.lines.push(
    `${head} (${gpu.gpu}, ${gpu.cc}): ${fit.problems.length ? 'DOES NOT FIT' : 'fits'}: ${g.framework ?? 'image'} CUDA ${g.cuda}, ${archText}; ${driverText}`,
  );
  return fit;
}

/** Where the fit check reads images and the AMI (the CLI builds it; tests hand in fakes). */
export interface GpuFitSource {
  images: ImageLabels;
  /** The region's ECS GPU AMI; without it (offline plans) the bundled table answers. */
  gpuAmi?: GpuAmiApi;
  matrix: Matrix;
}

/** The images of a plan's GPU containers: the local names mlship and compose give built services first. */
function gpuImages(
  stack: string,
  tds: RegisterTaskDefinitionCommandInput[],
): { name: string; local: string[]; remote: string | undefined }[] {
  return tds
    .filter((td) => td.requiresCompatibilities?.includes('EC2'))
    .flatMap((td) => td.containerDefinitions ?? [])
    .filter((c) => c.resourceRequirements?.some((r) => r.type === 'GPU'))
    .map((c) => {
      // A service built from source is pushed to <registry>/<stack>/<name>: not there before --apply.
      const pushed = new RegExp(`/${stack}/${c.name}:[^/]+$`).test(c.image ?? '');
      const local = [`${stack}/${c.name}:dev`, `${stack}-${c.name}:latest`, `${stack}_${c.name}:latest`];
      return { name: c.name!, local, remote: pushed ? undefined : c.image! };
    });
}

/** The fit of every GPU container of a plan on its instance type (labels read, never pulled). */
export async function gpuFitOfPlan(
  stack: string,
  taskDefinitions: RegisterTaskDefinitionCommandInput[],
  instanceType: string,
  src: GpuFitSource,
): Promise<GpuFit[]> {
  // An AMI that cannot be read (permissions, an emulator without the parameter) is answered by the table.
  const ami = src.gpuAmi ? await src.gpuAmi.recommendedGpuAmi().catch(() => undefined) : undefined;
  const driver = ami ? driverOfAmi(ami) : defaultAmiDriver();
  const fits: GpuFit[] = [];
  for (const c of gpuImages(stack, taskDefinitions)) {
    let found: { ref: string; labels: Record<string, string> } | undefined;
    const refs = [
      ...c.local.map((ref) => ({ ref, localOnly: true })),
      ...(c.remote ? [{ ref: c.remote, localOnly: false }] : []),
    ];
    for (const { ref, localOnly } of refs) {
      const r = await src.images.labels(ref, localOnly).catch(() => undefined);
      if (r) {
        found = { ref, labels: r.labels };
        break;
      }
    }
    fits.push(
      checkGpuFit({
        image: found?.ref ?? c.remote ?? c.local[0]!,
        imageGpu: imageGpuFromLabels(found?.labels),
        instanceType,
        driver,
        matrix: src.matrix,
      }),
    );
  }
  return fits;
}

/** A plan whose GPU images do not fit is refused (exit 2), every problem with its fix. */
export function assertGpuFit(fits: GpuFit[]): void {
  const problems = fits.flatMap((f) => f.problems);
  if (!problems.length) return;
  throw new MlshipError(
    'GPU_MISFIT',
    'usage',
    `the GPU image does not fit ${fits[0]!.instanceType}: nothing was created`,
    {
      details: problems,
      hint: 'fix the items above (each names its fix), or check other choices offline: mlship doctor --image <image> --gpu-instance <type>',
    },
  );
}

/** The containers that ask for a GPU (they run on the EC2 GPU capacity). */
export function gpuContainers(taskDefinitions: RegisterTaskDefinitionCommandInput[]) {
  return taskDefinitions
    .filter((td) => td.requiresCompatibilities?.includes('EC2'))
    .flatMap((td) => td.containerDefinitions ?? [])
    .filter((c) => c.resourceRequirements?.some((r) => r.type === 'GPU'));
}

/**
 * After `--apply` built the images: their labels (now current) against the instance type and
 * the driver the plan found. Problems only; the plan already showed the fit.
 */
export async function gpuFitOfBuiltImages(
  plan: { translation: { taskDefinitions: RegisterTaskDefinitionCommandInput[] }; gpuFit?: GpuFit[] },
  localImages: Record<string, string>,
  instanceType: string,
  engine: { inspectImage(ref: string): Promise<{ labels: Record<string, string> }> },
  matrix: Matrix = builtinMatrix(),
): Promise<string[]> {
  const problems: string[] = [];
  for (const c of gpuContainers(plan.translation.taskDefinitions)) {
    const ref = localImages[c.name!];
    if (!ref) continue;
    const labels = await Promise.resolve()
      .then(() => engine.inspectImage(ref))
      .then(
        (i) => i.labels,
        () => undefined,
      );
    const fit = checkGpuFit({
      image: ref,
      imageGpu: imageGpuFromLabels(labels),
      instanceType,
      driver: plan.gpuFit?.[0]?.driver ?? defaultAmiDriver(),
      matrix,
    });
    problems.push(...fit.problems);
  }
  return problems;
}
