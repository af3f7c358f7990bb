// The example input of a wrapped service of the stack: what the smoke tests of `compose up`
// send (one /predict through the proxy, and a three-item job through a worker's queue).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ComposeGenerateResult } from './generate.js';

/** The example input a wrapped service was generated with (its mlship-wrap.json), if any. */
export async function serviceExample(gen: ComposeGenerateResult, service: string): Promise<unknown> {
  const dir = path.resolve(
    path.dirname(gen.composeFile),
    gen.stack.compose.services[service]?.build?.context ?? '.',
  );
  try {
    const manifest = JSON.parse(await readFile(path.join(dir, 'mlship-wrap.json'), 'utf8')) as {
      example?: string;
    };
    return JSON.parse(await readFile(path.join(dir, manifest.example ?? 'example.json'), 'utf8'));
  } catch {
    return undefined;
  }
}
