// A local shadow shares the primary's cores. At the lowest CPU weight it still took the CPU
// when the primary woke (bench/rollout, Dec 3: +67.0 / +5.5 ms of the primary's open-loop p99 at
// c=16 / 64). Two kernel settings make it give way:
// - SCHED_IDLE on its processes, set from inside the candidate with util-linux's `chrt`, as the
//   container's own user, on every process and thread (later ones inherit it). A process may
//   move itself to SCHED_IDLE but not back without CAP_SYS_NICE, which containers lack: a shadow
//   that starts answering clients is recreated at the default policy instead (local.ts). But a
//   task's policy counts only against the tasks of its own cgroup, and each container is one:
//   against the primary it does little (bench/rollout, Dec 5: a busy loop at SCHED_IDLE in a
//   container of its own cost the primary +9 / +12 ms of p99).
// - An idle cgroup parent beside the engine's (`/mlship-shadow`, or the slice `mlship_shadow.slice`
//   under the systemd driver; cpu.idle 1; adapters/cgroups.ts): the kernel then preempts the
//   shadow at once for any other task, and its CPU time is charged to no group the primary's
//   containers are in. Docker cannot set cpu.idle: `start` has it set on the host when it may
//   (root, local engine) and says why not otherwise.

import type { ExecResult } from './proxy-reload.js';

type ExecIn = (container: string, argv: string[]) => Promise<ExecResult>;

/**
 * The shadow's cgroup parent, at the top of the engine's CPU hierarchy: a path under the cgroupfs
 * driver, a slice under systemd's (an underscore, not a dash: `mlship-shadow.slice` would be a
 * child of `mlship.slice`, and idle only against its siblings there).
 */
export const SHADOW_CGROUP_PARENTS = { cgroupfs: '/mlship-shadow', systemd: 'mlship_shadow.slice' } as const;

/** The host's cgroups as `start` needs them (adapters/cgroups.ts, by way of the CLI). */
export interface ShadowCgroups {
  /**
   * Makes the engine's parent of SHADOW_CGROUP_PARENTS idle where `reference`, a running
   * container of the stack, has its cgroup; `parent` names it for compose when ok.
   */
  prepare(reference: string): Promise<IdleOutcome & { parent?: string }>;
  /** Whether the container's cgroup parent is idle. */
  idle(container: string): Promise<boolean>;
}

/** Every process of the container but the shell itself to SCHED_IDLE; prints how many of how many. */
const IDLE_SCRIPT = `n=0; t=0
for p in /proc/[0-9]*; do p=\${p#/proc/}; [ "$p" = "$$" ] && continue
  t=$((t + 1)); chrt --idle -a -p 0 "$p" >/dev/null 2>&1 && n=$((n + 1)); done
echo "mlship-idle $n $t"`;

export interface IdleOutcome {
  ok: boolean;
  /** What to tell the user when not ok. */
  detail: string;
}

/** Moves the container's processes to SCHED_IDLE; ok when every one of them moved. */
export async function idleContainer(execIn: ExecIn, container: string): Promise<IdleOutcome> {
  const r = await execIn(container, ['sh', '-c', IDLE_SCRIPT]).catch(
    (e: unknown): ExecResult => ({ exitCode: -1, stdout: '', stderr: String(e) }),
  );
  const m = /mlship-idle (\d+) (\d+)/.exec(r.stdout);
  if (!m) return { ok: false, detail: (r.stderr || r.stdout).trim().split('\n').slice(-1)[0] ?? 'no answer' };
  const [moved, all] = [Number(m[1]), Number(m[2])];
  if (moved > 0 && moved === all) return { ok: true, detail: `${all} processes` };
  return {
    ok: false,
    detail:
      moved === 0
        ? 'chrt could not set SCHED_IDLE (is util-linux in the image?)'
        : `${moved} of ${all} processes (the others belong to another user)`,
  };
}

/** Whether the container's first process runs at SCHED_IDLE (then it must be recreated to leave it). */
export async function atIdle(execIn: ExecIn, container: string): Promise<boolean> {
  const r = await execIn(container, ['chrt', '-p', '1']).catch(() => undefined);
  return Boolean(r && r.exitCode === 0 && /SCHED_IDLE/.test(r.stdout));
}
