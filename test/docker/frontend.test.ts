// The generated front end in real Chromium, on one local stack shared by every case (NGINX with API
// keys and its content-security headers, the front end, wrapped model services): the form is built
// from each service's OpenAPI schema, answers are rendered by their type, on a desktop and on a
// phone-sized window; screenshots are checked by DOM and by pixels.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_ARGS, chromiumAvailable } from '../helpers/browser.js';
import { LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { freePort } from '../helpers/net.js';
import { decodePng, pixelAt } from '../helpers/png.js';

const hasChromium = chromiumAvailable();
const engine = hasChromium ? await requireEngine() : undefined;
const BIN = path.resolve('bin/mlship.js');
const NAME = `mlship-fe-${process.pid}`;
const IRIS = { sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 };
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
let dir: string;
let port: number;
let key = '';
let browser: Browser | undefined;

function mlship(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
    timeout: 900_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function wrap(model: string, name: string, extra: string[] = []): void {
  const r = mlship(['wrap', path.resolve(model), '--out', `services/${name}`, '--name', name, ...extra]);
  expect(r.code, r.stderr).toBe(0);
}

beforeAll(async () => {
  if (!engine) return;
  await requireImage(engine, LOCAL_PYTHON_IMAGE);
  await requireImage(engine, 'mlship-local/nginx:1.22');
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-frontend-it-'));
  port = await freePort();
  wrap('fixtures/wrap/iris/model.joblib', 'iris', ['--base-image', LOCAL_PYTHON_IMAGE]);
  writeFileSync(
    path.join(dir, 'mlship.yaml'),
    [
      'version: 1',
      `name: ${NAME}`,
      'services:',
      '  iris:',
      '    path: services/iris',
      'proxy:',
      '  image: mlship-local/nginx:1.22',
      `  port: ${port}`,
      '  auth: api_key',
      'frontend:',
      '  image: mlship-local/nginx:1.22',
      '',
    ].join('\n'),
  );
  const up = mlship(['compose', 'up', '--json']);
  expect(up.code, up.stderr).toBe(0);
  const created = mlship(['keys', 'create', '--name', 'browser', '--json']);
  expect(created.code, created.stderr).toBe(0);
  key = (JSON.parse(created.stdout) as { key: string }).key;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 900_000);

afterAll(async () => {
  await browser?.close();
  if (!engine || !dir) return;
  mlship(['compose', 'down', '--volumes']);
  spawnSync('docker', ['rmi', '-f', `${NAME}/iris:dev`], { stdio: 'ignore' });
});

interface Opened {
  page: Page;
  /** Every URL the page asked for. */
  requests: string[];
  /** Page errors, console errors and CSP violations. */
  problems: string[];
}

async function open(viewport: { width: number; height: number }): Promise<Opened> {
  const context = await browser!.newContext({
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
      const shot = decodePng(await page.screenshot({ fullPage: true }));
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

interface DOMRectLike {
  top: number;
  bottom: number;
  left: number;
  right: number;
  width: number;
  height: number;
}
