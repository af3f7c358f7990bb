// Pass: build tools leave the final image. When the final stage installs only
// toolchain packages and uses them only in compile commands whose outputs are
// named (`-o out`), the install and the compiles move to a builder stage and the
// outputs are copied back where they were made. With --slim-base the final stage
// moves to the slim variant of its full base, and the builder, on the full base,
// also runs the pip install (into a root copied over). Anything else is reported.

import { resolveIn, workdirAt } from '../copies.js';
import { parsePipInstall } from '../packages.js';
import { commandText, type Instruction } from '../parse.js';
import { toolchainPackages } from '../rules.js';
import { pipInstallArgs, splitShell } from '../shell.js';
import { BUILDER, type BuilderPlan, DEPS, planFinalStage } from './builder-plan.js';
import type { Rebase } from './rebase.js';
import { classifyRun } from './run-kind.js';
import { blockOf, type RewriteState, setBody } from './state.js';

/** Where the builder's pip install puts its files (`pip install --root`), copied to / in the final stage. */
const PIP_ROOT = '/mlship-root';
/**
 * Lists shared objects with a dependency the image lacks (run with `sh -c`). `_tkinter` is left
 * out: the official python -slim images ship it without Tk on purpose (their own check skips it).
 */
export const LDD_CHECK =
  "find / -xdev \\( -name '*.so' -o -name '*.so.*' \\) -type f -not -path '*.libs/*' -not -name '_tkinter*' -exec ldd {} + 2>/dev/null | grep 'not found'";

type Plan = Extract<BuilderPlan, { ok: true }>;

/**
 * The pip install as the builder runs it: into PIP_ROOT (`pip install --root`
 * keeps the paths of a plain install, so the final stage gets the same files with
 * `COPY --from … / /`), stopping the build if pip replaced a package of the base
 * image, which the final stage would then hold in two versions.
 */
function pipInBuilder(invocation: string, body: string[], copies: string[], why: string): string[] {
  const text = body
    .join('\n')
    .replace(/(\bpip[0-9.]*\s+install)/g, `$1 --root ${PIP_ROOT}`)
    .replace(
      /^(\s*RUN\s+)/i,
      `$1mkdir -p ${PIP_ROOT} && ${invocation} freeze --all > /tmp/mlship-pip-before.txt \\\n    && `,
    );
  return [
    ...copies,
    `# mlship ${why} installed under ${PIP_ROOT}, copied into the final stage; the build stops here`,
    '# if pip replaced a package of the base image (the final stage would keep both versions).',
    ...`${text} \\\n    && ${invocation} freeze --all | diff /tmp/mlship-pip-before.txt -`.split('\n'),
  ];
}

/**
 * Writes the builder stage(s) and what replaces the moved RUNs in the final stage.
 * When the compiles come after the pip install, the install gets a stage of its own
 * (mlship-deps) and the compiles run on top of it (mlship-build: the same files as one
 * stage). The final stage copies the packages from mlship-deps, which a source change
 * leaves alone, so the cache key of that copy needs no checksum of the whole tree.
 */
function writeBuilder(s: RewriteState, plan: Plan, rebase: Rebase | undefined): void {
  const body = (i: Instruction) => blockOf(s, i).body;
  const final = s.finalStage;
  const pipAt = plan.pip ? plan.builderInstructions.indexOf(plan.pip.ins) : -1;
  const split = pipAt >= 0 && pipAt < plan.builderInstructions.length - 1;
  const pipStage = split ? DEPS : BUILDER;
  if (plan.tools || plan.pip || plan.compiles.length) {
    const flags = final.from.flags.map((f) => `--${f.name}${f.value === null ? '' : `=${f.value}`}`);
    const lines = [['FROM', ...flags, final.image, 'AS', pipStage].join(' ')];
    plan.builderInstructions.forEach((i, n) => {
      if (i === plan.pip?.ins)
        lines.push(
          ...pipInBuilder(
            plan.pip.invocation,
            body(i),
            s.inserted.get(i) ?? [],
            rebase?.kind === 'cuda' ? '(cuda-devel-runtime): built on the devel image,' : '--slim-base:',
          ),
        );
      else lines.push(...body(i));
      if (split && n === pipAt) lines.push('', `FROM ${DEPS} AS ${BUILDER}`);
    });
    s.builder = { stage: final.index, lines: [...lines, ''] };
  }
  for (const c of plan.compiles) s.replaced.set(c, []);
  if (plan.compiles.length)
    s.replaced.set(
      plan.compiles.at(-1)!,
      plan.outputs.map((o) => `COPY --from=${BUILDER} ${o} ${o}`),
    );
  if (plan.pip) {
    // The requirements file still reaches the final stage with the source COPY. A local
    // project is built in place (build/, *.egg-info next to its sources): its directory
    // comes back from the builder too, so the final image has what a plain install left.
    const dirs = rebase?.kind === 'cuda' ? localDirs(s, plan.pip.ins) : [];
    s.replaced.set(plan.pip.ins, [
      `COPY --from=${pipStage} ${PIP_ROOT}/ /`,
      ...dirs.map((d) => `COPY --from=${pipStage} ${d} ${d}`),
    ]);
    s.inserted.delete(plan.pip.ins);
  }
  if (plan.tools) {
    s.replaced.set(plan.tools, []);
    s.changes.push({
      rule: 'build-tools-in-final',
      line: plan.tools.line,
      description: `${plan.packages.join(', ')}${compiledText(plan) ? ` and ${compiledText(plan)}` : ''} moved to a builder stage${plan.outputs.length ? `; ${plan.outputs.join(', ')} copied from it` : ''}${plan.pip ? '' : ' (if a pip install later needs a compiler, the build now fails loudly)'}`,
    });
  }
}

/** The local directories a pip install builds (`pip install ./ext`), as absolute paths. */
function localDirs(s: RewriteState, ins: Instruction): string[] {
  const workdir = workdirAt(s.finalStage, ins.line);
  return splitShell(commandText(ins))
    .flatMap((c) => parsePipInstall(pipInstallArgs(c) ?? []).local)
    .filter((l) => !/\.(whl|zip|tar\.gz|tgz)$/i.test(l))
    .map((l) => resolveIn(workdir, l));
}

function compiledText(plan: Plan): string {
  return plan.compiles.length
    ? `the compile on line${plan.compiles.length > 1 ? 's' : ''} ${plan.compiles.map((c) => c.line).join(', ')}`
    : '';
}

/** The checks after a CUDA rebase: libraries the runtime image lacks, and compiling at run time. */
function cudaChecks(s: RewriteState, r: Rebase): void {
  s.checks.push(
    `the final image now runs on ${r.to}, without the CUDA compiler, headers and static libraries of ${r.image}. ` +
      `An extension built in the builder may link against a library only the devel image has: docker run --rm --entrypoint sh <image> -c "${LDD_CHECK}" lists them (no output is good). ` +
      'Code that compiles CUDA at run time (torch.utils.cpp_extension.load, CuPy or Numba kernels built with nvcc) needs the devel image: if the service does that, keep it (`# mlship-ignore: cuda-devel-runtime`).',
  );
}

/** The checks after a move to a slim base: libraries the slim image lacks, and RUNs that now run on it. */
function slimChecks(s: RewriteState, r: Rebase, plan: Plan): void {
  s.checks.push(
    `the final image now runs on ${r.to}, which lacks the compilers, -dev headers and tools of ${r.image}. ` +
      'A package built from source in the builder may link against a library whose runtime .so only the full image has. ' +
      `List what does not resolve: docker run --rm --entrypoint sh <image> -c "${LDD_CHECK}" ` +
      '(no output is good; the libraries wheels bundle in <package>.libs are left out: they find each other at run time, which ldd alone does not show); ' +
      'install the runtime package for each (e.g. libpq5 for libpq-dev) in the final stage' +
      `${plan.pip ? ', then run `pip check` and import your packages in the new image' : ''}.`,
  );
  const unknown = plan.staying.filter((i) => classifyRun(i).kind === 'other');
  if (unknown.length)
    s.checks.push(
      `line${unknown.length > 1 ? 's' : ''} ${unknown.map((i) => i.line).join(', ')} stay${unknown.length > 1 ? '' : 's'} in the final stage and now run${unknown.length > 1 ? '' : 's'} on ${r.to}: ` +
        `a command that needs a compiler or a tool only ${r.image} has fails there, or quietly takes its fallback (optional native modules, pure-Python fallbacks of C extensions)`,
    );
}

/** The final stage's FROM becomes the new tag; what to check by hand goes to `checks`. */
function rebaseFinal(s: RewriteState, r: Rebase, plan: Plan): void {
  const final = s.finalStage;
  const from = blockOf(s, final.from).body.join('\n');
  const image = new RegExp(`(^|\\s)${final.image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=\\s|$)`);
  setBody(s, final.from, from.replace(image, `$1${r.to}`));
  const compiled = compiledText(plan);
  const moved = [
    plan.pip &&
      `the pip install on line ${plan.pip.ins.line} (with --root ${PIP_ROOT}, copied into the final stage)`,
    compiled && `${compiled} (${plan.outputs.join(', ')} copied)`,
  ].filter(Boolean);
  s.changes.push({
    rule: r.rule,
    line: final.from.line,
    description: `final stage rebased from ${r.image} onto ${r.to}${moved.length ? `; in a builder stage on ${r.image}: ${moved.join(', ')}` : ''}`,
  });
  if (r.kind === 'cuda') cudaChecks(s, r);
  else slimChecks(s, r, plan);
}

/** Toolchain installs that stay in what ships, each with the reason. */
function reportToolchainsLeft(s: RewriteState, plan: BuilderPlan): void {
  for (const stage of s.df.stages) {
    if (!s.lineage.has(stage.index)) continue;
    for (const ins of stage.instructions) {
      const tools = toolchainPackages(ins);
      if (tools.length && !s.removed.has(ins) && !(plan.ok && plan.tools === ins)) {
        s.notDone.push({
          rule: 'build-tools-in-final',
          line: ins.line,
          description: `${tools.join(', ')} stay: ${plan.ok ? 'a second toolchain install' : plan.reason}; move the build into a \`FROM … AS build\` stage and COPY --from=build its outputs`,
        });
      }
    }
  }
}

/** The pass. `rebase`: the base the final stage moves to, chosen before hoisting (`slimBaseOf`, `cudaRebaseOf`). */
export function moveToBuilder(s: RewriteState, rebase: Rebase | undefined): void {
  const { plan, rebaseReason } = planFinalStage(s, rebase);
  if (rebase && rebaseReason)
    s.notDone.push({
      rule: rebase.rule,
      line: s.finalStage.from.line,
      description:
        rebase.kind === 'cuda'
          ? `FROM ${rebase.image} kept, no builder stage made: ${rebaseReason}; do the split by hand (the lint's fix says how)`
          : `FROM ${rebase.image} kept: ${rebaseReason}`,
    });
  if (plan.ok) {
    writeBuilder(s, plan, rebase);
    if (rebase && !rebaseReason) rebaseFinal(s, rebase, plan);
  }
  reportToolchainsLeft(s, plan);
}
