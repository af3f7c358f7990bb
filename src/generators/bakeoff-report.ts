// Renders a bakeoff report (bakeoff-report-schema.ts) as Markdown and as one
// self-contained HTML page: inline CSS and SVG charts, no script, no external
// request, so it opens from a CI artifact or an e-mail attachment alike.

import {
  OUTPUTS_CSS,
  outputsHtml,
  rankingText,
  scoresHtml,
  scoresMarkdown,
} from './bakeoff-report-outputs.js';
import { barChart, escapeHtml, formatBytes, formatMs } from './bakeoff-report-parts.js';
import type { BakeoffReport, CandidateReport } from './bakeoff-report-schema.js';

export { escapeHtml, formatBytes, formatMs } from './bakeoff-report-parts.js';

function statusText(c: CandidateReport): string {
  return c.status === 'passed' ? 'passed' : `failed: ${c.failure?.category ?? 'unknown'}`;
}

function hostLine(r: BakeoffReport): string {
  const gpu = r.host.gpus.length
    ? `${r.host.gpus.length} × ${r.host.gpus[0]!.name} (driver ${r.host.driver})`
    : 'no NVIDIA GPU';
  return `${r.host.cpus} CPUs, ${formatBytes(r.host.memoryBytes)}, ${r.host.engine}, ${gpu}`;
}

function planLine(c: CandidateReport): string {
  if (!c.plan) return '–';
  const fw = c.plan.framework ? `${c.plan.framework.name} ${c.plan.framework.version}` : 'no framework';
  return `Python ${c.plan.python}, ${fw}, ${c.plan.cuda ? `CUDA ${c.plan.cuda}` : 'CPU'}, ${c.plan.flavor} base ${c.plan.baseImage}`;
}

// -- Markdown -----------------------------------------------------------------------

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderMarkdownReport(r: BakeoffReport): string {
  const out: string[] = [];
  out.push('# Bakeoff report', '');
  out.push(
    `Run \`${r.runId}\` at ${r.createdAt} from \`${r.config}\`, ranked by ${rankingText(r, (m) => m.replace('_', ' '))}.`,
    '',
    `Host: ${hostLine(r)}.`,
    '',
    `**${r.summary.passed} of ${r.summary.total} passed**${r.summary.best ? `; best: **${r.summary.best}**` : ''}.`,
    '',
  );
  const gpu = r.candidates.some((c) => c.metrics.gpuMemoryBytes !== null);
  out.push(
    `| rank | candidate | status | run time | build time | peak memory | limit |${gpu ? ' GPU memory |' : ''} image size | commit |`,
    `|---:|---|---|---:|---:|---:|---:|${gpu ? '---:|' : ''}---:|---|`,
  );
  for (const c of r.candidates) {
    const gpuCell = gpu ? ` ${formatBytes(c.metrics.gpuMemoryBytes)} |` : '';
    out.push(
      `| ${c.rank ?? '–'} | ${mdCell(c.name)} | ${mdCell(statusText(c))} | ${formatMs(c.metrics.runMs)} | ${formatMs(c.metrics.buildMs)} | ${formatBytes(c.metrics.peakMemoryBytes)} | ${formatBytes(c.metrics.memoryLimitBytes)} |${gpuCell} ${formatBytes(c.metrics.imageSizeBytes)} | ${c.source.commit ? `\`${c.source.commit.replace(/^sha256:/, '').slice(0, 12)}\`` : '–'} |`,
    );
  }
  out.push(...scoresMarkdown(r));
  const failed = r.candidates.filter((c) => c.failure);
  if (failed.length) {
    out.push('', '## Why they failed', '');
    for (const c of failed) {
      const f = c.failure!;
      out.push(`### ${c.name}: ${f.category} (${f.origin})`, '', `${f.message}.`, '', `Hint: ${f.hint}.`, '');
      if (f.evidence.length) out.push('```text', ...f.evidence, '```', '');
    }
  }
  out.push('', '## Candidates', '');
  for (const c of r.candidates) {
    out.push(`### ${c.name}`, '');
    out.push(
      `- repo: \`${c.source.repo}\` at \`${c.source.ref}\` → \`${c.source.commit ?? 'not resolved'}\``,
    );
    out.push(`- plan: ${planLine(c)}`);
    for (const reason of c.plan?.reasons ?? []) out.push(`  - ${reason}`);
    if (c.image) out.push(`- image: \`${c.image.tag}\` (\`${c.image.id.slice(0, 19)}\`)`);
    if (c.run.exitCode !== null) {
      out.push(
        `- exit code ${c.run.exitCode}${c.run.timedOut ? ', timed out' : ''}${c.run.oomKilled ? ', OOM-killed' : ''}`,
      );
    }
    for (const o of c.outputs) {
      out.push(
        `- output \`${o.pattern}\`: ${o.files.length ? o.files.map((f) => `\`${f.savedAs}\` (${formatBytes(f.bytes)})`).join(', ') : '**missing**'}`,
      );
    }
    out.push(
      '',
      `<details><summary>${c.log.phase} log (last ${c.log.lines.length} lines)</summary>`,
      '',
      '```text',
      ...c.log.lines,
      '```',
      '',
      '</details>',
      '',
    );
  }
  return `${out.join('\n').trimEnd()}\n`;
}

// -- HTML ---------------------------------------------------------------------------

const CSS = `
:root { --ok: #1a7f37; --fail: #cf222e; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1000px; padding: 24px; color: #1f2328; }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { margin: 32px 0 8px; font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.meta { color: var(--muted); margin: 0; }
.cards { display: flex; gap: 12px; margin: 16px 0; flex-wrap: wrap; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 140px; background: var(--bg); }
.card b { display: block; font-size: 22px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--bg); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; }
.status.passed { color: var(--ok); }
.status.failed { color: var(--fail); }
.chart { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.chart .grid { stroke: var(--line); }
.chart .tick, .chart .legend, .chart .value { font-size: 11px; fill: var(--muted); }
.chart .label { font-size: 12px; fill: #1f2328; }
.chart .run { fill: #0969da; }
.chart .build { fill: #9ecbff; }
.chart .mem { fill: #8250df; }
.chart .gpu { fill: #1a7f37; }
.chart .failed .run, .chart .failed .mem, .chart .failed .gpu { fill: #ff8182; }
.chart .limit { stroke: var(--fail); stroke-width: 2; stroke-dasharray: 3 2; }
.chart rect.limit { fill: none; stroke: var(--fail); }
details { border: 1px solid var(--line); border-radius: 8px; margin: 10px 0; padding: 0 12px; }
details[open] { padding-bottom: 12px; }
summary { cursor: pointer; padding: 8px 0; font-weight: 600; }
pre { background: #0d1117; color: #e6edf3; padding: 10px; border-radius: 6px; overflow: auto; max-height: 420px; font-size: 12px; }
.failure { border-left: 4px solid var(--fail); background: #fff5f5; padding: 8px 12px; margin: 8px 0; }
code { background: var(--bg); padding: 1px 4px; border-radius: 4px; }
ul { margin: 4px 0; padding-left: 20px; }
`;

function candidateSection(c: CandidateReport): string {
  const rows: string[] = [];
  rows.push(`<details class="candidate" id="candidate-${escapeHtml(c.name)}"${c.failure ? ' open' : ''}>`);
  rows.push(
    `<summary>${escapeHtml(c.name)} <span class="status ${c.status}">${escapeHtml(statusText(c))}</span></summary>`,
  );
  if (c.failure) {
    const f = c.failure;
    rows.push(
      `<div class="failure"><b>${escapeHtml(f.category)}</b> (${escapeHtml(f.origin)} problem): ${escapeHtml(f.message)}.<br>Hint: ${escapeHtml(f.hint)}.${f.evidence.length ? `<pre>${escapeHtml(f.evidence.join('\n'))}</pre>` : ''}</div>`,
    );
  }
  rows.push('<ul>');
  rows.push(
    `<li>repo <code>${escapeHtml(c.source.repo)}</code> at <code>${escapeHtml(c.source.ref)}</code> → <code>${escapeHtml(c.source.commit ?? 'not resolved')}</code></li>`,
  );
  rows.push(
    `<li>plan: ${escapeHtml(planLine(c))}<ul>${(c.plan?.reasons ?? []).map((r) => `<li>${escapeHtml(r)}</li>`).join('')}</ul></li>`,
  );
  if (c.image)
    rows.push(`<li>image <code>${escapeHtml(c.image.tag)}</code> (${formatBytes(c.image.sizeBytes)})</li>`);
  for (const o of c.outputs) {
    rows.push(
      `<li>output <code>${escapeHtml(o.pattern)}</code>: ${o.files.length ? o.files.map((f) => `<code>${escapeHtml(f.savedAs)}</code> (${formatBytes(f.bytes)})`).join(', ') : '<b>missing</b>'}</li>`,
    );
  }
  rows.push('</ul>');
  rows.push(
    `<details class="log"><summary>${escapeHtml(c.log.phase)} log, last ${c.log.lines.length} lines</summary><pre>${escapeHtml(c.log.lines.join('\n'))}</pre></details>`,
  );
  rows.push('</details>');
  return rows.join('\n');
}

// Memory in MiB so the axis steps are round binary sizes (64 MiB, not 67.1 MB).
const mib = (b: number | null) => (b === null ? 0 : b / 1024 ** 2);
const mibTick = (v: number) =>
  v === 0 ? '0' : v >= 1024 ? `${+(v / 1024).toFixed(2)} GiB` : `${+v.toFixed(1)} MiB`;

function timeChart(cs: CandidateReport[]): string {
  return barChart(
    'chart-time',
    'Build and run time per candidate',
    cs.map((c) => ({
      label: c.name,
      failed: c.status !== 'passed',
      segments: [
        { value: c.metrics.buildMs ?? 0, cls: 'build', title: `build ${formatMs(c.metrics.buildMs)}` },
        { value: c.metrics.runMs ?? 0, cls: 'run', title: `run ${formatMs(c.metrics.runMs)}` },
      ],
      note: c.metrics.runMs === null ? statusText(c) : `run ${formatMs(c.metrics.runMs)}`,
    })),
    (v) => (v === 0 ? '0' : formatMs(v)),
    [
      ['build', 'build'],
      ['run', 'run'],
    ],
  );
}

function memoryChart(cs: CandidateReport[]): string {
  return barChart(
    'chart-memory',
    'Peak memory per candidate (dashed: limit)',
    cs.map((c) => ({
      label: c.name,
      failed: c.status !== 'passed',
      segments: [
        {
          value: mib(c.metrics.peakMemoryBytes),
          cls: 'mem',
          title: `peak ${formatBytes(c.metrics.peakMemoryBytes)}`,
        },
      ],
      ...(c.metrics.memoryLimitBytes
        ? {
            marker: {
              value: mib(c.metrics.memoryLimitBytes),
              title: `limit ${formatBytes(c.metrics.memoryLimitBytes)}`,
            },
          }
        : {}),
      note: c.metrics.peakMemoryBytes === null ? 'not measured' : formatBytes(c.metrics.peakMemoryBytes),
    })),
    mibTick,
    [
      ['mem', 'peak memory'],
      ['limit', 'limit'],
    ],
  );
}

/** GPU memory only when a candidate used a GPU and nvidia-smi could measure it; else ''. */
function gpuChart(cs: CandidateReport[]): string {
  if (!cs.some((c) => c.metrics.gpuMemoryBytes !== null)) return '';
  return barChart(
    'chart-gpu-memory',
    'Peak GPU memory per candidate',
    cs.map((c) => ({
      label: c.name,
      failed: c.status !== 'passed',
      segments: [
        {
          value: mib(c.metrics.gpuMemoryBytes),
          cls: 'gpu',
          title: `GPU ${formatBytes(c.metrics.gpuMemoryBytes)}`,
        },
      ],
      note: c.metrics.gpuMemoryBytes === null ? 'not measured' : formatBytes(c.metrics.gpuMemoryBytes),
    })),
    mibTick,
    [['gpu', 'peak GPU memory']],
  );
}

/** The time, memory and (when measured) GPU memory charts. */
function measureCharts(cs: CandidateReport[]): { time: string; memory: string; gpu: string } {
  return { time: timeChart(cs), memory: memoryChart(cs), gpu: gpuChart(cs) };
}

export function renderHtmlReport(r: BakeoffReport): string {
  const cs = r.candidates;
  const { time: timeChart, memory: memChart, gpu: gpuChart } = measureCharts(cs);
  const gpu = gpuChart !== '';
  const table = [
    `<table id="status"><thead><tr><th class="num">rank</th><th>candidate</th><th>status</th><th class="num">run time</th><th class="num">build time</th><th class="num">peak memory</th>${gpu ? '<th class="num">GPU memory</th>' : ''}<th class="num">image</th><th>commit</th></tr></thead><tbody>`,
    ...cs.map(
      (c) =>
        `<tr data-status="${c.status}"><td class="num">${c.rank ?? '–'}</td><td><a href="#candidate-${escapeHtml(c.name)}">${escapeHtml(c.name)}</a></td><td class="status ${c.status}">${escapeHtml(statusText(c))}</td><td class="num">${formatMs(c.metrics.runMs)}</td><td class="num">${formatMs(c.metrics.buildMs)}</td><td class="num">${formatBytes(c.metrics.peakMemoryBytes)}</td>${gpu ? `<td class="num">${formatBytes(c.metrics.gpuMemoryBytes)}</td>` : ''}<td class="num">${formatBytes(c.metrics.imageSizeBytes)}</td><td><code>${escapeHtml(c.source.commit?.slice(0, 12) ?? '–')}</code></td></tr>`,
    ),
    '</tbody></table>',
  ].join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bakeoff report: ${escapeHtml(r.summary.best ?? 'no candidate passed')}</title>
<style>${CSS}${OUTPUTS_CSS}</style>
</head>
<body>
<h1>Bakeoff report</h1>
<p class="meta">Run <code>${escapeHtml(r.runId)}</code> at ${escapeHtml(r.createdAt)} from <code>${escapeHtml(r.config)}</code>; ranked by ${escapeHtml(rankingText(r, (m) => m))}.</p>
<p class="meta">Host: ${escapeHtml(hostLine(r))}.</p>
<div class="cards">
<div class="card"><b>${r.summary.passed} / ${r.summary.total}</b>passed</div>
<div class="card"><b>${escapeHtml(r.summary.best ?? '–')}</b>best</div>
<div class="card"><b>${r.summary.failed}</b>failed</div>
</div>
<h2>Status</h2>
${table}
${scoresHtml(r)}
<h2>Time</h2>
${timeChart}
<h2>Peak memory</h2>
${memChart}
${gpu ? `<h2>Peak GPU memory</h2>\n${gpuChart}\n` : ''}${outputsHtml(r)}
<h2>Candidates</h2>
${cs.map(candidateSection).join('\n')}
</body>
</html>
`;
}
