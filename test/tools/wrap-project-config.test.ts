// `mlship wrap` inside a project: mlship.yaml's base images (mirrors, air-gapped
// machines) and the service whose path is the output directory apply without --service.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

describe('mlship wrap in a project', () => {
  it('uses base_images.python and the matching service settings from mlship.yaml', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-project-'));
    writeFileSync(
      path.join(dir, 'mlship.yaml'),
      [
        'name: demo',
        'services:',
        '  iris:',
        '    path: services/iris',
        '    startup_grace_seconds: 240',
        'base_images:',
        '  python: registry.internal/python:3.11-slim',
        '',
      ].join('\n'),
    );
    const r = spawnSync(
      process.execPath,
      [
        path.resolve('bin/mlship.js'),
        'wrap',
        path.resolve('fixtures/wrap/iris/model.joblib'),
        '--out',
        'services/iris',
        '--no-check', // loading the model is tested in checks.test.ts; here, the settings
      ],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const dockerfile = readFileSync(path.join(dir, 'services/iris/Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM registry\.internal\/python:3\.11-slim$/m);
    expect(dockerfile).toContain('--start-period=240s');
    // An explicit flag still wins over the project.
    const flag = spawnSync(
      process.execPath,
      [
        path.resolve('bin/mlship.js'),
        'wrap',
        path.resolve('fixtures/wrap/iris/model.joblib'),
        '--out',
        'other',
        '--base-image',
        'mirror/python:3.11-slim',
        '--no-check',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(flag.status, flag.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'other/Dockerfile'), 'utf8')).toMatch(
      /^FROM mirror\/python:3\.11-slim$/m,
    );
  });

  it('a broken mlship.yaml is reported with its line, not ignored', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-project-'));
    writeFileSync(path.join(dir, 'mlship.yaml'), 'name: demo\nbase_image:\n  python: x\n');
    const r = spawnSync(
      process.execPath,
      [path.resolve('bin/mlship.js'), 'wrap', path.resolve('fixtures/wrap/iris/model.joblib')],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      'mlship.yaml:2:1 base_image: unknown field (fix: did you mean "base_images"?)',
    );
  });
});
