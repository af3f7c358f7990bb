// The `mlship optimize` use cases: lint a Dockerfile against its build context,
// rewrite it (and .dockerignore) as a reviewable diff, and measure images.
// Everything from the outside world comes in through `deps`.

import path from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { UsageError } from '../../io/errors.js';
import type { ContextFile, ContextSnapshot } from './context.js';
import {
  compareLayers,
  type LayerComparison,
  type LayerDeps,
  type LayerReport,
  measureImage,
} from './layers.js';
import { lintDockerfile } from './lint.js';
import { parseDockerfile } from './parse.js';
import { type RewriteResult, rewriteDockerfile } from './rewrite.js';
import { entryScripts } from './rules/serving.js';
import type { Finding } from './rules.js';

export interface OptimizeFsDeps {
  /** Text of a file, or undefined when it does not exist. */
  readText(file: string): Promise<string | undefined>;
  /** Files a build of `dir` sends (the .dockerignore applied). */
  listContext(dir: string, dockerfile: string): Promise<ContextFile[]>;
}

export interface OptimizeTarget {
  /** Dockerfile path, as the user wrote it (used in findings). */
  dockerfile: string;
  /** Absolute path of the Dockerfile. */
  dockerfileAbs: string;
  /** Absolute build context directory (default: the Dockerfile's directory). */
  contextDir: string;
  /** Directory paths in diffs are shown relative to. */
  cwd: string;
  ignore?: string[];
  largeFileBytes?: number;
  target?: string;
  /** With --write: move the final stage to the slim variant of a full python/node base. */
  slimBase?: boolean;
}

export async function loadContext(
  contextDir: string,
  dockerfileAbs: string,
  deps: OptimizeFsDeps,
  scripts: string[] = [],
): Promise<ContextSnapshot> {
  const rel = path.relative(contextDir, dockerfileAbs).split(path.sep).join('/');
  const files = (await deps.listContext(contextDir, rel)).filter(
    (f) => f.path !== rel && f.path !== '.dockerignore',
  );
  const dockerignore = (await deps.readText(path.join(contextDir, '.dockerignore'))) ?? null;
  // Requirements files, and the scripts the container's command runs (dev-server reads
  // them for app.run()), are read up front (small, few) so rules and rewrite stay synchronous.
  const texts = new Map<string, string>();
  const wanted = (p: string) =>
    /(^|\/)(requirements|constraints)[^/]*\.(txt|in)$/.test(p) || scripts.includes(path.posix.basename(p));
  for (const f of files) {
    if (wanted(f.path) && f.size < 1024 * 1024) {
      const t = await deps.readText(path.join(contextDir, f.path));
      if (t !== undefined) texts.set(f.path, t);
    }
  }
  return { dockerignore, files, readText: (p) => texts.get(p) };
}

async function readDockerfile(t: OptimizeTarget, deps: OptimizeFsDeps) {
  const text = await deps.readText(t.dockerfileAbs);
  if (text === undefined) {
    throw new UsageError(`${t.dockerfile} not found`, {
      hint: 'pass the path of a Dockerfile: mlship optimize path/to/Dockerfile',
    });
  }
  return parseDockerfile(text, t.dockerfile);
}

export interface LintReport {
  file: string;
  context: string;
  findings: Finding[];
  silenced: number;
}

export async function runLint(t: OptimizeTarget, deps: OptimizeFsDeps): Promise<LintReport> {
  const df = await readDockerfile(t, deps);
  const context = await loadContext(t.contextDir, t.dockerfileAbs, deps, entryScripts(df));
  const { findings, silenced } = lintDockerfile(df, {
    context,
    ignore: t.ignore ?? [],
    largeFileBytes: t.largeFileBytes,
    target: t.target,
  });
  return { file: t.dockerfile, context: t.contextDir, findings, silenced };
}

export interface RewritePlan extends RewriteResult {
  file: string;
  dockerignorePath: string;
  /** Unified diffs of the Dockerfile and .dockerignore ('' when unchanged). */
  diff: string;
  changed: boolean;
}

export async function planRewrite(t: OptimizeTarget, deps: OptimizeFsDeps): Promise<RewritePlan> {
  const df = await readDockerfile(t, deps);
  const context = await loadContext(t.contextDir, t.dockerfileAbs, deps, entryScripts(df));
  const dockerfilePath = path.relative(t.contextDir, t.dockerfileAbs).split(path.sep).join('/');
  const result = rewriteDockerfile(df, {
    context,
    largeFileBytes: t.largeFileBytes,
    target: t.target,
    dockerfilePath,
    ignore: t.ignore ?? [],
    slimBase: t.slimBase ?? false,
  });
  const dockerignorePath = path.join(t.contextDir, '.dockerignore');
  const ignoreRel = path.relative(t.cwd, dockerignorePath).split(path.sep).join('/') || '.dockerignore';
  let diff = '';
  if (result.dockerfile !== df.text) {
    diff += createTwoFilesPatch(
      `a/${t.dockerfile}`,
      `b/${t.dockerfile}`,
      df.text,
      result.dockerfile,
      undefined,
      undefined,
      { context: 3 },
    );
  }
  if (result.dockerignore !== undefined) {
    diff += createTwoFilesPatch(
      `a/${ignoreRel}`,
      `b/${ignoreRel}`,
      context.dockerignore ?? '',
      result.dockerignore,
      undefined,
      undefined,
      {
        context: 3,
      },
    );
  }
  return { ...result, file: t.dockerfile, dockerignorePath, diff, changed: diff !== '' };
}

export async function runLayers(
  image: string,
  compare: string | undefined,
  deps: LayerDeps,
  topN = 10,
): Promise<{ report: LayerReport; comparison: LayerComparison | undefined }> {
  const report = await measureImage(image, deps, topN);
  if (!compare) return { report, comparison: undefined };
  const other = await measureImage(compare, deps, topN);
  // `--compare` names the image to compare against: it is "before", the first is "after".
  return { report, comparison: compareLayers(other, report) };
}
