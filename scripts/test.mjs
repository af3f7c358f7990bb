#!/usr/bin/env node
// The test command (README: `npm test`): build, run every tier with vitest, and
// print one closing line "N passed, N failed, N skipped" for CI logs.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const extra = process.argv.slice(2);
const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const results = '.vitest-results.json';
rmSync(results, { force: true });
const run = spawnSync(
  'npx',
  ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...extra],
  { stdio: 'inherit' },
);
let code = run.status ?? 1;
if (existsSync(results)) {
  const r = JSON.parse(readFileSync(results, 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  process.stdout.write(
    `\ntests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped\n`,
  );
  if (r.numTotalTests === 0) {
    process.stdout.write('no test ran: failing\n');
    code = 1;
  }
} else {
  process.stdout.write('\ntests: 0 passed, 1 failed (vitest wrote no results)\n');
  code = code || 1;
}
process.exit(code);
