// Pass: dependencies before source. Installs that do not read the source move
// above the first source COPY; for `pip install -r <file>`, just that file is
// copied first. Moves cross only COPYs into app directories and other moved
// RUNs; crossing anything else (ENV, USER, a RUN we do not understand) could
// change what the install sees, so it is reported instead.

import { copyParts, findSourceOf, isContextCopy, isManifest, resolveIn, workdirAt } from '../copies.js';
import { commandText, type Instruction, type Stage } from '../parse.js';
import { installsDependencies } from '../shell.js';
import { renderCopy } from './copy-paths.js';
import { classifyRun, type RunKind, requirementsAreSelfContained } from './run-kind.js';
import { allowed, type RewriteState } from './state.js';

const SYSTEM_DIRS = /^\/(etc|usr|lib|lib64|bin|sbin|var|root|home|proc|sys|dev|run|boot)(\/|$)/;

/** The instruction between the source COPY and the install that could change what the install sees. */
function blockerAmong(stage: Stage, between: Instruction[], kind: RunKind): Instruction | undefined {
  return between.find((i) => {
    if (i.keyword === 'COPY' || i.keyword === 'ADD') {
      const dest = resolveIn(workdirAt(stage, i.line), copyParts(i).dest);
      return SYSTEM_DIRS.test(dest);
    }
    if (i.keyword === 'WORKDIR') return kind.kind === 'manifest';
    return !['LABEL', 'EXPOSE'].includes(i.keyword);
  });
}

/** COPYs of just the requirements files an install reads, or why they cannot be written. */
function manifestCopies(
  s: RewriteState,
  stage: Stage,
  ins: Instruction,
  requirements: string[],
  between: Instruction[],
): { copies: string[] } | { problem: string } {
  const workdir = workdirAt(stage, ins.line);
  const copies: string[] = [];
  for (const req of requirements) {
    const abs = resolveIn(workdir, req);
    const src = s.ctx ? findSourceOf(abs, between, stage, s.ctx) : undefined;
    if (!src) return { problem: `cannot tell which context file becomes ${abs}` };
    const text = s.ctx!.readText(src.path);
    if (text === undefined || !requirementsAreSelfContained(text))
      return { problem: `${src.path} refers to other files or local paths (-r, -e, ./…)` };
    copies.push(renderCopy('COPY', src.copy, [src.path], abs));
  }
  return { copies };
}

/**
 * One install after the source COPY at `firstSource`: moved (returns true), or
 * the reason it is not (returns false: nothing after it moves either).
 */
function tryHoist(
  s: RewriteState,
  stage: Stage,
  list: Instruction[],
  at: { firstSource: number; q: number },
  moved: Instruction[],
  leaving: Set<Instruction>,
): boolean {
  const anchor = list[at.firstSource]!;
  const ins = list[at.q]!;
  const kind = allowed(s, 'source-before-deps', anchor) ? classifyRun(ins) : ({ kind: 'other' } as const);
  if (kind.kind === 'other') {
    if (allowed(s, 'source-before-deps', anchor) && installsDependencies(commandText(ins))) {
      s.notDone.push({
        rule: 'source-before-deps',
        line: ins.line,
        description:
          'this install runs after the source COPY but may read the source (or does more than install), so it was not moved: copy only the manifests it needs before it, by hand',
      });
    }
    return false;
  }
  const between = list
    .slice(at.firstSource, at.q)
    .filter((i) => !moved.includes(i) && !s.removed.has(i) && !leaving.has(i));
  const blocker = blockerAmong(stage, between, kind);
  if (blocker) {
    s.notDone.push({
      rule: 'source-before-deps',
      line: ins.line,
      description: `not moved above line ${anchor.line}: line ${blocker.line} (${blocker.keyword}) sits between and could change what the install sees`,
    });
    return false;
  }
  if (kind.kind === 'manifest') {
    const m = manifestCopies(s, stage, ins, kind.requirements, between);
    if ('problem' in m) {
      s.notDone.push({ rule: 'source-before-deps', line: ins.line, description: `not moved: ${m.problem}` });
      return false;
    }
    s.inserted.set(ins, [...(s.inserted.get(ins) ?? []), ...m.copies]);
  }
  moved.push(ins);
  s.changes.push({
    rule: 'source-before-deps',
    line: ins.line,
    description:
      kind.kind === 'manifest'
        ? `moved above the source COPY (line ${anchor.line}), after copying only ${kind.requirements.join(', ')}`
        : `moved above the source COPY (line ${anchor.line}): it does not read the source`,
  });
  return true;
}

function hoistInStage(s: RewriteState, stage: Stage, leaving: Set<Instruction>): void {
  const list = s.order.get(stage.index)!;
  const firstSource = list.findIndex(
    (i) => !s.removed.has(i) && isContextCopy(i) && copyParts(i).sources.some((x) => !isManifest(x)),
  );
  if (firstSource < 0) return;
  const moved: Instruction[] = [];
  for (let q = firstSource + 1; q < list.length; q++) {
    const ins = list[q]!;
    if (ins.keyword !== 'RUN' || s.removed.has(ins) || leaving.has(ins)) continue;
    if (!tryHoist(s, stage, list, { firstSource, q }, moved, leaving)) break;
  }
  if (moved.length) {
    const anchor = list[firstSource]!;
    const rest = list.filter((i) => !moved.includes(i));
    const at = rest.indexOf(anchor);
    s.order.set(stage.index, [...rest.slice(0, at), ...moved, ...rest.slice(at)]);
  }
}

/** The pass. `leaving`: compiles the builder-stage pass will move out, which hold no install back. */
export function hoistInstalls(s: RewriteState, leaving: Set<Instruction> = new Set()): void {
  for (const stage of s.df.stages) hoistInStage(s, stage, leaving);
}
