// `mlship predict INPUT --service NAME|URL --out OUT`: a file of inputs through a service's
// HTTP /predict, without a queue. Bounded concurrency; a 503 (the service's queue limit) or a
// dropped connection is retried after its Retry-After; results are appended to OUT as they
// come (so an interrupted run is resumed from it: items already there are not sent again)
// and OUT is rewritten in input order at the end; failures go to OUT.failures.jsonl.

import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import type { Clock } from '../../io/clock.js';
import { deadline } from '../../io/deadline.js';
import { UsageError } from '../../io/errors.js';
import { type Item, readItems } from './inputs.js';
import { mapLimit } from './jobs.js';

export interface PredictDeps {
  fetch: typeof fetch;
  clock: Clock;
  log(line: string): void;
  progress?(label: string, done: number, total: number): void;
}

export interface PredictOptions {
  file: string;
  url: string;
  out: string;
  concurrency: number;
  /** Attempts of one item (503, connection errors) before it is a failure. */
  attempts: number;
  timeoutSeconds: number;
}

export interface PredictResult {
  url: string;
  out: string;
  failuresFile: string;
  items: number;
  /** Already in OUT from an earlier run. */
  resumed: number;
  done: number;
  failed: number;
  retries: number;
  seconds: number;
}

type Outcome = { ok: true; line: string } | { ok: false; line: string };

async function linesOf(file: string): Promise<Map<string, string>> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line) as { item?: unknown };
      if (typeof v.item === 'string') out.set(v.item, line);
    } catch {
      // a line cut short by an interruption: that item is sent again
    }
  }
  return out;
}

function retryAfterMs(r: Response, attempt: number): number {
  const header = Number(r.headers.get('retry-after'));
  return Number.isFinite(header) && header > 0 ? header * 1000 : Math.min(8000, 250 * 2 ** attempt);
}

async function predictOne(
  deps: PredictDeps,
  o: PredictOptions,
  item: Item,
  counters: { retries: number },
): Promise<Outcome> {
  let last = '';
  for (let attempt = 0; attempt < o.attempts; attempt++) {
    const limit = deadline(o.timeoutSeconds * 1000);
    try {
      const r = await deps.fetch(o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(item.input),
        signal: limit.signal,
      });
      if (r.ok) {
        const body = (await r.json()) as { prediction?: unknown };
        return { ok: true, line: JSON.stringify({ item: item.id, prediction: body.prediction }) };
      }
      const text = (await r.text()).slice(0, 500);
      if (r.status !== 503 && r.status !== 429) {
        return { ok: false, line: JSON.stringify({ item: item.id, status: r.status, error: text }) };
      }
      last = `HTTP ${r.status}`;
      counters.retries++;
      await deps.clock.sleep(retryAfterMs(r, attempt));
    } catch (e) {
      last = (e as Error).message;
      counters.retries++;
      await deps.clock.sleep(Math.min(8000, 250 * 2 ** attempt));
    } finally {
      limit.done();
    }
  }
  return { ok: false, line: JSON.stringify({ item: item.id, status: 0, error: `gave up: ${last}` }) };
}

/** Writes FILE whole, through a temporary file: never half-written. */
async function rewrite(file: string, lines: string[]): Promise<void> {
  await writeFile(`${file}.partial`, lines.length ? `${lines.join('\n')}\n` : '');
  await rename(`${file}.partial`, file);
}

export async function predictFile(deps: PredictDeps, o: PredictOptions): Promise<PredictResult> {
  if (o.concurrency < 1 || o.attempts < 1)
    throw new UsageError('--concurrency and --attempts must be at least 1');
  const items = await readItems(o.file);
  const failuresFile = `${o.out.replace(/\.jsonl$/, '')}.failures.jsonl`;
  const before = await linesOf(o.out);
  // An interrupted run may have left a line cut short: OUT is rewritten from its whole lines
  // first, so what is appended next starts on a line of its own.
  if (before.size) await rewrite(o.out, [...before.values()]);
  const todo = items.filter((i) => !before.has(i.id));
  const t0 = deps.clock.monotonic();
  const counters = { retries: 0 };
  const failures: string[] = [];
  let done = 0;
  await mapLimit(todo, o.concurrency, async (item) => {
    const outcome = await predictOne(deps, o, item, counters);
    if (outcome.ok) await appendFile(o.out, `${outcome.line}\n`);
    else failures.push(outcome.line);
    deps.progress?.('predicting', ++done, todo.length);
  });
  // OUT in input order, rewritten whole.
  const all = await linesOf(o.out);
  const ordered = items.flatMap((i) => (all.has(i.id) ? [all.get(i.id)!] : []));
  await rewrite(o.out, ordered);
  await writeFile(failuresFile, failures.length ? `${failures.join('\n')}\n` : '');
  return {
    url: o.url,
    out: o.out,
    failuresFile,
    items: items.length,
    resumed: items.length - todo.length,
    done: ordered.length,
    failed: failures.length,
    retries: counters.retries,
    seconds: Math.round((deps.clock.monotonic() - t0) / 100) / 10,
  };
}
