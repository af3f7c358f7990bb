// Runs templates/wrap/probe.py with the service's own runtime, once, before `mlship wrap`
// writes anything: the project's Python first (--python, an active virtualenv, a .venv or venv
// beside the model or above it, then python3), else the service's image when one was built.
// A Python without the runtime package (no joblib, no onnxruntime) is skipped, and noted.

import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunOptions, RunResult } from '../../adapters/docker/engine.js';
import type { Exec } from '../../adapters/exec.js';
import type { JsonValue } from '../../generators/wrap-input.js';
import type { ModelKind } from '../../generators/wrap-spec.js';
import { staticTemplate } from '../../generators/wrap-templates.js';
import { UsageError } from '../../io/errors.js';

/** What `mlship wrap` needs to run its checks; without it, only the formats are checked. */
export interface WrapCheckDeps {
  exec?: Exec;
  /** VIRTUAL_ENV of the mlship process: an activated environment is the project's Python. */
  virtualEnv?: string;
  /** --python: this interpreter and no other. */
  python?: string;
  /** The engine, for a service image built before (connects on first use; may fail). */
  image?: () => Promise<{
    imageExists(ref: string): Promise<boolean>;
    run(options: RunOptions): Promise<RunResult>;
  }>;
}

export interface ProbeRequest {
  model?: { kind: Exclude<ModelKind, 'entry'>; path: string; sample?: JsonValue };
  entry?: { dir: string; module: string; function: string };
  schema?: { dir: string; module: string; class: string; example: JsonValue };
}

export interface ProbeProblem {
  stage: string;
  type: string;
  message: string;
  /** The functions or classes the module does define, when the one asked for is missing. */
  defined?: string[];
}

export interface ModelReport {
  runtime?: Record<string, string>;
  type?: string;
  n_features_in?: number;
  feature_names?: string[];
  prediction?: unknown;
  error?: ProbeProblem;
}

export interface CodeReport {
  error?: ProbeProblem;
  /** A package the code imports that this Python lacks: not verifiable here. */
  unavailable?: string;
  hooks?: string[];
}

export interface ProbeReport {
  python: string;
  executable: string;
  model?: ModelReport;
  entry?: CodeReport;
  schema?: CodeReport;
}

export interface ProbeOutcome {
  report?: ProbeReport;
  /** Who ran it: "python .venv/bin/python" or "image mlship/iris:latest". */
  by?: string;
  /** Interpreters tried and why each was passed over. */
  passed: string[];
}

const LOCAL_TIMEOUT_MS = 60_000;
const IMAGE_TIMEOUT_MS = 120_000;
/** A request larger than this is not passed to a container as an argument (argv limits). */
const MAX_ARG_BYTES = 100_000;

/** The project's interpreters, most specific first. */
export function pythonCandidates(deps: WrapCheckDeps, sourceDir: string, cwd: string): string[] {
  if (deps.python) return [deps.python];
  const found: string[] = [];
  if (deps.virtualEnv) found.push(path.join(deps.virtualEnv, 'bin', 'python'));
  const dirs = [...ancestors(sourceDir), cwd];
  for (const dir of dirs) {
    for (const venv of ['.venv', 'venv']) {
      for (const bin of [path.join('bin', 'python'), path.join('Scripts', 'python.exe')]) {
        const p = path.join(dir, venv, bin);
        if (existsSync(p)) found.push(p);
      }
    }
  }
  found.push('python3');
  return [...new Set(found)];
}

/** The directory and its parents, up to the repository root (the first with .git) or 8 levels. */
function ancestors(dir: string): string[] {
  const out: string[] = [];
  let d = path.resolve(dir);
  for (let i = 0; i < 8; i++) {
    out.push(d);
    if (existsSync(path.join(d, '.git'))) break;
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  return out;
}

function parseReport(stdout: string): (ProbeReport & { missing?: string }) | undefined {
  const last = stdout.trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(last) as ProbeReport & { missing?: string };
    return typeof parsed.python === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function shortPath(p: string, cwd: string): string {
  if (!path.isAbsolute(p)) return p;
  const rel = path.relative(cwd, p);
  return rel.startsWith('..') ? p : rel;
}

export async function runProbe(
  deps: WrapCheckDeps,
  request: ProbeRequest,
  where: { sourceDir: string; cwd: string; image?: string },
): Promise<ProbeOutcome> {
  const passed: string[] = [];
  const source = staticTemplate('probe.py');
  if (deps.exec) {
    for (const python of pythonCandidates(deps, where.sourceDir, where.cwd)) {
      const shown = shortPath(python, where.cwd);
      const r = await deps.exec(python, ['-c', source], {
        input: JSON.stringify(request),
        timeoutMs: LOCAL_TIMEOUT_MS,
        cwd: os.tmpdir(),
      });
      if (r.notFound) {
        if (deps.python) throw new UsageError(`--python ${deps.python}: no such program`);
        passed.push(`${shown}: not found`);
        continue;
      }
      if (r.timedOut) {
        passed.push(`${shown}: took longer than ${LOCAL_TIMEOUT_MS / 1000} s`);
        break;
      }
      const report = parseReport(r.stdout);
      if (!report) {
        const why = r.stderr.trim().split('\n').pop() ?? `exit code ${r.exitCode}`;
        passed.push(`${shown}: failed (${why})`);
        continue;
      }
      if (report.missing) {
        passed.push(`${shown}: no ${report.missing}`);
        continue;
      }
      return { report, by: `python ${shown}`, passed };
    }
  }
  if (where.image && deps.image) {
    const outcome = await probeInImage(deps.image, request, where.image, source).catch((e: unknown) => {
      passed.push(`image ${where.image}: ${(e as Error).message}`);
      return undefined;
    });
    if (outcome?.report && !('missing' in outcome.report && outcome.report.missing)) {
      return { report: outcome.report, by: `image ${where.image}`, passed };
    }
    if (outcome?.why) passed.push(`image ${where.image}: ${outcome.why}`);
  }
  return { passed };
}

/** The same check inside the service's image: the runtime the service really has. */
async function probeInImage(
  connect: NonNullable<WrapCheckDeps['image']>,
  request: ProbeRequest,
  image: string,
  source: string,
): Promise<{ report?: ProbeReport & { missing?: string }; why?: string }> {
  const engine = await connect();
  if (!(await engine.imageExists(image))) return { why: 'not built' };
  const mounts: RunOptions['mounts'] = [];
  const inside: ProbeRequest = {};
  if (request.model) {
    const target = `/probe/model/${path.basename(request.model.path)}`;
    mounts.push({ type: 'bind', source: request.model.path, target, readOnly: true });
    inside.model = { ...request.model, path: target };
  }
  if (request.entry) {
    mounts.push({ type: 'bind', source: request.entry.dir, target: '/probe/entry', readOnly: true });
    inside.entry = { ...request.entry, dir: '/probe/entry' };
  }
  if (request.schema) {
    mounts.push({ type: 'bind', source: request.schema.dir, target: '/probe/schema', readOnly: true });
    inside.schema = { ...request.schema, dir: '/probe/schema' };
  }
  let arg = JSON.stringify(inside);
  if (arg.length > MAX_ARG_BYTES && inside.model) {
    delete inside.model.sample;
    arg = JSON.stringify(inside);
  }
  const r = await engine.run({
    image,
    entrypoint: ['python', '-c', source],
    cmd: [arg],
    mounts,
    network: 'none',
    labels: { 'dev.mlship.role': 'wrap-check' },
    timeoutMs: IMAGE_TIMEOUT_MS,
    tailLines: 5,
  });
  const report = parseReport(r.stdoutTail.join('\n'));
  if (report) return { report };
  return { why: r.timedOut ? 'timed out' : `failed (${r.stderrTail.at(-1) ?? `exit code ${r.exitCode}`})` };
}
