// Is a host port free, and if not, which process holds it: asked before `mlship compose up`
// publishes anything, so a taken port is named in mlship's words instead of docker-compose's
// "bind: address already in use" halfway through starting the stack. Linux answers from /proc
// (the listening socket's inode, then the process with that socket open); elsewhere lsof.

import { readdir, readFile, readlink } from 'node:fs/promises';
import net from 'node:net';
import type { Exec } from './exec.js';

export interface PortOwner {
  pid: number;
  /** Its command line, shortened. */
  command: string;
}

export interface HostPorts {
  /** Whether something on this machine already listens where the port would be bound. */
  inUse(hostIp: string, port: number): Promise<boolean>;
  /** The process listening on the port, when this user may see it. */
  owner(port: number): Promise<PortOwner | undefined>;
}

export function hostPorts(exec?: Exec): HostPorts {
  return { inUse, owner: (port) => owner(port, exec) };
}

function inUse(hostIp: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      // EACCES (a low port, not root) or EADDRNOTAVAIL: the engine binds it, not us; cannot tell.
      resolve(e.code === 'EADDRINUSE');
    });
    server.listen({ host: hostIp, port, exclusive: true }, () => server.close(() => resolve(false)));
  });
}

async function owner(port: number, exec: Exec | undefined): Promise<PortOwner | undefined> {
  const inodes = await listeningInodes(port);
  if (inodes) return inodes.size ? processWithSocket(inodes) : undefined;
  if (!exec) return undefined;
  const r = await exec('lsof', ['-nP', `-iTCP:${port}`, '-sTCP:LISTEN', '-Fpc'], { timeoutMs: 5000 });
  const pid = /^p(\d+)$/m.exec(r.stdout)?.[1];
  const command = /^c(.+)$/m.exec(r.stdout)?.[1];
  return pid ? { pid: Number(pid), command: command ?? '?' } : undefined;
}

/** Inodes of the sockets listening on the port (/proc/net/tcp{,6}); undefined without /proc. */
async function listeningInodes(port: number): Promise<Set<string> | undefined> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const found = new Set<string>();
  let readable = false;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    readable = true;
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is IP:PORT in hex; state 0A is LISTEN; the inode is the tenth column.
      if (f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A' && f[9] && f[9] !== '0') found.add(f[9]);
    }
  }
  return readable ? found : undefined;
}

async function processWithSocket(inodes: Set<string>): Promise<PortOwner | undefined> {
  const wanted = new Set([...inodes].map((i) => `socket:[${i}]`));
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (!wanted.has(link)) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      const command = cmdline.split('\0').filter(Boolean).join(' ');
      return {
        pid: Number(pid),
        command: command.length > 80 ? `${command.slice(0, 77)}...` : command || '?',
      };
    }
  }
  return undefined;
}
