// Pass: Python where the base image has none. A build that runs pip on a CUDA,
// ubuntu or debian image without installing Python first fails; the fix is the
// one change that makes the image different on purpose (there is no working
// image to keep the same). Python comes from the OS packages, in a virtual
// environment on PATH, because newer Debian and Ubuntu refuse pip installs into
// the system Python (PEP 668). Only with apt and as root; otherwise reported.

import { type Instruction, type ParsedDockerfile, stageChain } from '../parse.js';
import { type PythonMissing, pythonMissing } from '../rules/python-missing.js';
import { allowed, type RewriteState } from './state.js';

const VENV = '/opt/venv';

function installLines(image: string): string[] {
  return [
    `# mlship: ${image} ships no Python; installed here in a virtual environment (pip refuses to install`,
    '# into the system Python of newer Debian and Ubuntu)',
    'RUN apt-get update \\',
    '    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \\',
    '    && rm -rf /var/lib/apt/lists/* \\',
    `    && python3 -m venv ${VENV}`,
    `ENV PATH=${VENV}/bin:$PATH`,
  ];
}

/** The USER in effect at `ins` in its chain of stages, when it is not root. */
function nonRootUser(df: ParsedDockerfile, ins: Instruction): Instruction | undefined {
  const last = stageChain(df, ins.stage)
    .flatMap((st) => st.instructions)
    .filter((i) => i.keyword === 'USER' && (i.stage < ins.stage || i.line < ins.line))
    .at(-1);
  const user = last?.argv[0]?.split(':')[0];
  return last && user !== 'root' && user !== '0' ? last : undefined;
}

function whyNot(s: RewriteState, m: PythonMissing): string | undefined {
  if (!m.base.apt)
    return `${m.root.resolvedImage} does not install with apt-get: install Python with its package manager`;
  const user = nonRootUser(s.df, m.ins);
  if (user) return `USER ${user.argv[0]} on line ${user.line} is in effect, and apt-get needs root`;
  return undefined;
}

export function installPython(s: RewriteState): void {
  for (const m of pythonMissing(s.df, s.options.target)) {
    if (!allowed(s, 'python-missing', m.ins)) continue;
    const image = m.root.resolvedImage ?? m.root.image;
    const why = whyNot(s, m);
    if (why) {
      s.notDone.push({
        rule: 'python-missing',
        line: m.ins.line,
        description: `${m.tool} is still missing here: ${why}`,
      });
      continue;
    }
    s.inserted.set(m.ins, [...installLines(image), ...(s.inserted.get(m.ins) ?? [])]);
    s.changes.push({
      rule: 'python-missing',
      line: m.ins.line,
      description: `python3 and python3-venv installed before it, with a virtual environment at ${VENV} on PATH (${image} ships no Python)`,
    });
  }
}
