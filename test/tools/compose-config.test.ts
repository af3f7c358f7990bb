// The generated compose file, read by docker-compose v1 itself (`config -q`): the only
// compose some machines have. Needs the docker-compose binary, no engine.

import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateCompose } from '../../src/core/compose/generate.js';
import { requires } from '../helpers/requires.js';

const FIXTURE = 'fixtures/compose/pipeline';

function composeV1(): boolean {
  try {
    execFileSync('docker-compose', ['version', '--short'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const hasCompose = requires('docker-compose', composeV1(), 'apt-get install docker-compose');

describe('compose generate, read by docker-compose', () => {
  it.skipIf(!hasCompose)('docker-compose v1 accepts it too (the only compose on some machines)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-compose-'));
    cpSync(FIXTURE, dir, { recursive: true });
    const r = await generateCompose({
      configFile: path.join(dir, 'mlship.yaml'),
      force: false,
      dryRun: false,
    });
    // Run where compose itself would: it reads .env from the project directory.
    const out = execFileSync('docker-compose', ['-f', 'compose.yaml', '-p', 'x', 'config', '-q'], {
      cwd: r.outDir,
      encoding: 'utf8',
    });
    expect(out).toBe('');
  });
});
