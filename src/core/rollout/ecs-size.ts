// How many tasks a candidate runs on ECS, and what they cost while the rollout lasts. A canary
// runs the tasks its share of the requests needs, not the stable service's whole count: a 10 %
// canary of a 4-task service is 1 task, 3 fewer Fargate tasks billed until it is promoted. A
// shadow, or a canary whose other requests are mirrored to it, sees every request and runs the
// stable service's count. A step (`promote --to N`, `watch`) scales the candidate up and waits
// for it before it takes more of the requests, and down only after it takes fewer.

import type { TaskDefinition } from '@aws-sdk/client-ecs';
import type { Rollout } from '../../config/rollout-schema.js';
import type { EcsApi } from '../deploy/aws-apis.js';
import { PRICES, PRICES_DATE, PRICES_REGION } from '../deploy/prices.js';

type Share = Pick<Rollout, 'mode' | 'weight' | 'mirror'>;

/** The candidate's tasks for `share` of the requests of a stable service of `stableDesired` tasks. */
export function candidateTasks(stableDesired: number, share: Share): number {
  const full = Math.max(1, stableDesired);
  if (share.mode === 'shadow' || share.mirror) return full;
  // At least one: the X-Model-Version override reaches it at any share.
  return Math.max(1, Math.ceil((full * share.weight) / 100));
}

/**
 * What `tasks` of a Fargate revision cost an hour at the bundled list prices (prices.ts), said
 * with their date and region; undefined for a revision without Fargate's task-level sizes.
 */
export function hourlyCost(td: TaskDefinition | undefined, tasks: number): string | undefined {
  const vcpu = Number(td?.cpu) / 1024;
  const gb = Number(td?.memory) / 1024;
  if (!(vcpu > 0 && gb > 0)) return undefined;
  const usd = (vcpu * PRICES.fargateVcpuHour + gb * PRICES.fargateGbHour) * tasks;
  return `about $${usd.toFixed(3)} an hour (${tasks} × ${vcpu} vCPU, ${gb} GB on Fargate; list prices of ${PRICES_DATE}, ${PRICES_REGION})`;
}

/** "1 task (10 % of iris's 4), about $0.049 an hour (...)": start's line about the candidate's size. */
export function candidateSize(
  stableService: string,
  stableDesired: number,
  revision: TaskDefinition | undefined,
  share: Share,
): string {
  const tasks = candidateTasks(stableDesired, share);
  const why =
    share.mode === 'shadow'
      ? `a shadow sees every request of ${stableService}'s ${stableDesired}`
      : share.mirror
        ? `the rest of ${stableService}'s requests are mirrored to it`
        : `${share.weight} % of ${stableService}'s ${stableDesired}`;
  const cost = hourlyCost(revision, tasks);
  return `${tasks} task${tasks === 1 ? '' : 's'} (${why})${cost ? `, ${cost}` : ''}`;
}

export interface ResizeDeps {
  ecs: Pick<EcsApi, 'describeServices' | 'scaleService'>;
  waitStable(service: string, taskDefinition: string): Promise<void>;
  log(line: string): void;
}

/** The services of a rollout on ECS (both kinds keep these names). */
export interface RolloutServices {
  cluster: string;
  stableService: string;
  candidateService: string;
  candidateTaskDefinition: string;
}

/**
 * Moves the candidate to `next`'s share: `route` changes where requests go (the listener's
 * weights, or the proxy's next revision) and its answer is returned; the candidate has its tasks
 * before it takes more and keeps them until it takes fewer.
 */
export async function resizeAround<T>(
  deps: ResizeDeps,
  s: RolloutServices,
  next: Share,
  route: () => Promise<T>,
): Promise<T> {
  const services = await deps.ecs.describeServices(s.cluster, [s.stableService, s.candidateService]);
  const desired = (name: string) => services.find((x) => x.serviceName === name)?.desiredCount;
  const want = candidateTasks(desired(s.stableService) ?? 1, next);
  const now = desired(s.candidateService) ?? want;
  if (want > now) {
    await deps.ecs.scaleService(s.cluster, s.candidateService, want);
    deps.log(
      `${s.candidateService}: ${now} → ${want} tasks before it takes ${next.weight} % of the requests; waiting until it is stable`,
    );
    await deps.waitStable(s.candidateService, s.candidateTaskDefinition);
  }
  const routed = await route();
  if (want < now) {
    await deps.ecs.scaleService(s.cluster, s.candidateService, want);
    deps.log(`${s.candidateService}: ${now} → ${want} tasks for ${next.weight} % of the requests`);
  }
  return routed;
}
