// Files in and out of a wrapped Python service, against a real engine (issue 18): two ONNX models
// made at test time with the onnx helper API (an image classifier and an image-to-image model),
// wrapped from mlship.yaml-style settings and their ONNX shapes, built once each, run, and sent
// images by multipart, base64 and S3 key (moto, allow-listed and refused); PNG and JPEG answers;
// every bad file (413, 415, 422 truncated, 422 decompression bomb) answered without a worker
// restart; a batch of images of mixed sizes stacked into one model call.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { ServiceSchema } from '../../src/config/schema.js';
import { buildService, type RunningService, serve } from '../../src/core/serve/serve.js';
import { runWrap } from '../../src/core/wrap/wrap.js';
import { LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { type Moto, startMoto } from '../helpers/moto.js';
import {
  decodePicture,
  get,
  makeBombPng,
  makeImageClassifierOnnx,
  makeInvertOnnx,
  makePicture,
  metric,
  post,
  quietTasks,
} from './wrap-helpers.js';

const run = `wrap-media-${randomBytes(4).toString('hex')}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-media-'));
const log: string[] = [];
let engine: DockerEngine | undefined;
let moto: Moto | undefined;
const running: RunningService[] = [];
const RED = makePictureLazy([220, 20, 20]);
const GREEN = makePictureLazy([20, 220, 20]);

function makePictureLazy(color: [number, number, number]): () => Buffer {
  let cached: Buffer | undefined;
  return () => {
    cached ??= makePicture({ width: 48, height: 48, color, format: 'JPEG' });
    return cached;
  };
}

async function wrapAndServe(name: string, model: string, config: unknown): Promise<string> {
  const out = path.join(tmp, name);
  const tag = `mlship-test/${name}:${run}`;
  await runWrap({
    cwd: tmp,
    model,
    out,
    force: false,
    dryRun: false,
    baseImage: LOCAL_PYTHON_IMAGE,
    service: { name, config: ServiceSchema.parse({ model, ...(config as object) }) },
  });
  await buildService({ dir: out, image: tag }, { engine: engine!, tasks: quietTasks(log) });
  const service = await serve(
    {
      dir: out,
      image: tag,
      build: false,
      hostPort: 0,
      runLabel: run,
      extraHosts: ['host.docker.internal:host-gateway'],
      env: {
        ...moto!.env,
        AWS_ENDPOINT_URL_S3: moto!.endpoint.replace('127.0.0.1', 'host.docker.internal'),
      },
    },
    { engine: engine!, tasks: quietTasks(log) },
  );
  running.push(service);
  return service.result.url;
}

async function upload(
  url: string,
  file: Buffer,
  type: string,
  headers: Record<string, string> = {},
  field = 'image',
) {
  const form = new FormData();
  form.append(field, new Blob([new Uint8Array(file)], { type }), 'picture');
  const res = await fetch(`${url}/predict`, { method: 'POST', body: form, headers });
  const data = Buffer.from(await res.arrayBuffer());
  let body: unknown;
  if ((res.headers.get('content-type') ?? '').includes('json')) body = JSON.parse(data.toString('utf8'));
  return { status: res.status, type: res.headers.get('content-type') ?? '', data, body };
}

/** A multipart upload of `size` bytes with its content-length, by node:http: the status, or how it ended. */
function rawUpload(url: string, size: number): Promise<number | string> {
  const boundary = 'mlshiptest';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="image"; filename="x"\r\n\r\n`),
    Buffer.alloc(size, 1),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return new Promise((resolve) => {
    const req = http.request(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve('closed while sending'));
    req.end(body);
  });
}

/** Workers that have loaded the model so far: each logs "model ready" once, a restarted one again. */
async function workerBoots(service: RunningService): Promise<number> {
  return ((await service.handle.logs(5000)).match(/"msg": "model ready"/g) ?? []).length;
}

beforeAll(async () => {
  engine = await requireEngine();
  if (!engine) return;
  await requireImage(engine, LOCAL_PYTHON_IMAGE);
  moto = await startMoto({ host: '0.0.0.0' });
  if (!moto) return;
  const s3 = new S3Client({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: {
      accessKeyId: moto.env.AWS_ACCESS_KEY_ID!,
      secretAccessKey: moto.env.AWS_SECRET_ACCESS_KEY!,
    },
  });
  for (const bucket of ['uploads', 'private']) {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'in/green.jpg', Body: GREEN() }));
  }
  makeImageClassifierOnnx(path.join(tmp, 'colours.onnx'), 32);
  makeInvertOnnx(path.join(tmp, 'invert.onnx'), 32);
  writeFileSync(path.join(tmp, 'labels.txt'), 'red\ngreen\nblue\n');
}, 120_000);

afterAll(async () => {
  if (engine) {
    await engine.removeByLabel(RUN_LABEL, run);
    for (const n of ['colours', 'invert']) await engine.removeImage(`mlship-test/${n}:${run}`, true);
  }
  await moto?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('an image classifier, wrapped from its ONNX shape and mlship.yaml settings', () => {
  let url = '';
  beforeAll(async () => {
    if (!engine || !moto) return;
    url = await wrapAndServe('colours', path.join(tmp, 'colours.onnx'), {
      inputs: { image: { kind: 'image', max_bytes: 300_000 } },
      preprocess: { image: { resize: 'letterbox', scale: '1/255' } },
      labels: 'labels.txt',
      fetch_allow: ['s3://uploads/in/'],
      batching: { max_batch_size: 16, max_latency_ms: 5 },
    });
  }, 900_000);

  it('answers a multipart upload with the class and its probabilities by label', async (ctx) => {
    if (!url) ctx.skip();
    const r = await upload(url, RED(), 'image/jpeg');
    expect(r.status).toBe(200);
    const body = r.body as { prediction: string; probabilities: Record<string, number> };
    expect(body.prediction).toBe('red');
    expect(Object.keys(body.probabilities)).toEqual(['red', 'green', 'blue']);
    expect(Object.values(body.probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
  });

  it('takes base64 in JSON, with or without a data: prefix, and answers the same', async (ctx) => {
    if (!url) ctx.skip();
    const b64 = GREEN().toString('base64');
    const plain = await post(`${url}/predict`, { image: b64 });
    const prefixed = await post(`${url}/predict`, { image: `data:image/jpeg;base64,${b64}` });
    expect(plain.status).toBe(200);
    expect((plain.body as { prediction: string }).prediction).toBe('green');
    expect(prefixed.body).toEqual(plain.body);
  });

  it('fetches an allow-listed S3 key, and refuses one outside the list or any other URL', async (ctx) => {
    if (!url) ctx.skip();
    const allowed = await post(`${url}/predict`, { image: 's3://uploads/in/green.jpg' });
    expect(allowed.status, allowed.text).toBe(200);
    expect((allowed.body as { prediction: string }).prediction).toBe('green');
    for (const ref of ['s3://private/in/green.jpg', 'https://169.254.169.254/latest/meta-data/']) {
      const refused = await post(`${url}/predict`, { image: ref });
      expect(refused.status).toBe(422);
      expect((refused.body as { detail: string }).detail).toContain('s3://uploads/in/');
    }
  });

  it('stacks a batch of images of mixed sizes into one model call (letterboxed)', async (ctx) => {
    if (!url) ctx.skip();
    const sizes = [
      [48, 48],
      [64, 20],
      [20, 90],
      [33, 33],
      [100, 60],
      [48, 48],
    ];
    const inputs = sizes.map(([w, h], i) => ({
      image: makePicture({ width: w!, height: h!, color: i % 2 ? [20, 20, 230] : [230, 20, 20] }).toString(
        'base64',
      ),
    }));
    const before = (await get(`${url}/metrics`)).text;
    const r = await post(`${url}/predict/batch`, { inputs });
    expect(r.status, r.text).toBe(200);
    expect((r.body as { predictions: string[] }).predictions).toEqual([
      'red',
      'blue',
      'red',
      'blue',
      'red',
      'blue',
    ]);
    const after = (await get(`${url}/metrics`)).text;
    expect(metric(after, 'mlship_batch_size_count') - metric(before, 'mlship_batch_size_count')).toBe(1);
    expect(metric(after, 'mlship_batch_size_sum') - metric(before, 'mlship_batch_size_sum')).toBe(6);
  });

  it('bad files are 413, 415 and 422 with the reason, and no worker restarts', async (ctx) => {
    if (!url) ctx.skip();
    const boots = await workerBoots(running[0]!);
    expect(boots).toBeGreaterThanOrEqual(1);
    // Over the field's limit, counted as the part arrives (the body limit is larger).
    const big = await upload(url, Buffer.alloc(400_000, 1), 'image/png');
    expect(big.status).toBe(413);
    expect((big.body as { detail: string }).detail).toContain('image');
    // Over the body limit: refused from content-length, before anything is read (the client may
    // see the 413, or its socket closed while it was still sending).
    expect([413, 'closed while sending']).toContain(await rawUpload(url, 5_000_000));
    const text = await upload(url, Buffer.from('not a picture at all'), 'text/plain');
    expect(text.status).toBe(415);
    // Cut after its header (a noisy picture: its pixels are most of the file).
    const jpeg = makePicture({ width: 64, height: 64, seed: 3, format: 'JPEG' });
    const cut = await upload(url, jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'image/jpeg');
    expect(cut.status).toBe(422);
    expect((cut.body as { detail: string }).detail).toContain('truncated');
    const bomb = makeBombPng(20_000, 20_000);
    expect(bomb.length).toBeLessThan(300_000);
    const boom = await upload(url, bomb, 'image/png');
    expect(boom.status).toBe(422);
    expect((boom.body as { detail: string }).detail).toContain('MAX_PIXELS');
    // Still serving, with the same workers.
    expect((await upload(url, GREEN(), 'image/jpeg')).status).toBe(200);
    expect(await workerBoots(running[0]!)).toBe(boots);
  });

  it('documents the three ways to send a file and the answer in its OpenAPI', async (ctx) => {
    if (!url) ctx.skip();
    const spec = (await get(`${url}/openapi.json`)).body as {
      components: { schemas: { PredictRequest: { properties: Record<string, Record<string, unknown>> } } };
      paths: Record<
        string,
        { post: { requestBody: { content: Record<string, unknown> } } & Record<string, unknown> }
      >;
    };
    const image = spec.components.schemas.PredictRequest.properties.image!;
    expect(image).toMatchObject({
      type: 'string',
      contentEncoding: 'base64',
      contentMediaType: 'image/*',
      'x-mlship-file': { kind: 'image', max_bytes: 300_000, width: 32, height: 32 },
    });
    const predict = spec.paths['/predict']!.post;
    expect(Object.keys(predict.requestBody.content).sort()).toEqual([
      'application/json',
      'multipart/form-data',
    ]);
    expect(predict['x-mlship-output']).toEqual({
      kind: 'json',
      media_types: ['image/png', 'image/jpeg', 'image/webp'],
    });
  });
});

describe('an image-to-image model: the answer is an image', () => {
  let url = '';
  beforeAll(async () => {
    if (!engine || !moto) return;
    url = await wrapAndServe('invert', path.join(tmp, 'invert.onnx'), {
      inputs: { input: { kind: 'image' } },
      preprocess: { input: { resize: 'stretch' } },
    });
  }, 900_000);

  it('answers image/png by default: the input inverted, pixel for pixel', async (ctx) => {
    if (!url) ctx.skip();
    const picture = makePicture({ width: 32, height: 32, seed: 7 });
    const r = await upload(url, picture, 'image/png', {}, 'input');
    expect(r.status).toBe(200);
    expect(r.type).toBe('image/png');
    const given = decodePicture(picture).pixels;
    const answer = decodePicture(r.data);
    expect(answer.format).toBe('PNG');
    let worst = 0;
    given.forEach((row, y) => {
      row.forEach((px, x) => {
        px.forEach((v, c) => {
          worst = Math.max(worst, Math.abs(255 - v - answer.pixels[y]![x]![c]!));
        });
      });
    });
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('answers JPEG when the client asks, and base64 PNG in JSON on /predict/batch', async (ctx) => {
    if (!url) ctx.skip();
    const picture = makePicture({ width: 40, height: 40, color: [10, 100, 200] });
    const jpeg = await upload(url, picture, 'image/png', { accept: 'image/jpeg' }, 'input');
    expect(jpeg.status).toBe(200);
    expect(jpeg.type).toBe('image/jpeg');
    expect(decodePicture(jpeg.data).format).toBe('JPEG');
    const batch = await post(`${url}/predict/batch`, { inputs: [{ input: picture.toString('base64') }] });
    const item = (batch.body as { predictions: { image: string; media_type: string; width: number }[] })
      .predictions[0]!;
    expect(item).toMatchObject({ media_type: 'image/png', width: 32, height: 32 });
    const pixel = decodePicture(Buffer.from(item.image, 'base64')).pixels[16]![16]!;
    for (const [got, want] of pixel.map((v, c) => [v, 255 - [10, 100, 200][c]!])) {
      expect(Math.abs(got! - want!)).toBeLessThanOrEqual(1);
    }
  });
});
