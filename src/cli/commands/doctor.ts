import path from 'node:path';
import type { Command } from 'commander';
import type { DoctorReport } from '../../core/doctor/doctor.js';
import type { IoHost } from '../../io/io-host.js';
import type { CliContext, Register } from '../context.js';
import { examples } from '../examples.js';

function render(io: IoHost, report: DoctorReport): string {
  const mark = { ok: io.style('ok', 'ok  '), warn: io.style('warn', 'warn'), fail: io.style('fail', 'FAIL') };
  const width = Math.max(...report.checks.map((c) => c.title.length));
  const lines = report.checks.map((c) => {
    const fix = c.fix ? `\n       ${' '.repeat(width)} ${io.style('dim', `fix: ${c.fix}`)}` : '';
    return `${mark[c.status]}  ${c.title.padEnd(width)} ${c.detail}${fix}`;
  });
  lines.push('', report.ok ? 'Ready.' : 'A required check failed: fix it and run `mlship doctor` again.');
  return lines.join('\n');
}

/** `--image`: the image's GPU needs and fit; the engine only when reachable (labels may come from the registry). */
async function imageDoctor(ctx: CliContext, image: string, instanceType: string | undefined) {
  const [{ imageFit }, { createImageLabels }, { builtinMatrix }] = await Promise.all([
    import('../../core/doctor/image-fit.js'),
    import('../../adapters/docker/image-labels.js'),
    import('../../core/bakeoff/matrix.js'),
  ]);
  const engine = await ctx.engine().catch(() => undefined);
  return imageFit(
    { image, ...(instanceType ? { instanceType } : {}) },
    {
      images: createImageLabels(engine ? { engine } : {}),
      ...(engine ? { engine } : {}),
      matrix: builtinMatrix(),
      runId: 'mlship-doctor',
    },
  );
}

export const registerDoctor: Register = (program: Command, holder) => {
  program
    .command('doctor')
    .description(
      'check this machine: Node, Docker engine, compose, BuildKit, NVIDIA GPUs (of the engine host), AWS credentials, disk; or an image (--image)',
    )
    .option('--skip <ids>', 'comma-separated checks to skip (e.g. aws,nvidia)', '')
    .option('--image <ref>', "an image's GPU build (its labels, or a probe), instead of the machine checks")
    .option(
      '--gpu-instance <type>',
      'with --image: does it run on this EC2 instance type (GPU and ECS GPU AMI driver)?',
    )
    .option(
      '--probe-image <ref>',
      'image of the nvidia-smi container that finds the GPUs (default python:3.11-slim)',
    )
    .addHelpText(
      'after',
      examples([
        ['mlship doctor', 'check everything'],
        ['mlship doctor --json | jq .ok', 'for scripts: exit 1 when a required check fails'],
        ['mlship doctor --skip aws', 'on a machine that never deploys'],
        [
          'mlship doctor --image my/model:1 --gpu-instance g5.xlarge',
          'will it run there? (offline, no pull)',
        ],
      ]),
    )
    .action(async (opts: { skip: string; image?: string; gpuInstance?: string; probeImage?: string }) => {
      const ctx = holder.get();
      if (opts.image) {
        const report = await imageDoctor(ctx, opts.image, opts.gpuInstance);
        ctx.io.result(report, render(ctx.io, report));
        if (!report.ok) process.exitCode = 1;
        return;
      }
      if (opts.gpuInstance) {
        const { UsageError } = await import('../../io/errors.js');
        throw new UsageError('--gpu-instance goes with --image', {
          hint: 'e.g. mlship doctor --image my/model:1 --gpu-instance g5.xlarge',
        });
      }
      const [
        { runDoctor, projectHints },
        { exec },
        { resolveAws },
        { createAwsEnvironment },
        { statfs, readFile },
      ] = await Promise.all([
        import('../../core/doctor/doctor.js'),
        import('../../adapters/exec.js'),
        import('../../core/aws/aws-config.js'),
        import('../../adapters/aws/environment.js'),
        import('node:fs/promises'),
      ]);
      // The project of the directory the command runs in (the context's, not the process's).
      const hints = projectHints(
        await readFile(path.join(ctx.cwd, 'mlship.yaml'), 'utf8').catch(() => undefined),
      );
      const report = await runDoctor({
        nodeVersion: process.version,
        connectEngine: () => ctx.engine(),
        exec,
        resolveAws: () => resolveAws({}, hints.aws, createAwsEnvironment(ctx.env), { credentials: 'report' }),
        freeBytes: async (dir) => {
          try {
            const s = await statfs(dir);
            return s.bavail * s.bsize;
          } catch {
            return undefined;
          }
        },
        cwd: ctx.cwd,
        projectNeedsGpu: hints.needsGpu,
        ...(opts.probeImage ? { gpuProbeImage: opts.probeImage } : {}),
        skip: opts.skip
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      });
      ctx.io.result(report, render(ctx.io, report));
      if (!report.ok) process.exitCode = 1;
    });
};
