// Pass: the Dockerfile text from the state. Every instruction in its stage's
// final order, with the lines a pass inserted above it or replaced it with; the
// builder stage above the stage it was made for. Lines nobody touched come out
// exactly as they went in.

import type { Instruction } from '../parse.js';
import type { RewriteState } from './state.js';

export function render(s: RewriteState): string {
  const out: string[] = [];
  const emit = (ins: Instruction) => {
    const b = s.blocks.get(ins)!;
    if (s.removed.has(ins)) return;
    const body = s.replaced.get(ins) ?? b.body;
    // A removed instruction takes its comments with it; blank lines stay.
    out.push(...(s.replaced.has(ins) && !body.length ? b.lead.filter((l) => !l.trim()) : b.lead));
    for (const c of s.inserted.get(ins) ?? []) out.push(c);
    out.push(...body);
  };
  for (const a of s.df.globalArgs) emit(a);
  for (const stage of s.df.stages) {
    if (s.builder?.stage === stage.index) {
      const b = s.blocks.get(stage.from)!;
      out.push(...b.lead, ...s.builder.lines, ...b.body);
    } else emit(stage.from);
    for (const ins of s.order.get(stage.index)!) emit(ins);
  }
  out.push(...s.tail);
  return out.join('\n');
}
