// `rollout status` of a rollout the proxy routes on ECS (ecs-proxy-route.ts; no target group
// per version to read metrics from): the comparison read from CloudWatch Logs. Both versions
// log each request and the sampled answers, with their request ids (app/logs.py), to stdout,
// which the awslogs driver ships to the group and stream prefix their task definitions name
// (streams `<prefix>/<container>/<task id>`); the candidate's revision has a prefix of its own
// (ecs-plan.ts: candidateTaskDefinition), so each side's streams are read apart, bounded by the
// rollout's start and a page limit, and fed to the same parsing and comparison as locally.

import type { TaskDefinition } from '@aws-sdk/client-ecs';
import type { EcsApi, LogsApi } from '../deploy/aws-apis.js';
import type { ProxyRouteRecord } from './ecs-proxy-route.js';
import {
  type MirrorOutcome,
  mirrorOutcome,
  type ParsedLog,
  parseServiceLog,
  rolloutSamples,
} from './samples.js';
import { type Comparison, compare, type Gates } from './verdict.js';

/** FilterLogEvents pages per side (each up to 10,000 events or 1 MB): the cost of one status. */
export const LOG_PAGES = 20;

export interface RouteLogDeps {
  ecs: Pick<EcsApi, 'latestTaskDefinition'>;
  logs: Pick<LogsApi, 'filterMessages'>;
}

export interface LogSource {
  group: string;
  /** `<awslogs-stream-prefix>/<container>/`: the streams of this container of the revision's tasks. */
  streamPrefix: string;
}

/** Where a revision's container logs with the awslogs driver; none for another driver. */
export function logSource(td: TaskDefinition | undefined, container: string): LogSource | undefined {
  const log = td?.containerDefinitions?.find((c) => c.name === container)?.logConfiguration;
  const group = log?.options?.['awslogs-group'];
  const prefix = log?.options?.['awslogs-stream-prefix'];
  if (log?.logDriver !== 'awslogs' || !group || !prefix) return undefined;
  return { group, streamPrefix: `${prefix}/${container}/` };
}

type Read = { source: LogSource; parsed: ParsedLog; lines: number; truncated: boolean };

async function readSide(
  deps: RouteLogDeps,
  source: LogSource,
  window: { startMs: number; endMs: number },
): Promise<Read> {
  const r = await deps.logs.filterMessages({ ...source, ...window, maxPages: LOG_PAGES });
  return { source, parsed: parseServiceLog(r.messages), lines: r.messages.length, truncated: r.truncated };
}

/**
 * The comparison from both services' log lines since the rollout started; `undefined` with the
 * reason when the revisions do not tell where (or apart where) they log. `share`: the
 * candidate's part of the requests (a shadow or a mirror sees them all: 0.5, both sides weigh
 * the same in the power estimate, as locally); `mirrored`: what became of the mirrored requests.
 */
export async function routeComparison(
  deps: RouteLogDeps,
  s: ProxyRouteRecord,
  container: string,
  window: { startMs: number; endMs: number },
  gates: Gates,
  options: { share: number; mirrored: boolean },
): Promise<{ comparison?: Comparison; mirror?: MirrorOutcome; notes: string[] }> {
  const [stableTd, candidateTd] = await Promise.all([
    deps.ecs.latestTaskDefinition(s.stableTaskDefinition),
    deps.ecs.latestTaskDefinition(s.candidateTaskDefinition),
  ]);
  const stable = logSource(stableTd, container);
  const candidate = logSource(candidateTd, container);
  if (!stable || !candidate)
    return {
      notes: [`${container} does not log to CloudWatch Logs (awslogs) in both revisions: nothing to compare`],
    };
  if (stable.group === candidate.group && stable.streamPrefix === candidate.streamPrefix)
    return {
      notes: [
        `both revisions log to ${stable.group} under ${stable.streamPrefix}: their lines cannot be told apart (a rollout started before the candidate's revision got its own stream prefix); roll back and start again`,
      ],
    };
  const [st, ca] = await Promise.all([readSide(deps, stable, window), readSide(deps, candidate, window)]);
  const comparison = compare(rolloutSamples(st.parsed, ca.parsed), gates, options.share);
  const notes = [st, ca].map(
    (r) =>
      `read ${r.lines} log lines of ${r.source.group}, streams ${r.source.streamPrefix}*${r.truncated ? ` (its first ${LOG_PAGES} pages only: the rollout's earliest requests)` : ''}`,
  );
  return options.mirrored
    ? { comparison, mirror: mirrorOutcome(st.parsed, ca.parsed), notes }
    : { comparison, notes };
}
