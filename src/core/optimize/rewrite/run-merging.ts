// Pass: RUNs that must be one layer. A lone `apt-get update` joins the RUN after
// it (and gets the apt-lists cleanup), or that RUN would install from stale
// lists cached in an earlier layer; a RUN that only deletes what the RUN before
// it made joins that RUN, since deleting in a later layer saves nothing.

import { commandText, type Instruction } from '../parse.js';
import { isAptUpdate, isCleanupOnly, isSimpleChain, splitShell } from '../shell.js';
import { allowed, blockOf, liveOrder, type RewriteState } from './state.js';

function plainRuns(a: Instruction, b: Instruction): boolean {
  return (
    a.keyword === 'RUN' && b.keyword === 'RUN' && !a.json && !b.json && !a.flags.length && !b.flags.length
  );
}

/** `b` only deletes: it joins `a`. */
function mergeCleanup(s: RewriteState, a: Instruction, b: Instruction): boolean {
  if (
    !isCleanupOnly(splitShell(commandText(b))) ||
    !isSimpleChain(commandText(a)) ||
    !isSimpleChain(commandText(b)) ||
    s.inserted.has(b)
  )
    return false;
  const ba = blockOf(s, a);
  ba.body = [...ba.body.slice(0, -1), `${ba.body.at(-1)} \\`, `    && ${commandText(b)}`];
  blockOf(s, b).body = [];
  s.removed.add(b);
  s.changes.push({
    rule: 'consecutive-run',
    line: b.line,
    description: `cleanup merged into the RUN on line ${a.line}`,
  });
  return true;
}

/** `a` is only `apt-get update`: it joins `b`, with the lists removed at the end. */
function mergeAptUpdate(s: RewriteState, a: Instruction, b: Instruction): void {
  const ca = splitShell(commandText(a));
  if (!(ca.length && ca.every(isAptUpdate)) || !isSimpleChain(commandText(b)) || s.inserted.has(b)) return;
  const ba = blockOf(s, a);
  const bb = blockOf(s, b);
  const head = bb.body.join('\n').replace(/^(\s*)RUN\s+/i, '');
  let body = `RUN ${commandText(a)} \\\n    && ${head}`;
  if (!/\/var\/lib\/apt\/lists/.test(body)) body += ' \\\n    && rm -rf /var/lib/apt/lists/*';
  bb.body = body.split('\n');
  bb.lead = [...ba.lead, ...bb.lead];
  s.removed.add(a);
  s.changes.push({
    rule: 'consecutive-run',
    line: a.line,
    description: `apt-get update merged into the RUN on line ${b.line}`,
  });
}

/** The pass, over the stages that ship (a builder's layers cost nothing in the image). */
export function mergeRuns(s: RewriteState): void {
  for (const stage of s.df.stages) {
    if (!s.lineage.has(stage.index)) continue;
    const list = liveOrder(s, stage.index);
    // A cleanup merged into the RUN before it passes that RUN on: the next cleanup joins it too
    // (`RUN build`, `RUN rm a`, `RUN rm b` is one layer after one rewrite, not after two).
    const mergedInto = new Map<Instruction, Instruction>();
    for (let k = 1; k < list.length; k++) {
      const a = mergedInto.get(list[k - 1]!) ?? list[k - 1]!;
      const b = list[k]!;
      if (!plainRuns(a, b)) continue;
      if (!allowed(s, 'consecutive-run', a) || !allowed(s, 'consecutive-run', b) || s.removed.has(a))
        continue;
      if (mergeCleanup(s, a, b)) {
        mergedInto.set(b, a);
        continue;
      }
      mergeAptUpdate(s, a, b);
    }
  }
}
