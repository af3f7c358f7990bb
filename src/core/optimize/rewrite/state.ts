// The one state every rewrite pass reads and edits. The passes run in a fixed
// order (see ../rewrite.ts); each edits the text blocks of instructions, the
// per-stage order, and appends what it did, or would not do, to the report.
// Nothing here decides anything: it is where the decisions are written down.

import type { ContextSnapshot } from '../context.js';
import { DEFAULT_LARGE_FILE_BYTES } from '../context.js';
import {
  finalLineage,
  finalStageIndex,
  type Instruction,
  type ParsedDockerfile,
  type Stage,
} from '../parse.js';

export interface RewriteChange {
  rule: string;
  line: number;
  description: string;
}

export interface ExcludedFile {
  /** Path in the build context. */
  path: string;
  /** Where the original image had it. */
  dest: string;
  bytes: number;
  why: 'weights' | 'junk';
}

export interface RewriteResult {
  dockerfile: string;
  /** New .dockerignore text, or undefined when it stays as it is. */
  dockerignore: string | undefined;
  changes: RewriteChange[];
  /** Improvements found but not made, with why (unsafe to do automatically). */
  notDone: RewriteChange[];
  excluded: ExcludedFile[];
  /** How to provide the excluded weights at run time. */
  instructions: string[];
  /** What to verify by hand after a change the rewrite cannot prove the same (--slim-base). */
  checks: string[];
}

export interface RewriteOptions {
  context?: ContextSnapshot | undefined;
  largeFileBytes?: number;
  target?: string | undefined;
  /** Rule ids silenced for the project: their fixes are not applied either. */
  ignore?: string[];
  /** The Dockerfile's path in the context: a broad COPY copies it too. */
  dockerfilePath?: string | undefined;
  /**
   * Move the final stage from a full python/node image to its slim variant, with
   * the compiles and the pip install in a builder stage on the full image. Opt-in:
   * not provably the same image (see `checks`).
   */
  slimBase?: boolean;
}

/** An instruction's text: what `render` writes for it unless a pass replaced or removed it. */
export interface Block {
  ins: Instruction | undefined;
  /** Blank lines and comments above the instruction (they move with it). */
  lead: string[];
  body: string[];
}

/** The builder stage written above the final stage. */
export interface BuilderLines {
  stage: number;
  lines: string[];
}

export interface RewriteState {
  readonly df: ParsedDockerfile;
  readonly options: RewriteOptions;
  readonly ctx: ContextSnapshot | undefined;
  /** What counts as a large file (bytes). */
  readonly large: number;
  /** Stages whose layers ship (the final stage and the stages it is built FROM). */
  readonly lineage: Set<number>;
  readonly finalStage: Stage;
  readonly blocks: Map<Instruction, Block>;
  /** Lines after the last instruction. */
  readonly tail: string[];
  /** Per stage, the final order of its instructions (moves edit this). */
  readonly order: Map<number, Instruction[]>;
  readonly removed: Set<Instruction>;
  /** Lines written just above an instruction (the manifest COPY of a hoisted install). */
  readonly inserted: Map<Instruction, string[]>;
  /** Lines written instead of an instruction (what moved to the builder). */
  readonly replaced: Map<Instruction, string[]>;
  builder: BuilderLines | undefined;
  /** Patterns the .dockerignore gains. */
  readonly ignoreAdd: string[];
  /** Context files that no longer reach the engine. */
  readonly excludedPaths: Set<string>;
  readonly changes: RewriteChange[];
  readonly notDone: RewriteChange[];
  readonly excluded: ExcludedFile[];
  readonly instructions: string[];
  readonly checks: string[];
  /** Rules whose not-done line a pass wrote itself (the generic "yours to do" line is then left out). */
  readonly handled: Set<string>;
}

function blocksOf(df: ParsedDockerfile): { blocks: Block[]; tail: string[] } {
  const all = [...df.globalArgs, ...df.stages.flatMap((s) => [s.from, ...s.instructions])].sort(
    (a, b) => a.line - b.line,
  );
  const blocks: Block[] = [];
  let next = 1;
  for (const ins of all) {
    blocks.push({
      ins,
      lead: df.lines.slice(next - 1, ins.line - 1),
      body: df.lines.slice(ins.line - 1, ins.endLine),
    });
    next = ins.endLine + 1;
  }
  return { blocks, tail: df.lines.slice(next - 1) };
}

export function createState(df: ParsedDockerfile, options: RewriteOptions = {}): RewriteState {
  const { blocks, tail } = blocksOf(df);
  return {
    df,
    options,
    ctx: options.context,
    large: options.largeFileBytes ?? DEFAULT_LARGE_FILE_BYTES,
    lineage: finalLineage(df, options.target),
    finalStage: df.stages[finalStageIndex(df, options.target)]!,
    blocks: new Map(blocks.filter((b) => b.ins).map((b) => [b.ins!, b])),
    tail,
    order: new Map(df.stages.map((s) => [s.index, [...s.instructions]])),
    removed: new Set(),
    inserted: new Map(),
    replaced: new Map(),
    builder: undefined,
    ignoreAdd: [],
    excludedPaths: new Set(),
    changes: [],
    notDone: [],
    excluded: [],
    instructions: [],
    checks: [],
    handled: new Set(),
  };
}

/** A finding silenced by a comment or the config is a decision: its fix is not applied. */
export function allowed(s: RewriteState, rule: string, ins: Instruction): boolean {
  const sets = [
    new Set(s.options.ignore ?? []),
    ins.ignored,
    s.df.stages[ins.stage]?.ignored ?? new Set<string>(),
  ];
  return !sets.some((x) => x.has(rule) || x.has('all'));
}

export function blockOf(s: RewriteState, ins: Instruction): Block {
  return s.blocks.get(ins)!;
}

export function setBody(s: RewriteState, ins: Instruction, text: string): void {
  blockOf(s, ins).body = text.split('\n');
}

/** The instructions of a stage in their current order, without the removed ones. */
export function liveOrder(s: RewriteState, stage: number): Instruction[] {
  return s.order.get(stage)!.filter((i) => !s.removed.has(i));
}
