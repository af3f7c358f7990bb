// The published artifact: `npm pack`, install the tarball in an empty folder,
// and run the installed `mlship` against the real engine.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireEngine } from '../helpers/docker.js';

const engine = await requireEngine();
let dir: string;
let bin: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-pack-'));
  const npmEnv = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` };
  execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], {
    env: npmEnv,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
  execFileSync('npm', ['init', '-y'], { cwd: dir, env: npmEnv, stdio: 'ignore' });
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(dir, tgz)], {
    cwd: dir,
    env: npmEnv,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  bin = path.join(dir, 'node_modules', '.bin', 'mlship');
}, 300_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.runIf(engine)('installed from the packed tarball', () => {
  it('runs --version, --help and doctor against the real engine', () => {
    const env = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` };
    const version = spawnSync(bin, ['--version'], { encoding: 'utf8', env });
    expect(version.status).toBe(0);
    expect(spawnSync(bin, ['--help'], { encoding: 'utf8', env }).stdout).toContain('doctor');
    const doctor = spawnSync(bin, ['doctor', '--json', '--skip', 'aws'], { encoding: 'utf8', env, cwd: dir });
    const report = JSON.parse(doctor.stdout) as { ok: boolean; checks: { id: string; status: string }[] };
    expect(report.checks.find((c) => c.id === 'docker')?.status).toBe('ok');
    expect(doctor.status).toBe(report.ok ? 0 : 1);
  });

  it('ships the schema and templates with the package', () => {
    const root = path.join(dir, 'node_modules', 'mlship');
    expect(readdirSync(path.join(root, 'schema'))).toContain('mlship.schema.json');
    expect(readdirSync(root)).toEqual(expect.arrayContaining(['bin', 'dist', 'templates', 'package.json']));
  });

  it('mlship init in the project points editors at the installed schema, by a path that resolves', () => {
    const env = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` };
    const r = spawnSync(bin, ['init', '--yes', '--name', 'demo'], { encoding: 'utf8', env, cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const first = readFileSync(path.join(dir, 'mlship.yaml'), 'utf8').split('\n')[0];
    expect(first).toBe('# yaml-language-server: $schema=./node_modules/mlship/schema/mlship.schema.json');
    const schema = JSON.parse(
      readFileSync(path.join(dir, 'node_modules/mlship/schema/mlship.schema.json'), 'utf8'),
    );
    expect(schema.title).toBe('mlship.yaml');
  });
});
