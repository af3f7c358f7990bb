// Step 2 of a bakeoff: every candidate's source at its commit (clone or mirror fetch,
// tree export) and what the resolver needs to know about it, concurrently. A clone that
// fails is that candidate's failure; anything else (a bug, the disk) stops the run.

import path from 'node:path';
import { GitError } from '../../adapters/git.js';
import type { TaskSpec } from '../../io/progress.js';
import { cloneFailure } from './classify.js';
import type { BakeoffDeps } from './deps.js';
import { inspectRepo } from './detect.js';
import type { BakeoffOptions, Prepared, Selection } from './prepared.js';
import { prepareSource, shortCommit } from './source.js';

function sourceTask(p: Prepared, o: BakeoffOptions, sel: Selection, deps: BakeoffDeps): TaskSpec {
  return {
    title: `${p.name}: fetch ${p.candidate.repo}@${p.candidate.ref}`,
    run: async (control) => {
      const t0 = performance.now();
      try {
        p.source = await prepareSource(
          deps.git,
          o.cacheDir,
          p.candidate.repo,
          o.configDir,
          p.candidate.ref,
          sel.lock?.candidates[p.name]?.commit,
        );
        p.facts = await inspectRepo(path.join(p.source.contextDir, p.source.sourceDir));
        control.title(`${p.name}: ${shortCommit(p.source.commit)}`);
      } catch (e) {
        if (!(e instanceof GitError)) {
          p.error = e;
          throw e;
        }
        p.failure = cloneFailure(p.candidate.repo, e.stderr, e.submodule);
        p.cloneLog = e.stderr.split('\n').filter(Boolean).slice(-50);
        throw new Error(p.failure.message);
      } finally {
        p.cloneMs = performance.now() - t0;
      }
    },
  };
}

export async function fetchSources(
  o: BakeoffOptions,
  sel: Selection,
  concurrency: number,
  deps: BakeoffDeps,
): Promise<Prepared[]> {
  const prepared: Prepared[] = sel.names.map((name) => ({
    name,
    candidate: o.config.candidates[name]!,
    cloneMs: 0,
  }));
  // With live progress, outcomes come back in completion order: errors are kept on each candidate.
  await deps.io.tasks.run(
    prepared.map((p) => sourceTask(p, o, sel, deps)),
    { concurrent: Math.max(concurrency, 2), exitOnError: false },
  );
  const unexpected = prepared.find((p) => p.error !== undefined);
  if (unexpected) throw unexpected.error;
  return prepared;
}
