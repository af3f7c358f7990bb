// The reproducibility rules: what makes two builds of the same commit differ.
// unpinned-install: pip, npm and conda installs of packages without a version
// where no lock or constraints file pins them. unpinned-source: code fetched at
// build time without a commit or checksum (git clone of a branch, pip install of
// a VCS URL without a commit, a script or archive downloaded from an unversioned
// URL). apt packages are left out on purpose: pinning their versions breaks
// builds as soon as the distribution drops the old version from its mirror.

import { condaInstallArgs, npmInstallArgs, npmSpec } from '../packages.js';
import type { Instruction, Stage } from '../parse.js';
import type { SimpleCommand } from '../shell.js';
import { program, runCommands } from './commands.js';
import { pipRuns } from './pip-installs.js';
import type { Rule, RuleInput } from './rule.js';

/** Build tooling whose upgrade is a convention, not a dependency of the service. */
const TOOLING = new Set(['pip', 'setuptools', 'wheel']);
const LOCKS = /(^|\/)(package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml)$/;

function constrained(stage: Stage): boolean {
  return stage.instructions.some(
    (i) => i.keyword === 'ENV' && i.properties.some((p) => /^PIP_(CONSTRAINT|REQUIRE_HASHES)$/.test(p.name)),
  );
}

/** What one RUN installs without a version, as `name (where)` strings. */
function unpinnedIn(input: RuleInput, stage: Stage, ins: Instruction): string[] {
  const out: string[] = [];
  if (!constrained(stage)) {
    for (const run of pipRuns(input, stage, ins)) {
      if (run.constraints.length || run.requireHashes) continue;
      const inline = run.requirements.filter((r) => !r.spec && !TOOLING.has(r.name)).map((r) => r.name);
      if (inline.length) out.push(`no version for ${inline.join(', ')}`);
      for (const f of run.read) {
        const loose = f.requirements.filter((r) => !r.spec && !TOOLING.has(r.name)).map((r) => r.name);
        if (loose.length)
          out.push(
            `${f.file}: no version for ${loose.slice(0, 6).join(', ')}${loose.length > 6 ? ', …' : ''}`,
          );
      }
    }
  }
  const lock = input.context?.files.some((f) => LOCKS.test(f.path));
  for (const c of ins.keyword === 'RUN' ? runCommands(ins) : []) {
    const npm = npmInstallArgs(c);
    const loose = npm?.filter((s) => !npmSpec(s).version && !/^[./]/.test(s)) ?? [];
    if (loose.length) out.push(`no version for ${loose.join(', ')}`);
    else if (npm && !npm.length && input.context && !lock)
      out.push(`\`${c.words.slice(0, 2).join(' ')}\` without a lock file`);
    const conda = (condaInstallArgs(c) ?? []).filter((s) => !/[=<>]/.test(s));
    if (conda.length) out.push(`no version for ${conda.join(', ')}`);
  }
  return out;
}

export const unpinnedInstallRule: Rule = {
  id: 'unpinned-install',
  summary: 'pip, npm or conda packages installed without versions and without a lock or constraints file',
  check(input, report) {
    for (const stage of input.df.stages) {
      for (const ins of stage.instructions) {
        const loose = unpinnedIn(input, stage, ins);
        if (!loose.length) continue;
        report(
          ins,
          `${loose.join('; ')}: each build takes the newest release, so the same commit can build a different image (or stop building)`,
          'pin the versions you tested (`torch==2.5.1`), or install from a lock or constraints file (`pip install -c constraints.txt …`; `pip freeze` in a working image writes one; `npm ci` with package-lock.json)',
        );
      }
    }
  },
};

// -- unpinned-source ------------------------------------------------------------------

const PINNED_REF = /^([0-9a-f]{7,40}|v?\d+(\.\d+)+.*|.*\$.*)$/i;
const CODE = /\.(sh|py|pl|rb|tar\.gz|tgz|tar\.xz|txz|tar\.bz2|tbz2?|zip|whl|deb|rpm|run|jar)$/i;
const SHELLS = /^(sh|bash|zsh|dash|python[0-9.]*|perl|ruby)$/;
const CHECKSUM = /^(sha1sum|sha256sum|sha512sum|shasum|md5sum|b2sum|cosign)$/;

/** A URL whose path names a version (or a commit), so what it serves does not change. */
function versioned(url: string): boolean {
  const p = url.replace(/[?#].*$/, '');
  if (/\b(latest|master|main|nightly|head)\b/i.test(p)) return false;
  const file = p.slice(p.lastIndexOf('/') + 1);
  return (
    /\/v?\d+\.\d+/.test(p) ||
    /[-_]v?\d+\.\d+/.test(file) ||
    /[0-9a-f]{40}/i.test(p) ||
    /\d{6,}/.test(file) ||
    /\/releases\/download\//.test(p)
  );
}

/** A git clone in `cmds[k]` pinned by its --branch (a tag) or a later checkout of a commit or tag. */
function clonePinned(cmds: SimpleCommand[], k: number, later: SimpleCommand[]): boolean {
  const w = cmds[k]!.words;
  const b = w.findIndex(
    (x) => x === '-b' || x === '--branch' || x.startsWith('--branch=') || x.startsWith('--revision'),
  );
  const ref = b < 0 ? undefined : w[b]!.includes('=') ? w[b]!.split('=')[1] : w[b + 1];
  if (ref && PINNED_REF.test(ref)) return true;
  return [...cmds.slice(k + 1), ...later].some((c) => {
    const g = c.words.filter((_x, i) => c.words[i - 1] !== '-C');
    const verb = g.findIndex((x) => x === 'checkout' || x === 'reset' || x === 'switch');
    if (g[0] !== 'git' || verb < 0) return false;
    const target = g.slice(verb + 1).find((x) => !x.startsWith('-'));
    return target !== undefined && PINNED_REF.test(target);
  });
}

/** Sources a RUN fetches without a commit or checksum. */
function unpinnedSources(input: RuleInput, stage: Stage, ins: Instruction): string[] {
  const out: string[] = [];
  const cmds = runCommands(ins);
  const later = stage.instructions
    .filter((i) => i.keyword === 'RUN' && i.line > ins.line)
    .flatMap(runCommands);
  const checked = cmds.some(
    (c) => CHECKSUM.test(program(c).name) || (program(c).name === 'gpg' && c.words.includes('--verify')),
  );
  cmds.forEach((c, k) => {
    const { name, args } = program(c);
    if (name === 'git' && args.includes('clone') && !clonePinned(cmds, k, later)) {
      const url = args.find((a) => /^(https?|git|ssh):\/\/|^git@/.test(a));
      out.push(`git clone ${url ?? ''} of a branch`.replace('  ', ' '));
    }
    if ((name === 'curl' || name === 'wget') && !checked) {
      const url = args.find((a) => /^https?:\/\//.test(a));
      const piped = c.op === '|' && SHELLS.test(program(cmds[k + 1] ?? { words: [], op: '' }).name);
      if (url && (piped || CODE.test(url.replace(/[?#].*$/, ''))) && !versioned(url))
        out.push(`${name} ${url}${piped ? ` | ${program(cmds[k + 1]!).name}` : ''}`);
    }
  });
  for (const run of pipRuns(input, stage, ins)) {
    for (const u of run.urls) {
      const ref = /@([^#@/]+)(#.*)?$/.exec(u.replace(/^git\+[a-z]+:\/\/[^@/]*@/, ''))?.[1];
      const loose = u.startsWith('git') ? !ref || !PINNED_REF.test(ref) : !versioned(u);
      if (loose) out.push(`pip install ${u}`);
    }
  }
  return out;
}

export const unpinnedSourceRule: Rule = {
  id: 'unpinned-source',
  summary: 'code fetched at build time without a commit or checksum (git clone, VCS installs, curl | sh)',
  check(input, report) {
    for (const stage of input.df.stages) {
      for (const ins of stage.instructions) {
        const loose =
          ins.keyword === 'RUN'
            ? unpinnedSources(input, stage, ins)
            : ins.keyword === 'ADD' && !ins.flags.some((f) => f.name === 'checksum')
              ? ins.argv
                  .filter((a) => /^https?:\/\//.test(a) && CODE.test(a) && !versioned(a))
                  .map((a) => `ADD ${a}`)
              : [];
        if (!loose.length) continue;
        report(
          ins,
          `fetches code without a commit or checksum: ${loose.join('; ')}. What it gets changes upstream, so two builds of the same commit can differ`,
          'pin it: clone then `git checkout <commit>` (or `--branch <tag>`), `pip install git+https://…@<commit>`, a versioned download checked with `sha256sum -c`, or `ADD --checksum=sha256:…`',
        );
      }
    }
  },
};
