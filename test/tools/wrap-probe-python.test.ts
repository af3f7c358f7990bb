// The check of `mlship wrap` with a real Python (the pinned .venv: scikit-learn, onnxruntime,
// skl2onnx, pydantic): real files that pass the format check but cannot be served are refused
// with the runtime's own words, a real ONNX model's shape read by mlship's protobuf walk matches
// onnxruntime's, and a user's function and request model are imported as the service will.
// Without the .venv it skips with the reason locally and fails on CI.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exec } from '../../src/adapters/exec.js';
import { checkModelFormat } from '../../src/core/wrap/model-format.js';
import { runWrap, type WrapOptions } from '../../src/core/wrap/wrap.js';

const PYTHON = path.resolve('.venv/bin/python');
const CI = Boolean(process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0');
if (!existsSync(PYTHON)) {
  if (CI) throw new Error(`${PYTHON} is missing: CI must create .venv from requirements-dev.txt`);
  console.warn(`skipping the real-Python wrap checks: ${PYTHON} is missing`);
}
const IRIS = path.resolve('fixtures/wrap/iris/model.joblib');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-probe-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const file = (name: string, content: string | Buffer) => {
  const p = path.join(tmp, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, content);
  return p;
};
let n = 0;
const wrap = (o: Partial<WrapOptions>) =>
  runWrap(
    { cwd: tmp, out: path.join(tmp, `svc-${n++}`), force: false, dryRun: false, ...o },
    { exec, python: PYTHON },
  );
const by = `python ${PYTHON}`;

// Each case starts Python and imports scikit-learn or onnxruntime: seconds on a loaded machine.
describe.runIf(existsSync(PYTHON))('wrap checks with the project’s real Python', { timeout: 90_000 }, () => {
  it('loads the model and predicts the example, as the warm-up will', async () => {
    const r = await wrap({ model: IRIS });
    expect(r.checks.verified).toEqual([
      `${IRIS}: loaded by ${by} (scikit-learn 1.9.1): DecisionTreeClassifier, 4 features; predicts 0`,
    ]);
    expect(r.checks.unverified).toEqual([]);
  });

  it('a pickle that passes the format check but does not load, or is not a model, is refused (exit 2)', async () => {
    const bytes = Buffer.from(readFileSync(IRIS));
    bytes.fill(0xff, 200, 260); // the opcodes in the middle are garbage; header and STOP intact
    const corrupt = file('corrupt/model.joblib', bytes);
    file('corrupt/example.json', '{"x": [1, 2, 3, 4]}');
    expect((await checkModelFormat(corrupt, 'sklearn')).ok).toBe(true);
    const err = await wrap({ model: corrupt }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'MODEL_INVALID',
      exitCode: 2,
      message: expect.stringMatching(
        new RegExp(
          `^corrupt/model\\.joblib could not be loaded by ${by} \\(scikit-learn 1\\.9\\.1\\): \\w+Error`,
        ),
      ),
      hint: 'expected a scikit-learn model saved with joblib.dump or pickle.dump',
    });
    const dict = file('dict/model.pkl', Buffer.from([0x80, 0x04, 0x7d, 0x2e])); // pickle.dumps({})
    file('dict/example.json', '{"x": [1, 2, 3, 4]}');
    await expect(wrap({ model: dict })).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: `dict/model.pkl could not be loaded by ${by} (scikit-learn 1.9.1): TypeError: dict has no predict() method`,
    });
    expect(existsSync(path.join(tmp, `svc-${n - 1}`))).toBe(false);
  });

  it('a real ONNX model: the shape mlship reads is onnxruntime’s, and the example is written from it', async () => {
    const model = path.join(tmp, 'onnx/iris.onnx');
    mkdirSync(path.dirname(model));
    execFileSync(PYTHON, [
      '-c',
      `
import sys, numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx
X, y = load_iris(return_X_y=True)
m = LogisticRegression(max_iter=500).fit(X, y)
open(sys.argv[1], "wb").write(to_onnx(m, X[:1].astype(np.float32), options={id(m): {"zipmap": False}}, target_opset=17).SerializeToString())
`,
      model,
    ]);
    const format = await checkModelFormat(model, 'onnx');
    const ort = execFileSync(
      PYTHON,
      [
        '-c',
        'import sys, json, onnxruntime as o; i = o.InferenceSession(sys.argv[1]).get_inputs()[0]; print(json.dumps([i.name, i.shape]))',
        model,
      ],
      { encoding: 'utf8' },
    );
    const [name, shape] = JSON.parse(ort) as [string, (number | string | null)[]];
    expect(format.ok && format.onnxInputs?.map((i) => [i.name, i.dims])).toEqual([[name, shape]]);
    const r = await wrap({ model });
    expect(r.example.generatedFrom).toBe(
      `the ONNX input ${name} of shape [${shape.map((d) => d ?? '?').join(', ')}]`,
    );
    expect(r.checks.verified[0]).toMatch(
      new RegExp(
        `^onnx/iris\\.onnx: loaded by ${by} \\(onnxruntime 1\\.32\\.0\\): InferenceSession; predicts \\d$`,
      ),
    );
  });

  it('--entry: the module is imported, the function found and its signature checked', async () => {
    file('code/example.json', '{"text": "hi"}');
    file(
      'code/predict.py',
      'def predict(payload):\n    return 1\n\n\ndef pair(a, b):\n    return a\n\n\ndef load():\n    pass\n',
    );
    const ok = await wrap({ entry: path.join(tmp, 'code/predict.py:predict') });
    expect(ok.checks.verified).toEqual([
      `code/predict.py: imported by ${by}; predict(payload) takes one argument (with load())`,
    ]);
    await expect(wrap({ entry: path.join(tmp, 'code/predict.py:pair') })).rejects.toMatchObject({
      code: 'ENTRY_INVALID',
      message: 'pair(a, b) in code/predict.py must take one argument: the request, as a dict',
    });
    file('bad/example.json', '{"text": "hi"}');
    file('bad/predict.py', 'def predict(payload)\n    return 1\n');
    await expect(wrap({ entry: path.join(tmp, 'bad/predict.py:predict') })).rejects.toMatchObject({
      code: 'ENTRY_INVALID',
      message: `bad/predict.py cannot be imported (${by}): SyntaxError: expected ':'`,
    });
    file('deps/example.json', '{"text": "hi"}');
    file('deps/predict.py', 'import mlship_not_installed_pkg\n\n\ndef predict(payload):\n    return 1\n');
    const deps = await wrap({ entry: path.join(tmp, 'deps/predict.py:predict') });
    expect(deps.checks.unverified).toEqual([
      `deps/predict.py: imports mlship_not_installed_pkg, which ${by} does not have: not imported here (the image installs requirements.txt)`,
    ]);
  });

  it('--schema: the pydantic model is imported and the example validated against it', async () => {
    file(
      'typed/example.json',
      '{"sepal_length": -1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}',
    );
    file('typed/predict.py', 'def predict(payload):\n    return 1\n');
    file('typed/schema.py', readFileSync('fixtures/wrap/iris/schema.py'));
    await expect(
      wrap({
        entry: path.join(tmp, 'typed/predict.py:predict'),
        schema: `${path.join(tmp, 'typed/schema.py')}:Flower`,
      }),
    ).rejects.toMatchObject({
      code: 'EXAMPLE_MISMATCH',
      message: expect.stringMatching(
        /^the example does not fit Flower \(typed\/schema\.py\): sepal_length: Input should be greater than 0/,
      ),
    });
  });
});
