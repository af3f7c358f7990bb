// The false-positive corpus: Dockerfiles where each ML rule must stay silent,
// one directory per rule (fixtures/optimize-silent/<rule>/), each file saying
// in its first comment why. rules-ml.test.ts has the cases each rule reports.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { lintDockerfile } from '../../../src/core/optimize/lint.js';
import { parseDockerfile } from '../../../src/core/optimize/parse.js';
import { ML_RULE_IDS } from '../../../src/core/optimize/rules/ml.js';
import { RULE_IDS } from '../../../src/core/optimize/rules.js';

const ROOT = path.resolve('fixtures/optimize-silent');
const cases = readdirSync(ROOT, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort()
  .flatMap((rule) =>
    readdirSync(path.join(ROOT, rule))
      .sort()
      .map((file) => ({ rule, file, text: readFileSync(path.join(ROOT, rule, file), 'utf8') })),
  );

describe('the false-positive corpus', () => {
  it('has a directory per ML rule, each with cases', () => {
    const rules = [...new Set(cases.map((c) => c.rule))];
    expect(rules.every((r) => RULE_IDS.includes(r))).toBe(true);
    expect(rules).toEqual(expect.arrayContaining(ML_RULE_IDS));
    expect(cases.length).toBeGreaterThanOrEqual(50);
  });

  it.each(cases)('$rule stays silent on $file', ({ rule, file, text }) => {
    const df = parseDockerfile(text, file);
    const hits = lintDockerfile(df, {}).findings.filter((f) => f.rule === rule);
    expect(hits.map((h) => `${h.line}: ${h.message}`)).toEqual([]);
  });
});
