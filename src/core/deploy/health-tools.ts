// A health check that runs a program the image does not have fails forever, and on ECS
// that means a task that never becomes healthy and a deploy the circuit breaker rolls
// back minutes later. The programs each health check needs are read from its command
// (`CMD` form: the program; `CMD-SHELL`: the first word of each `||` alternative, any one
// of which is enough) and looked up in the local image before anything is created.

import type { RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';

/** Words a shell runs without a program on the PATH. */
const BUILTINS = new Set([
  'exit',
  'test',
  '[',
  'true',
  'false',
  'echo',
  'printf',
  'cd',
  ':',
  'command',
  'set',
]);

export interface HealthCheckNeeds {
  family: string;
  container: string;
  image: string;
  /** Any one of these programs is enough (alternatives joined by `||`). */
  anyOf: string[];
  /** CMD-SHELL runs through /bin/sh, which the image must have too. */
  shell: boolean;
}

/** The programs a health check command needs, or undefined when it needs none we can name. */
export function healthCheckNeeds(command: string[]): { anyOf: string[]; shell: boolean } | undefined {
  const [kind, ...rest] = command;
  if (kind === 'CMD') return rest[0] ? { anyOf: [rest[0]], shell: false } : undefined;
  if (kind !== 'CMD-SHELL' || !rest[0]) return undefined;
  const anyOf = rest[0]
    .split('||')
    .map((alt) => alt.trim().split(/\s+/)[0] ?? '')
    .filter((w) => w && !BUILTINS.has(w) && !w.includes('='));
  return { anyOf: [...new Set(anyOf)], shell: true };
}

/** What each container's health check needs, with the image it will run in. */
export function healthCheckTools(
  taskDefinitions: RegisterTaskDefinitionCommandInput[],
  localImage: (container: string, image: string) => string,
): HealthCheckNeeds[] {
  return taskDefinitions.flatMap((td) =>
    (td.containerDefinitions ?? []).flatMap((c) => {
      const needs = c.healthCheck?.command ? healthCheckNeeds(c.healthCheck.command) : undefined;
      if (!needs || (!needs.anyOf.length && !needs.shell)) return [];
      return [{ family: td.family!, container: c.name!, image: localImage(c.name!, c.image!), ...needs }];
    }),
  );
}

/**
 * The refusals: a health check none of whose programs the image has. `present` says which of the
 * programs (and `sh`) an image has, or undefined when the image is not on this machine (not checked).
 */
export async function missingHealthCheckTools(
  needs: HealthCheckNeeds[],
  present: (image: string, programs: string[]) => Promise<Set<string> | undefined>,
): Promise<string[]> {
  const problems: string[] = [];
  for (const n of needs) {
    const programs = [...n.anyOf, ...(n.shell ? ['sh'] : [])];
    const found = await present(n.image, programs);
    if (!found) continue;
    if (n.shell && !found.has('sh')) {
      problems.push(
        `${n.family}/${n.container}: its health check is a shell command (CMD-SHELL), and ${n.image} has no /bin/sh (fix: a CMD health check that runs a program of the image)`,
      );
    } else if (n.anyOf.length && !n.anyOf.some((p) => found.has(p))) {
      problems.push(
        `${n.family}/${n.container}: its health check runs ${n.anyOf.join(' or ')}, which ${n.image} does not have, so the task could never be healthy (fix: install it in the image, or check with a program the image has, e.g. python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:PORT/healthz')")`,
      );
    }
  }
  return problems;
}
