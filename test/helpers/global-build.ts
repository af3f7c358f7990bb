// Tiers that run the built CLI need dist/ as current as src/: `npm test` builds first;
// a tier run on its own (`npx vitest run --project tools`) builds here when dist/ is
// missing or older than any source file, so no test ever runs a stale CLI.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function newest(dir: string): number {
  let t = 0;
  for (const n of readdirSync(dir)) {
    const p = path.join(dir, n);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs);
  }
  return t;
}

export function setup(): void {
  const main = 'dist/cli/main.js';
  if (existsSync(main) && statSync(main).mtimeMs >= newest('src')) return;
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
