// Golden lint output and rewrites for every fixture. Goldens change only with
// UPDATE_GOLDEN=1, so a change in behaviour shows up as a reviewable diff.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type OptimizeTarget, planRewrite, runLint } from '../../../src/core/optimize/optimize.js';
import { DockerfileParseError } from '../../../src/core/optimize/parse.js';
import { expectGolden, fixtures } from './helpers.js';

function target(f: ReturnType<typeof fixtures>[number]): OptimizeTarget {
  return {
    dockerfile: 'Dockerfile',
    dockerfileAbs: path.join(f.context, 'Dockerfile'),
    contextDir: f.context,
    cwd: f.context,
    ...(f.largeFileBytes ? { largeFileBytes: f.largeFileBytes } : {}),
    ...(f.slimBase ? { slimBase: true } : {}),
  };
}

describe.each(fixtures())('fixture $name', (f) => {
  it('lints without crashing, every finding on a real line', async () => {
    let text: string;
    try {
      const report = await runLint(target(f), (await import('./helpers.js')).fsDeps);
      const lines = (await import('node:fs'))
        .readFileSync(path.join(f.context, 'Dockerfile'), 'utf8')
        .split('\n').length;
      for (const x of report.findings) {
        expect(x.line).toBeGreaterThanOrEqual(1);
        expect(x.line).toBeLessThanOrEqual(lines);
        expect(x.file).toBe('Dockerfile');
      }
      text = report.findings
        .map((x) => `${x.file}:${x.line} ${x.rule}: ${x.message}\n  fix: ${x.fix}`)
        .join('\n');
      text += `\n(${report.findings.length} findings, ${report.silenced} silenced)\n`;
    } catch (e) {
      expect(e).toBeInstanceOf(DockerfileParseError);
      const err = e as DockerfileParseError;
      expect(err.exitCode).toBe(2);
      text = `error ${err.code} at line ${err.line}: ${err.message}\n`;
    }
    expectGolden(path.join(f.dir, 'expected.lint.txt'), text);
  });
});

// The malformed fixture has nothing to rewrite: it stops at the parse error above.
describe.each(fixtures().filter((f) => f.name !== 'malformed'))('fixture $name rewrite', (f) => {
  it('rewrites to the golden Dockerfile and .dockerignore', async () => {
    const plan = await planRewrite(target(f), (await import('./helpers.js')).fsDeps);
    expectGolden(path.join(f.dir, 'expected.Dockerfile'), plan.dockerfile);
    const ignoreGolden = path.join(f.dir, 'expected.dockerignore');
    if (plan.dockerignore !== undefined || existsSync(ignoreGolden))
      expectGolden(ignoreGolden, plan.dockerignore ?? '');
    const report = [
      ...plan.changes.map((c) => `changed  ${c.line} [${c.rule}] ${c.description}`),
      ...plan.notDone.map((c) => `not done ${c.line} [${c.rule}] ${c.description}`),
      ...plan.excluded.map((x) => `excluded ${x.path} -> ${x.dest} (${x.why}, ${x.bytes} bytes)`),
      ...plan.instructions,
      ...plan.checks.map((c) => `check: ${c}`),
    ].join('\n');
    expectGolden(path.join(f.dir, 'expected.rewrite.txt'), `${report}\n`);
  });

  it('rewriting the rewrite changes nothing more (idempotent)', async () => {
    const { parseDockerfile } = await import('../../../src/core/optimize/parse.js');
    const { rewriteDockerfile } = await import('../../../src/core/optimize/rewrite.js');
    const first = await planRewrite(target(f), (await import('./helpers.js')).fsDeps);
    const again = rewriteDockerfile(parseDockerfile(first.dockerfile), {
      largeFileBytes: f.largeFileBytes,
      slimBase: f.slimBase ?? false,
    });
    expect(again.dockerfile).toBe(first.dockerfile);
  });

  it('the rewrite leaves no finding it could fix and did not report', async () => {
    const { lintDockerfile } = await import('../../../src/core/optimize/lint.js');
    const { parseDockerfile } = await import('../../../src/core/optimize/parse.js');
    const plan = await planRewrite(target(f), (await import('./helpers.js')).fsDeps);
    const fixable = [
      'source-before-deps',
      'pip-cache',
      'apt-lists-kept',
      'add-instead-of-copy',
      'consecutive-run',
      'build-tools-in-final',
      ...(f.slimBase ? ['base-not-slim'] : []),
    ];
    const reported = new Set(plan.notDone.map((n) => n.rule));
    const left = lintDockerfile(parseDockerfile(plan.dockerfile), { largeFileBytes: f.largeFileBytes })
      .findings.filter((x) => fixable.includes(x.rule) && !reported.has(x.rule))
      .map((x) => `${x.line}:${x.rule}`);
    expect(left).toEqual([]);
  });
});
