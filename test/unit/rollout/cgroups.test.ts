// The shadow's idle cgroup parent without a kernel: which hierarchy /proc/<pid>/cgroup names
// for the CPU (v1, v2, hybrid), and what prepareIdleParent and parentIdle do with a /proc and a
// cgroup tree laid out in a directory (a real cgroupfs makes cpu.idle with the directory; here
// the test does). The real files are checked by test/docker/rollout.test.ts.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpuCgroup, parentIdle, prepareIdleParent } from '../../../src/adapters/cgroups.js';

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
});
