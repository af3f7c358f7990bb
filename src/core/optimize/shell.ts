// Just enough shell understanding for the rules: split a RUN into simple
// commands and recognise package installs. Quoting is respected; anything
// unusual (subshells, heredocs, functions) makes `isSimpleChain` false so the
// rewrite leaves that RUN alone.

export interface SimpleCommand {
  words: string[];
  /** Operator that follows this command (`&&`, `||`, `;`, `|`, `&`, or '' at the end). */
  op: string;
}

export function splitShell(script: string): SimpleCommand[] {
  const out: SimpleCommand[] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = (op: string) => {
    endWord();
    if (words.length) out.push({ words, op });
    else if (out.length) out.at(-1)!.op = op;
    words = [];
  };
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < script.length) word += script[++i];
      else word += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
      continue;
    }
    if (c === '\\' && i + 1 < script.length) {
      const next = script[++i]!;
      if (next !== '\n') {
        word += next;
        inWord = true;
      }
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n') {
      if (c === '\n' && script[i - 1] !== '\\') endCommand(';');
      else endWord();
      continue;
    }
    const two = script.slice(i, i + 2);
    if (two === '&&' || two === '||') {
      endCommand(two);
      i++;
      continue;
    }
    if (c === ';' || c === '|' || c === '&') {
      endCommand(c);
      continue;
    }
    word += c;
    inWord = true;
  }
  endCommand('');
  if (out.length) out.at(-1)!.op = '';
  return out;
}

/** Only `a && b && c` of plain commands, nothing that carries state or branches. */
export function isSimpleChain(script: string): boolean {
  if (/[`$]\(|<<|\(|\)|\{|\}/.test(script)) return false;
  const cmds = splitShell(script);
  return cmds.every((c, i) => (i === cmds.length - 1 ? c.op === '' : c.op === '&&'));
}

/** The arguments after `pip install` (pip, pip3, python -m pip, uv pip), or undefined. */
export function pipInstallArgs(cmd: SimpleCommand): string[] | undefined {
  const w = cmd.words;
  for (let i = 0; i < w.length; i++) {
    const word = w[i]!;
    const isPip = /(^|\/)pip[0-9.]*$/.test(word);
    const isModule = word === '-m' && w[i + 1] === 'pip';
    if (isPip && w[i + 1] === 'install') return w.slice(i + 2);
    if (isModule && w[i + 2] === 'install') return w.slice(i + 3);
  }
  return undefined;
}

/** The arguments after `apt-get install` / `apt install`, or undefined. */
export function aptInstallArgs(cmd: SimpleCommand): string[] | undefined {
  const w = cmd.words;
  const i = w.findIndex((x) => /(^|\/)apt(-get)?$/.test(x));
  if (i < 0) return undefined;
  const j = w.findIndex((x, k) => k > i && !x.startsWith('-'));
  return j >= 0 && w[j] === 'install' ? w.slice(j + 1) : undefined;
}

export function isAptUpdate(cmd: SimpleCommand): boolean {
  const w = cmd.words;
  const i = w.findIndex((x) => /(^|\/)apt(-get)?$/.test(x));
  return i >= 0 && w.slice(i + 1).find((x) => !x.startsWith('-')) === 'update';
}

/** Packages named in an install command (flags and their values dropped). */
export function packagesOf(args: string[]): string[] {
  return args.filter((a) => !a.startsWith('-') && !a.includes('='));
}

const DEP_INSTALLERS: ((c: SimpleCommand) => boolean)[] = [
  (c) => pipInstallArgs(c) !== undefined,
  (c) => /^(npm|pnpm|yarn)$/.test(c.words[0] ?? '') && ['ci', 'install', 'i', undefined].includes(c.words[1]),
  (c) => /^(poetry|pipenv|uv)$/.test(c.words[0] ?? '') && ['install', 'sync'].includes(c.words[1] ?? ''),
  (c) =>
    /^(conda|mamba|micromamba)$/.test(c.words[0] ?? '') &&
    ['install', 'env', 'create'].includes(c.words[1] ?? ''),
];

export function installsDependencies(script: string): boolean {
  return splitShell(script).some((c) => DEP_INSTALLERS.some((f) => f(c)));
}

/** Commands that only delete: `rm`, `apt-get clean|purge|autoremove`, `pip cache purge`, `conda clean`. */
export function isCleanupOnly(cmds: SimpleCommand[]): boolean {
  return (
    cmds.length > 0 &&
    cmds.every((c) => {
      const [cmd, sub, third] = c.words;
      if (cmd === 'rm') return true;
      if (/(^|\/)apt(-get)?$/.test(cmd ?? '')) {
        const verb = c.words.slice(1).find((w) => !w.startsWith('-'));
        return ['clean', 'autoclean', 'autoremove', 'purge', 'remove'].includes(verb ?? '');
      }
      if (/^pip[0-9.]*$/.test(cmd ?? '')) return sub === 'cache' && ['purge', 'remove'].includes(third ?? '');
      if (/^(conda|mamba)$/.test(cmd ?? '')) return sub === 'clean';
      return false;
    })
  );
}
