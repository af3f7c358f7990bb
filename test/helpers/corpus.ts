// The shared corpus of real-world files lives beside the project (../shared/corpus).
// On CI it must be there; locally a missing corpus skips with a reason.

import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { requires } from './requires.js';

export const CORPUS = path.resolve(process.cwd(), '..', 'shared', 'corpus');

export function corpusFiles(sub: string, ext: RegExp): string[] {
  const dir = path.join(CORPUS, sub);
  if (!requires('the shared corpus', existsSync(dir), `${dir}: clone the project beside shared/`)) return [];
  return readdirSync(dir)
    .filter((f) => ext.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}
