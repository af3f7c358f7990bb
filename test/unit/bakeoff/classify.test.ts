// Failure classification from real-looking build and run output.

import { describe, expect, it } from 'vitest';
import {
  classifyBuildFailure,
  classifyRun,
  cloneFailure,
  packageName,
  type RunObservation,
} from '../../../src/core/bakeoff/classify.js';

const run = (o: Partial<RunObservation>): RunObservation => ({
  exitCode: 1,
  timedOut: false,
  oomKilled: false,
  timeoutMs: 60_000,
  gpusRequested: false,
  log: [],
  missingOutputs: [],
  ...o,
});

describe('build failures', () => {
  it('names the package pip could not find (without its version), colour codes stripped', () => {
    const f = classifyBuildFailure(
      'Step 8/10 : RUN cd /workspace/repo && pip install -r requirements.txt',
      [
        'ERROR: Could not find a version that satisfies the requirement torchx==9.9 (from versions: none)',
        '\x1b[91mERROR: No matching distribution found for torchx==9.9\x1b[0m',
      ],
      'The command returned a non-zero code: 1',
    );
    expect(f).toMatchObject({
      category: 'dependency_install_failed',
      origin: 'candidate',
      package: 'torchx',
    });
    expect(f.message).toMatch(/failed on torchx$/);
    expect(f.evidence[0]).not.toContain('\x1b');
  });

  it('names the package whose wheel failed to build, and resolution conflicts', () => {
    expect(
      classifyBuildFailure(
        'RUN pip install -r requirements.txt',
        [
          "  Building wheel for pycocotools (setup.py): finished with status 'error'",
          '  ERROR: Failed building wheel for pycocotools',
        ],
        'x',
      ).package,
    ).toBe('pycocotools');
    const conflict = classifyBuildFailure(
      'RUN pip install',
      [
        'ERROR: Cannot install numpy==1.19.5 and scipy==1.11.0 because these package versions have conflicting dependencies.',
      ],
      'x',
    );
    expect(conflict.category).toBe('dependency_install_failed');
    expect(conflict.package).toBe('numpy');
  });

  it('apt packages that do not exist are a config problem', () => {
    const f = classifyBuildFailure(
      'RUN apt-get install',
      ['E: Unable to locate package libgl1-mesa-glxx'],
      'x',
    );
    expect(f).toMatchObject({
      category: 'dependency_install_failed',
      origin: 'config',
      package: 'libgl1-mesa-glxx',
    });
  });

  it('a base image that cannot be pulled is a host problem; anything else a build failure', () => {
    expect(
      classifyBuildFailure(undefined, [], 'pull access denied for nvidia/cuda, repository does not exist')
        .origin,
    ).toBe('host');
    expect(classifyBuildFailure('RUN make', ['make: *** [all] Error 2'], 'returned 2')).toMatchObject({
      category: 'build_failed',
      origin: 'candidate',
    });
  });

  it('packageName strips versions, extras and markers', () => {
    expect(packageName('Pillow[extra]>=9.0')).toBe('Pillow');
    expect(packageName('torch==2.1.0+cu118,')).toBe('torch');
    expect(packageName('opencv-python')).toBe('opencv-python');
  });
});

describe('run failures', () => {
  it('success: exit 0 with every output', () => {
    expect(classifyRun(run({ exitCode: 0 }))).toBeUndefined();
  });

  it('timeout wins over the exit code of the kill', () => {
    expect(classifyRun(run({ exitCode: 137, timedOut: true, timeoutMs: 4000 }))).toMatchObject({
      category: 'timeout',
      message: expect.stringMatching(/4 s/),
    });
  });

  it('OOMKilled, and exit 137 under a memory limit, are out of memory', () => {
    expect(
      classifyRun(run({ exitCode: 137, oomKilled: true, memoryLimitBytes: 64 * 1024 ** 2 })),
    ).toMatchObject({
      category: 'out_of_memory',
      message: expect.stringMatching(/64 MiB/),
    });
    expect(classifyRun(run({ exitCode: 137, memoryLimitBytes: 1024 ** 3 }))?.category).toBe('out_of_memory');
  });

  it('tells the host (no driver, no GPU) from the image (wheel built for another GPU)', () => {
    const host = classifyRun(
      run({ gpusRequested: true, log: ['RuntimeError: Found no NVIDIA driver on your system.'] }),
    );
    expect(host).toMatchObject({ category: 'host_gpu_unavailable', origin: 'host' });
    const driver = classifyRun(
      run({ log: ['RuntimeError: The NVIDIA driver on your system is too old (found version 11040).'] }),
    );
    expect(driver).toMatchObject({ category: 'cuda_driver_mismatch', origin: 'host' });
    const arch = classifyRun(
      run({ log: ['RuntimeError: CUDA error: no kernel image is available for execution on the device'] }),
    );
    expect(arch).toMatchObject({ category: 'cuda_arch_mismatch', origin: 'image' });
    expect(
      classifyRun(run({ log: ['nvcc fatal   : Unknown CUDA arch (sm_90) or GPU not supported'] }))?.category,
    ).toBe('cuda_arch_mismatch');
    expect(
      classifyRun(
        run({
          log: [
            'NVIDIA H100 with CUDA capability sm_90 is not compatible with the current PyTorch installation.',
          ],
        }),
      )?.category,
    ).toBe('cuda_arch_mismatch');
  });

  it('GPU out of memory is out of memory too', () => {
    expect(
      classifyRun(run({ log: ['torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB'] })),
    ).toMatchObject({
      category: 'out_of_memory',
      message: expect.stringMatching(/GPU memory/),
    });
  });

  it('a missing module gets a hint; any other exit code is nonzero_exit', () => {
    const f = classifyRun(
      run({ exitCode: 1, log: ['Traceback', "ModuleNotFoundError: No module named 'cv2'"] }),
    );
    expect(f).toMatchObject({ category: 'nonzero_exit', hint: expect.stringMatching(/cv2/) });
    expect(classifyRun(run({ exitCode: 3, log: ['boom'] }))?.message).toMatch(/code 3/);
  });

  it('exit 0 without an expected output is missing_output, naming it', () => {
    expect(classifyRun(run({ exitCode: 0, missingOutputs: ['out/result.png'] }))).toMatchObject({
      category: 'missing_output',
      message: expect.stringMatching(/out\/result\.png/),
    });
  });
});

describe('clone failures', () => {
  it('an unknown ref is a config problem; auth a host problem; else the repository', () => {
    expect(cloneFailure('r', "fatal: unknown revision 'v9'")).toMatchObject({
      category: 'clone_failed',
      origin: 'config',
    });
    expect(cloneFailure('r', 'fatal: could not read Username for https://github.com')).toMatchObject({
      origin: 'host',
    });
    expect(cloneFailure('r', "fatal: repository 'x' does not exist")).toMatchObject({ origin: 'candidate' });
  });

  it("a submodule failure names the submodule; its missing commit is the candidate's, not the config's", () => {
    const sub = { path: 'third_party/lib', location: 'https://git.example/lib.git', commit: 'a'.repeat(40) };
    expect(cloneFailure('r', "fatal: unknown revision 'aaaa'", sub)).toMatchObject({
      category: 'clone_failed',
      origin: 'candidate',
      message:
        'r pins commit aaaaaaaaaaaa of submodule third_party/lib (https://git.example/lib.git), which it does not have',
    });
    expect(cloneFailure('r', "fatal: repository 'x' not found", sub)).toMatchObject({
      origin: 'candidate',
      message: 'cloning submodule third_party/lib (https://git.example/lib.git) of r failed',
      hint: expect.stringContaining('.gitmodules'),
    });
  });
});
