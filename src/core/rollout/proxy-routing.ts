// Routing changes of a running local rollout without `nginx -s reload`: a reload's old workers
// close their idle keep-alive connections, and a client sending on one at that moment gets no
// answer (HTTP/1.1 cannot close an idle connection gracefully). With NGINX's JavaScript module
// the proxy reads each rollout's share, mode and mirror per request from a state file
// (templates/compose/route.js); this module replaces that file atomically (write, then rename
// inside the folder the proxy mounts: a bind-mounted *file* would keep its old inode) and
// tells which way a running proxy was configured.

import path from 'node:path';
import { ROUTING_DIR, ROUTING_STATE_FILE } from '../../generators/compose-rollout.js';
import type { Clock } from '../../io/clock.js';
import { OperationFailedError } from '../../io/errors.js';
import { writeFileAtomic } from '../../io/files.js';

/** An `nginx -t` refusal that says the image lacks njs (or the routing folder): fall back to reloads. */
export function lacksNjs(details: string[]): boolean {
  return details.some((l) => /unknown directive "js_|mlship-routing|js_import/.test(l));
}

export const routingStatePath = (outDir: string) => path.join(outDir, ROUTING_DIR, ROUTING_STATE_FILE);

/** Replaces the routing state in one rename: a request reads the old file or the new one, never half. */
export async function writeRoutingState(outDir: string, content: string): Promise<void> {
  await writeFileAtomic(routingStatePath(outDir), content);
}

export interface RoutingChange {
  outDir: string;
  state: string;
  /** True once the proxy answers as the new state says. */
  active?: () => Promise<boolean>;
}

/**
 * A change of share, mode or mirror (or the end of a rollout): the state file replaced, the
 * proxy not reloaded. nginx.conf on disk stays the one the proxy loaded, so that the next
 * `rollout start` reloads NGINX exactly when what it needs differs from what runs (`compose up`
 * writes the current one).
 */
export async function changeRouting(deps: { clock: Clock }, change: RoutingChange): Promise<void> {
  await writeRoutingState(change.outDir, change.state);
  if (!change.active) return;
  const deadline = deps.clock.monotonic() + 10_000;
  while (!(await change.active().catch(() => false))) {
    if (deps.clock.monotonic() > deadline)
      throw new OperationFailedError(
        'PROXY_ROUTING_FAILED',
        `the proxy does not route as ${routingStatePath(change.outDir)} says after 10 s`,
        { hint: '`mlship compose logs proxy` shows why; `mlship compose up` recreates the proxy' },
      );
    await deps.clock.sleep(100);
  }
}
