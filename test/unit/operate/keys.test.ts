// `mlship keys`: the API keys file of a stack (created, listed without the keys, revoked),
// its permissions, what a damaged file and bad names get, and the proxy reload.

import { appendFileSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  anyKey,
  createKey,
  ensureLocalKey,
  keysFile,
  keysMapText,
  listKeys,
  reloadProxy,
  revokeKey,
} from '../../../src/core/keys/keys.js';
import { fakeClock } from '../../../src/io/clock.js';
import { UsageError } from '../../../src/io/errors.js';

const fresh = () => keysFile(mkdtempSync(path.join(os.tmpdir(), 'mlship-keys-')));

describe('mlship keys (the keys file)', () => {
  it('create, list without the keys, revoke by name or id; 0600 in a 0700 folder', async () => {
    const file = fresh();
    const a = await createKey(file, 'ci', new Date('2026-12-02T07:00:00Z'));
    const b = await createKey(file, 'partner-a');
    expect(a.key).toMatch(/^mlk_[A-Za-z0-9_-]{32}$/);
    expect(a.key).not.toBe(b.key);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    const list = await listKeys(file);
    expect(list).toEqual([
      { id: a.id, name: 'ci', created: '2026-12-02T07:00:00Z', prefix: `${a.key.slice(0, 8)}…` },
      expect.objectContaining({ id: b.id, name: 'partner-a' }),
    ]);
    expect(JSON.stringify(list)).not.toContain(a.key.slice(8));
    // NGINX map lines for the proxy (and Secrets Manager on ECS): key → id, no names or comments.
    expect(await keysMapText(file)).toBe(`"${a.key}" "${a.id}";\n"${b.key}" "${b.id}";`);
    expect(await revokeKey(file, 'partner-a')).toMatchObject({ id: b.id, name: 'partner-a' });
    expect(await revokeKey(file, a.id)).toMatchObject({ name: 'ci' });
    expect(await listKeys(file)).toEqual([]);
    expect(await keysMapText(file)).toBeUndefined();
    expect(readFileSync(file, 'utf8')).not.toContain(a.key);
  });

  it('refused: a duplicate or bad name, an unknown key, a damaged line (file and line named)', async () => {
    const file = fresh();
    await createKey(file, 'ci');
    await expect(createKey(file, 'ci')).rejects.toThrow(/a key named ci exists/);
    await expect(createKey(file, 'has space')).rejects.toBeInstanceOf(UsageError);
    const unknown = await revokeKey(file, 'nope').catch((e: UsageError) => e);
    expect(unknown).toBeInstanceOf(UsageError);
    expect((unknown as UsageError).hint).toMatch(/mlship keys list/);
    appendFileSync(file, 'garbage\n');
    await expect(listKeys(file)).rejects.toThrow(`${file}:4: not a key line written by mlship keys`);
  });

  it("the stack's local key: created once, then reused; anyKey prefers it", async () => {
    const file = fresh();
    expect(await anyKey(file)).toBeUndefined();
    const first = await ensureLocalKey(file);
    expect(first.created).toBe(true);
    await createKey(file, 'ci');
    expect(await ensureLocalKey(file)).toEqual({ key: first.key, created: false });
    expect(await anyKey(file)).toBe(first.key);
  });

  it('reload returns once every worker serving is a new one (SIGHUP only asks NGINX to reload)', async () => {
    const containers = [{ state: 'running', labels: { 'com.docker.compose.service': 'proxy' } }];
    // NGINX's answers over time: the old workers, then old and new, then the new ones only.
    const seen = [
      ['7', '8'],
      ['7', '8', '20', '21'],
      ['7', '8', '20', '21'],
      ['20', '21'],
    ];
    const clock = fakeClock();
    const deps = {
      listByLabel: async () => containers,
      hangUp: async () => ({ exitCode: 0, stderr: '' }),
      workers: async () => new Set(seen.length > 1 ? seen.shift()! : seen[0]!),
      clock,
    };
    expect(await reloadProxy(deps, 'demo')).toEqual(['proxy']);
    expect(seen).toEqual([['20', '21']]);
    expect(clock.slept).toEqual([100, 100]);
    // Workers that never change: a clear error after 10 s, not a hang.
    const stuck = { ...deps, workers: async () => new Set(['7', '8']), clock: fakeClock() };
    await expect(reloadProxy(stuck, 'demo')).rejects.toThrow(
      'proxy did not start workers with the new keys within 10 s',
    );
  });

  it('reload: SIGHUP to the running proxy only; a failed reload is a clear error', async () => {
    const hung: string[] = [];
    const containers = [
      { state: 'running', labels: { 'com.docker.compose.service': 'proxy' } },
      { state: 'exited', labels: { 'com.docker.compose.service': 'proxy-cpu' } },
      { state: 'running', labels: { 'com.docker.compose.service': 'iris' } },
    ];
    const deps = {
      listByLabel: async () => containers,
      hangUp: async (s: string) => {
        hung.push(s);
        return { exitCode: 0, stderr: '' };
      },
      workers: async () => undefined, // cannot tell: SIGHUP only
      clock: fakeClock(),
    };
    expect(await reloadProxy(deps, 'demo')).toEqual(['proxy']);
    expect(hung).toEqual(['proxy']);
    const failing = { ...deps, hangUp: async () => ({ exitCode: 1, stderr: 'warn\nno such container' }) };
    await expect(reloadProxy(failing, 'demo')).rejects.toThrow('could not reload proxy: no such container');
    expect(await reloadProxy({ ...deps, listByLabel: async () => [] }, 'demo')).toEqual([]);
  });
});
