// Pass: files that should never reach the engine. Weights and data (by size) and
// junk (.git, .env, venvs, node_modules, __pycache__) go to .dockerignore; a COPY
// that names only such files is dropped (or the build would fail on it), a COPY
// that names some of them loses those sources. Also the report of what left the
// image and how to provide the weights at run time, and the .dockerignore text.

import path from 'node:path';
import { filesMatching, formatBytes, isWeightLike } from '../context.js';
import { copyParts, isContextCopy, landing, workdirAt } from '../copies.js';
import { commandText, type Instruction } from '../parse.js';
import { renderCopy } from './copy-paths.js';
import { allowed, type RewriteState, setBody } from './state.js';

const JUNK: [string, RegExp][] = [
  ['**/.git', /(^|\/)\.git(\/|$)/],
  ['**/.env', /(^|\/)\.env$/],
  ['**/node_modules', /(^|\/)node_modules\//],
  ['**/__pycache__', /(^|\/)__pycache__\//],
];
const VENV = /^((?:.*\/)?(?:\.?venv|env|\.tox))\/(?:bin|lib|pyvenv\.cfg)/;

/**
 * Context files that stay although large: a silenced COPY's, and weights a later
 * RUN of the build names (to convert or check them), which are reported.
 */
function keptByTheBuild(s: RewriteState): Set<string> {
  const ctx = s.ctx!;
  const keep = new Set<string>();
  for (const stage of s.df.stages) {
    for (const ins of stage.instructions.filter(isContextCopy)) {
      const silenced = !allowed(s, 'large-file-copied', ins);
      const later = stage.instructions
        .filter((i) => i.keyword === 'RUN' && i.line > ins.line)
        .map(commandText);
      for (const src of copyParts(ins).sources) {
        for (const f of filesMatching(ctx.files, src)) {
          const used = later.find((t) => t.includes(path.posix.basename(f.path)));
          if (used && isWeightLike(f.path) && f.size >= s.large && !keep.has(f.path)) {
            s.notDone.push({
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
  return keep;
}

/** Chooses what leaves the context; returns the kinds of junk found (for the report). */
function chooseExclusions(s: RewriteState, keep: Set<string>): Set<string> {
  const files = s.ctx!.files;
  const junkKinds = new Set<string>();
  for (const f of files) {
    if (isWeightLike(f.path) && f.size >= s.large && !keep.has(f.path)) {
      s.excludedPaths.add(f.path);
      s.ignoreAdd.push(f.path);
    }
  }
  const junkAllowed = !(s.options.ignore ?? []).includes('dockerignore-weak');
  for (const [pattern, re] of junkAllowed ? JUNK : []) {
    const hits = files.filter((f) => re.test(f.path));
    if (hits.length) {
      s.ignoreAdd.push(pattern);
      junkKinds.add(pattern.replace('**/', ''));
      for (const h of hits) s.excludedPaths.add(h.path);
    }
  }
  const venvDirs = new Set<string>();
  for (const f of files) {
    const m = VENV.exec(f.path);
    if (m) venvDirs.add(m[1]!);
  }
  for (const d of venvDirs) {
    s.ignoreAdd.push(d);
    junkKinds.add(d);
    for (const f of files) if (f.path.startsWith(`${d}/`)) s.excludedPaths.add(f.path);
  }
  return junkKinds;
}

/** Drops the excluded sources from one COPY (the whole COPY when nothing is left). */
function trimCopy(s: RewriteState, ins: Instruction, workdir: string): void {
  const { sources, dest } = copyParts(ins);
  const kept: string[] = [];
  for (const src of sources) {
    const matches = filesMatching(s.ctx!.files, src);
    const gone = matches.filter((m) => s.excludedPaths.has(m.path));
    for (const g of gone) {
      s.excluded.push({
        path: g.path,
        dest: landing(src, g, dest, workdir, sources.length > 1),
        bytes: g.size,
        why: isWeightLike(g.path) && g.size >= s.large ? 'weights' : 'junk',
      });
    }
    if (!(matches.length > 0 && gone.length === matches.length)) kept.push(src);
  }
  if (kept.length === sources.length) return;
  if (kept.length === 0) {
    s.removed.add(ins);
    s.changes.push({
      rule: 'large-file-copied',
      line: ins.line,
      description: `removed ${ins.keyword} of ${sources.join(', ')} (now in .dockerignore)`,
    });
  } else {
    setBody(s, ins, renderCopy(ins.keyword, ins, kept, dest));
    s.changes.push({
      rule: 'large-file-copied',
      line: ins.line,
      description: `no longer copies ${sources.filter((x) => !kept.includes(x)).join(', ')}`,
    });
  }
}

function reportExclusions(s: RewriteState, junkKinds: Set<string>): void {
  const weights = s.excluded.filter((e) => e.why === 'weights');
  if (weights.length) {
    const total = weights.reduce((n, w) => n + w.bytes, 0);
    s.changes.push({
      rule: 'large-file-copied',
      line: 1,
      description: `${weights.length} weight/data file(s), ${formatBytes(total)}, excluded via .dockerignore`,
    });
    for (const w of weights) {
      s.instructions.push(
        `${w.dest} (${formatBytes(w.bytes)}) is no longer in the image. Provide it at run time, either:\n` +
          `  mount it:    docker run -v "$PWD/${w.path}:${w.dest}:ro" …   (ECS: an EFS volume mounted at ${path.posix.dirname(w.dest)})\n` +
          `  download it: at start-up, before the model loads, e.g. \`aws s3 cp s3://<bucket>/${path.posix.basename(w.path)} ${w.dest}\``,
      );
    }
  }
  const junk = s.excluded.filter((e) => e.why === 'junk');
  if (junk.length) {
    s.changes.push({
      rule: 'dockerignore-weak',
      line: 1,
      description: `${junk.length} file(s) of ${[...junkKinds].join(', ')} no longer reach the image`,
    });
  }
}

/** The pass. Needs the build context; without one there is nothing to exclude. */
export function excludeFromContext(s: RewriteState): void {
  if (!s.ctx) return;
  const junkKinds = chooseExclusions(s, keptByTheBuild(s));
  for (const stage of s.df.stages) {
    for (const ins of stage.instructions) {
      if (isContextCopy(ins)) trimCopy(s, ins, workdirAt(stage, ins.line));
    }
  }
  reportExclusions(s, junkKinds);
}

/** Large files of no known weight/data type stay: said, not guessed at. */
export function reportLargeUnknownFiles(s: RewriteState): void {
  if (!s.ctx) return;
  for (const f of s.ctx.files) {
    if (f.size >= s.large && !isWeightLike(f.path) && !s.excludedPaths.has(f.path)) {
      s.notDone.push({
        rule: 'large-file-copied',
        line: 1,
        description: `${f.path} (${formatBytes(f.size)}) is large but not a known weight/data type: kept`,
      });
    }
  }
}

/**
 * A broad COPY also copies the Dockerfile and .dockerignore, which this rewrite
 * changes; listed in .dockerignore, COPY skips them (the engine still reads them).
 * Runs after render: only when the rewrite changes something.
 */
export function excludeOwnFiles(s: RewriteState, dockerfile: string): void {
  if (!s.ctx || !(s.ignoreAdd.length || dockerfile !== s.df.text)) return;
  const own = [s.options.dockerfilePath ?? 'Dockerfile', '.dockerignore'].map((p) => ({ path: p, size: 0 }));
  for (const stage of s.df.stages) {
    for (const ins of stage.instructions.filter(isContextCopy)) {
      const { sources, dest } = copyParts(ins);
      for (const src of sources) {
        for (const f of filesMatching(own, src)) {
          if (!s.ignoreAdd.includes(f.path)) s.ignoreAdd.push(f.path);
          s.excluded.push({
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

/** The new .dockerignore text, or undefined when nothing is added to it. */
export function dockerignoreText(s: RewriteState): string | undefined {
  if (!s.ctx) return undefined;
  const current = s.ctx.dockerignore ?? '';
  const have = new Set(current.split(/\r?\n/).map((l) => l.trim()));
  const add = [...new Set(s.ignoreAdd)].filter((p) => !have.has(p) && !have.has(`/${p}`));
  if (!add.length) return undefined;
  const prefix = current && !current.endsWith('\n') ? `${current}\n` : current;
  return `${prefix}${current ? '\n' : ''}# added by mlship optimize: keep these out of the build context and the image\n${add.join('\n')}\n`;
}
