// Turns fixtures/bakeoff into a temporary directory whose candidates are real git
// repositories (fixed author and dates, so commit ids are the same on every run).

import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const GIT_ENV = {
  GIT_AUTHOR_NAME: 'mlship fixtures',
  GIT_AUTHOR_EMAIL: 'fixtures@mlship.dev',
  GIT_COMMITTER_NAME: 'mlship fixtures',
  GIT_COMMITTER_EMAIL: 'fixtures@mlship.dev',
  GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
};

export function git(cwd: string, args: string[]): string {
  return execFileSync('git', ['-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false', ...args], {
    cwd,
    env: { ...process.env, ...GIT_ENV },
    encoding: 'utf8',
  }).trim();
}

/** Makes `dir` a git repository with one commit of its files; returns the commit id. */
export function commitAll(dir: string, message = 'fixture'): string {
  git(dir, ['init', '-q']);
  git(dir, ['add', '-A']);
  git(dir, ['commit', '-q', '-m', message]);
  return git(dir, ['rev-parse', 'HEAD']);
}

/** Adds `url` as a submodule of `dir` at `at` (git refuses local submodule clones by default since 2.38.1). */
export function addSubmodule(dir: string, url: string, at: string): void {
  git(dir, ['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', url, at]);
}

/** A copy of fixtures/bakeoff with every candidate committed; returns the directory. */
export function bakeoffFixture(): { dir: string; commits: Record<string, string> } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-bakeoff-'));
  cpSync('fixtures/bakeoff', dir, { recursive: true });
  const commits: Record<string, string> = {};
  for (const name of readdirSync(path.join(dir, 'candidates'))) {
    commits[name] = commitAll(path.join(dir, 'candidates', name));
  }
  return { dir, commits };
}
