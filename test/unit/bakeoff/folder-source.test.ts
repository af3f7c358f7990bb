import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GitClient } from '../../../src/adapters/git.js';
import { GitError } from '../../../src/adapters/git.js';
import { hashFolder, prepareSource, shortCommit } from '../../../src/core/bakeoff/source.js';

// A plain folder never touches git: every call fails the test.
const noGit = new Proxy(
  {},
  { get: () => () => Promise.reject(new Error('git must not be used for a folder')) },
) as GitClient;

function folder(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-folder-'));
  mkdirSync(path.join(dir, 'pkg'));
  writeFileSync(path.join(dir, 'example.py'), 'print("hi")\n');
  writeFileSync(path.join(dir, 'pkg', 'model.py'), 'x = 1\n');
  return dir;
}

describe('candidates from plain folders (not git repositories)', () => {
  it('are pinned by a content hash that changes with content and the executable bit only', async () => {
    const dir = folder();
    const h1 = await hashFolder(dir);
    expect(h1).toMatch(/^[0-9a-f]{64}$/);
    expect(await hashFolder(dir)).toBe(h1);
    writeFileSync(path.join(dir, 'pkg', 'model.py'), 'x = 2\n');
    const h2 = await hashFolder(dir);
    expect(h2).not.toBe(h1);
    chmodSync(path.join(dir, 'example.py'), 0o755);
    expect(await hashFolder(dir)).not.toBe(h2);
  });

  it('are copied into the cache once per content, and --frozen refuses a changed folder', async () => {
    const dir = folder();
    const cache = mkdtempSync(path.join(os.tmpdir(), 'mlship-cache-'));
    const src = await prepareSource(noGit, cache, dir, '/', 'HEAD');
    expect(src.commit).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(shortCommit(src.commit)).toBe(src.commit.slice(7, 19));
    expect(readFileSync(path.join(src.contextDir, 'src', 'pkg', 'model.py'), 'utf8')).toBe('x = 1\n');
    const again = await prepareSource(noGit, cache, dir, '/', 'HEAD', src.commit);
    expect(again.contextDir).toBe(src.contextDir);
    writeFileSync(path.join(dir, 'example.py'), 'print("changed")\n');
    const err = await prepareSource(noGit, cache, dir, '/', 'HEAD', src.commit).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as GitError).message).toMatch(/changed since bakeoff\.lock/);
  });

  it('a missing folder is a clone failure that names the path', async () => {
    const err = await prepareSource(noGit, '/tmp', './nope', '/tmp/does-not-exist', 'HEAD').catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GitError);
    expect((err as GitError).stderr).toContain('/tmp/does-not-exist/nope');
  });
});
