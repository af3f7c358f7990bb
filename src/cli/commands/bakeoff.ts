import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { BakeoffResult } from '../../core/bakeoff/bakeoff.js';
import { formatScore, scoreNames } from '../../generators/bakeoff-report-outputs.js';
import { UsageError } from '../../io/errors.js';
import type { IoHost } from '../../io/io-host.js';
import { cacheDirFrom } from '../cache-dir.js';
import type { CliContext, ContextHolder, Register } from '../context.js';
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
  /** A directory, or false (--no-weights-cache). */
  weightsCache?: string | false;
}

interface RefreshFlags {
  framework: 'torch' | 'tensorflow';
  index?: string;
  output: string;
  since?: string;
  base?: string;
  force: boolean;
}

/** The download cache: the flag, else the config's weights_cache, else <cache dir>/weights. */
function weightsCacheFrom(
  flag: string | false | undefined,
  config: string | false | undefined,
  configDir: string,
  cacheDir: string,
  cwd: string,
): string | undefined {
  const home = (p: string) => (p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p);
  if (flag === false) return undefined;
  if (flag !== undefined) return path.resolve(cwd, home(flag));
  if (config === false) return undefined;
  if (config !== undefined) return path.resolve(configDir, home(config));
  return path.join(cacheDir, 'weights');
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
  // Scores first among the figures: they are what the user asked to judge by.
  const scores = scoreNames(r).slice(0, 4);
  const rows = r.candidates.map((c) => [
    c.rank === null ? '–' : String(c.rank),
    c.name,
    c.status === 'passed' ? io.style('ok', 'passed') : io.style('fail', c.failure?.category ?? 'failed'),
    ...scores.map((n) => formatScore(c.score?.metrics[n])),
    secs(c.metrics.runMs),
    secs(c.metrics.buildMs),
    mib(c.metrics.peakMemoryBytes),
  ]);
  const head = ['rank', 'candidate', 'status', ...scores, 'run', 'build', 'peak mem'];
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
  for (const c of r.candidates.filter((x) => x.score?.failure)) {
    const f = c.score!.failure!;
    out.push(
      '',
      `${io.style('warn', c.name)}: ${f.category}: ${f.message} [${f.origin}]`,
      `  hint: ${f.hint}`,
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

function concurrencyFlag(opts: BakeoffFlags): number | undefined {
  const concurrency = opts.concurrency === undefined ? undefined : Number(opts.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
    throw new UsageError(`--concurrency ${opts.concurrency} is not a positive whole number`);
  }
  return concurrency;
}

/** What `bakeoff` needs, loaded when it runs (the CLI starts without them). */
const bakeoffModules = () =>
  Promise.all([
    import('../../core/bakeoff/bakeoff.js'),
    import('../../core/bakeoff/config.js'),
    import('../../core/bakeoff/matrix.js'),
    import('../../adapters/git.js'),
    import('../../adapters/exec.js'),
    import('../../config/load.js'),
    import('../version.js'),
  ]);

/** `mlship bakeoff [config]`: the options resolved (matrix, cache, weights), then core, then the result. */
async function bakeoffCommand(ctx: CliContext, file: string | undefined, opts: BakeoffFlags): Promise<void> {
  const [
    { runBakeoff },
    { findBakeoffConfig, loadBakeoffConfig },
    matrixMod,
    { createGit },
    { exec },
    { readConfigText },
    { VERSION },
  ] = await bakeoffModules();
  const concurrency = concurrencyFlag(opts);
  const configFile = await findBakeoffConfig(ctx.cwd, file);
  const configPath = path.resolve(ctx.cwd, configFile);
  const config = await loadBakeoffConfig(configFile);
  const matrix = opts.matrix
    ? matrixMod.mergeMatrix(matrixMod.builtinMatrix(), opts.matrix, await readConfigText(opts.matrix))
    : matrixMod.builtinMatrix();
  const cacheDir = path.resolve(ctx.cwd, opts.cacheDir ?? cacheDirFrom(ctx.env));
  const weightsCache = weightsCacheFrom(
    opts.weightsCache,
    config.weights_cache,
    path.dirname(configPath),
    cacheDir,
    ctx.cwd,
  );
  const result = await runBakeoff(
    {
      configFile,
      configDir: path.dirname(configPath),
      config,
      matrix,
      outDir: path.resolve(ctx.cwd, opts.out),
      cacheDir,
      ...(weightsCache ? { weightsCache } : {}),
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
}

export const registerBakeoff: Register = (program: Command, holder) => {
  const bakeoff = program
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
    .option(
      '--weights-cache <dir>',
      'download cache mounted into every candidate (HF_HOME, TORCH_HOME, XDG_CACHE_HOME); default <cache dir>/weights',
    )
    .option('--no-weights-cache', 'mount no download cache (each run downloads again)')
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
    .action(async (file: string | undefined, opts: BakeoffFlags) => bakeoffCommand(holder.get(), file, opts));
  registerMatrixRefresh(bakeoff, holder);
};

function registerMatrixRefresh(bakeoff: Command, holder: ContextHolder): void {
  bakeoff
    .command('matrix')
    .description('the CUDA × framework × Python matrix')
    .command('refresh')
    .description('read a wheel index and write a matrix file (releases × Python × CUDA) for --matrix')
    .option('--framework <name>', 'torch or tensorflow', 'torch')
    .option('--index <url>', 'index root (default: download.pytorch.org/whl for torch, pypi.org/simple)')
    // Not -o/--matrix: bakeoff's own options take those names wherever they appear.
    .option('--output <file>', 'matrix file to write', 'bakeoff-matrix.yaml')
    .option('--since <version>', "oldest release kept (default: the matrix's oldest)")
    .option('--base <file>', 'refresh this matrix file instead of the built-in one')
    .option('--force', 'overwrite the output file', false)
    .addHelpText(
      'after',
      examples([
        ['mlship bakeoff matrix refresh', 'torch releases from download.pytorch.org'],
        ['mlship bakeoff matrix refresh --index https://mirror.local/whl', 'a private mirror'],
        ['mlship bakeoff matrix refresh --framework tensorflow --output tf.yaml', 'TensorFlow from PyPI'],
        ['mlship bakeoff --matrix bakeoff-matrix.yaml', 'use what it found'],
      ]),
    )
    .action(async (opts: RefreshFlags) => matrixRefreshCommand(holder.get(), opts));
}

/** `mlship bakeoff matrix refresh`: a wheel index read into a matrix file for --matrix. */
async function matrixRefreshCommand(ctx: CliContext, opts: RefreshFlags): Promise<void> {
  const [
    { refreshMatrix, matrixFileText, DEFAULT_INDEXES },
    matrixMod,
    { createWheelIndex },
    { readConfigText },
    files,
  ] = await Promise.all([
    import('../../core/bakeoff/matrix-refresh.js'),
    import('../../core/bakeoff/matrix.js'),
    import('../../adapters/wheel-index.js'),
    import('../../config/load.js'),
    import('../../io/files.js'),
  ]);
  if (opts.framework !== 'torch' && opts.framework !== 'tensorflow')
    throw new UsageError(`--framework ${opts.framework}: use torch or tensorflow`);
  const out = path.resolve(ctx.cwd, opts.output);
  if (!opts.force && (await files.exists(out)))
    throw new UsageError(`${opts.output} exists`, {
      hint: 'pass --force to replace it, or --output another file',
    });
  let base = matrixMod.builtinMatrix();
  if (opts.base) base = matrixMod.mergeMatrix(base, opts.base, await readConfigText(opts.base));
  const index = opts.index ?? DEFAULT_INDEXES[opts.framework];
  const result = await refreshMatrix(
    {
      framework: opts.framework,
      index,
      base,
      now: new Date(),
      ...(opts.since ? { since: opts.since } : {}),
    },
    createWheelIndex(),
  );
  await files.writeFileAtomic(out, matrixFileText(result));
  for (const [cuda, versions] of Object.entries(result.unknownCuda))
    ctx.io.warn(
      `CUDA ${cuda} (${versions.join(', ')}) is not in the cuda table: those builds are left out until cuda."${cuda}" is added (its minimum driver)`,
    );
  if (result.cudaUnknown.length)
    ctx.io.warn(
      `the index does not say which CUDA ${result.cudaUnknown.join(', ')} are built for (no +cuXYZ wheels, no metadata): CPU only until their cuda is added`,
    );
  const lines = Object.entries(result.entries).map(
    ([v, e]) => `${opts.framework} ${v}: python ${e.python.join(', ')}; cuda ${e.cuda.join(', ') || '–'}`,
  );
  ctx.io.result(
    { file: out, index: result.projectUrl, entries: result.entries, unknownCuda: result.unknownCuda },
    [
      ...lines,
      '',
      `wrote ${path.relative(ctx.cwd, out) || out}: use it with mlship bakeoff --matrix ${opts.output}`,
    ].join('\n'),
  );
}
