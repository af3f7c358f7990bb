// The command `mlship top` runs inside a model container to read its /metrics, run here with
// this machine's python and node against a local server in place of the service: the body
// comes out whole (both runtimes), and a failed answer exits non-zero with the status.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS_COMMAND } from '../../src/generators/metrics-command.js';
import { requires } from '../helpers/requires.js';

const BODY = `${'mlship_requests_total{endpoint="/predict",status="200",version="v"} 12.0\n'.repeat(4000)}# end\n`;
let server: http.Server;
let port = 0;
let status = 200;
const made: string[] = [];

function run(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, PORT: String(port), ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const python = process.env.PYTHON ?? 'python3';
const hasPython = requires(
  'python3',
  (await run([python, '-c', 'pass']).catch(() => ({ code: 1 }))).code === 0,
  'install python3',
);

describe('the /metrics reader run inside a model container', () => {
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      expect(req.url).toBe('/metrics');
      res.writeHead(status, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(status === 200 ? BODY : 'nope');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server.close();
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });

  it.runIf(hasPython)('python (HTTP/1.0 on a socket): the whole body; a 500 exits 1 naming it', async () => {
    status = 200;
    const ok = await run([python, '-S', '-c', METRICS_COMMAND[3]!]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe(BODY);
    status = 500;
    const bad = await run([python, '-S', '-c', METRICS_COMMAND[3]!]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/\/metrics answered HTTP\/1\.[01] 500/);
  });

  it('node (fetch): the whole body; a 500 exits 1 naming it', async () => {
    status = 200;
    const ok = await run([process.execPath, '-e', METRICS_COMMAND[4]!]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe(BODY);
    status = 500;
    const bad = await run([process.execPath, '-e', METRICS_COMMAND[4]!]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/\/metrics answered 500/);
  });

  it.runIf(hasPython)('the shell runs python when the image has it, node otherwise', async () => {
    const bin = (tools: Record<string, string>) => {
      const d = mkdtempSync(path.join(os.tmpdir(), 'mlship-top-path-'));
      made.push(d);
      for (const [name, target] of Object.entries(tools)) symlinkSync(target, path.join(d, name));
      return d;
    };
    const pythonPath = (await run(['sh', '-c', `command -v ${python}`])).stdout.trim();
    const withPython = bin({ python: pythonPath, node: process.execPath });
    const nodeOnly = bin({ node: process.execPath });
    status = 500; // the runtimes word the failure differently: which one ran shows
    const py = await run(['/bin/sh', ...METRICS_COMMAND.slice(1)], { PATH: withPython });
    expect(py.stderr).toMatch(/answered HTTP\/1\.[01] 500/);
    const js = await run(['/bin/sh', ...METRICS_COMMAND.slice(1)], { PATH: nodeOnly });
    expect(js.stderr).toMatch(/answered 500/);
    status = 200;
    expect((await run(['/bin/sh', ...METRICS_COMMAND.slice(1)], { PATH: nodeOnly })).stdout).toBe(BODY);
    expect((await run(['/bin/sh', ...METRICS_COMMAND.slice(1)], { PATH: withPython })).stdout).toBe(BODY);
  });
});
