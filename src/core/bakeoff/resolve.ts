// The resolver: framework version → compatible CUDA versions → base image (slim,
// nvidia/cuda runtime or devel) and the wheel index, with every choice explained.
// Impossible combinations are refused with the nearest valid alternatives.

import type { Candidate } from '../../config/bakeoff-schema.js';
import { MlshipError } from '../../io/errors.js';
import { compareVersions, type FrameworkInfo, type Matrix, sortVersions } from './matrix.js';

export type Flavor = 'slim' | 'runtime' | 'devel';

export interface ResolvedFramework {
  name: 'torch' | 'tensorflow';
  version: string;
  /** The pip requirement installed in its own layer, e.g. "torch==2.3.1". */
  requirement: string;
  /** Wheel index for the framework and its companions (torch only). */
  indexUrl?: string;
  /** Pins written to the constraints file so requirements cannot swap the framework. */
  constraints: string[];
}

export interface ResolvedPlan {
  python: string;
  framework: ResolvedFramework | null;
  /** CUDA version the image is built for; null for CPU. */
  cuda: string | null;
  flavor: Flavor;
  baseImage: string;
  /** How Python gets into the image. */
  pythonFrom: 'image' | 'apt' | 'deadsnakes';
  /** Minimum host driver for `cuda` (full compatibility), when GPUs are used. */
  minDriver: string | null;
  reasons: string[];
}

export interface HostGpu {
  /** nvidia-smi's driver version, or null when there is no driver/nvidia-smi. */
  driver: string | null;
  count: number;
}

export interface ResolveOptions {
  matrix: Matrix;
  /** Candidate compiles CUDA code (detected, or `compiles_cuda`), with the evidence. */
  compilesCuda: { yes: boolean; evidence: string[] };
  host: HostGpu;
  baseImages?: { python?: string; cuda?: string };
  /** `--base-image`: replaces every resolved base image. */
  baseImageOverride?: string;
}

export class IncompatibleError extends MlshipError {
  readonly alternatives: string[];
  constructor(message: string, alternatives: string[], hint?: string) {
    super('BAKEOFF_INCOMPATIBLE', 'usage', message, {
      details: alternatives.map((a) => `nearest valid: ${a}`),
      hint:
        hint ?? 'change the candidate to one of the combinations above, or extend the matrix with --matrix',
    });
    this.alternatives = alternatives;
  }
}

export class DriverTooOldError extends MlshipError {
  constructor(message: string, details: string[], hint: string) {
    super('GPU_DRIVER_TOO_OLD', 'environment', message, { details, hint });
  }
}

function frameworkEntries(m: Matrix, fw: 'torch' | 'tensorflow'): [string, FrameworkInfo][] {
  return sortVersions(Object.keys(m.frameworks[fw])).map((v) => [v, m.frameworks[fw][v]!]);
}

/** Versions ordered by distance to `target` (closest first; ties: newer first). */
function nearest(target: string, versions: string[], n = 3): string[] {
  const num = (v: string) => v.split('.').reduce((acc, p, i) => acc + Number(p) / 100 ** i, 0);
  const t = num(target);
  return [...versions]
    .sort((a, b) => Math.abs(num(a) - t) - Math.abs(num(b) - t) || compareVersions(b, a))
    .slice(0, n);
}

function pickFramework(
  c: Candidate,
  m: Matrix,
  fw: 'torch' | 'tensorflow',
): { version: string; entry: FrameworkInfo; reason: string } {
  const entries = frameworkEntries(m, fw);
  const known = entries.map(([v]) => v);
  if (!c.framework_version) {
    const fits = entries.filter(([, e]) => e.python.includes(c.python));
    const last = fits[fits.length - 1];
    if (!last) {
      throw new IncompatibleError(
        `no ${fw} version in the matrix supports Python ${c.python}`,
        nearest(c.python, [...new Set(entries.flatMap(([, e]) => e.python))]).map(
          (p) => `python "${p}" (${fw} ${newestFor(entries, p)})`,
        ),
      );
    }
    return {
      version: last[0],
      entry: last[1],
      reason: `${fw} ${last[0]}: the newest in the matrix for Python ${c.python}`,
    };
  }
  const wanted = c.framework_version;
  const matches = entries.filter(([v]) => v === wanted || v.startsWith(`${wanted}.`));
  const hit = matches[matches.length - 1];
  if (!hit) {
    throw new IncompatibleError(
      `${fw} ${wanted} is not in the compatibility matrix`,
      nearest(wanted, known).map((v) => `${fw} ${v}`),
      `use a listed version, or add ${fw} ${wanted} to a matrix file and pass --matrix`,
    );
  }
  const [version, entry] = hit;
  if (!entry.python.includes(c.python)) {
    const alternatives = [
      ...nearest(c.python, entry.python, 2).map((p) => `python "${p}" with ${fw} ${version}`),
      ...entries
        .filter(([, e]) => e.python.includes(c.python))
        .map(([v]) => v)
        .filter((v, _, all) => nearest(version, all, 2).includes(v))
        .map((v) => `${fw} ${v} with python "${c.python}"`),
    ];
    throw new IncompatibleError(
      `${fw} ${version} has no wheels for Python ${c.python} (it supports ${entry.python.join(', ')})`,
      alternatives,
    );
  }
  return {
    version,
    entry,
    reason:
      version === wanted
        ? `${fw} ${version} as requested`
        : `${fw} ${version}: the newest ${wanted}.x in the matrix`,
  };
}

function newestFor(entries: [string, FrameworkInfo][], python: string): string {
  return entries.filter(([, e]) => e.python.includes(python)).at(-1)?.[0] ?? '?';
}

/** Driver a >= b, numerically ("535.104.05" vs "530.30.02"). */
export function driverAtLeast(driver: string, min: string): boolean {
  return compareVersions(driver, min) >= 0;
}

function pickCuda(
  c: Candidate,
  m: Matrix,
  fw: { name: string; version: string; entry: FrameworkInfo } | null,
  host: HostGpu,
  reasons: string[],
): string | null {
  const wantsGpu = c.gpus === 'all' || c.gpus > 0;
  const supported = fw ? sortVersions(fw.entry.cuda) : sortVersions(Object.keys(m.cuda));
  const label = fw ? `${fw.name} ${fw.version}` : 'the matrix';
  if (c.cuda === 'none') {
    reasons.push('cuda: "none": CPU only');
    return null;
  }
  if (c.cuda === 'auto') {
    if (!wantsGpu) {
      reasons.push('cuda "auto" and no GPU requested: CPU build (smaller image, no driver needed)');
      return null;
    }
    if (supported.length === 0) {
      throw new IncompatibleError(
        `${label} has no CUDA build in the matrix`,
        [],
        'set gpus: 0 or cuda: "none"',
      );
    }
    if (host.driver) {
      const driver = host.driver;
      const full = supported.filter((v) => driverAtLeast(driver, m.cuda[v]!.minDriver));
      if (full.length) {
        const pick = full[full.length - 1]!;
        reasons.push(
          `cuda "auto": ${pick}, the newest CUDA of ${label} that driver ${driver} supports (needs >= ${m.cuda[pick]!.minDriver})`,
        );
        return pick;
      }
      const compat = supported.filter((v) => driverAtLeast(driver, m.cuda[v]!.minDriverCompat));
      if (compat.length) {
        const pick = compat[compat.length - 1]!;
        reasons.push(
          `cuda "auto": ${pick} through CUDA minor-version compatibility (driver ${driver} < ${m.cuda[pick]!.minDriver}; PTX JIT of newer kernels is unavailable)`,
        );
        return pick;
      }
      const oldest = supported[0]!;
      throw new DriverTooOldError(
        `the NVIDIA driver ${driver} is too old for every CUDA build of ${label}`,
        supported.map(
          (v) =>
            `CUDA ${v} needs driver >= ${m.cuda[v]!.minDriverCompat} (>= ${m.cuda[v]!.minDriver} for full support)`,
        ),
        `update the NVIDIA driver to >= ${m.cuda[oldest]!.minDriverCompat}, or pick an older framework_version`,
      );
    }
    const pick = supported[supported.length - 1]!;
    reasons.push(`cuda "auto": ${pick}, the newest of ${label} (no driver found to check against)`);
    return pick;
  }
  const wanted = c.cuda;
  if (!supported.includes(wanted)) {
    const alternatives = nearest(wanted, supported, 2).map((v) => `cuda "${v}" with ${label}`);
    if (fw) {
      const withCuda = frameworkEntries(m, fw.name as 'torch' | 'tensorflow')
        .filter(([, e]) => e.cuda.includes(wanted) && e.python.includes(c.python))
        .map(([v]) => v);
      alternatives.push(
        ...nearest(fw.version, withCuda, 2).map((v) => `${fw.name} ${v} with cuda "${wanted}"`),
      );
    }
    throw new IncompatibleError(
      fw
        ? `${label} has no build for CUDA ${wanted} (it has ${supported.join(', ') || 'none'})`
        : `CUDA ${wanted} is not in the matrix (it has ${supported.join(', ')})`,
      alternatives,
    );
  }
  reasons.push(`cuda ${wanted} as requested`);
  return wanted;
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (all, key: string) => values[key] ?? all);
}

/** Flavor: devel only to compile CUDA code; no second CUDA when the wheels bring their own. */
function pickFlavor(
  c: Candidate,
  o: ResolveOptions,
  cuda: string | null,
  fwPick: { name: string; version: string; entry: FrameworkInfo } | null,
  reasons: string[],
): Flavor {
  if (o.compilesCuda.yes && cuda) {
    reasons.push(
      `devel image: the repo compiles CUDA code (${o.compilesCuda.evidence.slice(0, 3).join('; ')})`,
    );
    return 'devel';
  }
  if (!cuda) {
    if (o.compilesCuda.yes)
      reasons.push('the repo has CUDA sources, but this is a CPU build: no nvcc needed');
    reasons.push(`python:${c.python}-slim base: no CUDA in the image`);
    return 'slim';
  }
  if (fwPick?.entry.bundlesCuda) {
    reasons.push(
      `python:${c.python}-slim base, not nvidia/cuda: the ${fwPick.name} wheels bundle the CUDA ${cuda} libraries, a CUDA base image would ship a second copy (the host only needs the driver)`,
    );
    return 'slim';
  }
  reasons.push(
    fwPick
      ? `nvidia/cuda runtime base: ${fwPick.name} ${fwPick.version} wheels need the system CUDA ${cuda} and cuDNN libraries`
      : `nvidia/cuda runtime base: no framework wheel brings CUDA ${cuda}, so the image provides it`,
  );
  return 'runtime';
}

type FrameworkPick = { name: 'torch' | 'tensorflow'; version: string; entry: FrameworkInfo };

/** The framework requirement (and, for torch, the wheel index for this CUDA or CPU). */
function frameworkFor(
  fwPick: FrameworkPick,
  cuda: string | null,
  m: ResolveOptions['matrix'],
  reasons: string[],
): ResolvedFramework {
  const pkg = fwPick.entry.package ?? fwPick.name;
  if (fwPick.name === 'torch') {
    const indexUrl = cuda ? fill(m.torchIndex.cuda, { tag: `cu${cuda.replace('.', '')}` }) : m.torchIndex.cpu;
    reasons.push(`torch wheels from ${indexUrl} (${cuda ? `built for CUDA ${cuda}` : 'CPU build'})`);
    return {
      name: 'torch',
      version: fwPick.version,
      requirement: `${pkg}==${fwPick.version}`,
      indexUrl,
      constraints: [
        `torch==${fwPick.version}`,
        ...Object.entries(fwPick.entry.companions ?? {}).map(([n, v]) => `${n}==${v}`),
      ],
    };
  }
  return {
    name: 'tensorflow',
    version: fwPick.version,
    requirement: `${cuda ? pkg : 'tensorflow'}==${fwPick.version}`,
    constraints: [`tensorflow==${fwPick.version}`],
  };
}

/** The base image of the flavor picked, where Python comes from, then the candidate's and the flag's overrides. */
function baseImageFor(
  c: Candidate,
  o: ResolveOptions,
  flavor: ResolvedPlan['flavor'],
  cudaInfo: ResolveOptions['matrix']['cuda'][string] | undefined,
  reasons: string[],
): { baseImage: string; pythonFrom: ResolvedPlan['pythonFrom'] } {
  const m = o.matrix;
  let baseImage: string;
  let pythonFrom: ResolvedPlan['pythonFrom'] = 'image';
  if (flavor === 'slim') {
    baseImage = fill(o.baseImages?.python ?? 'python:{python}-slim', { python: c.python });
  } else {
    const info = cudaInfo!;
    baseImage = fill(o.baseImages?.cuda ?? 'nvidia/cuda:{cuda}-{cudnn}-{flavor}-ubuntu{ubuntu}', {
      cuda: info.full,
      cudnn: info.cudnn,
      flavor,
      ubuntu: info.ubuntu,
    });
    pythonFrom = m.ubuntuPython[info.ubuntu] === c.python ? 'apt' : 'deadsnakes';
    reasons.push(
      pythonFrom === 'apt'
        ? `Python ${c.python} from Ubuntu ${info.ubuntu}'s own packages`
        : `Python ${c.python} from the deadsnakes PPA (Ubuntu ${info.ubuntu} ships ${m.ubuntuPython[info.ubuntu] ?? 'another version'})`,
    );
  }
  if (c.base_image) {
    baseImage = c.base_image;
    reasons.push(`base image ${c.base_image} from the candidate's base_image`);
  }
  if (o.baseImageOverride) {
    baseImage = o.baseImageOverride;
    reasons.push(`base image ${o.baseImageOverride} from --base-image`);
  }
  return { baseImage, pythonFrom };
}

/** Resolves one candidate into a build plan; throws IncompatibleError / DriverTooOldError. */
export function resolveCandidate(c: Candidate, o: ResolveOptions): ResolvedPlan {
  const m = o.matrix;
  const reasons: string[] = [];
  const wantsGpu = c.gpus === 'all' || c.gpus > 0;
  let fwPick: FrameworkPick | null = null;
  if (c.framework !== 'none') {
    const p = pickFramework(c, m, c.framework);
    reasons.push(p.reason);
    fwPick = { name: c.framework, version: p.version, entry: p.entry };
  } else if (c.framework_version) {
    throw new IncompatibleError('framework_version is set but framework is "none"', [
      'framework: torch',
      'framework: tensorflow',
    ]);
  }
  const cuda = pickCuda(c, m, fwPick, o.host, reasons);
  const cudaInfo = cuda ? m.cuda[cuda] : undefined;
  if (cuda && !cudaInfo)
    throw new IncompatibleError(`CUDA ${cuda} is not in the cuda table of the matrix`, []);
  const framework = fwPick ? frameworkFor(fwPick, cuda, m, reasons) : null;
  const flavor = pickFlavor(c, o, cuda, fwPick, reasons);
  const { baseImage, pythonFrom } = baseImageFor(c, o, flavor, cudaInfo, reasons);
  return {
    python: c.python,
    framework,
    cuda,
    flavor,
    baseImage,
    pythonFrom,
    minDriver: cuda && wantsGpu ? cudaInfo!.minDriver : null,
    reasons,
  };
}

/**
 * The driver check for an explicitly chosen CUDA version (auto already picks one the
 * driver supports). Returns a problem, or undefined when the driver is new enough.
 */
export function checkDriver(
  name: string,
  plan: ResolvedPlan,
  m: Matrix,
  host: HostGpu,
): { fatal: boolean; message: string } | undefined {
  if (!plan.cuda || !plan.minDriver || !host.driver) return undefined;
  const info = m.cuda[plan.cuda]!;
  if (driverAtLeast(host.driver, info.minDriver)) return undefined;
  if (driverAtLeast(host.driver, info.minDriverCompat)) {
    return {
      fatal: false,
      message: `${name}: driver ${host.driver} is older than CUDA ${plan.cuda}'s ${info.minDriver}; it runs through minor-version compatibility (no PTX JIT for newer GPUs)`,
    };
  }
  const ok = sortVersions(Object.keys(m.cuda)).filter((v) =>
    driverAtLeast(host.driver!, m.cuda[v]!.minDriver),
  );
  return {
    fatal: true,
    message: `${name}: CUDA ${plan.cuda} needs NVIDIA driver >= ${info.minDriverCompat} (>= ${info.minDriver} for full support), this host has ${host.driver}${ok.length ? `; this driver supports CUDA up to ${ok[ok.length - 1]}` : ''}`,
  };
}
