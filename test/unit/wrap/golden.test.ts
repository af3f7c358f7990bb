// Golden files: every service file generated for every case, reviewed in diffs.
// Update them deliberately with UPDATE_GOLDEN=1 npx vitest run --project unit test/unit/wrap.

import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateService, manifestFor } from '../../../src/core/wrap/wrap.js';
import { CASES } from './cases.js';

const GOLDEN = path.resolve('test/golden/wrap');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((n) => {
    const rel = prefix ? `${prefix}/${n}` : n;
    return statSync(path.join(dir, n)).isDirectory() ? listFiles(path.join(dir, n), rel) : [rel];
  });
}

describe.each(Object.entries(CASES))('golden service files: %s', (name, spec) => {
  const files = generateService(spec);
  const all = [
    ...files,
    { path: 'mlship-wrap.json', content: `${JSON.stringify(manifestFor(spec, {}), null, 2)}\n` },
  ];
  const dir = path.join(GOLDEN, name);

  if (UPDATE) {
    rmSync(dir, { recursive: true, force: true });
    for (const f of all) {
      mkdirSync(path.dirname(path.join(dir, f.path)), { recursive: true });
      writeFileSync(path.join(dir, f.path), f.content);
    }
  }

  it('generates exactly the golden set of files', () => {
    expect(all.map((f) => f.path).sort()).toEqual(listFiles(dir).sort());
  });

  it.each(all.map((f) => [f.path, f.content] as const))('%s matches its golden file', (file, content) => {
    expect(content, `regenerate with UPDATE_GOLDEN=1 if the change is intended`).toBe(
      readFileSync(path.join(dir, file), 'utf8'),
    );
  });

  it('is deterministic', () => {
    expect(generateService(spec)).toEqual(files);
  });
});
