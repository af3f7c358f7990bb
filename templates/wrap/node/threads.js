// The thread budget of the Node service, decided once at start-up: how many threads
// onnxruntime-node's intra-op pool may use. ONNX Runtime sizes that pool to the
// machine's cores, not to the container's share of them; a 1-CPU container on a
// 16-core host would run 16 threads that fight for one CPU. So the CPUs this
// container may really use are read (ECS task limits, the cgroup v2 or v1 CPU quota,
// the affinity mask) and split between the workers (one process here: WORKERS=1
// unless set); THREADS_PER_WORKER overrides. The pool's idle threads sleep instead of
// spinning unless ORT_ALLOW_SPINNING=1: a spinning thread takes the CPU the request's
// own work (HTTP, multipart, decode) needs. Same rules as the Python service's
// app/threads.py.

import { readFileSync } from 'node:fs';
import os from 'node:os';

function read(file) {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function cgroupV2(root) {
  const text = read(`${root}/cpu.max`);
  if (!text) return undefined;
  const [quota, period] = text.split(/\s+/);
  return quota === 'max' ? undefined : Number(quota) / Number(period);
}

function cgroupV1(root) {
  for (const folder of ['cpu,cpuacct', 'cpu', 'cpuacct,cpu']) {
    const quota = Number(read(`${root}/${folder}/cpu.cfs_quota_us`));
    const period = Number(read(`${root}/${folder}/cpu.cfs_period_us`));
    if (Number.isNaN(quota) || Number.isNaN(period)) continue;
    return quota > 0 && period > 0 ? quota / period : undefined;
  }
  return undefined;
}

/** vCPUs of the ECS task (a hard limit), else the container's CPU units (1024 per vCPU). */
async function ecs(uri) {
  const get = async (url) => (await fetch(url, { signal: AbortSignal.timeout(1000) })).json();
  try {
    const task = (await get(`${uri}/task`))?.Limits?.CPU;
    if (task) return Number(task);
    const units = (await get(uri))?.Limits?.CPU;
    return units ? Number(units) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The CPUs this process may use and where that number came from: the smallest limit wins. */
export async function cpuLimit({ root = '/sys/fs/cgroup', ecsMetadataUri, affinity } = {}) {
  const found = [[affinity ?? os.availableParallelism(), 'affinity']];
  const limits = [
    ['cgroup v2 cpu.max', cgroupV2(root)],
    ['cgroup v1 cfs quota', cgroupV1(root)],
    ['ecs task', ecsMetadataUri ? await ecs(ecsMetadataUri) : undefined],
  ];
  for (const [source, value] of limits) if (value > 0) found.push([value, source]);
  const [cpus, source] = found.reduce((a, b) => (b[0] < a[0] ? b : a));
  return { cpus: Math.round(cpus * 100) / 100, source };
}

export async function decideBudget({ env = process.env, root, affinity } = {}) {
  const { cpus, source } = await cpuLimit({ root, affinity, ecsMetadataUri: env.ECS_CONTAINER_METADATA_URI_V4 });
  const whole = Math.max(1, Math.floor(cpus));
  const workers = Math.max(1, Number(env.WORKERS) || 1);
  const threads = Math.max(1, Number(env.THREADS_PER_WORKER) || Math.floor(whole / workers) || 1);
  return { cpus, cpu_source: source, workers, threads_per_worker: threads };
}

/** Whether ONNX Runtime's idle pool threads may spin (ORT_ALLOW_SPINNING=1), not by default. */
export function allowSpinning(env = process.env) {
  return ['1', 'true', 'yes'].includes((env.ORT_ALLOW_SPINNING ?? '0').trim().toLowerCase());
}
