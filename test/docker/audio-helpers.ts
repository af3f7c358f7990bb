// An audio model for the front end's Docker test: your function (`--entry`) that says what it heard —
// the loudest frequency, the length and the level of the sound the service decoded — so a test can
// check that a recording made in the browser reached the model whole, at the declared sample rate.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { toneWav } from '../helpers/wav.js';

/** The rate the service declares (not the default 16 kHz: the page must read it from the schema). */
export const LISTEN_RATE = 22_050;
/** The longest sound it takes: the page stops a recording there. */
export const LISTEN_MAX_SECONDS = 2;

const LISTEN_PY = `"""What the service heard: the loudest frequency, the length and the level of the sound."""

import numpy as np

RATE = ${LISTEN_RATE}


def predict(payload):
    x = np.asarray(payload["sound"], dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    spectrum[0] = 0
    return {
        "hz": round(float(np.argmax(spectrum)) * RATE / len(x), 1),
        "seconds": round(len(x) / RATE, 3),
        "rms": round(float(np.sqrt(np.mean(x * x))), 4),
    }
`;

/**
 * Writes the function, its example (a short tone) and a config declaring the sound field's rate and
 * limit; returns the `mlship wrap` arguments that wrap it into `services/<name>`.
 */
export function writeListener(dir: string, name: string): string[] {
  const src = path.join(dir, `${name}-src`);
  mkdirSync(src, { recursive: true });
  writeFileSync(path.join(src, 'listen.py'), LISTEN_PY);
  writeFileSync(path.join(src, 'tone.wav'), toneWav(LISTEN_RATE, 440, 0.5));
  writeFileSync(path.join(src, 'example.json'), JSON.stringify({ sound: '@tone.wav' }));
  const config = path.join(dir, `${name}.yaml`);
  writeFileSync(
    config,
    [
      'version: 1',
      `name: ${name}`,
      'services:',
      `  ${name}:`,
      `    path: services/${name}`,
      '    preprocess:',
      '      sound:',
      `        sample_rate: ${LISTEN_RATE}`,
      `        max_seconds: ${LISTEN_MAX_SECONDS}`,
      '',
    ].join('\n'),
  );
  return [
    'wrap',
    '--entry',
    `${path.join(src, 'listen.py')}:predict`,
    '--example',
    path.join(src, 'example.json'),
    '--config',
    config,
    '--out',
    `services/${name}`,
    '--name',
    name,
  ];
}

/** What the model said it heard, read from the page's answer tree ("hz: 440" lines). */
export function heard(lines: string[]): Record<string, number> {
  return Object.fromEntries(
    lines.map((l) => l.split(': ')).map(([k, v]) => [k, Number(v)] as [string, number]),
  );
}
