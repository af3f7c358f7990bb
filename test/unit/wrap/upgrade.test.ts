// `mlship wrap --upgrade`: a service wrapped by an older mlship gets the current templates in
// the files its owner did not touch; edited files are kept and listed; the template version and
// the settings are recorded, and read back from the files for services wrapped before that.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { templateVersion, type WrapManifest } from '../../../src/core/wrap/manifest.js';
import { sha256Text } from '../../../src/core/wrap/plan.js';
import { recoverSettings, runUpgrade } from '../../../src/core/wrap/upgrade.js';
import { runWrap, type WrapOptions } from '../../../src/core/wrap/wrap.js';
import { templateDigest } from '../../../src/generators/wrap-templates.js';
import { onnxModel, tensorInput } from './model-files.js';

const IRIS = path.resolve('fixtures/wrap/iris/model.joblib');
let tmp: string;
let svc: string;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-upgrade-'));
  svc = path.join(tmp, 'svc');
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const wrap = (o: Partial<WrapOptions> = {}) =>
  runWrap({ cwd: tmp, model: IRIS, out: svc, force: false, dryRun: false, mlshipVersion: '0.1.0', ...o });
const upgrade = (o: { force?: boolean; dryRun?: boolean } = {}) =>
  runUpgrade({ cwd: tmp, dir: 'svc', force: false, dryRun: false, mlshipVersion: '0.1.0', ...o });
const read = (p: string) => readFileSync(path.join(svc, p), 'utf8');
const manifest = () => JSON.parse(read('mlship-wrap.json')) as WrapManifest;

/**
 * Turns a fresh service into one an older mlship wrote: app/main.py as the template was before
 * its assert became a real check, recorded as mlship's own, and a manifest without versions.
 */
function makeLegacy(): string {
  const old = read('app/main.py').replace(
    / {8}predict = state\.predict\n {8}if predict is None:.*\n {12}return _not_ready\(\)\n {8}outputs = await _on_model_thread\(predict, inputs\)/,
    '        assert state.model is not None\n        outputs = await _on_model_thread(state.model.predict, inputs)',
  );
  expect(old).toContain('assert state.model is not None');
  writeFileSync(path.join(svc, 'app/main.py'), old);
  const { templateVersion: _t, settings: _s, ...legacy } = manifest();
  legacy.files['app/main.py'] = sha256Text(old);
  writeFileSync(path.join(svc, 'mlship-wrap.json'), `${JSON.stringify(legacy, null, 2)}\n`);
  return old;
}

describe('mlship wrap --upgrade', () => {
  it('records the template version: the mlship version and a digest of the runtime’s templates', async () => {
    const r = await wrap();
    expect(r.manifest.templateVersion).toBe(`0.1.0+${templateDigest('python')}`);
    expect(templateDigest('python')).toMatch(/^[0-9a-f]{12}$/);
    expect(templateDigest('node')).not.toBe(templateDigest('python'));
    expect(r.manifest.settings).toEqual({
      workers: 0,
      maxBodyBytes: 1_048_576,
      maxQueue: 256,
      baseImage: 'python:3.11-slim',
      hasUserRequirements: false,
      extraRequirements: [],
    });
  });

  it('brings a service wrapped before a fix up to date; your edits are kept and listed', async () => {
    await wrap();
    makeLegacy();
    writeFileSync(path.join(svc, 'app/schema.py'), `${read('app/schema.py')}\n# my validator\n`);
    const mine = read('app/schema.py');

    const r = await upgrade();
    expect(r.from).toBeUndefined();
    expect(r.to).toBe(templateVersion('python', '0.1.0'));
    expect(r.files.find((f) => f.path === 'app/main.py')?.action).toBe('update');
    expect(read('app/main.py')).not.toContain('assert ');
    expect(read('app/main.py')).toBe(readFileSync('templates/wrap/python/app/main.py', 'utf8'));
    expect(r.kept).toEqual(['app/schema.py']);
    expect(read('app/schema.py')).toBe(mine);
    expect(manifest().templateVersion).toBe(r.to);
    expect(manifest().settings).toEqual(
      (await wrap({ dryRun: true, out: path.join(tmp, 'fresh') })).manifest.settings,
    );

    const again = await upgrade();
    expect(again.from).toBe(r.to);
    expect(again.files.filter((f) => !['unchanged', 'kept'].includes(f.action))).toEqual([]);
    expect(again.kept).toEqual(['app/schema.py']);
  });

  it('--dry-run shows what the templates would change in your file; --force replaces it', async () => {
    await wrap();
    writeFileSync(path.join(svc, 'app/schema.py'), '# mine\n');
    const dry = await upgrade({ dryRun: true });
    expect(dry.files.find((f) => f.path === 'app/schema.py')?.diff).toMatch(/^-# mine$/m);
    expect(read('app/schema.py')).toBe('# mine\n');
    const forced = await upgrade({ force: true });
    expect(forced.files.find((f) => f.path === 'app/schema.py')?.action).toBe('overwrite');
    expect(read('app/schema.py')).toContain('class PredictRequest(BaseModel)');
  });

  it('reads the settings back from the files of a service wrapped before they were recorded', async () => {
    const schema = path.resolve('fixtures/wrap/iris/schema.py');
    const r = await wrap({
      port: 9000,
      workers: 2,
      batching: { maxBatchSize: 64, maxLatencyMs: 20 },
      maxBodyBytes: 4096,
      maxQueue: 3,
      baseImage: 'mirror.local/python:3.11-slim',
      weightsUrl: 's3://bucket/model.joblib',
      schema: `${schema}:Flower`,
    });
    makeLegacy();
    expect(await recoverSettings(svc, manifest())).toEqual(r.manifest.settings);
    const up = await upgrade();
    expect(up.files.filter((f) => !['unchanged'].includes(f.action)).map((f) => f.path)).toEqual([
      'app/main.py',
      'mlship-wrap.json',
    ]);
    expect(read('Dockerfile')).toContain('EXPOSE 9000');
  });

  it('entry points keep their copied code; the Node runtime reads service.json', async () => {
    const code = path.join(tmp, 'code');
    mkdirSync(code);
    writeFileSync(path.join(code, 'predict.py'), 'def predict(p):\n    return 1\n');
    writeFileSync(path.join(code, 'requirements.txt'), 'rich==13.0.0\n');
    writeFileSync(path.join(code, 'example.json'), '{"text": "hi"}');
    const entry = await wrap({ model: undefined, entry: `${code}/predict.py:predict` });
    makeLegacy();
    writeFileSync(path.join(svc, 'user/predict.py'), 'def predict(p):\n    return 2\n');
    expect(await recoverSettings(svc, manifest())).toEqual(entry.manifest.settings);
    const up = await upgrade();
    expect(read('user/predict.py')).toContain('return 2'); // your code is not a template
    expect(up.obsolete).toEqual([]);
    expect(manifest().files['user/predict.py']).toBe(entry.manifest.files['user/predict.py']);

    writeFileSync(path.join(tmp, 'm.onnx'), onnxModel([tensorInput('x', 1, ['N', 3])]));
    const node = await wrap({
      model: path.join(tmp, 'm.onnx'),
      runtime: 'node',
      out: path.join(tmp, 'node'),
      batching: { maxBatchSize: 16, maxLatencyMs: 5 },
    });
    const { settings: _s, ...legacy } = node.manifest;
    expect(await recoverSettings(path.join(tmp, 'node'), { ...legacy })).toEqual(node.manifest.settings);
  });

  it('--allow-non-finite is recorded and survives an upgrade', async () => {
    const r = await wrap({ allowNonFinite: true });
    expect(r.manifest.settings?.allowNonFinite).toBe(true);
    const before = read('app/schema.py');
    expect(before).toContain('allow_inf_nan=True');
    const up = await upgrade();
    expect(up.files.every((f) => f.action === 'unchanged')).toBe(true);
    expect(read('app/schema.py')).toBe(before);
  });

  it('a directory mlship did not wrap is a usage error', async () => {
    mkdirSync(svc);
    await expect(upgrade()).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/no mlship-wrap\.json/),
    });
  });
});
