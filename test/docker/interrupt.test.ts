// Ctrl-C during a run removes every container mlship started, within 5 s.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { countManaged, LOCAL_DEBIAN_IMAGE, requireEngine } from '../helpers/docker.js';

const engine = await requireEngine();
const run = `interrupt-${randomBytes(4).toString('hex')}`;

afterAll(async () => {
  await engine?.removeByLabel(RUN_LABEL, run);
});

describe.runIf(engine)('interrupting a run', () => {
  it('SIGINT removes the running containers and exits 130', async () => {
    const child = spawn(process.execPath, ['test/helpers/interrupt-child.mjs', LOCAL_DEBIAN_IMAGE, run], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child did not start: ${stderr}`)), 60_000);
      child.stdout.on('data', (c: Buffer) => {
        if (c.toString().includes('started')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', () => reject(new Error(`child exited early: ${stderr}`)));
    });
    expect(await countManaged(engine!, run)).toBe(2);
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    const elapsed = Date.now() - t0;
    expect(code).toBe(130);
    expect(elapsed).toBeLessThan(5000);
    expect(stderr).toMatch(/SIGINT: cleaning up \(2 items\)/);
    expect(await countManaged(engine!, run)).toBe(0);
  });
});
