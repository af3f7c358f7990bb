import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { BakeoffResult } from '../../core/bakeoff/bakeoff.js';
import { UsageError } from '../../io/errors.js';
import type { IoHost } from '../../io/io-host.js';
import type { Register } from '../context.js';
import { examples } from '../examples.js';

interface BakeoffFlags {
  out: string;
  cacheDir?: string;
  matrix?: string;
  baseImage?: string;
  concurrency?: string;
  frozen: boolean;
  plan: boolean;
  only?: string;
  lock?: string;
  runId?: string;
}

function cacheDirFrom(env: NodeJS.ProcessEnv): string {
  if (env.MLSHIP_CACHE_DIR) return env.MLSHIP_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'mlship');
}

function mib(b: number | null): string {
  return b === null ? '–' : `${Math.round(b / 1024 / 1024)} MiB`;
}

function secs(ms: number | null): string {
  return ms === null ? '–' : `${(ms / 1000).toFixed(1)} s`;
}

function render(io: IoHost, result: BakeoffResult): string {
  if (!result.report) {
    const out: string[] = [];
    for (const p of result.plans) {
      out.push(io.style('bold', `${p.name} @ ${p.commit?.slice(0, 12) ?? 'unresolved'}`));
      if (p.failure) out.push(`  ${io.style('fail', p.failure.category)}: ${p.failure.message}`);
      for (const r of p.plan?.reasons ?? []) out.push(`  - ${r}`);
      if (p.dockerfile)
        out.push(
          '',
          ...p.dockerfile
            .trimEnd()
            .split('\n')
            .map((l) => `  ${l}`),
        );
      out.push('');
    }
    out.push('plan only: nothing was built or run');
    return out.join('\n');
  }
  const r = result.report;
  const rows = r.candidates.map((c) => [
    c.rank === null ? '–' : String(c.rank),
    c.name,
    c.status === 'passed' ? io.style('ok', 'passed') : io.style('fail', c.failure?.category ?? 'failed'),
    secs(c.metrics.runMs),
    secs(c.metrics.buildMs),
    mib(c.metrics.peakMemoryBytes),
  ]);
  const head = ['rank', 'candidate', 'status', 'run', 'build', 'peak mem'];
  const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => plain(row[i]!).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => c + ' '.repeat(widths[i]! - plain(c).length)).join('  ');
  const out = [line(head), ...rows.map(line)];
  for (const c of r.candidates.filter((x) => x.failure)) {
    out.push(
      '',
      `${io.style('fail', c.name)}: ${c.failure!.message} [${c.failure!.origin}]`,
      `  hint: ${c.failure!.hint}`,
    );
  }
  out.push(
    '',
    `${r.summary.passed} of ${r.summary.total} passed${r.summary.best ? `; best by ${r.rankBy.join(', ')}: ${r.summary.best}` : ''}`,
  );
  if (result.files) {
    out.push(`report: ${result.files.html} (also .md, .json)`);
    if (result.files.lock) out.push(`lock:   ${result.files.lock}`);
  }
  return out.join('\n');
}

export const registerBakeoff: Register = (program: Command, holder) => {
  program
    .command('bakeoff')
    .description('step 1: run candidate model repos in pinned CUDA containers and compare them')
    .argument('[config]', 'bakeoff.yaml, or mlship.yaml with a bakeoff: section (default: whichever is here)')
    .option('-o, --out <dir>', 'directory for the reports and copied outputs', 'bakeoff-results')
    .option('--cache-dir <dir>', 'clone cache (default $MLSHIP_CACHE_DIR or ~/.cache/mlship)')
    .option('--matrix <file>', 'extend or override the CUDA × framework × Python matrix (JSON or YAML)')
    .option('--base-image <image>', 'use this base image for every candidate (a mirror, or a local image)')
    .option('-j, --concurrency <n>', 'candidates at once (default: half the CPUs; GPUs for GPU candidates)')
    .option('--frozen', 're-run exactly what bakeoff.lock records (commits, images, pip freeze)', false)
    .option('--plan', 'resolve and print each plan and Dockerfile; build and run nothing', false)
    .option('--only <names>', 'comma-separated candidates to run')
    .option('--lock <file>', 'lock file (default: bakeoff.lock next to the config)')
    .option('--run-id <id>', 'value of the dev.mlship.run label on everything this run creates')
    .addHelpText(
      'after',
      examples([
        ['mlship bakeoff', 'run every candidate in ./bakeoff.yaml'],
        ['mlship bakeoff --plan', 'show base images, CUDA and wheel choices, and the Dockerfiles'],
        ['mlship bakeoff -j 2 --only yolo,detr', 'two candidates, both at once'],
        ['mlship bakeoff --frozen', 'reproduce the run recorded in bakeoff.lock'],
        ['mlship bakeoff --base-image mirror.local/python:3.11-slim', 'air-gapped: use a mirror'],
        ['mlship bakeoff --json | jq .summary', 'machine-readable report'],
      ]),
    )
    .action(async (file: string | undefined, opts: BakeoffFlags) => {
      const ctx = holder.get();
      const [
        { runBakeoff },
        { findBakeoffConfig, loadBakeoffConfig },
        matrixMod,
        { createGit },
        { exec },
        { readConfigText },
        { VERSION },
      ] = await Promise.all([
        import('../../core/bakeoff/bakeoff.js'),
        import('../../core/bakeoff/config.js'),
        import('../../core/bakeoff/matrix.js'),
        import('../../adapters/git.js'),
        import('../../adapters/exec.js'),
        import('../../config/load.js'),
        import('../version.js'),
      ]);
      const concurrency = opts.concurrency === undefined ? undefined : Number(opts.concurrency);
      if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
        throw new UsageError(`--concurrency ${opts.concurrency} is not a positive whole number`);
      }
      const configFile = await findBakeoffConfig(ctx.cwd, file);
      const configPath = path.resolve(ctx.cwd, configFile);
      const config = await loadBakeoffConfig(configFile);
      let matrix = matrixMod.builtinMatrix();
      if (opts.matrix) matrix = matrixMod.mergeMatrix(matrix, opts.matrix, await readConfigText(opts.matrix));
      const result = await runBakeoff(
        {
          configFile,
          configDir: path.dirname(configPath),
          config,
          matrix,
          outDir: path.resolve(ctx.cwd, opts.out),
          cacheDir: path.resolve(ctx.cwd, opts.cacheDir ?? cacheDirFrom(ctx.env)),
          lockFile: path.resolve(ctx.cwd, opts.lock ?? path.join(path.dirname(configPath), 'bakeoff.lock')),
          runId: opts.runId ?? `bakeoff-${randomBytes(4).toString('hex')}`,
          frozen: opts.frozen,
          planOnly: opts.plan,
          ...(concurrency ? { concurrency } : {}),
          ...(opts.baseImage ? { baseImageOverride: opts.baseImage } : {}),
          ...(opts.only
            ? {
                only: opts.only
                  .split(',')
                  .map((s) => s.trim())
                  .filter(Boolean),
              }
            : {}),
        },
        {
          engine: () => ctx.engine(),
          git: createGit(exec),
          exec,
          io: ctx.io,
          cleanup: ctx.cleanup,
          now: () => new Date(),
          mlshipVersion: VERSION,
        },
      );
      ctx.io.result(result.report ?? { plans: result.plans }, render(ctx.io, result));
      if (result.report && result.report.summary.passed === 0) process.exitCode = 1;
    });
};
