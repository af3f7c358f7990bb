// Headless Debian Chromium for browser tests (no browser download: none is reachable).
import { existsSync } from 'node:fs';
import { CI } from './docker.js';

export const CHROMIUM = process.env.MLSHIP_CHROMIUM ?? '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (CI) throw new Error(`CI is set but ${CHROMIUM} is missing (apt-get install chromium)`);
  return false;
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
