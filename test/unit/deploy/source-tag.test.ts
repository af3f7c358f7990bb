import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sourceTag } from '../../../src/adapters/git.js';

function repo(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-tag-'));
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', dir, '-c', 'user.email=t@t', '-c', 'user.name=t', ...args], {
      stdio: 'ignore',
    });
  git('init', '-q');
  writeFileSync(path.join(dir, 'app.py'), 'print(1)\n');
  git('add', '-A');
  git('commit', '-q', '-m', 'one');
  return dir;
}

describe('image tags from the source', () => {
  it('clean tree: the commit; uncommitted changes: a stable content-hash suffix', async () => {
    const dir = repo();
    const clean = await sourceTag(dir);
    expect(clean).toEqual({ tag: expect.stringMatching(/^[0-9a-f]{12}$/), dirty: false });
    writeFileSync(path.join(dir, 'app.py'), 'print(2)\n');
    const dirty = await sourceTag(dir);
    expect(dirty?.tag).toMatch(new RegExp(`^${clean!.tag}-dirty-[0-9a-f]{8}$`));
    expect(await sourceTag(dir)).toEqual(dirty); // same state, same tag: re-running changes nothing
    writeFileSync(path.join(dir, 'app.py'), 'print(3)\n');
    expect((await sourceTag(dir))?.tag).not.toBe(dirty?.tag);
    writeFileSync(path.join(dir, 'app.py'), 'print(1)\n');
    writeFileSync(path.join(dir, 'new.py'), 'x\n'); // untracked files count too
    expect((await sourceTag(dir))?.dirty).toBe(true);
    rmSync(path.join(dir, 'new.py'));
    expect(await sourceTag(dir)).toEqual(clean);
  });

  it("mlship's own generated folders do not make the tree dirty", async () => {
    const dir = repo();
    const clean = await sourceTag(dir);
    mkdirSync(path.join(dir, 'deploy', 'ecs', 'task-definitions'), { recursive: true });
    writeFileSync(path.join(dir, 'deploy', 'ecs', '.mlship-generated'), 'x\n');
    writeFileSync(path.join(dir, 'deploy', 'ecs', 'task-definitions', 'a.json'), '{}\n');
    expect(await sourceTag(dir)).toEqual(clean);
  });

  it('outside a git checkout there is no source tag', async () => {
    expect(await sourceTag(mkdtempSync(path.join(os.tmpdir(), 'mlship-nogit-')))).toBeUndefined();
  });
});
