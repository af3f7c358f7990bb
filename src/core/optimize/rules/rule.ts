// The shape of a lint rule and of what it reports, shared by every rule file.

import type { ContextSnapshot } from '../context.js';
import { finalLineage, type Instruction, type ParsedDockerfile } from '../parse.js';

export interface Finding {
  rule: string;
  file: string;
  line: number;
  message: string;
  fix: string;
  /** Set on findings that mean the build or the container fails, not only costs. */
  severity?: 'error';
}

export interface RuleInput {
  df: ParsedDockerfile;
  context: ContextSnapshot | undefined;
  /** Files at least this large copied into an image are reported (default 50 MB). */
  largeFileBytes: number;
  target: string | undefined;
}

export interface Rule {
  id: string;
  summary: string;
  check(input: RuleInput, report: Report): void;
}

/** Reports a finding on an instruction; `severity: 'error'` when the build or the container fails. */
export type Report = (ins: Instruction, message: string, fix: string, severity?: 'error') => void;

export function inLineage(input: RuleInput, stage: number): boolean {
  return finalLineage(input.df, input.target).has(stage);
}
