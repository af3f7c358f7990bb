// Where the CPU of a database copy goes, per process, for bench/data/run.mjs: CPU-seconds
// depend much less on the machine's load than wall time (other engineers share its cores).
// Run as a child of the benchmark (its own CPU then stays out of the figures); every 200 ms
// it reads the cpuacct cgroup of each of the run's containers (exact totals; a container's
// last 200 ms before it is removed can be missed) and /proc of the processes in them (by
// command name: pg_dump, postgres, aws, ...; short-lived ones that start and end between
// two samples are only in the container's total, shown as "other"), plus the host
// processes named on the command line (moto, the benchmark's node and the docker CLI it
// started, the engine). On a line "snap" on stdin it prints the cumulative CPU-seconds by
// key as one JSON line; the benchmark subtracts two of them.
// argv: <run prefix> <stack> <label>:<pid>[:children] ...
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const [run, stack, ...hostArgs] = process.argv.slice(2);
const CG = '/sys/fs/cgroup/cpuacct/docker';
const TICK = 100; // clock ticks per second (USER_HZ)
const roles = new Map(); // container id -> role, or null when not the run's
const cgroupLast = new Map(); // id -> seconds
const procLast = new Map(); // `${id}:${pid}:${starttime}` -> { key, seconds }

const stat = (pid) => {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  return {
    comm: text.slice(text.indexOf('(') + 1, close),
    self: (Number(f[11]) + Number(f[12])) / TICK,
    children: (Number(f[13]) + Number(f[14])) / TICK,
    start: f[19],
  };
};

function roleOf(id) {
  if (roles.has(id)) return roles.get(id);
  let role = null;
  try {
    const c = JSON.parse(readFileSync(`/var/lib/docker/containers/${id}/config.v2.json`, 'utf8'));
    const labels = c.Config?.Labels ?? {};
    const name = (c.Name ?? '').replace(/^\//, '');
    if (labels['dev.mlship.data-restore'] === stack)
      role = `restore task ${labels['dev.mlship.data-container']}`;
    else if (name.startsWith(`${run}-`)) role = name.slice(run.length + 1);
  } catch {}
  roles.set(id, role);
  return role;
}

function sample() {
  let ids = [];
  try {
    ids = readdirSync(CG, { withFileTypes: true })
      .filter((d) => d.isDirectory() && /^[0-9a-f]{64}$/.test(d.name))
      .map((d) => d.name);
  } catch {}
  for (const id of ids) {
    const role = roleOf(id);
    if (!role) continue;
    try {
      cgroupLast.set(id, Number(readFileSync(`${CG}/${id}/cpuacct.usage`, 'utf8')) / 1e9);
      for (const pid of readFileSync(`${CG}/${id}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)) {
        try {
          const s = stat(pid);
          procLast.set(`${id}:${pid}:${s.start}`, { key: `${role}: ${s.comm}`, role, seconds: s.self });
        } catch {}
      }
    } catch {}
  }
}

function snapshot() {
  sample();
  const out = {};
  const add = (k, v) => {
    out[k] = (out[k] ?? 0) + v;
  };
  for (const [id, seconds] of cgroupLast) add(`${roles.get(id)} (container total)`, seconds);
  for (const { key, seconds } of procLast.values()) add(key, seconds);
  for (const a of hostArgs) {
    const [label, pid, children] = a.split(':');
    try {
      const s = stat(pid);
      add(label, s.self);
      if (children) add(`${label} children`, s.children);
    } catch {}
  }
  return out;
}

const timer = setInterval(sample, 200);
createInterface({ input: process.stdin }).on('line', (l) => {
  if (l === 'snap') process.stdout.write(`${JSON.stringify(snapshot())}\n`);
});
process.stdin.on('end', () => clearInterval(timer));
