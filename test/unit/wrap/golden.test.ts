// Golden files: every rendered service file for every case, reviewed in diffs. Files copied
// verbatim from templates/wrap are checked against their template instead of being stored once
// per case. Update deliberately with UPDATE_GOLDEN=1 npx vitest run --project unit test/unit/wrap.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateService, manifestFor } from '../../../src/core/wrap/wrap.js';
import { CASES } from './cases.js';

const GOLDEN = path.resolve('test/golden/wrap');
const TEMPLATES = path.resolve('templates/wrap');

/** The template a file is copied from as it is, if it is one. */
function staticSource(runtime: string, file: string): string | undefined {
  const p = path.join(TEMPLATES, runtime, file);
  return existsSync(p) ? p : undefined;
}
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
    // A fixed template version: the real one is a digest of templates/wrap, tested on its own.
    {
      path: 'mlship-wrap.json',
      content: `${JSON.stringify(manifestFor(spec, {}, '0.0.0+golden'), null, 2)}\n`,
    },
  ];
  const dir = path.join(GOLDEN, name);
  // Copied: a template of that path exists and the file is it (package-lock.json is a template
  // that gets the service's name, so it is rendered).
  const isCopy = (f: { path: string; content: string }) => {
    const source = staticSource(spec.runtime, f.path);
    return source !== undefined && readFileSync(source, 'utf8') === f.content;
  };
  const copied = all.filter(isCopy);
  const rendered = all.filter((f) => !isCopy(f));

  if (UPDATE) {
    rmSync(dir, { recursive: true, force: true });
    for (const f of rendered) {
      mkdirSync(path.dirname(path.join(dir, f.path)), { recursive: true });
      writeFileSync(path.join(dir, f.path), f.content);
    }
  }

  it('generates exactly the golden set of rendered files', () => {
    expect(rendered.map((f) => f.path).sort()).toEqual(listFiles(dir).sort());
  });

  it('copies the static templates verbatim (checked against templates/wrap, not stored per case)', () => {
    // A service with files has tests/test_media.py (and app/files.py) in place of the JSON tests.
    const pythonCopies = spec.media
      ? ['app/main.py', 'app/batching.py', 'app/files.py', 'app/media_api.py', 'tests/test_media.py']
      : ['app/main.py', 'app/batching.py', 'tests/test_service.py'];
    const expected = spec.runtime === 'python' ? pythonCopies : ['server.js'];
    expect(copied.map((f) => f.path)).toEqual(expect.arrayContaining(expected));
  });

  it.each(rendered.map((f) => [f.path, f.content] as const))(
    '%s matches its golden file',
    (file, content) => {
      expect(content, `regenerate with UPDATE_GOLDEN=1 if the change is intended`).toBe(
        readFileSync(path.join(dir, file), 'utf8'),
      );
    },
  );

  it('is deterministic', () => {
    expect(generateService(spec)).toEqual(files);
  });
});
