// The shadow's idle cgroup parent without a kernel: which hierarchy /proc/<pid>/cgroup names
// for the CPU (v1, v2, hybrid), and what prepareIdleParent and parentIdle do with a /proc and a
// cgroup tree laid out in a directory (a real cgroupfs makes cpu.idle with the directory; here
// the test does), and what they ask of systemctl under the systemd driver (answers as systemd
// 252+ and older ones give them: this machine runs no systemd). The real files (cgroupfs) are
// checked by test/docker/rollout.test.ts.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cpuCgroup,
  parentIdle,
  prepareIdleParent,
  prepareShadowParent,
} from '../../../src/adapters/cgroups.js';
import type { Exec } from '../../../src/adapters/exec.js';
import { SHADOW_CGROUP_PARENTS } from '../../../src/core/rollout/shadow-priority.js';

const ID = 'a1b2c3d4e5f6'.padEnd(64, '0');

/** A /proc with one process and a cgroup root, as `cgroup` (the process's /proc/<pid>/cgroup) says. */
function host(cgroup: string, cpuIdleDirs: string[] = []) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-cgroups-'));
  const proc = path.join(dir, 'proc');
  const root = path.join(dir, 'cgroup');
  mkdirSync(path.join(proc, '42'), { recursive: true });
  writeFileSync(path.join(proc, '42', 'cgroup'), cgroup);
  for (const d of cpuIdleDirs) {
    mkdirSync(path.join(root, d), { recursive: true });
    writeFileSync(path.join(root, d, 'cpu.idle'), '0\n');
  }
  return { proc, root };
}

describe('cgroups of a container', () => {
  it('the CPU controller is cgroup v1 when it has one (hybrid hosts too), else the unified v2 line', () => {
    const v1 = `12:pids:/docker/${ID}\n4:cpu:/docker/${ID}\n3:cpuacct:/docker/${ID}\n0::/docker/${ID}\n`;
    expect(cpuCgroup(v1)).toEqual({ mount: 'cpu', path: `/docker/${ID}` });
    expect(cpuCgroup(`5:cpu,cpuacct:/docker/${ID}\n`)).toEqual({
      mount: 'cpu,cpuacct',
      path: `/docker/${ID}`,
    });
    expect(cpuCgroup(`0::/system.slice/docker-${ID}.scope\n`)).toEqual({
      mount: '',
      path: `/system.slice/docker-${ID}.scope`,
    });
    expect(cpuCgroup('')).toBeUndefined();
  });

  it('makes the parent beside the engine idle (v1 and v2), once', async () => {
    for (const [cgroup, dir] of [
      [`4:cpu:/docker/${ID}\n`, 'cpu/mlship-shadow'],
      [`0::/docker/${ID}\n`, 'mlship-shadow'],
    ] as const) {
      const paths = host(cgroup, [dir]);
      const file = path.join(paths.root, dir, 'cpu.idle');
      const r = await prepareIdleParent(42, ID, 'mlship-shadow', paths);
      expect(r).toEqual({ ok: true, detail: `${path.dirname(file)} is idle (cpu.idle)`, file });
      expect(readFileSync(file, 'utf8')).toBe('1');
      // Already idle: nothing written, the same answer.
      expect(await prepareIdleParent(42, ID, 'mlship-shadow', paths)).toEqual(r);
    }
  });

  it('says why not: an engine whose cgroups are elsewhere, a kernel without cpu.idle, no permission', async () => {
    // Another container's process under that PID: not this engine's container.
    const other = host(`4:cpu:/docker/${'f'.repeat(64)}\n`);
    expect(await prepareIdleParent(42, ID, 'mlship-shadow', other)).toEqual({
      ok: false,
      detail: "the engine's cgroups are not on this machine (a remote engine or a VM)",
    });
    expect(await prepareIdleParent(7, ID, 'mlship-shadow', other)).toMatchObject({ ok: false });
    // The directory is made, but the kernel gives it no cpu.idle (before Linux 5.15).
    const old = host(`4:cpu:/docker/${ID}\n`);
    const r = await prepareIdleParent(42, ID, 'mlship-shadow', old);
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/cpu\.idle needs Linux 5\.15 or later/);
    // Not allowed to make the directory (sysfs refuses every mkdir, as a cgroup tree refuses a
    // user's): the command that makes the parent once.
    const denied = await prepareIdleParent(42, ID, 'mlship-shadow', { proc: old.proc, root: '/sys' });
    expect(denied).toEqual({
      ok: false,
      detail:
        '/sys/cpu/mlship-shadow could not be made idle (not allowed): run once `sudo mkdir -p /sys/cpu/mlship-shadow && echo 1 | sudo tee /sys/cpu/mlship-shadow/cpu.idle`',
      file: '/sys/cpu/mlship-shadow/cpu.idle',
    });
  });

  it("reads a container's parent: idle or not", async () => {
    const paths = host(`4:cpu:/mlship-shadow/${ID}\n`, ['cpu/mlship-shadow']);
    expect(await parentIdle(42, ID, paths)).toBe(false);
    writeFileSync(path.join(paths.root, 'cpu/mlship-shadow/cpu.idle'), '1\n');
    expect(await parentIdle(42, ID, paths)).toBe(true);
    expect(await parentIdle(42, 'f'.repeat(64), paths)).toBe(false);
  });

  it("makes a parent for the engine's driver: a cgroup (cgroupfs), a slice (systemd), none for another", async () => {
    const paths = host(`4:cpu:/docker/${ID}\n`, ['cpu/mlship-shadow']);
    const never: Exec = async () => {
      throw new Error('no systemctl under cgroupfs');
    };
    expect(
      await prepareShadowParent({ cgroupDriver: 'cgroupfs' }, 42, ID, SHADOW_CGROUP_PARENTS, never, paths),
    ).toMatchObject({
      ok: true,
      parent: '/mlship-shadow',
    });
    const other = await prepareShadowParent({}, 42, ID, SHADOW_CGROUP_PARENTS, never, paths);
    expect(other).toEqual({
      ok: false,
      detail: "the engine's cgroup driver is unknown (mlship knows cgroupfs and systemd)",
    });
    const rootless = await prepareShadowParent(
      { cgroupDriver: 'systemd', rootless: true },
      42,
      ID,
      SHADOW_CGROUP_PARENTS,
      never,
      paths,
    );
    expect(rootless).toEqual({
      ok: false,
      detail: "a rootless engine's cgroups are its user's, not this machine's to mark",
    });
  });
});

describe('the idle slice under the systemd driver', () => {
  const v2 = `0::/system.slice/docker-${ID}.scope\n`;
  /** A systemctl answering each call by its verb (`show`, `set-property`), recording the calls. */
  const systemctl = (answers: Record<string, { exitCode: number; stdout?: string; stderr?: string }>) => {
    const calls: string[][] = [];
    const run: Exec = async (file, args) => {
      calls.push([file, ...args]);
      const verb = args.find((a) => a === 'show' || a === 'set-property') ?? '';
      const a = answers[verb] ?? { exitCode: 1, stderr: 'unexpected' };
      return { stdout: '', stderr: '', notFound: false, timedOut: false, ...a };
    };
    return { run, calls };
  };
  const prepare = (run: Exec, cgroup = v2) =>
    prepareShadowParent({ cgroupDriver: 'systemd' }, 42, ID, SHADOW_CGROUP_PARENTS, run, host(cgroup));

  it('asks systemd to keep mlship_shadow.slice idle for this boot, once', async () => {
    const first = systemctl({
      show: { exitCode: 0, stdout: '[not set]\n' },
      'set-property': { exitCode: 0 },
    });
    expect(await prepare(first.run)).toEqual({
      ok: true,
      detail: 'mlship_shadow.slice is idle (CPUWeight=idle)',
      parent: 'mlship_shadow.slice',
    });
    expect(first.calls).toEqual([
      ['systemctl', 'show', '-p', 'CPUWeight', '--value', 'mlship_shadow.slice'],
      [
        'systemctl',
        '--no-ask-password',
        'set-property',
        '--runtime',
        'mlship_shadow.slice',
        'CPUWeight=idle',
      ],
    ]);
    // Already idle (systemd shows the weight as `idle`): nothing is set, so no permission is needed.
    const again = systemctl({ show: { exitCode: 0, stdout: 'idle\n' } });
    expect(await prepare(again.run)).toMatchObject({ ok: true, parent: 'mlship_shadow.slice' });
    expect(again.calls).toHaveLength(1);
  });

  it('says why not: no permission (with the command that does it for good), an old systemd, cgroup v1, no systemctl', async () => {
    const denied = systemctl({
      show: { exitCode: 0, stdout: '[not set]\n' },
      'set-property': {
        exitCode: 1,
        stderr: 'Failed to set unit properties on mlship_shadow.slice: Access denied\n',
      },
    });
    expect(await prepare(denied.run)).toEqual({
      ok: false,
      detail:
        'mlship_shadow.slice could not be made idle (not allowed): run once `sudo systemctl set-property mlship_shadow.slice CPUWeight=idle`',
    });
    const old = systemctl({
      show: { exitCode: 0, stdout: '100\n' },
      'set-property': { exitCode: 1, stderr: 'Failed to parse CPUWeight= value: idle\n' },
    });
    expect((await prepare(old.run)).detail).toBe(
      'this systemd cannot mark a slice idle (CPUWeight=idle needs systemd 252 or later): Failed to parse CPUWeight= value: idle',
    );
    const v1 = systemctl({});
    expect(await prepare(v1.run, `4:cpu:/system.slice/docker-${ID}.scope\n`)).toEqual({
      ok: false,
      detail: 'systemd marks a slice idle on cgroup v2 only, and this host runs v1',
    });
    expect(v1.calls).toEqual([]);
    const none: Exec = async () => ({
      exitCode: -1,
      stdout: '',
      stderr: '',
      notFound: true,
      timedOut: false,
    });
    expect(await prepare(none)).toEqual({ ok: false, detail: 'systemctl was not found' });
    // A remote engine: its container's ID is not in the process's cgroup here.
    expect(await prepare(systemctl({}).run, `0::/system.slice/docker-${'f'.repeat(64)}.scope\n`)).toEqual({
      ok: false,
      detail: "the engine's cgroups are not on this machine (a remote engine or a VM)",
    });
  });

  it("reads a slice's idle mark where the container's cgroup says", async () => {
    const paths = host(`0::/mlship_shadow.slice/docker-${ID}.scope\n`, ['mlship_shadow.slice']);
    expect(await parentIdle(42, ID, paths)).toBe(false);
    writeFileSync(path.join(paths.root, 'mlship_shadow.slice/cpu.idle'), '1\n');
    expect(await parentIdle(42, ID, paths)).toBe(true);
  });
});
