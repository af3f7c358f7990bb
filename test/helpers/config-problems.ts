// The problems mlship reports for an mlship.yaml text, by field path: "line: message / fix".
import { expect } from 'vitest';
import { parseYamlConfig } from '../../src/config/load.js';
import { ProjectSchema } from '../../src/config/schema.js';
import { ConfigError } from '../../src/io/errors.js';

export function configProblems(lines: string[]): Record<string, string> {
  let problems: ConfigError['problems'] = [];
  try {
    parseYamlConfig('mlship.yaml', lines.join('\n'), ProjectSchema);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    problems = (e as ConfigError).problems;
  }
  return Object.fromEntries(problems.map((p) => [p.path, `${p.line}: ${p.message} / ${p.fix ?? ''}`]));
}
