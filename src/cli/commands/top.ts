// `mlship top`: one screen of the running stack, refreshed every --interval seconds — per
// service requests/s, p50/p99, 5xx share, in-flight and replicas, and the workers' queues —
// from the local stack (default) or the deployed one (--aws). `q` quits; `--json` (or a
// stdout that is not a terminal) prints one snapshot and exits. What people look at before
// they open a dashboard.

import path from 'node:path';
import type { Command } from 'commander';
import type { TopSnapshot, TopSource } from '../../core/top/snapshot.js';
import { UsageError } from '../../io/errors.js';
import type { CliContext, Register } from '../context.js';
import { examples } from '../examples.js';

interface TopFlags {
  file: string;
  interval: string;
  aws: boolean;
  region?: string;
  accountId?: string;
  profile?: string;
  endpointUrl?: string;
}

interface OpenSource {
  source: TopSource;
  close(): void;
}

/** SQS for the queue counts: the local ElasticMQ (which checks no signature: any key will do) or AWS. */
async function queueApis(
  target: { port: number } | { region: string; profile?: string; endpointUrl?: string },
) {
  const { createJobApis } = await import('../../adapters/aws/jobs-apis.js');
  if ('port' in target)
    return createJobApis({
      region: 'us-east-1',
      bucket: 'unused',
      endpoints: { sqs: `http://127.0.0.1:${target.port}` },
      credentials: { accessKeyId: 'mlship', secretAccessKey: 'mlship' },
    });
  return createJobApis({
    region: target.region,
    bucket: 'unused',
    ...(target.profile ? { profile: target.profile } : {}),
    ...(target.endpointUrl ? { endpoints: { sqs: target.endpointUrl } } : {}),
  });
}

/** The local stack's name and worker queues: from mlship.yaml, or a compose file of the user's (no queues). */
async function localStack(file: string) {
  const [{ isComposeFile }, { loadComposeStack }, { loadProject }, { deadLetterQueueName, jobQueueName }] =
    await Promise.all([
      import('../../core/compose/user-compose.js'),
      import('../../core/stack/load-stack.js'),
      import('../../config/load.js'),
      import('../../config/job-queues.js'),
    ]);
  if (await isComposeFile(file)) return { name: (await loadComposeStack(file)).name, queues: [] };
  const project = await loadProject(file);
  const workers = project.queue
    ? Object.keys(project.services).filter((s) => project.services[s]!.worker)
    : [];
  return {
    name: project.name,
    queuePort: project.queue?.host_port,
    queues: workers.map((service) => ({
      service,
      name: jobQueueName(project.name, service),
      deadLetter: deadLetterQueueName(project.name, service),
    })),
  };
}

async function localSource(ctx: CliContext, flags: TopFlags): Promise<OpenSource> {
  const [{ LocalTopSource }, { METRICS_COMMAND }, clock] = await Promise.all([
    import('../../core/top/local.js'),
    import('../../generators/metrics-command.js'),
    import('../../io/clock.js'),
  ]);
  const stack = await localStack(path.resolve(ctx.cwd, flags.file));
  const engine = await ctx.engine();
  const apis =
    stack.queuePort && stack.queues.length ? await queueApis({ port: stack.queuePort }) : undefined;
  const source = new LocalTopSource(
    {
      listByLabel: (label, value) => engine.listByLabel(label, value),
      async metrics(id) {
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        const r = await engine.exec(id, {
          cmd: METRICS_COMMAND,
          onStdout: (c) => void out.push(Buffer.from(c)),
          onStderr: (c) => void err.push(Buffer.from(c)),
        });
        if (r.exitCode !== 0)
          throw new Error(
            Buffer.concat(err).toString('utf8').trim().split('\n').at(-1) || `exit ${r.exitCode}`,
          );
        return Buffer.concat(out).toString('utf8');
      },
      ...(apis ? { queue: apis.queue } : {}),
      clock: clock.realClock,
    },
    { name: stack.name, queues: stack.queues },
  );
  return { source, close: () => apis?.destroy() };
}

async function ecsSource(ctx: CliContext, flags: TopFlags): Promise<OpenSource> {
  const [{ stackNames, deployApis }, { EcsTopSource, ecsTopStack }, { loadBalancerMetrics }, clock] =
    await Promise.all([
      import('./deploy.js'),
      import('../../core/top/ecs.js'),
      import('../../core/deploy/operate.js'),
      import('../../io/clock.js'),
    ]);
  const { plan, aws: resolved } = await stackNames(ctx, { ...flags, force: false, monitoring: true });
  const aws = await deployApis(resolved, plan.region, plan.stack);
  const sqs = plan.queues?.length
    ? await queueApis({
        region: plan.region,
        ...(resolved.profile ? { profile: resolved.profile } : {}),
        ...(resolved.endpointUrl ? { endpointUrl: resolved.endpointUrl } : {}),
      })
    : undefined;
  const source = new EcsTopSource(
    {
      ecs: aws.ecs,
      cloudwatch: aws.cloudwatch,
      loadBalancer: () => loadBalancerMetrics(plan, { aws }),
      ...(sqs ? { queue: sqs.queue } : {}),
      clock: clock.realClock,
    },
    ecsTopStack(plan),
  );
  return { source, close: () => sqs?.destroy() };
}

function intervalMs(text: string): number {
  const seconds = Number(text);
  if (!(seconds >= 0.5 && seconds <= 3600)) {
    throw new UsageError(`--interval ${text} is not a number of seconds`, {
      hint: 'between 0.5 and 3600, e.g. --interval 2',
    });
  }
  return seconds * 1000;
}

/** Refreshes the screen until `q` (exit 0) or Ctrl-C (130); the terminal is restored whatever happens. */
async function live(ctx: CliContext, source: TopSource, everyMs: number): Promise<void> {
  const [{ openScreen }, { renderTop }, { colorLevel, createStyler }, { ExitCode }] = await Promise.all([
    import('../../io/terminal.js'),
    import('../top-screen.js'),
    import('../../io/style.js'),
    import('../../io/errors.js'),
  ]);
  const style = createStyler(ctx.global.color ? colorLevel(ctx.env, true) : 0);
  let stop: 'quit' | 'interrupt' | undefined;
  let wake = () => {};
  const screen = openScreen(process.stdin, process.stdout, (action) => {
    if (action !== 'refresh') stop = action;
    wake();
  });
  const restore = () => screen.restore();
  const unregister = ctx.cleanup.add('terminal', async () => restore());
  process.once('exit', restore);
  const width = () => process.stdout.columns || 80;
  let last: TopSnapshot | undefined;
  let failure = '';
  const draw = () => {
    const lines = last
      ? renderTop(last, width(), style)
      : [`mlship top: reading the stack (${everyMs / 1000} s)…`];
    screen.draw(failure ? [...lines, '', style('fail', failure.slice(0, width()))] : lines);
  };
  const onResize = () => draw();
  process.stdout.on('resize', onResize);
  try {
    draw();
    while (!stop) {
      const started = Date.now();
      try {
        last = await source.snapshot(everyMs);
        failure = '';
      } catch (e) {
        // A stack restarting, the engine busy: said on the screen, tried again next time.
        failure = `reading failed: ${(e as Error).message}`;
      }
      if (stop) break;
      draw();
      await new Promise<void>((resolve) => {
        // Every interval, however long a reading took.
        const t = setTimeout(resolve, Math.max(0, everyMs - (Date.now() - started)));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    process.stdout.off('resize', onResize);
    restore();
    unregister();
    process.off('exit', restore);
  }
  if (stop === 'interrupt') process.exitCode = ExitCode.interrupted;
}

export const registerTop: Register = (program: Command, holder) => {
  program
    .command('top')
    .description('a live view of the running stack: requests/s, p50/p99, 5xx, in-flight, replicas, queues')
    .option('-f, --file <path>', 'project config', 'mlship.yaml')
    .option('--interval <seconds>', 'refresh every this many seconds (the local rates are over it)', '2')
    .option('--aws', 'the deployed stack on ECS, from CloudWatch (default: the local stack)', false)
    .option('--region <region>', 'with --aws: the AWS region (default: as `deploy ecs` resolves it)')
    .option('--account-id <id>', 'with --aws: the 12-digit account (default: from the credentials)')
    .option('--profile <name>', 'with --aws: a profile of ~/.aws/config')
    .option('--endpoint-url <url>', 'with --aws: an AWS-compatible endpoint (an emulator)')
    .addHelpText(
      'after',
      examples([
        ['mlship top', 'the local stack, every 2 s; q quits'],
        ['mlship top --aws', 'the stack on ECS (CloudWatch: the last complete minute)'],
        ['mlship --json top', 'one snapshot as JSON'],
      ]),
    )
    .action(async (flags: TopFlags) => {
      const ctx = holder.get();
      const everyMs = intervalMs(flags.interval);
      const { source, close } = flags.aws ? await ecsSource(ctx, flags) : await localSource(ctx, flags);
      try {
        if (ctx.io.json || !process.stdout.isTTY) {
          const snapshot = await source.snapshot(everyMs);
          const { renderTop } = await import('../top-screen.js');
          const { createStyler } = await import('../../io/style.js');
          ctx.io.result({ ok: true, ...snapshot }, renderTop(snapshot, 120, createStyler(0)).join('\n'));
          return;
        }
        await live(ctx, source, everyMs);
      } finally {
        close();
      }
    });
};
