// The two CUDA rules. cuda-twice: a CUDA image underneath a framework wheel
// that brings its own CUDA libraries, so the image carries two CUDA stacks and
// uses one. cuda-devel-runtime: a devel image in what ships. It says the final
// stage "compiles nothing" only when it can see every step; a step it cannot
// see (a cloned or downloaded source, setup.py, `pip install .`, a script, a
// requirements file outside the context) may need the compilers, so the finding
// then proposes a builder stage on the devel image rather than a switch that
// could break the build.

import { cudaImage, isCudaDevel, runtimeOf, UBUNTU_PYTHON } from '../images.js';
import {
  bundlesCuda,
  COMPILES_ON_INSTALL,
  condaInstallArgs,
  nameFromSource,
  type PipRequirement,
  usesSystemCuda,
} from '../packages.js';
import { finalStageIndex, type Instruction, lineageRoot, type Stage } from '../parse.js';
import { isPipUse, isPython, isQuiet, osInstallArgs, program, runCommands } from './commands.js';
import { indexesOf, pipRuns } from './pip-installs.js';
import { inLineage, type Rule, type RuleInput } from './rule.js';

// -- cuda-twice ---------------------------------------------------------------------

/** The Python version a CUDA image's service runs, as far as the Dockerfile tells (for the suggested slim tag). */
function pythonVersion(input: RuleInput, ubuntu: string | undefined): string | undefined {
  for (const stage of input.df.stages.filter((s) => inLineage(input, s.index))) {
    for (const ins of stage.instructions) {
      const env = ins.properties.find((p) => p.name === 'PYTHON_VERSION');
      if (ins.keyword === 'ENV' && env?.value && /^3\.\d+$/.test(env.value)) return env.value;
      for (const c of ins.keyword === 'RUN' ? runCommands(ins) : []) {
        const v = (osInstallArgs(c) ?? []).map((p) => /^python(3\.\d+)$/.exec(p)?.[1]).find(Boolean);
        if (v) return v;
      }
    }
  }
  return ubuntu ? UBUNTU_PYTHON[ubuntu] : undefined;
}

/**
 * The first RUN of what ships that pip-installs a wheel bundling CUDA, and what it
 * installs; undefined unless every install of the final image is visible and
 * none of them uses the system's CUDA (then the base's copy may be the one in use).
 */
function cudaWheel(
  input: RuleInput,
): { ins: Instruction; wheels: PipRequirement[]; indexes: string[] } | undefined {
  let hit: { ins: Instruction; wheels: PipRequirement[]; indexes: string[] } | undefined;
  for (const stage of input.df.stages.filter((s) => inLineage(input, s.index))) {
    const steps = buildSteps(input, stage, false);
    if (steps.visible.length || steps.unseen.length) return undefined;
    for (const ins of stage.instructions) {
      // conda packages (cudatoolkit, cupy, …) are not judged here: any of them may use the base's CUDA.
      if (ins.keyword === 'RUN' && runCommands(ins).some((c) => condaInstallArgs(c) !== undefined))
        return undefined;
      for (const run of pipRuns(input, stage, ins)) {
        if (run.read.some((f) => f.text === undefined) || run.buildOptions.length) return undefined;
        const indexes = indexesOf(run);
        // A wheel or a URL names its package; a local directory is a project mlship cannot see into.
        const named = [
          ...run.local.map((l) => (/\.whl$/i.test(l) ? nameFromSource(l) : undefined)),
          ...run.urls.map(nameFromSource),
        ];
        if (named.some((n) => n === undefined)) return undefined;
        const reqs = [
          ...run.requirements,
          ...run.read.flatMap((f) => f.requirements),
          ...named.map((name) => ({ raw: name!, name: name!, extras: [], spec: '' })),
        ];
        // They run on the system's CUDA, or compile against it: the base's copy is in use.
        if (reqs.some((r) => usesSystemCuda(r) || COMPILES_ON_INSTALL.has(r.name))) return undefined;
        const wheels = reqs.filter((r) => bundlesCuda(r, indexes));
        if (wheels.length && !hit) hit = { ins, wheels, indexes };
      }
    }
  }
  return hit;
}

export const cudaTwiceRule: Rule = {
  id: 'cuda-twice',
  summary: 'a CUDA base image under a framework wheel that bundles its own CUDA libraries',
  check(input, report) {
    const root = lineageRoot(input.df, input.target);
    const image = root.resolvedImage ?? '';
    const cuda = cudaImage(image);
    // The base flavour holds only the CUDA runtime API (a few MB): nothing large is doubled.
    if (!cuda || cuda.flavour === 'base') return;
    const hit = cudaWheel(input);
    if (!hit) return;
    const names = hit.wheels.map((w) => w.name + (w.extras.length ? `[${w.extras.join(',')}]` : ''));
    const py = pythonVersion(input, cuda.ubuntu);
    const index = hit.indexes.find((u) => /download\.pytorch\.org\/whl\/cu\d+/.test(u));
    report(
      hit.ins,
      `${names.join(', ')} from pip bring${names.length === 1 ? 's' : ''} ${names.length === 1 ? 'its' : 'their'} own CUDA libraries (the nvidia-* wheels, or torch/lib), and ${image} ships the CUDA ${cuda.flavour}${cuda.cudnn ? ' and cuDNN' : ''} libraries as well: the image carries two CUDA stacks, gigabytes of one that nothing loads`,
      `start from python:${py ?? '<ver>'}-slim${py ? '' : ' (the Python you use)'} and keep this pip install${index ? ` with its index (${index})` : " (PyPI's Linux wheels bring CUDA 12; another CUDA: --index-url https://download.pytorch.org/whl/cu118)"}; the GPU still works, the driver comes from the host through the NVIDIA container runtime. \`mlship optimize --layers <image>\` measures what it saves on a built image`,
    );
  },
};

// -- cuda-devel-runtime ---------------------------------------------------------------

export interface BuildStep {
  line: number;
  what: string;
}

/** ENV settings that only matter when CUDA code is compiled. */
const BUILD_ENV = /^(TORCH_CUDA_ARCH_LIST|FORCE_CUDA|TORCH_NVCC_FLAGS|CUDA_DOCKER_ARCH|MAX_JOBS)$/;
const COMPILERS = /^(nvcc|cmake|ninja|make|gcc|g\+\+|cc|c\+\+|clang|clang\+\+|cargo|bazel)$/;

export interface BuildSteps {
  /** Steps that build, with the line and what builds. */
  visible: BuildStep[];
  /** Steps that may build out of sight: a script, a requirements file outside the context. */
  unseen: BuildStep[];
}

/** A pip install's build steps: local sources, VCS URLs, build options, packages that compile. */
function pipBuilds(input: RuleInput, stage: Stage, ins: Instruction, out: BuildSteps) {
  for (const run of pipRuns(input, stage, ins)) {
    const at = (what: string) => out.visible.push({ line: ins.line, what });
    // A wheel is built already; a directory or an sdist is built by this install.
    const sources = run.local.filter((l) => !/\.whl$/i.test(l));
    if (sources.length)
      at(`pip install ${run.editable ? '-e ' : ''}${sources.join(' ')} builds a local project`);
    if (run.urls.length) at(`pip install ${run.urls[0]} builds from a source URL`);
    if (run.buildOptions.length) at(`pip install with build options (${run.buildOptions.join(' ')})`);
    const reqs = [...run.requirements, ...run.read.flatMap((f) => f.requirements)];
    const compiling = reqs.filter((r) => COMPILES_ON_INSTALL.has(r.name));
    if (compiling.length)
      at(
        `${compiling.map((r) => r.name).join(', ')} compile${compiling.length === 1 ? 's' : ''} when installed`,
      );
    for (const f of run.read) {
      if (f.text === undefined)
        out.unseen.push({ line: ins.line, what: `${f.file} is not in the build context mlship reads` });
      else if (
        f.other.some((l) => !/^(-i|--index-url|--extra-index-url|-f|--find-links|--trusted-host)\b/.test(l))
      )
        at(`${f.file} installs local or VCS sources`);
    }
  }
}

/** What the commands of one RUN build, or may build out of sight. */
function runBuilds(ins: Instruction, out: BuildSteps) {
  for (const c of runCommands(ins)) {
    const p = program(c);
    const words = c.words.join(' ');
    if (COMPILERS.test(p.name)) out.visible.push({ line: ins.line, what: `${p.name} compiles` });
    else if (isPython(p.name) && p.args.some((a) => /setup\.py$/.test(a)))
      out.visible.push({ line: ins.line, what: 'setup.py builds' });
    else if (/\bbuild_ext\b|TORCH_CUDA_ARCH_LIST/.test(words))
      out.visible.push({ line: ins.line, what: 'a CUDA extension build' });
    else if (
      isPipUse(c) ||
      osInstallArgs(c) ||
      isQuiet(c) ||
      /^(conda|mamba|micromamba)$/.test(p.name) ||
      (isPython(p.name) && p.args[0] === '-m' && /^(venv|ensurepip|compileall)$/.test(p.args[1] ?? ''))
    )
      continue;
    else
      out.unseen.push({
        line: ins.line,
        what: `\`${c.words.slice(0, 3).join(' ')}\` runs code mlship cannot see`,
      });
  }
}

/**
 * A stage's build steps: those it can see, and those it cannot. `pip: false`
 * leaves out what pip installs build (the caller judges the packages itself).
 */
export function buildSteps(input: RuleInput, stage: Stage, pip = true): BuildSteps {
  const out: BuildSteps = { visible: [], unseen: [] };
  for (const ins of stage.instructions) {
    if (ins.keyword === 'ENV' || ins.keyword === 'ARG') {
      const p = ins.properties.find((x) => BUILD_ENV.test(x.name));
      if (p)
        out.visible.push({
          line: ins.line,
          what: `${ins.keyword} ${p.name} is a setting for compiling CUDA code`,
        });
    } else if (ins.keyword === 'RUN') {
      runBuilds(ins, out);
      if (pip) pipBuilds(input, stage, ins, out);
    }
  }
  return out;
}

function runtimeText(image: string): string {
  const r = runtimeOf(image);
  return r ? `the matching runtime image (${r})` : 'a runtime (non-devel) image of the same CUDA version';
}

export const cudaDevelRuntimeRule: Rule = {
  id: 'cuda-devel-runtime',
  summary: 'a CUDA devel image (compilers and headers) in the final stage',
  check(input, report) {
    const stage = input.df.stages[finalStageIndex(input.df, input.target)]!;
    const image = stage.resolvedImage ?? stage.image;
    if (!isCudaDevel(image)) return;
    const { visible, unseen } = buildSteps(input, stage);
    const split = `build in a stage on ${image} that makes a wheel (\`pip wheel --no-deps -w /wheels …\`) or the compiled files, and copy them into a final stage on ${runtimeText(image)}; \`mlship optimize --write\` does the split when the final image keeps the same files`;
    if (visible.length) {
      const v = visible[0]!;
      report(
        stage.from,
        `the final stage runs on ${image} and builds with it (line ${v.line}: ${v.what}${visible.length > 1 ? `, and ${visible.length - 1} more` : ''}); running needs only the runtime libraries, yet the compilers and headers (several GB) ship with the service`,
        split,
      );
    } else if (unseen.length) {
      const u = unseen[0]!;
      report(
        stage.from,
        `the final stage runs on ${image}; nothing in it visibly compiles CUDA code, but line ${u.line} may (${u.what}), and then the build needs the devel image`,
        `if nothing compiles, use ${runtimeText(image)}; if something does, ${split}`,
      );
    } else {
      report(
        stage.from,
        `the final stage runs on ${image}, but nothing in it compiles CUDA code: the devel image adds several GB of compilers and headers`,
        `use ${runtimeText(image)}; should a pip install then stop for want of a compiler, that package has no wheel for this platform: build it in a stage on the devel image`,
      );
    }
  },
};
