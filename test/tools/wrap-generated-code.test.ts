// The generated code itself (each case written out whole): Python passes ruff (lint and format), the Node
// server parses, and the Python service's own pytest suite passes against the
// bundled iris model, in-process (the host .venv has the serving stack).

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ServiceSchema } from '../../src/config/schema.js';
import { greyPng, silentWav } from '../../src/core/wrap/media-samples.js';
import { runUpgrade } from '../../src/core/wrap/upgrade.js';
import { generateService, runWrap } from '../../src/core/wrap/wrap.js';
import { makeImageClassifierOnnx, makeInvertOnnx } from '../docker/wrap-helpers.js';
import { expectShadowLines } from '../helpers/emf.js';
import { CASES } from '../unit/wrap/cases.js';

const VENV_BIN = path.resolve('.venv/bin');

function tool(name: string): string {
  const p = path.join(VENV_BIN, name);
  if (!existsSync(p)) throw new Error(`${p} is missing: create .venv with requirements-dev.txt`);
  return p;
}

/** The generated service's own test suite, run in its directory with the host .venv. */
function pytest(dir: string) {
  return spawnSync(tool('python'), ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'tests'], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
}

/** The whole generated service of a case (rendered and copied files), written to a temp dir. */
const trees = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-trees-'));
afterAll(() => rmSync(trees, { recursive: true, force: true }));
function tree(name: string): string {
  const dir = path.join(trees, name);
  if (existsSync(dir)) return dir;
  for (const f of generateService(CASES[name]!)) {
    mkdirSync(path.dirname(path.join(dir, f.path)), { recursive: true });
    writeFileSync(path.join(dir, f.path), f.content);
  }
  return dir;
}

const pythonCases = Object.entries(CASES).filter(([, s]) => s.runtime === 'python');
const nodeCases = Object.entries(CASES).filter(([, s]) => s.runtime === 'node');

describe('generated code quality', () => {
  it.each(pythonCases.map(([n]) => n))('%s: ruff check and ruff format --check pass', (name) => {
    const dir = tree(name);
    const check = spawnSync(tool('ruff'), ['check', '--no-cache', '.'], { cwd: dir, encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const format = spawnSync(tool('ruff'), ['format', '--check', '--no-cache', '.'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(format.status, format.stdout + format.stderr).toBe(0);
  });

  it.each(pythonCases.map(([n]) => n))(
    '%s: no assert in the service code (python -O strips them)',
    (name) => {
      const r = spawnSync(tool('ruff'), ['check', '--no-cache', '--select', 'S101', 'app'], {
        cwd: tree(name),
        encoding: 'utf8',
      });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    },
  );

  it('the check mlship wrap runs before writing (templates/wrap/probe.py) passes ruff too', () => {
    const probe = path.resolve('templates/wrap/probe.py');
    const config = path.resolve('templates/wrap/python/ruff.toml');
    for (const args of [['check'], ['format', '--check']]) {
      const r = spawnSync(tool('ruff'), [...args, '--no-cache', '--config', config, probe], {
        encoding: 'utf8',
      });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
  });

  it.each(nodeCases.map(([n]) => n))('%s: server.js (and media.js of an image service) parse', (name) => {
    execFileSync(process.execPath, ['--check', path.join(tree(name), 'server.js')]);
    if (existsSync(path.join(tree(name), 'media.js'))) {
      execFileSync(process.execPath, ['--check', path.join(tree(name), 'media.js')]);
    }
  });

  it.each(nodeCases.map(([n]) => n))(
    '%s: package-lock.json locks exactly what package.json asks for, under the service name',
    (name) => {
      const read = (f: string) => JSON.parse(readFileSync(path.join(tree(name), f), 'utf8'));
      const pkg = read('package.json');
      const lock = read('package-lock.json');
      expect(lock.name).toBe(pkg.name);
      expect(lock.packages[''].name).toBe(pkg.name);
      expect(lock.packages[''].dependencies).toEqual(pkg.dependencies);
      // npm ci refuses a lock that disagrees with package.json; these are the pins it checks.
      for (const [dep, version] of Object.entries(pkg.dependencies as Record<string, string>))
        expect(lock.packages[`node_modules/${dep}`]?.version, dep).toBe(version);
      expect(lock.lockfileVersion).toBe(3);
    },
  );
});

describe('boxes and keypoints (app/media.py, app/files.py of a generated service)', () => {
  it('are mapped back through the letterbox to the picture sent, and drawn on it by render', () => {
    const dir = tree('onnx-image-classifier');
    const code = `
import json, sys
sys.path.insert(0, ".")
from PIL import Image
from app import files, media
picture = Image.new("RGB", (64, 32), (0, 0, 0))
_, geometry = media.preprocess_image(picture)
answer = media.answer({"boxes": [[0, 8, 32, 24]], "keypoints": [[16, 16, 0.9]]}, geometry)
drawn = files.render(picture, answer["prediction"])
print(json.dumps({"answer": answer, "edge": drawn.getpixel((0, 16)), "inside": drawn.getpixel((20, 16))}))
`;
    const r = spawnSync(tool('python'), ['-c', code], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { answer: unknown; edge: number[]; inside: number[] };
    // 64x32 letterboxed into 32x32: scale 0.5, 8 rows of padding above; back to the 64x32 picture.
    expect(out.answer).toEqual({ prediction: { boxes: [[0, 0, 64, 32]], keypoints: [[32, 16, 0.9]] } });
    expect(out.edge).not.toEqual([0, 0, 0]);
    expect(out.inside).toEqual([0, 0, 0]);
  });
});

describe('masks (app/media.py, app/files.py of a generated service)', () => {
  it('are answered as COCO run-length encodings in the pixels of the picture sent, and drawn by render', () => {
    const dir = tree('onnx-image-classifier');
    const code = `
import dataclasses, json, sys
import numpy as np
sys.path.insert(0, ".")
from PIL import Image
from app import files, media
picture = Image.new("RGB", (64, 32), (0, 0, 0))
_, geometry = media.preprocess_image(picture)
geometry = dataclasses.replace(geometry, width=64, height=32)
# Model pixels: the picture's top half is rows 8-15 of the 32x32 letterboxed input.
mask = np.zeros((32, 32), dtype=np.float32)
mask[8:16, :] = 0.9
answer = media.answer({"masks": [mask], "boxes": [[0, 8, 32, 16]]}, geometry)
rle = answer["prediction"]["masks"][0]
drawn = files.render(picture, answer["prediction"])
unmapped = media.answer({"masks": np.ones((1, 1, 2, 3))}, None)["prediction"]["masks"][0]
print(json.dumps({
    "rle": rle,
    "decoded_top": bool(files.rle_pixels(rle)[:16].all()),
    "decoded_bottom": bool(files.rle_pixels(rle)[16:].any()),
    "tinted": drawn.getpixel((40, 4)),
    "plain": drawn.getpixel((40, 24)),
    "unmapped": unmapped,
}))
`;
    const r = spawnSync(tool('python'), ['-c', code], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    // Column-major runs starting with 0s: each of the 64 columns is 16 pixels in, then 16 out.
    expect(out.rle).toEqual({ size: [32, 64], counts: [0, ...Array(128).fill(16)] });
    expect(out.decoded_top).toBe(true);
    expect(out.decoded_bottom).toBe(false);
    expect(out.tinted).not.toEqual([0, 0, 0]);
    expect(out.plain).toEqual([0, 0, 0]);
    // Without a picture to map to (no geometry), at the model's resolution: 2x3, all in.
    expect(out.unmapped).toEqual({ size: [2, 3], counts: [0, 6] });
  });
});

describe('masks on Node (templates/wrap/node/pixels.js) and on Python: the same encoding', () => {
  // Where both services' preprocessing put the picture at the same place in the model input (a
  // stretch; a letterbox or crop by a whole scale and offset; their fractional offsets differ, each
  // mapping back through its own), the same masks give the same run-length encodings.
  it.each([
    ['stretch', 50, 37, 24, 16],
    ['letterbox', 64, 32, 32, 32],
    ['crop', 32, 64, 32, 32],
  ] as const)(
    '%s of a %ix%i picture into %ix%i: random masks, the same RLE in both',
    async (resize, pw, ph, mw, mh) => {
      const dir = tree('onnx-image-classifier');
      const code = `
import dataclasses, json, sys
import numpy as np
sys.path.insert(0, ".")
from PIL import Image
from app import files, media
_, geometry = media.${resize}(Image.new("RGB", (${pw}, ${ph})), ${mw}, ${mh})
geometry = dataclasses.replace(geometry, width=${pw}, height=${ph})
rng = np.random.default_rng(7)
masks = [rng.random((${mh}, ${mw})).round(2) for _ in range(3)]
print(json.dumps({"masks": [m.tolist() for m in masks], "rle": [files.mask_rle(m, geometry) for m in masks]}))
`;
      const r = spawnSync(tool('python'), ['-c', code], { cwd: dir, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const py = JSON.parse(r.stdout) as { masks: number[][][]; rle: { counts: number[] }[] };
      const pixels = (await import(pathToFileURL(path.resolve('templates/wrap/node/pixels.js')).href)) as {
        maskRle(m: unknown, picture: { width: number; height: number }, p: object): unknown;
      };
      const p = { resize, width: mw, height: mh };
      // With a leading dimension of 1, as an [N, K, H, W] output gives it per mask.
      const node = py.masks.map((m) => pixels.maskRle([m], { width: pw, height: ph }, p));
      expect(node).toEqual(py.rle);
      expect(py.rle.every((x) => x.counts.length > 20)).toBe(true);
    },
  );
});

describe('preprocessing (app/media.py of a generated service)', () => {
  // The generated code folds scale, mean and std into one multiply and one subtract on 8-bit pixels
  // (for speed); it must give what the declaration says, computed the plain way here.
  const check = (name: string, fn: string, plain: string) => {
    const code = `
import sys
import numpy as np
sys.path.insert(0, ".")
from PIL import Image
from app import media
rng = np.random.default_rng(0)
picture = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
got, _ = media.${fn}(picture)
resized, _ = media.${plain}
x = np.asarray(resized.convert("RGB") if resized.mode != "L" else resized, dtype=np.float64)
`;
    return { dir: tree(name), code };
  };

  it.each([
    [
      'onnx-image-classifier',
      'preprocess_image',
      'letterbox(picture, 32, 32)',
      'want = ((x / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)',
      'float32',
    ],
    ['entry-audio-boxes', 'preprocess_photo_1', 'crop(picture, 64, 48)', 'want = x[:, :, ::-1]', 'float16'],
    [
      'onnx-image-to-image',
      'preprocess_input',
      'stretch(picture.convert("L"), 16, 16)',
      'want = x[:, :, None]',
      'uint8',
    ],
  ])('%s: %s gives the declared scale, mean, std, channels and layout', (name, fn, plain, want, dtype) => {
    const { dir, code } = check(name, fn, plain);
    const script = `${code}${want}
assert got.dtype == np.${dtype}, got.dtype
assert got.shape == want.shape, (got.shape, want.shape)
assert got.flags.c_contiguous
assert np.allclose(got.astype(np.float64), want, atol=1e-5 if got.dtype == np.float32 else 1e-2), abs(got - want).max()
print("ok")
`;
    const r = spawnSync(tool('python'), ['-c', script], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('ok');
  });
});

describe('a large JPEG (app/media_api.py of a generated service)', () => {
  it('is decoded reduced, with boxes still mapped to the picture sent; kept whole for render', () => {
    const code = `
import io, json, sys
import numpy as np
sys.path.insert(0, ".")
from PIL import Image
from app import media, media_api
from app.files import Upload
y, x = np.mgrid[0:320, 0:640]
picture = Image.fromarray(np.stack([x * 255 // 640, y * 255 // 320, 128 + 0 * x], -1).astype(np.uint8))
buf = io.BytesIO()
picture.save(buf, format="JPEG", quality=95)
sent = {"image": Upload(buf.getvalue(), "image/jpeg")}
reduced_input, reduced = media_api.prepare({}, dict(sent))
whole_input, whole = media_api.prepare({}, dict(sent), False)
box = {"boxes": [[0, 8, 32, 24]]}
print(json.dumps({
    "reduced_size": reduced["image"].original.size,
    "whole_size": whole["image"].original.size,
    "reduced_box": media.answer(box, reduced["image"].geometry)["prediction"]["boxes"],
    "whole_box": media.answer(box, whole["image"].geometry)["prediction"]["boxes"],
    "pixel_difference": float(np.abs(np.asarray(reduced_input) - np.asarray(whole_input)).mean()),
}))
`;
    const r = spawnSync(tool('python'), ['-c', code], {
      cwd: tree('onnx-image-classifier'),
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    // 640x320 for a 32x32 input: libjpeg decodes at 1/8 (80x40, still >= 32 both ways).
    expect(out.reduced_size).toEqual([80, 40]);
    expect(out.whole_size).toEqual([640, 320]);
    // The letterboxed box is the whole picture sent either way: 640x320 pixels.
    expect(out.whole_box).toEqual([[0, 0, 640, 320]]);
    expect(out.reduced_box).toEqual([[0, 0, 640, 320]]);
    // The model sees nearly the same pixels (a smooth picture; normalized units, std 0.22).
    expect(out.pixel_difference).toBeLessThan(0.05);
  });
});

/**
 * Runs lines of Python in a generated iris service, in process (`c` is its TestClient); returns the
 * last line printed (the service's logs come first, as JSON lines).
 */
function irisInProcess(dir: string, ...lines: string[]): string {
  return irisRun(dir, {}, lines).trim().split('\n').at(-1)!;
}

/** The same, with `env` added to the process's environment; everything it printed. */
function irisRun(dir: string, env: Record<string, string>, lines: string[]): string {
  const r = spawnSync(
    tool('python'),
    [
      '-c',
      [
        'import json, os, sys',
        'sys.path.insert(0, ".")',
        'os.environ["MODEL_PATH"] = sys.argv[1]',
        'from fastapi.testclient import TestClient',
        'from app.main import app',
        'with TestClient(app) as c:',
        ...lines.map((l) => `    ${l}`),
      ].join('\n'),
      path.resolve('fixtures/wrap/iris/model.joblib'),
    ],
    { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

describe('the generated service test suite', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-suite-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('passes for the bundled iris model (default settings)', { timeout: 120_000 }, async () => {
    await runWrap({
      cwd: process.cwd(),
      model: 'fixtures/wrap/iris/model.joblib',
      out,
      force: false,
      dryRun: false,
    });
    const r = pytest(out);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\d+ passed/);
  });

  it('checks on the request path hold under python -O (no assert, which -O strips)', () => {
    // Run after the iris suite above, in its service: the model not loaded is a 503, not a crash.
    const r = spawnSync(
      tool('python'),
      [
        '-O',
        '-c',
        'import asyncio, sys; sys.path.insert(0, ".")\n' +
          'from app import main\n' +
          'r = asyncio.run(main._predict([[5.1, 3.5, 1.4, 0.2]], "/predict"))\n' +
          'print(__debug__, r.status_code, r.headers["retry-after"])',
      ],
      { cwd: out, encoding: 'utf8' },
    );
    expect(r.stdout.trim().split('\n').at(-1), r.stderr).toBe('False 503 1');
  });

  it("on AWS a prediction's log line is a CloudWatch metric (embedded metric format): per service, and a rollout's candidate also per model version; a shadow's once predicted, per model version only", () => {
    const logged = (env: Record<string, string>, headers = '{}') => {
      const printed = irisRun(
        out,
        { MLSHIP_METRICS_NAMESPACE: 'mlship/demo', SERVICE_NAME: 'iris', ...env },
        [
          'import time',
          'row = json.load(open("app/example.json"))',
          `print(c.post("/predict", json=row, headers=${headers}).status_code)`,
          // A mirrored request is predicted after its 202: give it the time to log its line.
          'time.sleep(1.0)',
        ],
      );
      return printed
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const predictLine = (env: Record<string, string>) =>
      logged(env).find((l) => l.msg === 'request' && l.path === '/predict')!;
    const stable = predictLine({});
    const aws = stable._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] };
    expect(aws.CloudWatchMetrics[0]!.Namespace).toBe('mlship/demo');
    expect(aws.CloudWatchMetrics[0]!.Dimensions).toEqual([['Service']]);
    expect(stable).toMatchObject({ Service: 'iris', Requests: 1, Errors5xx: 0, status: 200 });
    expect(stable).not.toHaveProperty('ModelVersion');
    // Each dimension a member of the line, as EMF requires: ModelVersion=candidate for its alarms.
    const candidate = predictLine({ MLSHIP_MODEL_VERSION: 'candidate' });
    expect((candidate._aws as typeof aws).CloudWatchMetrics[0]!.Dimensions).toEqual([
      ['Service'],
      ['Service', 'ModelVersion'],
    ]);
    expect(candidate).toMatchObject({ Service: 'iris', ModelVersion: 'candidate', Requests: 1 });
    // A shadow: the 202 of the mirrored copy is no request of the service's (the stable one counted
    // it) and writes no line; the prediction, once done, writes one, counted under ModelVersion
    // only, with its own latency.
    const shadowed = logged({ MLSHIP_MODEL_VERSION: 'candidate' }, '{"x-mlship-shadow": "1"}');
    expectShadowLines(
      shadowed.filter((l) => l.path === '/predict'),
      'iris',
    );
  });

  it('passes with a request model of the user’s own (--schema)', { timeout: 120_000 }, async () => {
    const dir = path.join(out, 'typed');
    await runWrap({
      cwd: process.cwd(),
      model: 'fixtures/wrap/iris/model.joblib',
      schema: 'fixtures/wrap/iris/schema.py:Flower',
      out: dir,
      force: false,
      dryRun: false,
    });
    const r = pytest(dir);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    // The user's constraint is enforced by the service.
    const status = irisInProcess(
      dir,
      'print(c.post("/predict", json={"sepal_length": 0, "sepal_width": 1, "petal_length": 1, "petal_width": 1}).status_code)',
    );
    expect(status).toBe('422');
  });

  it("publishes number ranges: a declared limit is a 422 naming the field, the examples' range a hint", {
    timeout: 120_000,
  }, async () => {
    const dir = path.join(out, 'ranges');
    const examples = path.join(out, 'iris-examples.json');
    const rows = [
      [5.1, 3.5, 1.4, 0.2],
      [7.0, 3.2, 4.7, 1.4],
      [6.3, 3.3, 6.0, 2.5],
    ];
    const names = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];
    writeFileSync(
      examples,
      JSON.stringify(rows.map((r) => Object.fromEntries(names.map((n, i) => [n, r[i]])))),
    );
    await runWrap({
      cwd: process.cwd(),
      model: 'fixtures/wrap/iris/model.joblib',
      example: examples,
      service: { name: 'iris', config: ServiceSchema.parse({ ranges: { petal_width: [0, 3] } }) },
      out: dir,
      force: false,
      dryRun: false,
    });
    const r = pytest(dir);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    // The service itself, in process: its OpenAPI document and its answers.
    const answer = irisInProcess(
      dir,
      'spec = c.get("/openapi.json").json()',
      'row = json.load(open("app/example.json"))',
      'wide = c.post("/predict", json={**row, "petal_width": 4})',
      'unseen = c.post("/predict", json={**row, "sepal_length": 9.5})',
      'props = spec["components"]["schemas"]["PredictRequest"]["properties"]',
      'print(json.dumps({"props": props, "wide": [wide.status_code, wide.text], "unseen": unseen.status_code}))',
    );
    const got = JSON.parse(answer) as {
      props: Record<string, Record<string, unknown>>;
      wide: [number, string];
      unseen: number;
    };
    // The first example is the example; the others only widen the ranges.
    expect(JSON.parse(readFileSync(path.join(dir, 'app/example.json'), 'utf8'))).toEqual({
      sepal_length: 5.1,
      sepal_width: 3.5,
      petal_length: 1.4,
      petal_width: 0.2,
    });
    expect(got.props.petal_width).toMatchObject({ type: 'number', minimum: 0, maximum: 3 });
    expect(got.props.petal_width).not.toHaveProperty('x-mlship-range');
    expect(got.props.sepal_length).toMatchObject({ 'x-mlship-range': { minimum: 5.1, maximum: 7 } });
    expect(got.props.sepal_length).not.toHaveProperty('minimum');
    expect(got.props.petal_length!['x-mlship-range']).toEqual({ minimum: 1.4, maximum: 6 });
    expect(got.wide[0]).toBe(422);
    expect(JSON.parse(got.wide[1]).detail[0].loc).toEqual(['body', 'petal_width']);
    expect(got.unseen).toBe(200);
    // --upgrade renders the ranges again from the manifest (example.json keeps only the first request).
    const up = await runUpgrade({ cwd: process.cwd(), dir, force: false, dryRun: true });
    expect(up.files.filter((f) => f.action !== 'unchanged').map((f) => f.path)).toEqual([]);
  });

  it('passes with micro-batching on and a user entry point', { timeout: 120_000 }, async () => {
    const dir = path.join(out, 'entry');
    await runWrap({
      cwd: process.cwd(),
      entry: 'fixtures/wrap/slow-entry/predict.py:predict',
      out: dir,
      batching: { maxBatchSize: 8, maxLatencyMs: 5 },
      force: false,
      dryRun: false,
    });
    const r = pytest(dir);
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it.each([
    ['an image classifier (files in, classes out)', 'classifier'],
    ['an image-to-image model (files in and out)', 'invert'],
  ])('passes for %s, made with the onnx helper API', { timeout: 180_000 }, async (_title, kind) => {
    const dir = path.join(out, `media-${kind}`);
    mkdirSync(dir, { recursive: true });
    const model = path.join(out, `${kind}.onnx`);
    if (kind === 'classifier') makeImageClassifierOnnx(model, 32);
    else makeInvertOnnx(model, 32);
    await runWrap({
      cwd: process.cwd(),
      model,
      out: dir,
      batching: { maxBatchSize: 8, maxLatencyMs: 5 },
      force: true,
      dryRun: false,
      formatsOnly: true,
    });
    const r = pytest(dir);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\d+ passed/);
    for (const args of [['check'], ['format', '--check']]) {
      const lint = spawnSync(tool('ruff'), [...args, '--no-cache', '.'], { cwd: dir, encoding: 'utf8' });
      expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    }
    // --upgrade renders the same service again: the files are kept from the manifest's settings.
    const up = await runUpgrade({ cwd: process.cwd(), dir, force: false, dryRun: true });
    expect(up.obsolete).toEqual([]);
    expect(up.files.filter((f) => f.action !== 'unchanged').map((f) => f.path)).toEqual([]);
  });

  it('passes for your own function taking a sound, a picture and a number', {
    timeout: 180_000,
  }, async () => {
    const src = path.join(out, 'listen-src');
    mkdirSync(src, { recursive: true });
    writeFileSync(
      path.join(src, 'predict.py'),
      [
        'def predict(payload):',
        '    sound, photo = payload["sound"], payload["photo"]',
        '    loud = float(abs(sound).max()) if len(sound) else 0.0',
        '    return {"seconds": len(sound) / 16000, "loud": loud > payload["threshold"], "size": list(photo.size)}',
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(src, 'a.wav'), silentWav(16_000, 0.25));
    writeFileSync(path.join(src, 'b.png'), greyPng(20, 10));
    writeFileSync(
      path.join(src, 'example.json'),
      JSON.stringify({ sound: '@a.wav', photo: '@b.png', threshold: 0.5 }),
    );
    const dir = path.join(out, 'listen');
    await runWrap({
      cwd: process.cwd(),
      entry: path.join(src, 'predict.py:predict'),
      out: dir,
      force: true,
      dryRun: false,
      formatsOnly: true,
    });
    const r = pytest(dir);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\d+ passed/);
    const check = spawnSync(
      tool('python'),
      [
        '-c',
        'import sys, json; sys.path.insert(0, "."); from fastapi.testclient import TestClient; from app.main import app\n' +
          'with TestClient(app) as c: print(json.dumps(c.post("/predict", json=json.load(open("app/example.json"))).json()))',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(check.status, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout.trim().split('\n').at(-1)!)).toEqual({
      prediction: { seconds: 0.25, loud: false, size: [20, 10] },
    });
  });
});
