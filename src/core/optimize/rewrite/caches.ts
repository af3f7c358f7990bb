// Pass: caches that ship. `--no-cache-dir` on pip installs, and the apt lists
// removed in the RUN that downloaded them, in the stages whose layers are in the
// image. A RUN with a cache mount keeps its cache outside the image already.

import { commandText, type Instruction, mounts, type Stage } from '../parse.js';
import { isAptUpdate, isSimpleChain, pipInstallArgs, splitShell } from '../shell.js';
import { allowed, blockOf, type RewriteState } from './state.js';

function noPipCache(s: RewriteState, ins: Instruction): void {
  const cmds = splitShell(commandText(ins));
  if (
    !allowed(s, 'pip-cache', ins) ||
    !cmds.some((c) => (pipInstallArgs(c) ?? ['--no-cache-dir']).includes('--no-cache-dir') === false)
  )
    return;
  const b = blockOf(s, ins);
  const before = b.body.join('\n');
  const after = before.replace(/(\bpip[0-9.]*\s+install)(?![^&;|\n]*--no-cache-dir)/g, '$1 --no-cache-dir');
  if (after !== before) {
    b.body = after.split('\n');
    s.changes.push({ rule: 'pip-cache', line: ins.line, description: 'pip install --no-cache-dir' });
  }
}

function noAptLists(s: RewriteState, ins: Instruction): void {
  const text = commandText(ins);
  if (
    !splitShell(text).some(isAptUpdate) ||
    !allowed(s, 'apt-lists-kept', ins) ||
    /\/var\/lib\/apt\/lists/.test(text) ||
    !isSimpleChain(text)
  )
    return;
  const b = blockOf(s, ins);
  b.body = [...b.body.slice(0, -1), `${b.body.at(-1)} \\`, '    && rm -rf /var/lib/apt/lists/*'];
  s.changes.push({
    rule: 'apt-lists-kept',
    line: ins.line,
    description: 'apt lists removed in the same layer',
  });
}

function pipCacheOff(stage: Stage): boolean {
  return stage.instructions.some(
    (i) => i.keyword === 'ENV' && i.properties.some((p) => p.name === 'PIP_NO_CACHE_DIR'),
  );
}

export function dropCaches(s: RewriteState): void {
  for (const stage of s.df.stages) {
    if (!s.lineage.has(stage.index)) continue;
    const pipOff = pipCacheOff(stage);
    for (const ins of stage.instructions) {
      if (
        ins.keyword !== 'RUN' ||
        ins.json ||
        s.removed.has(ins) ||
        mounts(ins).some((m) => m.type === 'cache')
      )
        continue;
      if (!pipOff) noPipCache(s, ins);
      noAptLists(s, ins);
    }
  }
}
