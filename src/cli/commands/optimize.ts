import path from 'node:path';
import type { Command } from 'commander';
import type { LayerComparison, LayerReport } from '../../core/optimize/layers.js';
import type { LintReport, RewritePlan } from '../../core/optimize/optimize.js';
import { UsageError } from '../../io/errors.js';
import type { IoHost } from '../../io/io-host.js';
import type { Register } from '../context.js';
import { examples } from '../examples.js';

interface OptimizeFlags {
  context?: string;
  check: boolean;
  write: boolean;
  dryRun: boolean;
  layers?: string;
  compare?: string;
  top: string;
  ignore: string;
  largeFile: string;
  target?: string;
  slimBase: boolean;
}

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?$/i.exec(s.trim());
  if (!m)
    throw new UsageError(`--large-file ${JSON.stringify(s)} is not a size`, {
      hint: 'use e.g. 50MB, 512KB or 1GB',
    });
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * mult);
}

function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function renderFindings(io: IoHost, r: LintReport): string {
  if (!r.findings.length) {
    return `${r.file}: no findings${r.silenced ? ` (${r.silenced} silenced)` : ''}`;
  }
  const lines = r.findings.map(
    (f) =>
      `${io.style('bold', `${f.file}:${f.line}`)} ${f.severity === 'error' ? `${io.style('fail', 'error')} ` : ''}${io.style(f.severity === 'error' ? 'fail' : 'warn', f.rule)} ${f.message}\n    ${io.style('dim', `fix: ${f.fix}`)}`,
  );
  const n = r.findings.length;
  lines.push(
    '',
    `${n} finding${n === 1 ? '' : 's'}${r.silenced ? `, ${r.silenced} silenced` : ''}. ` +
      'Silence one with `# mlship-ignore: <rule>` above the line, a stage with `# mlship-ignore-stage: <rule>`, ' +
      'the project with optimize.ignore in mlship.yaml. `mlship optimize --write` fixes what it safely can.',
  );
  return lines.join('\n');
}

function renderPlan(
  plan: RewritePlan,
  wrote: boolean,
  dryRunReason: string | undefined,
  diffShown: boolean,
): string {
  const out: string[] = [];
  if (plan.diff && !diffShown) out.push(plan.diff.trimEnd(), '');
  for (const c of plan.changes) out.push(`changed  line ${c.line}: [${c.rule}] ${c.description}`);
  for (const c of plan.notDone) out.push(`not done line ${c.line}: [${c.rule}] ${c.description}`);
  if (plan.instructions.length) out.push('', ...plan.instructions);
  if (plan.checks.length) out.push('', ...plan.checks.map((c) => `check: ${c}`));
  out.push('');
  if (!plan.changed) out.push(`${plan.file}: nothing to rewrite safely`);
  else if (wrote)
    out.push(`wrote ${plan.file}${plan.dockerignore !== undefined ? ' and .dockerignore' : ''}`);
  else out.push(`dry run: nothing written (${dryRunReason ?? 'declined'})`);
  return out.join('\n');
}

function renderLayers(r: LayerReport): string {
  const n = r.layers.length;
  const out = [
    `${r.image}: ${mb(r.totalBytes)} in ${n} layer${n === 1 ? '' : 's'}, ${mb(r.wastedBytes)} wasted`,
    '',
  ];
  out.push('layer       size    wasted  created by');
  for (const l of r.layers) {
    out.push(
      `${String(l.index).padStart(5)} ${mb(l.sizeBytes).padStart(10)} ${mb(l.wastedBytes).padStart(9)}  ${l.createdBy.slice(0, 100) || '(no history: imported or squashed)'}`,
    );
  }
  if (r.wasted.length) {
    out.push('', 'wasted (overwritten or deleted by a later layer):');
    for (const w of r.wasted)
      out.push(
        `  ${mb(w.bytes).padStart(10)}  /${w.path}  added in layer ${w.addedIn}, ${w.how} in layer ${w.wastedBy}`,
      );
  }
  out.push('', 'largest files:');
  for (const f of r.largestFiles) out.push(`  ${mb(f.bytes).padStart(10)}  /${f.path}  (layer ${f.layer})`);
  const c = r.cudaStacks;
  if (c)
    out.push(
      '',
      `cuda-twice: ${mb(c.systemBytes)} of CUDA libraries from the base image (${c.systemDirs.slice(0, 3).join(', ')}) and ${mb(c.wheelBytes)} that pip wheels brought (site-packages/nvidia, torch/lib); the framework loads its own.`,
      `  on python:<ver>-slim with the same pip install the image would be about ${mb(c.systemBytes)} smaller`,
    );
  return out.join('\n');
}

function renderComparison(c: LayerComparison): string {
  const ratio = c.before.totalBytes ? (c.after.totalBytes / c.before.totalBytes).toFixed(2) : 'n/a';
  return [
    renderLayers(c.after),
    '',
    `compared with ${c.before.image}:`,
    `  size       ${mb(c.before.totalBytes)} → ${mb(c.after.totalBytes)} (${ratio}x, ${c.deltaBytes >= 0 ? '+' : ''}${mb(c.deltaBytes)})`,
    `  layers     ${c.before.layers.length} → ${c.after.layers.length}, ${c.sharedLayers} shared`,
    `  wasted     ${mb(c.before.wastedBytes)} → ${mb(c.after.wastedBytes)}`,
    `  new bytes  ${mb(c.newBytes)} (pushed when the registry already has ${c.before.image})`,
  ].join('\n');
}

export const registerOptimize: Register = (program: Command, holder) => {
  program
    .command('optimize')
    .description('step 4: lint, rewrite and measure Dockerfiles for layer caching and image size')
    .argument('[dockerfile]', 'Dockerfile to lint or rewrite', 'Dockerfile')
    .option('--context <dir>', 'build context (default: the Dockerfile directory)')
    .option('--check', 'exit 1 when there are findings (for CI)', false)
    .option(
      '--write',
      'rewrite the Dockerfile and .dockerignore (shows the diff; asks on a terminal, --yes to skip)',
      false,
    )
    .option(
      '--dry-run',
      'with --write: show the diff, write nothing (the default when not on a terminal without --yes)',
      false,
    )
    .option('--layers <image>', 'measure an image: layer sizes, wasted bytes, largest files')
    .option('--compare <image>', 'with --layers: compare with this (earlier) image')
    .option('--top <n>', 'with --layers: how many wasted/largest files to list', '10')
    .option(
      '--ignore <rules>',
      'comma-separated rule ids to silence (adds to optimize.ignore in mlship.yaml)',
      '',
    )
    .option('--large-file <size>', 'files at least this large count as large (e.g. 50MB)', '50MB')
    .option('--target <stage>', 'the stage that is built (default: the last)')
    .option(
      '--slim-base',
      'with --write: move the final stage from a full python/node image to its slim variant, compiles and pip installs in a builder stage (opt-in: check the image after)',
      false,
    )
    .addHelpText(
      'after',
      examples([
        ['mlship optimize', 'lint ./Dockerfile'],
        ['mlship optimize svc/Dockerfile --check', 'in CI: exit 1 on any finding'],
        ['mlship optimize --write', 'show the safe rewrite as a diff and ask before writing'],
        ['mlship optimize --write --yes', 'rewrite without asking'],
        [
          'mlship optimize --write --slim-base',
          'also move python:3.11 to python:3.11-slim, builds in a builder stage',
        ],
        [
          'mlship optimize --layers my/image:2 --compare my/image:1',
          'measure, and compare with the previous image',
        ],
      ]),
    )
    .action(async (dockerfile: string, flags: OptimizeFlags) => {
      const ctx = holder.get();
      const io = ctx.io;
      const top = Number.parseInt(flags.top, 10);
      if (!Number.isInteger(top) || top < 1) throw new UsageError('--top must be a positive integer');

      if (flags.layers) {
        const { runLayers } = await import('../../core/optimize/optimize.js');
        const engine = await ctx.engine();
        const { report, comparison } = await runLayers(flags.layers, flags.compare, engine, top);
        if (comparison) io.result({ ok: true, ...comparison }, renderComparison(comparison));
        else io.result({ ok: true, ...report }, renderLayers(report));
        return;
      }
      if (flags.compare) throw new UsageError('--compare needs --layers <image>');
      if (flags.slimBase && !flags.write)
        throw new UsageError('--slim-base needs --write', {
          hint: 'mlship optimize --write --slim-base; the lint reports base-not-slim without it',
        });

      const [
        { runLint, planRewrite },
        { unknownRuleIds },
        { listContext },
        { readFile },
        { existsSync },
        files,
      ] = await Promise.all([
        import('../../core/optimize/optimize.js'),
        import('../../core/optimize/lint.js'),
        import('../../adapters/docker/build-context.js'),
        import('node:fs/promises'),
        import('node:fs'),
        import('../../io/files.js'),
      ]);
      const ignore = flags.ignore
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      let slimBase = flags.slimBase;
      if (existsSync(path.join(ctx.cwd, 'mlship.yaml'))) {
        const { loadProject } = await import('../../config/load.js');
        const project = await loadProject('mlship.yaml');
        ignore.push(...(project.optimize?.ignore ?? []));
        slimBase ||= project.optimize?.slim_base ?? false;
      }

      const unknown = unknownRuleIds(ignore);
      if (unknown.length) {
        const { RULE_IDS } = await import('../../core/optimize/rules.js');
        throw new UsageError(`unknown rule id${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`, {
          hint: `rule ids: ${RULE_IDS.join(', ')}`,
        });
      }
      const dockerfileAbs = path.resolve(ctx.cwd, dockerfile);
      const target = {
        dockerfile,
        dockerfileAbs,
        contextDir: path.resolve(ctx.cwd, flags.context ?? path.dirname(dockerfileAbs)),
        cwd: ctx.cwd,
        ignore,
        largeFileBytes: parseSize(flags.largeFile),
        ...(flags.target ? { target: flags.target } : {}),
        slimBase,
      };
      const deps = {
        readText: async (f: string) => {
          try {
            return await readFile(f, 'utf8');
          } catch (e) {
            if (
              (e as NodeJS.ErrnoException).code === 'ENOENT' ||
              (e as NodeJS.ErrnoException).code === 'EISDIR'
            )
              return undefined;
            throw e;
          }
        },
        listContext: async (dir: string, df: string) =>
          (await listContext(dir, df))
            .filter((e) => e.type === 'file')
            .map((e) => ({ path: e.name, size: e.size })),
      };

      if (!flags.write) {
        const report = await runLint(target, deps);
        io.result(
          { ok: report.findings.length === 0 || !flags.check, ...report },
          renderFindings(io, report),
        );
        if (flags.check && report.findings.length) process.exitCode = 1;
        return;
      }

      const plan = await planRewrite(target, deps);
      let wrote = false;
      let diffShown = false;
      let reason: string | undefined;
      if (plan.changed) {
        if (flags.dryRun) reason = '--dry-run';
        else if (ctx.global.yes) wrote = true;
        else if (io.prompter.interactive) {
          // On a terminal the diff is shown before the question, and not repeated after it.
          if (plan.diff) io.info(plan.diff.trimEnd());
          diffShown = true;
          wrote = await io.prompter.confirm(`write these changes to ${dockerfile}?`, false);
          if (!wrote) reason = 'declined';
        } else reason = 'not a terminal: add --yes to write';
      }
      if (wrote) {
        await files.writeFileAtomic(dockerfileAbs, plan.dockerfile);
        if (plan.dockerignore !== undefined)
          await files.writeFileAtomic(plan.dockerignorePath, plan.dockerignore);
      }
      io.result(
        {
          ok: true,
          file: plan.file,
          written: wrote,
          diff: plan.diff,
          changes: plan.changes,
          notDone: plan.notDone,
          excluded: plan.excluded,
          instructions: plan.instructions,
          checks: plan.checks,
        },
        renderPlan(plan, wrote, reason, diffShown),
      );
    });
};
