// `mlship top`'s numbers from two scrapes: the Prometheus text parsed, requests/s, the 5xx
// share and the percentiles from the difference of two recorded /metrics texts of a real
// wrapped service (fixtures/top: before and after a load of 658 predictions and one 422),
// checked against the figures worked out by hand from those texts; counter resets, new
// containers, and the local source over a fake engine and clock.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ContainerState } from '../../../src/adapters/docker/engine.js';
import { LocalTopSource } from '../../../src/core/top/local.js';
import { deltaTotals, histogramQuantile, serviceRates } from '../../../src/core/top/rates.js';
import { addTotals, parseSamples, totalsOf } from '../../../src/core/top/scrape.js';
import { fakeClock } from '../../../src/io/clock.js';

const before = readFileSync('fixtures/top/iris-metrics-0.txt', 'utf8');
const after = readFileSync('fixtures/top/iris-metrics-1.txt', 'utf8');

describe('the Prometheus text of a wrapped service', () => {
  it('parses samples with labels, escapes and +Inf; skips comments and junk', () => {
    const s = parseSamples(
      [
        '# HELP x y',
        'a_total{endpoint="/p",msg="say \\"hi\\""} 3.0',
        'b_bucket{le="+Inf"} 7 1700000000',
        'c 1e3',
        'not a sample line',
        '',
      ].join('\n'),
    );
    expect(s).toEqual([
      { name: 'a_total', labels: { endpoint: '/p', msg: 'say "hi"' }, value: 3 },
      { name: 'b_bucket', labels: { le: '+Inf' }, value: 7 },
      { name: 'c', labels: {}, value: 1000 },
    ]);
  });

  it('keeps the prediction endpoints only (probes and /metrics do not count), by status', () => {
    const t = totalsOf(after);
    expect(t.requests).toEqual({ '200': 658, '422': 1 });
    expect(t.buckets.get(Number.POSITIVE_INFINITY)).toBe(659);
    expect(t.inFlight).toBe(1); // the scrape itself
    expect(t.versions).toEqual(['stable']);
  });
});

describe('rates between two scrapes', () => {
  it('requests/s, 5xx share and p50/p99 of the recorded pair, as worked out by hand', () => {
    const r = serviceRates(new Map([['c1', totalsOf(before)]]), new Map([['c1', totalsOf(after)]]), 4);
    // 659 - 1 prediction requests in 4 s; the 422 is a client error, not a 5xx.
    expect(r.requestsPerSecond).toBeCloseTo(658 / 4, 9);
    expect(r.errorRate).toBe(0);
    // Rank 329 of 658 falls in (2.5 ms, 3 ms], between cumulative counts 300 and 378.
    expect(r.p50Ms).toBeCloseTo(2.5 + (0.5 * (329 - 300)) / (378 - 300), 9);
    // Rank 651.42 falls in (20 ms, 25 ms], between 648 and 655 (the 1 earlier request was at 8 ms).
    expect(r.p99Ms).toBeCloseTo(20 + (5 * (651.42 - 648)) / (655 - 648), 9);
  });

  it('a counter that went down is a restarted container, counted from zero', () => {
    const d = deltaTotals(totalsOf(after), totalsOf(before));
    expect(d.requests).toEqual({ '200': 1 });
  });

  it('a container seen once has no rate yet; replicas add up', () => {
    const a = totalsOf(before);
    const b = totalsOf(after);
    const r = serviceRates(
      new Map([['c1', a]]),
      new Map([
        ['c1', b],
        ['c2', b],
      ]),
      2,
    );
    expect(r.requestsPerSecond).toBe(658 / 2);
    const sum = addTotals([a, b]);
    expect(sum.requests['200']).toBe(659);
  });

  it('5xx share and percentiles as Prometheus histogram_quantile computes them', () => {
    const inf = Number.POSITIVE_INFINITY;
    const buckets = new Map([
      [0.1, 50],
      [0.2, 90],
      [0.4, 100],
      [inf, 100],
    ]);
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.1, 12);
    expect(histogramQuantile(0.7, buckets)).toBeCloseTo(0.1 + 0.1 * (20 / 40), 12);
    expect(histogramQuantile(0.99, buckets)).toBeCloseTo(0.2 + 0.2 * (9 / 10), 12);
    // Beyond the last finite bound: that bound.
    expect(
      histogramQuantile(
        0.99,
        new Map([
          [0.1, 1],
          [inf, 10],
        ]),
      ),
    ).toBe(0.1);
    expect(histogramQuantile(0.5, new Map([[inf, 0]]))).toBeUndefined();
    const text = (n200: number, n503: number) =>
      `mlship_requests_total{endpoint="/predict",status="200",version="v"} ${n200}\nmlship_requests_total{endpoint="/predict/batch",status="503",version="v"} ${n503}\n`;
    const r = serviceRates(
      new Map([['c', totalsOf(text(10, 0))]]),
      new Map([['c', totalsOf(text(105, 5))]]),
      1,
    );
    expect(r.requestsPerSecond).toBe(100);
    expect(r.errorRate).toBe(0.05);
    expect(r.p50Ms).toBeUndefined();
  });
});

describe('the local source', () => {
  const container = (id: string, service: string, role: string, state = 'running'): ContainerState => ({
    id,
    name: id,
    image: 'x',
    state,
    health: undefined,
    labels: {
      'com.docker.compose.project': 's',
      'com.docker.compose.service': service,
      'dev.mlship.role': role,
    },
  });

  it('scrapes each model container twice a window apart; replicas, in-flight without the scrape, queues', async () => {
    const clock = fakeClock(1_000_000);
    const texts = [before, after];
    const scraped: string[] = [];
    const source = new LocalTopSource(
      {
        listByLabel: async (label, value) => {
          expect([label, value]).toEqual(['com.docker.compose.project', 's']);
          return [
            container('m1', 'iris', 'model'),
            container('p1', 'proxy', 'proxy'),
            container('w1', 'iris-worker', 'worker'),
            container('w2', 'iris-worker', 'worker', 'exited'),
            container('m2', 'broken', 'model'),
          ];
        },
        async metrics(id) {
          scraped.push(id);
          if (id === 'm2') throw new Error('connection refused');
          return texts[scraped.filter((s) => s === id).length - 1]!;
        },
        queue: {
          queueUrl: async (name) => (name.endsWith('dlq') ? 'dlq-url' : 'q-url'),
          counts: async (url) =>
            url === 'q-url' ? { visible: 12, inFlight: 3 } : { visible: 1, inFlight: 0 },
        },
        clock,
      },
      { name: 's', queues: [{ service: 'iris', name: 's-iris-jobs', deadLetter: 's-iris-jobs-dlq' }] },
    );
    const s = await source.snapshot(2000);
    expect(clock.slept).toEqual([2000]);
    expect(s.windowSeconds).toBe(2);
    expect(s.services.map((r) => [r.name, r.role, `${r.replicas.running}/${r.replicas.desired}`])).toEqual([
      ['broken', 'model', '1/1'],
      ['iris', 'model', '1/1'],
      ['iris-worker', 'worker', '1/2'],
      ['proxy', 'proxy', '1/1'],
    ]);
    const iris = s.services.find((r) => r.name === 'iris')!;
    expect(iris.requestsPerSecond).toBe(329);
    expect(iris.inFlight).toBe(0);
    expect(iris.versions).toEqual(['stable']);
    expect(s.services[0]!.note).toMatch(/could not be read: connection refused/);
    expect(s.queues).toEqual([
      { service: 'iris', name: 's-iris-jobs', waiting: 12, inFlight: 3, deadLetters: 1 },
    ]);
  });
});
