// wrap --compile/--quantize without Docker: the rows a converted model is checked on
// (the example, --check-data, generated ones), the converter script itself run with the
// host .venv (skl2onnx, onnxruntime), and how wrap reads its verdict (a fake engine that
// answers as the converter image does). The converter image end to end:
// test/docker/wrap-compile.test.ts.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunOptions, RunResult } from '../../../src/adapters/docker/engine.js';
import { type ConverterEngine, convertModel, extrasFor } from '../../../src/core/wrap/compile.js';
import { checkRows, GENERATED_ROWS, generatedRows } from '../../../src/core/wrap/compile-inputs.js';
import { converterFiles, converterImage } from '../../../src/generators/wrap-compile.js';
import { inferFields } from '../../../src/generators/wrap-input.js';
import { MlshipError, UsageError } from '../../../src/io/errors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-compile-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const EXAMPLE = { rooms: 3, area: 72.5, garden: true, scores: [0.25, -4] };

describe('the inputs a converted model is checked on', () => {
  it('without --check-data: the example, then 256 rows around it (whole numbers whole, booleans 0/1)', async () => {
    const { rows, sources } = await checkRows(EXAMPLE);
    expect(rows).toHaveLength(GENERATED_ROWS + 1);
    expect(rows[0]).toEqual([3, 72.5, 1, 0.25, -4]);
    expect(sources.slice(0, 2)).toEqual(['example', 'generated #1']);
    for (const [rooms, area, garden, s1, s2] of rows.slice(1)) {
      expect(Number.isInteger(rooms)).toBe(true);
      expect(rooms).toBeGreaterThanOrEqual(2);
      expect(rooms).toBeLessThanOrEqual(5);
      expect(area).toBeGreaterThanOrEqual(36.25);
      expect(area).toBeLessThanOrEqual(108.75);
      expect([0, 1]).toContain(garden);
      expect(Math.abs(s1! - 0.25)).toBeLessThanOrEqual(0.5);
      expect(Math.abs(s2! + 4)).toBeLessThanOrEqual(2);
    }
    // Deterministic: the same inputs on every run.
    expect(generatedRows(EXAMPLE, inferFields(EXAMPLE), 3)).toEqual(rows.slice(1, 4));
  });

  it('--check-data: JSON Lines, a JSON list, {"inputs": [...]} or CSV, each row as the service builds it', async () => {
    const flat = { rooms: 2, area: 50 };
    const jsonl = path.join(tmp, 'data.jsonl');
    writeFileSync(jsonl, '{"rooms": 4, "area": 90}\n\n{"rooms": 1, "area": 20.5}\n');
    expect(await checkRows(flat, jsonl)).toMatchObject({
      rows: [
        [2, 50],
        [4, 90],
        [1, 20.5],
      ],
      sources: ['example', 'data.jsonl line 1', 'data.jsonl line 3'],
    });
    const list = path.join(tmp, 'data.json');
    writeFileSync(list, JSON.stringify({ inputs: [{ rooms: 5, area: 1 }] }));
    expect((await checkRows(flat, list)).rows).toEqual([
      [2, 50],
      [5, 1],
    ]);
    const csv = path.join(tmp, 'data.csv');
    writeFileSync(csv, 'area,rooms,unused\n10,1,x\n');
    expect((await checkRows(flat, csv)).rows).toEqual([
      [2, 50],
      [1, 10],
    ]);
  });

  it('a bad --check-data names the file, the line and what is wrong', async () => {
    const bad = path.join(tmp, 'bad.jsonl');
    writeFileSync(bad, '{"rooms": 4, "area": 90}\n{"rooms": 4}\n');
    await expect(checkRows({ rooms: 2, area: 50 }, bad)).rejects.toThrow(
      /bad\.jsonl: line 2: field "area" should be a number/,
    );
    writeFileSync(bad, '{"rooms": 4, "area": 90, "colour": 1}\n');
    await expect(checkRows({ rooms: 2, area: 50 }, bad)).rejects.toThrow(
      /line 1: has a field the example does not/,
    );
    await expect(checkRows(EXAMPLE, path.join(tmp, 'missing.jsonl'))).rejects.toBeInstanceOf(UsageError);
  });
});

const PYTHON = path.resolve('.venv/bin/python');
const CONVERTER = path.resolve('templates/wrap/compile/convert.py');

function python(code: string): void {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: create .venv with requirements-dev.txt`);
  const r = spawnSync(PYTHON, ['-c', code], { cwd: tmp, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

function convert(model: string, rows: number[][], ...flags: string[]) {
  writeFileSync(
    path.join(tmp, 'rows.json'),
    JSON.stringify({ rows, sources: rows.map((_, i) => `row ${i}`) }),
  );
  const out = path.join(tmp, `${path.basename(model)}.onnx`);
  rmSync(out, { force: true });
  const r = spawnSync(
    PYTHON,
    [CONVERTER, path.join(tmp, model), path.join(tmp, 'rows.json'), out, ...flags],
    {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    },
  );
  const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  return { status: r.status, report, written: existsSync(out) };
}

describe('the converter script (host .venv: skl2onnx, onnxruntime)', { timeout: 120_000 }, () => {
  const rows = Array.from({ length: 40 }, (_, i) =>
    Array.from({ length: 30 }, (_, j) => Math.sin(i * 7 + j)),
  );
  python(`
import joblib, numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression
from sklearn.neural_network import MLPClassifier
X, y = make_classification(n_samples=600, n_features=30, n_informative=10, n_classes=3, random_state=0)
joblib.dump(HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y), "hgb.joblib")
joblib.dump(MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0).fit(X, y), "mlp.joblib")
# Deliberately lossy: inputs near 1e8 whose differences float32 cannot hold.
big = 1e8 + np.arange(100).reshape(-1, 1) * 1.37
joblib.dump(LinearRegression().fit(big, np.arange(100.0)), "lossy.joblib")
open("train-rows.json", "w").write(__import__("json").dumps(X[:40].tolist()))
`);
  const trainRows = () => JSON.parse(readFileSync(path.join(tmp, 'train-rows.json'), 'utf8')) as number[][];
  const int8 = ['--compile', 'onnx', '--quantize', 'int8', '--tolerance', '0.05'];

  it('HistGradientBoosting → ONNX: every label equal, probabilities within 1e-4, sizes and latencies reported', () => {
    const { status, report, written } = convert(
      'hgb.joblib',
      rows,
      '--compile',
      'onnx',
      '--tolerance',
      '1e-4',
    );
    expect(status).toBe(0);
    expect(report).toMatchObject({
      equal: true,
      output: 'labels and probabilities',
      labels: { matched: 40, total: 40 },
    });
    expect(report.max_difference as number).toBeLessThan(1e-4);
    expect(written).toBe(true);
    const latency = report.latency_ms as Record<string, Record<string, number>>;
    for (const side of ['before', 'after'])
      for (const n of ['1', '64']) expect(latency[side]![n]).toBeGreaterThan(0);
    expect((report.size_bytes as { before: number }).before).toBe(
      readFileSync(path.join(tmp, 'hgb.joblib')).length,
    );
  });

  it('a lossy conversion is refused with its worst differences, and nothing is written', () => {
    const big = Array.from({ length: 30 }, (_, i) => [1e8 + i * 1.37]);
    const { status, report, written } = convert(
      'lossy.joblib',
      big,
      '--compile',
      'onnx',
      '--tolerance',
      '1e-4',
    );
    expect(status).toBe(3);
    expect(report.equal).toBe(false);
    expect(written).toBe(false);
    const worst = report.worst as { difference: number; original: number; converted: number }[];
    expect(worst.length).toBeGreaterThan(0);
    expect(worst[0]!.difference).toBe(Math.abs(worst[0]!.original - worst[0]!.converted));
    expect(worst[0]!.difference).toBeGreaterThan(1);
    expect(report.outputs_over as number).toBeGreaterThanOrEqual(worst.length);
  });

  it('int8 quantization of a neural network: smaller, labels equal, probabilities within its tolerance', () => {
    const { status, report } = convert('mlp.joblib', trainRows(), ...int8);
    expect(status, JSON.stringify(report)).toBe(0);
    const size = report.size_bytes as { before: number; after: number };
    expect(size.after).toBeLessThan(size.before);
    expect(report.labels).toEqual({ matched: 40, total: 40 });
  });

  it('int8 quantization that flips labels is refused (one far outlier in the batch sets the activation scale)', () => {
    // Dynamic quantization scales each batch's activations by its range: one row of 1000s leaves the
    // training rows a few quantization steps, so many labels flip on any CPU's int8 kernels (inputs
    // merely unlike the training data flipped one label on one CPU and none on another).
    const outlier = Array.from({ length: 30 }, () => 1000);
    const { status, report, written } = convert('mlp.joblib', [...trainRows(), outlier], ...int8);
    expect(status).toBe(3);
    expect(written).toBe(false);
    const labels = report.labels as { matched: number; total: number };
    expect(labels.matched).toBeLessThan(labels.total - 5);
    expect((report.worst as { what: string }[])[0]!.what).toBe('label');
  });

  it('int8 quantization of a tree model is refused: it has no layers to quantize', () => {
    const { status, report } = convert(
      'hgb.joblib',
      rows,
      '--compile',
      'onnx',
      '--quantize',
      'int8',
      '--tolerance',
      '0.05',
    );
    expect(status).toBe(2);
    expect(report.error).toMatch(/neural networks/);
  });
});

/** An engine whose converter run prints `stdout` (as the converter image would). */
function fakeEngine(stdout: object, exitCode = 0): ConverterEngine & { runs: RunOptions[] } {
  const runs: RunOptions[] = [];
  return {
    runs,
    imageExists: async () => true,
    build: async () => {
      throw new Error('not built: the image exists');
    },
    run: async (o: RunOptions): Promise<RunResult> => {
      runs.push(o);
      return {
        containerId: 'x',
        exitCode,
        oomKilled: false,
        timedOut: false,
        durationMs: 1,
        stdoutTail: ['some warning', JSON.stringify(stdout)],
        stderrTail: [],
      };
    },
  };
}

describe('wrap reads the converter’s verdict', () => {
  const model = path.join(tmp, 'm.joblib');
  writeFileSync(model, 'not a real pickle');
  const request = {
    model,
    kind: 'sklearn' as const,
    example: { a: 1.5 },
    baseImage: 'py',
    compile: 'onnx' as const,
  };

  it('not equal: a COMPILE_NOT_EQUAL error listing the worst differences and where each input came from', async () => {
    const engine = fakeEngine(
      {
        rows: 257,
        tolerance: 1e-4,
        output: 'labels and probabilities',
        labels: { matched: 255, total: 257 },
        max_difference: 0.4,
        equal: false,
        worst: [
          { row: 9, source: 'generated #8', what: 'label', original: 1, converted: 2, difference: null },
        ],
        size_bytes: { before: 10, after: 5 },
        latency_ms: { before: { 1: 1, 64: 2 }, after: { 1: 0.1, 64: 0.2 } },
      },
      3,
    );
    const error = await convertModel(request, engine).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MlshipError);
    expect((error as MlshipError).code).toBe('COMPILE_NOT_EQUAL');
    expect((error as MlshipError).message).toMatch(/2 of 257 labels differ; nothing written/);
    expect((error as MlshipError).details.join('\n')).toContain('generated #8: label 1 → 2');
    // The model folder is mounted read-only; the rows go in a work folder of their own.
    expect(engine.runs[0]!.mounts).toContainEqual(expect.objectContaining({ target: '/in', readOnly: true }));
    expect(engine.runs[0]!.cmd).toEqual(
      expect.arrayContaining(['--tolerance', '0.0001', '--compile', 'onnx']),
    );
  });

  it('a model the converter cannot read: COMPILE_FAILED with its reason', async () => {
    const error = await convertModel(
      request,
      fakeEngine({ error: 'skl2onnx cannot convert Foo: no converter' }, 2),
    ).catch((e: unknown) => e);
    expect((error as MlshipError).code).toBe('COMPILE_FAILED');
    expect((error as MlshipError).message).toContain('skl2onnx cannot convert Foo');
  });

  it('--compile on an ONNX model, or on your own function, is a usage error before anything runs', async () => {
    const engine = fakeEngine({});
    await expect(convertModel({ ...request, kind: 'onnx' }, engine)).rejects.toThrow(/ONNX already/);
    await expect(convertModel({ ...request, kind: 'entry' }, engine)).rejects.toBeInstanceOf(UsageError);
    expect(engine.runs).toHaveLength(0);
  });
});

describe('the converter image', () => {
  it('a LightGBM pickle needs LightGBM (its own parameters naming xgboost do not make it an XGBoost one)', async () => {
    const file = path.join(tmp, 'lgbm.pkl');
    writeFileSync(
      file,
      Buffer.from('\x80\x04lightgbm.sklearn\x94LGBMClassifier xgboost_dart_mode=0', 'latin1'),
    );
    expect(await extrasFor(file)).toEqual(['lightgbm']);
    writeFileSync(file, Buffer.from('\x80\x04xgboost.sklearn\x94XGBClassifier', 'latin1'));
    expect(await extrasFor(file)).toEqual(['xgboost']);
    writeFileSync(file, Buffer.from('\x80\x04sklearn.ensemble._forest', 'latin1'));
    expect(await extrasFor(file)).toEqual([]);
  });

  it('extras come in layers after the shared ones, with the system library LightGBM links; each set is its own tag', () => {
    const base = converterFiles('py:3.11', []);
    const lgbm = converterFiles('py:3.11', ['lightgbm']);
    expect(base.map((f) => f.path)).toEqual(['Dockerfile', 'requirements.txt', 'convert.py']);
    const dockerfile = lgbm.find((f) => f.path === 'Dockerfile')!.content;
    // The shared pip layer comes first, unchanged, so every converter image reuses it.
    expect(dockerfile.indexOf('-r requirements.txt')).toBeLessThan(dockerfile.indexOf('libgomp1'));
    expect(dockerfile.indexOf('libgomp1')).toBeLessThan(dockerfile.indexOf('-r requirements-extra.txt'));
    expect(lgbm.find((f) => f.path === 'requirements-extra.txt')!.content).toContain('lightgbm==4.7.0');
    expect(base.find((f) => f.path === 'requirements.txt')).toEqual(
      lgbm.find((f) => f.path === 'requirements.txt'),
    );
    expect(converterImage(base)).not.toBe(converterImage(lgbm));
    expect(converterImage(base)).toMatch(/^mlship\/wrap-converter:[0-9a-f]{12}$/);
  });
});
