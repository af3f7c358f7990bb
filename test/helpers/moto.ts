// moto in server mode on loopback: real AWS APIs (ECR, ECS, EC2, CloudWatch Logs)
// for integration tests, never a mocked SDK. Installed by .ci/run (requirements-dev.txt).

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CI } from './docker.js';
import { freePort } from './net.js';

export interface Moto {
  endpoint: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Fake credentials with recognisable values, so tests can scan output for them. */
export const FAKE_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'AKIAMLSHIPTESTKEY000',
  AWS_SECRET_ACCESS_KEY: 'mlship-test-secret-key-never-printed-0123',
  AWS_SESSION_TOKEN: 'mlship-test-session-token-never-printed-4567',
};

/**
 * `host: '0.0.0.0'` when containers must reach it too (through host.docker.internal); the
 * endpoint returned is always the loopback one.
 */
export async function startMoto(options: { host?: string } = {}): Promise<Moto | undefined> {
  const bin = path.resolve('.venv/bin/moto_server');
  if (!existsSync(bin)) {
    if (CI)
      throw new Error('CI is set but .venv/bin/moto_server is missing (pip install -r requirements-dev.txt)');
    console.warn(
      'skipping the tests that need moto: .venv/bin/moto_server is missing (pip install -r requirements-dev.txt)',
    );
    return undefined;
  }
  const host = options.host ?? '127.0.0.1';
  const port = await freePort(host);
  const child: ChildProcess = spawn(bin, ['-H', host, '-p', String(port)], {
    stdio: 'ignore',
    // AWS managed policies (e.g. AmazonEC2ContainerServiceforEC2Role) exist in every account.
    env: { ...process.env, MOTO_IAM_LOAD_MANAGED_POLICIES: 'true' },
  });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).ok) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    endpoint,
    env: { ...FAKE_CREDENTIALS, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
