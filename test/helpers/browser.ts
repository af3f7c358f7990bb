// Headless Debian Chromium for browser tests (no browser download: none is reachable).
import { existsSync } from 'node:fs';
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
