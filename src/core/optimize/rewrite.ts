// Rewrites a Dockerfile and its .dockerignore so that the final image keeps the
// same files and config (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE) while
// dependencies are cached before source, weights and junk stay out of the image
// and caches do not ship. Each edit is made only where it is provably safe from
// what the parser and the build context tell us; everything else is reported
// with the reason, never guessed at. Two passes change the image on purpose, and
// say so: Python is installed where the build would otherwise stop (there is no
// working image to keep), and a CUDA devel final stage that builds moves to the
// runtime image with its build in a builder stage (what the Dockerfile adds to its
// base stays the same; the base gets smaller).
//
// The rewrite is a fixed sequence of passes over one state (rewrite/state.ts),
// each in a file of its own under rewrite/ and testable alone. The order is
// part of the behaviour: see the comments at each step below.

import { lintDockerfile } from './lint.js';
import type { ParsedDockerfile } from './parse.js';
import { addToCopy } from './rewrite/add-to-copy.js';
import { planFinalStage } from './rewrite/builder-plan.js';
import { moveToBuilder } from './rewrite/builder-stage.js';
import { dropCaches } from './rewrite/caches.js';
import {
  dockerignoreText,
  excludeFromContext,
  excludeOwnFiles,
  reportLargeUnknownFiles,
} from './rewrite/context-exclusion.js';
import { hoistInstalls } from './rewrite/install-hoisting.js';
import { installPython } from './rewrite/python-install.js';
import { cudaRebaseOf, slimBaseOf } from './rewrite/rebase.js';
import { render } from './rewrite/render.js';
import { mergeRuns } from './rewrite/run-merging.js';
import { createState, type RewriteOptions, type RewriteResult, type RewriteState } from './rewrite/state.js';

export { LDD_CHECK } from './rewrite/builder-stage.js';
export type { ExcludedFile, RewriteChange, RewriteOptions, RewriteResult } from './rewrite/state.js';

/** Rules the rewrite never applies: their fix changes behaviour (see reportLeftToTheUser). */
const LEFT_TO_THE_USER = new Set([
  'apt-no-install-recommends',
  'base-unpinned',
  'cuda-devel-runtime',
  'cuda-twice',
  'dev-server',
  'dev-tools-in-final',
  'root-user',
  'secret-in-env',
  'unpinned-install',
  'unpinned-source',
]);

/**
 * Findings whose fix changes behaviour (what runs, as whom, from which base, how a
 * secret arrives) are the user's call: listed as not done, with the lint's fix
 * (base-not-slim says for itself in the builder passes).
 */
function reportLeftToTheUser(s: RewriteState): void {
  const lint = lintDockerfile(s.df, {
    context: s.ctx,
    ignore: s.options.ignore,
    largeFileBytes: s.large,
    target: s.options.target,
  });
  for (const f of lint.findings.filter((x) => LEFT_TO_THE_USER.has(x.rule) && !s.handled.has(x.rule)))
    s.notDone.push({
      rule: f.rule,
      line: f.line,
      description: `changes behaviour, so it is yours to do: ${f.fix}`,
    });
}

export function rewriteDockerfile(df: ParsedDockerfile, options: RewriteOptions = {}): RewriteResult {
  const s = createState(df, options);
  // Exclusions first: a COPY they drop no longer anchors or blocks any move below.
  excludeFromContext(s);
  addToCopy(s);
  // Before hoisting: the Python install goes with the line that needs it, wherever that moves.
  installPython(s);
  // The base the final stage moves to and the builder plan are decided before hoisting,
  // because compiles that will move to the builder must not hold installs back.
  const rebase = slimBaseOf(s) ?? cudaRebaseOf(s);
  const { plan } = planFinalStage(s, rebase);
  hoistInstalls(s, new Set(plan.ok ? plan.compiles : []));
  mergeRuns(s);
  dropCaches(s);
  // Planned again on the hoisted order: that is the order the builder repeats.
  moveToBuilder(s, rebase);
  reportLargeUnknownFiles(s);
  const dockerfile = render(s);
  excludeOwnFiles(s, dockerfile);
  reportLeftToTheUser(s);
  return {
    dockerfile,
    dockerignore: dockerignoreText(s),
    changes: s.changes.sort((a, b) => a.line - b.line),
    notDone: s.notDone.sort((a, b) => a.line - b.line),
    excluded: s.excluded,
    instructions: s.instructions,
    checks: s.checks,
  };
}
