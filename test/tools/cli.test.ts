// The CLI as users run it: the compiled bin, real processes, exit codes and streams.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requires } from '../helpers/requires.js';

const BIN = path.resolve('bin/mlship.js');

function mlship(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  // The test runner may set colour variables itself: start from none of them.
  const { NO_COLOR: _n, FORCE_COLOR: _f, ...base } = process.env;
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? process.cwd(),
    env: { ...base, CI: 'true', ...opts.env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!existsSync('dist/cli/main.js'))
    throw new Error('dist/ is missing: run `npm run build` before the tests');
});

/** A Node older than 22 on this machine (the system one is 20 here), to check the refusal. */
function findOldNode(): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    try {
      const v = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim();
      if (Number(v.slice(1).split('.')[0]) < 22) return candidate;
    } catch {
      // not there
    }
  }
  return undefined;
}
const oldNode = requires(
  'a Node.js older than 22',
  findOldNode() !== undefined,
  'the system node 20 at /usr/bin/node',
)
  ? findOldNode()
  : undefined;

describe('mlship CLI conventions', () => {
  it('--help lists every command, each with examples', () => {
    const r = mlship(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['init', 'validate', 'doctor'])
      expect(r.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
    for (const step of ['bakeoff', 'wrap', 'compose', 'optimize', 'deploy']) expect(r.stdout).toContain(step);
    for (const cmd of ['init', 'validate', 'doctor']) {
      const help = mlship([cmd, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/Examples:\n {2}\$ mlship /);
    }
  });

  it('a closed pipe (mlship ... | head) ends quietly', () => {
    const r = spawnSync('sh', ['-c', `"${process.execPath}" "${BIN}" --help | head -1`], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('Usage: mlship [options] [command]\n');
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled/);
  });

  it('--version prints the package version', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(mlship(['--version']).stdout.trim()).toBe(pkg.version);
  });

  it('usage errors exit 2 without a stack trace', () => {
    const r = mlship(['doctor', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--no-such-flag'/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(mlship(['no-such-command']).code).toBe(2);
    // A flag's value out of range names the flag and its range, before anything is read or sent.
    const level = mlship(['data', 'push', '--dump-compression', '12']);
    expect(level.code).toBe(2);
    expect(level.stderr).toMatch(/--dump-compression must be an integer from 0 to 9, not "12"/);
    expect(level.stderr).not.toMatch(/\n\s+at /);
  });

  it('validate: exit 2 with every problem located; --json gives one object on stdout', () => {
    const r = mlship(['validate', 'fixtures/config/broken.yaml']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      'fixtures/config/broken.yaml:3:1 servces: unknown field (fix: did you mean "services"?)',
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const j = mlship(['validate', 'fixtures/config/broken.yaml', '--json']);
    expect(j.code).toBe(2);
    const parsed = JSON.parse(j.stdout) as { ok: boolean; error: { code: string; problems: unknown[] } };
    expect(parsed.ok).toBe(false);
    expect(parsed.error.code).toBe('CONFIG_INVALID');
    expect(parsed.error.problems).toHaveLength(9);
    const good = mlship(['validate', 'fixtures/config/valid.yaml', '--json']);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toEqual({
      ok: true,
      file: 'fixtures/config/valid.yaml',
      name: 'pose-pipeline',
      services: ['detector', 'pose-2d'],
    });
  });

  it('--debug adds the stack trace', () => {
    const r = mlship(['validate', 'missing.yaml', '--debug']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\n\s+at /);
  });

  it('colour: none with NO_COLOR or when piped, forced with FORCE_COLOR', () => {
    const plain = mlship(['validate', 'missing.yaml'], { env: { NO_COLOR: '1' } });
    expect(plain.stderr).not.toContain('\u001b[');
    const forced = mlship(['validate', 'missing.yaml'], { env: { FORCE_COLOR: '1' } });
    expect(forced.stderr).toContain('\u001b[31merror:');
    expect(
      mlship(['validate', 'missing.yaml', '--no-color'], { env: { FORCE_COLOR: '1' } }).stderr,
    ).not.toContain('\u001b[');
  });

  it('init --yes never prompts (stdin closed), writes a valid file, refuses to overwrite', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-cli-'));
    const r = mlship(['init', '--yes', '--name', 'demo', '--entry', 'predict.py:predict'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote mlship\.yaml/);
    expect(mlship(['validate'], { cwd: dir }).code).toBe(0);
    const again = mlship(['init', '--yes', '--name', 'other'], { cwd: dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists[\s\S]*--force/);
    expect(readFileSync(path.join(dir, 'mlship.yaml'), 'utf8')).toContain('name: demo');
    expect(mlship(['init', '--yes', '--name', 'other', '--force'], { cwd: dir }).code).toBe(0);
  });

  it('init without --yes on a non-TTY takes defaults instead of hanging', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-cli-'));
    const r = mlship(['init', '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { project: { services: Record<string, unknown> } };
    expect(Object.keys(out.project.services)).toEqual(['model']);
  });

  it('a broken config that is not YAML at all is located, not a crash', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-cli-'));
    writeFileSync(path.join(dir, 'mlship.yaml'), 'name: [unclosed\n  - x: :\n');
    const r = mlship(['validate'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/mlship\.yaml:\d+:\d+ YAML syntax/);
  });

  it('doctor --json: one object; engine unreachable → exit 1 with a fix, never a stack trace', () => {
    const r = mlship(['doctor', '--json', '--skip', 'aws'], {
      env: { DOCKER_HOST: 'unix:///tmp/mlship-no-engine.sock' },
    });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      checks: { id: string; status: string; fix?: string }[];
    };
    expect(report.ok).toBe(false);
    const docker = report.checks.find((c) => c.id === 'docker');
    expect(docker?.status).toBe('fail');
    expect(docker?.fix).toMatch(/start the engine/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it.skipIf(!oldNode)('refuses an unsupported Node with one line and exit 3', () => {
    const r = spawnSync(oldNode!, [BIN, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/mlship needs Node\.js >= 22\.12/);
  });
});
