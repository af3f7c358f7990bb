// Weights downloaded at start-up instead of mounted: the wrapped service fetches
// s3://… once (from a local S3, moto, reached through the bridge gateway),
// checks its SHA-256, and refuses to start on a mismatch.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { buildService, serve } from '../../src/core/serve/serve.js';
import { runWrap } from '../../src/core/wrap/wrap.js';
import { OperationFailedError } from '../../src/io/errors.js';
import { LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { bridgeGateway, freePort } from '../helpers/net.js';
import { hostPredict, python, quietTasks } from './wrap-helpers.js';

const run = `wrap-w-${randomBytes(4).toString('hex')}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-weights-'));
const TAG = `mlship-test/iris-s3:${run}`;
const IRIS = path.resolve('fixtures/wrap/iris/model.joblib');
const BUCKET = 'mlship-test-weights';
let engine: DockerEngine | undefined;
let moto: ChildProcess | undefined;
let port = 0;

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer`);
}

beforeAll(async () => {
  engine = await requireEngine();
  if (!engine) return;
  await requireImage(engine, LOCAL_PYTHON_IMAGE);
  port = await freePort('0.0.0.0');
  moto = spawn(path.resolve('.venv/bin/moto_server'), ['-H', '0.0.0.0', '-p', String(port)], {
    stdio: 'ignore',
  });
  await waitHttp(`http://127.0.0.1:${port}/`);
  python(
    `
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
s3.create_bucket(Bucket=sys.argv[2])
s3.upload_file(sys.argv[3], sys.argv[2], "iris/model.joblib")
`,
    [`http://127.0.0.1:${port}`, BUCKET, IRIS],
  );
});

afterAll(async () => {
  moto?.kill('SIGTERM');
  if (engine) {
    await engine.removeByLabel(RUN_LABEL, run);
    await engine.removeImage(TAG, true);
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe.runIf(await requireEngine())('weights from s3:// with a checksum', () => {
  const out = path.join(tmp, 'iris-s3');
  const env = () => ({
    AWS_ENDPOINT_URL: `http://${bridgeGateway()}:${port}`,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_DEFAULT_REGION: 'us-east-1',
  });

  beforeAll(async () => {
    await runWrap({
      cwd: process.cwd(),
      model: IRIS,
      weightsUrl: `s3://${BUCKET}/iris/model.joblib`,
      out,
      baseImage: LOCAL_PYTHON_IMAGE,
      workers: 2,
      force: false,
      dryRun: false,
    });
    await buildService({ dir: out, image: TAG }, { engine: engine!, tasks: quietTasks() });
  });

  it('downloads the weights once at start-up and serves them (nothing mounted)', async () => {
    const svc = await serve(
      { dir: out, image: TAG, build: false, hostPort: 0, runLabel: run, env: env() },
      { engine: engine!, tasks: quietTasks() },
    );
    try {
      expect(svc.result.prediction).toEqual(hostPredict(IRIS, [[5.1, 3.5, 1.4, 0.2]])[0]);
      const { mounts } = await svc.handle.inspect();
      expect(mounts).toEqual([]);
    } finally {
      await svc.handle.remove();
    }
  });

  it('refuses to start when the file does not match the checksum, and says so', async () => {
    const err = await serve(
      {
        dir: out,
        image: TAG,
        build: false,
        hostPort: 0,
        runLabel: run,
        env: { ...env(), MODEL_SHA256: '0'.repeat(64) },
      },
      { engine: engine!, tasks: quietTasks() },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationFailedError);
    expect((err as OperationFailedError).code).toBe('SERVICE_EXITED');
    expect((err as OperationFailedError).details.join('\n')).toContain('does not match MODEL_SHA256');
  });
});
