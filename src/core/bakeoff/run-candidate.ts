// One candidate: build its image, run its example in a container with the limits it
// asked for, watch memory while it runs, collect outputs and the pip freeze, remove
// the container, and say why it failed when it did.

import { createHash } from 'node:crypto';
import path from 'node:path';
import { type ContainerHandle, RUN_LABEL } from '../../adapters/docker/engine.js';
import type { Candidate } from '../../config/bakeoff-schema.js';
import {
  type BakeoffImageSpec,
  FREEZE_FILE,
  GPU_PROBE_FILE,
  generateBakeoffDockerfile,
  REPO_DIR,
} from '../../generators/bakeoff-dockerfile.js';
import type { CandidateReport, ReportPlan } from '../../generators/bakeoff-report-schema.js';
import { BuildFailedError, DockerUnavailableError, MlshipError } from '../../io/errors.js';
import { writeFileAtomic } from '../../io/files.js';
import type { TaskControl } from '../../io/progress.js';
import { type FrameworkProbe, imageGpuFromLabels, imageGpuFromProbe } from '../deploy/gpu-fit.js';
import {
  classifyBuildFailure,
  classifyRun,
  classifyStartFailure,
  type Failure,
  stripAnsi,
} from './classify.js';
import {
  CANDIDATE_LABEL,
  gpuRequest,
  INPUTS_DIR,
  inputFiles,
  inputMounts,
  inputNames,
  parseDuration,
  parseMemory,
  WEIGHTS_DIR,
  weightsEnv,
} from './container-spec.js';
import type { BakeoffDeps, BakeoffEngine } from './deps.js';
import type { RepoFacts } from './detect.js';
import { labelGpu, parseProbe } from './gpu-labels.js';
import type { Matrix } from './matrix.js';
import { collectOutputs, readContainerFiles, withPreviews } from './outputs.js';
import type { ResolvedPlan } from './resolve.js';
import { sampleGpuMemory, sampleMemory } from './sampling.js';
import { type SourceTree, shortCommit } from './source.js';

// Re-exported: what tests and the report know these by.
export { CANDIDATE_LABEL, parseMemory } from './container-spec.js';

const TAIL = 200;

export interface CandidateJob {
  name: string;
  candidate: Candidate;
  plan: ResolvedPlan;
  facts: RepoFacts;
  source: SourceTree;
  cloneMs: number;
  runId: string;
  configDir: string;
  /** Where this candidate's outputs are copied. */
  outputsDir: string;
  /** Frozen mode: reuse this image when it still exists, else pin to these versions. */
  frozen?: { imageId: string; imageTag: string; pipFreeze: string[] };
  hostGpuCount: number;
  /** Host directory mounted at WEIGHTS_DIR (read-write), shared by every candidate and run. */
  weightsCache?: string;
  /** For the minimum drivers of the image's GPU labels. */
  matrix?: Matrix;
}

export interface CandidateOutcome {
  report: CandidateReport;
  /** For bakeoff.lock (null when the image was never built). */
  lock: { imageId: string; imageTag: string; baseImage: string; pipFreeze: string[] } | null;
}

/** Lines from a freeze that pin a registry package (not the repo itself or local paths). */
export function pinnableFreeze(lines: string[]): string[] {
  return lines.filter((l) => /^[A-Za-z0-9_.-]+(\[[^\]]*\])?==\S+$/.test(l.trim())).map((l) => l.trim());
}

export function imageSpec(
  job: Pick<CandidateJob, 'name' | 'candidate' | 'plan' | 'facts' | 'frozen'>,
): BakeoffImageSpec {
  const { candidate: c, plan } = job;
  const frozenPins = job.frozen ? pinnableFreeze(job.frozen.pipFreeze) : [];
  const pins = new Map<string, string>();
  for (const line of [...(plan.framework?.constraints ?? []), ...frozenPins]) {
    pins.set(line.split('==')[0]!.toLowerCase(), line);
  }
  return {
    candidate: job.name,
    baseImage: plan.baseImage,
    python: plan.python,
    pythonFrom: plan.pythonFrom,
    devel: plan.flavor === 'devel',
    systemPackages: c.system_packages,
    framework: plan.framework
      ? {
          requirement: plan.framework.requirement,
          ...(plan.framework.indexUrl ? { indexUrl: plan.framework.indexUrl } : {}),
        }
      : null,
    constraints: [...pins.values()].sort(),
    requirementFiles: c.setup === undefined ? job.facts.requirementFiles : [],
    setup: c.setup ?? [],
    sourceDir: 'src',
  };
}

export function reportPlan(plan: ResolvedPlan): ReportPlan {
  return {
    python: plan.python,
    framework: plan.framework
      ? {
          name: plan.framework.name,
          version: plan.framework.version,
          requirement: plan.framework.requirement,
          indexUrl: plan.framework.indexUrl ?? null,
        }
      : null,
    cuda: plan.cuda,
    flavor: plan.flavor,
    baseImage: plan.baseImage,
    reasons: plan.reasons,
  };
}

function emptyReport(job: CandidateJob): CandidateReport {
  const c = job.candidate;
  return {
    name: job.name,
    status: 'failed',
    rank: null,
    source: { repo: c.repo, ref: c.ref, commit: job.source.commit },
    plan: reportPlan(job.plan),
    image: null,
    metrics: {
      cloneMs: Math.round(job.cloneMs),
      buildMs: null,
      runMs: null,
      containerMs: null,
      peakMemoryBytes: null,
      memoryLimitBytes: c.memory ? parseMemory(c.memory) : null,
      gpuMemoryBytes: null,
      imageSizeBytes: null,
    },
    run: { exitCode: null, timedOut: false, oomKilled: false, gpus: c.gpus },
    inputs: inputNames(c),
    outputs: [],
    failure: null,
    log: { phase: 'build', lines: [] },
  };
}

interface Built {
  imageId: string;
  imageTag: string;
}

/** The candidate's image: the frozen one when it still exists, else built; undefined when the build failed. */
async function buildImage(
  job: CandidateJob,
  engine: BakeoffEngine,
  report: CandidateReport,
  control: TaskControl,
  signal: AbortSignal,
): Promise<Built | undefined> {
  const labels = { [RUN_LABEL]: job.runId, [CANDIDATE_LABEL]: job.name };
  const dockerfile = generateBakeoffDockerfile(imageSpec(job));
  const hash = createHash('sha256').update(dockerfile).digest('hex').slice(0, 12);
  const imageTag = `mlship-bakeoff/${job.name}:${shortCommit(job.source.commit)}-${hash}`;
  const buildLog: string[] = [];
  const t0 = performance.now();
  if (job.frozen) {
    const existing = await engine.inspectImage(job.frozen.imageId).catch(() => undefined);
    if (existing?.id === job.frozen.imageId) {
      control.output(`frozen: reusing image ${existing.id.slice(7, 19)}`);
      report.metrics.buildMs = Math.round(performance.now() - t0);
      return { imageId: existing.id, imageTag };
    }
  }
  const dockerfileName = `bakeoff-${job.name}.Dockerfile`;
  await writeFileAtomic(path.join(job.source.contextDir, dockerfileName), dockerfile);
  let steps = 0;
  try {
    const built = await engine.build({
      context: job.source.contextDir,
      dockerfile: dockerfileName,
      tags: [imageTag],
      labels,
      signal,
      onProgress: (e) => {
        if (e.step && !e.line) {
          steps++;
          control.title(`${job.name}: building (${e.step.replace(/^Step /, 'step ').slice(0, 60)})`);
        }
        if (e.line) {
          buildLog.push(stripAnsi(e.line));
          if (buildLog.length > TAIL) buildLog.shift();
        }
      },
    });
    control.output(`image ${built.imageId.slice(7, 19)} (${built.cachedSteps}/${steps} steps cached)`);
    report.metrics.buildMs = Math.round(performance.now() - t0);
    return { imageId: built.imageId, imageTag };
  } catch (e) {
    report.metrics.buildMs = Math.round(performance.now() - t0);
    if (e instanceof DockerUnavailableError || signal.aborted) throw e;
    if (e instanceof BuildFailedError) {
      report.failure = classifyBuildFailure(e.step, e.details, e.message);
      report.log = { phase: 'build', lines: e.details.slice(-TAIL).map(stripAnsi) };
    } else {
      report.failure = engineFailure(e, 'build');
      report.log = { phase: 'build', lines: buildLog };
    }
    return undefined;
  }
}

/** The example's container with the limits it asked for; undefined when it could not start. */
async function startExample(
  job: CandidateJob,
  engine: BakeoffEngine,
  imageId: string,
  report: CandidateReport,
): Promise<ContainerHandle | undefined> {
  const c = job.candidate;
  const memoryBytes = c.memory ? parseMemory(c.memory) : undefined;
  const gpus = gpuRequest(c.gpus);
  try {
    return await engine.start({
      image: imageId,
      cmd: ['sh', '-c', c.run],
      workdir: REPO_DIR,
      // The cache variables first: a candidate's own env wins.
      env: {
        ...(job.weightsCache ? weightsEnv() : {}),
        ...c.env,
        MLSHIP_INPUTS: INPUTS_DIR,
        MLSHIP_CANDIDATE: job.name,
      },
      mounts: [
        ...inputMounts(c, job.configDir),
        ...(job.weightsCache
          ? [{ type: 'bind' as const, source: job.weightsCache, target: WEIGHTS_DIR }]
          : []),
      ],
      labels: { [RUN_LABEL]: job.runId, [CANDIDATE_LABEL]: job.name },
      ...(memoryBytes ? { memoryBytes } : {}),
      ...(gpus !== undefined ? { gpus } : {}),
    });
  } catch (e) {
    if (e instanceof DockerUnavailableError) throw e;
    report.failure = classifyStartFailure(e instanceof Error ? e.message : String(e), gpus !== undefined);
    report.log = { phase: 'run', lines: [] };
    return undefined;
  }
}

interface Watched {
  exitCode: number;
  timedOut: boolean;
}

/** Waits for the example under its timeout (and Ctrl-C), sampling memory while it runs. */
async function watchExample(
  job: CandidateJob,
  handle: ContainerHandle,
  deps: Pick<BakeoffDeps, 'exec'>,
  report: CandidateReport,
  control: TaskControl,
  signal: AbortSignal,
): Promise<Watched> {
  const c = job.candidate;
  const stopSampling = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void handle.kill('SIGKILL').catch(() => undefined);
  }, parseDuration(c.timeout));
  const onAbort = () => void handle.kill('SIGKILL').catch(() => undefined);
  signal.addEventListener('abort', onAbort, { once: true });
  const memory = sampleMemory(handle, stopSampling.signal);
  const gpuMemory =
    gpuRequest(c.gpus) !== undefined && job.hostGpuCount > 0
      ? sampleGpuMemory(deps, stopSampling.signal)
      : undefined;
  const runStart = performance.now();
  const ticker = setInterval(
    () =>
      control.title(
        `${job.name}: running (${Math.round((performance.now() - runStart) / 1000)} s of ${c.timeout})`,
      ),
    1000,
  );
  try {
    const exitCode = (await handle.wait()).exitCode;
    report.metrics.peakMemoryBytes = memory.peak();
    report.metrics.gpuMemoryBytes = gpuMemory?.peak() ?? null;
    return { exitCode, timedOut };
  } finally {
    clearInterval(ticker);
    clearTimeout(timer);
    stopSampling.abort();
    signal.removeEventListener('abort', onAbort);
  }
}

interface Collected {
  pipFreeze: string[];
  /** What the image's gpu-probe step found (frameworks and their CUDA builds). */
  frameworks: FrameworkProbe[];
}

/** After the run: engine state, log tail, outputs, the freeze and the GPU probe; the verdict. */
async function collectRun(
  job: CandidateJob,
  engine: BakeoffEngine,
  handle: ContainerHandle,
  watched: Watched,
  report: CandidateReport,
  control: TaskControl,
): Promise<Collected> {
  const c = job.candidate;
  const { exitCode, timedOut } = watched;
  const state = await handle.inspect();
  report.metrics.runMs = engineDuration(state.startedAt, state.finishedAt);
  const { oomKilled } = state;
  report.run = { exitCode, timedOut, oomKilled, gpus: c.gpus };
  const lines = stripAnsi(await handle.logs(TAIL)).split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  report.log = { phase: 'run', lines };

  const archive = (p: string) => engine.getArchive(handle.id, p);
  // Outputs and the freeze are independent reads of the stopped container: at once.
  control.title(`${job.name}: copying outputs`);
  const [outputs, mlshipFiles] = await Promise.all([
    exitCode === 0 && !timedOut ? collectOutputs(c.outputs, REPO_DIR, archive, job.outputsDir) : [],
    // The freeze and the GPU probe live side by side: one read of their directory.
    readContainerFiles(archive, path.posix.dirname(FREEZE_FILE), [
      path.posix.basename(FREEZE_FILE),
      path.posix.basename(GPU_PROBE_FILE),
    ]).catch(() => ({}) as Record<string, string>),
  ]);
  const freezeText = mlshipFiles[path.posix.basename(FREEZE_FILE)];
  const probeText = mlshipFiles[path.posix.basename(GPU_PROBE_FILE)];
  report.outputs = await withPreviews(outputs, job.outputsDir);
  report.inputs = await inputFiles(c, job.configDir);
  const memoryBytes = c.memory ? parseMemory(c.memory) : undefined;
  const failure = classifyRun({
    exitCode,
    timedOut,
    oomKilled,
    timeoutMs: parseDuration(c.timeout),
    ...(memoryBytes ? { memoryLimitBytes: memoryBytes } : {}),
    gpusRequested: gpuRequest(c.gpus) !== undefined,
    log: lines,
    missingOutputs: report.outputs.filter((o) => o.files.length === 0).map((o) => o.pattern),
    ...(job.weightsCache ? { weightsCache: job.weightsCache } : {}),
  });
  report.failure = failure ? withLfsHint(failure, job.facts.lfsPointers ?? []) : null;
  report.status = failure ? 'failed' : 'passed';
  return { pipFreeze: (freezeText ?? '').split('\n').filter(Boolean), frameworks: parseProbe(probeText) };
}

export async function runCandidate(
  job: CandidateJob,
  engine: BakeoffEngine,
  deps: Pick<BakeoffDeps, 'exec'>,
  control: TaskControl,
  signal: AbortSignal,
): Promise<CandidateOutcome> {
  const report = emptyReport(job);
  const built = await buildImage(job, engine, report, control, signal);
  if (!built) return { report, lock: null };
  const image = await engine.inspectImage(built.imageId);
  const labelled = imageGpuFromLabels(image.labels);
  report.image = {
    tag: built.imageTag,
    id: built.imageId,
    sizeBytes: image.sizeBytes,
    ...(labelled ? { gpu: labelled } : {}),
  };
  report.metrics.imageSizeBytes = image.sizeBytes;

  control.title(`${job.name}: running`);
  const tContainer = performance.now();
  const handle = await startExample(job, engine, built.imageId, report);
  if (!handle) return { report, lock: null };
  let collected: Collected;
  try {
    const watched = await watchExample(job, handle, deps, report, control, signal);
    collected = await collectRun(job, engine, handle, watched, report, control);
  } finally {
    await handle.remove();
    report.metrics.containerMs = Math.round(performance.now() - tContainer);
  }
  // Outside the container's time: the label layer is part of the image, not of the run.
  const gpu = labelled ? undefined : imageGpuFromProbe(collected.frameworks, job.matrix);
  if (gpu) {
    built.imageId = await labelGpu(job, engine, built, gpu, signal);
    report.image = { ...report.image, id: built.imageId, gpu };
  }
  return { report, lock: { ...built, baseImage: job.plan.baseImage, pipFreeze: collected.pipFreeze } };
}

function engineDuration(started: string | undefined, finished: string | undefined): number | null {
  if (!started || !finished) return null;
  const ms = Date.parse(finished) - Date.parse(started);
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
}

function engineFailure(e: unknown, phase: string): Failure {
  const message = e instanceof Error ? e.message : String(e);
  return {
    category: 'engine_error',
    origin: 'host',
    message: `the Docker engine failed during the ${phase}: ${message}`,
    hint: e instanceof MlshipError && e.hint ? e.hint : 'check `mlship doctor` and the engine logs',
    evidence: [message],
  };
}

/**
 * A failed run of a repo whose tree holds Git LFS pointers: the likely cause (weights that are
 * ~130-byte text files) goes first in the hint, with where to fetch them.
 */
export function withLfsHint(failure: Failure, pointers: string[]): Failure {
  if (!pointers.length) return failure;
  const n = pointers.length;
  const shown = pointers.slice(0, 3).join(', ') + (n > 3 ? ', …' : '');
  return {
    ...failure,
    hint: `${n} file${n === 1 ? ' is a Git LFS pointer' : 's are Git LFS pointers'}, not ${n === 1 ? 'its' : 'their'} content (${shown}): the exported tree has no LFS objects; download them in setup (e.g. git lfs pull in a clone, or from the model hub) before the example reads them. Otherwise: ${failure.hint}`,
  };
}
