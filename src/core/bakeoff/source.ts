// Candidate sources: a bare mirror per repository and an exported tree per commit,
// both in the cache (default ~/.cache/mlship), so a second bakeoff of the same
// commit neither clones nor copies anything.

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, lstat, readdir, readlink, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { type GitClient, GitError } from '../../adapters/git.js';
import { exists } from '../../io/files.js';

export interface SourceTree {
  /** The repo as written in the config, and as git sees it (absolute path for local repos). */
  repo: string;
  location: string;
  ref: string;
  commit: string;
  /** Directory holding `src/` (the tree at the commit) and the generated Dockerfiles. */
  contextDir: string;
  sourceDir: 'src';
}

/** 12 characters that name the source: a commit's prefix, or a folder's content hash. */
export function shortCommit(commit: string): string {
  return commit.startsWith('sha256:') ? commit.slice(7, 19) : commit.slice(0, 12);
}

/** A URL (https://, ssh://, git@host:path, file://) or else a local path. */
export function isRemote(repo: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[\w.-]+@[\w.-]+:/.test(repo);
}

export function repoLocation(repo: string, configDir: string): string {
  return isRemote(repo) ? repo : path.resolve(configDir, repo);
}

function slug(location: string): string {
  const base =
    location
      .replace(/\.git$/, '')
      .split(/[/:]/)
      .filter(Boolean)
      .pop() ?? 'repo';
  const clean =
    base
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .slice(0, 40) || 'repo';
  return `${clean}-${createHash('sha256').update(location).digest('hex').slice(0, 10)}`;
}

const FULL_SHA = /^[0-9a-f]{40}$/;

/** Serialises work on one mirror (two candidates from the same repo run concurrently). */
const locks = new Map<string, Promise<unknown>>();
async function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(key) ?? Promise.resolve();
  const next = prev.catch(() => undefined).then(fn);
  locks.set(key, next);
  try {
    return await next;
  } finally {
    if (locks.get(key) === next) locks.delete(key);
  }
}

/**
 * Content hash of a plain folder (not a git repository): every file's path,
 * executable bit and bytes, in sorted order. It pins the folder the way a commit
 * pins a repository, so bakeoff.lock and --frozen work for folders too.
 */
export async function hashFolder(root: string): Promise<string> {
  const hash = createHash('sha256');
  async function walk(rel: string): Promise<void> {
    const names = (await readdir(path.join(root, rel))).filter((n) => n !== '.git').sort();
    for (const name of names) {
      const relPath = rel ? `${rel}/${name}` : name;
      const abs = path.join(root, relPath);
      const st = await lstat(abs);
      if (st.isDirectory()) {
        await walk(relPath);
      } else if (st.isSymbolicLink()) {
        hash.update(`l ${relPath} ${await readlink(abs)}\n`);
      } else if (st.isFile()) {
        hash.update(`f ${relPath} ${st.mode & 0o111 ? 'x' : '-'} ${st.size}\n`);
        for await (const chunk of createReadStream(abs)) hash.update(chunk as Buffer);
      }
    }
  }
  await walk('');
  return hash.digest('hex');
}

/** A local folder that is not the root of a git repository is used as it is. */
async function prepareFolder(
  cacheDir: string,
  repo: string,
  location: string,
  frozenCommit?: string,
): Promise<SourceTree> {
  if (!(await exists(location))) {
    throw new GitError(
      `${repo} does not exist`,
      `no folder at ${location}: check the path (relative to the config file)`,
    );
  }
  const commit = `sha256:${await hashFolder(location)}`;
  if (frozenCommit && frozenCommit !== commit) {
    throw new GitError(
      `${repo} changed since bakeoff.lock`,
      `the folder's content hash is ${commit.slice(0, 19)}…, the lock has ${frozenCommit.slice(0, 19)}…: run without --frozen to accept the change`,
    );
  }
  const contextDir = path.join(cacheDir, 'trees', `${slug(location)}-${commit.slice(7, 19)}`);
  await withLock(contextDir, async () => {
    if (await exists(path.join(contextDir, 'src'))) return;
    const tmp = `${contextDir}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await cp(location, path.join(tmp, 'src'), {
        recursive: true,
        filter: (src) => path.basename(src) !== '.git',
      });
      await rm(contextDir, { recursive: true, force: true });
      await rename(tmp, contextDir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
  return { repo, location, ref: 'folder', commit, contextDir, sourceDir: 'src' };
}

export async function prepareSource(
  git: GitClient,
  cacheDir: string,
  repo: string,
  configDir: string,
  ref: string,
  frozenCommit?: string,
): Promise<SourceTree> {
  const location = repoLocation(repo, configDir);
  if (!isRemote(repo) && !(await exists(path.join(location, '.git')))) {
    return prepareFolder(cacheDir, repo, location, frozenCommit);
  }
  const key = slug(location);
  const mirror = path.join(cacheDir, 'repos', `${key}.git`);
  const commit = await withLock(mirror, async () => {
    const wanted = frozenCommit ?? (FULL_SHA.test(ref) ? ref : undefined);
    // A pinned commit already in the mirror needs no network at all.
    if (wanted && (await exists(mirror)) && (await git.hasCommit(mirror, wanted))) return wanted;
    await git.mirror(location, mirror);
    return git.resolve(mirror, wanted ?? ref);
  });
  const contextDir = path.join(cacheDir, 'trees', `${key}-${commit.slice(0, 12)}`);
  await withLock(contextDir, async () => {
    if (await exists(path.join(contextDir, 'src'))) return;
    const tmp = `${contextDir}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await git.exportTree(mirror, commit, path.join(tmp, 'src'));
      await rm(contextDir, { recursive: true, force: true });
      await rename(tmp, contextDir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
  return { repo, location, ref, commit, contextDir, sourceDir: 'src' };
}
