// The sections of the bakeoff report that judge the candidates on the user's task: the
// scores (a table and a chart per metric) and the outputs side by side, one row per
// input and one column per candidate (images as thumbnails that open full size, text
// and JSON inline, other files by name and size). Links are relative to the report.

import { barChart, escapeHtml, formatBytes } from './bakeoff-report-parts.js';
import type { BakeoffReport, CandidateReport, CopiedFile, RankBy } from './bakeoff-report-schema.js';

export const OUTPUTS_CSS = `
table.outputs td { min-width: 160px; }
table.outputs img.thumb { max-width: 220px; max-height: 160px; border: 1px solid var(--line); border-radius: 4px; display: block; }
table.outputs pre.preview { background: var(--bg); color: #1f2328; max-height: 200px; max-width: 360px; margin: 0 0 4px; white-space: pre-wrap; }
table.outputs .file { display: block; font-size: 12px; color: var(--muted); }
table.scores td.best { font-weight: 700; }
.chart .score { fill: #bf8700; }
`;

/** The metrics `rank_by` ranks by, with their directions (old reports: the names, ascending). */
export function rankingOf(r: BakeoffReport): RankBy[] {
  return r.ranking ?? r.rankBy.map((metric) => ({ metric, direction: 'asc' as const }));
}

/** "run time, peak memory (lower is better)", or each metric with its own direction when they differ. */
export function rankingText(r: BakeoffReport, name: (metric: string) => string): string {
  const keys = rankingOf(r);
  const dir = (d: RankBy['direction']) => `${d === 'desc' ? 'higher' : 'lower'} is better`;
  if (keys.every((k) => k.direction === keys[0]!.direction))
    return `${keys.map((k) => name(k.metric)).join(', ')} (${dir(keys[0]!.direction)})`;
  return keys.map((k) => `${name(k.metric)} (${dir(k.direction)})`).join(', ');
}

/** Every score metric any candidate reported, ranked ones first. */
export function scoreNames(r: BakeoffReport): string[] {
  const ranked = rankingOf(r)
    .map((k) => k.metric)
    .filter((m) => m.startsWith('score.'))
    .map((m) => m.slice(6));
  const all = new Set<string>(ranked);
  for (const c of r.candidates) for (const k of Object.keys(c.score?.metrics ?? {})) all.add(k);
  return [...all];
}

export function formatScore(v: number | undefined): string {
  if (v === undefined) return '–';
  return Number.isInteger(v) ? String(v) : String(+v.toPrecision(4));
}

export function scoresMarkdown(r: BakeoffReport): string[] {
  const names = scoreNames(r);
  const scored = r.candidates.filter((c) => c.score);
  if (!scored.length) return [];
  const out = [
    '',
    '## Scores',
    '',
    `| candidate | ${names.join(' | ')} |`,
    `|---|${names.map(() => '---:|').join('')}`,
  ];
  for (const c of scored) {
    const cells = names.map((n) => formatScore(c.score!.metrics[n]));
    const failed = c.score!.failure ? ` (${c.score!.failure.category}: ${c.score!.failure.message})` : '';
    out.push(`| ${c.name}${failed} | ${cells.join(' | ')} |`);
  }
  return out;
}

export function scoresHtml(r: BakeoffReport): string {
  const names = scoreNames(r);
  const scored = r.candidates.filter((c) => c.score);
  if (!scored.length) return '';
  const direction = new Map(rankingOf(r).map((k) => [k.metric, k.direction]));
  const best = new Map<string, number>();
  for (const n of names) {
    const values = scored.map((c) => c.score!.metrics[n]).filter((v): v is number => v !== undefined);
    if (values.length)
      best.set(n, direction.get(`score.${n}`) === 'asc' ? Math.min(...values) : Math.max(...values));
  }
  const rows = scored.map((c) => {
    const cells = names.map((n) => {
      const v = c.score!.metrics[n];
      return `<td class="num${v !== undefined && v === best.get(n) ? ' best' : ''}">${formatScore(v)}</td>`;
    });
    const failure = c.score!.failure
      ? `<div class="failure"><b>${escapeHtml(c.score!.failure.category)}</b>: ${escapeHtml(c.score!.failure.message)}. Hint: ${escapeHtml(c.score!.failure.hint)}.</div>`
      : '';
    return `<tr data-candidate="${escapeHtml(c.name)}"><td>${escapeHtml(c.name)}${failure}</td>${cells.join('')}</tr>`;
  });
  const charts = names.map((n) =>
    barChart(
      `chart-score-${n.replace(/[^A-Za-z0-9_-]/g, '_')}`,
      `Score ${n} per candidate (${direction.get(`score.${n}`) === 'asc' ? 'lower' : 'higher'} is better)`,
      scored.map((c) => ({
        label: c.name,
        failed: c.status !== 'passed' || c.score!.failure !== null,
        segments: [
          {
            value: Math.max(0, c.score!.metrics[n] ?? 0),
            cls: 'score',
            title: `${n} ${formatScore(c.score!.metrics[n])}`,
          },
        ],
        note: formatScore(c.score!.metrics[n]),
      })),
      (v) => formatScore(v),
      [['score', n]],
    ),
  );
  return [
    '<h2>Scores</h2>',
    `<table id="scores" class="scores"><thead><tr><th>candidate</th>${names.map((n) => `<th class="num">${escapeHtml(n)}</th>`).join('')}</tr></thead><tbody>`,
    ...rows,
    '</tbody></table>',
    ...charts,
  ].join('\n');
}

function stem(name: string): string {
  return name.replace(/\.[^./]+$/, '');
}

/** The input a file belongs to: the one whose name (without extension) starts the file's name. */
function inputOf(file: CopiedFile, inputs: string[]): string | undefined {
  const base = stem(file.savedAs.split('/').pop() ?? '');
  const dirs = file.savedAs.split('/').slice(0, -1);
  return inputs.find((i) => {
    const s = stem(i.split('/').pop() ?? i);
    return base === s || (/^[._-]/.test(base.slice(s.length)) && base.startsWith(s)) || dirs.includes(s);
  });
}

function href(c: CandidateReport, f: CopiedFile): string {
  return ['outputs', c.name, ...f.savedAs.split('/')].map(encodeURIComponent).join('/');
}

function cell(c: CandidateReport, files: CopiedFile[]): string {
  if (!files.length) return '<td class="missing">–</td>';
  const parts = files.map((f) => {
    const link = href(c, f);
    const name = `<a class="file" href="${link}">${escapeHtml(f.savedAs)}</a>`;
    const kind = f.preview?.kind ?? 'other';
    if (kind === 'image') {
      return `<a href="${link}" target="_blank"><img class="thumb" loading="lazy" src="${link}" alt="${escapeHtml(`${c.name}: ${f.savedAs}`)}"></a>${name}`;
    }
    if ((kind === 'text' || kind === 'json') && f.preview?.text !== undefined) {
      const more = f.preview.truncated
        ? ` <a class="file" href="${link}">full file (${formatBytes(f.bytes)})</a>`
        : '';
      return `<pre class="preview ${kind}">${escapeHtml(f.preview.text)}${f.preview.truncated ? '\n…' : ''}</pre>${name}${more}`;
    }
    return `<span class="other">${name} (${formatBytes(f.bytes)})</span>`;
  });
  return `<td>${parts.join('')}</td>`;
}

/** One row per input (or per output file that belongs to no input), one column per candidate. */
export function outputsHtml(r: BakeoffReport): string {
  const cs = r.candidates.filter((c) => c.outputs.some((o) => o.files.length));
  if (!cs.length) return '';
  const rows = new Map<string, Map<string, CopiedFile[]>>();
  const order: string[] = [];
  for (const c of r.candidates) for (const i of c.inputs ?? []) if (!order.includes(i)) order.push(i);
  const extra = new Set<string>();
  for (const c of cs) {
    const seen = new Set<string>();
    for (const f of c.outputs.flatMap((o) => o.files)) {
      if (seen.has(f.savedAs)) continue;
      seen.add(f.savedAs);
      const key = inputOf(f, c.inputs ?? []) ?? f.savedAs;
      if (!order.includes(key)) extra.add(key);
      const row = rows.get(key) ?? new Map<string, CopiedFile[]>();
      row.set(c.name, [...(row.get(c.name) ?? []), f]);
      rows.set(key, row);
    }
  }
  const keys = [...order.filter((k) => rows.has(k)), ...[...extra].sort()];
  return [
    '<h2>Outputs</h2>',
    `<table id="outputs" class="outputs"><thead><tr><th>input</th>${cs.map((c) => `<th>${escapeHtml(c.name)}</th>`).join('')}</tr></thead><tbody>`,
    ...keys.map(
      (k) =>
        `<tr data-input="${escapeHtml(k)}"><th>${escapeHtml(k)}</th>${cs.map((c) => cell(c, rows.get(k)?.get(c.name) ?? [])).join('')}</tr>`,
    ),
    '</tbody></table>',
  ].join('\n');
}
