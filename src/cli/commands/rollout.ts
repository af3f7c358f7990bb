// `mlship rollout start|status|promote|rollback|watch`: test a new version of a model service
// in production — a canary share, an A/B split or a shadow — on the local stack or on ECS
// (--target ecs), with the numbers compared side by side and promotion or rollback by gates.

import path from 'node:path';
import { type Command, Option } from 'commander';
import type { GateFlags, StartFlags } from '../../core/rollout/options.js';
import type { RolloutTarget, StatusReport } from '../../core/rollout/target.js';
import type { Gates } from '../../core/rollout/verdict.js';
import type { IoHost } from '../../io/io-host.js';
import type { CliContext, ContextHolder, Register } from '../context.js';
import { examples } from '../examples.js';

interface TargetFlags {
  file: string;
  out?: string;
  timeout?: string;
  target: 'local' | 'ecs';
  region?: string;
  accountId?: string;
  profile?: string;
  endpointUrl?: string;
  registry?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function withTargetFlags(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'project config', 'mlship.yaml')
    .option('-o, --out <dir>', 'where the local stack is (default: deploy/compose beside mlship.yaml)')
    .option('--timeout <seconds>', 'how long a new candidate may take to be healthy')
    .addOption(
      new Option('--target <where>', 'the local stack (compose) or the deployed one (ECS)')
        .choices(['local', 'ecs'])
        .default('local'),
    )
    .option('--region <region>', 'ECS: AWS region (default: aws.region in mlship.yaml)')
    .option('--account-id <id>', 'ECS: AWS account id (default: aws.account_id in mlship.yaml)')
    .option('--profile <name>', 'ECS: AWS profile (default: the SDK chain)')
    .option('--endpoint-url <url>', 'ECS: AWS endpoint override (emulators such as moto)')
    .option('--registry <host>', 'ECS: push a --path candidate here instead of ECR');
}

function withGateFlags(cmd: Command): Command {
  return cmd
    .option('--min-requests <n>', 'candidate requests before a promotion (default 1000)')
    .option('--alpha <p>', 'significance level of each test (default 0.01)')
    .option(
      '--max-error-increase <points>',
      'a significant 5xx increase rolls back above this many points (default 0)',
    )
    .option(
      '--max-latency-increase <share>',
      'a significantly slower p50 rolls back above this share (default 0.2)',
    )
    .option('--min-agreement <share>', 'roll back when answers agree significantly less often (e.g. 0.95)');
}

async function target(
  ctx: CliContext,
  service: string,
  flags: TargetFlags,
  gates?: GateFlags,
): Promise<RolloutTarget> {
  const [{ gatesFromFlags }, { UsageError }] = await Promise.all([
    import('../../core/rollout/options.js'),
    import('../../io/errors.js'),
  ]);
  // Only the gates given on this command replace the ones the rollout was started with.
  const full = gates ? gatesFromFlags(gates) : undefined;
  const flagOf = {
    minRequests: 'minRequests',
    alpha: 'alpha',
    maxErrorIncreasePoints: 'maxErrorIncrease',
    maxLatencyIncrease: 'maxLatencyIncrease',
    minAgreement: 'minAgreement',
  } as const;
  const gateOverride = full
    ? Object.fromEntries(Object.entries(full).filter(([k]) => gates![flagOf[k as keyof Gates]] !== undefined))
    : undefined;
  if (flags.target === 'ecs') {
    const { ecsTarget } = await import('./rollout-ecs.js');
    const { target: t, close } = await ecsTarget(ctx, service, flags, gateOverride);
    process.once('beforeExit', close);
    return t;
  }
  if (flags.timeout !== undefined && !/^\d+$/.test(flags.timeout))
    throw new UsageError(`--timeout ${flags.timeout} is not a whole number of seconds`, {
      hint: '--timeout 300',
    });
  const [
    { LocalRollout },
    { detectCompose, composeRunner },
    { exec },
    { EnvironmentError, OperationFailedError },
    { realClock },
    { prepareShadowParent, parentIdle },
    { SHADOW_CGROUP_PARENTS },
  ] = await Promise.all([
    import('../../core/rollout/local.js'),
    import('../../adapters/compose.js'),
    import('../../adapters/exec.js'),
    import('../../io/errors.js'),
    import('../../io/clock.js'),
    import('../../adapters/cgroups.js'),
    import('../../core/rollout/shadow-priority.js'),
  ]);
  const cli = await detectCompose(exec);
  if (!cli)
    throw new EnvironmentError('COMPOSE_MISSING', 'neither `docker compose` nor `docker-compose` was found', {
      hint: 'install the compose plugin (docker-compose-plugin) or docker-compose',
    });
  const docker = async (args: string[]) => {
    const r = await exec('docker', args, { timeoutMs: 120_000 });
    if (r.notFound)
      throw new EnvironmentError('DOCKER_CLI_MISSING', 'the docker command was not found', {
        hint: 'install the Docker CLI (docker-ce-cli or docker.io)',
      });
    return r;
  };
  const engine = await ctx.engine();
  const pid = async (id: string) =>
    Number((await docker(['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim()) || 0;
  return new LocalRollout(
    {
      compose: composeRunner(exec),
      cli,
      engine,
      containerLogs: async (id, since) => (await docker(['logs', '--since', since.toISOString(), id])).stdout,
      execIn: (id, argv) => docker(['exec', id, ...argv]),
      removeContainer: async (id) => {
        await docker(['rm', '-f', id]);
      },
      updateCpu: async (id, cpu) => {
        // No cap: every CPU of the engine (`docker update --cpus 0` keeps the old cap).
        const cpus = cpu.cpus === null ? (await engine.info()).cpus : cpu.cpus;
        const r = await docker([
          'update',
          '--cpu-shares',
          String(cpu.shares),
          ...(cpus === undefined ? [] : ['--cpus', String(cpus)]),
          id,
        ]);
        if (r.exitCode !== 0)
          throw new OperationFailedError('ROLLOUT_CPU_UPDATE_FAILED', `docker update of ${id} failed`, {
            details: r.stderr.split('\n').filter(Boolean).slice(-10),
          });
      },
      shadowCgroups: {
        prepare: async (reference) =>
          prepareShadowParent(
            await engine.info(),
            await pid(reference),
            reference,
            SHADOW_CGROUP_PARENTS,
            exec,
          ),
        idle: async (id) => parentIdle(await pid(id), id),
      },
      fetch: globalThis.fetch,
      clock: realClock,
      log: (l) => ctx.io.info(l),
    },
    {
      configFile: path.resolve(ctx.cwd, flags.file),
      ...(flags.out ? { outDir: path.resolve(ctx.cwd, flags.out) } : {}),
      ...(flags.timeout ? { timeoutSeconds: Number(flags.timeout) } : {}),
    },
    service,
    gateOverride,
  );
}

const num = (v: number | undefined, digits = 1) => (v === undefined ? '-' : v.toFixed(digits));

/** How many mirrored requests the candidate predicted (a starved or slow shadow predicts fewer). */
function mirrorLine(m: NonNullable<StatusReport['mirror']>): string {
  const share = m.mirrored ? ` (${((m.notPredicted / m.mirrored) * 100).toFixed(1)} %)` : '';
  return `  mirrored     ${m.mirrored} requests, ${m.predicted} predicted by the candidate; ${m.notPredicted} not${share}: dropped by its full queue, skipped by the proxy's timeouts, or still queued`;
}

export function renderStatus(io: IoHost, r: StatusReport): string {
  const { comparison: c, verdict: v, rollout } = r;
  const row = (label: string, a: string, b: string, test = '') =>
    `  ${label.padEnd(12)} ${a.padStart(12)} ${b.padStart(12)}   ${io.style('dim', test)}`.trimEnd();
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  const ms = (x: number | undefined) => (x === undefined ? '-' : `${num(x)} ms`);
  const mode =
    rollout.mode === 'shadow'
      ? 'shadow (every request mirrored; answers from stable)'
      : `${rollout.mode === 'ab' ? 'A/B' : 'canary'}, ${rollout.weight} % to the candidate${rollout.mirror ? ' (the rest mirrored)' : ''}`;
  const tone = v.decision === 'promote' ? 'ok' : v.decision === 'rollback' ? 'fail' : 'warn';
  return [
    `rollout of ${rollout.service}: ${mode}; ${rollout.status}, since ${rollout.startedAt}; candidate ${r.candidateHealth}`,
    row('', 'stable', 'candidate'),
    row('requests', String(c.stable.requests), String(c.candidate.requests)),
    row(
      '5xx rate',
      pct(c.stable.errorRate),
      pct(c.candidate.errorRate),
      `two-proportion z-test: z = ${c.errors.z.toFixed(2)}, p = ${c.errors.pValue.toPrecision(2)}`,
    ),
    row(
      'p50',
      ms(c.stable.p50Ms),
      ms(c.candidate.p50Ms),
      `Mann-Whitney U: p = ${c.latency.pValue.toPrecision(2)}${c.latency.p50Ratio ? ` (×${c.latency.p50Ratio.toFixed(2)})` : ''}`,
    ),
    row('p95', ms(c.stable.p95Ms), ms(c.candidate.p95Ms)),
    row('p99', ms(c.stable.p99Ms), ms(c.candidate.p99Ms)),
    c.agreement
      ? `  agreement    ${pct(c.agreement.rate)} of ${c.agreement.pairs} requests both versions answered`
      : `  agreement    - (no answers recorded by both versions${rollout.mode === 'shadow' || rollout.mirror ? ' yet' : ': use --shadow or --mirror'})`,
    ...(r.mirror ? [mirrorLine(r.mirror)] : []),
    `${io.style(tone, `verdict: ${v.decision}`)}: ${v.reasons.join('; ')}`,
    io.style(
      'dim',
      `a 2-point rise of the 5xx rate shows after about ${Number.isFinite(c.requestsFor2PointIncrease) ? c.requestsFor2PointIncrease : '-'} candidate requests (one-sided, power 80 %)`,
    ),
    ...r.notes.map((n) => io.style('dim', `note: ${n}`)),
  ].join('\n');
}

/** `rollout start`'s own flags: the routing, the candidate, what is recorded, the shadow's limits. */
function withStartFlags(cmd: Command): Command {
  return cmd
    .option('--canary <percent>', 'send this share of requests to the candidate')
    .option('--ab <percent>', 'an A/B split: this share to the candidate (sticky with --sticky-*)')
    .option('--shadow', 'mirror every request to the candidate; clients get the stable answers only', false)
    .option('--path <dir>', 'the candidate, built like any service (e.g. the output of `mlship wrap`)')
    .option('--image <ref>', 'the candidate as an image')
    .option('--env <NAME=value>', "the candidate's environment overrides (repeatable)", collect)
    .option('--sticky-header <name>', 'the same header value always reaches the same version')
    .option('--sticky-cookie <name>', 'the same cookie value always reaches the same version')
    .option(
      '--mirror',
      'canary/A-B: mirror what the stable version answers to the candidate too, to compare answers',
      false,
    )
    .option('--record-sample <share>', 'share of requests whose answers both versions record (default 0.1)')
    .option(
      '--record-inputs',
      "the candidate records the compared requests' inputs too (off: answers only)",
      false,
    )
    .option(
      '--shadow-timeout <duration>',
      'how long the proxy waits for the shadow (default: proxy.shadow_timeout_ms, 250ms)',
    )
    .option('--shadow-cpus <cpus>', 'locally, cap the shadow at this many CPUs (its priority is low anyway)');
}

async function runStart(holder: ContextHolder, service: string, flags: TargetFlags & StartFlags & GateFlags) {
  const ctx = holder.get();
  const { rolloutFromFlags, gatesFromFlags } = await import('../../core/rollout/options.js');
  const planned = rolloutFromFlags(service, flags, new Date());
  const gates = gatesFromFlags(flags);
  const t = await target(ctx, service, flags);
  const r = await t.start({ ...planned, gates }, { stackShadowTimeout: flags.shadowTimeout === undefined });
  const { summarize } = await import('../../generators/compose-rollout.js');
  ctx.io.result(
    { ok: true, rollout: r },
    [
      `rollout of ${service} started: ${summarize(r)}`,
      flags.target === 'ecs'
        ? `X-Model-Version: candidate on a request to /api/${service}/ reaches the candidate (a listener rule of the load balancer)`
        : 'X-Model-Version: candidate (or stable) on a request chooses the version; every answer names it in X-Model-Version',
      `next: mlship rollout status ${service}, then promote, rollback or watch`,
    ].join('\n'),
  );
}

function registerStart(rollout: Command, holder: ContextHolder): void {
  withStartFlags(withGateFlags(withTargetFlags(rollout.command('start'))))
    .description(
      'start the candidate as <service>-candidate and route a share of the traffic (or a mirror) to it',
    )
    .argument('<service>', 'the model service to replace')
    .addHelpText(
      'after',
      examples([
        [
          'mlship rollout start iris --canary 10 --path services/iris-v2',
          '10 % of requests to the new version',
        ],
        [
          'mlship rollout start iris --shadow --path services/iris-v2 --record-sample 1',
          'compare every answer, serve none',
        ],
        [
          'mlship rollout start iris --ab 50 --image acme/iris:v2 --sticky-header X-User-Id',
          'an A/B test per user',
        ],
      ]),
    )
    .action((service: string, flags: TargetFlags & StartFlags & GateFlags) =>
      runStart(holder, service, flags),
    );
}

function registerStatus(rollout: Command, holder: ContextHolder): void {
  withGateFlags(withTargetFlags(rollout.command('status')))
    .description(
      'stable and candidate side by side: requests, 5xx rate, p50/p95/p99, agreement, the tests and a verdict',
    )
    .argument('<service>')
    .addHelpText('after', examples([['mlship rollout status iris', 'the numbers and the verdict']]))
    .action(async (service: string, flags: TargetFlags & GateFlags) => {
      const ctx = holder.get();
      const t = await target(ctx, service, flags, flags);
      const r = await t.status();
      ctx.io.result({ ok: true, ...r }, renderStatus(ctx.io, r));
    });
}

function registerPromote(rollout: Command, holder: ContextHolder): void {
  withTargetFlags(rollout.command('promote'))
    .description('make the candidate the stable version (or, with --to, give it that share of the traffic)')
    .argument('<service>')
    .option('--to <percent>', "only change the candidate's share (a shadow becomes a canary)")
    .addHelpText(
      'after',
      examples([
        ['mlship rollout promote iris --to 50', 'half of the traffic'],
        ['mlship rollout promote iris', 'the candidate becomes the stable service'],
      ]),
    )
    .action(async (service: string, flags: TargetFlags & { to?: string }) => {
      const ctx = holder.get();
      const t = await target(ctx, service, flags);
      if (flags.to !== undefined) {
        const { UsageError } = await import('../../io/errors.js');
        const n = Number(flags.to);
        if (!/^\d+$/.test(flags.to) || n < 0 || n > 100)
          throw new UsageError(`--to ${flags.to} is not a whole percentage from 0 to 100`);
        await t.setWeight(n);
        ctx.io.result({ ok: true, service, weight: n }, `${service}: ${n} % of requests to the candidate`);
        return;
      }
      const p = await t.promote();
      ctx.io.result(
        { ok: true, service, promoted: p },
        [
          `${service} promoted: the stable service runs ${p.stableNow}; the candidate is removed`,
          ...p.notes,
        ].join('\n'),
      );
    });
}

function registerRollback(rollout: Command, holder: ContextHolder): void {
  withTargetFlags(rollout.command('rollback'))
    .description('every request back to the stable version; the candidate is scaled to 0 (kept for its logs)')
    .argument('<service>')
    .option('--reason <text>', 'recorded with the rollback', 'rolled back by hand')
    .option('--destroy', "also remove the candidate's container", false)
    .action(async (service: string, flags: TargetFlags & { reason: string; destroy: boolean }) => {
      const ctx = holder.get();
      const t = await target(ctx, service, flags);
      await t.rollback(flags.reason, { destroy: flags.destroy });
      ctx.io.result(
        { ok: true, service, rolledBack: true, destroyed: flags.destroy },
        `${service}: every request to the stable version; the candidate is ${flags.destroy ? 'removed' : 'stopped (its logs are kept; --destroy removes it)'}`,
      );
    });
}

function registerWatch(rollout: Command, holder: ContextHolder): void {
  withGateFlags(withTargetFlags(rollout.command('watch')))
    .description(
      "step the candidate's share on a schedule, checking the gates; promote at the end, roll back on a breach (exit 1)",
    )
    .argument('<service>')
    .option('--steps <percents>', "the candidate's share at each step", '10,50,100')
    .option('--bake <duration>', 'how long each step runs before the next', '10m')
    .option('--interval <duration>', 'between two looks at the numbers', '15s')
    .addOption(
      new Option(
        '--max-hold <duration>',
        'after the last step, how long to wait for enough requests',
      ).default('1h'),
    )
    .addHelpText(
      'after',
      examples([
        ['mlship rollout watch iris --steps 10,50,100 --bake 10m', 'the usual canary'],
        ['mlship rollout watch iris --steps 100 --bake 30m --min-requests 5000', 'one step, more evidence'],
      ]),
    )
    .action(
      async (
        service: string,
        flags: TargetFlags & GateFlags & { steps: string; bake: string; interval: string; maxHold: string },
      ) => {
        const ctx = holder.get();
        const [{ parseSteps, parseDuration }, { watchRollout }, { realClock }] = await Promise.all([
          import('../../core/rollout/options.js'),
          import('../../core/rollout/watch.js'),
          import('../../io/clock.js'),
        ]);
        const options = {
          steps: parseSteps(flags.steps),
          bakeMs: parseDuration('--bake', flags.bake),
          intervalMs: parseDuration('--interval', flags.interval),
          maxHoldMs: parseDuration('--max-hold', flags.maxHold),
        };
        const t = await target(ctx, service, flags, flags);
        const r = await watchRollout(t, options, {
          clock: realClock,
          log: (l) => ctx.io.info(l),
          onStatus: (s, step) =>
            ctx.io.info(
              `${service} @ ${step} %: ${s.comparison.candidate.requests} candidate requests, 5xx ${(s.comparison.candidate.errorRate * 100).toFixed(2)} % vs ${(s.comparison.stable.errorRate * 100).toFixed(2)} %; ${s.verdict.decision}`,
            ),
        });
        ctx.io.result(
          { ok: true, service, promoted: r.promoted, looks: r.looks, final: r.final },
          [
            renderStatus(ctx.io, r.final),
            `${service} promoted after ${r.looks} looks: the stable service runs ${r.promoted.stableNow}`,
            ...r.promoted.notes,
          ].join('\n'),
        );
      },
    );
}

export const registerRollout: Register = (program: Command, holder) => {
  const rollout = program
    .command('rollout')
    .description(
      'test a new model version in production: canary, A/B or shadow, with promotion or rollback by gates',
    );
  registerStart(rollout, holder);
  registerStatus(rollout, holder);
  registerPromote(rollout, holder);
  registerRollback(rollout, holder);
  registerWatch(rollout, holder);
};
