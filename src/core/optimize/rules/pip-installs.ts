// The pip installs of a RUN, with the requirements files they name read from
// the build context when the COPY that brings them is visible (and left
// unread, `text: undefined`, when it is not: the rules then cannot see them).

import { findSourceOf, resolveIn, workdirAt } from '../copies.js';
import { type PipInstall, type PipRequirement, parsePipInstall, requirementsOfFile } from '../packages.js';
import type { Instruction, Stage } from '../parse.js';
import { pipInstallArgs } from '../shell.js';
import { runCommands } from './commands.js';
import type { RuleInput } from './rule.js';

export interface RequirementsFile {
  /** As named on the command line. */
  file: string;
  /** Its text, when the context has it. */
  text: string | undefined;
  requirements: PipRequirement[];
  /** Lines that are not plain requirements (options, paths, URLs). */
  other: string[];
}

export interface PipRun extends PipInstall {
  /** The requirements files, read where possible. */
  read: RequirementsFile[];
}

/** The context text of a file a RUN names, found through the COPYs before it. */
export function contextText(
  input: RuleInput,
  stage: Stage,
  ins: Instruction,
  file: string,
): string | undefined {
  const ctx = input.context;
  if (!ctx) return undefined;
  const abs = resolveIn(workdirAt(stage, ins.line), file);
  const before = stage.instructions.filter((i) => i.line < ins.line);
  const src = findSourceOf(abs, before, stage, ctx);
  return src ? ctx.readText(src.path) : undefined;
}

export function pipRuns(input: RuleInput, stage: Stage, ins: Instruction): PipRun[] {
  if (ins.keyword !== 'RUN') return [];
  const out: PipRun[] = [];
  for (const c of runCommands(ins)) {
    const args = pipInstallArgs(c);
    if (!args) continue;
    const install = parsePipInstall(args);
    const read = install.files.map((file) => {
      const text = contextText(input, stage, ins, file);
      const parsed = text === undefined ? { requirements: [], other: [] } : requirementsOfFile(text);
      return { file, text, ...parsed };
    });
    out.push({ ...install, read });
  }
  return out;
}

/** Index URLs named on the command line and inside the requirements files. */
export function indexesOf(run: PipRun): string[] {
  const inFiles = run.read.flatMap((f) =>
    f.other.flatMap(
      (l) => /^(-i|--index-url|--extra-index-url|-f|--find-links)[\s=]+(\S+)/.exec(l)?.[2] ?? [],
    ),
  );
  return [...run.indexes, ...inFiles];
}
