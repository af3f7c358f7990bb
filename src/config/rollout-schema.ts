// A rollout of a model service (`mlship rollout`), as mlship records it: which service,
// how traffic reaches the candidate (canary, A/B, shadow), where the candidate comes from,
// and what happened. deploy/compose/rollouts.json (beside the generated stack) holds the
// rollouts of the stack, by service. Read back with
// the same schema, so a hand-edited or truncated file is an error that names the field.

import { z } from 'zod';
import { ServiceName } from './schema.js';

const EnvName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name' });

export const StickySchema = z.union([
  z.strictObject({
    header: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,64}$/, { message: 'must be an HTTP header name such as "X-User-Id"' }),
  }),
  z.strictObject({
    cookie: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,64}$/, { message: 'must be a cookie name of letters, digits and _' }),
  }),
]);

export const RolloutEventSchema = z.strictObject({
  at: z.string(),
  action: z.enum(['start', 'step', 'promote', 'rollback', 'destroy']),
  weight: z.number().int().min(0).max(100),
  reason: z.string().optional(),
});

/** The services of a rollout on ECS (both kinds): their cluster, names and revisions. */
const EcsServices = {
  cluster: z.string(),
  stableService: z.string(),
  candidateService: z.string(),
  /** The stable service's revision when the rollout started, and the candidate's. */
  stableTaskDefinition: z.string(),
  candidateTaskDefinition: z.string(),
};

export const RolloutSchema = z.strictObject({
  service: ServiceName,
  /** canary: a share that grows; ab: a fixed split; shadow: every request mirrored, answers from stable only. */
  mode: z.enum(['canary', 'ab', 'shadow']),
  /** Percent of requests the candidate answers (0 in shadow mode). */
  weight: z.number().int().min(0).max(100),
  sticky: StickySchema.optional(),
  /** Canary/A-B: requests the stable version answers are mirrored to the candidate too (to compare answers). */
  mirror: z.boolean().default(false),
  /** Share of requests whose answers both versions record for comparison (0..1). */
  recordSample: z.number().min(0).max(1),
  /** How long the proxy waits for the shadow's reply (a wrapped service replies 202 at once). */
  shadowTimeoutMs: z.number().int().min(10).max(60_000),
  /**
   * Locally, a shadow's CPU cap (`--shadow-cpus`), on top of its low priority (cpu_shares):
   * a shadow only uses CPU the primary leaves idle, and at most this much of it.
   */
  shadowCpus: z.number().gt(0).max(1024).optional(),
  /**
   * Locally, the cgroup parent of a shadow's container (`/mlship-shadow` beside the engine's own,
   * or the slice `mlship_shadow.slice` under the systemd driver), when `start` could mark it idle:
   * the kernel runs the shadow only on CPU time nothing else wants.
   */
  shadowCgroup: z
    .string()
    .regex(/^\/|^[\w:.-]+\.slice$/, 'a cgroup path (/...) or a systemd slice (....slice)')
    .optional(),
  candidate: z.strictObject({
    /** Built like any service (relative to mlship.yaml). */
    path: z.string().min(1).optional(),
    image: z.string().min(1).optional(),
    env: z.record(EnvName, z.string()).default({}),
    /** The candidate may record the inputs of the requests it compares (off: answers only). */
    recordInputs: z.boolean().default(false),
  }),
  /** What promotion needs and what rolls back (core/rollout/verdict.ts), as `start` was given them. */
  gates: z
    .strictObject({
      minRequests: z.number().int().min(1),
      alpha: z.number().gt(0).lt(0.5),
      maxErrorIncreasePoints: z.number().min(0).max(100),
      maxLatencyIncrease: z.number().min(0),
      minAgreement: z.number().gt(0).max(1).optional(),
    })
    .optional(),
  /** On ECS: what `start` created, so the other commands and --destroy find it again. */
  ecs: z
    .strictObject({
      ...EcsServices,
      loadBalancerArn: z.string(),
      listenerArn: z.string(),
      ruleArn: z.string(),
      /** The X-Model-Version: candidate rule (every such request to the candidate). */
      overrideRuleArn: z.string().optional(),
      stableTargetGroupArn: z.string(),
      candidateTargetGroupArn: z.string(),
      alarms: z.array(z.string()),
    })
    .optional(),
  /**
   * A rollout on ECS that the stack's NGINX proxy routes (a shadow, a mirror, a sticky split, a
   * proxy that checks API keys): the candidate as a Service Connect server the proxy reaches,
   * the proxy's revision before the rollout (what rollback and promote put back) and the one
   * that routes now (its image with the rollout's nginx.conf baked in).
   */
  ecsProxy: z
    .strictObject({
      ...EcsServices,
      proxyService: z.string(),
      proxyTaskDefinition: z.string(),
      routeProxyTaskDefinition: z.string(),
      routeProxyImage: z.string(),
      /** The candidate's rollback alarms (on its own metrics; none without monitoring). */
      alarms: z.array(z.string()).optional(),
    })
    .optional(),
  status: z.enum(['running', 'promoted', 'rolled-back']),
  startedAt: z.string(),
  history: z.array(RolloutEventSchema),
});

/** A shadow on ECS as mlship recorded it before other rollouts went through the proxy too. */
function fromEcsShadow(raw: unknown): unknown {
  if (!raw || typeof raw !== 'object' || !('ecsShadow' in raw)) return raw;
  const { ecsShadow, ...rest } = raw as { ecsShadow: unknown };
  if (!ecsShadow || typeof ecsShadow !== 'object') return raw;
  const { shadowProxyTaskDefinition, shadowProxyImage, ...kept } = ecsShadow as Record<string, unknown>;
  return {
    ...rest,
    ecsProxy: {
      ...kept,
      routeProxyTaskDefinition: shadowProxyTaskDefinition,
      routeProxyImage: shadowProxyImage,
    },
  };
}

export const RolloutsFileSchema = z.strictObject({
  version: z.literal(1),
  rollouts: z.record(ServiceName, z.preprocess(fromEcsShadow, RolloutSchema)),
});

export type Rollout = z.output<typeof RolloutSchema>;
export type RolloutsFile = z.output<typeof RolloutsFileSchema>;
export type Sticky = z.output<typeof StickySchema>;
