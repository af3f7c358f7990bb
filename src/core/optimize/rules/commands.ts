// What the ML rules read out of RUN, CMD and ENTRYPOINT: the simple commands of
// any form (shell form, exec form, `sh -c "…"`), which of them run Python or
// pip, which install OS packages, and which are plain housekeeping that cannot
// install or build anything. Anything outside that list is code mlship cannot
// see, and the rules say so instead of guessing.

import { commandsOf } from '../packages.js';
import { commandText, finalLineage, type Instruction, type ParsedDockerfile } from '../parse.js';
import type { SimpleCommand } from '../shell.js';

/** The simple commands an instruction runs (RUN, CMD, ENTRYPOINT; exec form and `sh -c` included). */
export function runCommands(ins: Instruction): SimpleCommand[] {
  if (ins.json) {
    const [first, flag, script] = ins.json;
    if (/(^|\/)(ba|da|z)?sh$/.test(first ?? '') && flag === '-c' && script !== undefined)
      return commandsOf(script);
    return [{ words: ins.json, op: '' }];
  }
  return commandsOf(commandText(ins));
}

/** The command word with `exec`, `sudo`, `env`, `nohup` and their options peeled off. */
export function program(c: SimpleCommand): { name: string; args: string[] } {
  let w = c.words;
  while (w.length && ['exec', 'sudo', 'env', 'nohup', 'time'].includes(w[0]!)) {
    w = w.slice(1);
    while (w.length && (w[0]!.startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*=/.test(w[0]!))) w = w.slice(1);
  }
  const first = w[0] ?? '';
  return { name: first.slice(first.lastIndexOf('/') + 1), args: w.slice(1) };
}

export function isPython(name: string): boolean {
  return /^python[0-9.]*$/.test(name);
}

/** `pip …`, `pip3 …`, `python -m pip …`. */
export function isPipUse(c: SimpleCommand): boolean {
  const p = program(c);
  return /^pip[0-9.]*$/.test(p.name) || (isPython(p.name) && p.args[0] === '-m' && p.args[1] === 'pip');
}

/** Packages an OS package manager installs (apt-get, apt, apk, yum, dnf, microdnf), or undefined. */
export function osInstallArgs(c: SimpleCommand): string[] | undefined {
  const p = program(c);
  const verbs: Record<string, string[]> = {
    'apt-get': ['install'],
    apt: ['install'],
    apk: ['add'],
    yum: ['install'],
    dnf: ['install'],
    microdnf: ['install'],
  };
  const verb = p.args.find((a) => !a.startsWith('-'));
  if (!verbs[p.name]?.includes(verb ?? '')) return undefined;
  const after = p.args.slice(p.args.indexOf(verb!) + 1);
  return after.filter((a) => !a.startsWith('-') && !a.includes('='));
}

/**
 * Commands that neither install nor build anything a rule cares about: file
 * housekeeping, users, downloads that are not run, package-manager bookkeeping.
 */
const QUIET = new Set([
  'apt-get',
  'apt',
  'apk',
  'yum',
  'dnf',
  'microdnf',
  'rm',
  'mkdir',
  'ln',
  'cp',
  'mv',
  'chmod',
  'chown',
  'chgrp',
  'echo',
  'printf',
  'touch',
  'useradd',
  'adduser',
  'groupadd',
  'addgroup',
  'usermod',
  'cd',
  'export',
  'ldconfig',
  'sed',
  'tar',
  'unzip',
  'gzip',
  'gunzip',
  'wget',
  'curl',
  'git',
  'apt-key',
  'add-apt-repository',
  'apt-add-repository',
  'true',
  'set',
  'locale-gen',
  'localedef',
  'update-locale',
  'dpkg-reconfigure',
  'update-ca-certificates',
  'find',
  'cat',
  'grep',
  'tee',
  'test',
  '[',
  'sleep',
  'ls',
  'which',
  'id',
  'umask',
  'gpg',
  'tr',
  'head',
  'tail',
  'lscpu',
  'nvidia-smi',
  'update-alternatives',
]);

/** A command that installs nothing and builds nothing (apt/apk installs are judged by the caller). */
export function isQuiet(c: SimpleCommand): boolean {
  return QUIET.has(program(c).name);
}

/** The command the final image runs: its ENTRYPOINT and CMD instructions, last of each in the lineage. */
export function finalCommand(df: ParsedDockerfile, target: string | undefined): Instruction[] {
  const lineage = [...finalLineage(df, target)].sort((a, b) => a - b);
  const all = lineage.flatMap((i) => df.stages[i]!.instructions);
  const entry = all.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
  const cmd = all.filter((i) => i.keyword === 'CMD').at(-1);
  return [entry, cmd].filter((i): i is Instruction => i !== undefined);
}

/**
 * What the container runs, as commands with the instruction to report them on:
 * an exec-form ENTRYPOINT takes an exec-form CMD as its arguments (one command),
 * a shell-form ENTRYPOINT ignores CMD, and otherwise each stands alone.
 */
export function containerCommands(
  df: ParsedDockerfile,
  target: string | undefined,
): { ins: Instruction; commands: SimpleCommand[] }[] {
  const [first, second] = finalCommand(df, target);
  const entry = first?.keyword === 'ENTRYPOINT' ? first : undefined;
  const cmd = entry ? second : first;
  if (entry?.json && cmd?.json)
    return [{ ins: cmd, commands: [{ words: [...entry.json, ...cmd.json], op: '' }] }];
  if (entry && !entry.json) return [{ ins: entry, commands: runCommands(entry) }];
  return [entry, cmd]
    .filter((i): i is Instruction => i !== undefined)
    .map((ins) => ({ ins, commands: runCommands(ins) }));
}
