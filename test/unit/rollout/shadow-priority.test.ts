// The shadow's SCHED_IDLE, without an engine: what idleContainer and atIdle make of the answers
// of `docker exec` (the docker rollout test runs the script in a real candidate and reads the
// classes of its processes with `docker top`).

import { describe, expect, it } from 'vitest';
import type { ExecResult } from '../../../src/core/rollout/proxy-reload.js';
import { atIdle, idleContainer } from '../../../src/core/rollout/shadow-priority.js';

const answering =
  (r: Partial<ExecResult> | Error, calls: string[][] = []) =>
  async (_container: string, argv: string[]): Promise<ExecResult> => {
    calls.push(argv);
    if (r instanceof Error) throw r;
    return { exitCode: 0, stdout: '', stderr: '', ...r };
  };

describe("a shadow's CPU policy", () => {
  it('moves every process of the container, run by sh in it, and says how many moved', async () => {
    const calls: string[][] = [];
    expect(await idleContainer(answering({ stdout: 'mlship-idle 7 7\n' }, calls), 'c1')).toEqual({
      ok: true,
      detail: '7 processes',
    });
    expect(calls[0]!.slice(0, 2)).toEqual(['sh', '-c']);
    expect(calls[0]![2]).toMatch(/chrt --idle -a -p 0/);
    // The shell itself is left out: it is gone once the script ends.
    expect(calls[0]![2]).toContain('[ "$p" = "$$" ] && continue');
  });

  it('is not ok, and says why, when some or none moved or the exec failed', async () => {
    expect(await idleContainer(answering({ stdout: 'mlship-idle 3 5\n' }), 'c')).toEqual({
      ok: false,
      detail: '3 of 5 processes (the others belong to another user)',
    });
    expect(await idleContainer(answering({ stdout: 'mlship-idle 0 5\n' }), 'c')).toEqual({
      ok: false,
      detail: 'chrt could not set SCHED_IDLE (is util-linux in the image?)',
    });
    expect(
      await idleContainer(
        answering({ exitCode: 126, stderr: 'OCI runtime exec failed: sh: not found\n' }),
        'c',
      ),
    ).toEqual({ ok: false, detail: 'OCI runtime exec failed: sh: not found' });
    expect((await idleContainer(answering(new Error('no such container')), 'c')).ok).toBe(false);
  });

  it("reads the first process's policy: SCHED_IDLE means the container must be recreated to leave it", async () => {
    const idle = "pid 1's current scheduling policy: SCHED_IDLE\npid 1's current scheduling priority: 0\n";
    const other = "pid 1's current scheduling policy: SCHED_OTHER\npid 1's current scheduling priority: 0\n";
    const calls: string[][] = [];
    expect(await atIdle(answering({ stdout: idle }, calls), 'c')).toBe(true);
    expect(calls).toEqual([['chrt', '-p', '1']]);
    expect(await atIdle(answering({ stdout: other }), 'c')).toBe(false);
    expect(await atIdle(answering({ exitCode: 127, stdout: idle }), 'c')).toBe(false);
    expect(await atIdle(answering(new Error('gone')), 'c')).toBe(false);
  });
});
