import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { listContext, packContext } from '../../../src/adapters/docker/build-context.js';

let dir: string;
function tree(files: Record<string, string>): string {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-ctx-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  return dir;
}
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function tarNames(stream: NodeJS.ReadableStream): Promise<Record<string, string>> {
  const extract = tar.extract();
  const out: Record<string, string> = {};
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, s, next) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: unknown) => chunks.push(c as Buffer));
      s.on('end', () => {
        out[`${header.name}${header.type === 'directory' ? '/' : ''}`] = Buffer.concat(chunks).toString();
        next();
      });
      s.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  stream.pipe(extract);
  await done;
  return out;
}

describe('build context', () => {
  it('honours .dockerignore (globs, directories, negation) and always sends the Dockerfile', async () => {
    tree({
      Dockerfile: 'FROM x',
      '.dockerignore': '# comment\n.git\n*.pt\ndata/\n!data/keep.txt\nDockerfile\n',
      'app.py': 'print(1)',
      'model.pt': 'weights',
      'sub/model.pt': 'weights',
      'data/big.bin': 'x',
      'data/keep.txt': 'keep',
      '.git/HEAD': 'ref',
    });
    const names = (await listContext(dir)).map((e) => e.name);
    expect(names).toContain('Dockerfile');
    expect(names).toContain('.dockerignore');
    expect(names).toContain('app.py');
    expect(names).toContain('data/keep.txt');
    expect(names).toContain('sub/model.pt'); // "*.pt" matches the root only, as in Docker
    expect(names).not.toContain('model.pt');
    expect(names).not.toContain('data/big.bin');
    expect(names.some((n) => n.startsWith('.git'))).toBe(false);
  });

  it('packs files with their content and symlinks as links', async () => {
    tree({ Dockerfile: 'FROM x', 'a/b.txt': 'hello' });
    symlinkSync('a/b.txt', path.join(dir, 'link'));
    const entries = await listContext(dir);
    const files = await tarNames(packContext(dir, entries));
    expect(files['a/b.txt']).toBe('hello');
    expect(files.Dockerfile).toBe('FROM x');
    expect(Object.keys(files)).toContain('a/');
    expect(entries.find((e) => e.name === 'link')?.type).toBe('symlink');
  });
});
