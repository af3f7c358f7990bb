// Step 3 of a bakeoff: every candidate's plan (framework, CUDA, base image), and every
// problem of every candidate reported at once before anything is built: impossible
// combinations (exit 2), a driver too old (exit 3), a GPU candidate on a GPU-less host
// (that candidate's failure; the others still run).

import { generateBakeoffDockerfile } from '../../generators/bakeoff-dockerfile.js';
import type { Failure } from '../../generators/bakeoff-report-schema.js';
import { MlshipError, UsageError } from '../../io/errors.js';
import type { IoHost } from '../../io/io-host.js';
import type { BakeoffOptions, Prepared } from './prepared.js';
import {
  checkDriver,
  DriverTooOldError,
  type HostGpu,
  IncompatibleError,
  type ResolvedPlan,
  resolveCandidate,
} from './resolve.js';
import { imageSpec } from './run-candidate.js';

export interface PlannedCandidate {
  name: string;
  commit: string | null;
  plan: ResolvedPlan | null;
  dockerfile: string | null;
  failure: Failure | null;
}

const NO_HOST_GPU: Failure = {
  category: 'host_gpu_unavailable',
  origin: 'host',
  message: 'the candidate requests a GPU, but nvidia-smi finds no NVIDIA driver or GPU on this host',
  hint: 'run it on a GPU machine (with the NVIDIA Container Toolkit), or set gpus: 0 to try it on CPU',
  evidence: ['nvidia-smi: not found or no GPU'],
};

interface Problems {
  incompatible: string[];
  driver: string[];
}

function resolveOne(p: Prepared, o: BakeoffOptions, host: HostGpu, problems: Problems, io: IoHost): void {
  const compilesCuda =
    p.candidate.compiles_cuda === undefined
      ? p.facts!.compilesCuda
      : { yes: p.candidate.compiles_cuda, evidence: ['compiles_cuda in the config'] };
  try {
    p.plan = resolveCandidate(p.candidate, {
      matrix: o.matrix,
      compilesCuda,
      host,
      ...(o.config.base_images ? { baseImages: o.config.base_images } : {}),
      ...(o.baseImageOverride ? { baseImageOverride: o.baseImageOverride } : {}),
    });
  } catch (e) {
    if (e instanceof IncompatibleError)
      problems.incompatible.push(`${p.name}: ${e.message}`, ...e.details.map((d) => `  ${d}`));
    else if (e instanceof DriverTooOldError)
      problems.driver.push(`${p.name}: ${e.message}`, ...e.details.map((d) => `  ${d}`));
    else throw e;
    return;
  }
  const wantsGpu = p.candidate.gpus === 'all' || p.candidate.gpus > 0;
  if (wantsGpu && host.count === 0) {
    p.failure = NO_HOST_GPU;
    return;
  }
  const driver = checkDriver(p.name, p.plan, o.matrix, host);
  if (driver?.fatal) problems.driver.push(driver.message);
  else if (driver) io.warn(driver.message);
}

function throwProblems(problems: Problems): void {
  if (problems.incompatible.length) {
    throw new UsageError('impossible framework/CUDA/Python combinations: nothing was built', {
      details: problems.incompatible,
      hint: 'change the candidates to one of the nearest valid combinations, or extend the matrix with --matrix <file>',
    });
  }
  if (problems.driver.length) {
    throw new MlshipError(
      'GPU_DRIVER_TOO_OLD',
      'environment',
      'the NVIDIA driver is too old for these candidates: nothing was run',
      {
        details: problems.driver,
        hint: 'update the NVIDIA driver, or pin an older cuda (or framework_version) for these candidates',
      },
    );
  }
}

/** Resolves every candidate with a source; throws when any combination is impossible. */
export function resolvePlans(prepared: Prepared[], o: BakeoffOptions, host: HostGpu, io: IoHost): void {
  const problems: Problems = { incompatible: [], driver: [] };
  for (const p of prepared) if (p.source && p.facts) resolveOne(p, o, host, problems, io);
  throwProblems(problems);
  for (const p of prepared) {
    if (p.plan) io.info(`${p.name}: ${p.plan.baseImage}; ${p.plan.reasons.join('; ')}`);
    if (p.failure) io.warn(`${p.name}: ${p.failure.message} (${p.failure.hint})`);
  }
}

/** What `--plan` shows: each candidate's plan and Dockerfile, or why it has none. */
export function plannedCandidates(prepared: Prepared[]): PlannedCandidate[] {
  return prepared.map((p) => ({
    name: p.name,
    commit: p.source?.commit ?? null,
    plan: p.plan ?? null,
    dockerfile:
      p.plan && p.facts && !p.failure
        ? generateBakeoffDockerfile(
            imageSpec({ name: p.name, candidate: p.candidate, plan: p.plan, facts: p.facts }),
          )
        : null,
    failure: p.failure ?? null,
  }));
}
