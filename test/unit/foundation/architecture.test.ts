// The layering in docs/architecture.md, enforced: cli → core → {generators,
// adapters, config, io}; vendor SDKs only in adapters; core free of the process.

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tsFiles as files, importCycles } from '../../helpers/import-graph.js';

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
}

/** Imports that bring code, not only types (`import type` is erased at build time). */
function valueImports(file: string): string[] {
  const text = readFileSync(file, 'utf8').replace(/^import type [^;]+;/gm, '');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
}

const src = files('src');

describe('architecture', () => {
  it('only adapters import dockerode, the AWS SDK or execa (types alone may be imported anywhere)', () => {
    for (const f of src.filter((f) => !f.startsWith('src/adapters/'))) {
      const bad = valueImports(f).filter((i) => /^(dockerode|@aws-sdk\/|@smithy\/|execa$)/.test(i));
      expect(bad, f).toEqual([]);
    }
  });

  it('core never touches the terminal or colour libraries', () => {
    for (const f of src.filter((f) => f.startsWith('src/core/'))) {
      const text = readFileSync(f, 'utf8');
      expect(
        imports(f).filter((i) => /^(chalk|@inquirer\/|inquirer|listr2|commander)/.test(i)),
        f,
      ).toEqual([]);
      expect(
        /\bconsole\.|process\.(exit|stdout|stderr|stdin)/.test(text),
        `${f} uses console/process streams`,
      ).toBe(false);
    }
  });

  it('generators import only config types and other generators', () => {
    for (const f of src.filter((f) => f.startsWith('src/generators/'))) {
      for (const i of imports(f).filter((i) => i.startsWith('.'))) {
        const target = path.normalize(path.join(path.dirname(f), i));
        expect(
          target.startsWith('src/generators') || target.startsWith('src/config'),
          `${f} imports ${i}`,
        ).toBe(true);
      }
    }
  });

  it('nothing outside cli imports cli, and nothing calls process.exit but main and signals', () => {
    for (const f of src.filter((f) => !f.startsWith('src/cli/'))) {
      expect(
        imports(f).some((i) => i.includes('/cli/')),
        f,
      ).toBe(false);
    }
    for (const f of src.filter((f) => !['src/cli/main.ts', 'src/io/signals.ts'].includes(f))) {
      // Code only: generated commands inside string literals may mention process.exit.
      const code = readFileSync(f, 'utf8').replace(/(['"`])(?:\\.|(?!\1)[^\\])*\1/g, '""');
      expect(/process\.exit\(/.test(code), f).toBe(false);
    }
  });

  it('has no import cycles (type imports and re-exports count)', () => {
    expect(importCycles('src')).toEqual([]);
  });

  it('the cycle check sees a cycle added to a copy of the tree', () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-arch-'));
    try {
      cpSync('src', tmp, { recursive: true });
      // io/clock.ts imports nothing; make it import errors.ts, which imports it back (types only).
      const clock = path.join(tmp, 'io/clock.ts');
      writeFileSync(clock, `import type { ExitCode } from './errors.js';\n${readFileSync(clock, 'utf8')}`);
      const errors = path.join(tmp, 'io/errors.ts');
      writeFileSync(errors, `import type { Clock } from './clock.js';\n${readFileSync(errors, 'utf8')}`);
      expect(importCycles(tmp)).toEqual([['io/clock.ts', 'io/errors.ts']]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('adapters implement interfaces core declares: from core they import only types of its port modules', () => {
    for (const f of src.filter((f) => f.startsWith('src/adapters/'))) {
      for (const i of imports(f).filter((i) => i.includes('/core/'))) {
        expect(/\/core\/[a-z-]+\/(deps|[a-z-]+-apis)\.js$/.test(i), `${f} imports ${i}`).toBe(true);
        expect(valueImports(f).includes(i), `${f} imports code from ${i}`).toBe(false);
      }
    }
  });

  it('no dockerode type reaches core or cli: the engine interface is complete', () => {
    for (const f of src.filter((f) => !f.startsWith('src/adapters/'))) {
      expect(
        imports(f).filter((i) => i === 'dockerode'),
        f,
      ).toEqual([]);
      expect(
        /\bas (Partial<)?BakeoffEngine\b|getArchive !== 'function'/.test(readFileSync(f, 'utf8')),
        f,
      ).toBe(false);
    }
  });
});
