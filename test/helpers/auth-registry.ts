// A real registry that requires a login (htpasswd, bcrypt), on loopback, for
// testing pushes with credentials. Started and stopped by the test that needs it.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface AuthRegistry {
  host: string;
  username: string;
  password: string;
  stop(): Promise<void>;
}

export async function startAuthRegistry(port: number): Promise<AuthRegistry> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-authreg-'));
  const username = 'mlship';
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  execFileSync('htpasswd', ['-Bbc', path.join(dir, 'htpasswd'), username, password], { stdio: 'ignore' });
  writeFileSync(
    path.join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log: { level: error }',
      `storage: { filesystem: { rootdirectory: ${dir}/data } }`,
      `http: { addr: "127.0.0.1:${port}" }`,
      `auth: { htpasswd: { realm: mlship-test, path: ${dir}/htpasswd } }`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], {
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}/v2/`;
  for (let i = 0; i < 50; i++) {
    try {
      const r = await fetch(url);
      if (r.status === 401) break; // up, and asking for credentials
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    host: `127.0.0.1:${port}`,
    username,
    password,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
