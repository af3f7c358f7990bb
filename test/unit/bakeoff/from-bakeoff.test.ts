// `wrap --from-bakeoff`: the locked pins as requirements (with the torch index of the
// build), the refusals that say what to run first, and a locked tree as wrap's user code
// (checked before writing as the service imports it: from the tree's root, dotted).

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Exec, type ExecOptions, exec } from '../../../src/adapters/exec.js';
import { createGit } from '../../../src/adapters/git.js';
import { builtinMatrix } from '../../../src/core/bakeoff/matrix.js';
import { fromBakeoff, lockedRequirements } from '../../../src/core/wrap/from-bakeoff.js';
import type { ProbeRequest } from '../../../src/core/wrap/probe.js';
import { runWrap } from '../../../src/core/wrap/wrap.js';
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

  it('a locked tree: every file under user/, the freeze as requirements, the entry checked from the root', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-from-bakeoff-'));
    const root = path.join(dir, 'tree');
    mkdirSync(path.join(root, 'pkg'), { recursive: true });
    writeFileSync(
      path.join(root, 'pkg', 'demo.py'),
      'from pkg.util import norm\n\ndef predict(payload):\n    return norm(payload)\n',
    );
    writeFileSync(path.join(root, 'pkg', 'util.py'), 'def norm(x):\n    return x\n');
    writeFileSync(path.join(dir, 'request.json'), '{"text": "café"}');
    // The project's Python, faked: it records what the pre-write check asks it to import.
    const asked: ProbeRequest[] = [];
    const python: Exec = async (_file: string, _args: string[], options?: ExecOptions) => {
      asked.push(JSON.parse(options?.input ?? '{}') as ProbeRequest);
      return {
        exitCode: 0,
        stdout: `${JSON.stringify({ python: '3.11.7', executable: 'python3', entry: { unavailable: 'text_unidecode' } })}\n`,
        stderr: '',
        notFound: false,
        timedOut: false,
      };
    };
    const r = await runWrap(
      {
        cwd: dir,
        entry: 'pkg/demo.py:predict',
        example: path.join(dir, 'request.json'),
        out: path.join(dir, 'svc'),
        name: 'textclf',
        baseImage: 'mlship-local/python:3.11-slim',
        userTree: { root, files: ['pkg/demo.py', 'pkg/util.py'], requirements: 'text-unidecode==1.3\n' },
        force: false,
        dryRun: false,
      },
      { exec: python },
    );
    expect(asked[0]!.entry).toEqual({ dir: root, module: 'pkg.demo', function: 'predict' });
    expect(r.checks?.unverified.join('\n')).toMatch(/imports text_unidecode/);
    expect(readFileSync(path.join(dir, 'svc', 'user', 'pkg', 'util.py'), 'utf8')).toContain('def norm');
    expect(readFileSync(path.join(dir, 'svc', 'requirements-user.txt'), 'utf8')).toBe(
      'text-unidecode==1.3\n',
    );
    expect(readFileSync(path.join(dir, 'svc', 'Dockerfile'), 'utf8')).toContain(
      'mlship-local/python:3.11-slim',
    );
    const manifest = JSON.parse(readFileSync(path.join(dir, 'svc', 'mlship-wrap.json'), 'utf8'));
    expect(JSON.stringify(manifest.settings)).toContain('pkg.demo');
  });
});
