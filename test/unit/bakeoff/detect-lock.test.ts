// Repo inspection (does it compile CUDA?), the lock file and the clone cache, on real
// git fixture repos (no engine needed). The command line: test/tools/bakeoff-cli.test.ts.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGit } from '../../../src/adapters/git.js';
import { inspectRepo } from '../../../src/core/bakeoff/detect.js';
import { LOCK_VERSION, lockText, readLock } from '../../../src/core/bakeoff/lock.js';
import { withLfsHint } from '../../../src/core/bakeoff/run-candidate.js';
import { prepareSource } from '../../../src/core/bakeoff/source.js';
import { UsageError } from '../../../src/io/errors.js';
import { commitAll, git } from '../../helpers/bakeoff-fixtures.js';

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
