// mlship predict's core against a scripted service (the real one, through the local proxy, is in
// test/docker/compose.test.ts): retries after Retry-After, failures in the side file, results
// in input order whatever order they finish in, and a resumed run that sends only what is
// missing, even when the interrupted run left half a line.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { predictFile } from '../../../src/core/jobs/predict.js';
import { fakeClock } from '../../../src/io/clock.js';

const URL = 'http://127.0.0.1:1/predict';

/** A service that answers each input {x} by a script: calls per x are counted. */
function service(script: (x: number, call: number) => Response | Error) {
  const calls = new Map<number, number>();
  const sent: number[] = [];
  const fetchFn = (async (_url: string, init: RequestInit) => {
    const x = (JSON.parse(String(init.body)) as { x: number }).x;
    const call = (calls.get(x) ?? 0) + 1;
    calls.set(x, call);
    sent.push(x);
    // Later items answer sooner, so completion order is not input order.
    await new Promise((r) => setTimeout(r, 10 - x));
    const answer = script(x, call);
    if (answer instanceof Error) throw answer;
    return answer;
  }) as unknown as typeof fetch;
  return { fetchFn, sent };
}

const ok = (x: number) => Response.json({ prediction: x * 10 });

function inputs(dir: string, n: number): string {
  const file = path.join(dir, 'in.jsonl');
  writeFileSync(file, Array.from({ length: n }, (_, x) => JSON.stringify({ x })).join('\n'));
  return file;
}

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('mlship predict (core)', () => {
  it('retries a 503 after its Retry-After and a dropped connection; other errors and exhausted retries go to the side file; OUT in input order', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-predict-'));
    const { fetchFn } = service((x, call) => {
      if (x === 1 && call === 1)
        return new Response('busy', { status: 503, headers: { 'retry-after': '2' } });
      if (x === 2) return new Response('{"detail":"features: field required"}', { status: 422 });
      if (x === 3 && call === 1) return new TypeError('fetch failed');
      if (x === 4) return new Response('busy', { status: 503 });
      return ok(x);
    });
    const clock = fakeClock();
    const out = path.join(dir, 'out.jsonl');
    const r = await predictFile(
      { fetch: fetchFn, clock, log: () => undefined },
      { file: inputs(dir, 7), url: URL, out, concurrency: 3, attempts: 3, timeoutSeconds: 5 },
    );
    expect(lines(out)).toEqual([0, 1, 3, 5, 6].map((x) => ({ item: String(x), prediction: x * 10 })));
    const failures = lines(`${dir}/out.failures.jsonl`);
    expect(failures.map((f) => [f.item, f.status])).toEqual(
      expect.arrayContaining([
        ['2', 422],
        ['4', 0],
      ]),
    );
    expect(failures).toHaveLength(2);
    expect(failures.find((f) => f.item === '2').error).toContain('field required');
    expect(failures.find((f) => f.item === '4').error).toBe('gave up: HTTP 503');
    // Retry-After: 2 is waited as 2 s; the others back off from 250 ms.
    expect(clock.slept).toContain(2000);
    expect(r).toMatchObject({ items: 7, resumed: 0, done: 5, failed: 2, retries: 1 + 1 + 3 });
  });

  it('a resumed run sends only the items missing from OUT, even after a line cut short', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-predict-'));
    const out = path.join(dir, 'out.jsonl');
    // An interrupted run: items 3 and 0 finished, item 1 was being written when it stopped.
    writeFileSync(out, '{"item":"3","prediction":30}\n{"item":"0","prediction":0}\n{"item":"1","predic');
    const { fetchFn, sent } = service((x) => ok(x));
    const r = await predictFile(
      { fetch: fetchFn, clock: fakeClock(), log: () => undefined },
      { file: inputs(dir, 5), url: URL, out, concurrency: 2, attempts: 2, timeoutSeconds: 5 },
    );
    expect(sent.sort()).toEqual([1, 2, 4]);
    expect(lines(out)).toEqual([0, 1, 2, 3, 4].map((x) => ({ item: String(x), prediction: x * 10 })));
    expect(r).toMatchObject({ items: 5, resumed: 2, done: 5, failed: 0 });
    expect(readFileSync(`${dir}/out.failures.jsonl`, 'utf8')).toBe('');
  });

  it('--concurrency 0 is a usage error', async () => {
    await expect(
      predictFile(
        { fetch, clock: fakeClock(), log: () => undefined },
        { file: 'x.jsonl', url: URL, out: 'o.jsonl', concurrency: 0, attempts: 1, timeoutSeconds: 1 },
      ),
    ).rejects.toThrow('--concurrency and --attempts must be at least 1');
  });
});
