// What a rollout's numbers say: stable and candidate side by side (requests, 5xx rate,
// p50/p95/p99, agreement of their answers to the same requests), the test behind each
// comparison, and the verdict: promote, hold (not enough candidate requests yet, and how many
// it needs), or roll back (a gate breached, and which). Pure: the samples come in, the verdict
// goes out; `watch` and `status` share it so they never disagree.

import { mannWhitneyU, normalSf, quantile, requestsToDetect, twoProportionZTest } from './stats.js';

/** One answered prediction request, as a wrapped service logs it. */
export interface RequestSample {
  requestId: string;
  status: number;
  durationMs: number;
}

/** The samples of one rollout, by side. */
export interface RolloutSamples {
  stable: RequestSample[];
  candidate: RequestSample[];
  /** Answers recorded by both sides for the same request (sampled, by request id). */
  pairs: { requestId: string; stable: unknown; candidate: unknown }[];
}

export interface Gates {
  /** No promotion before the candidate answered this many requests. */
  minRequests: number;
  /** Significance level of each test (one-sided: only a worse candidate counts). */
  alpha: number;
  /** A significant 5xx-rate increase rolls back only above this many points (0.5 = half a point). */
  maxErrorIncreasePoints: number;
  /** A significant latency increase rolls back only when the candidate's p50 is this much slower (0.2 = 20 %). */
  maxLatencyIncrease: number;
  /** With answers compared: roll back when they agree significantly less often than this (0..1). */
  minAgreement?: number;
}

export const DEFAULT_GATES: Gates = {
  minRequests: 1000,
  alpha: 0.01,
  maxErrorIncreasePoints: 0,
  maxLatencyIncrease: 0.2,
};

export interface SideSummary {
  requests: number;
  errors5xx: number;
  errorRate: number;
  p50Ms?: number;
  p95Ms?: number;
  p99Ms?: number;
}

export interface Comparison {
  stable: SideSummary;
  candidate: SideSummary;
  errors: { test: 'two-proportion z-test'; z: number; pValue: number; differencePoints: number };
  latency: { test: 'Mann-Whitney U'; u: number; pValue: number; p50Ratio?: number };
  agreement?: { pairs: number; agreeing: number; rate: number; pValue?: number };
  /** Candidate requests the error test needs to see a 2-point increase over the stable rate (power 80 %). */
  requestsFor2PointIncrease: number;
}

export type Verdict =
  | { decision: 'promote'; reasons: string[] }
  | { decision: 'hold'; reasons: string[]; needsRequests: number }
  | { decision: 'rollback'; reasons: string[] };

function summarize(samples: RequestSample[]): SideSummary {
  const durations = samples.map((s) => s.durationMs).sort((a, b) => a - b);
  const errors5xx = samples.filter((s) => s.status >= 500).length;
  const p50 = quantile(durations, 0.5);
  const p95 = quantile(durations, 0.95);
  const p99 = quantile(durations, 0.99);
  return {
    requests: samples.length,
    errors5xx,
    errorRate: samples.length ? errors5xx / samples.length : 0,
    ...(p50 === undefined ? {} : { p50Ms: p50, p95Ms: p95!, p99Ms: p99! }),
  };
}

/** JSON-equal answers agree (numbers within a relative 1e-9, as float formatting can differ). */
export function sameAnswer(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number')
    return a === b || Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v, i) => sameAnswer(v, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return (
      ka.length === kb.length &&
      ka.every(
        (k, i) =>
          k === kb[i] && sameAnswer((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
      )
    );
  }
  return a === b;
}

export function compare(samples: RolloutSamples, gates: Gates, canaryShare = 0.5): Comparison {
  // Latency of successful answers only: a fast error is not a fast prediction.
  const ok = (s: RequestSample[]) => s.filter((x) => x.status < 500).map((x) => x.durationMs);
  const agreeing = samples.pairs.filter((p) => sameAnswer(p.stable, p.candidate)).length;
  const rate = samples.pairs.length ? agreeing / samples.pairs.length : 0;
  const agreementP =
    gates.minAgreement !== undefined && samples.pairs.length
      ? agreementBelowP(rate, gates.minAgreement, samples.pairs.length)
      : undefined;
  return assemble(
    summarize(samples.stable),
    summarize(samples.candidate),
    mannWhitneyU(ok(samples.stable), ok(samples.candidate)),
    gates,
    canaryShare,
    samples.pairs.length
      ? {
          pairs: samples.pairs.length,
          agreeing,
          rate,
          ...(agreementP === undefined ? {} : { pValue: agreementP }),
        }
      : undefined,
  );
}

/** One side as a load balancer's metrics give it: counts, percentiles, and a latency per period. */
export interface AggregateSide extends SideSummary {
  /** The average response time of each period (e.g. each minute): what the latency test compares. */
  periodMeansMs: number[];
}

/**
 * The comparison from aggregates (CloudWatch's per-target-group metrics on ECS) rather than
 * per-request samples: the same z-test on the counts, and the Mann-Whitney U test on the
 * per-period average latencies (fewer, coarser observations: it needs more time to see a
 * difference, never less). No answers are compared (the load balancer cannot mirror).
 */
export function compareAggregates(
  stable: AggregateSide,
  candidate: AggregateSide,
  gates: Gates,
  canaryShare = 0.5,
): Comparison {
  const side = ({ periodMeansMs: _, ...rest }: AggregateSide): SideSummary => rest;
  return assemble(
    side(stable),
    side(candidate),
    mannWhitneyU(stable.periodMeansMs, candidate.periodMeansMs),
    gates,
    canaryShare,
  );
}

function assemble(
  stable: SideSummary,
  candidate: SideSummary,
  mw: { statistic: number; pValue: number },
  gates: Gates,
  canaryShare: number,
  agreement?: Comparison['agreement'],
): Comparison {
  const z = twoProportionZTest(stable.errors5xx, stable.requests, candidate.errors5xx, candidate.requests);
  const base = Math.max(stable.errorRate, 0.001);
  const share = Math.min(Math.max(canaryShare, 0.01), 0.99);
  return {
    stable,
    candidate,
    errors: {
      test: 'two-proportion z-test',
      z: z.statistic,
      pValue: z.pValue,
      differencePoints: (candidate.errorRate - stable.errorRate) * 100,
    },
    latency: {
      test: 'Mann-Whitney U',
      u: mw.statistic,
      pValue: mw.pValue,
      ...(stable.p50Ms && candidate.p50Ms !== undefined ? { p50Ratio: candidate.p50Ms / stable.p50Ms } : {}),
    },
    ...(agreement ? { agreement } : {}),
    requestsFor2PointIncrease: requestsToDetect(base, base + 0.02, gates.alpha, 0.8, (1 - share) / share),
  };
}

/** One-sided one-sample test that an agreement `rate` observed over `n` pairs lies below `floor`. */
function agreementBelowP(rate: number, floor: number, n: number): number {
  const se = Math.sqrt((floor * (1 - floor)) / n);
  if (se === 0) return rate < floor ? 0 : 1;
  return normalSf((floor - rate) / se);
}

export function verdict(c: Comparison, gates: Gates): Verdict {
  const breaches: string[] = [];
  if (c.errors.pValue < gates.alpha && c.errors.differencePoints > gates.maxErrorIncreasePoints) {
    breaches.push(
      `5xx rate ${pct(c.candidate.errorRate)} vs ${pct(c.stable.errorRate)} (+${c.errors.differencePoints.toFixed(2)} points; two-proportion z-test z = ${c.errors.z.toFixed(2)}, p = ${fmtP(c.errors.pValue)} < ${gates.alpha})`,
    );
  }
  if (
    c.latency.pValue < gates.alpha &&
    c.latency.p50Ratio !== undefined &&
    c.latency.p50Ratio > 1 + gates.maxLatencyIncrease
  ) {
    breaches.push(
      `latency p50 ${ms(c.candidate.p50Ms)} vs ${ms(c.stable.p50Ms)} (${((c.latency.p50Ratio - 1) * 100).toFixed(0)} % slower; Mann-Whitney U p = ${fmtP(c.latency.pValue)} < ${gates.alpha})`,
    );
  }
  if (
    gates.minAgreement !== undefined &&
    c.agreement?.pValue !== undefined &&
    c.agreement.pValue < gates.alpha
  ) {
    breaches.push(
      `answers agree on ${pct(c.agreement.rate)} of ${c.agreement.pairs} compared requests, below ${pct(gates.minAgreement)} (p = ${fmtP(c.agreement.pValue)})`,
    );
  }
  if (breaches.length) return { decision: 'rollback', reasons: breaches };
  if (c.candidate.requests < gates.minRequests) {
    return {
      decision: 'hold',
      reasons: [
        `the candidate answered ${c.candidate.requests} of the ${gates.minRequests} requests a promotion needs`,
      ],
      needsRequests: gates.minRequests - c.candidate.requests,
    };
  }
  return {
    decision: 'promote',
    reasons: [
      `${c.candidate.requests} candidate requests; no gate breached at α = ${gates.alpha} (5xx p = ${fmtP(c.errors.pValue)}, latency p = ${fmtP(c.latency.pValue)})`,
    ],
  };
}

export const pct = (r: number) => `${(r * 100).toFixed(2)} %`;
export const ms = (v: number | undefined) => (v === undefined ? '-' : `${v.toFixed(1)} ms`);
export const fmtP = (p: number) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));
