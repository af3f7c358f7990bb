// Candidate sources: a bare mirror per repository and an exported tree per commit,
// both in the cache (default ~/.cache/mlship), so a second bakeoff of the same
// commit neither clones nor copies anything.

import { createHash, randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { GitClient } from '../../adapters/git.js';
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

export async function prepareSource(
  git: GitClient,
  cacheDir: string,
  repo: string,
  configDir: string,
  ref: string,
  frozenCommit?: string,
): Promise<SourceTree> {
  const location = repoLocation(repo, configDir);
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
