// python-missing: pip or python used on a base image that ships neither
// (NVIDIA's CUDA images, ubuntu, debian, alpine) with nothing before it that
// installs them. The build fails (`pip: not found`), so it is an error, not a
// cost. The rule only claims what it can see: anything before the use that may
// bring Python (an OS package that depends on it, a script, a COPY --from, a
// conda installer) makes it stay silent.

import { type PythonLessBase, pythonLessBase } from '../images.js';
import { finalStageIndex, type Instruction, type ParsedDockerfile, type Stage } from '../parse.js';
import type { SimpleCommand } from '../shell.js';
import {
  containerCommands,
  isPipUse,
  isPython,
  isQuiet,
  osInstallArgs,
  program,
  runCommands,
} from './commands.js';
import type { Rule } from './rule.js';

type State = 'absent' | 'present' | 'unknown';

interface Track {
  python: State;
  pip: State;
}

export interface PythonMissing {
  /** The instruction that uses pip or python first. */
  ins: Instruction;
  /** `pip` or `python`: what is missing there. */
  tool: 'pip' | 'python';
  /** The stage whose image ships no Python, and what the image is. */
  root: Stage;
  base: PythonLessBase;
}

const MENTIONS_PYTHON = /python|pip|conda|mamba|miniforge|anaconda|pyenv|(^|\/)uv$/i;

/** What one OS install does to the tracked state: Python packages bring it, others may pull python3 in. */
function afterOsInstall(t: Track, packages: string[]): void {
  const pythonish = packages.filter((p) => /^(python|pypy|pip)|pip/.test(p));
  if (pythonish.length) {
    t.python = 'present';
    t.pip = pythonish.some((p) => /pip/.test(p)) ? 'present' : t.pip === 'absent' ? 'unknown' : t.pip;
  } else if (packages.length && t.python === 'absent') t.python = 'unknown';
}

/** Walks one command; returns what it uses when that tool is still absent. */
function step(t: Track, c: SimpleCommand): 'pip' | 'python' | undefined {
  const p = program(c);
  if (isPipUse(c)) return t.pip === 'absent' ? 'pip' : undefined;
  if (isPython(p.name)) {
    if (t.python === 'absent') return 'python';
    // A script run with Python may install pip (get-pip.py, ensurepip).
    if (t.pip === 'absent') t.pip = 'unknown';
    return undefined;
  }
  const os = osInstallArgs(c);
  if (os) afterOsInstall(t, os);
  else if (!isQuiet(c) || c.words.some((w) => MENTIONS_PYTHON.test(w))) {
    t.python = 'unknown';
    t.pip = 'unknown';
  }
  return undefined;
}

/** The first use of a tool the image does not have, in one stage; the state is updated as it goes. */
function firstUse(stage: Stage, t: Track): { ins: Instruction; tool: 'pip' | 'python' } | undefined {
  for (const ins of stage.instructions) {
    if (t.python !== 'absent' && t.pip !== 'absent') return undefined;
    const k = ins.keyword;
    if (k === 'SHELL' || (k === 'COPY' && ins.flags.some((f) => f.name === 'from')) || k === 'ADD') {
      if (k !== 'ADD' || ins.argv.some((a) => /^(https?|git):\/\//.test(a))) {
        t.python = 'unknown';
        t.pip = 'unknown';
      }
      continue;
    }
    if (k !== 'RUN') continue;
    for (const c of runCommands(ins)) {
      const tool = step(t, c);
      if (tool) return { ins, tool };
    }
  }
  return undefined;
}

/** The stage each stage is built FROM, when it is a stage of this Dockerfile. */
function parentOf(df: ParsedDockerfile, stage: Stage): Stage | undefined {
  const image = stage.image.toLowerCase();
  return df.stages.find((s) => s.index < stage.index && s.name === image);
}

/** Every use of pip or python the build or the container would fail on (one per chain of stages). */
export function pythonMissing(df: ParsedDockerfile, target: string | undefined): PythonMissing[] {
  const out: PythonMissing[] = [];
  const after = new Map<number, { t: Track; root: Stage; base: PythonLessBase } | undefined>();
  for (const stage of df.stages) {
    const parent = parentOf(df, stage);
    const inherited = parent ? after.get(parent.index) : undefined;
    const base = parent ? inherited?.base : pythonLessBase(stage.resolvedImage ?? '');
    if (!base) {
      after.set(stage.index, undefined);
      continue;
    }
    const t: Track = inherited ? { ...inherited.t } : { python: 'absent', pip: 'absent' };
    const root = inherited?.root ?? stage;
    const use = firstUse(stage, t);
    if (use) {
      out.push({ ...use, root, base });
      t.python = 'unknown';
      t.pip = 'unknown';
    }
    after.set(stage.index, { t, root, base });
  }
  // The container's own command, when nothing in the build used Python before it.
  const final = after.get(finalStageIndex(df, target));
  const run = containerCommands(df, target)[0];
  const first = run?.commands[0];
  if (final && run && first && isPython(program(first).name) && final.t.python === 'absent')
    out.push({ ins: run.ins, tool: 'python', root: final.root, base: final.base });
  return out;
}

function fixFor(base: PythonLessBase, image: string): string {
  if (base.apt)
    return (
      'install Python before it: `RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ' +
      '&& rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/venv` and `ENV PATH=/opt/venv/bin:$PATH` ' +
      `(pip refuses to install into the system Python of newer Debian and Ubuntu), or start from python:<ver>-slim instead of ${image}; ` +
      '`mlship optimize --write` adds the install'
    );
  if (base.family === 'alpine')
    return `install Python before it (\`RUN apk add --no-cache python3 && python3 -m venv /opt/venv\`, \`ENV PATH=/opt/venv/bin:$PATH\`), or start from python:<ver>-alpine instead of ${image}`;
  return `install python3 and python3-pip with the image's package manager before it, or start from python:<ver>-slim instead of ${image}`;
}

export const pythonMissingRule: Rule = {
  id: 'python-missing',
  summary: 'pip or python used on a base image that ships neither (CUDA, ubuntu, debian, alpine)',
  check(input, report) {
    for (const m of pythonMissing(input.df, input.target)) {
      const image = m.root.resolvedImage ?? m.root.image;
      const when = m.ins.keyword === 'RUN' ? 'the build fails here' : 'the container fails to start';
      report(
        m.ins,
        `${m.tool} is not installed: ${image} ships neither Python nor pip, and nothing before this line installs ${m.tool === 'pip' ? 'pip' : 'Python'}, so ${when} (\`${m.tool}: not found\`)`,
        fixFor(m.base, image),
        'error',
      );
    }
  },
};
