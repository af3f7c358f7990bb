// What can move to a builder stage, decided before anything moves: the hoisting
// pass needs to know which compiles will leave the final stage, and the
// builder-stage pass applies the plan. A plan is either complete and safe, or a
// reason, which the report gives in full.

import { resolveIn, workdirAt } from '../copies.js';
import { commandText, type Instruction, type Stage } from '../parse.js';
import { toolchainPackages } from '../rules.js';
import { aptInstallArgs, isSimpleChain, packagesOf, splitShell } from '../shell.js';
import type { Rebase } from './rebase.js';
import { classifyRun, pipOnlyInvocation } from './run-kind.js';
import { allowed, liveOrder, type RewriteState } from './state.js';

export const BUILDER = 'mlship-build';
/** The builder's pip install, when compiles follow it (mlship-build then builds on it). */
export const DEPS = 'mlship-deps';
const COMPILERS = /^(gcc|cc|g\+\+|c\+\+|clang|clang\+\+)(-\d+)?$/;
/** Settings that decide where pip installs, which `--root` would compose with in ways we cannot check. */
const PIP_LOCATION = /^PIP_(TARGET|PREFIX|ROOT|USER)$/;

export type BuilderPlan =
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

type Failed = { ok: false; reason: string };
const fail = (reason: string): Failed => ({ ok: false, reason });

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

/** The one toolchain install that may move, with its packages, or why none can. */
function planTools(
  s: RewriteState,
  list: Instruction[],
  slim: boolean,
): { tools: Instruction | undefined; packages: string[] } | Failed {
  const installs = list.filter((i) => toolchainPackages(i).length > 0);
  if (!installs.length && !slim) return fail('no toolchain install');
  if (installs.length > 1) return fail('toolchains are installed in more than one RUN');
  const tools = installs[0];
  if (!tools) return { tools, packages: [] };
  if (!allowed(s, 'build-tools-in-final', tools)) return fail('silenced');
  if (classifyRun(tools).kind !== 'independent') return fail('the install RUN does more than apt-get');
  const installed = splitShell(commandText(tools)).flatMap((c) => packagesOf(aptInstallArgs(c) ?? []));
  const packages = toolchainPackages(tools);
  if (installed.length !== packages.length) {
    return fail(
      `the same RUN installs runtime packages too (${installed.filter((p) => !packages.includes(p)).join(', ')})`,
    );
  }
  return { tools, packages };
}

/** With a rebase: the one pip install that moves to the builder, or why it cannot (a CUDA one may build local sources). */
function planPip(
  list: Instruction[],
  rebase: Rebase | undefined,
): { pipIns: Instruction | undefined } | Failed {
  const local = rebase?.kind === 'cuda';
  const pips = rebase ? list.filter((i) => pipOnlyInvocation(i, local) !== undefined) : [];
  if (pips.length > 1) {
    return fail(
      `pip installs in ${pips.length} RUNs (lines ${pips.map((p) => p.line).join(', ')}): installed apart, each would miss what the one before installed; merge them into one RUN`,
    );
  }
  const pipIns = pips[0];
  if (pipIns) {
    const env = list.find((i) => i.keyword === 'ENV' && i.properties.some((p) => PIP_LOCATION.test(p.name)));
    if (env || /\bPIP_(TARGET|PREFIX|ROOT|USER)=/.test(commandText(pipIns)))
      return fail(
        `${env ? `ENV on line ${env.line}` : `line ${pipIns.line}`} sets where pip installs (PIP_TARGET/PREFIX/ROOT/USER)`,
      );
  }
  return { pipIns };
}

/** The compiles with named outputs among the RUNs that may use the tools; the other RUNs (slim only). */
function planCompiles(
  stage: Stage,
  list: Instruction[],
  slim: boolean,
  after: { tools: Instruction | undefined; pipIns: Instruction | undefined },
): { compiles: Instruction[]; outputs: string[]; others: Instruction[] } | Failed {
  const compiles: Instruction[] = [];
  const outputs: string[] = [];
  const others: Instruction[] = [];
  const at = after.tools ? list.indexOf(after.tools) : -1;
  for (const ins of slim ? list : list.slice(at + 1)) {
    if (ins.keyword !== 'RUN' || ins === after.pipIns || ins === after.tools) continue;
    const outs = compileOutputs(ins, workdirAt(stage, ins.line));
    if (outs) {
      compiles.push(ins);
      outputs.push(...outs);
    } else if (slim) others.push(ins);
    else if (classifyRun(ins).kind === 'other') {
      return fail(`line ${ins.line} may use the tools and its outputs are not known`);
    }
  }
  if (!slim && !compiles.length)
    return fail('nothing visibly uses them (a pip install may compile with them)');
  return { compiles, outputs, others };
}

/**
 * With a slim base, a RUN before the last moved one may prepare what it sees. An
 * apt install is replayed in the builder (and stays in the final stage); what
 * anything else does cannot be known, so nothing is moved.
 */
function planStaying(
  list: Instruction[],
  others: Instruction[],
  last: number,
): { replays: Instruction[]; staying: Instruction[] } | Failed {
  const replays: Instruction[] = [];
  const staying: Instruction[] = [];
  for (const ins of others) {
    if (list.indexOf(ins) > last) staying.push(ins);
    else if (classifyRun(ins).kind === 'independent') {
      replays.push(ins);
      staying.push(ins);
    } else
      return fail(
        `line ${ins.line} runs before line ${list[last]!.line} (which moves to the builder) and may change what it sees; what it does cannot be known`,
      );
  }
  return { replays, staying };
}

/**
 * What moves to the builder stage. Without a slim base: a toolchain install and
 * the compiles after it (the builder starts from the same image). With one
 * (`--slim-base`): the builder starts from the full image, so it already has the
 * toolchain; the compiles and the one pip install move to it, and the final
 * stage gets their results.
 */
export function planBuilder(s: RewriteState, list: Instruction[], rebase: Rebase | undefined): BuilderPlan {
  const stage = s.finalStage;
  const slim = rebase !== undefined;
  const tools = planTools(s, list, slim);
  if ('ok' in tools) return tools;
  const taken = s.df.stages.find((x) => x.name === BUILDER || x.name === DEPS);
  if (taken) return fail(`a stage is already named ${taken.name}`);
  const pip = planPip(list, rebase);
  if ('ok' in pip) return pip;
  const runs = planCompiles(stage, list, slim, { tools: tools.tools, pipIns: pip.pipIns });
  if ('ok' in runs) return runs;
  const moved = [tools.tools, pip.pipIns, ...runs.compiles].filter((i): i is Instruction => i !== undefined);
  const last = Math.max(-1, ...moved.map((i) => list.indexOf(i)));
  const stay = planStaying(list, runs.others, last);
  if ('ok' in stay) return stay;
  const user = list.filter((i) => i.keyword === 'USER').find((u) => list.indexOf(u) < last);
  if (user) return fail(`USER on line ${user.line} would change who owns the build outputs`);
  // A CUDA rebase leaves the compilers behind: every RUN that builds must move.
  const stuck = rebase?.builds.find((line) =>
    list.some((i) => i.line === line && i.keyword === 'RUN' && !moved.includes(i)),
  );
  if (stuck)
    return fail(
      `line ${stuck} builds and cannot move to the builder (only one pip install of index packages and local sources, and compiles with named outputs, can)`,
    );
  // The builder repeats what the moved RUNs can see: the base, WORKDIR/ENV/ARG/SHELL,
  // the files copied in, the replayed apt installs, and the moved RUNs themselves.
  const builderInstructions = list
    .slice(0, last + 1)
    .filter(
      (i) =>
        ['WORKDIR', 'ENV', 'ARG', 'SHELL', 'COPY', 'ADD'].includes(i.keyword) ||
        moved.includes(i) ||
        stay.replays.includes(i),
    );
  return {
    ok: true,
    tools: tools.tools,
    packages: tools.packages,
    compiles: runs.compiles,
    outputs: runs.outputs,
    pip: pip.pipIns
      ? { ins: pip.pipIns, invocation: pipOnlyInvocation(pip.pipIns, rebase?.kind === 'cuda')! }
      : undefined,
    replays: stay.replays,
    staying: stay.staying,
    builderInstructions,
  };
}

/**
 * The plan for the final stage as it stands now: with a rebase (--slim-base, or a
 * CUDA devel stage that builds) that builder is tried first and, when it cannot be
 * done, the plain one (and why the rebase could not).
 */
export function planFinalStage(
  s: RewriteState,
  rebase: Rebase | undefined,
): { plan: BuilderPlan; rebaseReason?: string } {
  const list = liveOrder(s, s.finalStage.index);
  const rebased = rebase ? planBuilder(s, list, rebase) : undefined;
  if (rebased?.ok) return { plan: rebased };
  const plain = planBuilder(s, list, undefined);
  return rebased ? { plan: plain, rebaseReason: rebased.reason } : { plan: plain };
}
