// The screen of `mlship top`: a snapshot as lines no wider than the terminal. Pure (the
// snapshot, a width and a styler in; lines out), so goldens pin it at 80 and 120 columns.
// On a narrow terminal the least useful columns go first (role, version, in-flight,
// replicas), then the service names are shortened; colours only through the styler, which
// is plain when stdout is not a terminal or NO_COLOR is set.

import type { TopQueue, TopService, TopSnapshot } from '../core/top/snapshot.js';
import type { Styler, Tone } from '../io/style.js';

interface Column<T> {
  header: string;
  width: number;
  align: 'left' | 'right';
  /** Lower goes first when the screen is too narrow; Infinity never goes. */
  keep: number;
  cell(row: T): string;
  tone?(row: T): Tone;
}

const dash = '-';

export function formatRate(v: number | undefined): string {
  if (v === undefined) return dash;
  return v >= 1000 ? String(Math.round(v)) : v.toFixed(1);
}

export function formatMs(v: number | undefined): string {
  if (v === undefined) return dash;
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  return v >= 100 ? `${Math.round(v)} ms` : `${v.toFixed(1)} ms`;
}

export function formatShare(v: number | undefined): string {
  return v === undefined ? dash : `${(v * 100).toFixed(1)}%`;
}

const SERVICE_COLUMNS: Column<TopService>[] = [
  { header: 'ROLE', width: 6, align: 'left', keep: 1, cell: (s) => s.role, tone: () => 'dim' },
  { header: 'VERSION', width: 8, align: 'left', keep: 2, cell: (s) => s.versions.join(',') || dash },
  {
    header: 'REPLICAS',
    width: 8,
    align: 'right',
    keep: 4,
    cell: (s) => `${s.replicas.running}/${s.replicas.desired}`,
    tone: (s) =>
      s.replicas.running === 0 ? 'fail' : s.replicas.running < s.replicas.desired ? 'warn' : 'plain',
  },
  { header: 'REQ/S', width: 7, align: 'right', keep: Infinity, cell: (s) => formatRate(s.requestsPerSecond) },
  { header: 'P50', width: 8, align: 'right', keep: Infinity, cell: (s) => formatMs(s.p50Ms) },
  { header: 'P99', width: 8, align: 'right', keep: Infinity, cell: (s) => formatMs(s.p99Ms) },
  {
    header: '5XX',
    width: 6,
    align: 'right',
    keep: Infinity,
    cell: (s) => formatShare(s.errorRate),
    tone: (s) => (!s.errorRate ? 'plain' : s.errorRate >= 0.01 ? 'fail' : 'warn'),
  },
  {
    header: 'INFLIGHT',
    width: 8,
    align: 'right',
    keep: 3,
    cell: (s) => (s.inFlight === undefined ? dash : String(Math.round(s.inFlight))),
  },
];

const QUEUE_COLUMNS: Column<TopQueue>[] = [
  { header: 'WAITING', width: 8, align: 'right', keep: Infinity, cell: (q) => String(q.waiting) },
  { header: 'WORKING', width: 8, align: 'right', keep: 2, cell: (q) => String(q.inFlight) },
  {
    header: 'DEAD',
    width: 6,
    align: 'right',
    keep: Infinity,
    cell: (q) => String(q.deadLetters),
    tone: (q) => (q.deadLetters > 0 ? 'fail' : 'plain'),
  },
];

/** Columns go until a name has this much room (or all of it, when shorter). */
const NAME_ROOM = 16;
const NAME_MAX = 28;

function fitCell(text: string, width: number, align: 'left' | 'right'): string {
  const cut = text.length > width ? `${text.slice(0, Math.max(0, width - 1))}~` : text;
  return align === 'left' ? cut.padEnd(width) : cut.padStart(width);
}

/** The columns that fit `width` beside a name column, and the name column's width. */
function layout<T>(columns: Column<T>[], names: string[], title: string, width: number) {
  const kept = [...columns];
  const used = () => kept.reduce((n, c) => n + c.width + 1, 0);
  const byKeep = [...columns].filter((c) => Number.isFinite(c.keep)).sort((a, b) => a.keep - b.keep);
  const longest = Math.max(title.length, ...names.map((n) => n.length));
  const room = Math.min(NAME_ROOM, longest);
  while (width - used() < room && byKeep.length) kept.splice(kept.indexOf(byKeep.shift()!), 1);
  const nameWidth = Math.max(1, Math.min(NAME_MAX, longest, width - used()));
  return { kept, nameWidth };
}

function table<T extends { name: string }>(
  columns: Column<T>[],
  rows: T[],
  title: string,
  width: number,
  style: Styler,
): string[] {
  const { kept, nameWidth } = layout(
    columns,
    rows.map((r) => r.name),
    title,
    width,
  );
  const header = [
    fitCell(title, nameWidth, 'left'),
    ...kept.map((c) => fitCell(c.header, c.width, c.align)),
  ].join(' ');
  const lines = [style('bold', header.trimEnd().slice(0, width))];
  for (const row of rows) {
    const plain = [
      fitCell(row.name, nameWidth, 'left'),
      ...kept.map((c) => fitCell(c.cell(row), c.width, c.align)),
    ];
    // Narrower than the columns that always stay: cut, and without colour (codes cannot be cut).
    if (plain.join(' ').trimEnd().length > width) {
      lines.push(plain.join(' ').slice(0, width).trimEnd());
      continue;
    }
    const styled = plain.map((cell, i) =>
      i === 0 ? cell : style(kept[i - 1]!.tone?.(row) ?? 'plain', cell),
    );
    lines.push(styled.join(' ').trimEnd());
  }
  return lines;
}

function titleLine(s: TopSnapshot, width: number): string {
  const time = s.at.slice(11, 19);
  const parts = [
    `mlship top · ${s.stack} · ${s.where} · ${time} UTC`,
    `over ${s.windowSeconds} s`,
    'q quits',
  ];
  let text = parts.join(' · ');
  if (text.length > width) text = parts[0]!;
  return fitCell(text, width, 'left').trimEnd();
}

/** The screen for a snapshot, `width` columns wide at most (ANSI colour codes aside). */
export function renderTop(s: TopSnapshot, width: number, style: Styler): string[] {
  const w = Math.max(20, width);
  const lines = [style('accent', titleLine(s, w)), ''];
  lines.push(...table(SERVICE_COLUMNS, s.services, 'SERVICE', w, style));
  const notes = s.services.filter((r) => r.note).map((r) => `${r.name}: ${r.note}`);
  if (s.queues.length) lines.push('', ...table(QUEUE_COLUMNS, s.queues, 'QUEUE', w, style));
  if (notes.length || s.notes.length) lines.push('');
  for (const note of [...notes, ...s.notes]) lines.push(style('dim', fitCell(note, w, 'left').trimEnd()));
  return lines;
}
