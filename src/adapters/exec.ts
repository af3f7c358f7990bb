// Runs external programs (docker compose, nvidia-smi, git) through execa.
// Never throws for a non-zero exit: callers decide what a failure means.

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The program does not exist on PATH. */
  notFound: boolean;
  timedOut: boolean;
}

export interface ExecOptions {
  cwd?: string;
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
  input?: string;
}

export type Exec = (file: string, args: string[], options?: ExecOptions) => Promise<ExecResult>;

export const exec: Exec = async (file, args, options = {}) => {
  const { execa } = await import('execa');
  const r = await execa(file, args, {
    reject: false,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
    ...(options.env ? { env: options.env } : {}),
    ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' as const }),
    stripFinalNewline: true,
  });
  const notFound = (r as { code?: string }).code === 'ENOENT';
  return {
    exitCode: r.exitCode ?? (notFound ? 127 : 1),
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    notFound,
    timedOut: Boolean(r.timedOut),
  };
};
