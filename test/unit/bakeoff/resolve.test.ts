// The resolver against the shipped matrix: framework → CUDA → base image and wheel
// index, refusals with nearest valid alternatives, and the driver check.

import { describe, expect, it } from 'vitest';
import { type Candidate, CandidateSchema } from '../../../src/config/bakeoff-schema.js';
import {
  builtinMatrix,
  compareVersions,
  matrixProblems,
  mergeMatrix,
} from '../../../src/core/bakeoff/matrix.js';
import {
  checkDriver,
  DriverTooOldError,
  IncompatibleError,
  type ResolveOptions,
  resolveCandidate,
} from '../../../src/core/bakeoff/resolve.js';
import { parseGpuQuery } from '../../../src/core/doctor/engine-gpus.js';
import { ConfigError } from '../../../src/io/errors.js';

const matrix = builtinMatrix();
const noCompile = { yes: false, evidence: [] };
const gpuHost = (driver: string) => ({ driver, count: 1 });

function candidate(fields: Partial<Record<keyof Candidate, unknown>>): Candidate {
  return CandidateSchema.parse({ repo: 'https://example.com/r.git', run: 'python demo.py', ...fields });
}

function resolve(fields: Partial<Record<keyof Candidate, unknown>>, o: Partial<ResolveOptions> = {}) {
  return resolveCandidate(candidate(fields), {
    matrix,
    compilesCuda: noCompile,
    host: gpuHost('550.54.15'),
    ...o,
  });
}

function refusal(fn: () => unknown): IncompatibleError {
  try {
    fn();
  } catch (e) {
    if (e instanceof IncompatibleError) return e;
    throw e;
  }
  throw new Error('expected an IncompatibleError');
}

describe('the shipped matrix', () => {
  it('is consistent: every CUDA a framework names is described, with its sources noted', () => {
    expect(matrixProblems(matrix)).toEqual([]);
    expect(Object.keys(matrix.sources)).toEqual(
      expect.arrayContaining(['torch', 'tensorflow', 'cuda', 'images']),
    );
    for (const [v, info] of Object.entries(matrix.cuda)) {
      expect(info.full.startsWith(`${v}.`), v).toBe(true);
      expect(compareVersions(info.minDriver, info.minDriverCompat), v).toBeGreaterThanOrEqual(0);
    }
  });

  it('minimum drivers never decrease as CUDA versions increase', () => {
    const versions = Object.keys(matrix.cuda).sort(compareVersions);
    for (let i = 1; i < versions.length; i++) {
      const prev = matrix.cuda[versions[i - 1]!]!;
      const cur = matrix.cuda[versions[i]!]!;
      // 13.2's own minimum is recorded as a lower bound (13.0 Update 2's): equal is allowed.
      expect(compareVersions(cur.minDriver, prev.minDriver), versions[i]).toBeGreaterThanOrEqual(0);
      expect(compareVersions(cur.minDriverCompat, prev.minDriverCompat), versions[i]).toBeGreaterThanOrEqual(
        0,
      );
    }
  });

  it('is current: torch 2.15 (CUDA 13.2, Python 3.11-3.15) and TensorFlow 2.21', () => {
    expect(matrix.frameworks.torch['2.15.0']).toMatchObject({
      cuda: ['13.2'],
      python: ['3.11', '3.12', '3.13', '3.14', '3.15'],
    });
    expect(matrix.frameworks.tensorflow['2.21.0']).toMatchObject({
      cuda: ['12.5'],
      package: 'tensorflow[and-cuda]',
    });
    expect(matrix.cuda['13.0']!.minDriverCompat).toBe('580.65.06');
  });

  it('a user matrix extends it (a new torch) and cross references are checked', () => {
    const extended = mergeMatrix(
      matrix,
      'my-matrix.yaml',
      [
        'cuda:',
        '  "13.4": { full: "13.4.1", minDriver: "600.10.01", minDriverCompat: "580.65.06", cudnn: cudnn, ubuntu: "24.04" }',
        'frameworks:',
        '  torch:',
        '    "2.16.0": { python: ["3.12"], cuda: ["13.0", "13.4"], bundlesCuda: true }',
      ].join('\n'),
    );
    const plan = resolveCandidate(
      candidate({ framework: 'torch', framework_version: '2.16', python: '3.12', gpus: 1 }),
      {
        matrix: extended,
        compilesCuda: noCompile,
        host: gpuHost('600.20.01'),
      },
    );
    expect(plan.framework?.version).toBe('2.16.0');
    expect(plan.cuda).toBe('13.4');
    expect(plan.framework?.indexUrl).toBe('https://download.pytorch.org/whl/cu134');
    expect(() =>
      mergeMatrix(
        matrix,
        'bad.yaml',
        'frameworks:\n  torch:\n    "2.16.0": { python: ["3.12"], cuda: ["13.4"], bundlesCuda: true }\n',
      ),
    ).toThrow(ConfigError);
    try {
      mergeMatrix(
        matrix,
        'bad.yaml',
        'frameworks:\n  torch:\n    "2.16.0": { python: ["3.12"], cuda: ["13.4"], bundlesCuda: true }\n',
      );
    } catch (e) {
      expect((e as ConfigError).problems[0]).toMatchObject({ path: 'frameworks.torch.2.16.0.cuda[0]' });
    }
  });
});

describe('resolveCandidate', () => {
  it('torch with a GPU: the newest CUDA the driver supports, a slim base and the cu wheel index (no second CUDA)', () => {
    const plan = resolve({ framework: 'torch', framework_version: '2.3.1', python: '3.11', gpus: 1 });
    expect(plan.cuda).toBe('12.1');
    expect(plan.flavor).toBe('slim');
    expect(plan.baseImage).toBe('python:3.11-slim');
    expect(plan.framework).toMatchObject({
      requirement: 'torch==2.3.1',
      indexUrl: 'https://download.pytorch.org/whl/cu121',
      constraints: ['torch==2.3.1', 'torchvision==0.18.1', 'torchaudio==2.3.1'],
    });
    expect(plan.reasons.join('\n')).toMatch(/bundle the CUDA 12\.1 libraries/);
    expect(plan.minDriver).toBe('530.30.02');
  });

  it('a driver too old for the newest build picks an older CUDA of the same torch', () => {
    const plan = resolve(
      { framework: 'torch', framework_version: '2.3', gpus: 1 },
      { host: gpuHost('525.60.13') },
    );
    expect(plan.framework?.version).toBe('2.3.1');
    // 12.1 needs 530.30.02 for full support; 11.8 (520.61.05) is fully supported by 525.
    expect(plan.cuda).toBe('11.8');
    expect(plan.framework?.indexUrl).toBe('https://download.pytorch.org/whl/cu118');
  });

  it('falls back to minor-version compatibility, and refuses a driver older than every build', () => {
    const compat = resolve(
      { framework: 'torch', framework_version: '2.8.0', python: '3.12', gpus: 1 },
      { host: gpuHost('535.104.05') },
    );
    expect(compat.cuda).toBe('12.9');
    expect(compat.reasons.join('\n')).toMatch(/minor-version compatibility/);
    expect(() =>
      resolve({ framework: 'torch', framework_version: '2.3.1', gpus: 1 }, { host: gpuHost('418.39') }),
    ).toThrow(DriverTooOldError);
  });

  it('no GPU requested: CPU wheels from the cpu index and no CUDA at all', () => {
    const plan = resolve({ framework: 'torch', framework_version: '2.2.2', python: '3.10' });
    expect(plan.cuda).toBeNull();
    expect(plan.framework?.indexUrl).toBe('https://download.pytorch.org/whl/cpu');
    expect(plan.baseImage).toBe('python:3.10-slim');
    expect(plan.minDriver).toBeNull();
  });

  it('no framework version: the newest that has wheels for the Python version', () => {
    expect(resolve({ framework: 'torch', python: '3.8' }).framework?.version).toBe('2.4.1');
    expect(resolve({ framework: 'torch', python: '3.13' }).framework?.version).toBe('2.15.0');
    expect(resolve({ framework: 'torch', python: '3.10' }).framework?.version).toBe('2.14.1');
  });

  it('compiling CUDA code needs the devel image, with Python from deadsnakes when Ubuntu ships another', () => {
    const compiles = { yes: true, evidence: ['setup.py: CUDAExtension'] };
    const plan = resolve(
      { framework: 'torch', framework_version: '2.1.2', python: '3.11', gpus: 1 },
      { compilesCuda: compiles },
    );
    expect(plan.flavor).toBe('devel');
    expect(plan.baseImage).toBe('nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04');
    expect(plan.pythonFrom).toBe('deadsnakes');
    const apt = resolve(
      { framework: 'torch', framework_version: '2.1.2', python: '3.10', gpus: 1 },
      { compilesCuda: compiles },
    );
    expect(apt.pythonFrom).toBe('apt');
    expect(apt.reasons.join('\n')).toMatch(/setup\.py: CUDAExtension/);
    // A CPU build of the same repo needs no nvcc.
    expect(
      resolve({ framework: 'torch', framework_version: '2.1.2' }, { compilesCuda: compiles }).flavor,
    ).toBe('slim');
  });

  it('TensorFlow before 2.14 needs the system CUDA: the runtime image', () => {
    const plan = resolve({ framework: 'tensorflow', framework_version: '2.12', python: '3.10', gpus: 1 });
    expect(plan.flavor).toBe('runtime');
    expect(plan.baseImage).toBe('nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04');
    expect(plan.framework?.requirement).toBe('tensorflow==2.12.1');
    const bundled = resolve({ framework: 'tensorflow', framework_version: '2.15', python: '3.11', gpus: 1 });
    expect(bundled.flavor).toBe('slim');
    expect(bundled.framework?.requirement).toBe('tensorflow[and-cuda]==2.15.1');
  });

  it('refuses torch 2.1 on Python 3.12 with the nearest valid combinations', () => {
    const e = refusal(() => resolve({ framework: 'torch', framework_version: '2.1.2', python: '3.12' }));
    expect(e.message).toMatch(/torch 2\.1\.2 has no wheels for Python 3\.12/);
    expect(e.alternatives).toContain('python "3.11" with torch 2.1.2');
    expect(e.alternatives).toContain('torch 2.2.2 with python "3.12"');
    expect(e.exitCode).toBe(2);
  });

  it('refuses a CUDA the torch release was not built for, offering its CUDAs and torches that have it', () => {
    const e = refusal(() =>
      resolve({ framework: 'torch', framework_version: '2.3.1', cuda: '12.4', gpus: 1 }),
    );
    expect(e.message).toMatch(/has no build for CUDA 12\.4 \(it has 11\.8, 12\.1\)/);
    expect(e.alternatives.slice(0, 2)).toEqual([
      'cuda "12.1" with torch 2.3.1',
      'cuda "11.8" with torch 2.3.1',
    ]);
    expect(e.alternatives).toContain('torch 2.4.1 with cuda "12.4"');
  });

  it('refuses a framework version that is not in the matrix, naming the nearest ones', () => {
    const e = refusal(() => resolve({ framework: 'torch', framework_version: '2.35' }));
    expect(e.message).toMatch(/not in the compatibility matrix/);
    expect(e.alternatives.length).toBeGreaterThan(0);
    expect(e.hint).toMatch(/--matrix/);
  });

  it('base images are overridable: config templates, the candidate, then --base-image', () => {
    const baseImages = {
      python: 'mirror.local/python:{python}-slim',
      cuda: 'mirror.local/cuda:{cuda}-{flavor}',
    };
    expect(resolve({ python: '3.10' }, { baseImages }).baseImage).toBe('mirror.local/python:3.10-slim');
    expect(
      resolve({ framework: 'tensorflow', framework_version: '2.13', python: '3.10', gpus: 1 }, { baseImages })
        .baseImage,
    ).toBe('mirror.local/cuda:11.8.0-runtime');
    expect(resolve({ base_image: 'own/image:1' }).baseImage).toBe('own/image:1');
    expect(resolve({ base_image: 'own/image:1' }, { baseImageOverride: 'local/py:3.11' }).baseImage).toBe(
      'local/py:3.11',
    );
  });
});

describe('driver check', () => {
  it('explains a too-old driver for an explicit CUDA, accepts compatibility mode with a warning', () => {
    const plan = resolve(
      { framework: 'torch', framework_version: '2.4.1', cuda: '12.4', gpus: 1 },
      { host: { driver: null, count: 0 } },
    );
    expect(checkDriver('det', plan, matrix, gpuHost('560.28.03'))).toBeUndefined();
    expect(checkDriver('det', plan, matrix, gpuHost('535.54.03'))).toMatchObject({ fatal: false });
    const fatal = checkDriver('det', plan, matrix, gpuHost('470.57.02'));
    expect(fatal?.fatal).toBe(true);
    expect(fatal?.message).toMatch(
      /CUDA 12\.4 needs NVIDIA driver >= 525\.60\.13.*this host has 470\.57\.02.*up to 11\.3/,
    );
  });

  it('parses nvidia-smi CSV output, with the compute capability when the driver reports it', () => {
    const out = '0, NVIDIA A10G, 535.104.05, 23028\n1, NVIDIA A10G, 535.104.05, 23028\n';
    expect(parseGpuQuery(out)).toEqual([
      { index: 0, name: 'NVIDIA A10G', driver: '535.104.05', memoryMiB: 23028 },
      { index: 1, name: 'NVIDIA A10G', driver: '535.104.05', memoryMiB: 23028 },
    ]);
    expect(parseGpuQuery('0, NVIDIA L4, 580.95.05, 23034, 8.9\n')).toEqual([
      { index: 0, name: 'NVIDIA L4', driver: '580.95.05', memoryMiB: 23034, computeCapability: '8.9' },
    ]);
    expect(
      parseGpuQuery('NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'),
    ).toEqual([]);
  });
});
