// Memory and GPU memory of a running example, sampled until the run ends: the engine's
// stats (cgroup max_usage keeps the true peak between samples on v1), and the local
// nvidia-smi for GPU memory (so only when the engine is local).

import type { ContainerHandle } from '../../adapters/docker/engine.js';
import type { BakeoffDeps } from './deps.js';

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Samples the container's memory until `stop` aborts; max_usage (cgroup v1) keeps the true peak between samples. */
export function sampleMemory(handle: ContainerHandle, stop: AbortSignal): { peak(): number | null } {
  let peak: number | null = null;
  void (async () => {
    while (!stop.aborted) {
      try {
        const s = await handle.stats();
        const v = Math.max(s.memoryPeakBytes ?? 0, s.memoryBytes);
        if (v > 0) peak = Math.max(peak ?? 0, v);
      } catch {
        return;
      }
      await sleep(200, stop);
    }
  })().catch(() => undefined);
  return { peak: () => peak };
}

/** Peak GPU memory in use (MiB → bytes) across the GPUs while the example runs, minus the baseline. */
export function sampleGpuMemory(
  deps: Pick<BakeoffDeps, 'exec'>,
  stop: AbortSignal,
): { peak(): number | null } {
  const query = async (): Promise<number | null> => {
    const r = await deps.exec('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits'], {
      timeoutMs: 5000,
    });
    if (r.exitCode !== 0) return null;
    return r.stdout
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => Number.isFinite(n))
      .reduce((a, b) => a + b, 0);
  };
  let baseline: number | null = null;
  let peak: number | null = null;
  void (async () => {
    baseline = await query();
    if (baseline === null) return;
    while (!stop.aborted) {
      const used = await query();
      if (used !== null) peak = Math.max(peak ?? 0, used - (baseline ?? 0));
      await sleep(500, stop);
    }
  })().catch(() => undefined);
  return { peak: () => (peak === null ? null : peak * 1024 * 1024) };
}
