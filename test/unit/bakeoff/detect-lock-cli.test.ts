// Repo inspection (does it compile CUDA?), the lock file, the clone cache, and the
// command line: --help, --plan on real git fixture repos (no engine needed).

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createGit } from '../../../src/adapters/git.js';
import { inspectRepo } from '../../../src/core/bakeoff/detect.js';
import { LOCK_VERSION, lockText, readLock } from '../../../src/core/bakeoff/lock.js';
import { withLfsHint } from '../../../src/core/bakeoff/run-candidate.js';
import { prepareSource } from '../../../src/core/bakeoff/source.js';
import { UsageError } from '../../../src/io/errors.js';
import { bakeoffFixture, commitAll, git } from '../../helpers/bakeoff-fixtures.js';

function tmp(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

describe('inspectRepo', () => {
  it('finds .cu sources, CUDAExtension and CMake CUDA; a plain repo compiles nothing', async () => {
    const dir = tmp('mlship-detect-');
    mkdirSync(path.join(dir, 'csrc'));
    writeFileSync(path.join(dir, 'csrc', 'nms_kernel.cu'), '__global__ void k() {}');
    writeFileSync(
      path.join(dir, 'setup.py'),
      'from torch.utils.cpp_extension import CUDAExtension\nsetup(ext_modules=[CUDAExtension("nms", ["csrc/nms_kernel.cu"])])\n',
    );
    writeFileSync(path.join(dir, 'requirements.txt'), 'numpy\n');
    const facts = await inspectRepo(dir);
    expect(facts.compilesCuda.yes).toBe(true);
    expect(facts.compilesCuda.evidence).toEqual([
      '1 CUDA source file (csrc/nms_kernel.cu)',
      'setup.py: CUDAExtension',
    ]);
    expect(facts.requirementFiles).toEqual(['requirements.txt']);

    const cmake = tmp('mlship-detect-');
    writeFileSync(path.join(cmake, 'CMakeLists.txt'), 'project(x LANGUAGES CXX CUDA)\n');
    expect((await inspectRepo(cmake)).compilesCuda.evidence).toEqual(['CMakeLists.txt: CMake CUDA language']);
    const plain = tmp('mlship-detect-');
    writeFileSync(path.join(plain, 'demo.py'), 'print("nvcc is mentioned in a comment of a script only")\n');
    expect((await inspectRepo(plain)).compilesCuda.yes).toBe(false);
  });

  it('lists Git LFS pointer files when a .gitattributes uses the lfs filter, and says so in a failed run', async () => {
    const pointer =
      'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n';
    const dir = tmp('mlship-detect-');
    mkdirSync(path.join(dir, 'weights'));
    writeFileSync(path.join(dir, 'weights', 'model.pt'), pointer);
    writeFileSync(path.join(dir, 'example.py'), 'print(1)\n');
    // Without an lfs filter a pointer-looking file is left alone (nothing is read).
    expect((await inspectRepo(dir)).lfsPointers).toBeUndefined();
    writeFileSync(path.join(dir, '.gitattributes'), '*.pt filter=lfs diff=lfs merge=lfs -text\n');
    const facts = await inspectRepo(dir);
    expect(facts.lfsPointers).toEqual(['weights/model.pt']);

    const failure = {
      category: 'nonzero_exit' as const,
      origin: 'candidate' as const,
      message: 'the example exited with code 1',
      hint: 'read the log',
      evidence: [],
    };
    expect(withLfsHint(failure, [])).toBe(failure);
    expect(withLfsHint(failure, facts.lfsPointers!).hint).toBe(
      '1 file is a Git LFS pointer, not its content (weights/model.pt): the exported tree has no LFS objects; download them in setup (e.g. git lfs pull in a clone, or from the model hub) before the example reads them. Otherwise: read the log',
    );
  });
});

describe('bakeoff.lock', () => {
  it('round-trips, sorted by candidate, and refuses missing or foreign files with a hint', async () => {
    const dir = tmp('mlship-lock-');
    const file = path.join(dir, 'bakeoff.lock');
    const entry = {
      repo: './a',
      ref: 'HEAD',
      commit: 'a'.repeat(40),
      baseImage: 'python:3.11-slim',
      imageTag: 't',
      imageId: 'sha256:x',
      pipFreeze: ['pip==24.0'],
    };
    const text = lockText({ lockVersion: LOCK_VERSION, candidates: { zeta: entry, alpha: entry } });
    expect(Object.keys(JSON.parse(text).candidates)).toEqual(['alpha', 'zeta']);
    writeFileSync(file, text);
    expect((await readLock(file)).candidates.zeta).toEqual(entry);
    await expect(readLock(path.join(dir, 'missing.lock'))).rejects.toThrow(
      /run `mlship bakeoff` once without --frozen|does not exist/,
    );
    writeFileSync(file, '{"lockVersion": 2, "candidates": {}}');
    await expect(readLock(file)).rejects.toBeInstanceOf(UsageError);
  });
});

describe('clone cache', () => {
  it('resolves refs to commits, exports each commit once, and needs no fetch for a cached commit', async () => {
    const repo = tmp('mlship-repo-');
    writeFileSync(path.join(repo, 'a.txt'), 'one\n');
    const first = commitAll(repo, 'one');
    git(repo, ['tag', 'v1']);
    writeFileSync(path.join(repo, 'a.txt'), 'two\n');
    git(repo, ['commit', '-q', '-am', 'two']);
    const second = git(repo, ['rev-parse', 'HEAD']);
    const cache = tmp('mlship-cache-');
    const calls: string[] = [];
    const real = createGit();
    const counting = {
      ...real,
      mirror: async (r: string, m: string) => {
        calls.push('mirror');
        return real.mirror(r, m);
      },
    };
    const head = await prepareSource(counting, cache, repo, '/', 'HEAD');
    expect(head.commit).toBe(second);
    const tag = await prepareSource(counting, cache, repo, '/', 'v1');
    expect(tag.commit).toBe(first);
    expect(readFileSync(path.join(tag.contextDir, 'src', 'a.txt'), 'utf8')).toBe('one\n');
    expect(readFileSync(path.join(head.contextDir, 'src', 'a.txt'), 'utf8')).toBe('two\n');
    calls.length = 0;
    const frozen = await prepareSource(counting, cache, repo, '/', 'whatever', first);
    expect(frozen.commit).toBe(first);
    expect(calls).toEqual([]);
    await expect(prepareSource(counting, cache, repo, '/', 'no-such-branch')).rejects.toThrow(
      /unknown revision/,
    );
  });
});

describe('mlship bakeoff (CLI)', () => {
  beforeAll(() => {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'ignore' });
  }, 120_000);

  it('--help lists the flags and examples', () => {
    const r = spawnSync(process.execPath, ['bin/mlship.js', 'bakeoff', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    for (const flag of [
      '--out',
      '--cache-dir',
      '--matrix',
      '--base-image',
      '--concurrency',
      '--frozen',
      '--plan',
      '--only',
    ]) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toContain('Examples:');
  });

  it('--plan resolves every candidate of real git repos and prints the Dockerfiles, without an engine', () => {
    const { dir, commits } = bakeoffFixture();
    const r = spawnSync(
      process.execPath,
      [
        path.resolve('bin/mlship.js'),
        '--json',
        'bakeoff',
        '--plan',
        '--cache-dir',
        path.join(dir, 'cache'),
        '--base-image',
        'local/py:3.11',
      ],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, DOCKER_HOST: 'tcp://127.0.0.1:1' } },
    );
    expect(r.status, r.stderr).toBe(0);
    const { plans } = JSON.parse(r.stdout) as {
      plans: { name: string; commit: string; dockerfile: string }[];
    };
    expect(plans.map((p) => p.name)).toEqual(['ok', 'deps-fail', 'hang', 'oom', 'no-output']);
    for (const p of plans) {
      expect(p.commit).toBe(commits[p.name]);
      expect(p.dockerfile).toMatch(/^FROM local\/py:3\.11$/m);
    }
    expect(plans.find((p) => p.name === 'deps-fail')!.dockerfile).toContain(
      'pip install -r requirements.txt',
    );
  });

  it('an impossible combination is refused before anything is built, exit 2, with alternatives', () => {
    const { dir } = bakeoffFixture();
    writeFileSync(
      path.join(dir, 'bakeoff.yaml'),
      'candidates:\n  old:\n    repo: ./candidates/ok\n    framework: torch\n    framework_version: "2.1.2"\n    python: "3.12"\n    run: python example.py\n',
    );
    const r = spawnSync(
      process.execPath,
      [path.resolve('bin/mlship.js'), 'bakeoff', '--plan', '--cache-dir', path.join(dir, 'cache')],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/impossible framework\/CUDA\/Python combinations/);
    expect(r.stderr).toMatch(/nearest valid: python "3\.11" with torch 2\.1\.2/);
  });

  it('a broken config exits 2 with located problems', () => {
    const dir = tmp('mlship-cli-');
    writeFileSync(
      path.join(dir, 'bakeoff.yaml'),
      'candidates:\n  a:\n    repo: ./a\n    run: x\n    gpus: lots\n',
    );
    const r = spawnSync(process.execPath, [path.resolve('bin/mlship.js'), 'bakeoff'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bakeoff\.yaml:5:\d+ candidates\.a\.gpus:/);
  });
});

describe('mlship bakeoff with a (fake) nvidia-smi', () => {
  function fakeNvidiaSmi(script: string): string {
    const bin = tmp('mlship-fake-smi-');
    writeFileSync(path.join(bin, 'nvidia-smi'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    return bin;
  }

  function planWith(bin: string, candidate: string) {
    const { dir } = bakeoffFixture();
    writeFileSync(
      path.join(dir, 'bakeoff.yaml'),
      `candidates:\n  gpu:\n    repo: ./candidates/ok\n    run: python example.py\n${candidate}`,
    );
    return spawnSync(
      process.execPath,
      [path.resolve('bin/mlship.js'), '--json', 'bakeoff', '--plan', '--cache-dir', path.join(dir, 'cache')],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } },
    );
  }

  it('explains a driver too old for the chosen CUDA before anything runs (exit 3)', () => {
    const bin = fakeNvidiaSmi('echo "0, NVIDIA A10G, 470.57.02, 23028"');
    const r = planWith(
      bin,
      '    framework: torch\n    framework_version: "2.4.1"\n    cuda: "12.4"\n    python: "3.11"\n    gpus: 1\n',
    );
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/NVIDIA driver is too old/);
    expect(r.stderr).toMatch(
      /CUDA 12\.4 needs NVIDIA driver >= 525\.60\.13 .*this host has 470\.57\.02; this driver supports CUDA up to 11\.3/,
    );
  });

  it('cuda auto picks what the driver supports', () => {
    const bin = fakeNvidiaSmi('echo "0, NVIDIA A10G, 525.85.12, 23028"');
    const r = planWith(
      bin,
      '    framework: torch\n    framework_version: "2.4.1"\n    python: "3.11"\n    gpus: 1\n',
    );
    expect(r.status, r.stderr).toBe(0);
    const plan = (JSON.parse(r.stdout) as { plans: { plan: { cuda: string; baseImage: string } }[] })
      .plans[0]!.plan;
    expect(plan.cuda).toBe('11.8');
    expect(plan.baseImage).toBe('python:3.11-slim');
  });

  it('a GPU candidate on a host whose nvidia-smi fails is a host problem, found before running', () => {
    const bin = fakeNvidiaSmi(
      'echo "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver." >&2; exit 9',
    );
    const r = planWith(bin, '    gpus: 1\n');
    expect(r.status, r.stderr).toBe(0);
    const p = (JSON.parse(r.stdout) as { plans: { failure: { category: string; origin: string } }[] })
      .plans[0]!;
    expect(p.failure).toMatchObject({ category: 'host_gpu_unavailable', origin: 'host' });
  });
});

describe('clone failures through the CLI', () => {
  it('a repo that does not exist and a ref that does not exist are classified, not fatal', () => {
    const { dir } = bakeoffFixture();
    writeFileSync(
      path.join(dir, 'bakeoff.yaml'),
      [
        'candidates:',
        '  gone: { repo: ./candidates/does-not-exist, run: python x.py }',
        '  badref: { repo: ./candidates/ok, ref: v9.9, run: python x.py }',
        '  fine: { repo: ./candidates/ok, run: python example.py }',
      ].join('\n'),
    );
    const r = spawnSync(
      process.execPath,
      [path.resolve('bin/mlship.js'), '--json', 'bakeoff', '--plan', '--cache-dir', path.join(dir, 'cache')],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const plans = (
      JSON.parse(r.stdout) as {
        plans: { name: string; failure: { category: string; origin: string } | null }[];
      }
    ).plans;
    expect(plans.map((p) => [p.name, p.failure?.category ?? 'ok', p.failure?.origin ?? '-'])).toEqual([
      ['gone', 'clone_failed', 'candidate'],
      ['badref', 'clone_failed', 'config'],
      ['fine', 'ok', '-'],
    ]);
  });
});
