// Rewrites a Dockerfile and its .dockerignore so that the final image keeps the
// same files and config (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE) while
// dependencies are cached before source, weights and junk stay out of the image
// and caches do not ship. Each edit is made only where it is provably safe from
// what the parser and the build context tell us; everything else is reported
// with the reason, never guessed at.

import path from 'node:path';
import {
  type ContextFile,
  type ContextSnapshot,
  DEFAULT_LARGE_FILE_BYTES,
  filesMatching,
  formatBytes,
  isWeightLike,
  normaliseSource,
} from './context.js';
import { lintDockerfile } from './lint.js';
import {
  commandText,
  finalLineage,
  finalStageIndex,
  hasFlag,
  type Instruction,
  mounts,
  type ParsedDockerfile,
  type Stage,
} from './parse.js';
import {
  copyParts,
  isContextCopy,
  isManifest,
  lineageRoot,
  type SlimVariant,
  slimVariant,
  toolchainPackages,
  workdirAt,
} from './rules.js';
import {
  aptInstallArgs,
  installsDependencies,
  isAptUpdate,
  isCleanupOnly,
  isSimpleChain,
  packagesOf,
  pipInstallArgs,
  type SimpleCommand,
  splitShell,
} from './shell.js';

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

interface Block {
  ins: Instruction | undefined;
  /** Blank lines and comments above the instruction (they move with it). */
  lead: string[];
  body: string[];
}

const SYSTEM_DIRS = /^\/(etc|usr|lib|lib64|bin|sbin|var|root|home|proc|sys|dev|run|boot)(\/|$)/;

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

function quoteIfNeeded(s: string): string {
  return /[\s"'\\]/.test(s) ? JSON.stringify(s) : s;
}

function renderCopy(keyword: string, ins: Instruction, sources: string[], dest: string): string {
  const flags = ins.flags.map((f) => `--${f.name}${f.value === null ? '' : `=${f.value}`}`);
  const needsJson = [...sources, dest].some((s) => /\s/.test(s));
  if (needsJson) return `${[keyword, ...flags].join(' ')} ${JSON.stringify([...sources, dest])}`;
  return [keyword, ...flags, ...sources.map(quoteIfNeeded), dest].join(' ');
}

function resolveIn(workdir: string, p: string): string {
  return path.posix.resolve(workdir, p);
}

/** Where a context file lands in the image for one COPY source. */
function landing(src: string, file: ContextFile, dest: string, workdir: string, multi: boolean): string {
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

const JUNK: [string, RegExp, string][] = [
  ['**/.git', /(^|\/)\.git(\/|$)/, '.git'],
  ['**/.env', /(^|\/)\.env$/, '.env'],
  ['**/node_modules', /(^|\/)node_modules\//, 'node_modules'],
  ['**/__pycache__', /(^|\/)__pycache__\//, '__pycache__'],
];
const VENV = /^((?:.*\/)?(?:\.?venv|env|\.tox))\/(?:bin|lib|pyvenv\.cfg)/;

/** pip flags that take a value and do not read local files. */
const PIP_VALUE_FLAGS = new Set([
  '-i',
  '--index-url',
  '--extra-index-url',
  '--trusted-host',
  '--root-user-action',
  '--progress-bar',
  '--timeout',
  '--retries',
]);
const PIP_PLAIN_FLAGS =
  /^(--no-cache-dir|-U|--upgrade|-q+|--quiet|-v+|--prefer-binary|--no-compile|--disable-pip-version-check|--no-warn-script-location|--only-binary=.*|--no-binary=.*|--root-user-action=.*|--index-url=.*|--extra-index-url=.*|--progress-bar=.*|--compile|--break-system-packages|--upgrade-strategy=.*)$/;

type RunKind = { kind: 'independent' } | { kind: 'manifest'; requirements: string[] } | { kind: 'other' };

function classifyPip(args: string[]): { ok: boolean; requirements: string[] } {
  const requirements: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-r' || a === '--requirement') {
      const f = args[++i];
      if (!f) return { ok: false, requirements };
      requirements.push(f);
    } else if (a.startsWith('--requirement=')) requirements.push(a.slice(14));
    else if (PIP_VALUE_FLAGS.has(a)) i++;
    else if (PIP_PLAIN_FLAGS.test(a)) continue;
    else if (a.startsWith('-')) return { ok: false, requirements };
    else if (a.includes('/') || a.startsWith('.') || /\.(whl|zip|tar\.gz|tgz)$/.test(a) || a.includes('@'))
      return { ok: false, requirements };
  }
  return { ok: true, requirements };
}

function isAptCommand(c: SimpleCommand): boolean {
  if (isAptUpdate(c)) return true;
  if (aptInstallArgs(c) !== undefined) return true;
  const w = c.words;
  if (/(^|\/)apt(-get)?$/.test(w[0] ?? '') && ['clean', 'autoclean'].includes(w[1] ?? '')) return true;
  if (w[0] === 'rm' && w.slice(1).every((x) => x.startsWith('-') || x.startsWith('/var/lib/apt/lists')))
    return true;
  return false;
}

function classifyRun(ins: Instruction): RunKind {
  if (ins.keyword !== 'RUN' || ins.json || ins.flags.length) return { kind: 'other' };
  const script = commandText(ins);
  if (!isSimpleChain(script)) return { kind: 'other' };
  const requirements: string[] = [];
  for (const c of splitShell(script)) {
    // `DEBIAN_FRONTEND=noninteractive apt-get ...`: an assignment prefix is fine.
    const words = c.words.slice(c.words.findIndex((w) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w)));
    const cmd = { words, op: c.op };
    if (isAptCommand(cmd)) continue;
    const pip = pipInstallArgs(cmd);
    if (pip === undefined) return { kind: 'other' };
    const p = classifyPip(pip);
    if (!p.ok) return { kind: 'other' };
    requirements.push(...p.requirements);
  }
  return requirements.length ? { kind: 'manifest', requirements } : { kind: 'independent' };
}

/** A requirements file is self-contained when it names only packages from an index. */
function requirementsAreSelfContained(text: string): boolean {
  return text.split(/\r?\n/).every((raw) => {
    const l = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!l) return true;
    if (/^--?(i|index-url|extra-index-url|trusted-host|prefer-binary|only-binary|no-binary)\b/.test(l))
      return true;
    if (l.startsWith('-')) return false;
    return !(
      l.startsWith('.') ||
      l.startsWith('/') ||
      l.startsWith('file:') ||
      /^[a-z+]+:\/\//.test(l) ||
      l.includes(' @ ')
    );
  });
}

export function rewriteDockerfile(df: ParsedDockerfile, options: RewriteOptions = {}): RewriteResult {
  const ctx = options.context;
  const large = options.largeFileBytes ?? DEFAULT_LARGE_FILE_BYTES;
  const lineage = finalLineage(df, options.target);
  const changes: RewriteChange[] = [];
  const notDone: RewriteChange[] = [];
  const excluded: ExcludedFile[] = [];
  const instructions: string[] = [];
  const { blocks, tail } = blocksOf(df);
  const projectIgnore = new Set(options.ignore ?? []);
  // A finding silenced by a comment or the config is a decision: its fix is not applied.
  const allowed = (rule: string, ins: Instruction): boolean => {
    const sets = [projectIgnore, ins.ignored, df.stages[ins.stage]?.ignored ?? new Set<string>()];
    return !sets.some((s) => s.has(rule) || s.has('all'));
  };
  const blockOf = new Map<Instruction, Block>(blocks.filter((b) => b.ins).map((b) => [b.ins!, b]));
  const setBody = (ins: Instruction, text: string) => {
    blockOf.get(ins)!.body = text.split('\n');
  };
  const removed = new Set<Instruction>();
  /** Per stage, the final order of its instructions (moves edit this). */
  const order = new Map<number, Instruction[]>(df.stages.map((s) => [s.index, [...s.instructions]]));

  // 1. Files that should never be in the context: weights and data (by size) and
  //    junk (.git, .env, venvs, node_modules, __pycache__). They go to
  //    .dockerignore; a COPY that names only such files is dropped, or it would fail.
  const ignoreAdd: string[] = [];
  const junkKinds = new Set<string>();
  const excludedPaths = new Set<string>();
  if (ctx) {
    const keep = new Set<string>();
    for (const stage of df.stages) {
      for (const ins of stage.instructions.filter(isContextCopy)) {
        const silenced = !allowed('large-file-copied', ins);
        // A later RUN of the build that names the file (to convert or check it) needs it in the image.
        const later = stage.instructions
          .filter((i) => i.keyword === 'RUN' && i.line > ins.line)
          .map(commandText);
        for (const src of copyParts(ins).sources) {
          for (const f of filesMatching(ctx.files, src)) {
            const used = later.find((t) => t.includes(path.posix.basename(f.path)));
            if (used && isWeightLike(f.path) && f.size >= large && !keep.has(f.path)) {
              notDone.push({
                rule: 'large-file-copied',
                line: ins.line,
                description: `${f.path} is kept: a later RUN of the build uses it`,
              });
            }
            if (silenced || used) keep.add(f.path);
          }
        }
      }
    }
    for (const f of ctx.files) {
      if (isWeightLike(f.path) && f.size >= large && !keep.has(f.path)) {
        excludedPaths.add(f.path);
        ignoreAdd.push(f.path);
      }
    }
    for (const [pattern, re] of projectIgnore.has('dockerignore-weak') ? [] : JUNK) {
      const hits = ctx.files.filter((f) => re.test(f.path));
      if (hits.length) {
        ignoreAdd.push(pattern);
        junkKinds.add(pattern.replace('**/', ''));
        for (const h of hits) excludedPaths.add(h.path);
      }
    }
    const venvDirs = new Set<string>();
    for (const f of ctx.files) {
      const m = VENV.exec(f.path);
      if (m) venvDirs.add(m[1]!);
    }
    for (const d of venvDirs) {
      ignoreAdd.push(d);
      junkKinds.add(d);
      for (const f of ctx.files) if (f.path.startsWith(`${d}/`)) excludedPaths.add(f.path);
    }
    const files = ctx.files;
    for (const stage of df.stages) {
      for (const ins of stage.instructions) {
        if (!isContextCopy(ins)) continue;
        const { sources, dest } = copyParts(ins);
        const workdir = workdirAt(stage, ins.line);
        const kept: string[] = [];
        for (const src of sources) {
          const matches = filesMatching(files, src);
          const gone = matches.filter((m) => excludedPaths.has(m.path));
          for (const g of gone) {
            excluded.push({
              path: g.path,
              dest: landing(src, g, dest, workdir, sources.length > 1),
              bytes: g.size,
              why: isWeightLike(g.path) && g.size >= large ? 'weights' : 'junk',
            });
          }
          if (!(matches.length > 0 && gone.length === matches.length)) kept.push(src);
        }
        if (kept.length === sources.length) continue;
        if (kept.length === 0) {
          removed.add(ins);
          changes.push({
            rule: 'large-file-copied',
            line: ins.line,
            description: `removed ${ins.keyword} of ${sources.join(', ')} (now in .dockerignore)`,
          });
        } else {
          setBody(ins, renderCopy(ins.keyword, ins, kept, dest));
          changes.push({
            rule: 'large-file-copied',
            line: ins.line,
            description: `no longer copies ${sources.filter((s) => !kept.includes(s)).join(', ')}`,
          });
        }
      }
    }
    const weights = excluded.filter((e) => e.why === 'weights');
    if (weights.length) {
      const total = weights.reduce((n, w) => n + w.bytes, 0);
      changes.push({
        rule: 'large-file-copied',
        line: 1,
        description: `${weights.length} weight/data file(s), ${formatBytes(total)}, excluded via .dockerignore`,
      });
      for (const w of weights) {
        instructions.push(
          `${w.dest} (${formatBytes(w.bytes)}) is no longer in the image. Provide it at run time, either:\n` +
            `  mount it:    docker run -v "$PWD/${w.path}:${w.dest}:ro" …   (ECS: an EFS volume mounted at ${path.posix.dirname(w.dest)})\n` +
            `  download it: at start-up, before the model loads, e.g. \`aws s3 cp s3://<bucket>/${path.posix.basename(w.path)} ${w.dest}\``,
        );
      }
    }
    const junk = excluded.filter((e) => e.why === 'junk');
    if (junk.length) {
      changes.push({
        rule: 'dockerignore-weak',
        line: 1,
        description: `${junk.length} file(s) of ${[...junkKinds].join(', ')} no longer reach the image`,
      });
    }
  }

  // 2. ADD of local files, not archives or URLs, is a COPY.
  for (const stage of df.stages) {
    for (const ins of stage.instructions) {
      if (ins.keyword !== 'ADD' || removed.has(ins) || !allowed('add-instead-of-copy', ins)) continue;
      const { sources, dest } = copyParts(ins);
      if (
        sources.some((s) => /^(https?|git):\/\//.test(s) || /\.(tar|tgz|gz|bz2|xz|zst|tbz2?|txz)$/i.test(s))
      )
        continue;
      const b = blockOf.get(ins)!;
      const current = b.body.join('\n');
      b.body = current.replace(/^(\s*)ADD\b/i, '$1COPY').split('\n');
      if (b.body.join('\n') === current) setBody(ins, renderCopy('COPY', ins, sources, dest));
      changes.push({ rule: 'add-instead-of-copy', line: ins.line, description: 'ADD → COPY' });
    }
  }

  // 3. Dependencies before source: move installs that do not read the source
  //    above the first source COPY; for `pip install -r <file>`, copy just that
  //    file first. Moves cross only COPYs into app directories and other moved
  //    RUNs; crossing anything else (ENV, USER, a RUN we do not understand)
  //    could change what the install sees, so it is reported instead.
  const inserted = new Map<Instruction, string[]>();
  // Compiles that step 6 will move to a builder stage do not hold installs back.
  const finalIdx = finalStageIndex(df, options.target);
  const finalStage = df.stages[finalIdx]!;
  const slim = slimBaseOf(df, options, allowed, notDone);
  // With --slim-base the builder is tried first; when it cannot be done, the plain one.
  const planFor = (list: Instruction[]): { plan: BuilderPlan; slimReason?: string } => {
    const slimPlan = slim ? planBuilder(finalStage, list, df, allowed, true) : undefined;
    if (slimPlan?.ok) return { plan: slimPlan };
    const plain = planBuilder(finalStage, list, df, allowed, false);
    return slimPlan ? { plan: plain, slimReason: slimPlan.reason } : { plan: plain };
  };
  const { plan: prePlan } = planFor(order.get(finalIdx)!.filter((i) => !removed.has(i)));
  const leaving = new Set(prePlan.ok ? prePlan.compiles : []);
  for (const stage of df.stages) {
    const list = order.get(stage.index)!;
    const firstSource = list.findIndex(
      (i) => !removed.has(i) && isContextCopy(i) && copyParts(i).sources.some((s) => !isManifest(s)),
    );
    if (firstSource < 0) continue;
    const anchor = list[firstSource]!;
    const moved: Instruction[] = [];
    for (let q = firstSource + 1; q < list.length; q++) {
      const ins = list[q]!;
      if (ins.keyword !== 'RUN' || removed.has(ins) || leaving.has(ins)) continue;
      const kind = allowed('source-before-deps', anchor) ? classifyRun(ins) : ({ kind: 'other' } as const);
      if (kind.kind === 'other') {
        if (!allowed('source-before-deps', anchor)) break;
        if (installsDependencies(commandText(ins))) {
          notDone.push({
            rule: 'source-before-deps',
            line: ins.line,
            description:
              'this install runs after the source COPY but may read the source (or does more than install), so it was not moved: copy only the manifests it needs before it, by hand',
          });
        }
        break;
      }
      const between = list
        .slice(firstSource, q)
        .filter((i) => !moved.includes(i) && !removed.has(i) && !leaving.has(i));
      const blocker = between.find((i) => {
        if (i.keyword === 'COPY' || i.keyword === 'ADD') {
          const dest = resolveIn(workdirAt(stage, i.line), copyParts(i).dest);
          return SYSTEM_DIRS.test(dest);
        }
        if (i.keyword === 'WORKDIR') return kind.kind === 'manifest';
        return !['LABEL', 'EXPOSE'].includes(i.keyword);
      });
      if (blocker) {
        notDone.push({
          rule: 'source-before-deps',
          line: ins.line,
          description: `not moved above line ${anchor.line}: line ${blocker.line} (${blocker.keyword}) sits between and could change what the install sees`,
        });
        break;
      }
      if (kind.kind === 'manifest') {
        const workdir = workdirAt(stage, ins.line);
        const copies: string[] = [];
        let problem: string | undefined;
        for (const req of kind.requirements) {
          const abs = resolveIn(workdir, req);
          const src = ctx ? findSourceOf(abs, between, stage, ctx) : undefined;
          if (!src) {
            problem = `cannot tell which context file becomes ${abs}`;
            break;
          }
          const text = ctx!.readText(src.path);
          if (text === undefined || !requirementsAreSelfContained(text)) {
            problem = `${src.path} refers to other files or local paths (-r, -e, ./…)`;
            break;
          }
          copies.push(renderCopy('COPY', src.copy, [src.path], abs));
        }
        if (problem) {
          notDone.push({ rule: 'source-before-deps', line: ins.line, description: `not moved: ${problem}` });
          break;
        }
        inserted.set(ins, copies);
      }
      moved.push(ins);
      changes.push({
        rule: 'source-before-deps',
        line: ins.line,
        description:
          kind.kind === 'manifest'
            ? `moved above the source COPY (line ${anchor.line}), after copying only ${kind.requirements.join(', ')}`
            : `moved above the source COPY (line ${anchor.line}): it does not read the source`,
      });
    }
    if (moved.length) {
      const rest = list.filter((i) => !moved.includes(i));
      const at = rest.indexOf(anchor);
      order.set(stage.index, [...rest.slice(0, at), ...moved, ...rest.slice(at)]);
    }
  }

  // 4. A lone `apt-get update` RUN joins the RUN after it (and gets the cleanup).
  for (const stage of df.stages) {
    if (!lineage.has(stage.index)) continue;
    const list = order.get(stage.index)!.filter((i) => !removed.has(i));
    for (let k = 1; k < list.length; k++) {
      const a = list[k - 1]!;
      const b = list[k]!;
      if (a.keyword !== 'RUN' || b.keyword !== 'RUN' || a.json || b.json || a.flags.length || b.flags.length)
        continue;
      if (!allowed('consecutive-run', a) || !allowed('consecutive-run', b) || removed.has(a)) continue;
      const ca = splitShell(commandText(a));
      const cb = splitShell(commandText(b));
      if (
        isCleanupOnly(cb) &&
        isSimpleChain(commandText(a)) &&
        isSimpleChain(commandText(b)) &&
        !inserted.has(b)
      ) {
        // Deleting in a later layer saves nothing; in the same layer the files never ship.
        const ba = blockOf.get(a)!;
        ba.body = [...ba.body.slice(0, -1), `${ba.body.at(-1)} \\`, `    && ${commandText(b)}`];
        blockOf.get(b)!.body = [];
        removed.add(b);
        changes.push({
          rule: 'consecutive-run',
          line: b.line,
          description: `cleanup merged into the RUN on line ${a.line}`,
        });
        continue;
      }
      if (!(ca.length && ca.every(isAptUpdate)) || !isSimpleChain(commandText(b)) || inserted.has(b))
        continue;
      const ba = blockOf.get(a)!;
      const bb = blockOf.get(b)!;
      const head = bb.body.join('\n').replace(/^(\s*)RUN\s+/i, '');
      let body = `RUN ${commandText(a)} \\\n    && ${head}`;
      if (!/\/var\/lib\/apt\/lists/.test(body)) body += ' \\\n    && rm -rf /var/lib/apt/lists/*';
      bb.body = body.split('\n');
      bb.lead = [...ba.lead, ...bb.lead];
      removed.add(a);
      changes.push({
        rule: 'consecutive-run',
        line: a.line,
        description: `apt-get update merged into the RUN on line ${b.line}`,
      });
    }
  }

  // 5. Caches that ship: pip's cache and apt lists, in stages that end up in the image.
  for (const stage of df.stages) {
    if (!lineage.has(stage.index)) continue;
    const pipOff = stage.instructions.some(
      (i) => i.keyword === 'ENV' && i.properties.some((p) => p.name === 'PIP_NO_CACHE_DIR'),
    );
    for (const ins of stage.instructions) {
      if (
        ins.keyword !== 'RUN' ||
        ins.json ||
        removed.has(ins) ||
        mounts(ins).some((m) => m.type === 'cache')
      )
        continue;
      const cmds = splitShell(commandText(ins));
      const b = blockOf.get(ins)!;
      if (
        !pipOff &&
        allowed('pip-cache', ins) &&
        cmds.some((c) => (pipInstallArgs(c) ?? ['--no-cache-dir']).includes('--no-cache-dir') === false)
      ) {
        const before = b.body.join('\n');
        const after = before.replace(
          /(\bpip[0-9.]*\s+install)(?![^&;|\n]*--no-cache-dir)/g,
          '$1 --no-cache-dir',
        );
        if (after !== before) {
          b.body = after.split('\n');
          changes.push({ rule: 'pip-cache', line: ins.line, description: 'pip install --no-cache-dir' });
        }
      }
      const text = commandText(ins);
      if (
        cmds.some(isAptUpdate) &&
        allowed('apt-lists-kept', ins) &&
        !/\/var\/lib\/apt\/lists/.test(text) &&
        isSimpleChain(text)
      ) {
        b.body = [...b.body.slice(0, -1), `${b.body.at(-1)} \\`, '    && rm -rf /var/lib/apt/lists/*'];
        changes.push({
          rule: 'apt-lists-kept',
          line: ins.line,
          description: 'apt lists removed in the same layer',
        });
      }
    }
  }

  // 6. Build tools: when the final stage installs only toolchain packages and
  //    uses them only in compile commands whose outputs are named (`-o out`),
  //    the install and the compiles move to a builder stage and the outputs are
  //    copied back where they were made. With --slim-base the final stage moves
  //    to the slim variant of its full base, and the builder, on the full base,
  //    also runs the pip install (into a root copied over). Anything else is reported.
  let builder: { stage: number; lines: string[] } | undefined;
  const replaced = new Map<Instruction, string[]>();
  const checks: string[] = [];
  const { plan, slimReason } = planFor(order.get(finalIdx)!.filter((i) => !removed.has(i)));
  if (slim && slimReason)
    notDone.push({
      rule: 'base-not-slim',
      line: finalStage.from.line,
      description: `FROM ${slim.image} kept: ${slimReason}`,
    });
  if (plan.ok) {
    const b = (i: Instruction) => blockOf.get(i)!.body;
    // When the compiles come after the pip install, the install gets a stage of its own
    // (mlship-deps) and the compiles run on top of it (mlship-build: the same files as one
    // stage). The final stage copies the packages from mlship-deps, which a source change
    // leaves alone, so the cache key of that copy needs no checksum of the whole tree.
    const pipAt = plan.pip ? plan.builderInstructions.indexOf(plan.pip.ins) : -1;
    const split = pipAt >= 0 && pipAt < plan.builderInstructions.length - 1;
    const pipStage = split ? DEPS : BUILDER;
    if (plan.tools || plan.pip || plan.compiles.length) {
      const flags = finalStage.from.flags.map((f) => `--${f.name}${f.value === null ? '' : `=${f.value}`}`);
      const lines = [['FROM', ...flags, finalStage.image, 'AS', pipStage].join(' ')];
      plan.builderInstructions.forEach((i, n) => {
        if (i === plan.pip?.ins)
          lines.push(...pipInBuilder(plan.pip.invocation, b(i), inserted.get(i) ?? []));
        else lines.push(...b(i));
        if (split && n === pipAt) lines.push('', `FROM ${DEPS} AS ${BUILDER}`);
      });
      builder = { stage: finalIdx, lines: [...lines, ''] };
    }
    for (const c of plan.compiles) replaced.set(c, []);
    if (plan.compiles.length)
      replaced.set(
        plan.compiles.at(-1)!,
        plan.outputs.map((o) => `COPY --from=${BUILDER} ${o} ${o}`),
      );
    if (plan.pip) {
      // The requirements file still reaches the final stage with the source COPY.
      replaced.set(plan.pip.ins, [`COPY --from=${pipStage} ${PIP_ROOT}/ /`]);
      inserted.delete(plan.pip.ins);
    }
    const compiled = plan.compiles.length
      ? `the compile on line${plan.compiles.length > 1 ? 's' : ''} ${plan.compiles.map((c) => c.line).join(', ')}`
      : '';
    if (plan.tools) {
      replaced.set(plan.tools, []);
      changes.push({
        rule: 'build-tools-in-final',
        line: plan.tools.line,
        description: `${plan.packages.join(', ')}${compiled ? ` and ${compiled}` : ''} moved to a builder stage${plan.outputs.length ? `; ${plan.outputs.join(', ')} copied from it` : ''}${plan.pip ? '' : ' (if a pip install later needs a compiler, the build now fails loudly)'}`,
      });
    }
    if (slim && !slimReason) {
      const from = b(finalStage.from).join('\n');
      const image = new RegExp(`(^|\\s)${finalStage.image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=\\s|$)`);
      setBody(finalStage.from, from.replace(image, `$1${slim.slim}`));
      const moved = [
        plan.pip &&
          `the pip install on line ${plan.pip.ins.line} (with --root ${PIP_ROOT}, copied into the final stage)`,
        compiled && `${compiled} (${plan.outputs.join(', ')} copied)`,
      ].filter(Boolean);
      changes.push({
        rule: 'base-not-slim',
        line: finalStage.from.line,
        description: `final stage rebased from ${slim.image} onto ${slim.slim}${moved.length ? `; in a builder stage on ${slim.image}: ${moved.join(', ')}` : ''}`,
      });
      checks.push(
        `the final image now runs on ${slim.slim}, which lacks the compilers, -dev headers and tools of ${slim.image}. ` +
          'A package built from source in the builder may link against a library whose runtime .so only the full image has. ' +
          `List what does not resolve: docker run --rm --entrypoint sh <image> -c "${LDD_CHECK}" ` +
          '(no output is good; the libraries wheels bundle in <package>.libs are left out: they find each other at run time, which ldd alone does not show); ' +
          'install the runtime package for each (e.g. libpq5 for libpq-dev) in the final stage' +
          `${plan.pip ? ', then run `pip check` and import your packages in the new image' : ''}.`,
      );
      const unknown = plan.staying.filter((i) => classifyRun(i).kind === 'other');
      if (unknown.length)
        checks.push(
          `line${unknown.length > 1 ? 's' : ''} ${unknown.map((i) => i.line).join(', ')} stay${unknown.length > 1 ? '' : 's'} in the final stage and now run${unknown.length > 1 ? '' : 's'} on ${slim.slim}: ` +
            `a command that needs a compiler or a tool only ${slim.image} has fails there, or quietly takes its fallback (optional native modules, pure-Python fallbacks of C extensions)`,
        );
    }
  }
  for (const stage of df.stages) {
    if (!lineage.has(stage.index)) continue;
    for (const ins of stage.instructions) {
      const tools = toolchainPackages(ins);
      if (tools.length && !removed.has(ins) && !(plan.ok && plan.tools === ins)) {
        notDone.push({
          rule: 'build-tools-in-final',
          line: ins.line,
          description: `${tools.join(', ')} stay: ${plan.ok ? 'a second toolchain install' : plan.reason}; move the build into a \`FROM … AS build\` stage and COPY --from=build its outputs`,
        });
      }
    }
  }
  if (ctx) {
    for (const f of ctx.files) {
      if (f.size >= large && !isWeightLike(f.path) && !excludedPaths.has(f.path)) {
        notDone.push({
          rule: 'large-file-copied',
          line: 1,
          description: `${f.path} (${formatBytes(f.size)}) is large but not a known weight/data type: kept`,
        });
      }
    }
  }

  const dockerfile = render(df, blocks, tail, order, removed, inserted, replaced, builder);
  if (ctx && (ignoreAdd.length || dockerfile !== df.text)) {
    // A broad COPY also copies the Dockerfile and .dockerignore, which this
    // rewrite changes; listed in .dockerignore, COPY skips them (the engine still reads them).
    const own = [options.dockerfilePath ?? 'Dockerfile', '.dockerignore'].map((p) => ({ path: p, size: 0 }));
    for (const stage of df.stages) {
      for (const ins of stage.instructions.filter(isContextCopy)) {
        const { sources, dest } = copyParts(ins);
        for (const src of sources) {
          for (const f of filesMatching(own, src)) {
            if (!ignoreAdd.includes(f.path)) ignoreAdd.push(f.path);
            excluded.push({
              path: f.path,
              dest: landing(src, f, dest, workdirAt(stage, ins.line), sources.length > 1),
              bytes: 0,
              why: 'junk',
            });
          }
        }
      }
    }
  }
  // 7. Findings whose fix changes behaviour (what runs, as whom, from which base, how a
  //    secret arrives) are the user's call: listed as not done, with the lint's fix
  //    (base-not-slim says for itself above).
  const lint = lintDockerfile(df, {
    context: ctx,
    ignore: options.ignore,
    largeFileBytes: large,
    target: options.target,
  });
  for (const f of lint.findings.filter((x) => LEFT_TO_THE_USER.has(x.rule)))
    notDone.push({
      rule: f.rule,
      line: f.line,
      description: `changes behaviour, so it is yours to do: ${f.fix}`,
    });
  let dockerignore: string | undefined;
  if (ctx) {
    const current = ctx.dockerignore ?? '';
    const have = new Set(current.split(/\r?\n/).map((l) => l.trim()));
    const add = [...new Set(ignoreAdd)].filter((p) => !have.has(p) && !have.has(`/${p}`));
    if (add.length) {
      const prefix = current && !current.endsWith('\n') ? `${current}\n` : current;
      dockerignore = `${prefix}${current ? '\n' : ''}# added by mlship optimize: keep these out of the build context and the image\n${add.join('\n')}\n`;
    }
  }
  return {
    dockerfile,
    dockerignore,
    changes: changes.sort((a, b) => a.line - b.line),
    notDone: notDone.sort((a, b) => a.line - b.line),
    excluded,
    instructions,
    checks,
  };
}

/**
 * The slim variant to move the final stage to, or undefined. Says in `notDone`
 * why not when the final image is on a full base that has one.
 */
function slimBaseOf(
  df: ParsedDockerfile,
  options: RewriteOptions,
  allowed: (rule: string, ins: Instruction) => boolean,
  notDone: RewriteChange[],
): SlimVariant | undefined {
  const root = lineageRoot(df, options.target);
  const v = root.resolvedImage === undefined ? undefined : slimVariant(root.resolvedImage);
  if (!v || !allowed('base-not-slim', root.from)) return undefined;
  const kept = (why: string): undefined => {
    notDone.push({
      rule: 'base-not-slim',
      line: root.from.line,
      description: `FROM ${v.image} kept: ${why}`,
    });
    return undefined;
  };
  if (!options.slimBase)
    return kept(
      `${v.slim} is not provably the same (a package built from source may link against a library whose runtime .so only the full image has); --slim-base switches, with the builds in a builder stage on ${v.image}`,
    );
  if (root.index !== finalStageIndex(df, options.target))
    return kept(`the final stage is built FROM stage ${root.name}; switch that stage's FROM by hand`);
  if (root.image !== root.resolvedImage)
    return kept(`the FROM names the image through build args (${root.image}); change the tag by hand`);
  if (v.digest) return kept(`it is pinned by digest, and the digest of ${v.slim} is not known here`);
  return v;
}

/**
 * The pip install as the builder runs it: into PIP_ROOT (`pip install --root`
 * keeps the paths of a plain install, so the final stage gets the same files with
 * `COPY --from … / /`), stopping the build if pip replaced a package of the base
 * image, which the final stage would then hold in two versions.
 */
function pipInBuilder(invocation: string, body: string[], copies: string[]): string[] {
  const text = body
    .join('\n')
    .replace(/(\bpip[0-9.]*\s+install)/g, `$1 --root ${PIP_ROOT}`)
    .replace(
      /^(\s*RUN\s+)/i,
      `$1mkdir -p ${PIP_ROOT} && ${invocation} freeze --all > /tmp/mlship-pip-before.txt \\\n    && `,
    );
  return [
    ...copies,
    `# mlship --slim-base: installed under ${PIP_ROOT}, copied into the final stage; the build stops here`,
    '# if pip replaced a package of the base image (the final stage would keep both versions).',
    ...`${text} \\\n    && ${invocation} freeze --all | diff /tmp/mlship-pip-before.txt -`.split('\n'),
  ];
}

/** The context file (and the COPY bringing it) that lands at `abs`, among `copies`. */
function findSourceOf(
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

function render(
  df: ParsedDockerfile,
  blocks: Block[],
  tail: string[],
  order: Map<number, Instruction[]>,
  removed: Set<Instruction>,
  inserted: Map<Instruction, string[]>,
  replaced: Map<Instruction, string[]>,
  builder: { stage: number; lines: string[] } | undefined,
): string {
  const byIns = new Map(blocks.filter((b) => b.ins).map((b) => [b.ins!, b]));
  const out: string[] = [];
  const emit = (ins: Instruction) => {
    const b = byIns.get(ins)!;
    if (removed.has(ins)) return;
    const body = replaced.get(ins) ?? b.body;
    // A removed instruction takes its comments with it; blank lines stay.
    out.push(...(replaced.has(ins) && !body.length ? b.lead.filter((l) => !l.trim()) : b.lead));
    for (const c of inserted.get(ins) ?? []) out.push(c);
    out.push(...body);
  };
  for (const a of df.globalArgs) emit(a);
  for (const s of df.stages) {
    if (builder?.stage === s.index) {
      const b = byIns.get(s.from)!;
      out.push(...b.lead, ...builder.lines, ...b.body);
    } else emit(s.from);
    for (const ins of order.get(s.index)!) emit(ins);
  }
  out.push(...tail);
  return out.join('\n');
}

const BUILDER = 'mlship-build';
/** Rules the rewrite never applies: their fix changes behaviour (see step 7). */
const LEFT_TO_THE_USER = new Set([
  'apt-no-install-recommends',
  'base-unpinned',
  'cuda-devel-runtime',
  'root-user',
  'secret-in-env',
]);
/** The builder's pip install, when compiles follow it (mlship-build then builds on it). */
const DEPS = 'mlship-deps';
/**
 * Lists shared objects with a dependency the image lacks (run with `sh -c`). `_tkinter` is left
 * out: the official python -slim images ship it without Tk on purpose (their own check skips it).
 */
export const LDD_CHECK =
  "find / -xdev \\( -name '*.so' -o -name '*.so.*' \\) -type f -not -path '*.libs/*' -not -name '_tkinter*' -exec ldd {} + 2>/dev/null | grep 'not found'";
/** Where the builder's pip install puts its files (`pip install --root`), copied to / in the final stage. */
const PIP_ROOT = '/mlship-root';
const COMPILERS = /^(gcc|cc|g\+\+|c\+\+|clang|clang\+\+)(-\d+)?$/;

type BuilderPlan =
  | {
      ok: true;
      /** The toolchain install that moves (with a slim base there may be none: the full image has the tools). */
      tools: Instruction | undefined;
      packages: string[];
      compiles: Instruction[];
      outputs: string[];
      /** With a slim base: the pip install that moves to the builder, and how pip is invoked in it. */
      pip: { ins: Instruction; invocation: string } | undefined;
      /** RUNs that stay in the final stage and are replayed in the builder first (apt installs). */
      replays: Instruction[];
      /** RUNs that stay in the final stage only (with a slim base they now run on it). */
      staying: Instruction[];
      builderInstructions: Instruction[];
    }
  | { ok: false; reason: string };

/** Outputs (`-o x`) of a RUN made only of compiler commands, or undefined. */
function compileOutputs(ins: Instruction, workdir: string): string[] | undefined {
  if (ins.keyword !== 'RUN' || ins.json || ins.flags.length || !isSimpleChain(commandText(ins)))
    return undefined;
  const outputs: string[] = [];
  for (const c of splitShell(commandText(ins))) {
    if (!COMPILERS.test(c.words[0] ?? '')) return undefined;
    const i = c.words.indexOf('-o');
    const out = i >= 0 ? c.words[i + 1] : c.words.find((w) => w.startsWith('-o') && w.length > 2)?.slice(2);
    if (!out || /[$*?]/.test(out)) return undefined;
    outputs.push(resolveIn(workdir, out));
  }
  return outputs;
}

function withoutAssignments(c: SimpleCommand): SimpleCommand {
  return { words: c.words.slice(c.words.findIndex((w) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w))), op: c.op };
}

/** How pip is invoked (`pip`, `pip3`, `python -m pip`) when a RUN is only pip installs we understand. */
function pipOnlyInvocation(ins: Instruction): string | undefined {
  if (ins.keyword !== 'RUN' || classifyRun(ins).kind === 'other') return undefined;
  const cmds = splitShell(commandText(ins)).map(withoutAssignments);
  // `uv pip install` has no --root.
  if (!cmds.every((c) => pipInstallArgs(c) !== undefined && c.words[0] !== 'uv')) return undefined;
  const w = cmds[0]!.words;
  return w.slice(0, w.indexOf('install')).join(' ');
}

/** Settings that decide where pip installs, which `--root` would compose with in ways we cannot check. */
const PIP_LOCATION = /^PIP_(TARGET|PREFIX|ROOT|USER)$/;

/**
 * What moves to the builder stage. Without a slim base: a toolchain install and
 * the compiles after it (the builder starts from the same image). With one
 * (`--slim-base`): the builder starts from the full image, so it already has the
 * toolchain; the compiles and the one pip install move to it, and the final
 * stage gets their results.
 */
function planBuilder(
  stage: Stage,
  list: Instruction[],
  df: ParsedDockerfile,
  allowed: (rule: string, ins: Instruction) => boolean,
  slim: boolean,
): BuilderPlan {
  const installs = list.filter((i) => toolchainPackages(i).length > 0);
  if (!installs.length && !slim) return { ok: false, reason: 'no toolchain install' };
  if (installs.length > 1) return { ok: false, reason: 'toolchains are installed in more than one RUN' };
  const tools = installs[0];
  let packages: string[] = [];
  if (tools) {
    if (!allowed('build-tools-in-final', tools)) return { ok: false, reason: 'silenced' };
    if (classifyRun(tools).kind !== 'independent')
      return { ok: false, reason: 'the install RUN does more than apt-get' };
    const installed = splitShell(commandText(tools)).flatMap((c) => packagesOf(aptInstallArgs(c) ?? []));
    packages = toolchainPackages(tools);
    if (installed.length !== packages.length) {
      return {
        ok: false,
        reason: `the same RUN installs runtime packages too (${installed.filter((p) => !packages.includes(p)).join(', ')})`,
      };
    }
  }
  const taken = df.stages.find((s) => s.name === BUILDER || s.name === DEPS);
  if (taken) return { ok: false, reason: `a stage is already named ${taken.name}` };
  const at = tools ? list.indexOf(tools) : -1;
  const compiles: Instruction[] = [];
  const outputs: string[] = [];
  const users = list.filter((i) => i.keyword === 'USER');
  const pips = slim ? list.filter((i) => pipOnlyInvocation(i) !== undefined) : [];
  if (pips.length > 1) {
    return {
      ok: false,
      reason: `pip installs in ${pips.length} RUNs (lines ${pips.map((p) => p.line).join(', ')}): installed apart, each would miss what the one before installed; merge them into one RUN`,
    };
  }
  const pipIns = pips[0];
  if (pipIns) {
    const env = list.find((i) => i.keyword === 'ENV' && i.properties.some((p) => PIP_LOCATION.test(p.name)));
    if (env || /\bPIP_(TARGET|PREFIX|ROOT|USER)=/.test(commandText(pipIns)))
      return {
        ok: false,
        reason: `${env ? `ENV on line ${env.line}` : `line ${pipIns.line}`} sets where pip installs (PIP_TARGET/PREFIX/ROOT/USER)`,
      };
  }
  const others: Instruction[] = [];
  for (const ins of slim ? list : list.slice(at + 1)) {
    if (ins.keyword !== 'RUN' || ins === pipIns || ins === tools) continue;
    const outs = compileOutputs(ins, workdirAt(stage, ins.line));
    if (outs) {
      compiles.push(ins);
      outputs.push(...outs);
    } else if (slim) others.push(ins);
    else if (classifyRun(ins).kind === 'other') {
      return { ok: false, reason: `line ${ins.line} may use the tools and its outputs are not known` };
    }
  }
  if (!slim && !compiles.length)
    return { ok: false, reason: 'nothing visibly uses them (a pip install may compile with them)' };
  const moved = [tools, pipIns, ...compiles].filter((i): i is Instruction => i !== undefined);
  const last = Math.max(-1, ...moved.map((i) => list.indexOf(i)));
  // With a slim base, a RUN before the last moved one may prepare what it sees. An
  // apt install is replayed in the builder (and stays in the final stage); what
  // anything else does cannot be known, so nothing is moved.
  const replays: Instruction[] = [];
  const staying: Instruction[] = [];
  for (const ins of others) {
    if (list.indexOf(ins) > last) staying.push(ins);
    else if (classifyRun(ins).kind === 'independent') {
      replays.push(ins);
      staying.push(ins);
    } else
      return {
        ok: false,
        reason: `line ${ins.line} runs before line ${list[last]!.line} (which moves to the builder) and may change what it sees; what it does cannot be known`,
      };
  }
  const user = users.find((u) => list.indexOf(u) < last);
  if (user) return { ok: false, reason: `USER on line ${user.line} would change who owns the build outputs` };
  // The builder repeats what the moved RUNs can see: the base, WORKDIR/ENV/ARG/SHELL,
  // the files copied in, the replayed apt installs, and the moved RUNs themselves.
  const builderInstructions = list
    .slice(0, last + 1)
    .filter(
      (i) =>
        ['WORKDIR', 'ENV', 'ARG', 'SHELL', 'COPY', 'ADD'].includes(i.keyword) ||
        moved.includes(i) ||
        replays.includes(i),
    );
  return {
    ok: true,
    tools,
    packages,
    compiles,
    outputs,
    pip: pipIns ? { ins: pipIns, invocation: pipOnlyInvocation(pipIns)! } : undefined,
    replays,
    staying,
    builderInstructions,
  };
}
