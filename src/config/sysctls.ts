// Kernel settings (sysctls) a service may carry from compose to ECS and Kubernetes, and the one
// mlship sets itself. Only namespaced settings can be set per container: ECS accepts the IPC ones
// below and any `net.*` (Fargate included, platform 1.4.0+); Kubernetes runs a pod with its
// "safe" set only, unless each node's kubelet allows more (--allowed-unsafe-sysctls).

/**
 * The proxy's network settings. A shadow's relay opens a connection to the candidate per mirrored
 * request and closes it first, so each leaves a TIME_WAIT socket in the proxy's namespace for
 * 60 s: at 400 copies a second, 13,000-33,000 of the 28,232 ports to one address, and finding a
 * free one then doubled to tripled the proxy's CPU (benchmarks.md, Dec 5). With tcp_tw_reuse=1 (the
 * kernel's default, 2, allows it on loopback only) a new connection may take over a port whose
 * TIME_WAIT is older than a second, which TCP timestamps make safe for an outgoing connection.
 * Docker (`sysctls`) and ECS (`systemControls`, Fargate included) set it in the container's
 * (the task's) own network namespace only. On ECS the relay reaches the candidate through
 * Service Connect's proxy in the same task, which may change which connections close where; set
 * there all the same, and `deploy ecs --local` (no Service Connect proxy) runs it as here.
 * Kubernetes gets none: it is not a safe sysctl there, and no rollout runs there.
 */
export const PROXY_SYSCTLS: Readonly<Record<string, string>> = { 'net.ipv4.tcp_tw_reuse': '1' };

const ECS_IPC = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

/** Whether ECS's systemControls accept the setting (SystemControl's valid namespaces). */
export function ecsAccepts(name: string): boolean {
  return name.startsWith('net.') || name.startsWith('fs.mqueue.') || ECS_IPC.has(name);
}

/** Kubernetes' safe sysctls (1.29): set in a pod's securityContext without any node allowing them. */
export const K8S_SAFE_SYSCTLS: ReadonlySet<string> = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.ping_group_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);
