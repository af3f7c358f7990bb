// Candidate sources: a bare mirror per repository and an exported tree per commit,
// both in the cache (default ~/.cache/mlship), so a second bakeoff of the same
// commit neither clones nor copies anything.

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, lstat, readdir, readlink, rename, rm, writeFile } from 'node:fs/promises';
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
  const { mirror, commit } = await mirrorAt(git, cacheDir, location, frozenCommit ?? ref);
  const contextDir = path.join(cacheDir, 'trees', `${key}-${commit.slice(0, 12)}`);
  await withLock(contextDir, async () => {
    // Trees exported before submodules were included have no marker: exported again, once.
    if (await exists(path.join(contextDir, TREE_MARKER))) return;
    const tmp = `${contextDir}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await exportWithSubmodules(git, cacheDir, { mirror, location, commit }, path.join(tmp, 'src'), 0);
      await writeFile(path.join(tmp, TREE_MARKER), 'submodules\n');
      await rm(contextDir, { recursive: true, force: true });
      await rename(tmp, contextDir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
  return { repo, location, ref, commit, contextDir, sourceDir: 'src' };
}

/** The mirror of `location` in the cache, fetched unless it already has the pinned commit. */
async function mirrorAt(
  git: GitClient,
  cacheDir: string,
  location: string,
  ref: string,
): Promise<{ mirror: string; commit: string }> {
  const mirror = path.join(cacheDir, 'repos', `${slug(location)}.git`);
  const commit = await withLock(mirror, async () => {
    const wanted = FULL_SHA.test(ref) ? ref : undefined;
    // A pinned commit already in the mirror needs no network at all.
    if (wanted && (await exists(mirror)) && (await git.hasCommit(mirror, wanted))) return wanted;
    await git.mirror(location, mirror);
    return git.resolve(mirror, ref);
  });
  return { mirror, commit };
}

/**
 * Where a submodule comes from: its URL, or for a relative one (`./x`, `../x`), resolved
 * against the superproject's own location, as git resolves it.
 */
export function submoduleLocation(url: string, parent: string): string {
  if (!/^\.\.?\//.test(url)) return url;
  const scp = /^([\w.-]+@[\w.-]+:)(.*)$/.exec(parent);
  if (scp) return `${scp[1]}${path.posix.normalize(`${scp[2]}/${url}`).replace(/^\//, '')}`;
  if (isRemote(parent)) {
    const u = new URL(parent);
    u.pathname = path.posix.normalize(`${u.pathname.replace(/\/+$/, '')}/${url}`);
    return u.toString();
  }
  return path.resolve(parent, url);
}

const MAX_SUBMODULE_DEPTH = 8;
/** Beside `src/` in an exported git tree: what the export included. */
const TREE_MARKER = '.mlship-tree';

/**
 * The tree at `commit`, with every submodule at the commit its gitlink pins (mirrored in
 * the cache like any repository), recursively: an example that imports from a vendored
 * submodule runs as it does in a `git clone --recursive` checkout.
 */
async function exportWithSubmodules(
  git: GitClient,
  cacheDir: string,
  repo: { mirror: string; location: string; commit: string },
  dest: string,
  depth: number,
): Promise<void> {
  await git.exportTree(repo.mirror, repo.commit, dest);
  const subs = await git.submodules(repo.mirror, repo.commit);
  if (subs.length && depth >= MAX_SUBMODULE_DEPTH)
    throw new GitError(
      `submodules nested more than ${MAX_SUBMODULE_DEPTH} deep`,
      `${repo.location} at ${repo.commit.slice(0, 12)} has submodules below depth ${MAX_SUBMODULE_DEPTH}`,
    );
  for (const sub of subs) {
    const location = submoduleLocation(sub.url, repo.location);
    const { mirror } = await mirrorAt(git, cacheDir, location, sub.commit).catch((e: unknown) => {
      if (e instanceof GitError && !e.submodule)
        throw new GitError(
          `submodule ${sub.path} (${location}) at ${sub.commit.slice(0, 12)}: ${e.message}`,
          e.stderr,
          { path: sub.path, location, commit: sub.commit },
        );
      throw e;
    });
    await exportWithSubmodules(
      git,
      cacheDir,
      { mirror, location, commit: sub.commit },
      path.join(dest, sub.path),
      depth + 1,
    );
  }
}
