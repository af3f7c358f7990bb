// The generated front-end page in real Chromium against answers no wrapped model of the stack test
// gives (its Docker test covers images, probabilities and numbers on real services): a small HTTP
// server here serves the page with the proxy's own Content-Security-Policy and answers /api/ with
// documents and predictions shaped as the files contract says — audio fields, ranges, choices,
// lists, boxes and keypoints drawn over the input, a collapsible JSON tree, a service without schema.

import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderComposeTemplate } from '../../src/generators/compose-templates.js';
import { contentSecurityPolicy } from '../../src/generators/proxy-protection.js';
import {
  CHROMIUM,
  CHROMIUM_ARGS,
  chosenFile,
  chromiumAvailable,
  fakeMicrophoneArgs,
  recordFor,
} from '../helpers/browser.js';
import { encodePng } from '../helpers/png.js';
import { multipartFile, readWavHeader, toneWav } from '../helpers/wav.js';

const hasChromium = chromiumAvailable();
const PAGE = renderComposeTemplate('index.html', {
  title: 'contract',
  service: 'detector',
  services: ['detector', 'speech', 'plain'],
  apiKey: false,
});

const file = (kind: string, extra = {}) => ({
  type: 'string',
  contentEncoding: 'base64',
  contentMediaType: `${kind}/*`,
  'x-mlship-file': {
    kind,
    max_bytes: 1_048_576,
    accept: [`${kind}/${kind === 'image' ? 'png' : 'wav'}`],
    ...extra,
  },
});

/** OpenAPI documents as the wrapped services publish them (request schema behind a $ref). */
const SPECS: Record<string, unknown> = {
  detector: {
    paths: {
      '/predict': {
        post: {
          requestBody: {
            content: { 'application/json': { schema: { $ref: '#/components/schemas/PredictRequest' } } },
          },
          'x-mlship-output': { kind: 'json' },
        },
      },
    },
    components: {
      schemas: {
        PredictRequest: {
          properties: {
            image: file('image', { width: 64, height: 64 }),
            threshold: { type: 'number', minimum: 0, maximum: 1 },
            mode: { type: 'string', enum: ['fast', 'exact'] },
            classes: { type: 'array', items: { type: 'integer' } },
            gain: { type: 'number', 'x-mlship-range': { minimum: 0.5, maximum: 2 } },
            scale: { type: 'number', exclusiveMinimum: 0 },
          },
          required: ['image', 'threshold'],
          examples: [{ threshold: 0.5, mode: 'exact', classes: [1, 2] }],
        },
      },
    },
  },
  speech: {
    paths: { '/predict': { post: {} } },
    components: {
      schemas: {
        PredictRequest: {
          properties: { audio: file('audio', { sample_rate: 16000, max_seconds: 1 }) },
          required: ['audio'],
        },
      },
    },
  },
  plain: { paths: { '/predict': { post: {} } } },
};

/** What the detector answers: boxes and keypoints in the input's pixels, and a nested object. */
const DETECTION = {
  prediction: {
    boxes: [[8, 8, 40, 40]],
    scores: [0.9],
    labels: ['cat'],
    keypoints: [[50, 50, 0.8]],
    meta: { model: 'd', sizes: [64, 64] },
  },
};

let server: http.Server;
let base = '';
let browser: Browser | undefined;
const received: { service: string; type: string; body: string; raw: Buffer }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const m = /^\/api\/([^/]+)\/(openapi\.json|predict)$/.exec(req.url ?? '');
      if (req.url === '/') {
        res.writeHead(200, {
          'content-type': 'text/html',
          'content-security-policy': contentSecurityPolicy(PAGE),
        });
        return res.end(PAGE);
      }
      if (!m) return res.writeHead(404).end();
      const [, service, what] = m;
      if (what === 'openapi.json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(SPECS[service!]));
      }
      received.push({
        service: service!,
        type: req.headers['content-type'] ?? '',
        body: Buffer.concat(chunks).toString('latin1'),
        raw: Buffer.concat(chunks),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'r1' });
      res.end(JSON.stringify(service === 'detector' ? DETECTION : { prediction: 'ok' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The fake microphone plays a 1 kHz tone at 48 kHz, as a real one records.
  const mic = path.join(mkdtempSync(path.join(os.tmpdir(), 'mlship-mic-')), 'mic.wav');
  writeFileSync(mic, toneWav(48_000, 1000, 2));
  if (hasChromium) {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...CHROMIUM_ARGS, ...fakeMicrophoneArgs(mic)],
    });
  }
});

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server.close(r));
});

async function open(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1000, height: 900 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  await page.goto(`${base}/`);
  await page.waitForSelector('#form[data-ready="detector"]', { state: 'attached' });
  return { page, problems };
}

/** Sends the form; resolves when the page lists it as its `calls`-th call. */
async function send(page: Page, calls: number): Promise<void> {
  await page.click('#submit');
  await page.waitForSelector(`#calls li:nth-child(${calls})`, { state: 'attached' });
}

/**
 * Ranges: a limit (minimum/maximum) is the input's min/max, and the browser refuses to send a value
 * outside it; a hint (x-mlship-range) is shown only, and a value outside it is sent.
 */
async function rangesChecked(page: Page): Promise<void> {
  const attrs = async (id: string) => [
    await page.getAttribute(id, 'min'),
    await page.getAttribute(id, 'max'),
  ];
  expect(await attrs('#f-gain')).toEqual([null, null]);
  expect(await page.textContent('[data-name="gain"] .hint')).toBe('usually 0.5 to 2 (not a limit)');
  expect(await page.textContent('[data-name="scale"] .hint')).toBe('more than 0 to ∞');
  const before = received.length;
  const calls = await page.locator('#calls li').count();
  await page.fill('#f-threshold', '1.5');
  await page.click('#submit');
  expect(await page.evaluate("document.getElementById('f-threshold').validity.rangeOverflow")).toBe(true);
  await page.fill('#f-threshold', '0.5');
  await page.fill('#f-gain', '5');
  await send(page, calls + 1);
  expect(received.length).toBe(before + 1);
  expect(received.at(-1)!.body).toMatch(/name="gain"\r\n\r\n5\r\n/);
}

describe.runIf(hasChromium)(
  'the front-end page in Chromium, on answers shaped as the files contract says',
  () => {
    it('a field per input: image picker, number with its range, choice, list; boxes and keypoints drawn over the picture', async () => {
      const { page, problems } = await open();
      try {
        const kinds = await page.evaluate(
          "[...document.querySelectorAll('#fields .field')].map((e) => e.dataset.kind)",
        );
        expect(kinds).toEqual(['image', 'number', 'choice', 'json', 'number', 'number']);
        expect(await page.getAttribute('#f-threshold', 'min')).toBe('0');
        expect(await page.getAttribute('#f-threshold', 'max')).toBe('1');
        expect(await page.textContent('[data-name="threshold"] .hint')).toBe('0 to 1');
        expect(await page.inputValue('#f-mode')).toBe('exact');
        expect(await page.inputValue('#f-classes')).toBe('[1,2]');
        // A required file not chosen: said before anything is sent.
        await page.click('#submit');
        expect(await page.textContent('#output')).toBe('choose a file for image');
        const black = encodePng(64, 64, () => [0, 0, 0]);
        await page.setInputFiles('#f-image', { name: 'black.png', mimeType: 'image/png', buffer: black });
        await page.waitForSelector('.drop img.preview:not([hidden])');
        await page.click('#submit');
        await page.waitForSelector('#overlay[data-drawn="true"]');
        // Multipart: the file part and the other fields as text parts (the list as JSON).
        const sent = received.at(-1)!;
        expect(sent.type).toMatch(/^multipart\/form-data; boundary=/);
        expect(sent.body).toMatch(/name="image"; filename="black.png"\r\nContent-Type: image\/png/);
        expect(sent.body).toMatch(/name="threshold"\r\n\r\n0.5\r\n/);
        expect(sent.body).toMatch(/name="classes"\r\n\r\n\[1,2\]\r\n/);
        await rangesChecked(page);
        // The canvas holds the picture at its own size, the box outline and the keypoint in magenta.
        const pixels = (await page.evaluate(`(() => {
        const c = document.getElementById('overlay'); const g = c.getContext('2d');
        const at = (x, y) => [...g.getImageData(x, y, 1, 1).data];
        return { size: [c.width, c.height], edge: at(8, 24), inside: at(24, 24), keypoint: at(50, 50), corner: at(60, 2) };
      })()`)) as Record<string, number[]>;
        expect(pixels.size).toEqual([64, 64]);
        expect(pixels.edge).toEqual([255, 0, 255, 255]);
        expect(pixels.keypoint).toEqual([255, 0, 255, 255]);
        expect(pixels.inside).toEqual([0, 0, 0, 255]);
        expect(pixels.corner).toEqual([0, 0, 0, 255]);
        // The JSON answer as a tree: nested objects are <details> that open and close.
        const tree = await page.evaluate(
          "[...document.querySelectorAll('#output details > summary')].map((s) => s.textContent)",
        );
        expect(tree).toEqual(expect.arrayContaining(['{5}', 'boxes: [1]', 'meta: {2}', 'sizes: [2]']));
        const meta = page.locator('#output details:has(> summary:text-is("meta: {2}"))');
        expect(await meta.getAttribute('open')).toBe('');
        await meta.locator('> summary').click();
        expect(await meta.getAttribute('open')).toBeNull();
        expect(problems).toEqual([]);
      } finally {
        await page.close();
      }
    });

    it('an audio field: a file picker and a recorder; a service without a schema: the JSON text box', async () => {
      const { page, problems } = await open();
      try {
        await page.selectOption('#service', 'speech');
        await page.waitForSelector('#form[data-ready="speech"]', { state: 'attached' });
        expect(await page.getAttribute('#f-audio', 'accept')).toBe('audio/wav');
        expect(await page.isVisible('.drop button.record')).toBe(true);
        expect(await page.textContent('.drop')).toContain('Drop a sound file here');
        expect(await page.textContent('.drop')).toContain('sent as 16000 Hz mono, at most 1 s');
        // A WAV at the field's rate is sent as it is; another rate is resampled in the page.
        const wav = toneWav(16_000, 440, 0.25);
        await page.setInputFiles('#f-audio', { name: 'hello.wav', mimeType: 'audio/wav', buffer: wav });
        await page.waitForSelector('.drop audio:not([hidden])');
        await send(page, 1);
        expect(multipartFile(received.at(-1)!.raw, 'audio')).toEqual({
          filename: 'hello.wav',
          type: 'audio/wav',
          data: wav,
        });
        const cd = toneWav(44_100, 440, 0.5);
        await page.setInputFiles('#f-audio', { name: 'cd.wav', mimeType: 'audio/wav', buffer: cd });
        await chosenFile(page, /^cd\.wav /);
        await send(page, 2);
        const resampled = multipartFile(received.at(-1)!.raw, 'audio');
        expect(readWavHeader(resampled.data)).toEqual({
          format: 1,
          channels: 1,
          sampleRate: 16_000,
          bits: 16,
          frames: 8000,
        });
        // Not a sound: said on the picker, nothing chosen in its place.
        await page.setInputFiles('#f-audio', {
          name: 'x.wav',
          mimeType: 'audio/wav',
          buffer: Buffer.from('no'),
        });
        await chosenFile(page, /^x\.wav: not a sound/);
        // Recording: Record → Stop (the button says which), stopped at the field's 1 s by itself,
        // sent as a WAV at 16 kHz, not the recorder's WebM.
        await recordFor(page, 0);
        await send(page, 3);
        const recorded = multipartFile(received.at(-1)!.raw, 'audio');
        expect(recorded.filename).toBe('recording.wav');
        const header = readWavHeader(recorded.data);
        expect(header).toMatchObject({ format: 1, channels: 1, sampleRate: 16_000, bits: 16 });
        expect(header.frames).toBeGreaterThan(8000);
        expect(header.frames).toBeLessThanOrEqual(16_000);
        // The form as JSON: the file as a data: URL (the contract accepts it), ready to edit by hand.
        await page.check('#mode-json');
        const asJson = JSON.parse(await page.inputValue('#input')) as { audio: string };
        expect(asJson.audio).toMatch(/^data:audio\/wav;base64,UklGR/);
        // A recording under way when the form is rebuilt for another service is dropped, unsaid.
        await page.check('#mode-form');
        await page.click('.drop button.record');
        await page.waitForSelector('button.record[data-state="recording"]');
        await page.selectOption('#service', 'plain');
        await page.waitForSelector('#form[data-ready="plain"]', { state: 'attached' });
        await expect.poll(() => page.evaluate('recording')).toBeNull();
        expect(await page.textContent('#schema-note')).not.toMatch(/No recording/);
        expect(await page.isVisible('#input')).toBe(true);
        expect(await page.isDisabled('#mode-form')).toBe(true);
        await page.fill('#input', '{"x": [1, 2]}');
        await page.click('#submit');
        await page.waitForSelector('#calls li', { state: 'attached' });
        expect(received.at(-1)).toMatchObject({
          service: 'plain',
          type: 'application/json',
          body: '{"x":[1,2]}',
        });
        expect(await page.textContent('#rich .headline')).toBe('ok');
        expect(problems).toEqual([]);
      } finally {
        await page.close();
      }
    });
  },
);
