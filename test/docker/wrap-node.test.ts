// `mlship wrap --runtime node`: an ONNX model served by Node and onnxruntime-node,
// built into a real image and checked over HTTP like the Python service.
//
// No registry is reachable here, so the node:22-slim stand-in is made locally
// from the Debian base image plus the Node binary running this test and npm.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { buildService, type RunningService, serve } from '../../src/core/serve/serve.js';
import { runWrap } from '../../src/core/wrap/wrap.js';
import { LOCAL_DEBIAN_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { expectShadowLines } from '../helpers/emf.js';
import { ensureNodeImage, NODE_IMAGE } from './node-media-helpers.js';
import {
  expectTwentyInputsInThreeCalls,
  get,
  hostPredict,
  irisInputs,
  makeIrisOnnx,
  metric,
  post,
  quietTasks,
} from './wrap-helpers.js';

const run = `wrap-node-${randomBytes(4).toString('hex')}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-node-'));
const TAG = `mlship-test/iris-node:${run}`;
const EXAMPLE = JSON.parse(readFileSync('fixtures/wrap/iris/example.json', 'utf8')) as Record<string, number>;
const log: string[] = [];
let engine: DockerEngine | undefined;

beforeAll(async () => {
  engine = await requireEngine();
  if (engine) {
    await requireImage(engine, LOCAL_DEBIAN_IMAGE);
    await ensureNodeImage(engine);
  }
});

afterAll(async () => {
  if (engine) {
    await engine.removeByLabel(RUN_LABEL, run);
    await engine.removeImage(TAG, true);
  }
  rmSync(tmp, { recursive: true, force: true });
});

/** A service's JSON log lines, read again every 250 ms (up to 5 s) until `done` holds. */
async function jsonLinesUntil(
  svc: RunningService,
  done: (lines: Record<string, unknown>[]) => boolean,
): Promise<Record<string, unknown>[]> {
  const read = async () =>
    (await svc.handle.logs(400))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  let lines = await read();
  for (let i = 0; i < 20 && !done(lines); i++) {
    await new Promise((r) => setTimeout(r, 250));
    lines = await read();
  }
  return lines;
}

describe.runIf(await requireEngine())('wrapped ONNX model on the Node runtime (onnxruntime-node)', () => {
  let svc: RunningService;
  let url: string;
  const model = path.join(tmp, 'iris.onnx');
  const out = path.join(tmp, 'iris-node');

  beforeAll(async () => {
    makeIrisOnnx(model);
    await runWrap({
      cwd: process.cwd(),
      model,
      runtime: 'node',
      example: 'fixtures/wrap/iris/example.json',
      out,
      baseImage: NODE_IMAGE,
      maxBodyBytes: 4096,
      batching: { maxBatchSize: 8, maxLatencyMs: 20 },
      force: false,
      dryRun: false,
    });
    await buildService({ dir: out, image: TAG }, { engine: engine!, tasks: quietTasks(log) });
    // As a rollout's candidate on AWS: its log lines are CloudWatch metrics (checked below).
    const env = {
      MLSHIP_METRICS_NAMESPACE: 'mlship/demo',
      SERVICE_NAME: 'iris',
      MLSHIP_MODEL_VERSION: 'candidate',
    };
    svc = await serve(
      { dir: out, image: TAG, build: false, hostPort: 0, runLabel: run, env },
      { engine: engine!, tasks: quietTasks(log) },
    );
    url = svc.result.url;
  });

  it('answers the example like onnxruntime on the host', () => {
    expect(svc.result.prediction).toEqual(hostPredict(model, [Object.values(EXAMPLE)])[0]);
  });

  it('answers liveness and readiness, with the thread budget ONNX Runtime got', async () => {
    expect((await get(`${url}/healthz`)).body).toEqual({ status: 'ok' });
    const ready = (await get(`${url}/readyz`)).body as { status: string; threads: Record<string, unknown> };
    expect(ready.status).toBe('ready');
    // One process: every whole CPU this container may use goes to its intra-op pool.
    const cpus = ready.threads.cpus as number;
    expect(ready.threads).toMatchObject({ workers: 1, threads_per_worker: Math.max(1, Math.floor(cpus)) });
    const logs = await svc.handle.logs(200);
    const line = logs.split('\n').find((l) => l.includes('"model ready"'));
    expect(JSON.parse(line!)).toMatchObject({ threads_per_worker: ready.threads.threads_per_worker });
  });

  it('concurrent requests each get their own answer; no model call exceeds max_batch_size', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => [
      4.5 + (i % 10) * 0.3,
      3.0,
      1.0 + (i % 7) * 0.8,
      0.1 + (i % 5) * 0.5,
    ]);
    const replies = await Promise.all(irisInputs(rows).map((input) => post(`${url}/predict`, input)));
    expect(replies.map((r) => (r.body as { prediction: unknown }).prediction)).toEqual(
      hostPredict(model, rows),
    );
    const text = (await get(`${url}/metrics`)).text;
    expect(metric(text, 'mlship_batch_size_bucket', 'le="8"')).toBe(metric(text, 'mlship_batch_size_count'));
    expect(
      metric(text, 'mlship_requests_total', 'endpoint="/predict"', 'status="200"'),
    ).toBeGreaterThanOrEqual(31);
  });

  it('inputs waiting together share one model call: 20 inputs make 3 calls of at most 8, answers in order', async () => {
    await expectTwentyInputsInThreeCalls(url, model);
  });

  it('malformed JSON and wrong shapes are 422 with the field at fault; big bodies 413', async () => {
    const malformed = await post(`${url}/predict`, '{"sepal_length":');
    expect(malformed.status).toBe(422);
    expect(malformed.headers.get('x-request-id')).toBe((malformed.body as { request_id: string }).request_id);
    const wrong = await post(`${url}/predict`, { ...EXAMPLE, petal_width: [1] });
    expect(wrong.status).toBe(422);
    expect((wrong.body as { detail: { loc: string[] }[] }).detail[0]!.loc).toEqual(['body', 'petal_width']);
    expect((await post(`${url}/predict`, { ...EXAMPLE, colour: 1 })).status).toBe(422);
    // 1e999 parses as Infinity: not a number the model may see.
    const infinite = await post(`${url}/predict`, JSON.stringify(EXAMPLE).replace('5.1', '1e999'));
    expect(infinite.status).toBe(422);
    expect((infinite.body as { detail: unknown[] }).detail[0]).toMatchObject({
      loc: ['body', 'sepal_length'],
      type: 'finite_number',
    });
    expect((await post(`${url}/predict`, { ...EXAMPLE, pad: 'x'.repeat(5000) })).status).toBe(413);
    expect((await post(`${url}/predict`, EXAMPLE)).status).toBe(200); // still serving
  });

  it("on AWS a prediction's log line is an embedded metric, per service and per model version; a shadow's once predicted, per model version only", async () => {
    expect((await post(`${url}/predict`, EXAMPLE, { 'x-request-id': 'emf-served' })).status).toBe(200);
    const mirrored = await post(`${url}/predict`, EXAMPLE, {
      'x-request-id': 'emf-mirrored',
      'x-mlship-shadow': '1',
    });
    expect(mirrored.status).toBe(202);
    const logged = await jsonLinesUntil(svc, (ls) =>
      ls.some((l) => l.msg === 'shadow' && l.request_id === 'emf-mirrored'),
    );
    const dims = (l: Record<string, unknown> | undefined) =>
      (l?._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] } | undefined)
        ?.CloudWatchMetrics[0];
    const served = logged.find((l) => l.msg === 'request' && l.request_id === 'emf-served');
    expect(dims(served)).toMatchObject({
      Namespace: 'mlship/demo',
      Dimensions: [['Service'], ['Service', 'ModelVersion']],
    });
    expect(served).toMatchObject({
      Service: 'iris',
      ModelVersion: 'candidate',
      Requests: 1,
      Errors5xx: 0,
      status: 200,
    });
    // The mirrored copy's 202 is no request of the service's and writes no line; its prediction
    // counts, and is logged, once done.
    expectShadowLines(
      logged.filter((l) => l.request_id === 'emf-mirrored'),
      'iris',
    );
  });

  it("a shadow's full queue: the copy is answered 202 accepted: false and logged once, as 'shadow dropped' (no access line), counted in mlship_shadow_dropped_total", async () => {
    const small = await serve(
      { dir: out, image: TAG, build: false, hostPort: 0, runLabel: run, env: { MAX_QUEUE: '1' } },
      { engine: engine!, tasks: quietTasks(log) },
    );
    try {
      const base = small.result.url;
      const ids = Array.from({ length: 40 }, (_, i) => `burst-${i}`);
      // 40 copies at once against a queue of 1: the first is predicted, most of the rest dropped.
      const replies = await Promise.all(
        ids.map((id) => post(`${base}/predict`, EXAMPLE, { 'x-request-id': id, 'x-mlship-shadow': '1' })),
      );
      expect(replies.map((r) => r.status)).toEqual(ids.map(() => 202));
      const refused = replies.filter((r) => (r.body as { accepted: boolean }).accepted === false).length;
      expect(refused).toBeGreaterThan(0);
      const ofBurst = (ls: Record<string, unknown>[]) =>
        ls.filter((l) => ids.includes(l.request_id as string));
      const lines = ofBurst(await jsonLinesUntil(small, (ls) => ofBurst(ls).length >= ids.length));
      // One line per copy, never an access line for the 202.
      expect(lines.map((l) => l.request_id).sort()).toEqual([...ids].sort());
      const dropped = lines.filter((l) => l.msg === 'shadow dropped');
      expect(lines.filter((l) => l.msg !== 'shadow' && l.msg !== 'shadow dropped')).toEqual([]);
      expect(dropped.length).toBe(refused);
      for (const l of dropped) expect(l).toMatchObject({ level: 'warning', queued: 1 });
      const text = (await get(`${base}/metrics`)).text;
      expect(metric(text, 'mlship_shadow_dropped_total')).toBe(refused);
      expect(metric(text, 'mlship_shadow_predictions_total')).toBe(ids.length - refused);
    } finally {
      await small.handle.stop(5);
    }
  });

  it('runs as the unprivileged node user and stops cleanly on SIGTERM', async () => {
    expect((await engine!.inspectImage(TAG)).user).toBe('node');
    await svc.handle.stop(20);
    expect((await svc.handle.wait()).exitCode).toBe(0);
  });
});
