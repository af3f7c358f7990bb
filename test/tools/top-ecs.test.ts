// `mlship top --aws` against moto, for what moto answers: a stack applied by `deploy ecs`
// (its ECS services with their desired and running counts, the job queue and its dead-letter
// queue) read through the built CLI's --json snapshot. moto keeps no values for the load
// balancer's or the services' own CloudWatch metrics, so the rates are empty here (none that
// minute); test/unit/top/ecs.test.ts covers them with a GetMetricData answer checked against
// botocore's model.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployApis } from '../../src/adapters/aws/deploy-apis.js';
import { applyEcs } from '../../src/core/deploy/apply.js';
import { planEcs } from '../../src/core/deploy/plan.js';
import type { TopSnapshot } from '../../src/core/top/snapshot.js';
import { runCli } from '../helpers/cli-process.js';
import { type Moto, startMoto } from '../helpers/moto.js';

const moto: Moto | undefined = await startMoto();
const STACK = 'top-stack';
let dir = '';

describe.skipIf(!moto)('mlship top --aws on moto: replicas and queues', () => {
  beforeAll(async () => {
    Object.assign(process.env, moto!.env);
    dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-top-ecs-'));
    mkdirSync(path.join(dir, 'services/iris'), { recursive: true });
    writeFileSync(path.join(dir, 'services/iris/Dockerfile'), 'FROM scratch\n');
    writeFileSync(
      path.join(dir, 'mlship.yaml'),
      [
        `name: ${STACK}`,
        'services:',
        '  iris:',
        '    path: services/iris',
        '    worker:',
        '      max_tasks: 4',
        'storage: {}',
        'queue: {}',
        'aws:',
        '  region: us-east-1',
        '  account_id: "123456789012"',
        '',
      ].join('\n'),
    );
    const plan = await planEcs({
      file: path.join(dir, 'mlship.yaml'),
      imageTag: 'latest',
      force: true,
      writeFiles: false,
    });
    const aws = createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
    try {
      await applyEcs(
        plan,
        { aws, engine: {} as never, log: () => undefined },
        { localImages: {}, force: false, wait: false, iamPropagationSeconds: 0 },
      );
    } finally {
      aws.destroy();
    }
    // A backlog of 3 items waiting for the worker.
    const sqs = new SQSClient({ region: 'us-east-1', endpoint: moto!.endpoint });
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: `${STACK}-iris-jobs` }));
    for (const i of [1, 2, 3])
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify({ item: i }) }));
    sqs.destroy();
  });
  afterAll(async () => {
    await moto?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('--json: every ECS service with its counts, the queue backlog, no rate without CloudWatch data', async () => {
    const r = await runCli(['--json', 'top', '--aws', '--endpoint-url', moto!.endpoint], {
      cwd: dir,
      env: moto!.env as Record<string, string>,
    });
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as TopSnapshot & { ok: boolean };
    expect(s).toMatchObject({ ok: true, stack: STACK, where: 'us-east-1', windowSeconds: 60 });
    const byName = Object.fromEntries(s.services.map((x) => [x.name, x]));
    expect(Object.keys(byName)).toEqual(expect.arrayContaining(['iris', 'iris-worker']));
    expect(byName.iris!.role).toBe('model');
    expect(byName['iris-worker']!.role).toBe('worker');
    // What the apply asked for: the service 1 task, its worker from 0 (scaled by the backlog).
    expect(byName.iris!.replicas.desired).toBe(1);
    expect(byName['iris-worker']!.replicas.desired).toBe(0);
    for (const x of s.services) expect(x.note).toBeUndefined();
    expect(byName.iris!.requestsPerSecond).toBe(0);
    expect(byName.iris!.p50Ms).toBeUndefined();
    expect(s.queues).toEqual([
      { service: 'iris', name: `${STACK}-iris-jobs`, waiting: 3, inFlight: 0, deadLetters: 0 },
    ]);
    expect(s.notes.join(' ')).toMatch(/last complete minute/);
  });

  it('without --json and not on a terminal: the same snapshot as text', async () => {
    const r = await runCli(['top', '--aws', '--endpoint-url', moto!.endpoint], {
      cwd: dir,
      env: moto!.env as Record<string, string>,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^mlship top · ${STACK} · us-east-1 · `));
    expect(r.stdout).toMatch(/^iris\s+model\s+-\s+\d+\/1\s+0\.0\s+-\s+-\s+-/m);
    expect(r.stdout).toMatch(new RegExp(`^${STACK}-iris-jobs\\s+3\\s+0\\s+0$`, 'm'));
  });
});
