#!/usr/bin/env node
// The test command (README: `npm test`): build, run every tier with vitest, and
// print one closing line "N passed, N failed, N skipped" for CI logs. The tests' temporary
// folders go into one folder of this run (TMPDIR), removed at the end whatever each test
// left behind (MLSHIP_KEEP_TEST_TMP=1 keeps it to inspect a failure).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const extra = process.argv.slice(2);
const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const results = '.vitest-results.json';
rmSync(results, { force: true });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-tests-'));
const run = spawnSync(
  'npx',
  ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...extra],
  { stdio: 'inherit', env: { ...process.env, TMPDIR: tmp } },
);
if (process.env.MLSHIP_KEEP_TEST_TMP === '1') process.stdout.write(`\ntest temporary files kept in ${tmp}\n`);
else rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
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
