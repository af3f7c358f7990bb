// The logs adapter's FilterLogEvents reading (a shadow's `rollout status` on ECS) against moto's
// real CloudWatch Logs: one side's streams by prefix (moto ignores the prefix; the adapter keeps
// only those streams), the window, pages followed up to the limit and the rest said to be left,
// a group that does not exist yet read as empty; every request and answer checked against
// botocore's model of the API.

import * as logsSdk from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogsApi } from '../../src/adapters/aws/logs-api.js';
import { loadServiceModel, validateShape } from '../helpers/aws-model.js';
import { type Moto, startMoto } from '../helpers/moto.js';
import { requires } from '../helpers/requires.js';

const model = loadServiceModel('logs');
const hasModel = requires(
  'botocore models',
  Boolean(model),
  'pip install -r requirements-dev.txt into .venv',
);
const GROUP = '/mlship/lf-demo';
const moto: Moto | undefined = hasModel ? await startMoto() : undefined;
/** More than one page of FilterLogEvents (at most 10,000 events a page). */
const STABLE_EVENTS = 10_500;

describe.runIf(moto)('CloudWatch Logs: a service’s lines since a rollout started (moto)', () => {
  let client: logsSdk.CloudWatchLogsClient;
  const calls: { op: string; input: unknown; output: unknown }[] = [];
  const start = Date.now() - 60_000;
  const end = Date.now() + 60_000;
  let api: ReturnType<typeof createLogsApi>;

  beforeAll(async () => {
    client = new logsSdk.CloudWatchLogsClient({
      region: 'eu-west-1',
      endpoint: moto!.endpoint,
      credentials: { accessKeyId: 'AKIAMLSHIPTESTKEY000', secretAccessKey: 'x' },
    });
    await client.send(new logsSdk.CreateLogGroupCommand({ logGroupName: GROUP }));
    const put = async (stream: string, events: { timestamp: number; message: string }[]) => {
      await client.send(new logsSdk.CreateLogStreamCommand({ logGroupName: GROUP, logStreamName: stream }));
      for (let i = 0; i < events.length; i += 5_000)
        await client.send(
          new logsSdk.PutLogEventsCommand({
            logGroupName: GROUP,
            logStreamName: stream,
            logEvents: events.slice(i, i + 5_000),
          }),
        );
    };
    const at = (i: number) => start + 1_000 + Math.floor(i / 1_000);
    await put('iris/iris/task1', [
      { timestamp: start - 5_000, message: 'before the rollout' },
      ...Array.from({ length: STABLE_EVENTS }, (_, i) => ({ timestamp: at(i), message: `stable ${i}` })),
    ]);
    await put(
      'iris-candidate/iris/task2',
      Array.from({ length: 50 }, (_, i) => ({ timestamp: at(i), message: `candidate ${i}` })),
    );
    // The adapter's calls, with moto's answers, recorded for the checks against botocore's model.
    const recording = {
      send: async (command: logsSdk.FilterLogEventsCommand) => {
        const output = await client.send(command);
        calls.push({ op: command.constructor.name, input: command.input, output });
        return output;
      },
    } as unknown as logsSdk.CloudWatchLogsClient;
    api = createLogsApi(logsSdk, recording);
  }, 120_000);
  /** One side's lines from the rollout's start (a minute ago) to a minute ahead. */
  const read = (streamPrefix: string, maxPages: number, group = GROUP) =>
    api.filterMessages({ group, streamPrefix, startMs: start, endMs: end, maxPages });
  afterAll(async () => {
    client?.destroy();
    await moto?.stop();
  });

  it('one side’s streams in the window, every page; the other side’s apart', async () => {
    const stable = await read('iris/iris/', 5);
    expect(stable.truncated).toBe(false);
    expect(stable.messages.length).toBe(STABLE_EVENTS);
    expect(new Set(stable.messages).size).toBe(STABLE_EVENTS);
    expect(stable.messages.every((m) => m.startsWith('stable '))).toBe(true);
    const filters = calls.filter((c) => c.op === 'FilterLogEventsCommand');
    expect(filters.length).toBeGreaterThan(1);
    expect(filters[0]!.input).toEqual({
      logGroupName: GROUP,
      logStreamNamePrefix: 'iris/iris/',
      startTime: start,
      endTime: end,
    });
    const candidate = await read('iris-candidate/iris/', 5);
    expect(candidate).toEqual({
      messages: Array.from({ length: 50 }, (_, i) => `candidate ${i}`),
      truncated: false,
    });
    for (const c of calls) {
      expect(validateShape(model!, 'FilterLogEventsRequest', c.input)).toEqual([]);
      const { $metadata: _, ...answer } = c.output as Record<string, unknown>;
      expect(validateShape(model!, 'FilterLogEventsResponse', answer)).toEqual([]);
    }
  });

  it('at the page limit: what was read, and that more was left; no group yet: nothing', async () => {
    const one = await read('iris/iris/', 1);
    expect(one.truncated).toBe(true);
    expect(one.messages.length).toBeGreaterThan(0);
    expect(one.messages.length).toBeLessThan(STABLE_EVENTS);
    const missing = await read('iris/iris/', 5, '/mlship/none');
    expect(missing).toEqual({ messages: [], truncated: false });
  });
});
