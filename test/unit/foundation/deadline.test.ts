// io/deadline.ts: a request deadline that fires even when nothing else keeps Node alive
// (AbortSignal.timeout's timer does not: the process exits mid-await, which is how
// `mlship serve` once quit while waiting for /readyz on a loaded machine).

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { deadline } from '../../../src/io/deadline.js';

const waitForAbort = (make: string) =>
  spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `${make}; await new Promise((r) => s.addEventListener('abort', r)); console.log('aborted', s.reason.name);`,
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );

describe('deadline', () => {
  it('aborts with a TimeoutError after its time, and not once done', async () => {
    const late = deadline(20);
    const early = deadline(20);
    early.done();
    await new Promise((r) => setTimeout(r, 60));
    expect(late.signal.aborted).toBe(true);
    expect((late.signal.reason as Error).name).toBe('TimeoutError');
    expect(early.signal.aborted).toBe(false);
  });

  it('keeps the process alive until it fires, where AbortSignal.timeout lets Node exit mid-await', () => {
    const file = path.resolve('src/io/deadline.ts');
    const ours = waitForAbort(
      `const { deadline } = await import(${JSON.stringify(file)}); const s = deadline(200).signal`,
    );
    expect(ours.stdout.trim(), ours.stderr).toBe('aborted TimeoutError');
    expect(ours.status).toBe(0);
    const builtin = waitForAbort('const s = AbortSignal.timeout(200)');
    expect(builtin.stdout).toBe('');
    expect(builtin.status).toBe(13); // "unsettled top-level await"
  });
});
