// The bakeoff command line on real git fixture repos (no engine needed): --help, --plan,
// refusals before anything is built, a fake nvidia-smi, clone failures.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bakeoffFixture } from '../helpers/bakeoff-fixtures.js';
import { runCli } from '../helpers/cli-process.js';

function tmp(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

describe('mlship bakeoff (CLI)', () => {
  it('--help lists the flags and examples', () => {
    const r = spawnSync(process.execPath, ['bin/mlship.js', 'bakeoff', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    for (const flag of [
      '--out',
      '--cache-dir',
      '--matrix',
      '--base-image',
      '--concurrency',
      '--frozen',
      '--plan',
      '--only',
    ]) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toContain('Examples:');
  });

  it('--plan resolves every candidate of real git repos and prints the Dockerfiles, without an engine', () => {
    const { dir, commits } = bakeoffFixture();
    const r = spawnSync(
      process.execPath,
      [
        path.resolve('bin/mlship.js'),
        '--json',
        'bakeoff',
        '--plan',
        '--cache-dir',
        path.join(dir, 'cache'),
        '--base-image',
        'local/py:3.11',
      ],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, DOCKER_HOST: 'tcp://127.0.0.1:1' } },
    );
    expect(r.status, r.stderr).toBe(0);
    const { plans } = JSON.parse(r.stdout) as {
      plans: { name: string; commit: string; dockerfile: string }[];
    };
    expect(plans.map((p) => p.name)).toEqual(['ok', 'deps-fail', 'hang', 'oom', 'no-output']);
    for (const p of plans) {
      expect(p.commit).toBe(commits[p.name]);
      expect(p.dockerfile).toMatch(/^FROM local\/py:3\.11$/m);
    }
    expect(plans.find((p) => p.name === 'deps-fail')!.dockerfile).toContain(
      'pip install -r requirements.txt',
    );
  });

  it('an impossible combination is refused before anything is built, exit 2, with alternatives', () => {
    const { dir } = bakeoffFixture();
    writeFileSync(
      path.join(dir, 'bakeoff.yaml'),
      'candidates:\n  old:\n    repo: ./candidates/ok\n    framework: torch\n    framework_version: "2.1.2"\n    python: "3.12"\n    run: python example.py\n',
    );
    const r = spawnSync(
      process.execPath,
      [path.resolve('bin/mlship.js'), 'bakeoff', '--plan', '--cache-dir', path.join(dir, 'cache')],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/impossible framework\/CUDA\/Python combinations/);
    expect(r.stderr).toMatch(/nearest valid: python "3\.11" with torch 2\.1\.2/);
  });

  it('a broken config exits 2 with located problems', () => {
    const dir = tmp('mlship-cli-');
    writeFileSync(
      path.join(dir, 'bakeoff.yaml'),
      'candidates:\n  a:\n    repo: ./a\n    run: x\n    gpus: lots\n',
    );
    const r = spawnSync(process.execPath, [path.resolve('bin/mlship.js'), 'bakeoff'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bakeoff\.yaml:5:\d+ candidates\.a\.gpus:/);
  });
});

describe('mlship bakeoff with a (fake) nvidia-smi', () => {
  function fakeNvidiaSmi(script: string): string {
    const bin = tmp('mlship-fake-smi-');
    writeFileSync(path.join(bin, 'nvidia-smi'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    return bin;
  }

  function planWith(bin: string, candidate: string) {
    const { dir } = bakeoffFixture();
    writeFileSync(
      path.join(dir, 'bakeoff.yaml'),
      `candidates:\n  gpu:\n    repo: ./candidates/ok\n    run: python example.py\n${candidate}`,
    );
    return spawnSync(
      process.execPath,
      [path.resolve('bin/mlship.js'), '--json', 'bakeoff', '--plan', '--cache-dir', path.join(dir, 'cache')],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } },
    );
  }

  it('explains a driver too old for the chosen CUDA before anything runs (exit 3)', () => {
    const bin = fakeNvidiaSmi('echo "0, NVIDIA A10G, 470.57.02, 23028"');
    const r = planWith(
      bin,
      '    framework: torch\n    framework_version: "2.4.1"\n    cuda: "12.4"\n    python: "3.11"\n    gpus: 1\n',
    );
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/NVIDIA driver is too old/);
    expect(r.stderr).toMatch(
      /CUDA 12\.4 needs NVIDIA driver >= 525\.60\.13 .*this host has 470\.57\.02; this driver supports CUDA up to 11\.3/,
    );
  });

  it('cuda auto picks what the driver supports', () => {
    const bin = fakeNvidiaSmi('echo "0, NVIDIA A10G, 525.85.12, 23028"');
    const r = planWith(
      bin,
      '    framework: torch\n    framework_version: "2.4.1"\n    python: "3.11"\n    gpus: 1\n',
    );
    expect(r.status, r.stderr).toBe(0);
    const plan = (JSON.parse(r.stdout) as { plans: { plan: { cuda: string; baseImage: string } }[] })
      .plans[0]!.plan;
    expect(plan.cuda).toBe('11.8');
    expect(plan.baseImage).toBe('python:3.11-slim');
  });

  it('a GPU candidate on a host whose nvidia-smi fails is a host problem, found before running', () => {
    const bin = fakeNvidiaSmi(
      'echo "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver." >&2; exit 9',
    );
    const r = planWith(bin, '    gpus: 1\n');
    expect(r.status, r.stderr).toBe(0);
    const p = (JSON.parse(r.stdout) as { plans: { failure: { category: string; origin: string } }[] })
      .plans[0]!;
    expect(p.failure).toMatchObject({ category: 'host_gpu_unavailable', origin: 'host' });
  });
});

describe('clone failures through the CLI', () => {
  it('a repo that does not exist and a ref that does not exist are classified, not fatal', () => {
    const { dir } = bakeoffFixture();
    writeFileSync(
      path.join(dir, 'bakeoff.yaml'),
      [
        'candidates:',
        '  gone: { repo: ./candidates/does-not-exist, run: python x.py }',
        '  badref: { repo: ./candidates/ok, ref: v9.9, run: python x.py }',
        '  fine: { repo: ./candidates/ok, run: python example.py }',
      ].join('\n'),
    );
    const r = spawnSync(
      process.execPath,
      [path.resolve('bin/mlship.js'), '--json', 'bakeoff', '--plan', '--cache-dir', path.join(dir, 'cache')],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const plans = (
      JSON.parse(r.stdout) as {
        plans: { name: string; failure: { category: string; origin: string } | null }[];
      }
    ).plans;
    expect(plans.map((p) => [p.name, p.failure?.category ?? 'ok', p.failure?.origin ?? '-'])).toEqual([
      ['gone', 'clone_failed', 'candidate'],
      ['badref', 'clone_failed', 'config'],
      ['fine', 'ok', '-'],
    ]);
  });
});

describe('mlship bakeoff matrix refresh (CLI, a local index served from fixture files)', () => {
  it('writes a matrix file that --plan then uses: torch 2.15 with CUDA 13.2 from the index', async () => {
    const { createServer } = await import('node:http');
    const { readFileSync } = await import('node:fs');
    const server = createServer((req, res) => {
      if (req.url !== '/whl/torch/') {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.pypi.simple.v1+json' });
      res.end(readFileSync('fixtures/bakeoff/index/torch.json'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const index = `http://127.0.0.1:${(server.address() as { port: number }).port}/whl`;
    const dir = tmp('mlship-refresh-');
    try {
      const run = (args: string[]) => runCli(args, { cwd: dir });
      const r = await run(['bakeoff', 'matrix', 'refresh', '--index', index, '--output', 'm.yaml']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(
        /^torch 2\.15\.0: python 3\.11, 3\.12, 3\.13, 3\.14, 3\.15; cuda 13\.0, 13\.2$/m,
      );
      expect(readFileSync(path.join(dir, 'm.yaml'), 'utf8')).toContain(`cuda: ${index}/{tag}`);
      // A second run refuses to overwrite without --force.
      const again = await run(['bakeoff', 'matrix', 'refresh', '--index', index, '--output', 'm.yaml']);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/m\.yaml exists/);
      writeFileSync(
        path.join(dir, 'bakeoff.yaml'),
        'candidates:\n  new:\n    repo: ./new\n    framework: torch\n    framework_version: "2.15"\n    python: "3.15"\n    cuda: "13.2"\n    run: python x.py\n',
      );
      const { mkdirSync } = await import('node:fs');
      const repo = path.join(dir, 'new');
      mkdirSync(repo);
      writeFileSync(path.join(repo, 'x.py'), 'print(1)\n');
      const plan = await run([
        '--json',
        'bakeoff',
        '--plan',
        '--matrix',
        'm.yaml',
        '--cache-dir',
        path.join(dir, 'cache'),
      ]);
      expect(plan.code, plan.stderr).toBe(0);
      const p = (JSON.parse(plan.stdout) as { plans: { dockerfile: string }[] }).plans[0]!;
      expect(p.dockerfile).toContain(`pip install torch==2.15.0 --index-url ${index}/cu132`);
    } finally {
      server.close();
    }
  });
});
