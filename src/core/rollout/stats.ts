// The statistics a rollout decides on, written out (no dependency carries them): the normal
// distribution, percentiles as numpy computes them, the two-proportion z-test for error
// rates, the Mann-Whitney U test for latencies (normal approximation with tie and continuity
// corrections, as scipy's method="asymptotic"), and the sample size a two-proportion test
// needs to see a given increase. The tools tier checks each against scipy on random data.

/**
 * erfc(x) to about 1e-13 relative: the Maclaurin series of erf below 2 (where its alternating
 * terms cost at most 3 digits), the continued fraction of erfc above (modified Lentz).
 */
export function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 100; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** P(Z > z) for a standard normal Z. */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** The z with P(Z < z) = p (Acklam's algorithm refined by one Halley step: about 1e-15). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile needs 0 < p < 1, not ${p}`);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  let x: number;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    x =
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - low) {
    const q = p - 0.5;
    const r = q * q;
    x =
      ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
      (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x =
      -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  const e = 0.5 * erfc(-x / Math.SQRT2) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** The q-quantile (0..1) of ascending `sorted`, interpolated linearly (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export interface TestResult {
  statistic: number;
  /** One-sided: the probability of a difference at least this large in the candidate's disfavour by chance. */
  pValue: number;
}

/**
 * Two-proportion z-test (pooled), one-sided: is the candidate's rate (x2 of n2) higher than the
 * stable one's (x1 of n1)? No failures on either side is no evidence at all (p = 1).
 */
export function twoProportionZTest(x1: number, n1: number, x2: number, n2: number): TestResult {
  if (n1 === 0 || n2 === 0) return { statistic: 0, pValue: 1 };
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (se === 0) return { statistic: 0, pValue: 1 };
  const z = (x2 / n2 - x1 / n1) / se;
  return { statistic: z, pValue: normalSf(z) };
}

/**
 * Mann-Whitney U, one-sided: are the candidate's values (b) stochastically larger than the stable
 * ones (a)? U of b, normal approximation with the tie correction and a continuity correction
 * (scipy.stats.mannwhitneyu(b, a, alternative="greater", method="asymptotic")).
 */
export function mannWhitneyU(a: readonly number[], b: readonly number[]): TestResult {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return { statistic: 0, pValue: 1 };
  const all = [...b.map((v) => ({ v, fromB: true })), ...a.map((v) => ({ v, fromB: false }))];
  all.sort((x, y) => x.v - y.v);
  let rankSumB = 0;
  let tieTerm = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.v === all[i]!.v) j++;
    const rank = (i + j) / 2 + 1;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    for (let k = i; k <= j; k++) if (all[k]!.fromB) rankSumB += rank;
    i = j + 1;
  }
  const u = rankSumB - (n2 * (n2 + 1)) / 2;
  const n = n1 + n2;
  const mean = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (variance <= 0) return { statistic: u, pValue: 1 };
  const z = (u - mean - 0.5) / Math.sqrt(variance);
  return { statistic: u, pValue: normalSf(z) };
}

/**
 * Candidate requests a one-sided two-proportion z-test at level `alpha` needs to see the rate go
 * from `p1` to `p2` with probability `power`, when the stable side gets `ratio` requests for each
 * candidate request (a 10 % canary: ratio 9).
 */
export function requestsToDetect(p1: number, p2: number, alpha: number, power: number, ratio = 1): number {
  if (!(p2 > p1)) return Number.POSITIVE_INFINITY;
  const za = normalQuantile(1 - alpha);
  const zb = normalQuantile(power);
  // n2 candidate and ratio·n2 stable requests.
  const pBar = (ratio * p1 + p2) / (ratio + 1);
  const a = za * Math.sqrt(pBar * (1 - pBar) * (1 + 1 / ratio));
  const b = zb * Math.sqrt(p2 * (1 - p2) + (p1 * (1 - p1)) / ratio);
  return Math.ceil(((a + b) / (p2 - p1)) ** 2);
}
