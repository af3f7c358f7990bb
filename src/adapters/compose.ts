// Runs docker compose: the v2 plugin (`docker compose`) when present, else the
// standalone v1 (`docker-compose`). Both take the same flags for what mlship uses.

import { exec as defaultExec, type Exec, type ExecResult } from './exec.js';

export interface ComposeCli {
  /** e.g. ["docker", "compose"] or ["docker-compose"]. */
  readonly argv: string[];
  readonly version: string;
  readonly major: 1 | 2;
}

export async function detectCompose(exec: Exec = defaultExec): Promise<ComposeCli | undefined> {
  const [v2, v1] = await Promise.all([
    exec('docker', ['compose', 'version', '--short'], { timeoutMs: 15_000 }),
    exec('docker-compose', ['version', '--short'], { timeoutMs: 15_000 }),
  ]);
  if (v2.exitCode === 0 && v2.stdout.trim())
    return { argv: ['docker', 'compose'], version: v2.stdout.trim(), major: 2 };
  if (v1.exitCode === 0 && v1.stdout.trim())
    return { argv: ['docker-compose'], version: v1.stdout.trim(), major: 1 };
  return undefined;
}

export interface ComposeProject {
  cli: ComposeCli;
  /** Project name (`-p`), also the prefix of containers, networks and volumes. */
  name: string;
  file: string;
  /** Directory compose runs in: it reads .env from here. */
  dir: string;
}

export type ComposeRunner = (
  project: ComposeProject,
  args: string[],
  options?: { timeoutMs?: number },
) => Promise<ExecResult>;

export function composeRunner(exec: Exec = defaultExec): ComposeRunner {
  return (project, args, options = {}) => {
    const [file, ...pre] = project.cli.argv;
    return exec(file!, [...pre, '-p', project.name, '-f', project.file, ...args], {
      cwd: project.dir,
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    });
  };
}
