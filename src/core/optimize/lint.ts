// Runs the rules over a parsed Dockerfile and applies the three ways to silence
// a finding: a comment above the line, a comment in the stage, and the project
// config (`optimize.ignore` in mlship.yaml).

import type { ContextSnapshot } from './context.js';
import { DEFAULT_LARGE_FILE_BYTES } from './context.js';
import type { Instruction, ParsedDockerfile } from './parse.js';
import { type Finding, RULE_IDS, RULES } from './rules.js';

export interface LintOptions {
  context?: ContextSnapshot | undefined;
  /** Rule ids silenced for the whole project. */
  ignore?: string[];
  largeFileBytes?: number;
  target?: string | undefined;
}

export interface LintResult {
  findings: Finding[];
  /** How many findings a comment or the config silenced. */
  silenced: number;
}

export function unknownRuleIds(ids: string[]): string[] {
  return ids.filter((id) => id !== 'all' && !RULE_IDS.includes(id));
}

export function lintDockerfile(df: ParsedDockerfile, options: LintOptions = {}): LintResult {
  const projectIgnore = new Set(options.ignore ?? []);
  const findings: Finding[] = [];
  let silenced = 0;
  for (const rule of RULES) {
    if (projectIgnore.has(rule.id)) continue;
    const seen = new Set<number>();
    rule.check(
      {
        df,
        context: options.context,
        largeFileBytes: options.largeFileBytes ?? DEFAULT_LARGE_FILE_BYTES,
        target: options.target,
      },
      (ins: Instruction, message: string, fix: string, severity?: 'error') => {
        if (seen.has(ins.line) && rule.id !== 'secret-in-env') return;
        seen.add(ins.line);
        const stage = df.stages[ins.stage];
        const off = (s: Set<string>) => s.has(rule.id) || s.has('all');
        if (off(ins.ignored) || (stage && off(stage.ignored))) {
          silenced++;
          return;
        }
        findings.push({
          rule: rule.id,
          file: df.file,
          line: ins.line,
          message,
          fix,
          ...(severity ? { severity } : {}),
        });
      },
    );
  }
  findings.sort((a, b) => a.line - b.line || a.rule.localeCompare(b.rule));
  return { findings, silenced };
}
