// `mlship rollout watch`: steps the candidate's share on a schedule (e.g. 10, 50, 100 %),
// holds each step for its bake time while checking the gates, promotes once the last step has
// baked and the verdict is "promote", and rolls back the moment a gate is breached or the
// candidate goes down (weights 100/0, candidate scaled to 0, the reason, exit 1).

import type { Clock } from '../../io/clock.js';
import { OperationFailedError } from '../../io/errors.js';
import type { PromoteResult, RolloutTarget, StatusReport } from './target.js';

export interface WatchOptions {
  steps: number[];
  bakeMs: number;
  /** Between two looks at the numbers. */
  intervalMs: number;
  /** After the last bake, how long to wait for enough candidate requests before giving up (held). */
  maxHoldMs: number;
}

export interface WatchResult {
  promoted: PromoteResult;
  looks: number;
  final: StatusReport;
}

export interface WatchDeps {
  clock: Clock;
  log(line: string): void;
  /** Each look, for a live view. */
  onStatus?(report: StatusReport, step: number): void;
}

export async function watchRollout(
  target: RolloutTarget,
  options: WatchOptions,
  deps: WatchDeps,
): Promise<WatchResult> {
  const { clock, log } = deps;
  let looks = 0;
  const look = async (step: number): Promise<StatusReport> => {
    const report = await target.status();
    looks++;
    deps.onStatus?.(report, step);
    const why = report.candidateDown
      ? [`the candidate is ${report.candidateHealth}`]
      : report.verdict.decision === 'rollback'
        ? report.verdict.reasons
        : undefined;
    if (why) {
      const reason = why.join('; ');
      log(`rolling back ${target.service}: ${reason}`);
      await target.rollback(reason);
      throw new OperationFailedError('ROLLOUT_ROLLED_BACK', `rolled back ${target.service}: ${reason}`, {
        details: [
          `after ${looks} look(s), at ${step} % to the candidate; weights are 100/0, the candidate is stopped`,
        ],
        hint: `\`mlship rollout status ${target.service}\` shows the numbers; the candidate's logs are kept`,
      });
    }
    return report;
  };

  let report: StatusReport | undefined;
  for (const [i, step] of options.steps.entries()) {
    const last = i === options.steps.length - 1;
    await target.setWeight(step);
    log(`${target.service}: ${step} % to the candidate; baking ${Math.round(options.bakeMs / 1000)} s`);
    const bakeEnd = clock.now() + options.bakeMs;
    for (;;) {
      report = await look(step);
      if (clock.now() >= bakeEnd) break;
      await clock.sleep(Math.min(options.intervalMs, Math.max(0, bakeEnd - clock.now())));
    }
    if (!last) continue;
    // The last step: promotion needs the verdict, which may still be waiting for requests.
    const holdEnd = clock.now() + options.maxHoldMs;
    while (report.verdict.decision !== 'promote') {
      if (clock.now() >= holdEnd) {
        throw new OperationFailedError(
          'ROLLOUT_HELD',
          `${target.service} was not promoted: ${report.verdict.reasons.join('; ')}`,
          {
            details: [`the rollout is left as it is, at ${step} % to the candidate`],
            hint: `send it more traffic and run \`mlship rollout watch ${target.service}\` again, or \`mlship rollout promote ${target.service}\` / \`rollback\``,
          },
        );
      }
      await clock.sleep(options.intervalMs);
      report = await look(step);
    }
  }
  log(`${target.service}: promoting (${report!.verdict.reasons.join('; ')})`);
  const promoted = await target.promote();
  return { promoted, looks, final: report! };
}
