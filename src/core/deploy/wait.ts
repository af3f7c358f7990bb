// Waiting until created or updated services are stable (`deploy ecs --apply`): the
// rollout state of each service from DescribeServices, progress per service, and on
// failure what the circuit breaker did and why the tasks stopped.

import type { Service } from '@aws-sdk/client-ecs';
import { realClock } from '../../io/clock.js';
import { OperationFailedError } from '../../io/errors.js';
import { runPool, type TaskControl, type TaskRunner } from '../../io/progress.js';
import type { ApplyDeps, ApplyOptions } from './deps.js';
import type { EcsPlanResult } from './plan.js';

type RolloutState =
  | { kind: 'stable' }
  | { kind: 'failed'; reason: string; rolledBackTo?: string }
  | { kind: 'progress'; text: string };

/**
 * Stable: the PRIMARY deployment runs our task definition, its rollout COMPLETED, all tasks running.
 * `seenOurs`: whether an earlier answer had our deployment; until then an older PRIMARY is not a
 * rollback, only an answer from before our update (DescribeServices is eventually consistent).
 */
export function rolloutOf(service: Service, taskDefinition: string, seenOurs: boolean): RolloutState {
  const deployments = service.deployments ?? [];
  const primary = deployments.find((d) => d.status === 'PRIMARY');
  const ours =
    primary?.taskDefinition === taskDefinition
      ? primary
      : deployments.find((d) => d.taskDefinition === taskDefinition);
  const rolledBackTo =
    primary?.taskDefinition && primary.taskDefinition !== taskDefinition
      ? { rolledBackTo: primary.taskDefinition.split('/').pop()! }
      : {};
  if (ours?.rolloutState === 'FAILED') {
    return {
      kind: 'failed',
      reason: ours.rolloutStateReason ?? service.events?.[0]?.message ?? 'the deployment failed',
      ...rolledBackTo,
    };
  }
  if (primary && primary.taskDefinition !== taskDefinition && !ours && seenOurs) {
    // Our deployment is gone and an older one is PRIMARY: the circuit breaker rolled back.
    return {
      kind: 'failed',
      reason: primary.rolloutStateReason ?? service.events?.[0]?.message ?? 'rolled back',
      ...rolledBackTo,
    };
  }
  if (
    primary?.taskDefinition === taskDefinition &&
    primary.rolloutState === 'COMPLETED' &&
    service.runningCount === service.desiredCount
  ) {
    return { kind: 'stable' };
  }
  if (!ours) {
    return {
      kind: 'progress',
      text: `waiting for the deployment of ${taskDefinition.split('/').pop()} to start`,
    };
  }
  return {
    kind: 'progress',
    text: `${service.runningCount ?? 0}/${service.desiredCount ?? 0} running, ${service.pendingCount ?? 0} pending, rollout ${primary?.rolloutState ?? 'not started'}${primary?.failedTasks ? `, ${primary.failedTasks} failed task(s)` : ''}`,
  };
}

const plainRunner = (log: (line: string) => void): TaskRunner => ({
  run: (tasks, options = {}) =>
    runPool(tasks, options, (task) => ({
      title: () => undefined,
      output: (line) => log(`${task.title.split(':')[0]}: ${line}`),
    })),
});

/** What waiting needs: the ECS calls, a log, and optionally progress and a clock. */
export type WaitDeps = Pick<ApplyDeps, 'aws' | 'log' | 'tasks' | 'clock'>;
async function stoppedReasons(stack: string, service: string, deps: WaitDeps): Promise<string[]> {
  try {
    const arns = await deps.aws.ecs.listStoppedTasks(stack, service);
    const tasks = await deps.aws.ecs.describeTasks(stack, arns.slice(0, 5));
    return [
      ...new Set(
        tasks.flatMap((t) => [
          ...(t.stoppedReason ? [t.stoppedReason] : []),
          ...(t.containers ?? [])
            .filter((c) => c.reason || (c.exitCode !== undefined && c.exitCode !== 0))
            .map((c) => `${c.name}: ${c.reason ?? `exit code ${c.exitCode}`}`),
        ]),
      ),
    ];
  } catch {
    return []; // the rollout reason is reported anyway
  }
}

export async function waitUntilStable(
  plan: EcsPlanResult,
  services: { plan: EcsPlanResult['translation']['services'][number]; taskDefinition: string }[],
  deps: WaitDeps,
  options: ApplyOptions,
): Promise<{ name: string; seconds: number }[]> {
  const clock = deps.clock ?? realClock;
  const stack = plan.stack;
  const timeoutSeconds =
    options.waitTimeoutSeconds ??
    Math.max(0, ...services.map((s) => s.plan.healthCheckGracePeriodSeconds)) + 600;
  const pollMs = (options.pollSeconds ?? 15) * 1000;
  const started = clock.now();
  const deadline = started + timeoutSeconds * 1000;

  const controls = new Map<string, TaskControl>();
  const settle = new Map<string, { resolve(): void; reject(e: Error): void }>();
  const done = new Map<string, Promise<void>>();
  for (const s of services) {
    done.set(
      s.plan.name,
      new Promise<void>((resolve, reject) => settle.set(s.plan.name, { resolve, reject })),
    );
  }
  const stable: { name: string; seconds: number }[] = [];
  const failures: string[] = [];
  const runner = (deps.tasks ?? plainRunner(deps.log)).run(
    services.map((s) => ({
      title: `${s.plan.name}: waiting until stable`,
      run: async (control) => {
        controls.set(s.plan.name, control);
        await done.get(s.plan.name);
      },
    })),
    { concurrent: true, exitOnError: false },
  );

  const pending = new Map(services.map((s) => [s.plan.name, s]));
  const last = new Map<string, string>();
  const seen = new Set<string>();
  const visible = new Set<string>();
  while (pending.size) {
    const answers = await deps.aws.ecs.describeServices(stack, [...pending.keys()]);
    for (const [name, s] of pending) {
      const svc = answers.find((a) => a.serviceName === name);
      // Right after CreateService, DescribeServices may still answer MISSING for a while.
      const state: RolloutState = svc
        ? rolloutOf(svc, s.taskDefinition, seen.has(name))
        : visible.has(name)
          ? { kind: 'failed', reason: 'the service no longer exists' }
          : { kind: 'progress', text: 'waiting for the service to appear' };
      if (svc) visible.add(name);
      if (svc?.deployments?.some((d) => d.taskDefinition === s.taskDefinition)) seen.add(name);
      if (state.kind === 'progress') {
        if (last.get(name) !== state.text) controls.get(name)?.output(state.text);
        last.set(name, state.text);
        continue;
      }
      pending.delete(name);
      if (state.kind === 'stable') {
        const seconds = Math.round((clock.now() - started) / 1000);
        stable.push({ name, seconds });
        controls.get(name)?.title(`${name}: stable (${seconds}s)`);
        settle.get(name)!.resolve();
        continue;
      }
      const stopped = await stoppedReasons(stack, name, deps);
      const prefixes = s.plan.containers.map((c) => c.name).join(', ');
      const outcome = state.rolledBackTo
        ? `the circuit breaker rolled back to ${state.rolledBackTo}`
        : 'the circuit breaker stopped it';
      const message = `service ${name}: deployment failed, ${outcome}: ${state.reason}${stopped.length ? `; stopped tasks: ${stopped.join('; ')}` : ''}; logs kept in log group ${plan.translation.logGroup}, stream prefix ${prefixes}`;
      failures.push(message);
      settle.get(name)!.reject(new Error(`rolled back: ${state.reason}`));
    }
    if (!pending.size) break;
    if (clock.now() + pollMs > deadline) {
      for (const [name, s] of pending) {
        failures.push(
          `service ${name}: not stable after ${timeoutSeconds}s (${last.get(name) ?? 'no answer'}); logs in log group ${plan.translation.logGroup}, stream prefix ${s.plan.containers.map((c) => c.name).join(', ')}`,
        );
        settle.get(name)!.reject(new Error(`not stable after ${timeoutSeconds}s`));
      }
      break;
    }
    await clock.sleep(pollMs);
  }
  await runner;
  if (failures.length) {
    const timedOut = failures.every((f) => f.includes('not stable after'));
    throw new OperationFailedError(
      timedOut ? 'DEPLOY_TIMEOUT' : 'DEPLOY_FAILED',
      timedOut
        ? `${failures.length} service(s) not stable within ${timeoutSeconds}s`
        : `${failures.length} service(s) did not deploy`,
      {
        details: failures,
        hint: timedOut
          ? `ECS keeps deploying; look again with \`aws ecs describe-services --cluster ${stack}\`, or wait longer with --wait-timeout`
          : `read the logs: aws logs tail ${plan.translation.logGroup} --log-stream-name-prefix <service>; fix and run again`,
      },
    );
  }
  return stable;
}
