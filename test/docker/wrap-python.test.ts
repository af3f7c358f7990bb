// `mlship wrap` + `mlship serve` against a real engine: real images built from
// fixtures (the bundled iris scikit-learn model, an ONNX model made at test time,
// a user entry point), every endpoint, and every failure path a client can cause.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { buildService, type RunningService, serve } from '../../src/core/serve/serve.js';
import { runWrap } from '../../src/core/wrap/wrap.js';
import { dockerCli, LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import {
  expectTwentyInputsInThreeCalls,
  get,
  hostPredict,
  irisInputs,
  makeIrisOnnx,
  metric,
  post,
  python,
  quietTasks,
} from './wrap-helpers.js';

const run = `wrap-py-${randomBytes(4).toString('hex')}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-docker-'));
const IRIS_MODEL = path.resolve('fixtures/wrap/iris/model.joblib');
const IRIS_EXAMPLE = JSON.parse(readFileSync('fixtures/wrap/iris/example.json', 'utf8')) as Record<
  string,
  number
>;
const row = (e: Record<string, number>) => Object.values(e);

interface ThreadDetails {
  cpus: number;
  cpu_source: string;
  workers: number;
  threads_per_worker: number;
  elastic: boolean;
  max_threads: number;
  pools: { api: string; library: string; threads: number }[];
}

/** What the pools loaded in a worker (BLAS, OpenMP: scikit-learn loads both) report on its model thread. */
function expectPoolsKeep(threads: ThreadDetails): void {
  expect(threads.pools.map((p) => p.api)).toEqual(expect.arrayContaining(['blas', 'openmp']));
  expect(new Set(threads.pools.map((p) => p.threads))).toEqual(new Set([threads.threads_per_worker]));
}

/** The engine, starting every container with a CPU quota. */
function withCpus(e: DockerEngine, cpus: number): Parameters<typeof serve>[1]['engine'] {
  return {
    build: (o) => e.build(o),
    imageExists: (r) => e.imageExists(r),
    start: (spec) => e.start({ ...spec, cpus }),
  };
}
const log: string[] = [];
let engine: DockerEngine | undefined;

async function wrapAndServe(name: string, options: Parameters<typeof runWrap>[0]): Promise<RunningService> {
  const tag = `mlship-test/${name}:${run}`;
  await runWrap(options);
  await buildService({ dir: options.out!, image: tag }, { engine: engine!, tasks: quietTasks(log) });
  return serve(
    { dir: options.out!, image: tag, build: false, hostPort: 0, runLabel: run },
    { engine: engine!, tasks: quietTasks(log) },
  );
}

beforeAll(async () => {
  engine = await requireEngine();
  if (engine) await requireImage(engine, LOCAL_PYTHON_IMAGE);
});

afterAll(async () => {
  if (engine) {
    await engine.removeByLabel(RUN_LABEL, run);
    for (const n of ['iris', 'slow-entry', 'iris-onnx', 'forest'])
      await engine.removeImage(`mlship-test/${n}:${run}`, true);
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe.runIf(await requireEngine())('wrapped scikit-learn model (iris, weights mounted read-only)', () => {
  let svc: RunningService;
  let url: string;
  const out = path.join(tmp, 'iris');

  beforeAll(async () => {
    svc = await wrapAndServe('iris', {
      cwd: process.cwd(),
      model: IRIS_MODEL,
      out,
      baseImage: LOCAL_PYTHON_IMAGE,
      workers: 2,
      maxBodyBytes: 4096,
      force: false,
      dryRun: false,
    });
    url = svc.result.url;
  });

  it('serve waits for readiness and answers the example like the model itself does', () => {
    expect(svc.result.prediction).toEqual(hostPredict(IRIS_MODEL, [row(IRIS_EXAMPLE)])[0]);
  });

  it('answers liveness, readiness, OpenAPI and /docs', async () => {
    expect((await get(`${url}/healthz`)).body).toEqual({ status: 'ok' });
    expect((await get(`${url}/readyz`)).body).toMatchObject({ status: 'ready' });
    const spec = (await get(`${url}/openapi.json`)).body as { paths: Record<string, unknown> };
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/predict', '/predict/batch']));
    const docs = await get(`${url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.text).toMatch(/swagger/i);
    // No CDN: the page's script comes from the service itself.
    expect(docs.text).not.toMatch(/cdn\.jsdelivr|unpkg/);
    const js = await get(`${url}/docs-assets/swagger-ui-bundle.js`);
    expect(js.status).toBe(200);
    expect(js.text.length).toBeGreaterThan(100_000);
  });

  it('a thread budget per worker: workers x threads fit the CPUs, and every pool the model loaded keeps it', async () => {
    const { threads } = (await get(`${url}/readyz`)).body as { threads: ThreadDetails };
    // --workers 2 on this machine's CPUs (no quota: the affinity mask).
    expect(threads.workers).toBe(2);
    expect(threads.threads_per_worker).toBe(Math.max(1, Math.floor(Math.floor(threads.cpus) / 2)));
    expectPoolsKeep(threads);
    // Elastic threads: gunicorn's hooks gave each worker a slot, so a lone busy worker may use
    // every whole CPU (on a 1-CPU machine there is nothing to give).
    const whole = Math.floor(threads.cpus);
    expect(threads.elastic).toBe(whole > threads.threads_per_worker);
    expect(threads.max_threads).toBe(threads.elastic ? whole : threads.threads_per_worker);
  });

  it('NaN, Infinity and 1e999 are 422 naming the field, in a single input and in a batch', async () => {
    for (const token of ['NaN', 'Infinity', '-Infinity', '1e999']) {
      const r = await post(`${url}/predict`, JSON.stringify(IRIS_EXAMPLE).replace('5.1', token));
      expect(r.status, token).toBe(422);
      expect((r.body as { detail: { loc: string[]; type: string }[] }).detail).toContainEqual(
        expect.objectContaining({ loc: ['body', 'sepal_length'], type: 'finite_number' }),
      );
    }
    const batch = JSON.stringify({ inputs: irisInputs([[5, 3, 1, 0.2]]) }).replace('0.2', '1e999');
    const r = await post(`${url}/predict/batch`, batch);
    expect(r.status).toBe(422);
    expect((r.body as { detail: { loc: unknown[] }[] }).detail[0]!.loc).toEqual([
      'body',
      'inputs',
      0,
      'petal_width',
    ]);
  });

  it('the same image in a 1.5-CPU container (CFS quota): 1 worker with THREADS_PER_WORKER=2 set, pools at 2', async () => {
    const limited = await serve(
      {
        dir: out,
        image: svc.result.image,
        build: false,
        hostPort: 0,
        runLabel: run,
        env: { WORKERS: '1', THREADS_PER_WORKER: '2' },
      },
      { engine: withCpus(engine!, 1.5), tasks: quietTasks(log) },
    );
    try {
      const { threads } = (await get(`${limited.result.url}/readyz`)).body as { threads: ThreadDetails };
      // Threads set by hand are kept as set: no elastic threads.
      expect(threads).toMatchObject({ cpus: 1.5, workers: 1, threads_per_worker: 2, elastic: false });
      // cgroup v1 on this engine; v2 elsewhere: both are read.
      expect(threads.cpu_source).toMatch(/^cgroup v[12] /);
      expectPoolsKeep(threads);
      // The start-up log line says the same.
      const logs = await limited.handle.logs(200);
      const ready = logs.split('\n').find((l) => l.includes('"model ready"'));
      expect(JSON.parse(ready!)).toMatchObject({ workers: 1, threads_per_worker: 2, cpus: 1.5 });
      // gunicorn's own lines, as JSON, each once (its default config also sent them to the root logger).
      expect(logs.match(/"msg": "Booting worker with pid/g)).toHaveLength(1);
    } finally {
      await limited.handle.remove();
    }
  });

  it('predicts a batch in one call, matching the model', async () => {
    const rows = [
      [5.1, 3.5, 1.4, 0.2],
      [6.7, 3.0, 5.2, 2.3],
      [5.9, 2.8, 4.3, 1.3],
    ];
    const r = await post(`${url}/predict/batch`, { inputs: irisInputs(rows) });
    expect(r.status).toBe(200);
    expect((r.body as { predictions: unknown[] }).predictions).toEqual(hostPredict(IRIS_MODEL, rows));
  });

  it('malformed JSON and a wrong shape are 422 with the field at fault and a request id', async () => {
    const malformed = await post(`${url}/predict`, '{"sepal_length": 5.1,');
    expect(malformed.status).toBe(422);
    expect((malformed.body as { request_id: string }).request_id).toMatch(/^[0-9a-f]{32}$/);
    const wrong = await post(`${url}/predict`, { ...IRIS_EXAMPLE, petal_width: [1, 2] });
    expect(wrong.status).toBe(422);
    const detail = (wrong.body as { detail: { loc: string[] }[] }).detail;
    expect(detail.map((d) => d.loc.join('.'))).toContain('body.petal_width');
    const extra = await post(`${url}/predict`, { ...IRIS_EXAMPLE, colour: 'blue' });
    expect(extra.status).toBe(422);
  });

  it('a body over the limit is 413, declared or streamed', async () => {
    const big = JSON.stringify({ ...IRIS_EXAMPLE, pad: 'x'.repeat(5000) });
    expect((await post(`${url}/predict`, big)).status).toBe(413);
    // Without a content-length (chunked), the limit is enforced while reading.
    const chunked = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(big));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  it('keeps a caller request id, logs it as JSON, and never logs the payload', async () => {
    const marker = 1234.56789;
    const r = await post(
      `${url}/predict`,
      { ...IRIS_EXAMPLE, sepal_length: marker },
      { 'x-request-id': `t-${run}` },
    );
    expect(r.status).toBe(200);
    expect(r.headers.get('x-request-id')).toBe(`t-${run}`);
    // The engine delivers container logs asynchronously: wait (bounded) for the line.
    let logs = '';
    let line: string | undefined;
    for (let i = 0; i < 50 && !line; i++) {
      logs = await svc.handle.logs(500);
      line = logs.split('\n').find((l) => l.includes(`t-${run}`));
      if (!line) await new Promise((res) => setTimeout(res, 100));
    }
    expect(JSON.parse(line!)).toMatchObject({
      msg: 'request',
      path: '/predict',
      status: 200,
      request_id: `t-${run}`,
    });
    expect(logs).not.toContain(String(marker));
  });

  it('/metrics sums every worker: requests, latency histogram, in-flight, errors', async () => {
    const before = metric(
      (await get(`${url}/metrics`)).text,
      'mlship_requests_total',
      'endpoint="/predict"',
      'status="200"',
    );
    await Promise.all(Array.from({ length: 10 }, () => post(`${url}/predict`, IRIS_EXAMPLE)));
    const text = (await get(`${url}/metrics`)).text;
    expect(metric(text, 'mlship_requests_total', 'endpoint="/predict"', 'status="200"')).toBe(before + 10);
    expect(
      metric(text, 'mlship_request_duration_seconds_count', 'endpoint="/predict"'),
    ).toBeGreaterThanOrEqual(before + 10);
    expect(metric(text, 'mlship_errors_total', 'kind="invalid_input"'), text).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'mlship_errors_total', 'kind="body_too_large"'), text).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^mlship_in_flight_requests \d/m);
  });

  it('the image: non-root, a healthcheck with the start-up grace period, no weights inside', async () => {
    const image = await engine!.inspectImage(svc.result.image);
    expect(image.user).toBe('10001');
    const health = JSON.parse(
      dockerCli(['image', 'inspect', '--format', '{{json .Config.Healthcheck}}', svc.result.image]),
    );
    expect(health.StartPeriod).toBe(60 * 1e9);
    expect(health.Test.join(' ')).toContain('/readyz');
    const r = await engine!.run({
      image: svc.result.image,
      cmd: ['python', '-c', 'import os; print(os.path.exists("/models"), len(os.listdir("/srv")))'],
      labels: { [RUN_LABEL]: run },
    });
    expect(r.stdoutTail.join('')).toMatch(/^False /);
  });
});

describe.runIf(await requireEngine())(
  'wrapped entry point: model errors, overload, graceful shutdown',
  () => {
    let svc: RunningService;
    let url: string;

    beforeAll(async () => {
      svc = await wrapAndServe('slow-entry', {
        cwd: process.cwd(),
        entry: 'fixtures/wrap/slow-entry/predict.py:predict',
        out: path.join(tmp, 'slow-entry'),
        baseImage: LOCAL_PYTHON_IMAGE,
        workers: 1,
        maxQueue: 3,
        force: false,
        dryRun: false,
      });
      url = svc.result.url;
    });

    it('ran the load() hook once before ready (the example answer uses its state)', () => {
      expect(svc.result.prediction).toBe(2); // x + offset set by load(): 1 + 1
    });

    it('an exception in the model is a 500 with the request id, and the service keeps serving', async () => {
      const bad = await post(`${url}/predict`, { x: -1, delay: 0 });
      expect(bad.status).toBe(500);
      const rid = (bad.body as { request_id: string }).request_id;
      expect(bad.headers.get('x-request-id')).toBe(rid);
      expect((await post(`${url}/predict`, { x: 5, delay: 0 })).body).toEqual({ prediction: 6 });
      // The engine delivers container logs asynchronously: wait (bounded) for the line.
      let logged = false;
      for (let i = 0; i < 50 && !logged; i++) {
        const logs = await svc.handle.logs(200);
        logged = logs.split('\n').some((l) => l.includes(rid) && l.includes('ValueError'));
        if (!logged) await new Promise((r) => setTimeout(r, 100));
      }
      expect(logged, 'a log line with the request id and the exception').toBe(true);
      const metrics = (await get(`${url}/metrics`)).text;
      expect(metric(metrics, 'mlship_errors_total', 'kind="model"')).toBeGreaterThanOrEqual(1);
    });

    it('more concurrent work than the queue allows is shed with 503 and Retry-After, not queued forever', async () => {
      const replies = await Promise.all(
        Array.from({ length: 8 }, () => post(`${url}/predict`, { x: 1, delay: 1.5 })),
      );
      const statuses = replies.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
      const shed = replies.filter((r) => r.status === 503);
      expect(shed.length).toBeGreaterThanOrEqual(1);
      expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
      for (const r of shed) expect(r.headers.get('retry-after')).toBe('1');
      expect((await post(`${url}/predict`, { x: 1, delay: 0 })).status).toBe(200);
    });

    it('SIGTERM drains: the in-flight request completes, then the process exits cleanly', async () => {
      const inflight = post(`${url}/predict`, { x: 3, delay: 2.5 });
      await new Promise((r) => setTimeout(r, 700));
      const t0 = performance.now();
      const stopped = svc.handle.stop(30); // docker stop: SIGTERM, SIGKILL only after 30 s
      const reply = await inflight;
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({ prediction: 4 });
      await stopped;
      expect(performance.now() - t0).toBeLessThan(20_000);
      expect((await svc.handle.wait()).exitCode).toBe(0);
    });
  },
);

describe.runIf(await requireEngine())('wrapped ONNX model (onnxruntime) with adaptive micro-batching', () => {
  let svc: RunningService;
  let url: string;
  const model = path.join(tmp, 'iris.onnx');

  beforeAll(async () => {
    makeIrisOnnx(model);
    svc = await wrapAndServe('iris-onnx', {
      cwd: process.cwd(),
      model,
      example: 'fixtures/wrap/iris/example.json',
      out: path.join(tmp, 'iris-onnx'),
      baseImage: LOCAL_PYTHON_IMAGE,
      workers: 1,
      batching: { maxBatchSize: 8, maxLatencyMs: 50 },
      force: false,
      dryRun: false,
    });
    url = svc.result.url;
  });

  it('answers the example like onnxruntime on the host', () => {
    expect(svc.result.prediction).toEqual(hostPredict(model, [row(IRIS_EXAMPLE)])[0]);
  });

  it('concurrent requests each get their own answer; no model call exceeds max_batch_size', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => [
      4.5 + (i % 10) * 0.3,
      3.0,
      1.0 + (i % 7) * 0.8,
      0.1 + (i % 5) * 0.5,
    ]);
    const expected = hostPredict(model, rows);
    const replies = await Promise.all(irisInputs(rows).map((input) => post(`${url}/predict`, input)));
    expect(replies.map((r) => r.status)).toEqual(rows.map(() => 200));
    expect(replies.map((r) => (r.body as { prediction: unknown }).prediction)).toEqual(expected);
    const text = (await get(`${url}/metrics`)).text;
    expect(metric(text, 'mlship_batch_size_bucket', 'le="8.0"')).toBe(
      metric(text, 'mlship_batch_size_count'),
    );
    expect(metric(text, 'mlship_queue_wait_seconds_count')).toBe(metric(text, 'mlship_batch_size_sum'));
  });

  it('inputs waiting together share one model call: 20 inputs make 3 calls of at most 8, answers in order', async () => {
    await expectTwentyInputsInThreeCalls(url, model);
  });
});

describe.runIf(await requireEngine())(
  'wrapped random forest: its trees called directly in the image, answers exactly the model file',
  () => {
    let svc: RunningService;
    let url: string;
    const model = path.join(tmp, 'forest.joblib');
    const example = path.join(tmp, 'forest.example.json');
    const rows = Array.from({ length: 120 }, (_, i) =>
      Array.from({ length: 8 }, (_, j) => 3 * Math.sin(i * 5 + j)),
    );

    beforeAll(async () => {
      python(
        `
import json, sys, joblib
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
X, y = make_classification(n_samples=600, n_features=8, n_informative=5, n_classes=3, random_state=0)
joblib.dump(RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y), sys.argv[1])
open(sys.argv[2], "w").write(json.dumps({"features": [round(float(v), 4) for v in X[0]]}))
`,
        [model, example],
      );
      svc = await wrapAndServe('forest', {
        cwd: process.cwd(),
        model,
        example,
        out: path.join(tmp, 'forest'),
        baseImage: LOCAL_PYTHON_IMAGE,
        workers: 1,
        batching: { maxBatchSize: 16, maxLatencyMs: 20 },
        force: false,
        dryRun: false,
      });
      url = svc.result.url;
    });

    it('reports at start-up that the trees are called directly, after checking the answers', async () => {
      const logs = await svc.handle.logs(200);
      expect(logs).toMatch(/random forest: its trees are called directly \(answers checked equal/);
    });

    it('120 concurrent /predict and one /predict/batch answer exactly as the model file on the host', async () => {
      const expected = hostPredict(model, rows);
      const replies = await Promise.all(rows.map((features) => post(`${url}/predict`, { features })));
      expect(replies.map((r) => r.status)).toEqual(rows.map(() => 200));
      expect(replies.map((r) => (r.body as { prediction: unknown }).prediction)).toEqual(expected);
      const batch = await post(`${url}/predict/batch`, { inputs: rows.map((features) => ({ features })) });
      expect((batch.body as { predictions: unknown[] }).predictions).toEqual(expected);
      const text = (await get(`${url}/metrics`)).text;
      expect(metric(text, 'mlship_batch_size_count')).toBeLessThan(metric(text, 'mlship_batch_size_sum'));
    });
  },
);
