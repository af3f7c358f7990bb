// Where COPY sources come from and land: the geometry several rewrite passes
// need (what a dropped file was in the image, which context file becomes a
// requirements file, how a COPY is written back with fewer sources).

import path from 'node:path';
import { type ContextFile, type ContextSnapshot, filesMatching, normaliseSource } from '../context.js';
import { hasFlag, type Instruction, type Stage } from '../parse.js';
import { copyParts, isContextCopy, workdirAt } from '../rules.js';

function quoteIfNeeded(s: string): string {
  return /[\s"'\\]/.test(s) ? JSON.stringify(s) : s;
}

/** A COPY/ADD with its flags kept and the given sources and destination. */
export function renderCopy(keyword: string, ins: Instruction, sources: string[], dest: string): string {
  const flags = ins.flags.map((f) => `--${f.name}${f.value === null ? '' : `=${f.value}`}`);
  const needsJson = [...sources, dest].some((s) => /\s/.test(s));
  if (needsJson) return `${[keyword, ...flags].join(' ')} ${JSON.stringify([...sources, dest])}`;
  return [keyword, ...flags, ...sources.map(quoteIfNeeded), dest].join(' ');
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
  const toDir = dest.endsWith('/') || multi;
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
