// The one test that needs a real NVIDIA GPU: the engine's GPUs found through a container
// (real nvidia-smi), and a real torch CUDA image's labels checked against that GPU.
// It runs only where the engine has the NVIDIA runtime and a GPU answers. Everywhere else
// it is SKIPPED WITH ITS REASON, on CI too: the CI machine of this project has no GPU, so
// requiring one there would make CI impossible (every other test of the GPU paths runs
// there without a GPU: test/unit/deploy/gpu-fit.test.ts, test/docker/gpu-fit.test.ts).

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { exec } from '../../src/adapters/exec.js';
import { compareVersions } from '../../src/core/bakeoff/matrix.js';
import { runsOn } from '../../src/core/deploy/gpu-fit.js';
import { findEngineGpus } from '../../src/core/doctor/engine-gpus.js';
import type { BakeoffReport } from '../../src/generators/bakeoff-report-schema.js';
import { commitAll, GIT_ENV } from '../helpers/bakeoff-fixtures.js';
import { LOCAL_PYTHON_IMAGE, probeEngine } from '../helpers/docker.js';

const run = `gpu-real-${randomBytes(4).toString('hex')}`;
const { engine } = await probeEngine();
const info = engine ? await engine.info() : undefined;
const found =
  engine && info?.runtimes.includes('nvidia')
    ? await findEngineGpus(engine, info, { image: LOCAL_PYTHON_IMAGE, exec, runId: run })
    : undefined;
const reason = !engine
  ? 'no Docker engine'
  : !info?.runtimes.includes('nvidia')
    ? 'the engine has no NVIDIA runtime (no GPU host): expected on the CI machine, which has no GPU'
    : !found?.gpus.length
      ? `the engine has the NVIDIA runtime but no GPU answered (${found?.note})`
      : undefined;
if (reason) console.warn(`skipping the real-GPU test: ${reason}`);

afterAll(async () => {
  if (engine) await engine.removeByLabel(RUN_LABEL, run);
});

describe.skipIf(reason !== undefined)('a real GPU (skipped where there is none, CI included)', () => {
  it('nvidia-smi in a container reports the GPUs, their driver and compute capability', () => {
    expect(found!.source).toBe('engine');
    for (const g of found!.gpus) expect(g.computeCapability).toMatch(/^\d+\.\d+$/);
    expect(found!.driver).toMatch(/^\d{3}\.\d+/);
  });

  it("a real torch CUDA image's labels fit the GPU it runs on", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-gpu-real-'));
    const repo = path.join(dir, 'cand');
    mkdirSync(repo);
    writeFileSync(
      path.join(repo, 'example.py'),
      'import torch\nassert torch.cuda.is_available()\nprint(torch.cuda.get_device_capability(0), torch.cuda.get_arch_list())\n',
    );
    commitAll(repo);
    writeFileSync(
      path.join(dir, 'bakeoff.yaml'),
      'candidates:\n  real:\n    repo: ./cand\n    framework: torch\n    gpus: 1\n    run: python example.py\n    timeout: 10m\n',
    );
    const r = spawnSync(
      process.execPath,
      [
        path.resolve('bin/mlship.js'),
        '--json',
        'bakeoff',
        '--base-image',
        LOCAL_PYTHON_IMAGE,
        '--run-id',
        run,
        '--cache-dir',
        path.join(dir, 'cache'),
      ],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, ...GIT_ENV }, timeout: 3_600_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const c = (JSON.parse(r.stdout) as BakeoffReport).candidates[0]!;
    const gpu = c.image!.gpu!;
    expect(gpu.cuda).toMatch(/^\d+\.\d+$/);
    const cc = found!.gpus[0]!.computeCapability!;
    expect(runsOn(gpu.archs, cc)).toBeDefined();
    // It ran on this driver, so the driver it records as its minimum must not exceed it.
    expect(compareVersions(found!.driver!, gpu.minDriverCompat!)).toBeGreaterThanOrEqual(0);
  });
});
