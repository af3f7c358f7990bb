// Requests/s, error rate and latency percentiles of a service between two scrapes: the
// difference of each container's counters (a counter that went down is a restarted
// container, counted from zero as Prometheus' rate() does; a container seen once has no
// rate yet), summed over the service's containers; percentiles by linear interpolation
// inside the histogram's bucket, as Prometheus' histogram_quantile computes them.

import { addTotals, emptyTotals, type ScrapeTotals } from './scrape.js';

export interface ServiceRates {
  requestsPerSecond: number;
  /** 5xx answers as a share (0..1) of the prediction requests in the window; undefined without requests. */
  errorRate?: number;
  p50Ms?: number;
  p99Ms?: number;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((n, v) => n + v, 0);
const infCount = (b: Map<number, number>) => b.get(Number.POSITIVE_INFINITY) ?? Math.max(0, ...b.values());

/** The increments of one container from `prev` to `cur` (all of `cur` when its counters went down). */
export function deltaTotals(prev: ScrapeTotals, cur: ScrapeTotals): ScrapeTotals {
  const reset = sum(cur.requests) < sum(prev.requests) || infCount(cur.buckets) < infCount(prev.buckets);
  if (reset) return cur;
  const d = emptyTotals();
  for (const [status, n] of Object.entries(cur.requests))
    d.requests[status] = n - (prev.requests[status] ?? 0);
  for (const [le, n] of cur.buckets) d.buckets.set(le, Math.max(0, n - (prev.buckets.get(le) ?? 0)));
  d.inFlight = cur.inFlight;
  d.versions = cur.versions;
  return d;
}

/** The q-quantile (0..1) in seconds of cumulative bucket counts; undefined when nothing was observed. */
export function histogramQuantile(q: number, buckets: Map<number, number>): number | undefined {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      // Above the last finite bound nothing is known: Prometheus answers that bound.
      if (!Number.isFinite(le)) return lowerBound;
      if (count === lowerCount) return le;
      return lowerBound + ((le - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}

/**
 * A service's rates between two scrapes `seconds` apart, each a map of container id →
 * totals. Containers only in `cur` (just started) contribute nothing until the next scrape.
 */
export function serviceRates(
  prev: Map<string, ScrapeTotals>,
  cur: Map<string, ScrapeTotals>,
  seconds: number,
): ServiceRates {
  const deltas: ScrapeTotals[] = [];
  for (const [id, totals] of cur) {
    const before = prev.get(id);
    if (before) deltas.push(deltaTotals(before, totals));
  }
  const d = addTotals(deltas);
  const requests = sum(d.requests);
  const errors = Object.entries(d.requests)
    .filter(([status]) => status.startsWith('5'))
    .reduce((n, [, v]) => n + v, 0);
  const p50 = histogramQuantile(0.5, d.buckets);
  const p99 = histogramQuantile(0.99, d.buckets);
  return {
    requestsPerSecond: seconds > 0 ? requests / seconds : 0,
    ...(requests > 0 ? { errorRate: errors / requests } : {}),
    ...(p50 !== undefined ? { p50Ms: p50 * 1000 } : {}),
    ...(p99 !== undefined ? { p99Ms: p99 * 1000 } : {}),
  };
}
