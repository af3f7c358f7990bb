// The built CLI as a child process, its output collected: for tests that need the process
// boundary (exit codes, stdout as a contract, Ctrl-C) rather than calling core directly.

import { spawn } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve('bin/mlship.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time of the whole command. */
  ms: number;
}

export function runCli(args: string[], o: { cwd: string; env?: Record<string, string> }): Promise<CliRun> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 })),
  );
}
