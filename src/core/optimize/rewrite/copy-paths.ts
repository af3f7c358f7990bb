// How a COPY is written back with other sources (fewer, or just the manifest a
// hoisted install reads), its flags kept.

import type { Instruction } from '../parse.js';

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
