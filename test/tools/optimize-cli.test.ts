// `mlship optimize` as users run it: the compiled bin, exit codes, streams, and
// files on disk (never changed without the write flag).

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../unit/optimize/helpers.js';

const BIN = path.resolve('bin/mlship.js');
const tmp: string[] = [];

function mlship(args: string[], cwd: string) {
  const { NO_COLOR: _n, FORCE_COLOR: _f, ...base } = process.env;
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...base, CI: 'true', NO_COLOR: '1' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function copyFixture(name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `mlship-optimize-${name}-`));
  tmp.push(dir);
  cpSync(path.join(FIXTURES, name, 'context'), dir, { recursive: true });
  return dir;
}

beforeAll(() => {
  if (!existsSync('dist/cli/commands/optimize.js'))
    throw new Error('dist/ is missing or stale: run `npm run build` before the tests');
});
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

describe('mlship optimize (lint)', () => {
  it('prints file:line findings; --check exits 1 on findings and 0 when clean', () => {
    const dir = copyFixture('naive-python');
    const r = mlship(['optimize', '--check', '--large-file', '16KB'], dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^Dockerfile:4 source-before-deps /m);
    expect(r.stdout).toMatch(/^Dockerfile:6 pip-cache /m);
    expect(r.stdout).toMatch(/fix: /);
    const plain = mlship(['optimize', '--large-file', '16KB'], dir);
    expect(plain.code).toBe(0);
    expect(mlship(['optimize', '--check'], copyFixture('clean')).code).toBe(0);
  });

  it('marks a finding the build fails on as an error, in text and in --json', () => {
    const dir = copyFixture('python-missing');
    const text = mlship(['optimize'], dir);
    expect(text.stdout).toMatch(/^Dockerfile:5 error python-missing pip is not installed/m);
    const json = JSON.parse(mlship(['--json', 'optimize'], dir).stdout) as {
      findings: { rule: string; severity?: string }[];
    };
    expect(json.findings.find((f) => f.rule === 'python-missing')?.severity).toBe('error');
    expect(
      json.findings.filter((f) => f.rule !== 'python-missing').every((f) => f.severity === undefined),
    ).toBe(true);
  });

  it('--json prints one result object on stdout', () => {
    const r = mlship(['--json', 'optimize', 'Dockerfile', '--check'], copyFixture('apt-tools'));
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      findings: { rule: string; line: number; fix: string }[];
    };
    expect(out.ok).toBe(false);
    expect(out.findings.map((f) => `${f.line}:${f.rule}`)).toContain('2:consecutive-run');
    expect(out.findings.every((f) => f.fix.length > 0)).toBe(true);
  });

  it('a malformed Dockerfile is a usage error with its line, not a stack trace', () => {
    const r = mlship(['optimize'], copyFixture('malformed'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Dockerfile:4: unknown instruction "RUNN"');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('rules are silenced per project in mlship.yaml and with --ignore; unknown ids are refused', () => {
    const dir = copyFixture('naive-python');
    writeFileSync(
      path.join(dir, 'mlship.yaml'),
      'version: 1\nname: demo\noptimize:\n  ignore: [root-user]\n',
    );
    const r = mlship(['--json', 'optimize', '--ignore', 'pip-cache'], dir);
    expect(r.code).toBe(0);
    const rules = (JSON.parse(r.stdout) as { findings: { rule: string }[] }).findings.map((f) => f.rule);
    expect(rules).not.toContain('root-user');
    expect(rules).not.toContain('pip-cache');
    expect(rules).toContain('source-before-deps');
    const bad = mlship(['optimize', '--ignore', 'no-such-rule'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('no-such-rule');
  });

  it('--compare needs --layers', () => {
    expect(mlship(['optimize', '--compare', 'x:1'], copyFixture('clean')).code).toBe(2);
  });
});

describe('mlship optimize --write', () => {
  it('shows the diff and writes nothing when not on a terminal without --yes', () => {
    const dir = copyFixture('naive-python');
    const before = readFileSync(path.join(dir, 'Dockerfile'), 'utf8');
    const r = mlship(['optimize', '--write', '--large-file', '16KB'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('+COPY requirements.txt /app/requirements.txt');
    expect(r.stdout).toContain('dry run: nothing written');
    expect(readFileSync(path.join(dir, 'Dockerfile'), 'utf8')).toBe(before);
    expect(existsSync(path.join(dir, '.dockerignore'))).toBe(false);
  });

  it('--dry-run wins over --yes', () => {
    const dir = copyFixture('apt-tools');
    const before = readFileSync(path.join(dir, 'Dockerfile'), 'utf8');
    const r = mlship(['--yes', 'optimize', '--write', '--dry-run'], dir);
    expect(r.stdout).toContain('dry run');
    expect(readFileSync(path.join(dir, 'Dockerfile'), 'utf8')).toBe(before);
  });

  it('--yes writes the Dockerfile and .dockerignore (the golden rewrite) and prints the weights instructions', () => {
    const dir = copyFixture('naive-python');
    const r = mlship(['--yes', 'optimize', '--write', '--large-file', '16KB'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('wrote Dockerfile and .dockerignore');
    expect(r.stdout).toContain('docker run -v "$PWD/model.pt:/app/model.pt:ro"');
    const golden = path.join(FIXTURES, 'naive-python');
    expect(readFileSync(path.join(dir, 'Dockerfile'), 'utf8')).toBe(
      readFileSync(path.join(golden, 'expected.Dockerfile'), 'utf8'),
    );
    expect(readFileSync(path.join(dir, '.dockerignore'), 'utf8')).toBe(
      readFileSync(path.join(golden, 'expected.dockerignore'), 'utf8'),
    );
    // A second run finds nothing more to rewrite.
    const again = mlship(['--yes', 'optimize', '--write', '--large-file', '16KB'], dir);
    expect(again.stdout).toContain('nothing to rewrite safely');
  });
});

describe('mlship optimize --write --slim-base', () => {
  it('without it, reports the full base as not done and names the flag; alone it is a usage error', () => {
    const dir = copyFixture('slim-base');
    const r = mlship(['optimize', '--write', '--dry-run'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^not done line 2: \[base-not-slim\] FROM mlship-test\/python:3\.11 kept: .*--slim-base/m,
    );
    expect(r.stdout).not.toContain('+FROM mlship-test/python:3.11-slim');
    const bad = mlship(['optimize', '--slim-base'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--slim-base needs --write');
  });

  it('writes the golden rebased Dockerfile and prints what to check', () => {
    const dir = copyFixture('slim-base');
    const r = mlship(['--yes', 'optimize', '--write', '--slim-base'], dir);
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(dir, 'Dockerfile'), 'utf8')).toBe(
      readFileSync(path.join(FIXTURES, 'slim-base', 'expected.Dockerfile'), 'utf8'),
    );
    expect(r.stdout).toMatch(/^changed {2}line 2: \[base-not-slim\] final stage rebased/m);
    expect(r.stdout).toMatch(/^check: the final image now runs on mlship-test\/python:3\.11-slim/m);
    expect(r.stdout).toMatch(/^check: line 7 stays in the final stage/m);
    const json = mlship(
      ['--json', 'optimize', '--write', '--slim-base', '--dry-run'],
      copyFixture('slim-base'),
    );
    expect((JSON.parse(json.stdout) as { checks: string[] }).checks).toHaveLength(2);
  });

  it('optimize.slim_base in mlship.yaml turns it on for the project', () => {
    const dir = copyFixture('slim-base');
    writeFileSync(path.join(dir, 'mlship.yaml'), 'version: 1\nname: demo\noptimize:\n  slim_base: true\n');
    const r = mlship(['--yes', 'optimize', '--write'], dir);
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(dir, 'Dockerfile'), 'utf8')).toContain(
      '\nFROM mlship-test/python:3.11-slim\n',
    );
  });
});
