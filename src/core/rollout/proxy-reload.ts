// New routing for the running local proxy, without dropping a request: nginx.conf is
// rewritten in place (the container bind-mounts that one file, so a rename would leave it
// reading the old inode), checked with `nginx -t` inside the container (a bad file is put
// back, and the running config never changes), then `nginx -s reload`: new workers take new
// connections while the old ones finish what they are doing.

import { readFile, writeFile } from 'node:fs/promises';
import type { Clock } from '../../io/clock.js';
import { OperationFailedError } from '../../io/errors.js';

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ProxyReloadDeps {
  /** Runs a command in a running container. */
  execIn(container: string, argv: string[]): Promise<ExecResult>;
  clock: Clock;
  log(line: string): void;
}

export interface ProxyReloadSpec {
  /** The container running NGINX. */
  container: string;
  /** nginx.conf on this machine (bind-mounted at `mountedAt`). */
  file: string;
  mountedAt: string;
  content: string;
  /** True once the new config answers (polled after the reload); none: a short settle. */
  active?: () => Promise<boolean>;
  /** The container no longer sees `file` (replaced by a rename since it started): recreate it. */
  recreate: () => Promise<string>;
}

const tail = (text: string, n = 15) => text.split('\n').filter(Boolean).slice(-n);

/** Returns the proxy container in use afterwards (a recreated one when it had lost its file). */
export async function reloadProxy(deps: ProxyReloadDeps, spec: ProxyReloadSpec): Promise<string> {
  const previous = await readFile(spec.file, 'utf8');
  await writeFile(spec.file, spec.content);
  let container = spec.container;
  const seen = await deps.execIn(container, ['cat', spec.mountedAt]);
  if (seen.exitCode !== 0 || seen.stdout.trimEnd() !== spec.content.trimEnd()) {
    // Started before the file was last replaced: only a new container reads the current one.
    deps.log('the proxy container reads an older copy of nginx.conf: recreating it (a brief interruption)');
    container = await spec.recreate();
    return container;
  }
  const test = await deps.execIn(container, ['nginx', '-t']);
  if (test.exitCode !== 0) {
    await writeFile(spec.file, previous);
    throw new OperationFailedError(
      'PROXY_CONFIG_INVALID',
      'NGINX refused the new configuration; nothing changed',
      {
        details: tail(`${test.stdout}\n${test.stderr}`),
        hint: 'the proxy keeps its previous configuration; this is a bug in mlship, please report it',
      },
    );
  }
  const reload = await deps.execIn(container, ['nginx', '-s', 'reload']);
  if (reload.exitCode !== 0) {
    await writeFile(spec.file, previous);
    throw new OperationFailedError('PROXY_RELOAD_FAILED', 'NGINX did not reload', {
      details: tail(`${reload.stdout}\n${reload.stderr}`),
    });
  }
  const deadline = deps.clock.monotonic() + 10_000;
  if (!spec.active) {
    await deps.clock.sleep(500);
    return container;
  }
  while (!(await spec.active().catch(() => false))) {
    if (deps.clock.monotonic() > deadline)
      throw new OperationFailedError(
        'PROXY_RELOAD_FAILED',
        'NGINX reloaded but does not route as configured after 10 s',
        {
          hint: '`mlship compose logs proxy` shows why',
        },
      );
    await deps.clock.sleep(100);
  }
  return container;
}
