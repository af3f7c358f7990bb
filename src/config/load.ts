// Parse → validate → (defaults come from the schema). Every problem of a file is
// reported at once, each located at file:line:column with its field path and a fix.

import { readFile } from 'node:fs/promises';
import { type Document, isMap, isNode, isPair, isScalar, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem, UsageError } from '../io/errors.js';
import { type Project, ProjectSchema } from './schema.js';

type Path = (string | number)[];

function pathString(path: Path): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

/** The YAML node at `path`, or the deepest existing ancestor. */
function nodeAt(doc: Document, path: Path): { node: Node | undefined; exact: boolean } {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node)) return { node: node as Node, exact: n === path.length };
  }
  return { node: undefined, exact: false };
}

/** The key node of `key` in the map at `path` (for "unknown key" problems). */
function keyNodeAt(doc: Document, path: Path, key: string): Node | undefined {
  const parent = path.length ? doc.getIn(path, true) : doc.contents;
  if (!isMap(parent)) return undefined;
  for (const item of parent.items) {
    if (isPair(item) && isScalar(item.key) && String(item.key.value) === key) return item.key;
  }
  return undefined;
}

// Walks zod 4's definitions to the object schema at a path (to suggest keys).
interface Def {
  type: string;
  shape?: Record<string, { _zod: { def: Def } }>;
  innerType?: { _zod: { def: Def } };
  valueType?: { _zod: { def: Def } };
  element?: { _zod: { def: Def } };
  options?: { _zod: { def: Def } }[];
}
function knownKeys(schema: z.ZodType, path: Path): string[] {
  let def = (schema as unknown as { _zod: { def: Def } })._zod.def;
  const unwrap = () => {
    while ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType) {
      def = def.innerType._zod.def;
    }
  };
  unwrap();
  for (const seg of path) {
    if (def.type === 'object' && def.shape && typeof seg === 'string' && def.shape[seg])
      def = def.shape[seg]._zod.def;
    else if (def.type === 'record' && def.valueType) def = def.valueType._zod.def;
    else if (def.type === 'array' && def.element) def = def.element._zod.def;
    else return [];
    unwrap();
  }
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function describeExpected(expected: string): string {
  return expected === 'object'
    ? 'a mapping (key: value lines)'
    : expected === 'array'
      ? 'a list'
      : `a ${expected}`;
}

/** Validates a parsed YAML document; returns the value or every problem found. */
export function validateDocument<S extends z.ZodType>(
  file: string,
  doc: Document,
  lineCounter: LineCounter,
  schema: S,
): { ok: true; value: z.output<S> } | { ok: false; problems: ConfigProblem[] } {
  const at = (offset: number | undefined) => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { line: pos.line, column: pos.col };
  };
  const syntax = doc.errors.map(
    (e): ConfigProblem => ({
      file,
      ...at(e.pos[0]),
      path: '',
      message: `YAML syntax: ${e.message.split('\n')[0]}`,
      fix:
        e.code === 'DUPLICATE_KEY'
          ? 'remove or rename the repeated key'
          : 'check indentation and quoting on this line',
    }),
  );
  if (syntax.length) return { ok: false, problems: syntax };

  const parsed = schema.safeParse(doc.toJS() ?? {}, { reportInput: true });
  if (parsed.success) return { ok: true, value: parsed.data };
  const problems = parsed.error.issues.flatMap((issue) => issueProblems(file, doc, schema, issue, at));
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  return { ok: false, problems };
}

type At = (offset: number | undefined) => { line: number; column: number };

/** One schema issue as problems at their lines: an unknown key each, else one. */
function issueProblems(
  file: string,
  doc: Document,
  schema: z.ZodType,
  issue: z.core.$ZodIssue,
  at: At,
): ConfigProblem[] {
  const path = issue.path as Path;
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(schema, path);
    return issue.keys.map((key) => {
      const node = keyNodeAt(doc, path, key) ?? nodeAt(doc, path).node;
      const suggestion = closest(key, known);
      return {
        file,
        ...at(node?.range?.[0]),
        path: pathString([...path, key]),
        message: 'unknown field',
        fix: suggestion ? `did you mean "${suggestion}"?` : `remove it; allowed here: ${known.join(', ')}`,
      };
    });
  }
  const { node, exact } = nodeAt(doc, path);
  if (issue.code === 'invalid_key') {
    // Located at the key itself, not at its value.
    const keyNode = keyNodeAt(doc, path.slice(0, -1), String(path[path.length - 1]));
    return [
      {
        file,
        ...at(keyNode?.range?.[0] ?? node?.range?.[0]),
        path: pathString(path),
        message: `invalid name: ${(issue as { issues?: { message: string }[] }).issues?.[0]?.message ?? issue.message}`,
        fix: 'rename the key',
      },
    ];
  }
  const input = (issue as { input?: unknown }).input;
  const missing = !exact || (issue.code === 'invalid_type' && input === undefined);
  const { message, fix } = describeIssue(issue, path, input, missing);
  return [{ file, ...at(node?.range?.[0]), path: pathString(path), message, ...(fix ? { fix } : {}) }];
}

/** The message and fix of an issue, in the user's words rather than zod's. */
function describeIssue(
  issue: z.core.$ZodIssue,
  path: Path,
  input: unknown,
  missing: boolean,
): { message: string; fix?: string } {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = (issue as { expected: string }).expected;
      if (missing)
        return {
          message: 'required field is missing',
          fix: `add "${String(path[path.length - 1])}" (${describeExpected(expected)})`,
        };
      return {
        message: `expected ${describeExpected(expected)}`,
        fix:
          expected === 'string' && (typeof input === 'number' || typeof input === 'boolean')
            ? `quote it: "${String(input)}"`
            : `write ${describeExpected(expected)} here`,
      };
    }
    case 'invalid_value': {
      const values = (issue as { values: unknown[] }).values.map((v) => JSON.stringify(v));
      return {
        message: `invalid value ${JSON.stringify(input)}`,
        fix: values.length === 1 ? `use ${values[0]}` : `use one of ${values.join(', ')}`,
      };
    }
    case 'too_small':
    case 'too_big': {
      const limit =
        (issue as { minimum?: unknown; maximum?: unknown }).minimum ??
        (issue as { maximum?: unknown }).maximum;
      return {
        message: `value ${JSON.stringify(input)} is too ${issue.code === 'too_big' ? 'large' : 'small'}`,
        fix: `use a value ${issue.code === 'too_big' ? '<=' : '>='} ${String(limit)}`,
      };
    }
    case 'invalid_format': {
      const example = /\(e\.g\. (.+)\)$/.exec(issue.message)?.[1];
      return { message: issue.message, ...(example ? { fix: `write it like ${example}` } : {}) };
    }
    case 'invalid_union':
      return {
        message: issue.message === 'Invalid input' ? 'value does not match any allowed form' : issue.message,
        fix: 'see the field description in schema/mlship.schema.json',
      };
    default:
      return { message: issue.message };
  }
}

/**
 * Where keys are in a YAML text: for each path (e.g. ["services", "iris", "weights"]) the line
 * and column of its last key, when present. Used to locate findings about a valid file.
 */
export function keyPositions(text: string, paths: string[][]): Map<string, { line: number; column: number }> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const out = new Map<string, { line: number; column: number }>();
  for (const p of paths) {
    const key = keyNodeAt(doc, p.slice(0, -1), p[p.length - 1]!);
    if (key?.range) {
      const pos = lineCounter.linePos(key.range[0]);
      out.set(p.join('.'), { line: pos.line, column: pos.col });
    }
  }
  return out;
}

/** Parses and validates YAML text with a schema; throws ConfigError with every problem. */
export function parseYamlConfig<S extends z.ZodType>(file: string, text: string, schema: S): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const result = validateDocument(file, doc, lineCounter, schema);
  if (!result.ok) throw new ConfigError(file, result.problems);
  return result.value;
}

export async function readConfigText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UsageError(`config file ${file} not found`, {
        hint: 'run `mlship init` to create one, or pass the path of an existing file',
      });
    }
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

export async function loadProject(file: string): Promise<Project> {
  return parseYamlConfig(file, await readConfigText(file), ProjectSchema);
}
