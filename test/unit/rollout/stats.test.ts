// The rollout's statistics against values scipy 1.17 computes (scipy.stats.norm,
// mannwhitneyu(method="asymptotic")); test/tools/rollout-stats.test.ts compares them on random
// data with scipy itself. And the verdict each comparison leads to.

import { describe, expect, it } from 'vitest';
import {
  mannWhitneyU,
  normalQuantile,
  normalSf,
  quantile,
  requestsToDetect,
  twoProportionZTest,
} from '../../../src/core/rollout/stats.js';
import {
  compare,
  DEFAULT_GATES,
  type RequestSample,
  sameAnswer,
  verdict,
} from '../../../src/core/rollout/verdict.js';

describe('the normal distribution', () => {
  it('tail probabilities match scipy.stats.norm.sf, far into the tail', () => {
    expect(normalSf(1.96)).toBeCloseTo(0.024997895148220435, 14);
    expect(normalSf(-0.5)).toBeCloseTo(0.6914624612740131, 14);
    expect(normalSf(5) / 2.866515718791933e-7).toBeCloseTo(1, 12);
    expect(normalSf(8.3) / 5.2055697448902465e-17).toBeCloseTo(1, 10);
  });

  it('quantiles match scipy.stats.norm.ppf', () => {
    expect(normalQuantile(0.99)).toBeCloseTo(2.3263478740408408, 12);
    expect(normalQuantile(0.8)).toBeCloseTo(0.8416212335729143, 12);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306167813, 12);
    expect(() => normalQuantile(1)).toThrow(RangeError);
  });
});

describe('the tests', () => {
  it('two-proportion z-test: 2.5 % against 1.0 % of 1,000 each', () => {
    const r = twoProportionZTest(10, 1000, 25, 1000);
    expect(r.statistic).toBeCloseTo(2.557943557892809, 12);
    expect(r.pValue).toBeCloseTo(0.005264659032641463, 12);
  });

  it('two-proportion z-test: no failures anywhere, or no requests, is no evidence', () => {
    expect(twoProportionZTest(0, 500, 0, 500).pValue).toBe(1);
    expect(twoProportionZTest(3, 500, 0, 0).pValue).toBe(1);
  });

  it('Mann-Whitney U with ties matches scipy (b greater than a, asymptotic)', () => {
    const a = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];
    const b = [8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6];
    const r = mannWhitneyU(a, b);
    expect(r.statistic).toBe(88.5);
    expect(r.pValue).toBeCloseTo(0.08631336433423009, 12);
  });

  it('quantiles interpolate as numpy does', () => {
    const v = [1, 2, 3, 4, 10];
    expect([0.5, 0.95, 0.99].map((q) => quantile(v, q))).toEqual([
      3,
      expect.closeTo(8.8, 12),
      expect.closeTo(9.76, 12),
    ]);
    expect(quantile([], 0.5)).toBeUndefined();
  });

  it('requests to detect 1 % → 3 % (α 0.05, power 0.8): 605 each side; a 10 % canary needs fewer candidate requests (and 9 stable ones for each)', () => {
    expect(requestsToDetect(0.01, 0.03, 0.05, 0.8)).toBe(605);
    // With 9 stable requests per candidate one, the stable rate is nearly known: toward the
    // one-sample bound (1.645·√(.01·.99) + 0.842·√(.03·.97))² / .02² = 236.
    expect(requestsToDetect(0.01, 0.03, 0.05, 0.8, 9)).toBe(281);
    expect(requestsToDetect(0.03, 0.03, 0.05, 0.8)).toBe(Number.POSITIVE_INFINITY);
  });
});

function side(n: number, errors: number, ms: (i: number) => number, prefix: string): RequestSample[] {
  return Array.from({ length: n }, (_, i) => ({
    requestId: `${prefix}${i}`,
    status: i < errors ? 500 : 200,
    durationMs: ms(i),
  }));
}

describe('the verdict', () => {
  const steady = (i: number) => 10 + (i % 7);

  it('holds below the minimum of candidate requests, naming how many it still needs', () => {
    const c = compare(
      { stable: side(5000, 10, steady, 's'), candidate: side(400, 1, steady, 'c'), pairs: [] },
      DEFAULT_GATES,
      0.1,
    );
    const v = verdict(c, DEFAULT_GATES);
    expect(v).toEqual({
      decision: 'hold',
      needsRequests: 600,
      reasons: [expect.stringMatching(/400 of the 1000/)],
    });
  });

  it('promotes a candidate as good as the stable one once it has enough requests', () => {
    const c = compare(
      { stable: side(9000, 18, steady, 's'), candidate: side(1000, 2, steady, 'c'), pairs: [] },
      DEFAULT_GATES,
      0.1,
    );
    expect(verdict(c, DEFAULT_GATES).decision).toBe('promote');
  });

  it('rolls back on a significant 5xx increase, even before the minimum (a breach does not wait)', () => {
    const c = compare(
      { stable: side(4000, 8, steady, 's'), candidate: side(400, 40, steady, 'c'), pairs: [] },
      DEFAULT_GATES,
      0.1,
    );
    const v = verdict(c, DEFAULT_GATES);
    expect(v.decision).toBe('rollback');
    expect(v.reasons[0]).toMatch(/^5xx rate 10\.00 % vs 0\.20 % \(\+9\.80 points; two-proportion z-test/);
  });

  it('rolls back on a significantly slower candidate, not on one within the tolerated 20 %', () => {
    const slow = compare(
      { stable: side(2000, 0, steady, 's'), candidate: side(1000, 0, (i) => 2 * steady(i), 'c'), pairs: [] },
      DEFAULT_GATES,
    );
    expect(verdict(slow, DEFAULT_GATES)).toMatchObject({
      decision: 'rollback',
      reasons: [expect.stringMatching(/^latency p50 26\.0 ms vs 13\.0 ms/)],
    });
    const bit = compare(
      {
        stable: side(2000, 0, steady, 's'),
        candidate: side(1000, 0, (i) => 1.1 * steady(i), 'c'),
        pairs: [],
      },
      DEFAULT_GATES,
    );
    expect(bit.latency.pValue).toBeLessThan(0.01);
    expect(verdict(bit, DEFAULT_GATES).decision).toBe('promote');
  });

  it('compares answers: agreement over pairs, and a floor that rolls back', () => {
    const pairs = Array.from({ length: 1000 }, (_, i) => ({
      requestId: `r${i}`,
      stable: i,
      candidate: i % 10 === 0 ? i + 1 : i,
    }));
    const gates = { ...DEFAULT_GATES, minAgreement: 0.95 };
    const c = compare(
      { stable: side(1000, 0, steady, 's'), candidate: side(1000, 0, steady, 'c'), pairs },
      gates,
    );
    expect(c.agreement).toMatchObject({ pairs: 1000, agreeing: 900, rate: 0.9 });
    expect(verdict(c, gates)).toMatchObject({
      decision: 'rollback',
      reasons: [expect.stringMatching(/^answers agree on 90\.00 % of 1000/)],
    });
    expect(verdict(c, DEFAULT_GATES).decision).toBe('promote');
  });

  it('answers are the same when JSON-equal, floats within a relative 1e-9', () => {
    expect(sameAnswer({ a: [1, 0.30000000000000004] }, { a: [1, 0.3] })).toBe(true);
    expect(sameAnswer({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameAnswer('setosa', 'virginica')).toBe(false);
  });
});
