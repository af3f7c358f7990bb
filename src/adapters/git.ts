// git through execa (via exec.ts): mirror clones, ref resolution and tree export.
// Never prompts (GIT_TERMINAL_PROMPT=0): a bakeoff runs unattended.

import { createHash } from 'node:crypto';
import { access, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { MlshipError } from '../io/errors.js';
import { exec as defaultExec, type Exec } from './exec.js';

export class GitError extends MlshipError {
  readonly stderr: string;
  /** Set when the failure was in a submodule of the repository asked for. */
  readonly submodule: { path: string; location: string; commit: string } | undefined;
  constructor(message: string, stderr: string, submodule?: GitError['submodule']) {
    super('GIT_FAILED', 'failed', message, {
      details: stderr.split('\n').filter(Boolean).slice(-5),
      hint: 'check the repository URL or path, the ref, and your git credentials',
    });
    this.stderr = stderr;
    this.submodule = submodule;
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
  /** The submodules of `commit`: where they go, the URL `.gitmodules` gives, the commit pinned. */
  submodules(mirror: string, commit: string): Promise<Submodule[]>;
}

export interface Submodule {
  path: string;
  /** As written in `.gitmodules`: may be relative to the superproject (`../other.git`). */
  url: string;
  commit: string;
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
    async submodules(mirror, commit) {
      // Gitlinks (mode 160000) are what pins a submodule; .gitmodules says where it comes from.
      const tree = await git(['--git-dir', mirror, 'ls-tree', '-r', '-z', commit], `git ls-tree ${commit}`);
      const links = tree
        .split('\0')
        .map((entry) => /^160000 commit ([0-9a-f]+)\t(.+)$/s.exec(entry))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ commit: m[1]!, path: m[2]! }));
      if (!links.length) return [];
      const config = await git(
        ['--git-dir', mirror, 'config', '--blob', `${commit}:.gitmodules`, '--null', '--list'],
        `read .gitmodules at ${commit.slice(0, 12)}`,
      );
      const byName = new Map<string, { path?: string; url?: string }>();
      for (const item of config.split('\0')) {
        const m = /^submodule\.(.+)\.(path|url)\n(.*)$/s.exec(item);
        if (!m) continue;
        const entry = byName.get(m[1]!) ?? {};
        entry[m[2] as 'path' | 'url'] = m[3]!;
        byName.set(m[1]!, entry);
      }
      return links.map((link) => {
        const url = [...byName.values()].find((e) => e.path === link.path)?.url;
        if (!url)
          throw new GitError(
            `submodule ${link.path} has no URL`,
            `.gitmodules at ${commit.slice(0, 12)} has no submodule whose path is ${link.path}`,
          );
        return { ...link, url };
      });
    },
  };
}

/**
 * The image tag for the source in `dir`: the commit when the tree is clean, else
 * `<commit>-dirty-<hash>`, where the hash covers the content of every changed and
 * untracked file (the same uncommitted state gives the same tag, a different one a
 * new tag). Folders mlship generates (marked `.mlship-generated`) do not count.
 * Undefined outside a git checkout.
 */
export async function sourceTag(
  dir: string,
  run: Exec = defaultExec,
): Promise<{ tag: string; dirty: boolean } | undefined> {
  const head = await run('git', ['rev-parse', '--short=12', 'HEAD'], {
    cwd: dir,
    env: { ...process.env, ...ENV },
  });
  if (head.exitCode !== 0) return undefined;
  const top = (await run('git', ['rev-parse', '--show-toplevel'], { cwd: dir })).stdout.trim();
  const status = await run('git', ['status', '--porcelain', '-z', '--untracked-files=all'], { cwd: top });
  const paths = status.stdout
    .split('\0')
    .filter(Boolean)
    .map((entry) => entry.slice(3))
    .filter((p) => p.length > 0);
  const generated = new Map<string, boolean>();
  const isGenerated = async (rel: string): Promise<boolean> => {
    let d = path.dirname(rel);
    while (d && d !== '.') {
      if (!generated.has(d))
        generated.set(
          d,
          await access(path.join(top, d, '.mlship-generated')).then(
            () => true,
            () => false,
          ),
        );
      if (generated.get(d)) return true;
      d = path.dirname(d);
    }
    return false;
  };
  const changed: string[] = [];
  for (const p of paths) if (!(await isGenerated(p))) changed.push(p);
  if (changed.length === 0) return { tag: head.stdout.trim(), dirty: false };
  const hash = createHash('sha256');
  for (const p of changed.sort()) {
    hash.update(`${p}\0`);
    try {
      hash.update(await readFile(path.join(top, p)));
    } catch {
      hash.update('(deleted)');
    }
  }
  return { tag: `${head.stdout.trim()}-dirty-${hash.digest('hex').slice(0, 8)}`, dirty: true };
}
