// The generated front end in real Chromium, on one local stack shared by every case (NGINX with API
// keys and its content-security headers, the front end, four wrapped model services: iris and an
// ONNX colour classifier on Python, the same classifier and an image inverter on Node, a function
// that says what it heard on Python): the form is built from each service's OpenAPI schema, answers
// are rendered by their type, on a desktop and on a phone-sized window; screenshots are checked by
// DOM and by pixels; the recorder records Chromium's fake microphone playing a tone made here.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHROMIUM,
  CHROMIUM_ARGS,
  chosenFile,
  chromiumAvailable,
  fakeMicrophoneArgs,
  recordFor,
} from '../helpers/browser.js';
import { runCli } from '../helpers/cli-process.js';
import { LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { freePort } from '../helpers/net.js';
import { decodePng, encodePng, pixelAt } from '../helpers/png.js';
import { readWavHeader, toneWav } from '../helpers/wav.js';
import { heard, LISTEN_MAX_SECONDS, LISTEN_RATE, writeListener } from './audio-helpers.js';
import { ensureNodeImage, imageMedia, writeNodeImageService } from './node-media-helpers.js';
import { makeImageClassifierOnnx, makeInvertOnnx } from './wrap-helpers.js';

const hasChromium = chromiumAvailable();
const engine = hasChromium ? await requireEngine() : undefined;
const NAME = `mlship-fe-${process.pid}`;
const IRIS = { sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 };
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
// Set to a folder to keep the screenshots the cases check (for a human to look at).
const SHOTS = process.env.MLSHIP_SCREENSHOT_DIR;
let dir: string;
let port: number;
let key = '';
let browser: Browser | undefined;
/** A second browser whose microphone plays MIC_HZ (Chromium's fake capture device). */
let listening: Browser | undefined;
const MIC_HZ = 660;
const SERVICES = ['iris', 'colours', 'invert', 'pycolours', 'listen'];

function mlship(args: string[]) {
  return runCli(args, { cwd: dir, env: { CI: 'true' } });
}

async function wrap(model: string, name: string, extra: string[] = []): Promise<void> {
  const r = await mlship([
    'wrap',
    path.resolve(model),
    '--out',
    `services/${name}`,
    '--name',
    name,
    ...extra,
  ]);
  expect(r.code, r.stderr).toBe(0);
}

beforeAll(async () => {
  if (!engine) return;
  await requireImage(engine, LOCAL_PYTHON_IMAGE);
  await requireImage(engine, 'mlship-local/nginx:1.22');
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-frontend-it-'));
  port = await freePort();
  await ensureNodeImage(engine);
  // Three example requests (their ranges: hints) and a limit declared for petal_width.
  writeFileSync(
    path.join(dir, 'iris-examples.json'),
    JSON.stringify([
      { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 },
      IRIS,
      { sepal_length: 5.9, sepal_width: 3.0, petal_length: 4.2, petal_width: 1.5 },
    ]),
  );
  writeFileSync(
    path.join(dir, 'iris.yaml'),
    'version: 1\nname: iris\nservices:\n  iris:\n    path: services/iris\n    ranges:\n      petal_width: [0, 3]\n',
  );
  await wrap('fixtures/wrap/iris/model.joblib', 'iris', [
    '--example',
    'iris-examples.json',
    '--config',
    'iris.yaml',
    '--base-image',
    LOCAL_PYTHON_IMAGE,
  ]);
  for (const [name, kind] of [
    ['colours', 'classifier'],
    ['invert', 'invert'],
  ] as const) {
    const model = path.join(dir, `${name}.onnx`);
    if (kind === 'classifier') makeImageClassifierOnnx(model, 32);
    else makeInvertOnnx(model, 24);
    const media =
      kind === 'classifier' ? imageMedia('json', 32, ['red', 'green', 'blue']) : imageMedia('image', 24);
    await writeNodeImageService(path.join(dir, 'services', name), name, model, media);
  }
  // The same classifier on the Python runtime, wrapped by the CLI from its ONNX shape and labels.
  makeImageClassifierOnnx(path.join(dir, 'pycolours.onnx'), 32);
  writeFileSync(path.join(dir, 'labels.txt'), 'red\ngreen\nblue\n');
  await wrap(path.join(dir, 'pycolours.onnx'), 'pycolours', [
    '--labels',
    'labels.txt',
    '--base-image',
    LOCAL_PYTHON_IMAGE,
  ]);
  const listen = await mlship([...writeListener(dir, 'listen'), '--base-image', LOCAL_PYTHON_IMAGE]);
  expect(listen.code, listen.stderr).toBe(0);
  writeFileSync(
    path.join(dir, 'mlship.yaml'),
    [
      'version: 1',
      `name: ${NAME}`,
      'services:',
      '  iris:',
      '    path: services/iris',
      '  colours:',
      '    path: services/colours',
      '    runtime: node',
      '  invert:',
      '    path: services/invert',
      '    runtime: node',
      '  pycolours:',
      '    path: services/pycolours',
      '  listen:',
      '    path: services/listen',
      'proxy:',
      '  image: mlship-local/nginx:1.22',
      `  port: ${port}`,
      '  auth: api_key',
      'frontend:',
      '  image: mlship-local/nginx:1.22',
      '',
    ].join('\n'),
  );
  const up = await mlship(['compose', 'up', '--json']);
  expect(up.code, up.stderr).toBe(0);
  const created = await mlship(['keys', 'create', '--name', 'browser', '--json']);
  expect(created.code, created.stderr).toBe(0);
  key = (JSON.parse(created.stdout) as { key: string }).key;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  // The microphone: a 44.1 kHz tone (another rate than the service's, as real microphones' 48 kHz).
  const mic = path.join(dir, 'microphone.wav');
  writeFileSync(mic, toneWav(44_100, MIC_HZ, 3));
  listening = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, ...fakeMicrophoneArgs(mic)],
  });
}, 900_000);

afterAll(async () => {
  await browser?.close();
  await listening?.close();
  if (!engine || !dir) return;
  await mlship(['compose', 'down', '--volumes']);
  spawnSync('docker', ['rmi', '-f', ...SERVICES.map((s) => `${NAME}/${s}:dev`)], {
    stdio: 'ignore',
  });
});

interface Opened {
  page: Page;
  /** Every URL the page asked for. */
  requests: string[];
  /** Page errors, console errors and CSP violations. */
  problems: string[];
}

async function open(viewport: { width: number; height: number }, from = browser): Promise<Opened> {
  const context = await from!.newContext({
    viewport,
    isMobile: viewport.width < 500,
    hasTouch: viewport.width < 500,
  });
  const page = await context.newPage();
  const requests: string[] = [];
  const problems: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push(e.message));
  // The status of an answer the page expected (401 before the key, a 422 it provoked) is not one.
  const expected = /^Failed to load resource: the server responded with a status of (401|422)/;
  page.on('console', (m) => m.type() === 'error' && !expected.test(m.text()) && problems.push(m.text()));
  await page.goto(`http://127.0.0.1:${port}/`);
  // Selectors, not waitForFunction: its polling evaluates a string, which the page's CSP forbids.
  await page.waitForSelector('#form[data-ready="iris"]', { state: 'attached' });
  return { page, requests, problems };
}

/** Enters the API key; the form is then rebuilt from the schema the key unlocks. */
async function unlock(page: Page): Promise<void> {
  await page.fill('#key', key);
  await page.dispatchEvent('#key', 'change');
  await page.waitForSelector('#fields .field');
}

/** Chooses a model service; its form is rebuilt from its own schema. */
async function pick(page: Page, service: string): Promise<void> {
  await page.selectOption('#service', service);
  await page.waitForSelector(`#form[data-ready="${service}"]`, { state: 'attached' });
}

/** The bounding box of an element, from the page. */
async function box(page: Page, selector: string): Promise<DOMRectLike> {
  return (await page.evaluate(
    `document.querySelector('${selector}').getBoundingClientRect().toJSON()`,
  )) as DOMRectLike;
}

/** The RGBA of pixel (x, y) of a decoded <img>, read back through a canvas in the page. */
async function imagePixel(page: Page, selector: string, x: number, y: number): Promise<number[]> {
  return (await page.evaluate(`(() => {
    const img = document.querySelector('${selector}');
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    return [...g.getImageData(${x}, ${y}, 1, 1).data];
  })()`)) as number[];
}

const RED = encodePng(40, 30, () => [220, 20, 20]);

/** A screenshot, decoded; kept under MLSHIP_SCREENSHOT_DIR when it is set. */
async function screenshot(page: Page, name: string, fullPage = false) {
  const png = await page.screenshot({ fullPage });
  if (SHOTS) writeFileSync(path.join(SHOTS, `${name}.png`), png);
  return decodePng(png);
}

async function predict(page: Page, calls: number): Promise<void> {
  await page.click('#submit');
  await page.waitForSelector(`#calls li:nth-child(${calls})`, { state: 'attached' });
}

describe.runIf(engine)('the generated front end in Chromium (one stack)', () => {
  it('desktop: without a key the raw JSON fallback; with it a form from the schema; answers, latency, last calls', async () => {
    const { page, requests, problems } = await open(DESKTOP);
    try {
      // No schema readable yet (the proxy wants a key): the JSON text box, the form disabled.
      expect(await page.isVisible('#input')).toBe(true);
      expect(await page.isDisabled('#mode-form')).toBe(true);
      expect(await page.textContent('#schema-note')).toMatch(/no input schema/);
      await unlock(page);
      expect(await page.isVisible('#input')).toBe(false);
      const fields = await page.evaluate(
        "[...document.querySelectorAll('#fields .field')].map((e) => [e.dataset.name, e.dataset.kind])",
      );
      expect(fields).toEqual(Object.keys(IRIS).map((n) => [n, 'number']));
      // Pre-filled with the service's own example.
      expect(await page.inputValue('#f-sepal_length')).toBe('5.1');
      // Ranges from its schema: a hint seen in its examples (no min/max), a limit declared for it.
      expect(await page.textContent('[data-name="sepal_length"] .hint')).toBe(
        'usually 5.1 to 6.7 (not a limit)',
      );
      expect(await page.getAttribute('#f-sepal_length', 'max')).toBeNull();
      const limits = [
        await page.getAttribute('#f-petal_width', 'min'),
        await page.getAttribute('#f-petal_width', 'max'),
      ];
      expect(limits).toEqual(['0', '3']);
      expect(await page.textContent('[data-name="petal_width"] .hint')).toBe('0 to 3');
      for (const [name, v] of Object.entries(IRIS)) await page.fill(`#f-${name}`, String(v));
      await predict(page, 1);
      expect(await page.textContent('#output')).toBe('2');
      expect(await page.textContent('#rich .headline')).toBe('2');
      expect(await page.textContent('#meta')).toMatch(/^HTTP 200 in \d+ ms · request \S+/);
      // The same values as JSON (the fallback), sent again.
      await page.check('#mode-json');
      expect(JSON.parse(await page.inputValue('#input'))).toEqual(IRIS);
      await predict(page, 2);
      expect(await page.textContent('#output')).toBe('2');
      // A bad answer is shown as such, and counted.
      await page.fill('#input', JSON.stringify({ ...IRIS, sepal_length: 'x' }));
      await predict(page, 3);
      expect(await page.textContent('#meta')).toMatch(/^HTTP 422 in \d+ ms/);
      expect(await page.getAttribute('#output', 'class')).toBe('error');
      const calls = (await page.evaluate(
        "[...document.querySelectorAll('#calls li')].map((e) => e.textContent)",
      )) as string[];
      expect(calls[0]).toMatch(/iris · HTTP 422 · \d+ ms · JSON/);
      expect(calls[2]).toMatch(/iris · HTTP 200 · \d+ ms · JSON → 2$/);
      // Kept for the tab, without the key.
      const stored = await page.evaluate("sessionStorage.getItem('mlship.calls')");
      expect(JSON.parse(stored as string)).toHaveLength(3);
      expect(stored).not.toContain(key);
      // Past the limit, sent as JSON (the form would not send it): the service names the field.
      await page.fill('#input', JSON.stringify({ ...IRIS, petal_width: 4 }));
      await predict(page, 4);
      expect(await page.textContent('#meta')).toMatch(/^HTTP 422 in \d+ ms/);
      expect(await page.textContent('#output')).toContain('petal_width');
      // Past a hint: answered.
      await page.fill('#input', JSON.stringify({ ...IRIS, sepal_length: 7.9 }));
      await predict(page, 5);
      expect(await page.textContent('#meta')).toMatch(/^HTTP 200 in \d+ ms/);
      const origin = `http://127.0.0.1:${port}/`;
      expect(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:'))).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  });

  it('phone (390x844): no horizontal overflow, form and answer stacked, predict works', async () => {
    const { page, problems } = await open(PHONE);
    try {
      await unlock(page);
      for (const [name, v] of Object.entries(IRIS)) await page.fill(`#f-${name}`, String(v));
      await predict(page, 1);
      expect(await page.textContent('#output')).toBe('2');
      const layout = (await page.evaluate(`({
        scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
        form: document.getElementById('form').getBoundingClientRect().toJSON(),
        answer: document.getElementById('rich').getBoundingClientRect().toJSON(),
      })`)) as { scroll: number; inner: number; form: DOMRectLike; answer: DOMRectLike };
      expect(layout.scroll).toBeLessThanOrEqual(layout.inner);
      expect(layout.answer.top).toBeGreaterThanOrEqual(layout.form.bottom);
      expect(layout.form.right).toBeLessThanOrEqual(PHONE.width);
      // Pixels: the Predict button spans the form's width and is drawn in it.
      const button = (await page.evaluate(
        "document.getElementById('submit').getBoundingClientRect().toJSON()",
      )) as DOMRectLike;
      expect(button.width).toBeGreaterThan(PHONE.width * 0.8);
      const shot = await screenshot(page, 'phone-iris', true);
      expect(shot.width).toBe(PHONE.width);
      const inside = pixelAt(shot, button.left + button.width / 2, button.top + 3);
      const outside = pixelAt(shot, 2, button.top + button.height / 2);
      expect(inside.slice(0, 3)).not.toEqual(outside.slice(0, 3));
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  });
});

describe.runIf(engine)('image models in the front end (Chromium, same stack)', () => {
  it.each([
    ['colours', 'Node'],
    ['pycolours', 'Python'],
  ])(
    'desktop: upload an image to %s (%s), see its preview and the class probabilities as bars (DOM and pixels)',
    async (service) => {
      const { page, requests, problems } = await open(DESKTOP);
      try {
        await unlock(page);
        await pick(page, service);
        const fields = await page.evaluate(
          "[...document.querySelectorAll('#fields .field')].map((e) => [e.dataset.name, e.dataset.kind])",
        );
        expect(fields).toEqual([['image', 'image']]);
        expect(await page.getAttribute('#f-image', 'accept')).toBe('image/png,image/jpeg,image/webp');
        await page.setInputFiles('#f-image', { name: 'red.png', mimeType: 'image/png', buffer: RED });
        await page.waitForSelector('.drop img.preview:not([hidden])');
        expect(await imagePixel(page, '.drop img.preview', 20, 15)).toEqual([220, 20, 20, 255]);
        await predict(page, 1);
        expect(await page.textContent('#meta')).toMatch(/^HTTP 200 in \d+ ms/);
        expect(await page.textContent('#rich .headline')).toBe('red');
        const labels = await page.evaluate(
          "[...document.querySelectorAll('.bar')].map((b) => b.dataset.label)",
        );
        expect(labels).toEqual(['red', 'green', 'blue']);
        const fill = await box(page, '.bar.top .fill');
        const track = await box(page, '.bar.top .track');
        // The bar's length is the probability shown beside it.
        const shown = Number((await page.textContent('.bar.top .value'))!.replace('%', '')) / 100;
        expect(shown).toBeGreaterThan(0.6); // Python letterboxes the 40x30 picture: grey bands lower it
        expect(fill.width / track.width).toBeCloseTo(shown, 2);
        expect(await page.textContent('#calls li')).toMatch(
          new RegExp(`${service} · HTTP 200 · \\d+ ms · multipart image=red.png → "red"`),
        );
        // Pixels of the screenshot: the winning bar is drawn green across its track, the others are not.
        const shot = await screenshot(page, `desktop-${service}`);
        expect(pixelAt(shot, fill.left + fill.width / 2, fill.top + fill.height / 2).slice(0, 3)).toEqual([
          26, 127, 55,
        ]);
        const second = await box(page, '.bar:nth-child(2) .track');
        expect(
          pixelAt(shot, second.left + second.width / 2, second.top + second.height / 2).slice(0, 3),
        ).toEqual([234, 238, 242]);
        const origin = `http://127.0.0.1:${port}/`;
        expect(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:'))).toEqual([]);
        expect(problems).toEqual([]);
      } finally {
        await page.context().close();
      }
    },
  );

  it('phone (390x844): drop an image on the picker, see the output image (decoded pixels, layout fits)', async () => {
    const { page, problems } = await open(PHONE);
    try {
      await unlock(page);
      await pick(page, 'invert');
      expect(await page.textContent('#schema-note')).toBe('This model answers with an image.');
      // A real drop: a DataTransfer holding the file, dispatched on the drop zone.
      const transfer = await page.evaluateHandle(`(() => {
        const bytes = Uint8Array.from(atob('${RED.toString('base64')}'), (c) => c.charCodeAt(0));
        const t = new DataTransfer();
        t.items.add(new File([bytes], 'red.png', { type: 'image/png' }));
        return t;
      })()`);
      await page.dispatchEvent('.drop', 'drop', { dataTransfer: transfer });
      await page.waitForSelector('.drop img.preview:not([hidden])');
      await predict(page, 1);
      await page.waitForSelector('#out-image');
      const size = await page.evaluate(
        "[document.getElementById('out-image').naturalWidth, document.getElementById('out-image').naturalHeight]",
      );
      expect(size).toEqual([24, 24]);
      expect(await imagePixel(page, '#out-image', 12, 12)).toEqual([35, 235, 235, 255]);
      expect(await page.textContent('#output')).toMatch(/^image\/png, \d+ kB$/);
      const shown = await box(page, '#out-image');
      expect(shown.right).toBeLessThanOrEqual(PHONE.width);
      const shot = await screenshot(page, 'phone-invert', true);
      expect(shot.width).toBe(PHONE.width);
      const scrollY = (await page.evaluate('window.scrollY')) as number;
      expect(
        pixelAt(shot, shown.left + shown.width / 2, shown.top + scrollY + shown.height / 2).slice(0, 3),
      ).toEqual([35, 235, 235]);
      const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth');
      expect(overflow).toBeLessThanOrEqual(0);
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  });
});

/** What the listen service said it heard, read from the page's answer tree ("hz: 660" lines). */
async function answerTree(page: Page): Promise<Record<string, number>> {
  return heard(
    (await page.evaluate(
      "[...document.querySelectorAll('#output details > div')].map((d) => d.textContent)",
    )) as string[],
  );
}

/**
 * Predicts; returns the sound the page sent, read from its player's data: URL (the same Blob as the
 * multipart part: Chromium does not hand a body with a file part to the test).
 */
async function sendSound(page: Page, calls: number): Promise<{ type: string; data: Buffer }> {
  const url = (await page.getAttribute('.drop audio', 'src')) ?? '';
  const m = /^data:([^;]+);base64,(.*)$/.exec(url);
  expect(m, url.slice(0, 40)).not.toBeNull();
  await predict(page, calls);
  expect(await page.textContent('#meta')).toMatch(/^HTTP 200 in \d+ ms/);
  return { type: m![1]!, data: Buffer.from(m![2]!, 'base64') };
}

describe.runIf(engine)('audio in the front end (Chromium with a fake microphone, same stack)', () => {
  it('desktop: record about a second, the model hears the tone at its declared rate; a picked 44.1 kHz WAV is resampled', async () => {
    const { page, requests, problems } = await open(DESKTOP, listening);
    try {
      await unlock(page);
      await pick(page, 'listen');
      const fields = await page.evaluate(
        "[...document.querySelectorAll('#fields .field')].map((e) => [e.dataset.name, e.dataset.kind])",
      );
      expect(fields).toEqual([['sound', 'audio']]);
      expect(await page.textContent('.drop')).toContain(
        `sent as ${LISTEN_RATE} Hz mono, at most ${LISTEN_MAX_SECONDS} s`,
      );
      await recordFor(page, 1000);
      expect(await page.textContent('.drop .chosen')).toMatch(/^recording\.wav \(\d+ kB\)$/);
      const part = await sendSound(page, 1);
      expect(part.type).toBe('audio/wav');
      expect(await page.textContent('#calls li')).toMatch(/multipart sound=recording\.wav → /);
      const wav = readWavHeader(part.data);
      expect(wav).toMatchObject({ format: 1, channels: 1, sampleRate: LISTEN_RATE, bits: 16 });
      // The model heard what was sent, whole: its length, the microphone's pitch (a rate mislabelled
      // by the page would shift it), a level well above silence.
      const got = await answerTree(page);
      console.info(`recorded for 1 s (desktop): the model heard ${JSON.stringify(got)}`);
      expect(got.seconds).toBeCloseTo(wav.frames / LISTEN_RATE, 3);
      expect(got.seconds).toBeGreaterThan(0.5);
      expect(got.seconds).toBeLessThanOrEqual(LISTEN_MAX_SECONDS);
      expect(Math.abs(got.hz! - MIC_HZ)).toBeLessThan(5);
      expect(got.rms).toBeGreaterThan(0.05);
      // A WAV at another rate, picked: converted in the page, heard at its own pitch, length and level.
      const tone = toneWav(44_100, 880, 0.8);
      await page.setInputFiles('#f-sound', { name: 'a.wav', mimeType: 'audio/wav', buffer: tone });
      await chosenFile(page, /^a\.wav /);
      const picked = await sendSound(page, 2);
      expect(readWavHeader(picked.data)).toMatchObject({
        sampleRate: LISTEN_RATE,
        frames: 0.8 * LISTEN_RATE,
      });
      const again = await answerTree(page);
      expect(again.seconds).toBe(0.8);
      expect(Math.abs(again.hz! - 880)).toBeLessThan(2);
      expect(again.rms).toBeCloseTo(0.5 / Math.SQRT2, 2);
      expect(await page.textContent('#calls li')).toMatch(
        /listen · HTTP 200 · \d+ ms · multipart sound=a\.wav → \{"hz":/,
      );
      const origin = `http://127.0.0.1:${port}/`;
      expect(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:'))).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  });

  it(`phone (390x844): a recording left running stops at the service's limit and is accepted; the layout fits`, async () => {
    const { page, problems } = await open(PHONE, listening);
    try {
      await unlock(page);
      await pick(page, 'listen');
      await recordFor(page, 0);
      const wav = readWavHeader((await sendSound(page, 1)).data);
      expect(wav.sampleRate).toBe(LISTEN_RATE);
      expect(wav.frames).toBeLessThanOrEqual(LISTEN_MAX_SECONDS * LISTEN_RATE);
      expect(wav.frames).toBeGreaterThan(LISTEN_RATE); // more than a second of the two
      const got = await answerTree(page);
      console.info(`recording left running (phone): the model heard ${JSON.stringify(got)}`);
      expect(got.seconds).toBeCloseTo(wav.frames / LISTEN_RATE, 3);
      expect(Math.abs(got.hz! - MIC_HZ)).toBeLessThan(5);
      const button = await box(page, 'button.record');
      const answer = await box(page, '#output');
      expect(button.right).toBeLessThanOrEqual(PHONE.width);
      expect(answer.right).toBeLessThanOrEqual(PHONE.width);
      const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth');
      expect(overflow).toBeLessThanOrEqual(0);
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  });
});

interface DOMRectLike {
  top: number;
  bottom: number;
  left: number;
  right: number;
  width: number;
  height: number;
}
