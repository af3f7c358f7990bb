// Headless Debian Chromium for browser tests (no browser download: none is reachable).
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { requires } from './requires.js';

export const CHROMIUM = process.env.MLSHIP_CHROMIUM ?? '/usr/bin/chromium';

/** Whether Chromium is here; locally a missing one is a skip with its reason, on CI an error. */
export function chromiumAvailable(): boolean {
  return requires(CHROMIUM, existsSync(CHROMIUM), 'apt-get install chromium');
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Chromium's fake microphone playing `wav` (looped), its permission granted without a prompt: the
 * page's recorder records that sound.
 */
export function fakeMicrophoneArgs(wav: string): string[] {
  return [
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${wav}`,
  ];
}

/** Waits until the page's file field says this file is chosen (a sound is converted first). */
export async function chosenFile(page: Page, name: RegExp): Promise<void> {
  await page.locator('.drop .chosen').filter({ hasText: name }).waitFor();
}

/**
 * Records with the page's recorder: Record (the button then says Stop), then Stop after `ms`, or with
 * `ms` 0 until the field's own limit stops it; resolves when the recording is the chosen file.
 */
export async function recordFor(page: Page, ms: number): Promise<void> {
  await page.click('.drop button.record');
  await page.waitForSelector('button.record[data-state="recording"]');
  if ((await page.textContent('button.record')) !== 'Stop') throw new Error('the button does not say Stop');
  if (ms) {
    await page.waitForTimeout(ms);
    await page.click('button.record');
  }
  await page.waitForSelector('button.record[data-state="idle"]', { timeout: 20_000 });
  await chosenFile(page, /^recording\.wav /);
}
