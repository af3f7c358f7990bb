// Pass: `ADD` of local files that are not archives or URLs is a `COPY` (ADD
// would also fetch and unpack, which is not what these lines mean).

import { copyParts } from '../copies.js';
import { renderCopy } from './copy-paths.js';
import { allowed, blockOf, type RewriteState, setBody } from './state.js';

export function addToCopy(s: RewriteState): void {
  for (const stage of s.df.stages) {
    for (const ins of stage.instructions) {
      if (ins.keyword !== 'ADD' || s.removed.has(ins) || !allowed(s, 'add-instead-of-copy', ins)) continue;
      const { sources, dest } = copyParts(ins);
      if (
        sources.some((x) => /^(https?|git):\/\//.test(x) || /\.(tar|tgz|gz|bz2|xz|zst|tbz2?|txz)$/i.test(x))
      )
        continue;
      const b = blockOf(s, ins);
      const current = b.body.join('\n');
      b.body = current.replace(/^(\s*)ADD\b/i, '$1COPY').split('\n');
      // The keyword was on a line of its own or otherwise not where the regexp looks: write it anew.
      if (b.body.join('\n') === current) setBody(s, ins, renderCopy('COPY', ins, sources, dest));
      s.changes.push({ rule: 'add-instead-of-copy', line: ins.line, description: 'ADD → COPY' });
    }
  }
}
