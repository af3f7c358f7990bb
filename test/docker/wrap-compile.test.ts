// `mlship wrap --compile onnx` against a real engine: the converter image (built once,
// from the local Python base image) converts a HistGradientBoosting classifier, the
// wrapped service serves the ONNX model with onnxruntime and answers as scikit-learn
// does on the host; a deliberately lossy model is refused, with nothing written.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { buildService, type RunningService, serve } from '../../src/core/serve/serve.js';
import { ensureConverter } from '../../src/core/wrap/compile.js';
import { runWrap, type WrapResult } from '../../src/core/wrap/wrap.js';
import { MlshipError } from '../../src/io/errors.js';
import { LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { get, hostPredict, post, python, quietTasks } from './wrap-helpers.js';

const run = `wrap-compile-${randomBytes(4).toString('hex')}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-compile-'));
const TAG = `mlship-test/hgb-onnx:${run}`;
const log: string[] = [];
let engine: DockerEngine | undefined;

beforeAll(async () => {
  engine = await requireEngine();
  if (engine) await requireImage(engine, LOCAL_PYTHON_IMAGE);
});

afterAll(async () => {
  if (engine) {
    await engine.removeByLabel(RUN_LABEL, run);
    await engine.removeImage(TAG, true);
  }
  rmSync(tmp, { recursive: true, force: true });
});

const user = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;

describe.runIf(await requireEngine())('wrap --compile onnx (converter image, equality check)', () => {
  let wrapped: WrapResult;
  let svc: RunningService;
  const out = path.join(tmp, 'hgb-service');
  const model = path.join(tmp, 'hgb', 'model.joblib');

  beforeAll(async () => {
    python(
      `
import json, os, sys, joblib
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression
import numpy as np
d = sys.argv[1]
os.makedirs(f"{d}/hgb"); os.makedirs(f"{d}/lossy")
X, y = make_classification(n_samples=1000, n_features=6, n_informative=4, n_classes=3, random_state=0)
joblib.dump(HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y), f"{d}/hgb/model.joblib")
json.dump({"features": [round(float(v), 3) for v in X[0]]}, open(f"{d}/hgb/example.json", "w"))
with open(f"{d}/hgb/sample.jsonl", "w") as f:
    for row in X[1:101]:
        f.write(json.dumps({"features": row.tolist()}) + "\\n")
# Deliberately lossy: a linear model on inputs near 1e8, whose differences float32 cannot hold.
big = 1e8 + np.arange(100).reshape(-1, 1) * 1.37
joblib.dump(LinearRegression().fit(big, np.arange(100.0)), f"{d}/lossy/model.joblib")
json.dump({"x": 1e8 + 1.37}, open(f"{d}/lossy/example.json", "w"))
`,
      [tmp],
    );
    wrapped = await runWrap(
      {
        cwd: tmp,
        model,
        out,
        baseImage: LOCAL_PYTHON_IMAGE,
        workers: 1,
        convert: { compile: 'onnx', checkData: path.join(tmp, 'hgb', 'sample.jsonl'), user },
        force: false,
        dryRun: false,
      },
      { converter: async () => engine! },
    );
    await buildService({ dir: out, image: TAG }, { engine: engine!, tasks: quietTasks(log) });
    svc = await serve(
      { dir: out, image: TAG, build: false, hostPort: 0, runLabel: run },
      { engine: engine!, tasks: quietTasks(log) },
    );
  });

  it('reports labels 100% equal, probabilities within 1e-4, size and latency before and after', () => {
    const r = wrapped.compile!;
    expect(r).toMatchObject({
      from: 'sklearn',
      compile: 'onnx',
      equal: true,
      rows: 101,
      output: 'labels and probabilities',
      labels: { matched: 101, total: 101 },
      tolerance: 1e-4,
    });
    expect(r.checkedOn).toBe('the example and 100 inputs of sample.jsonl');
    expect(r.maxDifference).toBeLessThanOrEqual(1e-4);
    expect(r.sizeBytes.before).toBe(readFileSync(model).length);
    expect(r.sizeBytes.after).toBe(readFileSync(path.join(out, 'weights', 'model.onnx')).length);
    for (const side of [r.latencyMs.before, r.latencyMs.after]) {
      expect(side['1']).toBeGreaterThan(0);
      expect(side['64']).toBeGreaterThan(0);
    }
    expect(JSON.parse(readFileSync(path.join(out, 'compile-report.json'), 'utf8'))).toEqual(r);
  });

  it('the service is an ONNX Runtime service: no scikit-learn in its image', () => {
    expect(wrapped.kind).toBe('onnx');
    expect(readFileSync(path.join(out, 'requirements-model.txt'), 'utf8')).not.toMatch(/scikit-learn/);
  });

  it('answers the example and a batch exactly as scikit-learn does on the host', async () => {
    const example = JSON.parse(readFileSync(path.join(tmp, 'hgb', 'example.json'), 'utf8')) as {
      features: number[];
    };
    expect(svc.result.prediction).toEqual(hostPredict(model, [example.features])[0]);
    const rows = readFileSync(path.join(tmp, 'hgb', 'sample.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .slice(0, 40)
      .map((l) => (JSON.parse(l) as { features: number[] }).features);
    const r = await post(`${svc.result.url}/predict/batch`, {
      inputs: rows.map((features) => ({ features })),
    });
    expect(r.status).toBe(200);
    expect((r.body as { predictions: unknown[] }).predictions).toEqual(hostPredict(model, rows));
    const ready = (await get(`${svc.result.url}/readyz`)).body as { threads: { threads_per_worker: number } };
    expect(ready.threads.threads_per_worker).toBeGreaterThanOrEqual(1);
  });

  it('a deliberately lossy conversion is refused with its worst differences, and nothing is written', async () => {
    const lossyOut = path.join(tmp, 'lossy-service');
    const error = await runWrap(
      {
        cwd: tmp,
        model: path.join(tmp, 'lossy', 'model.joblib'),
        out: lossyOut,
        baseImage: LOCAL_PYTHON_IMAGE,
        convert: { compile: 'onnx', user },
        force: false,
        dryRun: false,
      },
      { converter: async () => engine! },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MlshipError);
    expect((error as MlshipError).code).toBe('COMPILE_NOT_EQUAL');
    expect((error as MlshipError).message).toMatch(
      /[1-9]\d* of 257 outputs differ by more than 0.0001 × max\(1, \|original\|\)/,
    );
    const details = (error as MlshipError).details.join('\n');
    expect(details).toMatch(/^ {2}(example|generated #\d+): output /m);
    expect(existsSync(lossyOut)).toBe(false);
  });
});

describe.runIf(await requireEngine())('wrap --compile onnx: a LightGBM model (onnxmltools)', () => {
  it('converts a LightGBMClassifier and proves it equal on generated inputs', async () => {
    const dir = path.join(tmp, 'lgbm');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'example.json'), JSON.stringify({ a: 0.5, b: -1.25, c: 3, d: 0.1 }));
    // The host .venv has no LightGBM: the model is trained in the converter image that has it.
    const image = await ensureConverter(engine!, LOCAL_PYTHON_IMAGE, ['lightgbm']);
    const trained = await engine!.run({
      image,
      entrypoint: ['python', '-c'],
      cmd: [
        [
          'import joblib, lightgbm',
          'from sklearn.datasets import make_classification',
          'X, y = make_classification(n_samples=500, n_features=4, n_informative=3, n_redundant=0, random_state=0)',
          'joblib.dump(lightgbm.LGBMClassifier(n_estimators=30, verbose=-1).fit(X, y), "/out/model.joblib")',
        ].join('\n'),
      ],
      mounts: [{ type: 'bind', source: dir, target: '/out' }],
      user,
      labels: { [RUN_LABEL]: run },
    });
    expect(trained.exitCode, trained.stderrTail.join('\n')).toBe(0);
    const wrapped = await runWrap(
      {
        cwd: tmp,
        model: path.join(dir, 'model.joblib'),
        out: path.join(tmp, 'lgbm-service'),
        baseImage: LOCAL_PYTHON_IMAGE,
        convert: { compile: 'onnx', user },
        force: false,
        dryRun: false,
      },
      { converter: async () => engine! },
    );
    expect(wrapped.compile).toMatchObject({
      equal: true,
      labels: { matched: 257, total: 257 },
      output: 'labels and probabilities',
    });
    expect(wrapped.kind).toBe('onnx');
    expect(existsSync(path.join(tmp, 'lgbm-service', 'weights', 'model.onnx'))).toBe(true);
  });
});
