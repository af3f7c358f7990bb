// Parses a Dockerfile with dockerfile-ast into the small model the rules and the
// rewrite work on: stages, instructions with 1-based line ranges, and the
// `# mlship-ignore` comments. dockerfile-ast accepts anything; the checks below
// reject what the engine would reject, with the line, before any rule runs.

import { type Instruction as AstInstruction, DockerfileParser } from 'dockerfile-ast';
import { MlshipError } from '../../io/errors.js';

export class DockerfileParseError extends MlshipError {
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, message: string) {
    super('DOCKERFILE_INVALID', 'usage', `${file}:${line}: ${message}`, {
      hint: 'fix the Dockerfile at that line; `docker build` would reject it too',
    });
    this.file = file;
    this.line = line;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), file: this.file, line: this.line };
  }
}

export interface Flag {
  name: string;
  value: string | null;
}

export interface Instruction {
  /** Upper-case keyword: RUN, COPY, ... */
  keyword: string;
  /** 1-based first and last line (continuations included). */
  line: number;
  endLine: number;
  /** First line of the comments directly above it (moved with it by the rewrite). */
  commentLine: number;
  /** Arguments after the flags, continuations joined, as written. */
  args: string;
  /** Whitespace-split arguments after the flags. */
  argv: string[];
  flags: Flag[];
  /** Exec form (`["a", "b"]`) arguments, when the instruction uses it. */
  json: string[] | undefined;
  /** ENV/ARG/LABEL key-value pairs. */
  properties: { name: string; value: string | null }[];
  stage: number;
  /** Rule ids silenced for this instruction by a comment directly above it. */
  ignored: Set<string>;
}

export interface Stage {
  index: number;
  name: string | undefined;
  /** The FROM image as written, and with build-arg defaults substituted. */
  image: string;
  resolvedImage: string | undefined;
  from: Instruction;
  instructions: Instruction[];
  /** Rule ids silenced for the whole stage (`# mlship-ignore-stage: ...`). */
  ignored: Set<string>;
}

export interface ParsedDockerfile {
  file: string;
  text: string;
  lines: string[];
  /** ARGs before the first FROM. */
  globalArgs: Instruction[];
  stages: Stage[];
  escape: string;
}

const KNOWN = new Set([
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
]);

const NEEDS_ARGS = new Set([
  'ADD',
  'COPY',
  'RUN',
  'FROM',
  'WORKDIR',
  'USER',
  'ENV',
  'ARG',
  'EXPOSE',
  'CMD',
  'ENTRYPOINT',
]);

const IGNORE = /^mlship-ignore(-stage)?\s*:\s*(.+)$/;

function parseIgnoreList(s: string): string[] {
  return s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}

function toInstruction(ast: AstInstruction, stage: number): Instruction {
  const range = ast.getRange();
  const withFlags = ast as AstInstruction & {
    getFlags?: () => { getName(): string; getValue(): string | null }[];
  };
  const flags = withFlags.getFlags
    ? withFlags.getFlags().map((f) => ({ name: f.getName(), value: f.getValue() }))
    : [];
  const argv = ast.getArguments().map((a) => a.getValue());
  const withJson = ast as AstInstruction & {
    getJSONStrings?: () => { getJSONValue(): string }[];
    getClosingBracket?: () => unknown;
    getOpeningBracket?: () => unknown;
  };
  let json: string[] | undefined;
  if (withJson.getJSONStrings && withJson.getOpeningBracket?.() && withJson.getClosingBracket?.()) {
    json = withJson.getJSONStrings().map((s) => s.getJSONValue());
    // getJSONValue drops the spaces inside a string (`"cd /app && run"` → `cd/app&&run`):
    // the array itself, parsed as JSON, keeps them.
    try {
      const text = (ast.getArgumentsContent() ?? '').replace(/\\\r?\n/g, '');
      const parsed: unknown = JSON.parse(text.slice(text.indexOf('[')));
      if (
        Array.isArray(parsed) &&
        parsed.every((x) => typeof x === 'string') &&
        parsed.length === json.length
      )
        json = parsed;
    } catch {
      // Not plain JSON (a comment or an escape the engine reads differently): the AST's values stay.
    }
  }
  const withProps = ast as AstInstruction & {
    getProperties?: () => { getName(): string; getValue(): string | null }[];
  };
  const properties = withProps.getProperties
    ? withProps.getProperties().map((p) => ({ name: p.getName(), value: p.getValue() }))
    : [];
  return {
    keyword: ast.getKeyword().toUpperCase(),
    line: range.start.line + 1,
    endLine: range.end.line + 1,
    commentLine: range.start.line + 1,
    args: argv.join(' '),
    argv,
    flags,
    json,
    properties,
    stage,
    ignored: new Set(),
  };
}

/** Substitutes `${NAME}` / `$NAME` from the global ARG defaults; undefined when one has no default. */
function resolveImage(image: string, args: Map<string, string | null>): string | undefined {
  let unresolved = false;
  const out = image.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_m, a, dflt, b) => {
      const name = (a ?? b) as string;
      const v = args.get(name);
      if (v) return v;
      if (dflt !== undefined) return dflt as string;
      unresolved = true;
      return '';
    },
  );
  return unresolved ? undefined : out;
}

/** The instruction's keyword, refused when unknown or missing its arguments. */
function checkedKeyword(node: AstInstruction, file: string, line: number): string {
  const keyword = node.getKeyword().toUpperCase();
  if (!KNOWN.has(keyword)) {
    throw new DockerfileParseError(file, line, `unknown instruction ${JSON.stringify(node.getKeyword())}`);
  }
  const content = node.getArgumentsContent();
  if (NEEDS_ARGS.has(keyword) && (content === null || content.trim() === '')) {
    throw new DockerfileParseError(file, line, `${keyword} requires arguments`);
  }
  return keyword;
}

/** A `FROM <image> [AS <name>]` line: the stage it starts. */
function startStage(
  node: AstInstruction,
  index: number,
  argDefaults: Map<string, string | null>,
  file: string,
  line: number,
): Stage {
  const ins = toInstruction(node, index);
  const argv = ins.argv;
  if (argv.length !== 1 && !(argv.length === 3 && argv[1]!.toUpperCase() === 'AS')) {
    throw new DockerfileParseError(file, line, 'FROM must be `FROM <image> [AS <name>]`');
  }
  const image = argv[0]!;
  return {
    index,
    name: argv[2]?.toLowerCase(),
    image,
    resolvedImage: resolveImage(image, argDefaults),
    from: ins,
    instructions: [],
    ignored: new Set(),
  };
}

/**
 * Comments: `# mlship-ignore: a, b` silences the instruction below it (other comments may sit
 * between); `# mlship-ignore-stage: a` the whole stage it is in.
 */
function applyIgnoreComments(
  comments: Map<number, string>,
  globalArgs: Instruction[],
  stages: Stage[],
): void {
  const all = [...globalArgs, ...stages.flatMap((s) => [s.from, ...s.instructions])].sort(
    (a, b) => a.line - b.line,
  );
  for (const ins of all) {
    let l = ins.line - 1;
    while (l >= 1 && comments.has(l)) {
      const m = IGNORE.exec(comments.get(l)!.trim());
      if (m && !m[1]) for (const id of parseIgnoreList(m[2]!)) ins.ignored.add(id);
      ins.commentLine = l;
      l--;
    }
  }
  for (const [l, content] of comments) {
    const m = IGNORE.exec(content.trim());
    if (!m?.[1]) continue;
    const stage = [...stages].reverse().find((s) => s.from.line <= l) ?? stages[0]!;
    for (const id of parseIgnoreList(m[2]!)) stage.ignored.add(id);
  }
}

export function parseDockerfile(text: string, file = 'Dockerfile'): ParsedDockerfile {
  const ast = DockerfileParser.parse(text);
  const lines = text.split(/\r?\n/);
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  const argDefaults = new Map<string, string | null>();

  for (const node of ast.getInstructions()) {
    const line = node.getRange().start.line + 1;
    const keyword = checkedKeyword(node, file, line);
    if (keyword === 'FROM') {
      stages.push(startStage(node, stages.length, argDefaults, file, line));
      continue;
    }
    const current = stages.at(-1);
    if (!current) {
      if (keyword !== 'ARG')
        throw new DockerfileParseError(
          file,
          line,
          `${keyword} before the first FROM (only ARG may come first)`,
        );
      const ins = toInstruction(node, -1);
      for (const p of ins.properties) argDefaults.set(p.name, p.value);
      globalArgs.push(ins);
      continue;
    }
    const ins = toInstruction(node, current.index);
    if (
      (keyword === 'COPY' || keyword === 'ADD') &&
      ins.argv.length < 2 &&
      !(ins.json && ins.json.length >= 2)
    ) {
      throw new DockerfileParseError(file, line, `${keyword} requires at least a source and a destination`);
    }
    current.instructions.push(ins);
  }
  if (stages.length === 0) {
    const last = Math.max(1, lines.length - (lines.at(-1) === '' ? 1 : 0));
    throw new DockerfileParseError(
      file,
      text.trim() ? last : 1,
      'no FROM instruction: a Dockerfile must start a stage',
    );
  }
  const comments = new Map<number, string>();
  for (const c of ast.getComments()) comments.set(c.getRange().start.line + 1, c.getContent());
  applyIgnoreComments(comments, globalArgs, stages);
  return { file, text, lines, globalArgs, stages, escape: ast.getEscapeCharacter() };
}

/** Index of the stage that ends up as the image (the last, or the named target). */
export function finalStageIndex(df: ParsedDockerfile, target?: string): number {
  if (target) {
    const t = df.stages.find((s) => s.name === target.toLowerCase());
    if (t) return t.index;
  }
  return df.stages.length - 1;
}

/**
 * Stages whose layers are in the final image: the final stage and the stages it
 * is built `FROM`. Stages only copied from (`COPY --from`) are not.
 */
export function finalLineage(df: ParsedDockerfile, target?: string): Set<number> {
  const out = new Set<number>();
  let i: number | undefined = finalStageIndex(df, target);
  while (i !== undefined && !out.has(i)) {
    out.add(i);
    const child: number = i;
    const image: string = df.stages[child]!.image.toLowerCase();
    const parent: Stage | undefined = df.stages.find((s) => s.index < child && s.name === image);
    i = parent?.index;
  }
  return out;
}

/** The text of a RUN (shell form) or its exec-form arguments joined with spaces. */
export function commandText(ins: Instruction): string {
  return ins.json ? ins.json.join(' ') : ins.args;
}

export function hasFlag(ins: Instruction, name: string): boolean {
  return ins.flags.some((f) => f.name === name);
}

/** Values of `--mount=...` flags parsed into key/value maps. */
export function mounts(ins: Instruction): Record<string, string>[] {
  return ins.flags
    .filter((f) => f.name === 'mount' && f.value)
    .map((f) => Object.fromEntries(f.value!.split(',').map((kv) => kv.split('=', 2) as [string, string])));
}

/** The stage of the final image's lineage that starts from an image (not from another stage). */
export function lineageRoot(df: ParsedDockerfile, target: string | undefined): Stage {
  const lineage = [...finalLineage(df, target)].sort((a, b) => a - b);
  return df.stages[lineage[0]!]!;
}

/** A stage and the stages it is built FROM, oldest first. */
export function stageChain(df: ParsedDockerfile, index: number): Stage[] {
  const out: Stage[] = [];
  let s: Stage | undefined = df.stages[index];
  while (s && !out.includes(s)) {
    out.unshift(s);
    const child: Stage = s;
    s = df.stages.find((x) => x.index < child.index && x.name === child.image.toLowerCase());
  }
  return out;
}
