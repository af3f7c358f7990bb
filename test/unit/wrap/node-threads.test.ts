// The Node service's thread budget (templates/wrap/node/threads.js, copied into every
// Node service as it is): CPUs from fake cgroup files (v2, v1, none), the affinity mask
// and a stand-in ECS agent; onnxruntime-node's intra-op pool gets what the budget says.
// Applied in a real container: test/docker/wrap-node.test.ts reads it back from /readyz.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

interface Budget {
  cpus: number;
  cpu_source: string;
  workers: number;
  threads_per_worker: number;
}
interface ThreadsModule {
  cpuLimit(o: { root?: string; ecsMetadataUri?: string; affinity?: number }): Promise<{
    cpus: number;
    source: string;
  }>;
  decideBudget(o: { env?: Record<string, string>; root?: string; affinity?: number }): Promise<Budget>;
  allowSpinning(env: Record<string, string>): boolean;
}

const modulePath = pathToFileURL(path.resolve('templates/wrap/node/threads.js')).href;
const threads = (await import(modulePath)) as ThreadsModule;
const roots = mkdtempSync(path.join(os.tmpdir(), 'mlship-cgroup-'));
afterAll(() => rmSync(roots, { recursive: true, force: true }));

let n = 0;
/** A fake /sys/fs/cgroup holding these files. */
function cgroup(files: Record<string, string>): string {
  const root = path.join(roots, String(n++));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  return root;
}

describe('Node service thread budget', () => {
  it('reads the cgroup v2 quota, and ignores "max"', async () => {
    expect(await threads.cpuLimit({ root: cgroup({ 'cpu.max': '150000 100000\n' }), affinity: 4 })).toEqual({
      cpus: 1.5,
      source: 'cgroup v2 cpu.max',
    });
    expect(await threads.cpuLimit({ root: cgroup({ 'cpu.max': 'max 100000\n' }), affinity: 4 })).toEqual({
      cpus: 4,
      source: 'affinity',
    });
  });

  it('reads the cgroup v1 CFS quota, and ignores -1', async () => {
    const v1 = (quota: string) =>
      cgroup({ 'cpu,cpuacct/cpu.cfs_quota_us': quota, 'cpu,cpuacct/cpu.cfs_period_us': '100000\n' });
    expect(await threads.cpuLimit({ root: v1('200000\n'), affinity: 8 })).toEqual({
      cpus: 2,
      source: 'cgroup v1 cfs quota',
    });
    expect(await threads.cpuLimit({ root: v1('-1\n'), affinity: 8 })).toEqual({
      cpus: 8,
      source: 'affinity',
    });
  });

  it('without any cgroup file, the affinity mask is the limit', async () => {
    expect(await threads.cpuLimit({ root: cgroup({}), affinity: 3 })).toEqual({
      cpus: 3,
      source: 'affinity',
    });
  });

  it('takes the ECS task vCPUs, else the container CPU units, from the metadata endpoint', async () => {
    const answers: Record<string, unknown> = { '/v4/x/task': { Limits: { CPU: 0.5 } } };
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answers[req.url ?? ''] ?? {}));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v4/x`;
    try {
      const root = cgroup({});
      expect(await threads.cpuLimit({ root, ecsMetadataUri: uri, affinity: 4 })).toEqual({
        cpus: 0.5,
        source: 'ecs task',
      });
      answers['/v4/x/task'] = { Limits: { Memory: 512 } };
      answers['/v4/x'] = { Limits: { CPU: 2048 } };
      expect(await threads.cpuLimit({ root, ecsMetadataUri: uri, affinity: 4 })).toEqual({
        cpus: 2,
        source: 'ecs task',
      });
    } finally {
      server.close();
    }
  });

  it('gives one process all whole CPUs as ONNX Runtime threads; the overrides win', async () => {
    const root = cgroup({ 'cpu.max': '250000 100000\n' });
    expect(await threads.decideBudget({ env: {}, root, affinity: 16 })).toEqual({
      cpus: 2.5,
      cpu_source: 'cgroup v2 cpu.max',
      workers: 1,
      threads_per_worker: 2,
    });
    const half = cgroup({ 'cpu.max': '50000 100000\n' });
    expect((await threads.decideBudget({ env: {}, root: half, affinity: 16 })).threads_per_worker).toBe(1);
    expect(
      (await threads.decideBudget({ env: { THREADS_PER_WORKER: '3' }, root, affinity: 16 }))
        .threads_per_worker,
    ).toBe(3);
    expect(
      await threads.decideBudget({ env: { WORKERS: '2' }, root: cgroup({}), affinity: 8 }),
    ).toMatchObject({
      workers: 2,
      threads_per_worker: 4,
    });
  });

  it("lets ONNX Runtime's idle threads spin only when ORT_ALLOW_SPINNING says so (as app/threads.py)", () => {
    expect(threads.allowSpinning({})).toBe(false);
    expect(threads.allowSpinning({ ORT_ALLOW_SPINNING: '0' })).toBe(false);
    expect(threads.allowSpinning({ ORT_ALLOW_SPINNING: 'no' })).toBe(false);
    for (const on of ['1', 'true', ' YES '])
      expect(threads.allowSpinning({ ORT_ALLOW_SPINNING: on }), on).toBe(true);
  });
});
