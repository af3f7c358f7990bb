// GPU fit against the real engine, without a GPU: a candidate whose image holds a STUB
// standing in for torch.cuda at build time (fixtures/bakeoff/candidates/stub-torch-cuda:
// a torch "built" for CUDA 12.8 with sm_70 and sm_75 only) gets its dev.mlship.cuda.*
// labels; pushed to the local registry and gone from the engine, its labels are read from
// the registry's image config (no pull) by `doctor --image` and by the `deploy ecs` plan,
// which refuse an A10G (g5) with the talk's "Unknown CUDA arch (8.6)" and accept a T4.

import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_LABEL } from '../../src/adapters/docker/engine.js';
import { gpuFitOfBuiltImages } from '../../src/core/deploy/gpu-fit.js';
import { buildStackImages } from '../../src/core/deploy/images.js';
import { planEcs } from '../../src/core/deploy/plan.js';
import type { BakeoffReport } from '../../src/generators/bakeoff-report-schema.js';
import { PlainTaskRunner } from '../../src/io/progress.js';
import { createStyler } from '../../src/io/style.js';
import { bakeoffFixture } from '../helpers/bakeoff-fixtures.js';
import { runCli } from '../helpers/cli-process.js';
import { dockerCli, LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';

const engine = await requireEngine();
const run = `gpufit-${randomBytes(4).toString('hex')}`;
const PUSHED = `127.0.0.1:5000/mlship-test/stub-torch:${run}`;
let dir = '';
let report: BakeoffReport;

const cli = (args: string[]) => runCli(args, { cwd: dir });

beforeAll(async () => {
  if (!engine) return;
  await requireImage(engine, LOCAL_PYTHON_IMAGE);
  dir = bakeoffFixture().dir;
  writeFileSync(
    path.join(dir, 'stub.yaml'),
    'candidates:\n  stub-torch-cuda:\n    repo: ./candidates/stub-torch-cuda\n    run: python example.py\n    timeout: 60s\n',
  );
  const r = await cli([
    '--json',
    'bakeoff',
    'stub.yaml',
    '--base-image',
    LOCAL_PYTHON_IMAGE,
    '--cache-dir',
    path.join(dir, 'cache'),
    '--run-id',
    run,
  ]);
  if (r.code !== 0) throw new Error(`bakeoff failed: ${r.stderr}`);
  report = JSON.parse(r.stdout) as BakeoffReport;
}, 600_000);

afterAll(async () => {
  if (!engine) return;
  await engine.removeByLabel(RUN_LABEL, run);
  await engine.removeImage(PUSHED, true).catch(() => undefined);
  const ids = dockerCli(['images', '-q', '--filter', `label=${RUN_LABEL}=${run}`])
    .split('\n')
    .filter(Boolean);
  for (const id of new Set(ids)) await engine.removeImage(id, true).catch(() => undefined);
});

describe.runIf(engine)('GPU fit (real engine and registry, stub torch, no GPU)', () => {
  it('the candidate image records its CUDA build as labels, read at build time from the (stub) framework', async () => {
    const c = report.candidates[0]!;
    expect(c.status).toBe('passed');
    expect(c.log.lines).toContain('torch 2.10.0+cu128.stub, CUDA 12.8, archs sm_70 sm_75');
    expect(c.image?.gpu).toEqual({
      framework: 'torch 2.10.0+cu128.stub',
      cuda: '12.8',
      archs: ['sm_70', 'sm_75'],
      minDriver: '570.124.06',
      minDriverCompat: '525.60.13',
    });
    const labels = (await engine!.inspectImage(c.image!.id)).labels;
    expect(labels).toMatchObject({
      'dev.mlship.cuda.version': '12.8',
      'dev.mlship.cuda.archs': 'sm_70,sm_75',
      'dev.mlship.cuda.min-driver': '570.124.06',
      'dev.mlship.framework': 'torch 2.10.0+cu128.stub',
      [RUN_LABEL]: run,
    });
    // The tag names the labelled image; bakeoff.lock records it.
    expect((await engine!.inspectImage(c.image!.tag)).id).toBe(c.image!.id);
    // No GPU on this engine's host, and who said so.
    expect(report.host.gpus).toEqual([]);
    expect(report.host.gpuSource).toBe('none');
  });

  it('doctor --image reads the labels from the registry, without pulling, and answers for two instance types', async () => {
    const c = report.candidates[0]!;
    await engine!.tag(c.image!.id, PUSHED.slice(0, PUSHED.lastIndexOf(':')), run);
    await engine!.push(PUSHED, undefined);
    await engine!.removeImage(PUSHED);
    expect(await engine!.imageExists(PUSHED)).toBe(false);

    const g5 = await cli(['--json', 'doctor', '--image', PUSHED, '--gpu-instance', 'g5.xlarge']);
    expect(g5.code, g5.stderr).toBe(1);
    const checks = Object.fromEntries(
      (
        JSON.parse(g5.stdout) as { checks: { id: string; status: string; detail: string; fix?: string }[] }
      ).checks.map((x) => [x.id, x]),
    );
    expect(checks.image?.detail).toMatch(
      /torch 2\.10\.0\+cu128\.stub: CUDA 12\.8, built for sm_70, sm_75.*registry's image config, no pull/,
    );
    expect(checks['gpu-fit']).toMatchObject({ status: 'fail' });
    expect(checks['gpu-fit']?.fix).toContain('Unknown CUDA arch (8.6) or GPU not supported');
    expect(checks['gpu-fit']?.fix).toMatch(/g4dn \(T4, 7\.5\)/);

    const t4 = await cli(['--json', 'doctor', '--image', PUSHED, '--gpu-instance', 'g4dn.xlarge']);
    expect(t4.code, t4.stderr).toBe(0);
    expect(t4.stdout).toMatch(/fits: torch 2\.10\.0\+cu128\.stub CUDA 12\.8, built for it/);
    // Still not on the engine: nothing was pulled.
    expect(await engine!.imageExists(PUSHED)).toBe(false);
  });

  it('the deploy ecs plan checks the fit from the registry: g5 refused (exit 2, with the fix), g4dn planned with the fit shown', async () => {
    const stack = path.join(dir, 'pose');
    mkdirSync(stack, { recursive: true });
    writeFileSync(
      path.join(stack, 'compose.yaml'),
      `services:\n  detector:\n    image: ${PUSHED}\n    deploy:\n      resources:\n        limits: { memory: 6g }\n        reservations:\n          devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }]\n`,
    );
    const plan = (type: string) =>
      cli([
        'deploy',
        'ecs',
        '-f',
        'pose/compose.yaml',
        '--region',
        'eu-west-1',
        '--account-id',
        '123456789012',
        '--tag',
        't1',
        '--gpu-instance',
        type,
        '--force',
      ]);
    const g5 = await plan('g5.xlarge');
    expect(g5.code, g5.stderr).toBe(2);
    expect(g5.stderr).toMatch(/the GPU image does not fit g5\.xlarge: nothing was created/);
    expect(g5.stderr).toContain('Unknown CUDA arch (8.6) or GPU not supported');
    const t4 = await plan('g4dn.xlarge');
    expect(t4.code, t4.stderr).toBe(0);
    expect(t4.stdout).toMatch(
      /GPU fit of 127\.0\.0\.1:5000\/mlship-test\/stub-torch:\S+ on g4dn\.xlarge \(T4, 7\.5\): fits/,
    );
    console.log(`deploy ecs plan with the GPU fit read from the registry: ${t4.ms} ms (the whole command)`);
  });

  it('deploy ecs --apply labels the GPU images it builds, so the fit of an image built from source is known', async () => {
    const stack = path.join(dir, 'built');
    mkdirSync(path.join(stack, 'detector'), { recursive: true });
    cpSync(path.join(dir, 'candidates/stub-torch-cuda/torch'), path.join(stack, 'detector/stub/torch'), {
      recursive: true,
    });
    writeFileSync(
      path.join(stack, 'detector/Dockerfile'),
      `FROM ${LOCAL_PYTHON_IMAGE}\nCOPY stub /opt/stub\nENV PYTHONPATH=/opt/stub\nCMD ["sleep", "infinity"]\n`,
    );
    writeFileSync(
      path.join(stack, 'compose.yaml'),
      `name: ${run}\nservices:\n  detector:\n    build: ./detector\n    labels: { ${RUN_LABEL}: ${run} }\n    deploy:\n      resources:\n        limits: { memory: 6g }\n        reservations:\n          devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }]\n`,
    );
    const plan = await planEcs({
      file: path.join(stack, 'compose.yaml'),
      region: 'eu-west-1',
      accountId: '123456789012',
      imageTag: 't1',
      force: true,
      writeFiles: false,
    });
    const titles: string[] = [];
    await buildStackImages(plan, {
      engine: engine!,
      tasks: new PlainTaskRunner(
        new Writable({
          write: (chunk, _enc, done) => {
            titles.push(String(chunk));
            done();
          },
        }),
        createStyler(0),
      ),
    });
    const tag = plan.builds[0]!.tag;
    try {
      const { labels } = await engine!.inspectImage(tag);
      expect(labels).toMatchObject({
        'dev.mlship.framework': 'torch 2.10.0+cu128.stub',
        'dev.mlship.cuda.version': '12.8',
        'dev.mlship.cuda.archs': 'sm_70,sm_75',
        'dev.mlship.stack': run,
      });
      expect(titles.join('\n')).toContain('CUDA 12.8 recorded for the GPU fit');
      // A re-apply of the same source labels the same way: the same image, nothing new to push.
      const first = (await engine!.inspectImage(tag)).id;
      await buildStackImages(plan, {
        engine: engine!,
        tasks: new PlainTaskRunner(new Writable({ write: (_c, _e, done) => done() }), createStyler(0)),
      });
      expect((await engine!.inspectImage(tag)).id).toBe(first);
      // The check after the build reads them: sm_70/75 only runs on a T4, not on an A10G.
      expect(await gpuFitOfBuiltImages(plan, { detector: tag }, 'g4dn.xlarge', engine!)).toEqual([]);
      const g5 = await gpuFitOfBuiltImages(plan, { detector: tag }, 'g5.xlarge', engine!);
      expect(g5.join('\n')).toContain('Unknown CUDA arch (8.6)');
      expect((await engine!.listByLabel(RUN_LABEL, `mlship-deploy-${plan.stack}`)).length).toBe(0);
    } finally {
      await engine!.removeImage(tag, true).catch(() => undefined);
    }
  }, 300_000);

  it('doctor --image of an image without labels probes it in a container', async () => {
    const r = await cli(['--json', 'doctor', '--image', LOCAL_PYTHON_IMAGE]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/no framework: a CPU build \(from probed: its frameworks asked in a container/);
    expect((await engine!.listByLabel(RUN_LABEL, 'mlship-doctor')).length).toBe(0);
  });
});
