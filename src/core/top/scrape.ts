// What `mlship top` reads of a wrapped service's /metrics (Prometheus text format, the
// metric names of templates/wrap/python/app/observability.py and node/server.js): the
// prediction requests by status, the request-duration histogram's buckets and the in-flight
// gauge, summed over the containers (replicas) of a service. Under gunicorn one container's
// /metrics already sums its workers (multiprocess mode), so each replica is counted once.
// Rates and percentiles come from the difference of two such totals (rates.ts).

const PREDICT = new Set(['/predict', '/predict/batch']);

/** One container's (or a service's summed) counters at one moment. */
export interface ScrapeTotals {
  /** Prediction requests answered, by status code ("200", "503"). */
  requests: Record<string, number>;
  /** Cumulative request-duration bucket counts of the prediction endpoints, by upper bound in seconds (+Inf included). */
  buckets: Map<number, number>;
  inFlight: number;
  /** The `version` labels seen (the image tag each replica runs). */
  versions: string[];
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** The samples of a Prometheus text exposition (comments, blank and malformed lines skipped). */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/.exec(line);
    if (!m) continue;
    const value = m[3] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[3]);
    if (Number.isNaN(value)) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = unescapeLabel(l[2]!);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

export function emptyTotals(): ScrapeTotals {
  return { requests: {}, buckets: new Map(), inFlight: 0, versions: [] };
}

/** A wrapped service's counters from its /metrics text. */
export function totalsOf(text: string): ScrapeTotals {
  const t = emptyTotals();
  const versions = new Set<string>();
  for (const s of parseSamples(text)) {
    if (s.name === 'mlship_in_flight_requests') t.inFlight += s.value;
    if (!PREDICT.has(s.labels.endpoint ?? '')) continue;
    if (s.labels.version) versions.add(s.labels.version);
    if (s.name === 'mlship_requests_total') {
      const status = s.labels.status ?? '';
      t.requests[status] = (t.requests[status] ?? 0) + s.value;
    } else if (s.name === 'mlship_request_duration_seconds_bucket') {
      const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
      if (!Number.isNaN(le)) t.buckets.set(le, (t.buckets.get(le) ?? 0) + s.value);
    }
  }
  t.versions = [...versions].sort();
  return t;
}

/** The sum of several replicas' totals. */
export function addTotals(parts: ScrapeTotals[]): ScrapeTotals {
  const sum = emptyTotals();
  const versions = new Set<string>();
  for (const p of parts) {
    for (const [status, n] of Object.entries(p.requests))
      sum.requests[status] = (sum.requests[status] ?? 0) + n;
    for (const [le, n] of p.buckets) sum.buckets.set(le, (sum.buckets.get(le) ?? 0) + n);
    sum.inFlight += p.inFlight;
    for (const v of p.versions) versions.add(v);
  }
  sum.versions = [...versions].sort();
  return sum;
}
