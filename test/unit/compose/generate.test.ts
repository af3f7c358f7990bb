import { cpSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateCompose, renderComposeYaml } from '../../../src/core/compose/generate.js';
import { FileExistsError } from '../../../src/io/errors.js';
import { composeValidator } from '../../helpers/compose-spec.js';
import { expectGolden } from '../../helpers/golden.js';

const FIXTURE = 'fixtures/compose/pipeline';

const golden = (file: string, actual: string) => expectGolden(path.join(FIXTURE, 'expected', file), actual);

const validate = composeValidator();

describe('compose generate', () => {
  it('golden: the pipeline fixture (compose.yaml, nginx.conf, front end)', async () => {
    const r = await generateCompose({ configFile: `${FIXTURE}/mlship.yaml`, force: false, dryRun: true });
    golden('compose.yaml', renderComposeYaml(r.stack));
    for (const f of r.stack.files) golden(path.basename(f.path), f.content);
    expect(r.written).toEqual([]);
  });

  it.skipIf(!validate)('validates against the official compose-spec JSON schema', async () => {
    const r = await generateCompose({ configFile: `${FIXTURE}/mlship.yaml`, force: false, dryRun: true });
    const doc = parse(renderComposeYaml(r.stack));
    expect(validate!(doc), JSON.stringify(validate!.errors, null, 2)).toBe(true);
  });

  it('carries readiness, start-up grace, ordering, pipeline URLs, weights, GPUs and limits', async () => {
    const { stack } = await generateCompose({
      configFile: `${FIXTURE}/mlship.yaml`,
      force: false,
      dryRun: true,
    });
    const s = stack.compose.services;
    expect(s.detector?.healthcheck.start_period).toBe('180s');
    expect(s.detector?.healthcheck.test.join(' ')).toContain('http://127.0.0.1:8080/readyz');
    expect(s['pose-3d']?.healthcheck.test.slice(0, 2)).toEqual(['CMD', 'node']);
    expect(s['pose-3d']?.healthcheck.test.join(' ')).toContain('http://127.0.0.1:9000/readyz');
    expect(s['pose-2d']?.environment?.DETECTOR_URL).toBe('http://detector:8080');
    expect(s['pose-3d']?.environment?.POSE_2D_URL).toBe('http://pose-2d:8080');
    expect(s['pose-2d']?.depends_on?.detector).toEqual({ condition: 'service_healthy' });
    expect(s.proxy?.depends_on).toMatchObject({
      detector: { condition: 'service_healthy' },
      frontend: { condition: 'service_healthy' },
    });
    expect(s.detector?.volumes).toEqual([
      {
        type: 'bind',
        source: '../../services/detector/weights/detector.onnx',
        target: '/models/detector.onnx',
        read_only: true,
      },
    ]);
    expect(s.detector?.deploy).toEqual({
      resources: {
        limits: { cpus: '2', memory: '4096m' },
        reservations: { devices: [{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }] },
      },
    });
    expect(s.proxy?.ports).toEqual(['127.0.0.1:8080:80']);
    // Every image is pinned; every service has a health check and a restart policy.
    for (const [name, svc] of Object.entries(s)) {
      expect(svc.image, name).toMatch(/:[\w.-]+$/);
      expect(svc.image, name).not.toMatch(/:latest$/);
      expect(svc.healthcheck.test.length, name).toBeGreaterThan(1);
      expect(svc.restart, name).toBeDefined();
    }
    // No secret value in the compose file: only references to the .env file.
    const text = renderComposeYaml(stack);
    expect(text).toContain('${POSTGRES_PASSWORD:?');
    expect(stack.envVariables).toEqual(['POSTGRES_PASSWORD', 'STORAGE_PASSWORD']);
  });

  it('a stack with GPU services gets gpu and cpu profiles: CPU copies answer to the same names', async () => {
    const { stack } = await generateCompose({
      configFile: `${FIXTURE}/mlship.yaml`,
      force: false,
      dryRun: true,
    });
    const s = stack.compose.services;
    expect(stack.profiles).toEqual(['gpu', 'cpu']);
    expect(Object.keys(s).sort()).toEqual([
      'database',
      'detector',
      'detector-cpu',
      'frontend',
      'pose-2d',
      'pose-2d-cpu',
      'pose-3d',
      'pose-3d-cpu',
      'proxy',
      'proxy-cpu',
      'storage',
    ]);
    expect(s.detector?.profiles).toEqual(['gpu']);
    expect(s['detector-cpu']?.profiles).toEqual(['cpu']);
    expect(s['detector-cpu']?.networks).toEqual({ default: { aliases: ['detector'] } });
    // The CPU copy keeps the limits but asks for no GPU.
    expect(s['detector-cpu']?.deploy).toEqual({ resources: { limits: { cpus: '2', memory: '4096m' } } });
    expect(Object.keys(s['pose-2d-cpu']?.depends_on ?? {})).toEqual(['detector-cpu', 'database', 'storage']);
    expect(Object.keys(s['proxy-cpu']?.depends_on ?? {})).toEqual([
      'detector-cpu',
      'pose-2d-cpu',
      'pose-3d-cpu',
      'frontend',
    ]);
    // Services that depend on no model run in every profile.
    for (const n of ['database', 'storage', 'frontend']) expect(s[n]?.profiles, n).toBeUndefined();
  });

  it('writes .env once (0600, git-ignored), keeps its secrets, and never replaces a hand-written compose.yaml', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-compose-'));
    cpSync(FIXTURE, dir, { recursive: true });
    const cfg = path.join(dir, 'mlship.yaml');
    const first = await generateCompose({ configFile: cfg, force: false, dryRun: false });
    expect(first.envFile.created).toEqual(['POSTGRES_PASSWORD', 'STORAGE_PASSWORD']);
    const env = readFileSync(first.envFile.path, 'utf8');
    expect(statSync(first.envFile.path).mode & 0o777).toBe(0o600);
    expect(env).toMatch(/^POSTGRES_PASSWORD=[\w-]{32}$/m);
    expect(readFileSync(path.join(first.outDir, '.gitignore'), 'utf8')).toBe('.env\n');
    expect(readFileSync(first.composeFile, 'utf8')).not.toContain(/POSTGRES_PASSWORD=([\w-]+)/.exec(env)![1]);
    const second = await generateCompose({ configFile: cfg, force: false, dryRun: false });
    expect(second.envFile.kept).toEqual(['POSTGRES_PASSWORD', 'STORAGE_PASSWORD']);
    expect(readFileSync(second.envFile.path, 'utf8')).toBe(env);
    writeFileSync(first.composeFile, 'services: {}\n');
    await expect(generateCompose({ configFile: cfg, force: false, dryRun: false })).rejects.toBeInstanceOf(
      FileExistsError,
    );
    expect(readFileSync(first.composeFile, 'utf8')).toBe('services: {}\n');
    await generateCompose({ configFile: cfg, force: true, dryRun: false });
    expect(readFileSync(first.composeFile, 'utf8')).toMatch(/^# Generated by `mlship compose generate`/);
  });

  it('a service without a Dockerfile is a usage error that says how to fix it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-compose-'));
    writeFileSync(path.join(dir, 'mlship.yaml'), 'name: x\nservices:\n  m:\n    path: services/m\n');
    await expect(
      generateCompose({ configFile: path.join(dir, 'mlship.yaml'), force: false, dryRun: true }),
    ).rejects.toMatchObject({
      code: 'USAGE',
      hint: expect.stringMatching(/mlship wrap/),
    });
  });
});
