// runWrap as a use case: detection, example inference, weights modes, and the
// promise never to overwrite a file the user changed.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  detectKind,
  FileConflictError,
  runWrap,
  sha256File,
  type WrapOptions,
} from '../../../src/core/wrap/wrap.js';
import { ExampleError, inferFields, inputModeFor, pythonType } from '../../../src/generators/wrap-input.js';
import { UsageError } from '../../../src/io/errors.js';

const ROOT = process.cwd();
const IRIS = path.join(ROOT, 'fixtures/wrap/iris/model.joblib');
let tmp: string;

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const wrap = (o: Partial<WrapOptions>) =>
  runWrap({ cwd: ROOT, model: IRIS, out: path.join(tmp, 'svc'), force: false, dryRun: false, ...o });
const read = (p: string) => readFileSync(path.join(tmp, 'svc', p), 'utf8');

describe('example inference', () => {
  it('turns each field into a typed, shape-checked pydantic field', () => {
    const fields = inferFields({ a: 1, v: [1, 2, 3], m: [[1, 2]], s: 'x', b: true, o: { k: 1 }, n: null });
    expect(fields.map((f) => pythonType(f.shape))).toEqual([
      'float',
      'Annotated[list[float], Field(min_length=3, max_length=3)]',
      'Annotated[list[list[float]], exact_shape((1, 2))]',
      'str',
      'bool',
      'dict[str, Any]',
      'Any',
    ]);
  });

  it('gives keywords and odd keys a Python name and keeps the JSON key as alias', () => {
    const [a, b, c] = inferFields({ class: 1, 'petal-width': 2, '2d': 3 });
    expect([a!.py, b!.py, c!.py]).toEqual(['class_', 'petal_width', 'f_2d']);
    expect(a!.name).toBe('class');
  });

  it('picks tabular rows, one tensor, or a dict for entry points', () => {
    expect(inputModeFor(inferFields({ a: 1, v: [1, 2] }), true)).toBe('tabular');
    expect(inputModeFor(inferFields({ img: [[1, 2]] }), true)).toBe('tensor');
    expect(inputModeFor(inferFields({ s: 'text' }), false)).toBe('dict');
  });

  it('refuses what a model file cannot take, saying why', () => {
    expect(() => inputModeFor(inferFields({ s: 'text' }), true)).toThrow(/not numeric.*--entry/);
    expect(() => inputModeFor(inferFields({ a: 1, img: [[1]] }), true)).toThrow(/only field/);
    expect(() => inferFields([1, 2] as never)).toThrow(ExampleError);
    expect(() => inferFields({ v: [1, 'a'] })).toThrow(/same type/);
  });
});

describe('runWrap', () => {
  it('detects the model kind from the file name', () => {
    expect(detectKind('m.joblib')).toBe('sklearn');
    expect(detectKind('m.pkl')).toBe('sklearn');
    expect(detectKind('m.onnx')).toBe('onnx');
    expect(detectKind('m.pt')).toBe('torchscript');
    expect(() => detectKind('m.h5')).toThrow(UsageError);
  });

  it('writes a service named after the model folder, weights mounted, not copied', async () => {
    const r = await wrap({});
    expect(r.name).toBe('iris');
    expect(r.kind).toBe('sklearn');
    expect(r.files.every((f) => f.action === 'create')).toBe(true);
    const manifest = JSON.parse(read('mlship-wrap.json'));
    expect(manifest.weights).toEqual({
      mode: 'mount',
      source: path.relative(path.join(tmp, 'svc'), IRIS),
      target: '/models/model.joblib',
    });
    expect(r.files.some((f) => f.path.startsWith('weights/'))).toBe(false);
    expect(read('Dockerfile')).toContain('FROM python:3.11-slim');
    expect(JSON.parse(read('app/example.json'))).toEqual(
      JSON.parse(readFileSync(path.join(ROOT, 'fixtures/wrap/iris/example.json'), 'utf8')),
    );
  });

  it('a second run with the same inputs changes nothing', async () => {
    await wrap({});
    const again = await wrap({});
    expect(again.files.every((f) => f.action === 'unchanged')).toBe(true);
  });

  it('updates its own files when the inputs change', async () => {
    await wrap({});
    const r = await wrap({ port: 9000 });
    expect(r.files.find((f) => f.path === 'Dockerfile')?.action).toBe('update');
    expect(read('Dockerfile')).toContain('EXPOSE 9000');
  });

  it('never overwrites a file the user changed, unless forced', async () => {
    await wrap({});
    writeFileSync(path.join(tmp, 'svc', 'app/main.py'), '# my edits\n');
    const err = await wrap({ port: 9000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileConflictError);
    expect((err as FileConflictError).details).toEqual(['changed: app/main.py']);
    expect(read('app/main.py')).toBe('# my edits\n');
    expect(read('Dockerfile')).toContain('EXPOSE 8080'); // nothing was written
    const forced = await wrap({ port: 9000, force: true });
    expect(forced.files.find((f) => f.path === 'app/main.py')?.action).toBe('overwrite');
    expect(read('app/main.py')).not.toBe('# my edits\n');
  });

  it('treats a pre-existing unknown file as the user’s', async () => {
    const svc = path.join(tmp, 'svc');
    await wrap({ dryRun: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(svc, { recursive: true });
    writeFileSync(path.join(svc, 'Dockerfile'), 'FROM scratch\n');
    await expect(wrap({})).rejects.toBeInstanceOf(FileConflictError);
  });

  it('--dry-run shows the diff of every file that would change, yours included', async () => {
    await wrap({});
    writeFileSync(path.join(tmp, 'svc', 'app/main.py'), '# my edits\n');
    const r = await wrap({ port: 9000, dryRun: true });
    const main = r.files.find((f) => f.path === 'app/main.py')!;
    expect(main.action).toBe('conflict');
    expect(main.diff).toContain('-# my edits');
    const dockerfile = r.files.find((f) => f.path === 'Dockerfile')!;
    expect(dockerfile.diff).toMatch(/^-EXPOSE 8080$/m);
    expect(dockerfile.diff).toMatch(/^\+EXPOSE 9000$/m);
    expect(r.files.find((f) => f.path === 'app/batching.py')).toEqual({
      path: 'app/batching.py',
      action: 'unchanged',
    });
    expect(read('Dockerfile')).toContain('EXPOSE 8080');
  });

  it('--dry-run reports the plan and writes nothing', async () => {
    const r = await wrap({ dryRun: true });
    expect(r.files.length).toBeGreaterThan(10);
    expect(() => read('Dockerfile')).toThrow();
  });

  it('--bake-weights copies the weights into the build context', async () => {
    const r = await wrap({ bakeWeights: true });
    expect(r.manifest.weights).toMatchObject({ mode: 'bake', file: 'weights/model.joblib' });
    expect(readFileSync(path.join(tmp, 'svc', 'weights/model.joblib'))).toEqual(readFileSync(IRIS));
    expect(read('Dockerfile')).toContain('COPY weights/ /models/');
    expect(read('.dockerignore')).not.toContain('*.joblib');
  });

  it('a weights URL gets the checksum of the local file; s3:// needs no SDK in the image', async () => {
    const r = await wrap({ weightsUrl: 's3://bucket/models/model.joblib' });
    expect(r.manifest.weights).toEqual({
      mode: 'url',
      url: 's3://bucket/models/model.joblib',
      sha256: await sha256File(IRIS),
      target: '/models/model.joblib',
    });
    expect(read('requirements-model.txt')).not.toMatch(/boto3/);
    expect(read('app/settings.py')).toContain(await sha256File(IRIS));
  });

  it('wraps a model known only by its URL (kind from the file name; checksum required)', async () => {
    const example = path.join(tmp, 'example.json');
    writeFileSync(example, '{"x": [1, 2]}');
    const url = 'https://models.example.com/v2/forest.onnx';
    await expect(wrap({ model: undefined, weightsUrl: url, example })).rejects.toThrow(/checksum/);
    const r = await wrap({ model: undefined, weightsUrl: url, weightsSha256: 'c'.repeat(64), example });
    expect(r).toMatchObject({ kind: 'onnx', name: 'forest' });
    expect(r.checks.unverified).toEqual([
      `${url}: no local copy to check; the service checks its SHA-256 when it downloads it`,
    ]);
    expect(r.manifest.weights).toEqual({
      mode: 'url',
      url,
      sha256: 'c'.repeat(64),
      target: '/models/forest.onnx',
    });
  });

  it('wraps an entry point with its load() hook, sibling modules and requirements', async () => {
    const dir = path.join(tmp, 'code');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, 'predict.py'),
      'import helpers\n\ndef predict(p):\n    return helpers.f(p)\n',
    );
    writeFileSync(path.join(dir, 'helpers.py'), 'def f(p):\n    return 1\n');
    writeFileSync(path.join(dir, 'requirements.txt'), 'rich==13.0.0\n');
    writeFileSync(path.join(dir, 'example.json'), '{"text": "hi"}');
    const r = await wrap({ model: undefined, entry: path.join(dir, 'predict.py:predict') });
    expect(r.kind).toBe('entry');
    expect(r.name).toBe('code');
    expect(read('user/helpers.py')).toContain('def f');
    expect(read('requirements-user.txt')).toBe('rich==13.0.0\n');
    expect(read('Dockerfile')).toContain('COPY user/ ./user/');
    expect(read('app/schema.py')).toContain('text: str');
  });

  it('takes defaults from a mlship.yaml service, flags win', async () => {
    const r = await wrap({
      model: undefined,
      port: 7000,
      service: {
        name: 'flowers',
        config: {
          model: IRIS,
          runtime: 'python',
          port: 8081,
          gpu: false,
          startup_grace_seconds: 120,
          max_body_bytes: 2048,
          max_queue: 3,
          batching: { max_batch_size: 16, max_latency_ms: 5 },
        },
      },
      baseImages: { python: 'mirror.local/python:3.11-slim' },
    });
    expect(r.name).toBe('flowers');
    expect(r.manifest.port).toBe(7000);
    expect(read('Dockerfile')).toContain('FROM mirror.local/python:3.11-slim');
    expect(read('Dockerfile')).toContain('--start-period=120s');
    expect(read('app/settings.py')).toContain('_int("BATCH_MAX_SIZE", 16)');
    expect(read('app/settings.py')).toContain('_int("MAX_QUEUE", 3)');
  });

  it('explains what is missing', async () => {
    await expect(wrap({ model: undefined })).rejects.toThrow(/nothing to wrap/);
    await expect(wrap({ model: 'nope.joblib' })).rejects.toThrow(/not found/);
    await expect(wrap({ example: path.join(tmp, 'none.json') })).rejects.toThrow(/not found/);
    await expect(wrap({ runtime: 'node' })).rejects.toThrow(/ONNX models only/);
    const bare = path.join(tmp, 'm.joblib');
    writeFileSync(bare, 'x');
    await expect(wrap({ model: bare })).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: `${bare} is not a model mlship can serve: it is not a pickle or joblib file (it starts with bytes 78)`,
    });
    writeFileSync(bare, readFileSync(IRIS));
    await expect(wrap({ model: bare })).rejects.toMatchObject({ message: 'no example input found' });
  });
});
