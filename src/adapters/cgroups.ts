// A local shadow's container lives in a cgroup of its own beside the engine's (compose's
// cgroup_parent), and that parent is marked idle (cpu.idle, kernel 5.15+): the kernel then runs
// the shadow only on CPU time nothing else wants, preempts it at once when another task wakes,
// and charges its CPU to no group the primary's containers are in. A task's own SCHED_IDLE does
// none of this across containers: it counts only against the tasks of its own cgroup (bench/rollout,
// Dec 5 2026). Docker has no option for cpu.idle, so it is set on the host, where the engine's
// cgroups are this machine's (not a remote engine's, not Docker Desktop's VM) and writable (root):
// - cgroupfs driver: the parent is a directory at the top of the CPU hierarchy, written here;
// - systemd driver (cgroup v2): the parent is a slice, which systemd makes when the first
//   container is placed in it and whose cgroup files it rewrites whenever it applies the slice's
//   settings; so systemd is asked to keep it idle (`CPUWeight=idle`, systemd 252+).
// Elsewhere the outcome says why and, for a missing permission, which command would do it once.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Exec } from './exec.js';

export interface CgroupIdleOutcome {
  ok: boolean;
  /** What was done, or why not (for the user). */
  detail: string;
  /** The parent's cpu.idle file, when known. */
  file?: string;
}

export interface CgroupPaths {
  /** Where /proc is (tests: a directory of their own). */
  proc?: string;
  /** Where the cgroup file systems are mounted. */
  root?: string;
}

/** The hierarchy a process's CPU controller is in: cgroup v1's `cpu` line, else v2's `0::`. */
export function cpuCgroup(procCgroup: string): { mount: string; path: string } | undefined {
  const lines = procCgroup.split('\n').filter(Boolean);
  for (const line of lines) {
    const [, controllers = '', p = ''] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (controllers.split(',').includes('cpu')) return { mount: controllers, path: p };
  }
  const v2 = lines.find((l) => l.startsWith('0::'));
  return v2 ? { mount: '', path: v2.slice(3) } : undefined;
}

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;
const denied = (e: unknown) => ['EACCES', 'EPERM', 'EROFS'].includes(code(e) ?? '');

/** Where a container's CPU cgroup is on this machine, proven by its ID in /proc/<pid>/cgroup. */
async function located(
  pid: number,
  containerId: string,
  paths: CgroupPaths,
): Promise<{ mount: string; path: string } | string> {
  const proc = paths.proc ?? '/proc';
  const text = await readFile(path.join(proc, String(pid), 'cgroup'), 'utf8').catch(() => '');
  const cg = cpuCgroup(text);
  return cg?.path.includes(containerId.slice(0, 12))
    ? cg
    : "the engine's cgroups are not on this machine (a remote engine or a VM)";
}

/**
 * Creates the idle parent `name` at the top of the CPU hierarchy the engine's containers are in
 * (cgroupfs driver: the engine makes a cgroup_parent given as `/name` there, and finds it
 * ready), from a running container of the same engine; writes cpu.idle 1 and reads it back.
 */
export async function prepareIdleParent(
  pid: number,
  containerId: string,
  name: string,
  paths: CgroupPaths = {},
): Promise<CgroupIdleOutcome> {
  const cg = await located(pid, containerId, paths);
  if (typeof cg === 'string') return { ok: false, detail: cg };
  const dir = path.join(paths.root ?? '/sys/fs/cgroup', cg.mount, name);
  const file = path.join(dir, 'cpu.idle');
  try {
    await mkdir(dir, { recursive: true });
    if ((await readFile(file, 'utf8')).trim() !== '1') await writeFile(file, '1');
  } catch (e) {
    if (code(e) === 'ENOENT') return { ok: false, detail: `no ${file} (cpu.idle needs Linux 5.15 or later)` };
    return {
      ok: false,
      detail: denied(e)
        ? `${dir} could not be made idle (not allowed): run once \`sudo mkdir -p ${dir} && echo 1 | sudo tee ${file}\``
        : `${dir}: ${String(e)}`,
      file,
    };
  }
  const after = (await readFile(file, 'utf8').catch(() => '')).trim();
  return after === '1'
    ? { ok: true, detail: `${dir} is idle (cpu.idle)`, file }
    : { ok: false, detail: `${file} reads ${after || 'nothing'} after writing 1`, file };
}

/** Whether the container's cgroup parent is marked idle (read only). */
export async function parentIdle(
  pid: number,
  containerId: string,
  paths: CgroupPaths = {},
): Promise<boolean> {
  const cg = await located(pid, containerId, paths);
  if (typeof cg === 'string') return false;
  const file = path.join(paths.root ?? '/sys/fs/cgroup', cg.mount, path.posix.dirname(cg.path), 'cpu.idle');
  return (await readFile(file, 'utf8').catch(() => '')).trim() === '1';
}

/**
 * The idle parent under the systemd cgroup driver: `slice` (at the top of the tree: no dash in
 * its name, since a dash nests a slice in another whose weight is not idle) with `CPUWeight=idle`,
 * which systemd 252+ turns into cpu.idle 1 on cgroup v2 and keeps. Already idle: nothing asked.
 * Set for this boot only (`--runtime`); the command offered to a user without the permission
 * sets it for good, so that later runs find it idle.
 */
export async function prepareIdleSlice(
  pid: number,
  containerId: string,
  slice: string,
  run: Exec,
  paths: CgroupPaths = {},
): Promise<CgroupIdleOutcome> {
  const cg = await located(pid, containerId, paths);
  if (typeof cg === 'string') return { ok: false, detail: cg };
  if (cg.mount !== '')
    return { ok: false, detail: 'systemd marks a slice idle on cgroup v2 only, and this host runs v1' };
  const done = { ok: true, detail: `${slice} is idle (CPUWeight=idle)` };
  /** systemctl answers at once or not at all (a hung D-Bus): 30 s, then a failure. */
  const opts = { timeoutMs: 30_000 };
  const shown = await run('systemctl', ['show', '-p', 'CPUWeight', '--value', slice], opts);
  if (shown.notFound) return { ok: false, detail: 'systemctl was not found' };
  if (shown.exitCode === 0 && shown.stdout.trim() === 'idle') return done;
  const set = await run(
    'systemctl',
    ['--no-ask-password', 'set-property', '--runtime', slice, 'CPUWeight=idle'],
    opts,
  );
  if (set.exitCode === 0) return done;
  const why =
    `${set.stderr}\n${set.stdout}`
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1) ?? `exit ${set.exitCode}`;
  if (/access denied|authenticat|not permitted|permission/i.test(why))
    return {
      ok: false,
      detail: `${slice} could not be made idle (not allowed): run once \`sudo systemctl set-property ${slice} CPUWeight=idle\``,
    };
  if (/parse|invalid|unknown|out of range/i.test(why))
    return {
      ok: false,
      detail: `this systemd cannot mark a slice idle (CPUWeight=idle needs systemd 252 or later): ${why}`,
    };
  return { ok: false, detail: `systemctl set-property ${slice} CPUWeight=idle failed: ${why}` };
}

/** The engine's shadow parents, by cgroup driver: a cgroup path (cgroupfs) and a slice (systemd). */
export interface ShadowParentNames {
  cgroupfs: string;
  systemd: string;
}

/**
 * The idle parent for the engine's cgroup driver, made ready from a running container of the
 * same engine (`pid`, `containerId`); `parent` is what compose's cgroup_parent then names.
 */
export async function prepareShadowParent(
  engine: { cgroupDriver?: string; rootless?: boolean },
  pid: number,
  containerId: string,
  names: ShadowParentNames,
  run: Exec,
  paths: CgroupPaths = {},
): Promise<CgroupIdleOutcome & { parent?: string }> {
  const driver = engine.cgroupDriver;
  if (engine.rootless)
    return { ok: false, detail: "a rootless engine's cgroups are its user's, not this machine's to mark" };
  if (driver === 'cgroupfs') {
    const r = await prepareIdleParent(pid, containerId, names.cgroupfs.replace(/^\//, ''), paths);
    return r.ok ? { ...r, parent: names.cgroupfs } : r;
  }
  if (driver === 'systemd') {
    const r = await prepareIdleSlice(pid, containerId, names.systemd, run, paths);
    return r.ok ? { ...r, parent: names.systemd } : r;
  }
  return {
    ok: false,
    detail: `the engine's cgroup driver is ${driver ?? 'unknown'} (mlship knows cgroupfs and systemd)`,
  };
}
