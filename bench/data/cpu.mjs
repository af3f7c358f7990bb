// The benchmark's side of bench/data/cpu-sampler.mjs: starts it (with moto, this process and
// the engine's daemon as host processes), takes snapshots, and turns two of them into the
// CPU-seconds of one copy: a total (the run's containers, moto, this node process and the
// docker CLI it started) and the lines of the breakdown, largest first.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

const pidOf = (comm) =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .find((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm;
      } catch {
        return false;
      }
    });

export function startCpuSampler({ run, stack, moto }) {
  const hosts = [`moto:${moto}`, `node (mlship, proxy):${process.pid}:children`];
  const dockerd = pidOf('dockerd');
  if (dockerd) hosts.push(`dockerd (shared, not in the total):${dockerd}`);
  const child = spawn(
    process.execPath,
    [path.join(import.meta.dirname, 'cpu-sampler.mjs'), run, stack, ...hosts],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const waiting = [];
  createInterface({ input: child.stdout }).on('line', (l) => waiting.shift()?.(JSON.parse(l)));
  return {
    snap: () =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin.write('snap\n');
      }),
    stop: () => child.stdin.end(),
  };
}

/** One copy's CPU-seconds between two snapshots: its total and the breakdown's lines. */
export function cpuCases(before, after) {
  const d = {};
  for (const [k, v] of Object.entries(after)) {
    const x = v - (before[k] ?? 0);
    if (x > 0.005) d[k] = x;
  }
  const containers = Object.keys(d).filter((k) => k.endsWith(' (container total)'));
  // What the samples did not see by name in a container (short-lived processes: the AWS
  // CLI's calls, sha256sum, cat...).
  for (const k of containers) {
    const role = k.slice(0, -' (container total)'.length);
    const named = Object.entries(d)
      .filter(([n]) => n.startsWith(`${role}: `))
      .reduce((n, [, v]) => n + v, 0);
    if (d[k] - named > 0.05) d[`${role}: other (short-lived)`] = d[k] - named;
  }
  const total =
    containers.reduce((n, k) => n + d[k], 0) +
    ['moto', 'node (mlship, proxy)', 'node (mlship, proxy) children'].reduce((n, k) => n + (d[k] ?? 0), 0);
  const lines = Object.entries(d)
    .filter(([k, v]) => !k.endsWith(' (container total)') && v >= 0.1)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => [k, v]);
  return { total, lines, containers: Object.fromEntries(containers.map((k) => [k, d[k]])) };
}
