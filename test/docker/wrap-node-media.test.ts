// Image models on the Node runtime (issue 18), built into real images and run: ONNX models made at
// test time (a colour classifier, an image inverter); files sent as multipart, base64 and data:
// URLs; class probabilities and PNG/JPEG answers; every refusal (413, 415, 422, a decompression
// bomb, a reference outside the allow-list); batches of images stacked into one model call.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { type RunningService, serve } from '../../src/core/serve/serve.js';
import { LOCAL_DEBIAN_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { decodePng, encodePng, pixelAt } from '../helpers/png.js';
import { ensureNodeImage, imageMedia, solidPngBase64, writeNodeImageService } from './node-media-helpers.js';
import { makeImageClassifierOnnx, makeInvertOnnx, metric, quietTasks } from './wrap-helpers.js';

const run = `wrap-node-media-${randomBytes(4).toString('hex')}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-node-media-'));
const TAGS = { classifier: `mlship-test/colours-node:${run}`, invert: `mlship-test/invert-node:${run}` };
const log: string[] = [];
const engine: DockerEngine | undefined = await requireEngine();
let colours: RunningService;
let invert: RunningService;

const RED = encodePng(40, 30, () => [220, 20, 20]);
const GREEN = encodePng(16, 16, () => [10, 200, 30]);

async function start(kind: 'classifier' | 'invert'): Promise<RunningService> {
  const dir = path.join(tmp, kind);
  const model = path.join(tmp, `${kind}.onnx`);
  if (kind === 'classifier') makeImageClassifierOnnx(model, 32);
  else makeInvertOnnx(model, 24);
  const media =
    kind === 'classifier' ? imageMedia('json', 32, ['red', 'green', 'blue']) : imageMedia('image', 24);
  await writeNodeImageService(dir, kind, model, media, { maxBatchSize: 8, maxLatencyMs: 20 });
  return serve(
    { dir, image: TAGS[kind], build: true, hostPort: 0, runLabel: run },
    { engine: engine!, tasks: quietTasks(log) },
  );
}

function multipart(url: string, parts: [string, Buffer | string, string?][], headers = {}) {
  const form = new FormData();
  for (const [name, value, type] of parts) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, new Blob([value], { type: type ?? 'image/png' }), `${name}.bin`);
  }
  return fetch(url, { method: 'POST', body: form, headers });
}

function json(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  if (!engine) return;
  await requireImage(engine, LOCAL_DEBIAN_IMAGE);
  await ensureNodeImage(engine);
  [colours, invert] = [await start('classifier'), await start('invert')];
}, 600_000);

afterAll(async () => {
  if (engine) {
    await engine.removeByLabel(RUN_LABEL, run);
    for (const tag of Object.values(TAGS)) await engine.removeImage(tag, true);
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe.runIf(engine)('image models on the Node runtime (real images)', () => {
  it('a classifier: multipart, base64 and data: URL inputs answer the class and its probabilities', async () => {
    const url = `${colours.result.url}/predict`;
    const byPart = await multipart(url, [['image', RED]]);
    expect(byPart.status).toBe(200);
    const answer = (await byPart.json()) as { prediction: string; probabilities: Record<string, number> };
    expect(answer.prediction).toBe('red');
    expect(Object.keys(answer.probabilities)).toEqual(['red', 'green', 'blue']);
    expect(answer.probabilities.red).toBeGreaterThan(0.8);
    const sum = Object.values(answer.probabilities).reduce((a, b) => a + b, 0);
    expect(sum).toBeCloseTo(1, 5);
    const b64 = await json(url, { image: GREEN.toString('base64') });
    expect(((await b64.json()) as { prediction: string }).prediction).toBe('green');
    const dataUrl = await json(url, { image: `data:image/png;base64,${solidPngBase64([0, 0, 250])}` });
    expect(((await dataUrl.json()) as { prediction: string }).prediction).toBe('blue');
    // A JPEG and a WebP, encoded by the service image's own sharp (no encoder on the host).
    const encode = (format: string) =>
      execFileSync('docker', [
        'run',
        '--rm',
        '--label',
        `${RUN_LABEL}=${run}`,
        TAGS.classifier,
        'node',
        '-e',
        `require('/srv/node_modules/sharp')(Buffer.alloc(64*64*3).map((_,i)=>i%3===2?230:20),{raw:{width:64,height:64,channels:3}}).${format}().toBuffer().then((b)=>process.stdout.write(b))`,
      ]);
    const jpeg = encode('jpeg');
    expect(jpeg.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    const fromJpeg = await multipart(url, [['image', jpeg, 'image/jpeg']]);
    expect(((await fromJpeg.json()) as { prediction: string }).prediction).toBe('blue');
    const webp = encode('webp');
    expect(webp.toString('latin1', 8, 12)).toBe('WEBP');
    const fromWebp = await json(url, { image: webp.toString('base64') });
    expect(((await fromWebp.json()) as { prediction: string }).prediction).toBe('blue');
  });

  it('a batch of images is stacked into one model call, answers in order', async () => {
    const metrics = async () => (await fetch(`${colours.result.url}/metrics`)).text();
    const before = metric(await metrics(), 'mlship_batch_size_count');
    const inputs = [RED, GREEN, RED, encodePng(8, 8, () => [0, 0, 255])].map((b) => ({
      image: b.toString('base64'),
    }));
    const r = await json(`${colours.result.url}/predict/batch`, { inputs });
    expect(r.status).toBe(200);
    const { predictions, probabilities } = (await r.json()) as {
      predictions: string[];
      probabilities: Record<string, number>[];
    };
    expect(predictions).toEqual(['red', 'green', 'red', 'blue']);
    expect(probabilities[1]!.green).toBeGreaterThan(0.7);
    expect(metric(await metrics(), 'mlship_batch_size_count') - before).toBe(1);
  });

  it('refusals: 413 over max_bytes, 415 not an image, 422 truncated, a decompression bomb, a reference not allowed', async () => {
    const url = `${colours.result.url}/predict`;
    const detail = async (r: Response) => ((await r.json()) as { detail: string }).detail;
    const big = await multipart(url, [['image', Buffer.alloc(300 * 1024, 1)]]);
    expect(big.status).toBe(413);
    expect(await detail(big)).toMatch(/^image: file over the limit of 262144 bytes/);
    const text = await multipart(url, [['image', Buffer.from('hello, not a picture'), 'text/plain']]);
    expect(text.status).toBe(415);
    const gif = await json(url, { image: Buffer.from('GIF89a\x01\x00\x01\x00;').toString('base64') });
    expect(gif.status).toBe(415);
    const noisy = encodePng(64, 64, (x, y) => [(x * 37 + y * 11) & 255, (x * y) & 255, (x ^ y) & 255]);
    const truncated = await multipart(url, [['image', noisy.subarray(0, noisy.length >> 1)]]);
    expect(truncated.status).toBe(422);
    expect(await detail(truncated)).toMatch(/could not be decoded/);
    // A PNG header claiming 50000x50000: refused from the header, nothing decoded.
    const bomb = Buffer.from(RED);
    bomb.writeUInt32BE(50_000, 16);
    bomb.writeUInt32BE(50_000, 20);
    const refused = await multipart(url, [['image', bomb]]);
    expect(refused.status).toBe(422);
    expect(await detail(refused)).toMatch(/50000x50000 is over the cap of 4000000 pixels/);
    const ref = await json(url, { image: 'https://example.com/cat.png' });
    expect(ref.status).toBe(422);
    expect(await detail(ref)).toMatch(/not in the service's allow-list: add its prefix to fetch_allow/);
    const extra = await multipart(url, [
      ['image', RED],
      ['colour', 'red'],
    ]);
    expect(extra.status).toBe(422);
    expect((await json(url, {})).status).toBe(422);
    // Still serving: the worker never died.
    expect((await multipart(url, [['image', RED]])).status).toBe(200);
    expect((await colours.handle.inspect()).running).toBe(true);
  });

  it('an image answer: PNG by default, JPEG by Accept, base64 JSON by Accept and on /predict/batch', async () => {
    const url = `${invert.result.url}/predict`;
    const png = await multipart(url, [['image', RED]]);
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    const pixels = decodePng(Buffer.from(await png.arrayBuffer()));
    expect([pixels.width, pixels.height]).toEqual([24, 24]);
    // 255 - (220, 20, 20): the inverse of red.
    expect(pixelAt(pixels, 12, 12)).toEqual([35, 235, 235, 255]);
    const jpg = await multipart(url, [['image', RED]], { accept: 'image/png;q=0.5, image/jpeg' });
    expect(jpg.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await jpg.arrayBuffer()).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    const webp = await multipart(url, [['image', RED]], { accept: 'image/webp' });
    expect(webp.headers.get('content-type')).toBe('image/webp');
    const asJson = await json(url, { image: RED.toString('base64') }, { accept: 'application/json' });
    const body = (await asJson.json()) as {
      prediction: { image: string; media_type: string; width: number };
    };
    expect(body.prediction).toMatchObject({ media_type: 'image/png', width: 24, height: 24 });
    expect(pixelAt(decodePng(Buffer.from(body.prediction.image, 'base64')), 0, 0)).toEqual([
      35, 235, 235, 255,
    ]);
    const batch = await json(`${invert.result.url}/predict/batch`, {
      inputs: [{ image: RED.toString('base64') }, { image: GREEN.toString('base64') }],
    });
    const { predictions } = (await batch.json()) as { predictions: { image: string }[] };
    expect(pixelAt(decodePng(Buffer.from(predictions[1]!.image, 'base64')), 5, 5)).toEqual([
      245, 55, 225, 255,
    ]);
  });

  it('the OpenAPI document advertises the file input, multipart and the output kind (the contract)', async () => {
    const spec = (await (await fetch(`${invert.result.url}/openapi.json`)).json()) as {
      paths: Record<string, { post: Record<string, unknown> }>;
      components: { schemas: { PredictRequest: { properties: Record<string, Record<string, unknown>> } } };
    };
    expect(spec.components.schemas.PredictRequest.properties.image).toEqual({
      type: 'string',
      contentEncoding: 'base64',
      contentMediaType: 'image/*',
      'x-mlship-file': {
        kind: 'image',
        max_bytes: 262144,
        accept: ['image/png', 'image/jpeg', 'image/webp'],
        width: 24,
        height: 24,
      },
    });
    const post = spec.paths['/predict']!.post as {
      requestBody: { content: Record<string, unknown> };
      'x-mlship-output': unknown;
    };
    expect(Object.keys(post.requestBody.content)).toEqual(['application/json', 'multipart/form-data']);
    expect(post['x-mlship-output']).toEqual({
      kind: 'image',
      media_types: ['image/png', 'image/jpeg', 'image/webp'],
    });
  });
});
