// git through execa (via exec.ts): mirror clones, ref resolution and tree export.
// Never prompts (GIT_TERMINAL_PROMPT=0): a bakeoff runs unattended.

import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { MlshipError } from '../io/errors.js';
import { exec as defaultExec, type Exec } from './exec.js';

export class GitError extends MlshipError {
  readonly stderr: string;
  constructor(message: string, stderr: string) {
    super('GIT_FAILED', 'failed', message, {
      details: stderr.split('\n').filter(Boolean).slice(-5),
      hint: 'check the repository URL or path, the ref, and your git credentials',
    });
    this.stderr = stderr;
  }
}

export interface GitClient {
  /** Creates or updates a bare mirror of `repo` at `mirror`. */
  mirror(repo: string, mirror: string, options?: { fetch?: boolean }): Promise<void>;
  /** Resolves a ref (branch, tag, commit, HEAD) to a full commit id in the mirror. */
  resolve(mirror: string, ref: string): Promise<string>;
  /** True when the mirror already has the commit (no fetch needed). */
  hasCommit(mirror: string, commit: string): Promise<boolean>;
  /** Writes the tree of `commit` (no .git) into `dest`. */
  exportTree(mirror: string, commit: string, dest: string): Promise<void>;
}

const ENV = { GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', LC_ALL: 'C' };
const TIMEOUT = 15 * 60_000;

export function createGit(run: Exec = defaultExec): GitClient {
  const git = async (args: string[], what: string, cwd?: string) => {
    const r = await run('git', args, {
      env: { ...process.env, ...ENV },
      timeoutMs: TIMEOUT,
      ...(cwd ? { cwd } : {}),
    });
    if (r.notFound)
      throw new GitError('git is not installed', 'install git (apt-get install git, brew install git)');
    if (r.exitCode !== 0) throw new GitError(`${what} failed`, r.stderr || r.stdout);
    return r.stdout;
  };
  return {
    async mirror(repo, mirror, options = {}) {
      const exists =
        (await run('git', ['--git-dir', mirror, 'rev-parse', '--git-dir'], { env: ENV })).exitCode === 0;
      if (!exists) {
        await mkdir(path.dirname(mirror), { recursive: true });
        await rm(mirror, { recursive: true, force: true });
        await git(['clone', '--mirror', '--quiet', repo, mirror], `git clone ${repo}`);
      } else if (options.fetch !== false) {
        await git(['--git-dir', mirror, 'fetch', '--prune', '--quiet', 'origin'], `git fetch ${repo}`);
      }
    },
    async resolve(mirror, ref) {
      const out = await git(
        ['--git-dir', mirror, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`],
        `resolve ref ${ref}`,
      ).catch((e: unknown) => {
        if (e instanceof GitError)
          throw new GitError(`unknown revision ${ref}`, e.stderr || `unknown revision ${ref}`);
        throw e;
      });
      return out.trim();
    },
    async hasCommit(mirror, commit) {
      const r = await run('git', ['--git-dir', mirror, 'cat-file', '-e', `${commit}^{commit}`], { env: ENV });
      return r.exitCode === 0;
    },
    async exportTree(mirror, commit, dest) {
      await mkdir(dest, { recursive: true });
      const tar = `${dest}.tar`;
      try {
        await git(
          ['--git-dir', mirror, 'archive', '--format=tar', '-o', tar, commit],
          `git archive ${commit}`,
        );
        const r = await run('tar', ['-xf', tar, '-C', dest]);
        if (r.exitCode !== 0) throw new GitError(`extracting ${commit} failed`, r.stderr);
      } finally {
        await rm(tar, { force: true });
      }
    },
  };
}
