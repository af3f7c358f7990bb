// Expected outputs: glob matching and copying out of a container archive (a real tar).

import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  archiveRoot,
  collectOutputs,
  globToRegExp,
  readContainerFiles,
} from '../../../src/core/bakeoff/outputs.js';

function tarOf(files: Record<string, string>): Promise<Readable> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name }, content);
  pack.finalize();
  return Promise.resolve(pack as unknown as Readable);
}

describe('globs', () => {
  it('matches *, ** and ? like a shell', () => {
    const re = globToRegExp('/w/out/**/*.png');
    expect(re.test('/w/out/a.png')).toBe(true);
    expect(re.test('/w/out/x/y/a.png')).toBe(true);
    expect(re.test('/w/out/a.jpg')).toBe(false);
    expect(globToRegExp('/w/out/*.txt').test('/w/out/sub/a.txt')).toBe(false);
    expect(globToRegExp('/w/r?.txt').test('/w/r1.txt')).toBe(true);
    expect(globToRegExp('/w/[ab].txt').test('/w/b.txt')).toBe(true);
    expect(globToRegExp('/w/a+b(1).txt').test('/w/a+b(1).txt')).toBe(true);
  });

  it('archives only the deepest fixed directory of a pattern', () => {
    expect(archiveRoot('out/*.txt', '/workspace/repo')).toEqual({
      absolute: '/workspace/repo/out/*.txt',
      root: '/workspace/repo/out',
      literal: false,
    });
    expect(archiveRoot('/tmp/result.json', '/workspace/repo')).toMatchObject({
      root: '/tmp/result.json',
      literal: true,
    });
  });
});

describe('collectOutputs', () => {
  it('copies matching files, keeps repo-relative paths, and reports patterns that matched nothing', async () => {
    const dest = mkdtempSync(path.join(os.tmpdir(), 'mlship-outputs-'));
    const requested: string[] = [];
    const archive = async (p: string) => {
      requested.push(p);
      if (p === '/workspace/repo/out')
        return tarOf({ 'out/a.txt': 'A', 'out/b.log': 'B', 'out/deep/c.txt': 'C' });
      if (p === '/tmp/metrics.json') return tarOf({ 'metrics.json': '{"f1":0.9}' });
      return undefined;
    };
    const result = await collectOutputs(
      ['out/*.txt', 'out/**/*.txt', '/tmp/metrics.json', 'missing/*.png'],
      '/workspace/repo',
      archive,
      dest,
    );
    expect(result.map((r) => [r.pattern, r.files.map((f) => f.savedAs)])).toEqual([
      ['out/*.txt', ['out/a.txt']],
      ['out/**/*.txt', ['out/a.txt', 'out/deep/c.txt']],
      ['/tmp/metrics.json', ['_root/tmp/metrics.json']],
      ['missing/*.png', []],
    ]);
    expect(readFileSync(path.join(dest, 'out/deep/c.txt'), 'utf8')).toBe('C');
    expect(readFileSync(path.join(dest, '_root/tmp/metrics.json'), 'utf8')).toBe('{"f1":0.9}');
    expect(requested).toEqual(['/workspace/repo/out', '/tmp/metrics.json', '/workspace/repo/missing']);
  });

  it('reads the files asked for out of one directory archive (the pip freeze and the GPU probe)', async () => {
    const files = await readContainerFiles(
      async () =>
        tarOf({
          'mlship/pip-freeze.txt': 'numpy==1.26.4\npip==24.0\n',
          'mlship/gpu-probe.json': '{"frameworks": []}',
          'mlship/constraints.txt': 'torch==2.15.0\n',
        }),
      '/opt/mlship',
      ['pip-freeze.txt', 'gpu-probe.json', 'absent.txt'],
    );
    expect(files).toEqual({
      'pip-freeze.txt': 'numpy==1.26.4\npip==24.0\n',
      'gpu-probe.json': '{"frameworks": []}',
    });
    expect(await readContainerFiles(async () => undefined, '/x', ['a'])).toEqual({});
  });
});
