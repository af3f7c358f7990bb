// `mlship bakeoff` end to end against the real engine: five fixture candidate repos
// (created as git repos at test time), each outcome classified; outputs, lock and
// --frozen; the HTML report in headless Chromium; Ctrl-C leaves no container.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, RUN_LABEL } from '../../src/adapters/docker/engine.js';
import type { BakeoffReport, CandidateReport } from '../../src/generators/bakeoff-report-schema.js';
import { addSubmodule, bakeoffFixture, commitAll, git } from '../helpers/bakeoff-fixtures.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/browser.js';
import { CLI, runCli } from '../helpers/cli-process.js';
import {
  countManaged,
  dockerCli,
  LOCAL_PYTHON_IMAGE,
  requireEngine,
  requireImage,
} from '../helpers/docker.js';

const engine = await requireEngine();
const run = `bakeoff-${randomBytes(4).toString('hex')}`;
const interruptRun = `${run}-int`;
let fixture: { dir: string; commits: Record<string, string> };

const cli = (args: string[]) => runCli(args, { cwd: fixture.dir });

const common = () => ['--base-image', LOCAL_PYTHON_IMAGE, '--cache-dir', path.join(fixture.dir, 'cache')];

async function removeImagesOf(e: DockerEngine, runId: string): Promise<void> {
  const ids = dockerCli(['images', '-q', '--filter', `label=${RUN_LABEL}=${runId}`])
    .split('\n')
    .filter(Boolean);
  for (const id of new Set(ids)) await e.removeImage(id, true).catch(() => undefined);
}

beforeAll(async () => {
  if (!engine) return;
  await requireImage(engine, LOCAL_PYTHON_IMAGE);
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'ignore' });
  fixture = bakeoffFixture();
}, 180_000);

afterAll(async () => {
  if (!engine) return;
  for (const id of [run, interruptRun]) {
    await engine.removeByLabel(RUN_LABEL, id);
    await removeImagesOf(engine, id);
  }
});

describe.runIf(engine)('mlship bakeoff (real engine)', () => {
  let report: BakeoffReport;
  const byName = (name: string) => report.candidates.find((c) => c.name === name) as CandidateReport;

  it('runs the five fixture candidates, two at a time, and classifies each outcome', async () => {
    const r = await cli(['--json', 'bakeoff', ...common(), '-j', '2', '--run-id', run]);
    expect(r.code, r.stderr).toBe(0);
    report = JSON.parse(r.stdout) as BakeoffReport;
    expect(report.schemaVersion).toBe(1);
    expect(
      Object.fromEntries(report.candidates.map((c) => [c.name, c.failure?.category ?? c.status])),
    ).toEqual({
      ok: 'passed',
      'deps-fail': 'dependency_install_failed',
      hang: 'timeout',
      oom: 'out_of_memory',
      'no-output': 'missing_output',
    });
    expect(byName('deps-fail').failure?.package).toBe('mlship-no-such-package-7f3c9e');
    expect(byName('deps-fail').log.phase).toBe('build');
    expect(byName('hang').run.timedOut).toBe(true);
    expect(byName('hang').metrics.runMs).toBeGreaterThanOrEqual(3900);
    expect(byName('oom').run.oomKilled).toBe(true);
    expect(byName('no-output').failure?.message).toMatch(/out\/result\.txt/);
    expect(report.summary).toMatchObject({ total: 5, passed: 1, failed: 4, best: 'ok' });
    // Every container of the run is gone.
    expect(await countManaged(engine!, run)).toBe(0);
    console.log(`bakeoff of 5 fixture candidates: ${(r.ms / 1000).toFixed(1)} s`);
  });

  it('records commits, measures the passing run, and copies its outputs out', () => {
    const ok = byName('ok');
    for (const c of report.candidates) expect(c.source.commit, c.name).toBe(fixture.commits[c.name]);
    expect(ok.rank).toBe(1);
    expect(ok.metrics.runMs).toBeGreaterThanOrEqual(2000);
    // It holds a 40 MiB buffer: the peak must show it, under the 256 MiB limit.
    expect(ok.metrics.peakMemoryBytes).toBeGreaterThan(40 * 1024 ** 2);
    expect(ok.metrics.peakMemoryBytes).toBeLessThan(256 * 1024 ** 2);
    expect(ok.outputs).toEqual([
      {
        pattern: 'out/*.txt',
        files: [
          {
            path: '/workspace/repo/out/result.txt',
            bytes: 14,
            savedAs: 'out/result.txt',
            preview: { kind: 'text', text: 'HELLO BAKEOFF\n' },
          },
        ],
      },
    ]);
    const copied = path.join(fixture.dir, 'bakeoff-results', 'outputs', 'ok', 'out', 'result.txt');
    expect(readFileSync(copied, 'utf8')).toBe('HELLO BAKEOFF\n');
    expect(ok.log.lines).toContain('ok: wrote out/result.txt');
    for (const f of ['bakeoff-report.json', 'bakeoff-report.md', 'bakeoff-report.html']) {
      expect(existsSync(path.join(fixture.dir, 'bakeoff-results', f)), f).toBe(true);
    }
    const md = readFileSync(path.join(fixture.dir, 'bakeoff-results', 'bakeoff-report.md'), 'utf8');
    expect(md.replace(/at \S+Z from/, 'at <time> from')).toMatch(
      /Run `bakeoff-\w+` at <time> from `bakeoff\.yaml`/,
    );
  });

  it('candidates on the same base share its layers and the venv layer; only the repo layers differ', async () => {
    const base = (await engine!.inspectImage(LOCAL_PYTHON_IMAGE)).layers;
    const images = await Promise.all(
      ['ok', 'hang', 'oom', 'no-output'].map((n) => engine!.inspectImage(byName(n).image!.id)),
    );
    const first = images[0]!.layers;
    let shared = first.length;
    for (const img of images.slice(1)) {
      let i = 0;
      while (i < shared && img.layers[i] === first[i]) i++;
      shared = i;
    }
    // The base's layers plus the virtualenv layer are one copy for all four candidates.
    expect(shared).toBe(base.length + 1);
    expect(first.slice(0, base.length)).toEqual(base);
  });

  it('writes bakeoff.lock with commits, image ids and the pip freeze; --frozen re-runs exactly that image', async () => {
    const lockFile = path.join(fixture.dir, 'bakeoff.lock');
    const before = readFileSync(lockFile, 'utf8');
    const lock = JSON.parse(before) as {
      candidates: Record<string, { commit: string; imageId: string; pipFreeze: string[] }>;
    };
    expect(Object.keys(lock.candidates).sort()).toEqual(['hang', 'no-output', 'ok', 'oom']);
    expect(lock.candidates.ok!.commit).toBe(fixture.commits.ok);
    expect(lock.candidates.ok!.imageId).toBe(byName('ok').image!.id);
    expect(lock.candidates.ok!.pipFreeze.some((l) => l.startsWith('pip=='))).toBe(true);

    // A new commit on the branch does not matter to --frozen: it runs the locked one.
    const okRepo = path.join(fixture.dir, 'candidates', 'ok');
    writeFileSync(path.join(okRepo, 'example.py'), 'raise SystemExit("the new commit must not run")\n');
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-am', 'break'], {
      cwd: okRepo,
    });
    const r = await cli([
      '--json',
      'bakeoff',
      ...common(),
      '--frozen',
      '--only',
      'ok',
      '--run-id',
      run,
      '-o',
      'frozen-results',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/frozen: reusing image/);
    const frozen = JSON.parse(r.stdout) as BakeoffReport;
    expect(frozen.candidates[0]).toMatchObject({
      name: 'ok',
      status: 'passed',
      source: { commit: fixture.commits.ok },
    });
    expect(frozen.candidates[0]!.image!.id).toBe(lock.candidates.ok!.imageId);
    expect(readFileSync(lockFile, 'utf8')).toBe(before);
    expect(await countManaged(engine!, run)).toBe(0);

    // Without --frozen, --only updates its candidate's entry and keeps the others.
    const again = await cli([
      '--json',
      'bakeoff',
      ...common(),
      '--only',
      'hang',
      '--run-id',
      run,
      '-o',
      'only-results',
    ]);
    expect(again.code).toBe(1); // the only candidate run failed (timeout)
    const after = JSON.parse(readFileSync(lockFile, 'utf8')) as typeof lock;
    expect(Object.keys(after.candidates).sort()).toEqual(['hang', 'no-output', 'ok', 'oom']);
    expect(after.candidates.ok).toEqual(lock.candidates.ok);
  });

  it('the HTML report renders in Chromium: charts, status table, collapsible logs; no errors, no requests', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (req) => requests.push(req.url()));
      const file = path.join(fixture.dir, 'bakeoff-results', 'bakeoff-report.html');
      await page.goto(`file://${file}`);
      expect(await page.title()).toBe('Bakeoff report: ok');
      // Status table: one row per candidate, in rank order.
      const rows = await page.locator('#status tbody tr').allTextContents();
      expect(rows).toHaveLength(5);
      expect(rows[0]).toMatch(/^1ok\s*passed/);
      // Both charts have a visible bar per candidate; the passing run's bar has a width.
      for (const id of ['#chart-time', '#chart-memory']) {
        expect(await page.locator(`${id} g.bar`).count(), id).toBe(5);
        const box = await page.locator(id).boundingBox();
        expect(box!.width).toBeGreaterThan(300);
      }
      const runBar = page.locator('#chart-time g.bar[data-candidate="ok"] rect.run');
      expect((await runBar.boundingBox())!.width).toBeGreaterThan(2);
      // Logs are collapsed until clicked.
      const log = page.locator('#candidate-ok details.log');
      expect(await log.evaluate((d) => (d as unknown as { open: boolean }).open)).toBe(false);
      await page.locator('#candidate-ok').locator('summary').first().click();
      await log.locator('summary').click();
      expect(await log.evaluate((d) => (d as unknown as { open: boolean }).open)).toBe(true);
      expect(await log.locator('pre').innerText()).toContain('ok: wrote out/result.txt');
      // Failed candidates start open and show their classification.
      expect(await page.locator('#candidate-oom .failure').innerText()).toMatch(/out_of_memory/);
      expect(errors).toEqual([]);
      expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('a candidate whose example imports from a git submodule runs with the pinned submodule', async () => {
    const sub = path.join(fixture.dir, 'subrepos', 'helper');
    mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, 'helper.py'), 'GREETING = "hello from the submodule"\n');
    commitAll(sub);
    const top = path.join(fixture.dir, 'subrepos', 'top');
    mkdirSync(top, { recursive: true });
    writeFileSync(path.join(top, 'example.py'), 'from vendor.helper import GREETING\nprint(GREETING)\n');
    commitAll(top);
    addSubmodule(top, sub, 'vendor');
    git(top, ['commit', '-q', '-m', 'vendor the helper']);
    // Moved on after the pin: the candidate must run the pinned commit.
    writeFileSync(path.join(sub, 'helper.py'), 'raise SystemExit("not the pinned commit")\n');
    git(sub, ['commit', '-q', '-am', 'later']);
    const config = path.join(fixture.dir, 'bakeoff-submodule.yaml');
    writeFileSync(
      config,
      'version: 1\ncandidates:\n  vendored:\n    repo: ./subrepos/top\n    python: "3.11"\n    run: python example.py\n    timeout: 60s\n',
    );
    const r = await cli(['--json', 'bakeoff', config, ...common(), '--run-id', run]);
    expect(r.code, r.stderr).toBe(0);
    const c = (JSON.parse(r.stdout) as BakeoffReport).candidates[0]!;
    expect(c.status).toBe('passed');
    expect(c.log.lines).toContain('hello from the submodule');
  });

  it('Ctrl-C during a run removes every container within 5 s and exits 130', async () => {
    writeFileSync(
      path.join(fixture.dir, 'interrupt.yaml'),
      'candidates:\n  hang:\n    repo: ./candidates/hang\n    run: python example.py\n    timeout: 5m\n',
    );
    const child = spawn(
      process.execPath,
      [CLI, 'bakeoff', 'interrupt.yaml', ...common(), '--run-id', interruptRun, '-o', 'int-results'],
      {
        cwd: fixture.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    const deadline = Date.now() + 120_000;
    while (
      (await engine!.listByLabel(RUN_LABEL, interruptRun)).filter((c) => c.state === 'running').length === 0
    ) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`the candidate never started: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    const elapsed = Date.now() - t0;
    expect(code).toBe(130);
    expect(elapsed).toBeLessThan(5000);
    expect(stderr).toMatch(/SIGINT: cleaning up/);
    expect(await countManaged(engine!, interruptRun)).toBe(0);
  });
});
