// The parts of `mlship rollout` that need no engine: the flags turned into a recorded rollout
// (and every refusal), the state file read back (a damaged one names its field), the samples
// read from the services' log lines, and `watch` stepping, promoting and rolling back against
// a target whose numbers the test scripts (a fake clock: nothing sleeps).

import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Rollout } from '../../../src/config/rollout-schema.js';
import {
  gatesFromFlags,
  parseDuration,
  parseSteps,
  rolloutFromFlags,
} from '../../../src/core/rollout/options.js';
import { mirrorOutcome, parseServiceLog, rolloutSamples } from '../../../src/core/rollout/samples.js';
import { readRollouts, runningRollouts, writeRollouts } from '../../../src/core/rollout/state.js';
import type { RolloutTarget, StatusReport } from '../../../src/core/rollout/target.js';
import { compare, DEFAULT_GATES, type RequestSample, verdict } from '../../../src/core/rollout/verdict.js';
import { watchRollout } from '../../../src/core/rollout/watch.js';
import { fakeClock } from '../../../src/io/clock.js';
import { rollout } from '../../helpers/rollout.js';

const NOW = new Date('2026-01-01T00:00:00.000Z');

/** The error a promise is rejected with (the test fails when it resolves). */
async function failure<E = object>(p: Promise<unknown>): Promise<Error & { code?: string } & E> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as Error & { code?: string } & E,
  );
}

describe('rollout flags', () => {
  it('a canary from a path, sticky on a header, with its environment', () => {
    const r = rolloutFromFlags(
      'iris',
      { canary: '10', path: 'services/iris-v2', stickyHeader: 'X-User-Id', env: ['A=1', 'B=x=y'] },
      NOW,
    );
    expect(r).toMatchObject({
      service: 'iris',
      mode: 'canary',
      weight: 10,
      sticky: { header: 'X-User-Id' },
      mirror: false,
      recordSample: 0.1,
      shadowTimeoutMs: 250,
      candidate: { path: 'services/iris-v2', env: { A: '1', B: 'x=y' }, recordInputs: false },
      status: 'running',
      history: [{ at: NOW.toISOString(), action: 'start', weight: 10 }],
    });
  });

  it('a shadow takes no share; its timeout is a duration', () => {
    const r = rolloutFromFlags('iris', { shadow: true, image: 'acme/iris:2', shadowTimeout: '1s' }, NOW);
    expect(r).toMatchObject({
      mode: 'shadow',
      weight: 0,
      shadowTimeoutMs: 1000,
      candidate: { image: 'acme/iris:2' },
    });
    expect(r.shadowCpus).toBeUndefined();
    expect(rolloutFromFlags('iris', { shadow: true, path: 'p', shadowCpus: '0.5' }, NOW).shadowCpus).toBe(
      0.5,
    );
  });

  it.each([
    [{ path: 'p' }, /exactly one of --canary/],
    [{ canary: '10', ab: '50', path: 'p' }, /exactly one of --canary/],
    [{ canary: '10' }, /exactly one of --path/],
    [{ canary: '10', path: 'p', image: 'i' }, /exactly one of --path/],
    [{ canary: '0', path: 'p' }, /--canary 0 is not a whole percentage from 1 to 100/],
    [{ ab: '100', path: 'p' }, /--ab 100 is not a whole percentage from 1 to 99/],
    [{ canary: '12.5', path: 'p' }, /not a whole percentage/],
    [{ shadow: true, path: 'p', mirror: true }, /--shadow mirrors every request/],
    [{ canary: '5', path: 'p', stickyHeader: 'a', stickyCookie: 'b' }, /exclude each other/],
    [{ canary: '5', path: 'p', stickyHeader: 'X User' }, /not an HTTP header name/],
    [{ canary: '5', path: 'p', recordSample: '2' }, /--record-sample 2 is not a share/],
    [{ canary: '5', path: 'p', shadowTimeout: '5ms' }, /outside 10ms-60s/],
    [{ canary: '5', path: 'p', env: ['1X=2'] }, /--env 1X=2 is not NAME=value/],
    [{ canary: '5', path: 'p', shadowCpus: '1' }, /--shadow-cpus caps a shadow/],
    [{ shadow: true, path: 'p', shadowCpus: '0' }, /--shadow-cpus 0 is not a number of CPUs/],
    [{ shadow: true, path: 'p', shadowCpus: 'half' }, /--shadow-cpus half is not a number of CPUs/],
  ])('refuses %j', (flags, message) => {
    expect(() => rolloutFromFlags('iris', flags, NOW)).toThrow(message);
  });

  it('gates: defaults, overrides, and out-of-range values refused', () => {
    expect(gatesFromFlags({})).toEqual(DEFAULT_GATES);
    expect(gatesFromFlags({ minRequests: '50', alpha: '0.05', minAgreement: '0.9' })).toEqual({
      ...DEFAULT_GATES,
      minRequests: 50,
      alpha: 0.05,
      minAgreement: 0.9,
    });
    expect(() => gatesFromFlags({ alpha: '0.7' })).toThrow(/--alpha 0.7 is out of range/);
    expect(() => gatesFromFlags({ minRequests: '1.5' })).toThrow(/--min-requests/);
  });

  it('steps increase and end at 100; durations people write', () => {
    expect(parseSteps('10, 50,100')).toEqual([10, 50, 100]);
    expect(() => parseSteps('50,10,100')).toThrow(/must increase and end at 100/);
    expect(() => parseSteps('10,50')).toThrow(/must increase and end at 100/);
    expect([
      parseDuration('--bake', '10m'),
      parseDuration('--bake', '90'),
      parseDuration('--bake', '500ms'),
    ]).toEqual([600_000, 90_000, 500]);
    expect(() => parseDuration('--bake', 'soon')).toThrow(/--bake soon is not a duration/);
  });
});

describe('the rollouts file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-rollouts-'));

  it('round-trips; only running rollouts shape the stack', async () => {
    const file = path.join(dir, 'rollouts.json');
    await writeRollouts(file, {
      version: 1,
      rollouts: {
        a: rollout({ service: 'a', mode: 'canary', weight: 10 }),
        b: rollout({ service: 'b', mode: 'shadow', status: 'rolled-back' }),
      },
    });
    expect(Object.keys((await readRollouts(file)).rollouts)).toEqual(['a', 'b']);
    expect((await runningRollouts(dir)).map((r) => r.service)).toEqual(['a']);
    expect(await runningRollouts(path.join(dir, 'none'))).toEqual([]);
  });

  it('a damaged file is an error naming the field, not a stack trace', async () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        rollouts: { a: { ...rollout({ service: 'a', mode: 'canary' }), weight: 140 } },
      }),
    );
    const e = await failure<{ details?: string[] }>(readRollouts(file));
    expect(e.message).toContain('does not describe rollouts');
    expect(e.details?.join('\n')).toMatch(/rollouts\.a\.weight/);
    writeFileSync(file, '{"version": 1, "roll');
    await expect(readRollouts(file)).rejects.toThrow(/is not valid JSON/);
  });
});

describe("the samples in the services' logs", () => {
  const line = (o: object) => `2026-01-01T00:00:00Z ${JSON.stringify(o)}`;

  it('requests and background shadow predictions count, accepted mirrors and other paths do not; answers pair by id', () => {
    const stable = parseServiceLog([
      line({ msg: 'request', request_id: 'r1', path: '/predict', status: 200, duration_ms: 3 }),
      line({ msg: 'request', request_id: 'r2', path: '/predict', status: 500, duration_ms: 1 }),
      line({ msg: 'request', request_id: 'r3', path: '/healthz', status: 200, duration_ms: 1 }),
      line({ msg: 'answer', request_id: 'r1', answer: { prediction: 2 } }),
      'uvicorn started',
    ]);
    const candidate = parseServiceLog([
      line({ msg: 'request', request_id: 'r1', path: '/predict', status: 202, duration_ms: 0.1 }),
      line({ msg: 'shadow', request_id: 'r1', path: '/predict', status: 200, duration_ms: 4 }),
      line({ msg: 'answer', request_id: 'r1', answer: { prediction: 3 } }),
      line({ msg: 'answer', request_id: 'r9', answer: { prediction: 3 } }),
    ]);
    expect(stable.samples.map((s) => [s.requestId, s.status])).toEqual([
      ['r1', 200],
      ['r2', 500],
    ]);
    expect(stable.otherLines).toBe(1);
    expect(candidate.samples).toEqual([{ requestId: 'r1', status: 200, durationMs: 4 }]);
    expect(rolloutSamples(stable, candidate).pairs).toEqual([
      { requestId: 'r1', stable: { prediction: 2 }, candidate: { prediction: 3 } },
    ]);
    // Both predictions the stable version answered were mirrored; the candidate predicted one
    // (r2's copy was dropped or skipped): the agreement counts only r1.
    expect(mirrorOutcome(stable, candidate)).toEqual({ mirrored: 2, predicted: 1, notPredicted: 1 });
  });
});

/** A target whose candidate fails `failRate` of its requests; each look adds `perLook` requests per side. */
function scriptedTarget(failRate: (look: number) => number, perLook: number, base: Partial<Rollout> = {}) {
  const calls: string[] = [];
  const samples = { stable: [] as RequestSample[], candidate: [] as RequestSample[] };
  let looks = 0;
  const gates = { ...DEFAULT_GATES, minRequests: 200 };
  const target: RolloutTarget = {
    service: 'iris',
    async start(r) {
      return r;
    },
    async status(): Promise<StatusReport> {
      looks++;
      for (let i = 0; i < perLook; i++) {
        samples.stable.push({ requestId: `s${looks}-${i}`, status: 200, durationMs: 10 + (i % 7) });
        const fail = i < perLook * failRate(looks);
        samples.candidate.push({
          requestId: `c${looks}-${i}`,
          status: fail ? 500 : 200,
          durationMs: 10 + (i % 7),
        });
      }
      const comparison = compare({ ...samples, pairs: [] }, gates);
      return {
        rollout: rollout({ service: 'iris', mode: 'canary', ...base }),
        comparison,
        verdict: verdict(comparison, gates),
        candidateHealth: 'healthy',
        candidateDown: false,
        notes: [],
      };
    },
    async setWeight(w) {
      calls.push(`weight ${w}`);
    },
    async promote() {
      calls.push('promote');
      return { stableNow: 'acme/iris:2', notes: [] };
    },
    async rollback(reason) {
      calls.push(`rollback ${reason}`);
    },
  };
  return { target, calls };
}

describe('watch', () => {
  const options = { steps: [10, 50, 100], bakeMs: 60_000, intervalMs: 15_000, maxHoldMs: 600_000 };

  it('steps 10, 50, 100 with a bake each, then promotes on a clean verdict', async () => {
    const { target, calls } = scriptedTarget(() => 0, 30);
    const clock = fakeClock();
    const r = await watchRollout(target, options, { clock, log: () => undefined });
    expect(calls).toEqual(['weight 10', 'weight 50', 'weight 100', 'promote']);
    expect(r.final.verdict.decision).toBe('promote');
    // Three bakes of a minute, looking every 15 s: 5 looks each (start and end included).
    expect(r.looks).toBe(15);
    expect(clock.now()).toBe(180_000);
  });

  it('rolls back once the 5xx increase is significant, with the reason, and fails', async () => {
    const { target, calls } = scriptedTarget((look) => (look >= 3 ? 0.2 : 0), 50);
    const e = await failure(watchRollout(target, options, { clock: fakeClock(), log: () => undefined }));
    expect(e.code).toBe('ROLLOUT_ROLLED_BACK');
    expect(e.message).toMatch(/rolled back iris: 5xx rate/);
    expect(calls[0]).toBe('weight 10');
    expect(calls.at(-1)).toMatch(/^rollback 5xx rate .* two-proportion z-test/);
    expect(calls).not.toContain('promote');
  });

  it('holds (no promotion, nothing changed) while the candidate has too few requests', async () => {
    const { target, calls } = scriptedTarget(() => 0, 1);
    const e = await failure(
      watchRollout(
        target,
        { ...options, steps: [100], maxHoldMs: 60_000 },
        {
          clock: fakeClock(),
          log: () => undefined,
        },
      ),
    );
    expect(e.code).toBe('ROLLOUT_HELD');
    expect(e.message).toMatch(/answered \d+ of the 200 requests/);
    expect(calls).toEqual(['weight 100']);
  });
});
