// A golden file: the expected text a human reviews in a diff. The test compares with it, or,
// with UPDATE_GOLDEN=1, writes it (updating goldens is explicit, never a side effect).

import { readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';

export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1';

export function expectGolden(file: string, actual: string): void {
  if (UPDATE_GOLDEN) {
    writeFileSync(file, actual);
    return;
  }
  expect(actual, `${file} (regenerate with UPDATE_GOLDEN=1)`).toBe(readFileSync(file, 'utf8'));
}
