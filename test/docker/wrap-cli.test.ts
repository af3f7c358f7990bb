// The README Quick start, through the compiled CLI against a real engine:
// one command wraps the bundled iris model, builds, runs, and prints a prediction.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DockerEngine } from '../../src/adapters/docker/engine.js';
import { SERVICE_LABEL } from '../../src/core/serve/serve.js';
import { LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { hostPredict } from './wrap-helpers.js';

const name = `iris-qs-${randomBytes(3).toString('hex')}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-cli-'));
const BIN = path.resolve('bin/mlship.js');
let engine: DockerEngine | undefined;

function mlship(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env: options.env ?? { ...process.env, CI: 'true' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  engine = await requireEngine();
  if (engine) await requireImage(engine, LOCAL_PYTHON_IMAGE);
});

afterAll(async () => {
  if (engine) {
    await engine.removeByLabel(SERVICE_LABEL, name);
    await engine.removeImage(`mlship/${name}:latest`, true);
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe.runIf(await requireEngine())('Quick start: mlship wrap … --run', () => {
  it('wraps, builds, runs, waits for readiness and prints the prediction and URL', async () => {
    const out = path.join(tmp, 'iris-service');
    const r = await mlship([
      'wrap',
      'fixtures/wrap/iris/model.joblib',
      '--out',
      out,
      '--name',
      name,
      '--base-image',
      LOCAL_PYTHON_IMAGE,
      '--run',
      '--detach',
      '--host-port',
      '0',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const expected = hostPredict(path.resolve('fixtures/wrap/iris/model.joblib'), [[5.1, 3.5, 1.4, 0.2]])[0];
    expect(r.stdout).toContain(`prediction: ${JSON.stringify(expected)}`);
    const url = /ready in [\d.]+ s: (http:\/\/127\.0\.0\.1:\d+)/.exec(r.stdout)?.[1];
    expect(url).toBeDefined();
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(r.stderr).toMatch(/build mlship\//); // progress went to stderr, the result to stdout
    const running = await engine!.listByLabel(SERVICE_LABEL, name);
    expect(running).toHaveLength(1);
  });

  it('--build rebuilds from cache and reports it; an unchanged re-wrap writes nothing', async () => {
    const out = path.join(tmp, 'iris-service');
    const r = await mlship([
      'wrap',
      'fixtures/wrap/iris/model.joblib',
      '--out',
      out,
      '--name',
      name,
      '--base-image',
      LOCAL_PYTHON_IMAGE,
      '--build',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.files.every((f: { action: string }) => f.action === 'unchanged')).toBe(true);
    expect(result.build.steps.length).toBeGreaterThan(5);
    expect(result.build.cachedSteps).toBeGreaterThanOrEqual(result.build.steps.length - 2); // only the label step may change
    expect(result.image).toBe(`mlship/${name}:latest`);
  });

  it('with no Python of its own on the machine, wrap loads the model in the service image built before', async () => {
    // A machine with only node on PATH and no virtualenv: the image is the service's own runtime.
    const { VIRTUAL_ENV: _v, ...env } = process.env;
    const bare = { ...env, PATH: path.dirname(process.execPath), CI: 'true' };
    const dir = path.join(tmp, 'no-python');
    mkdirSync(dir);
    copyFileSync('fixtures/wrap/iris/model.joblib', path.join(dir, 'model.joblib'));
    copyFileSync('fixtures/wrap/iris/example.json', path.join(dir, 'example.json'));
    const ok = await mlship(['wrap', 'model.joblib', '--name', name, '--out', 'svc'], {
      cwd: dir,
      env: bare,
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(
      `checked      model.joblib: loaded by image mlship/${name}:latest (scikit-learn 1.9.1): DecisionTreeClassifier, 4 features; predicts 0`,
    );
    const corrupt = readFileSync(path.join(dir, 'model.joblib'));
    corrupt.fill(0xff, 200, 260);
    writeFileSync(path.join(dir, 'corrupt.joblib'), corrupt);
    const bad = await mlship(['wrap', 'corrupt.joblib', '--name', name, '--out', 'svc2'], {
      cwd: dir,
      env: bare,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      new RegExp(
        `^error: corrupt\\.joblib could not be loaded by image mlship/${name}:latest \\(scikit-learn 1\\.9\\.1\\): `,
      ),
    );
    expect(existsSync(path.join(dir, 'svc2'))).toBe(false);
    expect(await engine!.listByLabel('dev.mlship.role', 'wrap-check')).toEqual([]);
  });

  it('mlship serve in the foreground: Ctrl-C removes the container and exits 130, with no exit-code warning', async () => {
    const before = (await engine!.listByLabel(SERVICE_LABEL, name)).length;
    const child = spawn(process.execPath, [BIN, 'serve', path.join(tmp, 'iris-service'), '--port', '0'], {
      env: { ...process.env, CI: 'true' },
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready: ${stderr}`)), 120_000);
      child.stdout.on('data', (c) => {
        stdout += c;
        if (stdout.includes('Ctrl-C stops')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', () => reject(new Error(`serve exited early: ${stderr}`)));
    });
    expect((await engine!.listByLabel(SERVICE_LABEL, name)).length).toBe(before + 1);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/SIGINT: cleaning up/);
    expect(stderr).not.toMatch(/exited with code/);
    expect((await engine!.listByLabel(SERVICE_LABEL, name)).length).toBe(before);
  });
});
