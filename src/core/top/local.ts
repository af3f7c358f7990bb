// `mlship top` on the local stack: its containers from the engine (the compose project's
// label; replicas are containers of a compose service, running of all), each model
// container's /metrics read inside the container (the services are never published except
// through the proxy, which does not serve /metrics), and the workers' queues from the local
// ElasticMQ. Rates come from the difference with the previous scrape of the same container.

import type { ContainerState } from '../../adapters/docker/engine.js';
import type { Clock } from '../../io/clock.js';
import { PROJECT_LABEL, SERVICE_LABEL } from '../compose/ports.js';
import { serviceRates } from './rates.js';
import { type ScrapeTotals, totalsOf } from './scrape.js';
import {
  type QueueCounts,
  queueCounts,
  type ServiceRole,
  type StackQueue,
  type TopService,
  type TopSnapshot,
  type TopSource,
} from './snapshot.js';

const ROLE_LABEL = 'dev.mlship.role';

export interface LocalTopDeps {
  /** The containers carrying a label (the engine's listByLabel). */
  listByLabel(label: string, value: string): Promise<ContainerState[]>;
  /** A model container's /metrics text, fetched inside it. */
  metrics(containerId: string): Promise<string>;
  /** The stack's queue server, when it has workers. */
  queue?: QueueCounts;
  clock: Clock;
}

export interface LocalTopStack {
  name: string;
  queues: StackQueue[];
}

function roleOf(c: ContainerState): ServiceRole {
  const role = c.labels[ROLE_LABEL];
  return role === 'model' || role === 'worker' || role === 'proxy' ? role : 'other';
}

const ORDER: Record<ServiceRole, number> = { model: 0, worker: 1, proxy: 2, other: 3 };

/** Scrapes every running model container; a failed read is the reason instead of the totals. */
async function scrapeAll(
  deps: LocalTopDeps,
  containers: ContainerState[],
): Promise<Map<string, ScrapeTotals | string>> {
  const out = new Map<string, ScrapeTotals | string>();
  await Promise.all(
    containers
      .filter((c) => roleOf(c) === 'model' && c.state === 'running')
      .map(async (c) => {
        try {
          out.set(c.id, totalsOf(await deps.metrics(c.id)));
        } catch (e) {
          out.set(c.id, `its /metrics could not be read: ${(e as Error).message}`);
        }
      }),
  );
  return out;
}

export class LocalTopSource implements TopSource {
  private previous: { at: number; scrapes: Map<string, ScrapeTotals | string> } | undefined;

  constructor(
    private readonly deps: LocalTopDeps,
    private readonly stack: LocalTopStack,
  ) {}

  private async read() {
    const containers = await this.deps.listByLabel(PROJECT_LABEL, this.stack.name);
    const started = this.deps.clock.monotonic();
    const scrapes = await scrapeAll(this.deps, containers);
    // A scrape (docker exec) takes a while: its middle is when the counters were read.
    return { at: (started + this.deps.clock.monotonic()) / 2, containers, scrapes };
  }

  async snapshot(warmupMs: number): Promise<TopSnapshot> {
    if (!this.previous) {
      const first = await this.read();
      this.previous = { at: first.at, scrapes: first.scrapes };
      await this.deps.clock.sleep(warmupMs);
    }
    const now = await this.read();
    const seconds = (now.at - this.previous.at) / 1000;
    const services = servicesOf(now.containers, this.previous.scrapes, now.scrapes, seconds);
    this.previous = { at: now.at, scrapes: now.scrapes };
    const queues = this.deps.queue ? await queueCounts(this.stack.queues, this.deps.queue) : [];
    return {
      stack: this.stack.name,
      where: 'local',
      at: new Date(this.deps.clock.now()).toISOString(),
      windowSeconds: Math.round(seconds * 10) / 10,
      services,
      queues,
      notes: services.length ? [] : [`no container of stack ${this.stack.name} runs: \`mlship compose up\``],
    };
  }
}

const totals = (m: Map<string, ScrapeTotals | string>) =>
  new Map([...m].filter((e): e is [string, ScrapeTotals] => typeof e[1] !== 'string'));

/** One row per compose service, its containers' numbers summed. */
export function servicesOf(
  containers: ContainerState[],
  prev: Map<string, ScrapeTotals | string>,
  cur: Map<string, ScrapeTotals | string>,
  seconds: number,
): TopService[] {
  const byService = new Map<string, ContainerState[]>();
  for (const c of containers) {
    const name = c.labels[SERVICE_LABEL];
    if (name) byService.set(name, [...(byService.get(name) ?? []), c]);
  }
  const before = totals(prev);
  const rows: TopService[] = [];
  for (const [name, list] of byService) {
    const role = roleOf(list[0]!);
    const running = list.filter((c) => c.state === 'running');
    const row: TopService = {
      name,
      role,
      versions: [],
      replicas: { running: running.length, desired: list.length },
    };
    if (role === 'model') Object.assign(row, modelNumbers(running, before, cur, seconds));
    rows.push(row);
  }
  return rows.sort((a, b) => ORDER[a.role] - ORDER[b.role] || a.name.localeCompare(b.name));
}

function modelNumbers(
  running: ContainerState[],
  before: Map<string, ScrapeTotals>,
  cur: Map<string, ScrapeTotals | string>,
  seconds: number,
): Partial<TopService> {
  const mine = new Map<string, ScrapeTotals>();
  let failure: string | undefined;
  for (const c of running) {
    const t = cur.get(c.id);
    if (typeof t === 'string') failure ??= t;
    else if (t) mine.set(c.id, t);
  }
  if (!mine.size) return failure ? { note: failure } : {};
  const versions = [...new Set([...mine.values()].flatMap((t) => t.versions))].sort();
  // The gauge counts the /metrics request that read it: one per container, taken off.
  const inFlight = [...mine.values()].reduce((n, t) => n + Math.max(0, t.inFlight - 1), 0);
  const seen = [...mine.keys()].some((id) => before.has(id));
  return {
    versions,
    inFlight,
    ...(seen ? serviceRates(before, mine, seconds) : { note: 'no rate yet (a new container)' }),
    ...(failure ? { note: failure } : {}),
  };
}
