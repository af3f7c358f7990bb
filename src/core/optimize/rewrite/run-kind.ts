// Which RUNs the rewrite understands well enough to move: chains of apt-get and
// pip installs of named packages or self-contained requirements files. Anything
// else is `other`, and no pass moves across or into it.

import { commandText, type Instruction } from '../parse.js';
import {
  aptInstallArgs,
  isAptUpdate,
  isSimpleChain,
  pipInstallArgs,
  type SimpleCommand,
  splitShell,
} from '../shell.js';

/** pip flags that take a value and do not read local files. */
const PIP_VALUE_FLAGS = new Set([
  '-i',
  '--index-url',
  '--extra-index-url',
  '--trusted-host',
  '--root-user-action',
  '--progress-bar',
  '--timeout',
  '--retries',
]);
const PIP_PLAIN_FLAGS =
  /^(--no-cache-dir|-U|--upgrade|-q+|--quiet|-v+|--prefer-binary|--no-compile|--disable-pip-version-check|--no-warn-script-location|--only-binary=.*|--no-binary=.*|--root-user-action=.*|--index-url=.*|--extra-index-url=.*|--progress-bar=.*|--compile|--break-system-packages|--upgrade-strategy=.*)$/;

export type RunKind =
  | { kind: 'independent' }
  | { kind: 'manifest'; requirements: string[] }
  | { kind: 'other' };

/** `localOk`: local paths (`.`, `./pkg`, `/src/x`) count as understood (a CUDA builder replays their COPYs). */
function classifyPip(args: string[], localOk: boolean): { ok: boolean; requirements: string[] } {
  const requirements: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-r' || a === '--requirement') {
      const f = args[++i];
      if (!f) return { ok: false, requirements };
      requirements.push(f);
    } else if (a.startsWith('--requirement=')) requirements.push(a.slice(14));
    else if (PIP_VALUE_FLAGS.has(a)) i++;
    else if (PIP_PLAIN_FLAGS.test(a)) continue;
    else if (a.startsWith('-')) return { ok: false, requirements };
    else if (a.includes('/') || a.startsWith('.') || /\.(whl|zip|tar\.gz|tgz)$/.test(a) || a.includes('@')) {
      if (!localOk || a.includes('://') || a.includes('@') || a.includes('$'))
        return { ok: false, requirements };
    }
  }
  return { ok: true, requirements };
}

function isAptCommand(c: SimpleCommand): boolean {
  if (isAptUpdate(c)) return true;
  if (aptInstallArgs(c) !== undefined) return true;
  const w = c.words;
  if (/(^|\/)apt(-get)?$/.test(w[0] ?? '') && ['clean', 'autoclean'].includes(w[1] ?? '')) return true;
  if (w[0] === 'rm' && w.slice(1).every((x) => x.startsWith('-') || x.startsWith('/var/lib/apt/lists')))
    return true;
  return false;
}

/** `DEBIAN_FRONTEND=noninteractive apt-get ...`: the command without its assignment prefix. */
export function withoutAssignments(c: SimpleCommand): SimpleCommand {
  return { words: c.words.slice(c.words.findIndex((w) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w))), op: c.op };
}

export function classifyRun(ins: Instruction, localOk = false): RunKind {
  if (ins.keyword !== 'RUN' || ins.json || ins.flags.length) return { kind: 'other' };
  const script = commandText(ins);
  if (!isSimpleChain(script)) return { kind: 'other' };
  const requirements: string[] = [];
  for (const c of splitShell(script)) {
    const cmd = withoutAssignments(c);
    if (isAptCommand(cmd)) continue;
    const pip = pipInstallArgs(cmd);
    if (pip === undefined) return { kind: 'other' };
    const p = classifyPip(pip, localOk);
    if (!p.ok) return { kind: 'other' };
    requirements.push(...p.requirements);
  }
  return requirements.length ? { kind: 'manifest', requirements } : { kind: 'independent' };
}

/** A requirements file is self-contained when it names only packages from an index. */
export function requirementsAreSelfContained(text: string): boolean {
  return text.split(/\r?\n/).every((raw) => {
    const l = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!l) return true;
    if (/^--?(i|index-url|extra-index-url|trusted-host|prefer-binary|only-binary|no-binary)\b/.test(l))
      return true;
    if (l.startsWith('-')) return false;
    return !(
      l.startsWith('.') ||
      l.startsWith('/') ||
      l.startsWith('file:') ||
      /^[a-z+]+:\/\//.test(l) ||
      l.includes(' @ ')
    );
  });
}

/** How pip is invoked (`pip`, `pip3`, `python -m pip`) when a RUN is only pip installs we understand. */
export function pipOnlyInvocation(ins: Instruction, localOk = false): string | undefined {
  if (ins.keyword !== 'RUN' || classifyRun(ins, localOk).kind === 'other') return undefined;
  const cmds = splitShell(commandText(ins)).map(withoutAssignments);
  // `uv pip install` has no --root.
  if (!cmds.every((c) => pipInstallArgs(c) !== undefined && c.words[0] !== 'uv')) return undefined;
  const w = cmds[0]!.words;
  return w.slice(0, w.indexOf('install')).join(' ');
}
