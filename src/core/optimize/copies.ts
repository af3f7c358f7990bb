// What a COPY/ADD brings and where it lands: sources and destination, the
// working directory an instruction sees, which context file ends up at a path
// in the image. Rules and rewrite passes both need it.

import path from 'node:path';
import { type ContextFile, type ContextSnapshot, filesMatching, normaliseSource } from './context.js';
import { hasFlag, type Instruction, type Stage } from './parse.js';

/** Sources and destination of a COPY/ADD. */
export function copyParts(ins: Instruction): { sources: string[]; dest: string } {
  const parts = ins.json ?? ins.argv;
  return { sources: parts.slice(0, -1), dest: parts.at(-1) ?? '' };
}

export function isContextCopy(ins: Instruction): boolean {
  return (ins.keyword === 'COPY' || ins.keyword === 'ADD') && !hasFlag(ins, 'from');
}

const MANIFESTS =
  /(^|\/)(requirements[^/]*\.(txt|in)|constraints[^/]*\.txt|pyproject\.toml|setup\.(py|cfg)|poetry\.lock|Pipfile(\.lock)?|uv\.lock|package(-lock)?\.json|yarn\.lock|pnpm-lock\.yaml|environment\.ya?ml|conda-lock\.ya?ml)$/;

export function isManifest(src: string): boolean {
  return MANIFESTS.test(src.replace(/\/+$/, ''));
}

/** The path a relative COPY destination or WORKDIR lands on. */
export function workdirAt(stage: Stage, before: number): string {
  let wd = '/';
  for (const ins of stage.instructions) {
    if (ins.line >= before) break;
    if (ins.keyword === 'WORKDIR') {
      const d = ins.argv[0] ?? '/';
      wd = d.startsWith('/') ? d : `${wd.replace(/\/$/, '')}/${d}`;
    }
  }
  return wd;
}

export function resolveIn(workdir: string, p: string): string {
  return path.posix.resolve(workdir, p);
}

/** Where a context file lands in the image for one COPY source. */
export function landing(
  src: string,
  file: ContextFile,
  dest: string,
  workdir: string,
  multi: boolean,
): string {
  const n = normaliseSource(src);
  const destAbs = resolveIn(workdir, dest);
  // `COPY app.py .` (or to the WORKDIR by name) puts the file into that directory.
  const toDir = dest.endsWith('/') || multi || destAbs === path.posix.resolve(workdir);
  if (n === '' || file.path !== n) {
    // A directory source copies its contents; a glob copies each match by name.
    const rel = /[*?[]/.test(n)
      ? path.posix.basename(file.path)
      : file.path.slice(n === '' ? 0 : n.length + 1);
    return path.posix.join(destAbs, rel);
  }
  return toDir ? path.posix.join(destAbs, path.posix.basename(file.path)) : destAbs;
}

/** The context file (and the COPY bringing it) that lands at `abs`, among `copies`. */
export function findSourceOf(
  abs: string,
  copies: Instruction[],
  stage: Stage,
  ctx: ContextSnapshot,
): { path: string; copy: Instruction } | undefined {
  for (const ins of [...copies].reverse()) {
    if (!isContextCopy(ins) || hasFlag(ins, 'from')) continue;
    const { sources, dest } = copyParts(ins);
    const workdir = workdirAt(stage, ins.line);
    for (const src of sources) {
      if (/[*?[]/.test(src)) continue;
      const hit = filesMatching(ctx.files, src).find(
        (f) => landing(src, f, dest, workdir, sources.length > 1) === abs,
      );
      if (hit) return { path: hit.path, copy: ins };
    }
  }
  return undefined;
}
