// Candidates whose repository has submodules: real git repositories on disk, pinned
// by their gitlinks, exported into the candidate's tree like `git clone --recursive`.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGit, GitError } from '../../../src/adapters/git.js';
import { prepareSource, submoduleLocation } from '../../../src/core/bakeoff/source.js';
import { addSubmodule, commitAll, git } from '../../helpers/bakeoff-fixtures.js';

function repo(root: string, name: string, files: Record<string, string>): string {
  const dir = path.join(root, name);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), text);
  }
  commitAll(dir);
  return dir;
}

describe('candidates with submodules', () => {
  it('exports each submodule (nested too) at the commit its gitlink pins, not its branch head', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'mlship-submodules-'));
    const inner = repo(root, 'inner', { 'weights.txt': 'v1\n' });
    const lib = repo(root, 'lib', { 'model.py': 'NAME = "lib"\n' });
    addSubmodule(lib, '../inner', 'vendor/inner'); // relative URL
    git(lib, ['commit', '-q', '-m', 'inner']);
    const top = repo(root, 'top', { 'example.py': 'import lib\n' });
    addSubmodule(top, lib, 'third_party/lib'); // absolute path
    git(top, ['commit', '-q', '-m', 'lib']);
    // Moves on after the pin: the export must keep the pinned content.
    writeFileSync(path.join(inner, 'weights.txt'), 'v2\n');
    git(inner, ['commit', '-q', '-am', 'v2']);

    const cache = mkdtempSync(path.join(os.tmpdir(), 'mlship-cache-'));
    const src = await prepareSource(createGit(), cache, top, '/', 'main');
    const tree = path.join(src.contextDir, 'src');
    expect(readFileSync(path.join(tree, 'example.py'), 'utf8')).toBe('import lib\n');
    expect(readFileSync(path.join(tree, 'third_party/lib/model.py'), 'utf8')).toBe('NAME = "lib"\n');
    expect(readFileSync(path.join(tree, 'third_party/lib/vendor/inner/weights.txt'), 'utf8')).toBe('v1\n');
    expect(existsSync(path.join(tree, 'third_party/lib/.git'))).toBe(false);

    // A tree cached by an older mlship (no marker, no submodules) is exported again, once.
    rmSync(path.join(src.contextDir, '.mlship-tree'));
    rmSync(path.join(tree, 'third_party'), { recursive: true });
    await prepareSource(createGit(), cache, top, '/', src.commit);
    expect(readFileSync(path.join(tree, 'third_party/lib/model.py'), 'utf8')).toBe('NAME = "lib"\n');
    const again = statSync(path.join(tree, 'example.py')).mtimeMs;
    await prepareSource(createGit(), cache, top, '/', src.commit);
    expect(statSync(path.join(tree, 'example.py')).mtimeMs).toBe(again);
  });

  it('a submodule that cannot be fetched fails the candidate with its path and location', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'mlship-submodules-'));
    const lib = repo(root, 'lib', { 'a.py': '' });
    const top = repo(root, 'top', { 'example.py': '' });
    addSubmodule(top, lib, 'lib');
    git(top, ['commit', '-q', '-m', 'lib']);
    git(top, ['config', '-f', '.gitmodules', 'submodule.lib.url', path.join(root, 'gone')]);
    git(top, ['commit', '-q', '-am', 'moved']);
    const cache = mkdtempSync(path.join(os.tmpdir(), 'mlship-cache-'));
    const err = await prepareSource(createGit(), cache, top, '/', 'main').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as GitError).message).toMatch(
      /^submodule lib \(.*\/gone\) at [0-9a-f]{12}: git clone .* failed$/,
    );
    expect((err as GitError).submodule).toMatchObject({ path: 'lib', location: path.join(root, 'gone') });
  });
});

describe('submoduleLocation', () => {
  it.each([
    [
      'https://github.com/org/other.git',
      'https://github.com/org/top.git',
      'https://github.com/org/other.git',
    ],
    ['../other.git', 'https://github.com/org/top.git', 'https://github.com/org/other.git'],
    ['./nested.git', 'https://github.com/org/top', 'https://github.com/org/top/nested.git'],
    ['../../x/y.git', 'ssh://git@host/a/b/top.git', 'ssh://git@host/a/x/y.git'],
    ['../other.git', 'git@github.com:org/top.git', 'git@github.com:org/other.git'],
    ['../other', '/srv/repos/top', '/srv/repos/other'],
    ['./sub', '/srv/repos/top', '/srv/repos/top/sub'],
  ])('%s from %s is %s', (url, parent, expected) => {
    expect(submoduleLocation(url, parent)).toBe(expected);
  });
});
