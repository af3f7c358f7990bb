// The host ports a stack will publish, checked before `mlship compose up` writes or starts
// anything: a port already taken is named with what holds it (a container, by name, or a
// process, by pid and command line) and the setting that moves it, with a port that is free.

import type { ContainerState, Engine } from '../../adapters/docker/engine.js';
import type { HostPorts } from '../../adapters/host-ports.js';
import { CPU_SUFFIX } from '../../generators/compose-stack.js';
import { EnvironmentError } from '../../io/errors.js';
import type { ComposeGenerateResult } from './generate.js';

export const PROJECT_LABEL = 'com.docker.compose.project';
export const SERVICE_LABEL = 'com.docker.compose.service';

export interface PortDeps {
  engine: Pick<Engine, 'listPublishing'>;
  host: HostPorts;
}

export interface PublishedPort {
  service: string;
  hostIp: string;
  port: number;
}

type Holder =
  | { kind: 'container'; container: ContainerState }
  | { kind: 'process'; pid: number; command: string }
  | { kind: 'unknown' };

/** `[HOST_IP:]HOST:CONTAINER[/tcp]` entries of the services that will run (UDP and ranges are not checked). */
export function publishedPorts(
  gen: Pick<ComposeGenerateResult, 'stack'>,
  services: string[],
): PublishedPort[] {
  const out: PublishedPort[] = [];
  for (const service of services) {
    for (const entry of gen.stack.compose.services[service]?.ports ?? []) {
      const m = /^(?:(\[[^\]]+\]|[^:[\]]+):)?(\d+):\d+(?:\/tcp)?$/.exec(entry);
      if (!m) continue;
      out.push({ service, hostIp: (m[1] ?? '0.0.0.0').replace(/^\[|\]$/g, ''), port: Number(m[2]) });
    }
  }
  return out.sort((a, b) => a.port - b.port);
}

async function holderOf(deps: PortDeps, p: PublishedPort, project: string): Promise<Holder | undefined> {
  // The stack's own container publishing it (up again) is not a conflict; another service of it is.
  const publishing = await deps.engine.listPublishing(p.port);
  const other = publishing.find(
    (c) => c.labels[PROJECT_LABEL] !== project || c.labels[SERVICE_LABEL] !== p.service,
  );
  if (other) return { kind: 'container', container: other };
  if (publishing.length) return undefined;
  if (!(await deps.host.inUse(p.hostIp, p.port))) return undefined;
  const owner = await deps.host.owner(p.port);
  return owner ? { kind: 'process', ...owner } : { kind: 'unknown' };
}

function describe(h: Holder): string {
  if (h.kind === 'container') {
    const project = h.container.labels[PROJECT_LABEL];
    return `container ${h.container.name} (${h.container.image}${project ? `, compose project ${project}` : ''})`;
  }
  if (h.kind === 'process') return `process ${h.pid} (${h.command})`;
  return 'a process mlship cannot see (another user’s?)';
}

function stop(h: Holder, port: number): string {
  if (h.kind === 'container') return `stop it (docker stop ${h.container.name})`;
  if (h.kind === 'process') return `stop process ${h.pid}`;
  return `find it with \`sudo ss -ltnp 'sport = :${port}'\` and stop it`;
}

/** The mlship.yaml field that sets a service's host port, or the compose file's ports entry. */
function field(gen: ComposeGenerateResult, service: string, configFile: string): string {
  const base = service.endsWith(CPU_SUFFIX) ? service.slice(0, -CPU_SUFFIX.length) : service;
  if (base === 'proxy' && gen.project.proxy) return `set proxy.port in ${configFile}`;
  if (base === 'storage' && gen.project.storage) return `set storage.host_port in ${configFile}`;
  return `change the host port of services.${service}.ports in ${configFile}`;
}

async function freePortNear(
  deps: PortDeps,
  p: PublishedPort,
  taken: Set<number>,
): Promise<number | undefined> {
  for (let port = p.port + 1; port <= Math.min(p.port + 50, 65535); port++) {
    if (taken.has(port)) continue;
    if ((await deps.engine.listPublishing(port)).length) continue;
    if (!(await deps.host.inUse(p.hostIp, port))) return port;
  }
  return undefined;
}

/** Throws PORT_IN_USE (exit 3) naming every published port that is taken, before anything starts. */
export async function checkPublishedPorts(
  deps: PortDeps,
  gen: ComposeGenerateResult,
  services: string[],
  configFile: string,
): Promise<void> {
  const ports = publishedPorts(gen, services);
  const taken = new Set(ports.map((p) => p.port));
  const conflicts: { p: PublishedPort; holder: Holder; fix: string }[] = [];
  for (const p of ports) {
    const holder = await holderOf(deps, p, gen.project.name);
    if (!holder) continue;
    const free = await freePortNear(deps, p, taken);
    if (free) taken.add(free);
    const move = `${field(gen, p.service, configFile)}${free ? ` (${free} is free)` : ''}`;
    conflicts.push({ p, holder, fix: `${move}, or ${stop(holder, p.port)}` });
  }
  if (!conflicts.length) return;
  const where = (p: PublishedPort) => `port ${p.port} on ${p.hostIp}, which ${p.service} publishes,`;
  const first = conflicts[0]!;
  throw new EnvironmentError(
    'PORT_IN_USE',
    conflicts.length === 1
      ? `${where(first.p)} is already in use by ${describe(first.holder)}`
      : `${conflicts.length} ports this stack publishes are already in use`,
    {
      ...(conflicts.length > 1
        ? { details: conflicts.map((c) => `${where(c.p)} is in use by ${describe(c.holder)}: ${c.fix}`) }
        : {}),
      hint:
        conflicts.length === 1
          ? `${first.fix}; nothing was started`
          : 'move each port as said above, or stop what holds it; nothing was started',
    },
  );
}
