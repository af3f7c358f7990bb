// `wrap --from-bakeoff`: the locked pins as requirements (with the torch index of the
// build), and the refusals that say what to run first.

import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exec } from '../../../src/adapters/exec.js';
import { createGit } from '../../../src/adapters/git.js';
import { builtinMatrix } from '../../../src/core/bakeoff/matrix.js';
import { fromBakeoff, lockedRequirements } from '../../../src/core/wrap/from-bakeoff.js';
import { UsageError } from '../../../src/io/errors.js';

describe('wrap --from-bakeoff', () => {
  it('pins the freeze (not pip, setuptools, wheel or the repo itself), with the CUDA index of a torch build', () => {
    const text = lockedRequirements(
      'detr',
      `sha256:${'ab'.repeat(32)}`,
      [
        'pip==24.0',
        'setuptools==75.1.0',
        'numpy==2.4.6',
        'torch==2.15.0+cu132',
        'detr @ file:///workspace/repo',
        'Pillow==11.0.0',
      ],
      builtinMatrix(),
    );
    expect(text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      '--extra-index-url https://download.pytorch.org/whl/cu132',
      'numpy==2.4.6',
      'torch==2.15.0+cu132',
      'Pillow==11.0.0',
    ]);
    expect(text).toContain('image ababababab');
    expect(lockedRequirements('x', 'sha256:1', ['torch==2.15.0+cpu'], builtinMatrix())).toContain(
      '--extra-index-url https://download.pytorch.org/whl/cpu',
    );
    expect(lockedRequirements('x', 'sha256:1', ['six==1.16.0'], builtinMatrix())).not.toContain('index-url');
  });

  it('no such candidate, or no lock yet: a usage error that says what to run', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-from-bakeoff-'));
    writeFileSync(path.join(dir, 'bakeoff.yaml'), 'candidates:\n  a:\n    repo: ./a\n    run: python x.py\n');
    const deps = { git: createGit(exec) };
    const o = { cwd: dir, cacheDir: path.join(dir, 'cache') };
    await expect(fromBakeoff({ ...o, candidate: 'b' }, deps)).rejects.toThrow(/no candidate "b".*/);
    const noLock = await fromBakeoff({ ...o, candidate: 'a' }, deps).catch((e) => e);
    expect(noLock).toBeInstanceOf(UsageError);
    expect((noLock as UsageError).hint).toMatch(/run `mlship bakeoff` first/);
    writeFileSync(path.join(dir, 'bakeoff.lock'), JSON.stringify({ lockVersion: 1, candidates: {} }));
    await expect(fromBakeoff({ ...o, candidate: 'a' }, deps)).rejects.toThrow(/has no entry for a/);
  });
});
