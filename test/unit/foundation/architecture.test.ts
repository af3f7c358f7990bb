// The layering in docs/architecture.md, enforced: cli → core → {generators,
// adapters, config, io}; vendor SDKs only in adapters; core free of the process.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

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
      const bad = valueImports(f).filter((i) => /^(dockerode|@aws-sdk\/|execa$)/.test(i));
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
});
