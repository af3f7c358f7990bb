// mlship wrap checks its inputs before writing anything: the format of the model file (no
// Python needed), then what the project's Python reports after loading it (a fake Python
// here: the real one is exercised in probe-python.test.ts). An input it cannot serve is a
// usage error naming the file and what was expected; nothing is written.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Exec, ExecOptions } from '../../../src/adapters/exec.js';
import { checkModelFormat } from '../../../src/core/wrap/model-format.js';
import type { ProbeReport, ProbeRequest } from '../../../src/core/wrap/probe.js';
import { pythonCandidates } from '../../../src/core/wrap/probe.js';
import { runWrap, type WrapOptions } from '../../../src/core/wrap/wrap.js';
import { onnxModel, tensorInput, zip } from './model-files.js';

const IRIS = path.resolve('fixtures/wrap/iris/model.joblib');
let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-checks-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const file = (name: string, content: string | Buffer) => {
  const p = path.join(tmp, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, content);
  return p;
};
const problem = async (p: string, kind: 'sklearn' | 'onnx' | 'torchscript') => {
  const r = await checkModelFormat(p, kind);
  return r.ok ? undefined : r.problem;
};

describe('model file formats, without Python', () => {
  it('a pickle or joblib file: the header, and the STOP opcode at the end', async () => {
    expect(await checkModelFormat(IRIS, 'sklearn')).toEqual({
      ok: true,
      format: 'pickle protocol 4',
      notes: [],
    });
    const random = file(
      'broken.joblib',
      Buffer.from(Array.from({ length: 5120 }, (_, i) => (i * 7919 + 13) % 251)),
    );
    expect(await problem(random, 'sklearn')).toBe(
      'it is not a pickle or joblib file (it starts with bytes 0d 97 26 b0 3f c9 58 e2)',
    );
    const half = file('half.joblib', readFileSync(IRIS).subarray(0, 1000));
    expect(await problem(half, 'sklearn')).toMatch(
      /does not end with the pickle STOP opcode: the file is truncated/,
    );
    const weak = file('weak.pkl', Buffer.concat([Buffer.from('(lp0\n'), Buffer.alloc(100, 7)]));
    expect(await problem(weak, 'sklearn')).toBe(
      'it is not a complete pickle: no STOP opcode at its end (truncated, or not a pickle at all: it starts with bytes 28 6c 70 30 0a 07 07 07)',
    );
    const gz = await checkModelFormat(file('m.joblib.gz', gzipSync(readFileSync(IRIS))), 'sklearn');
    expect(gz).toMatchObject({ ok: true, format: 'joblib, gzip-compressed' });
    expect(gz.ok && gz.notes).toEqual(['compressed: its content is checked only by loading it']);
  });

  it('says what a file plainly is when it is something else, with what to do', async () => {
    const lfs = await checkModelFormat(
      file('lfs.joblib', 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n'),
      'sklearn',
    );
    expect(lfs).toEqual({
      ok: false,
      problem: 'it is a Git LFS pointer, not the model itself',
      hint: 'fetch the real file with `git lfs pull` (or download it again), then wrap it',
    });
    expect(await problem(file('page.onnx', '<!DOCTYPE html><html>'), 'onnx')).toMatch(/an HTML page/);
    expect(await problem(file('empty.pkl', ''), 'sklearn')).toBe('the file is empty');
    expect(await problem(file('m.pkl', zip({ 'a/data.pkl': '' })), 'sklearn')).toMatch(/a zip archive/);
  });

  it('an ONNX model: the protobuf walked to its end; the graph inputs, initializers excluded', async () => {
    const model = onnxModel([tensorInput('float_input', 1, ['N', 4])], ['coef']);
    const r = await checkModelFormat(file('m.onnx', model), 'onnx');
    expect(r).toEqual({
      ok: true,
      format: 'ONNX (IR version 8)',
      notes: [],
      onnxInputs: [{ name: 'float_input', elemType: 1, dims: ['N', 4] }],
    });
    expect(await problem(file('cut.onnx', model.subarray(0, model.length - 20)), 'onnx')).toMatch(
      /runs past the end of its message \(truncated file\?\)/,
    );
    expect(await problem(file('x.onnx', Buffer.from([0x0f, 1, 2, 3])), 'onnx')).toBe(
      'invalid protobuf wire type 7 at byte 0',
    );
    expect(await problem(file('joblib.onnx', readFileSync(IRIS)), 'onnx')).toMatch(/invalid protobuf/);
  });

  it('a TorchScript archive has code/; a torch.save checkpoint and a legacy pickle are named as such', async () => {
    const ts = zip({
      'model/code/__torch__.py': 'def forward(self, x): ...',
      'model/data.pkl': '',
      'model/version': '3',
    });
    expect(await checkModelFormat(file('ts.pt', ts), 'torchscript')).toEqual({
      ok: true,
      format: 'TorchScript archive (3 entries)',
      notes: [],
    });
    expect(
      await problem(file('ckpt.pt', zip({ 'archive/data.pkl': '', 'archive/data/0': '' })), 'torchscript'),
    ).toMatch(
      /^it is a torch\.save checkpoint \(weights, no code\), not TorchScript; save the model with torch\.jit\.save/,
    );
    expect(await problem(file('legacy.pt', Buffer.from([0x80, 0x02, 0x8a, 0x0a])), 'torchscript')).toMatch(
      /legacy torch\.save checkpoint/,
    );
    expect(await problem(file('cut.pt', ts.subarray(0, ts.length - 30)), 'torchscript')).toMatch(/truncated/);
  });
});

/** A fake Python per interpreter path: answers the probe's request, or is not installed. */
function fakePython(
  answers: Record<string, (req: ProbeRequest) => Partial<ProbeReport> & { missing?: string }>,
) {
  const calls: { file: string; request: ProbeRequest }[] = [];
  const exec: Exec = async (f: string, args: string[], options?: ExecOptions) => {
    const request = JSON.parse(options?.input ?? '{}') as ProbeRequest;
    calls.push({ file: f, request });
    expect(args[0]).toBe('-c');
    expect(args[1]).toContain("mlship wrap's check before it writes anything");
    const answer = answers[f];
    if (!answer) return { exitCode: 127, stdout: '', stderr: '', notFound: true, timedOut: false };
    const report = { python: '3.11.7', executable: f, ...answer(request) };
    return {
      exitCode: 0,
      stdout: `${JSON.stringify(report)}\n`,
      stderr: '',
      notFound: false,
      timedOut: false,
    };
  };
  return { exec, calls };
}

const SKLEARN = { 'scikit-learn': '1.9.1' };

describe('the model loaded by the project’s Python', () => {
  const wrap = (o: Partial<WrapOptions>, exec: Exec) =>
    runWrap(
      {
        cwd: tmp,
        model: path.join(tmp, 'm.joblib'),
        out: path.join(tmp, 'svc'),
        force: false,
        dryRun: false,
        ...o,
      },
      { exec },
    );
  beforeEach(() => {
    writeFileSync(path.join(tmp, 'm.joblib'), readFileSync(IRIS));
  });

  it('tries the interpreters in order, passing over one without the runtime, and says which one loaded it', async () => {
    const venv = file('.venv/bin/python', '');
    file(
      'example.json',
      '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}',
    );
    expect(pythonCandidates({ virtualEnv: '/opt/env' }, tmp, tmp)).toEqual([
      '/opt/env/bin/python',
      venv,
      'python3',
    ]);
    const py = fakePython({
      [venv]: () => ({ missing: 'joblib' }),
      python3: () => ({
        model: {
          runtime: SKLEARN,
          type: 'sklearn.tree._classes.DecisionTreeClassifier',
          n_features_in: 4,
          prediction: 0,
        },
      }),
    });
    const r = await wrap({}, py.exec);
    expect(py.calls.map((c) => c.file)).toEqual([venv, 'python3']);
    expect(py.calls[1]!.request.model).toEqual({
      kind: 'sklearn',
      path: path.join(tmp, 'm.joblib'),
      sample: [5.1, 3.5, 1.4, 0.2],
    });
    expect(r.checks.verified).toEqual([
      'm.joblib: loaded by python python3 (scikit-learn 1.9.1): DecisionTreeClassifier, 4 features; predicts 0',
    ]);
    expect(r.checks.model).toMatchObject({
      format: 'pickle protocol 4',
      inputWidth: 4,
      type: 'sklearn.tree._classes.DecisionTreeClassifier',
    });
  });

  it('an unloadable file is exit 2 naming the file and what was expected; nothing is written', async () => {
    const py = fakePython({
      python3: () => ({
        model: {
          runtime: SKLEARN,
          error: { stage: 'load', type: 'KeyError', message: "Traceback ...\nKeyError: 'tree_'" },
        },
      }),
    });
    const err = await wrap({}, py.exec).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'MODEL_INVALID',
      exitCode: 2,
      message: "m.joblib could not be loaded by python python3 (scikit-learn 1.9.1): KeyError: 'tree_'",
      hint: 'expected a scikit-learn model saved with joblib.dump or pickle.dump',
    });
    expect(existsSync(path.join(tmp, 'svc'))).toBe(false);
  });

  it('with another version of the runtime than the service’s, a load failure is only reported', async () => {
    file('example.json', '{"x": [1, 2, 3, 4]}');
    const py = fakePython({
      python3: () => ({
        model: {
          runtime: { 'scikit-learn': '1.3.0' },
          error: { stage: 'load', type: 'AttributeError', message: 'no attribute' },
        },
      }),
    });
    const r = await wrap({}, py.exec);
    expect(r.checks.verified).toEqual([]);
    expect(r.checks.unverified).toEqual([
      'm.joblib: could not be loaded by python python3 (scikit-learn 1.3.0; the service uses scikit-learn 1.9.1): no attribute',
    ]);
  });

  it('without an example, writes one from n_features_in_ (or feature_names_in_) and says so', async () => {
    const width = fakePython({ python3: () => ({ model: { runtime: SKLEARN, n_features_in: 3 } }) });
    const r = await wrap({}, width.exec);
    expect(JSON.parse(readFileSync(path.join(tmp, 'svc/app/example.json'), 'utf8'))).toEqual({
      features: [0, 0, 0],
    });
    expect(r.example).toEqual({ generatedFrom: "the model's n_features_in_ = 3" });
    expect(readFileSync(path.join(tmp, 'svc/app/schema.py'), 'utf8')).toContain(
      'features: Annotated[list[float], Field(min_length=3, max_length=3)]',
    );
    const named = fakePython({
      python3: () => ({
        model: { runtime: SKLEARN, n_features_in: 2, feature_names: ['age', 'bmi (kg/m2)'] },
      }),
    });
    const again = await wrap({ out: path.join(tmp, 'svc2') }, named.exec);
    expect(again.manifest.name).toBe('m');
    expect(JSON.parse(readFileSync(path.join(tmp, 'svc2/app/example.json'), 'utf8'))).toEqual({
      age: 0,
      'bmi (kg/m2)': 0,
    });
  });

  it('a re-wrap without an example next to the model keeps the service’s own example (yours, if you edited it)', async () => {
    const py = fakePython({ python3: () => ({ model: { runtime: SKLEARN, n_features_in: 2 } }) });
    await wrap({}, py.exec);
    writeFileSync(path.join(tmp, 'svc/app/example.json'), '{"features": [1.5, 2.5]}\n');
    const r = await wrap({ port: 9000 }, py.exec);
    expect(r.example).toEqual({ file: path.join(tmp, 'svc/app/example.json') });
    expect(r.files.find((f) => f.path === 'Dockerfile')?.action).toBe('update');
  });

  it('an example of the wrong width is refused before anything is written', async () => {
    file('example.json', '{"features": [1, 2, 3]}');
    const py = fakePython({ python3: () => ({ model: { runtime: SKLEARN, n_features_in: 4 } }) });
    await expect(wrap({}, py.exec)).rejects.toMatchObject({
      code: 'EXAMPLE_MISMATCH',
      message:
        'the example gives the model 3 numbers per row, but the model takes 4 numbers per row (n_features_in_ = 4)',
    });
    expect(existsSync(path.join(tmp, 'svc'))).toBe(false);
  });

  it('an ONNX model’s input shape gives the example without any Python, and checks a given one', async () => {
    file('m.onnx', onnxModel([tensorInput('float_input', 1, ['N', 3])]));
    const r = await wrap({ model: path.join(tmp, 'm.onnx') }, fakePython({}).exec);
    expect(r.example.generatedFrom).toBe('the ONNX input float_input of shape [N, 3]');
    expect(JSON.parse(readFileSync(path.join(tmp, 'svc/app/example.json'), 'utf8'))).toEqual({
      float_input: [0, 0, 0],
    });
    expect(r.checks.unverified).toEqual([
      "m.onnx: not loaded here: no Python with the service's runtime (tried python3: not found); `mlship serve` loads it in the image",
    ]);
    file('wide.json', '{"x": [1, 2, 3, 4]}');
    await expect(
      wrap(
        { model: path.join(tmp, 'm.onnx'), example: path.join(tmp, 'wide.json'), out: path.join(tmp, 'o2') },
        fakePython({}).exec,
      ),
    ).rejects.toMatchObject({
      code: 'EXAMPLE_MISMATCH',
      message:
        'the example gives the model 4 numbers per row, but the model takes 3 numbers per row (input float_input of shape [N, 3])',
    });
  });

  it('--python names the interpreter: the only one tried, and it must exist', async () => {
    file('example.json', '{"x": [1, 2, 3, 4]}');
    const py = fakePython({ '/opt/py/bin/python': () => ({ model: { runtime: SKLEARN } }) });
    const r = await runWrap(
      {
        cwd: tmp,
        model: path.join(tmp, 'm.joblib'),
        out: path.join(tmp, 'svc'),
        force: false,
        dryRun: false,
      },
      { exec: py.exec, python: '/opt/py/bin/python', virtualEnv: '/opt/env' },
    );
    expect(py.calls.map((c) => c.file)).toEqual(['/opt/py/bin/python']);
    expect(r.checks.verified[0]).toMatch(/^m\.joblib: loaded by python \/opt\/py\/bin\/python/);
    await expect(
      runWrap(
        {
          cwd: tmp,
          model: path.join(tmp, 'm.joblib'),
          out: path.join(tmp, 'o'),
          force: false,
          dryRun: false,
        },
        { exec: py.exec, python: '/nope/python' },
      ),
    ).rejects.toMatchObject({ exitCode: 2, message: '--python /nope/python: no such program' });
  });

  it('--no-check: the format only, said as such', async () => {
    file('example.json', '{"x": [1, 2, 3, 4]}');
    const py = fakePython({});
    const r = await wrap({ formatsOnly: true }, py.exec);
    expect(py.calls).toEqual([]);
    expect(r.checks.unverified).toEqual(['m.joblib: not loaded (--no-check)']);
  });
});

describe('--entry and --schema, imported by the project’s Python', () => {
  const entryWrap = (o: Partial<WrapOptions>, exec: Exec) =>
    runWrap({ cwd: tmp, out: path.join(tmp, 'svc'), force: false, dryRun: false, ...o }, { exec });
  beforeEach(() => {
    file('code/predict.py', 'def predict(payload):\n    return 1\n\n\ndef helper(a, b):\n    return a\n');
    file('code/example.json', '{"text": "hi"}');
  });

  it('a function that is not there is named, with the ones that are, even without Python', async () => {
    await expect(
      entryWrap({ entry: path.join(tmp, 'code/predict.py:predcit') }, fakePython({}).exec),
    ).rejects.toMatchObject({
      code: 'ENTRY_INVALID',
      message: 'code/predict.py has no function predcit',
      hint: 'functions there: predict, helper; use --entry code/predict.py:<function>',
    });
  });

  it('a function with the wrong signature, or a module that does not import, is exit 2', async () => {
    const wrong = fakePython({
      python3: () => ({ entry: { error: { stage: 'signature', type: 'TypeError', message: '(a, b)' } } }),
    });
    await expect(
      entryWrap({ entry: path.join(tmp, 'code/predict.py:helper') }, wrong.exec),
    ).rejects.toMatchObject({
      code: 'ENTRY_INVALID',
      exitCode: 2,
      message: 'helper(a, b) in code/predict.py must take one argument: the request, as a dict',
    });
    const broken = fakePython({
      python3: () => ({
        entry: {
          error: {
            stage: 'import',
            type: 'SyntaxError',
            message: '  File "predict.py", line 2\nSyntaxError: invalid syntax',
          },
        },
      }),
    });
    const err = await entryWrap({ entry: path.join(tmp, 'code/predict.py:predict') }, broken.exec).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'ENTRY_INVALID',
      message: 'code/predict.py cannot be imported (python python3): SyntaxError: invalid syntax',
      details: ['  File "predict.py", line 2'],
    });
    expect(existsSync(path.join(tmp, 'svc'))).toBe(false);
  });

  it('a dependency this Python lacks is not an error: it is said, and the service is written', async () => {
    const py = fakePython({ python3: () => ({ entry: { unavailable: 'torch' } }) });
    const r = await entryWrap({ entry: path.join(tmp, 'code/predict.py:predict') }, py.exec);
    expect(r.checks.unverified).toEqual([
      'code/predict.py: imports torch, which python python3 does not have: not imported here (the image installs requirements.txt)',
    ]);
    expect(existsSync(path.join(tmp, 'svc/Dockerfile'))).toBe(true);
  });

  it('--schema: the class must be there, and the example must fit it', async () => {
    writeFileSync(path.join(tmp, 'm.joblib'), readFileSync(IRIS));
    file('example.json', '{"sepal_length": -1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}');
    const schema = path.resolve('fixtures/wrap/iris/schema.py');
    await expect(
      entryWrap({ model: path.join(tmp, 'm.joblib'), schema: `${schema}:Flowr` }, fakePython({}).exec),
    ).rejects.toMatchObject({
      code: 'SCHEMA_INVALID',
      hint: expect.stringMatching(/^classes there: Flower;/),
    });
    const py = fakePython({
      python3: (req) => ({
        model: { runtime: SKLEARN },
        schema: req.schema
          ? {
              error: {
                stage: 'example',
                type: 'ValidationError',
                message: 'sepal_length: Input should be greater than 0',
              },
            }
          : {},
      }),
    });
    await expect(
      entryWrap({ model: path.join(tmp, 'm.joblib'), schema: `${schema}:Flower` }, py.exec),
    ).rejects.toMatchObject({
      code: 'EXAMPLE_MISMATCH',
      message: `the example does not fit Flower (${schema}): sepal_length: Input should be greater than 0`,
    });
    expect(py.calls[0]!.request.schema).toMatchObject({
      module: 'schema',
      class: 'Flower',
      dir: path.dirname(schema),
    });
  });
});
