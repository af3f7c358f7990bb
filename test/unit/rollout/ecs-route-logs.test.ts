// A rollout the proxy routes on ECS (a shadow, a sticky or mirrored canary), without AWS: where
// each version's log lines are read (the awslogs group and
// stream prefix of its revision), what FilterLogEvents is asked (window, page limit), the
// comparison from those lines (the same parsing and statistics as locally), the notes when the
// lines cannot be read or told apart; and what `deploy ecs --local` runs while a rollout runs
// on ECS (the services' revisions, the candidate under its own name).

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RegisterTaskDefinitionCommandInput, TaskDefinition } from '@aws-sdk/client-ecs';
import { describe, expect, it } from 'vitest';
import type { LogFilterSpec } from '../../../src/core/deploy/aws-apis.js';
import { asService, rolloutTaskDefinitions } from '../../../src/core/deploy/local-run.js';
import { planEcs } from '../../../src/core/deploy/plan.js';
import { EcsRollout } from '../../../src/core/rollout/ecs.js';
import { LOG_PAGES, logSource, routeComparison } from '../../../src/core/rollout/ecs-logs.js';
import type { ProxyRouteRecord } from '../../../src/core/rollout/ecs-proxy-route.js';
import { rolloutFromFlags } from '../../../src/core/rollout/options.js';
import { readRollouts, writeRollouts } from '../../../src/core/rollout/state.js';
import { DEFAULT_GATES } from '../../../src/core/rollout/verdict.js';
import { fakeClock } from '../../../src/io/clock.js';

const ARN = (rev: string) => `arn:aws:ecs:eu-west-1:123456789012:task-definition/sh-demo-${rev}`;
const awslogs = (prefix: string, driver = 'awslogs') => ({
  logDriver: driver,
  options: {
    'awslogs-group': '/mlship/sh-demo',
    'awslogs-region': 'eu-west-1',
    'awslogs-stream-prefix': prefix,
  },
});
const revision = (rev: string, prefix: string, extra: object = {}): TaskDefinition =>
  ({
    family: `sh-demo-${rev.split(':')[0]}`,
    revision: Number(rev.split(':')[1]),
    taskDefinitionArn: ARN(rev),
    containerDefinitions: [
      { name: rev.split(':')[0], image: `img/${rev}`, logConfiguration: awslogs(prefix), ...extra },
    ],
  }) as TaskDefinition;

const RECORD: ProxyRouteRecord = {
  cluster: 'sh-demo',
  stableService: 'iris',
  candidateService: 'iris-candidate',
  stableTaskDefinition: ARN('iris:1'),
  candidateTaskDefinition: ARN('iris:2'),
  proxyService: 'proxy',
  proxyTaskDefinition: ARN('proxy:1'),
  routeProxyTaskDefinition: ARN('proxy:2'),
  routeProxyImage: '127.0.0.1:5000/nginx:rollout-0123456789ab',
};

/** The lines a wrapped service logs (app/logs.py) for x = 0..n-1: stable answers 2x, the candidate differs on x % 10 == 0. */
function lines(side: 'stable' | 'candidate', n: number): string[] {
  const out: string[] = [];
  for (let x = 0; x < n; x++) {
    const rid = `r-${x}`;
    const answer = { prediction: side === 'stable' || x % 10 ? 2 * x : 2 * x + 1 };
    const common = { ts: 1, level: 'info', logger: 'app', request_id: rid, path: '/predict' };
    if (side === 'stable')
      out.push(JSON.stringify({ ...common, msg: 'request', method: 'POST', status: 200, duration_ms: 3 }));
    else {
      out.push(JSON.stringify({ ...common, msg: 'request', method: 'POST', status: 202, duration_ms: 0.4 }));
      out.push(
        JSON.stringify({ ...common, msg: 'shadow', version: 'candidate', status: 200, duration_ms: 3 }),
      );
    }
    out.push(JSON.stringify({ ...common, msg: 'answer', version: side, answer }));
  }
  return [...out, '[2026-12-02 12:00:00 +0000] [1] [INFO] Booting worker with pid: 7'];
}

function deps(tds: TaskDefinition[], pages: Record<string, { messages: string[]; truncated: boolean }>) {
  const asked: LogFilterSpec[] = [];
  return {
    asked,
    ecs: { latestTaskDefinition: async (arn: string) => tds.find((t) => t.taskDefinitionArn === arn) },
    logs: {
      filterMessages: async (spec: LogFilterSpec) => {
        asked.push(spec);
        return pages[spec.streamPrefix] ?? { messages: [], truncated: false };
      },
    },
  };
}

const WINDOW = { startMs: Date.parse('2026-12-02T12:00:00Z'), endMs: Date.parse('2026-12-02T13:00:00Z') };
/** A shadow: every request mirrored, both sides weigh the same. */
const SHADOW = { share: 0.5, mirrored: true };

describe('a shadow on ECS: the comparison from CloudWatch Logs', () => {
  it("each revision's streams: its awslogs group, `<prefix>/<container>/`; none for another driver", () => {
    expect(logSource(revision('iris:1', 'iris'), 'iris')).toEqual({
      group: '/mlship/sh-demo',
      streamPrefix: 'iris/iris/',
    });
    const other = revision('iris:1', 'iris', { logConfiguration: awslogs('iris', 'json-file') });
    expect(logSource(other, 'iris')).toBeUndefined();
    expect(logSource(undefined, 'iris')).toBeUndefined();
  });

  it("reads each side's streams in the rollout's window, a page limit each, and compares them as locally", async () => {
    const d = deps([revision('iris:1', 'iris'), revision('iris:2', 'iris-candidate')], {
      'iris/iris/': { messages: lines('stable', 200), truncated: false },
      'iris-candidate/iris/': { messages: lines('candidate', 200), truncated: true },
    });
    const r = await routeComparison(d, RECORD, 'iris', WINDOW, DEFAULT_GATES, SHADOW);
    expect(d.asked.sort((a, b) => a.streamPrefix.localeCompare(b.streamPrefix))).toEqual([
      { group: '/mlship/sh-demo', streamPrefix: 'iris-candidate/iris/', ...WINDOW, maxPages: LOG_PAGES },
      { group: '/mlship/sh-demo', streamPrefix: 'iris/iris/', ...WINDOW, maxPages: LOG_PAGES },
    ]);
    // 200 requests each (the candidate's 202 acceptances are not counted), 200 pairs, 10 % differing.
    expect(r.comparison?.stable.requests).toBe(200);
    expect(r.comparison?.candidate.requests).toBe(200);
    expect(r.comparison?.agreement).toMatchObject({ pairs: 200, rate: 0.9 });
    expect(r.mirror).toEqual({ mirrored: 200, predicted: 200, notPredicted: 0 });
    expect(r.notes).toEqual([
      'read 401 log lines of /mlship/sh-demo, streams iris/iris/*',
      `read 601 log lines of /mlship/sh-demo, streams iris-candidate/iris/* (its first ${LOG_PAGES} pages only: the rollout's earliest requests)`,
    ]);
  });

  it("a 10 % canary the proxy routes (sticky, API keys): the candidate's share in the power estimate, no mirror outcome", async () => {
    const d = deps([revision('iris:1', 'iris'), revision('iris:2', 'iris-candidate')], {
      'iris/iris/': { messages: lines('stable', 200), truncated: false },
      'iris-candidate/iris/': { messages: lines('candidate', 200), truncated: false },
    });
    const canary = await routeComparison(d, RECORD, 'iris', WINDOW, DEFAULT_GATES, {
      share: 0.1,
      mirrored: false,
    });
    const shadow = await routeComparison(d, RECORD, 'iris', WINDOW, DEFAULT_GATES, SHADOW);
    expect(canary.mirror).toBeUndefined();
    expect(canary.comparison?.candidate.requests).toBe(200);
    // Beside nine stable requests for each of its own, a 10 % slice shows a 2-point increase with
    // fewer candidate requests than an even split needs (as locally: the same share).
    expect(canary.comparison!.requestsFor2PointIncrease).toBeLessThan(
      shadow.comparison!.requestsFor2PointIncrease,
    );
  });

  it('says why there is nothing to compare: no awslogs, or both versions under one prefix (nothing read)', async () => {
    const none = deps(
      [revision('iris:1', 'iris'), revision('iris:2', 'iris', { logConfiguration: undefined })],
      {},
    );
    const a = await routeComparison(none, RECORD, 'iris', WINDOW, DEFAULT_GATES, SHADOW);
    expect(a.comparison).toBeUndefined();
    expect(a.notes.join()).toMatch(/does not log to CloudWatch Logs/);
    const same = deps([revision('iris:1', 'iris'), revision('iris:2', 'iris')], {});
    const b = await routeComparison(same, RECORD, 'iris', WINDOW, DEFAULT_GATES, SHADOW);
    expect(b.comparison).toBeUndefined();
    expect(b.notes.join()).toMatch(/cannot be told apart/);
    expect(same.asked).toEqual([]);
  });
});

describe("EcsRollout's status of a shadow", () => {
  it('reads from the start to now while it runs, and only up to its end once it is over', async () => {
    const dir = path.join(os.tmpdir(), `mlship-shadow-logs-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'mlship.yaml');
    writeFileSync(
      file,
      'version: 1\nname: sh-demo\nservices:\n  iris:\n    image: r.example/iris:1\nproxy: {}\n',
    );
    const plan = await planEcs({
      file,
      imageTag: 't',
      force: false,
      writeFiles: false,
      region: 'eu-west-1',
      accountId: '123456789012',
    });
    const d = deps([revision('iris:1', 'iris'), revision('iris:2', 'iris-candidate')], {});
    const clock = fakeClock(WINDOW.endMs);
    const ecs = { ...d.ecs, describeService: async () => undefined } as never;
    const target = new EcsRollout(
      { ecs, logs: d.logs, clock, log: () => undefined } as never,
      { plan, configFile: file, stateFile: path.join(dir, 'r.json') },
      'iris',
    );
    const rollout = {
      ...rolloutFromFlags('iris', { shadow: true, image: 'i:2' }, new Date(WINDOW.startMs)),
      ecsProxy: RECORD,
    };
    await writeRollouts(path.join(dir, 'r.json'), { version: 1, rollouts: { iris: rollout } });
    const report = await target.status();
    expect(report.verdict.decision).toBe('hold');
    expect(d.asked.map((a) => [a.startMs, a.endMs])).toEqual([
      [WINDOW.startMs, WINDOW.endMs],
      [WINDOW.startMs, WINDOW.endMs],
    ]);
    const over = '2026-12-02T12:30:00.000Z';
    const done = {
      ...rollout,
      status: 'rolled-back' as const,
      history: [...rollout.history, { at: over, action: 'rollback' as const, weight: 0 }],
    };
    await writeRollouts(path.join(dir, 'r.json'), { version: 1, rollouts: { iris: done } });
    d.asked.length = 0;
    await target.status();
    expect(d.asked.map((a) => a.endMs)).toEqual([Date.parse(over), Date.parse(over)]);
  });
});

describe('deploy ecs --local while a rollout runs on ECS', () => {
  // What latestTaskDefinition(family) answers during a shadow: the candidate's and the mirroring proxy's revisions.
  const described = [revision('iris:2', 'iris-candidate'), revision('proxy:2', 'proxy')];
  const latest = described as RegisterTaskDefinitionCommandInput[];
  const all = [revision('iris:1', 'iris'), ...described, revision('proxy:1', 'proxy')];
  const ecs = { latestTaskDefinition: async (arn: string) => all.find((t) => t.taskDefinitionArn === arn) };
  const shadow = {
    ...rolloutFromFlags('iris', { shadow: true, image: 'img/iris:2' }, new Date(WINDOW.startMs)),
    ecsProxy: RECORD,
  };
  const names = (tds: RegisterTaskDefinitionCommandInput[]) =>
    tds.map(
      (t) =>
        `${(t as TaskDefinition).taskDefinitionArn!.split('/').pop()} ${t.containerDefinitions![0]!.name}`,
    );

  it('runs what the services run: stable, the proxy with the mirror, and the candidate as iris-candidate', async () => {
    const run = await rolloutTaskDefinitions(latest, [shadow], { aws: { ecs } as never });
    expect(names(run.taskDefinitions)).toEqual([
      'sh-demo-iris:1 iris',
      'sh-demo-proxy:2 proxy',
      'sh-demo-iris:2 iris-candidate',
    ]);
    // The shadow shares this machine's CPUs with the stable service: it runs at the lowest weight.
    expect(run.lowPriority).toEqual(['iris-candidate']);
  });

  it('a canary the proxy routes runs its candidate at the normal CPU weight (it answers clients)', async () => {
    const canary = {
      ...rolloutFromFlags(
        'iris',
        { canary: '10', stickyHeader: 'X-User-Id', image: 'img/iris:2' },
        new Date(WINDOW.startMs),
      ),
      ecsProxy: RECORD,
    };
    const run = await rolloutTaskDefinitions(latest, [canary], { aws: { ecs } as never });
    expect(names(run.taskDefinitions)).toEqual([
      'sh-demo-iris:1 iris',
      'sh-demo-proxy:2 proxy',
      'sh-demo-iris:2 iris-candidate',
    ]);
    expect(run.lowPriority).toEqual([]);
  });

  it('a shadow recorded by an earlier mlship (ecsShadow) is read as the proxy route it is', async () => {
    const file = path.join(os.tmpdir(), `mlship-ecs-shadow-${process.pid}.json`);
    const { ecsProxy: _, ...bare } = shadow;
    const { routeProxyTaskDefinition, routeProxyImage, ...rest } = RECORD;
    const legacy = {
      ...bare,
      ecsShadow: {
        ...rest,
        shadowProxyTaskDefinition: routeProxyTaskDefinition,
        shadowProxyImage: routeProxyImage,
      },
    };
    writeFileSync(file, JSON.stringify({ version: 1, rollouts: { iris: legacy } }));
    const read = await readRollouts(file);
    expect(read.rollouts.iris!.ecsProxy).toEqual(RECORD);
    expect(read.rollouts.iris).not.toHaveProperty('ecsShadow');
  });

  it('a rollout that is over changes nothing', async () => {
    const done = { ...shadow, status: 'rolled-back' as const };
    const run = await rolloutTaskDefinitions(latest, [done], { aws: { ecs } as never });
    expect(names(run.taskDefinitions)).toEqual(['sh-demo-iris:2 iris', 'sh-demo-proxy:2 proxy']);
    expect(run.lowPriority).toEqual([]);
  });

  it('renames every container of the candidate task, and what they depend on', () => {
    const td = {
      family: 'sh-demo-iris',
      containerDefinitions: [
        { name: 'iris', dependsOn: [{ containerName: 'weights', condition: 'SUCCESS' }] },
        { name: 'weights', essential: false },
      ],
    } as RegisterTaskDefinitionCommandInput;
    expect(asService(td, 'iris', 'iris-candidate').containerDefinitions).toEqual([
      { name: 'iris-candidate', dependsOn: [{ containerName: 'weights-candidate', condition: 'SUCCESS' }] },
      { name: 'weights-candidate', essential: false },
    ]);
  });
});
