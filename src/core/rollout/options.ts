// What `mlship rollout start|watch` was asked, checked once and turned into the rollout that
// is recorded: exactly one mode, exactly one candidate source, weights that are percentages,
// durations people write ("10m", "90s"), and the gates' thresholds. Every refusal is a usage
// error that says which flag and what it takes.

import type { Rollout, Sticky } from '../../config/rollout-schema.js';
import { DEFAULT_SHADOW_TIMEOUT_MS } from '../../generators/compose-rollout.js';
import { UsageError } from '../../io/errors.js';
import { DEFAULT_GATES, type Gates } from './verdict.js';

export interface StartFlags {
  canary?: string;
  shadow?: boolean;
  ab?: string;
  path?: string;
  image?: string;
  env?: string[];
  stickyHeader?: string;
  stickyCookie?: string;
  mirror?: boolean;
  recordSample?: string;
  recordInputs?: boolean;
  shadowTimeout?: string;
  shadowCpus?: string;
}

function percent(flag: string, text: string, { min = 0, max = 100 } = {}): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max)
    throw new UsageError(`${flag} ${text} is not a whole percentage from ${min} to ${max}`, {
      hint: `e.g. ${flag} 10`,
    });
  return n;
}

/** "10m", "90s", "1h", "500ms", or a number of seconds → milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m)
    throw new UsageError(`${flag} ${text} is not a duration`, { hint: `e.g. ${flag} 10m, 90s or 500ms` });
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
  return Math.round(Number(m[1]) * unit);
}

export function parseEnvFlags(pairs: string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(p);
    if (!m) throw new UsageError(`--env ${p} is not NAME=value`, { hint: 'e.g. --env BATCH_MAX_SIZE=16' });
    env[m[1]!] = m[2]!;
  }
  return env;
}

/** The mirror's timeout, and `--shadow-cpus`: a cap for a shadow only (a canary serves clients). */
function shadowFlags(
  mode: Rollout['mode'],
  flags: StartFlags,
): Pick<Rollout, 'shadowTimeoutMs' | 'shadowCpus'> {
  const timeout =
    flags.shadowTimeout === undefined
      ? DEFAULT_SHADOW_TIMEOUT_MS
      : parseDuration('--shadow-timeout', flags.shadowTimeout);
  if (timeout < 10 || timeout > 60_000)
    throw new UsageError(`--shadow-timeout ${flags.shadowTimeout} is outside 10ms-60s`);
  const text = flags.shadowCpus;
  if (text === undefined) return { shadowTimeoutMs: timeout };
  if (mode !== 'shadow')
    throw new UsageError('--shadow-cpus caps a shadow: a canary or A/B candidate answers clients', {
      hint: 'use it with --shadow, e.g. --shadow --shadow-cpus 0.5',
    });
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(n > 0 && n <= 1024))
    throw new UsageError(`--shadow-cpus ${text} is not a number of CPUs above 0`, {
      hint: '--shadow-cpus 0.5 lets the shadow use at most half a CPU',
    });
  return { shadowTimeoutMs: timeout, shadowCpus: n };
}

/** The rollout `start` records (running, from now). */
export function rolloutFromFlags(service: string, flags: StartFlags, now: Date): Rollout {
  const modes = [flags.canary !== undefined, Boolean(flags.shadow), flags.ab !== undefined].filter(Boolean);
  if (modes.length !== 1)
    throw new UsageError('give exactly one of --canary <percent>, --shadow, --ab <percent>', {
      hint: `mlship rollout start ${service} --canary 10 --path services/${service}-v2`,
    });
  if (Boolean(flags.path) === Boolean(flags.image))
    throw new UsageError('give the candidate with exactly one of --path <dir> or --image <ref>', {
      hint: `--path services/${service}-v2 builds it like any service; --image uses an image as it is`,
    });
  if (flags.stickyHeader && flags.stickyCookie)
    throw new UsageError('--sticky-header and --sticky-cookie exclude each other');
  const mode = flags.canary !== undefined ? 'canary' : flags.ab !== undefined ? 'ab' : 'shadow';
  const weight =
    mode === 'canary'
      ? percent('--canary', flags.canary!, { min: 1, max: 100 })
      : mode === 'ab'
        ? percent('--ab', flags.ab!, { min: 1, max: 99 })
        : 0;
  if (mode === 'shadow' && (flags.stickyHeader || flags.stickyCookie || flags.mirror))
    throw new UsageError('--shadow mirrors every request: --sticky-* and --mirror do not apply');
  const sticky: Sticky | undefined = flags.stickyHeader
    ? { header: flags.stickyHeader }
    : flags.stickyCookie
      ? { cookie: flags.stickyCookie }
      : undefined;
  if (sticky && 'header' in sticky && !/^[A-Za-z0-9-]{1,64}$/.test(sticky.header))
    throw new UsageError(`--sticky-header ${sticky.header} is not an HTTP header name`, {
      hint: 'letters, digits and "-", e.g. X-User-Id',
    });
  if (sticky && 'cookie' in sticky && !/^[A-Za-z0-9_]{1,64}$/.test(sticky.cookie))
    throw new UsageError(`--sticky-cookie ${sticky.cookie} is not a cookie name NGINX can read`, {
      hint: 'letters, digits and "_"',
    });
  const sample = flags.recordSample === undefined ? 0.1 : Number(flags.recordSample);
  if (!(sample >= 0 && sample <= 1))
    throw new UsageError(`--record-sample ${flags.recordSample} is not a share from 0 to 1`, {
      hint: '--record-sample 0.1 records the answers to 10 % of the requests',
    });
  return {
    service,
    mode,
    weight,
    ...(sticky ? { sticky } : {}),
    mirror: Boolean(flags.mirror),
    recordSample: sample,
    ...shadowFlags(mode, flags),
    candidate: {
      ...(flags.path ? { path: flags.path } : {}),
      ...(flags.image ? { image: flags.image } : {}),
      env: parseEnvFlags(flags.env),
      recordInputs: Boolean(flags.recordInputs),
    },
    status: 'running',
    startedAt: now.toISOString(),
    history: [{ at: now.toISOString(), action: 'start', weight }],
  };
}

export interface GateFlags {
  minRequests?: string;
  alpha?: string;
  maxErrorIncrease?: string;
  maxLatencyIncrease?: string;
  minAgreement?: string;
}

export function gatesFromFlags(flags: GateFlags): Gates {
  const num = (flag: string, text: string | undefined, ok: (n: number) => boolean, hint: string) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`${flag} ${text} is out of range`, { hint });
    return n;
  };
  const minRequests = num(
    '--min-requests',
    flags.minRequests,
    (n) => Number.isInteger(n) && n >= 1,
    'a whole number, e.g. 1000',
  );
  const alpha = num('--alpha', flags.alpha, (n) => n > 0 && n < 0.5, 'a significance level, e.g. 0.01');
  const errors = num(
    '--max-error-increase',
    flags.maxErrorIncrease,
    (n) => n >= 0 && n <= 100,
    'percentage points, e.g. 0.5',
  );
  const latency = num(
    '--max-latency-increase',
    flags.maxLatencyIncrease,
    (n) => n >= 0 && n <= 100,
    'a share, e.g. 0.2 for 20 %',
  );
  const agreement = num('--min-agreement', flags.minAgreement, (n) => n > 0 && n <= 1, 'a share, e.g. 0.95');
  return {
    minRequests: minRequests ?? DEFAULT_GATES.minRequests,
    alpha: alpha ?? DEFAULT_GATES.alpha,
    maxErrorIncreasePoints: errors ?? DEFAULT_GATES.maxErrorIncreasePoints,
    maxLatencyIncrease: latency ?? DEFAULT_GATES.maxLatencyIncrease,
    ...(agreement === undefined ? {} : { minAgreement: agreement }),
  };
}

/** "10,50,100" → [10, 50, 100], increasing, ending at 100. */
export function parseSteps(text: string): number[] {
  const steps = text.split(',').map((s) => percent('--steps', s.trim(), { min: 1, max: 100 }));
  if (steps.some((s, i) => i > 0 && s <= steps[i - 1]!) || steps.at(-1) !== 100)
    throw new UsageError(`--steps ${text} must increase and end at 100`, { hint: '--steps 10,50,100' });
  return steps;
}
