// `mlship deploy ecs --local [--down]`: run the stack's task definitions on this machine's
// engine as ECS would (core/deploy/local-run.ts), and report each container; `--down`
// removes what it started. A rollout running on ECS (deploy/ecs-rollouts.json) is run as its
// services run it: the candidate too, under its own name.

import type { EcsPlanResult } from '../../core/deploy/plan.js';
import type { IoHost } from '../../io/io-host.js';
import type { CliContext } from '../context.js';

export interface LocalFlags {
  /** mlship.yaml: the rollouts running on ECS are recorded beside it. */
  file: string;
  down: boolean;
  endpointUrl?: string;
  localEndpointUrl?: string;
  build: boolean;
}

/** An emulator on this machine's loopback, as the containers reach it. */
export function containerEndpoint(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const u = new URL(url);
  if (['127.0.0.1', 'localhost', '0.0.0.0', '[::1]'].includes(u.hostname))
    u.hostname = 'host.docker.internal';
  return u.toString().replace(/\/$/, '');
}

function render(
  io: IoHost,
  r: import('../../core/deploy/local-run.js').LocalRunResult,
  source: string,
): string {
  const mark = { healthy: 'ok', running: 'ok' } as Record<string, string>;
  return [
    `ran the ${source} task definitions on this machine's engine (network ${r.network}; AWS credentials: ${r.credentials}):`,
    ...r.containers.map((c) => {
      const status = mark[c.status] ? io.style('ok', c.status) : io.style('fail', c.status);
      const tail = c.logs?.length ? `\n${c.logs.map((l) => `      ${io.style('dim', l)}`).join('\n')}` : '';
      return `  ${status.padEnd(10)} ${c.family}/${c.container}: ${c.detail}${tail}`;
    }),
    ...r.endpoints.map((e) => `endpoint: ${e.url} (load balancer listener :${e.port} → ${e.container})`),
    r.ok
      ? 'every task started: the deploy can run'
      : 'not every task started: the deploy would fail the same way on ECS',
    `stop with: mlship deploy ecs --local --down`,
  ].join('\n');
}

export async function runLocal(
  ctx: CliContext,
  plan: EcsPlanResult,
  flags: LocalFlags,
  aws: import('../../core/deploy/aws-apis.js').AwsDeployApis,
) {
  const { runLocally, stopLocal, taskDefinitionsToRun } = await import('../../core/deploy/local-run.js');
  const engine = await ctx.engine();
  if (flags.down) {
    const removed = await stopLocal(plan.stack, { engine });
    ctx.io.result(
      { ok: true, stack: plan.stack, removed },
      `removed ${removed} local container(s) of stack ${plan.stack}`,
    );
    return;
  }
  const { ecsRolloutsFile, readRollouts } = await import('../../core/rollout/state.js');
  const { rollouts } = await readRollouts(ecsRolloutsFile(flags.file));
  const chosen = await taskDefinitionsToRun(plan, { aws }, Object.values(rollouts));
  if (chosen.source === 'planned') {
    // Not deployed yet: the images mlship builds come from this machine.
    const { buildStackImages } = await import('../../core/deploy/images.js');
    await buildStackImages(plan, { engine, tasks: ctx.io.tasks }, { sourceBuilds: flags.build });
  }
  const endpointUrl = flags.localEndpointUrl ?? containerEndpoint(flags.endpointUrl);
  const r = await runLocally(
    { engine, aws, log: (l) => ctx.io.info(l) },
    {
      stack: plan.stack,
      region: plan.region,
      taskDefinitions: chosen.taskDefinitions,
      lowPriority: chosen.lowPriority,
      listeners: (plan.loadBalancer?.listeners ?? []).flatMap((l) =>
        l.forward
          ? [{ port: l.port, container: l.forward.container, containerPort: l.forward.containerPort }]
          : [],
      ),
      ...(endpointUrl ? { endpointUrl } : {}),
    },
  );
  ctx.io.result(
    { stack: plan.stack, source: chosen.source, revisions: chosen.revisions, ...r },
    render(ctx.io, r, chosen.source === 'deployed' ? `deployed (${chosen.revisions.join(', ')})` : 'planned'),
  );
  if (!r.ok) process.exitCode = 1;
}
