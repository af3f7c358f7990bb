// Small building blocks of the bakeoff reports: number formats, HTML escaping, and the
// inline SVG bar chart (no script, no external request), shared by the report's sections.

export function formatMs(ms: number | null): string {
  if (ms === null) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatBytes(b: number | null): string {
  if (b === null) return '–';
  if (b >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(2)} GiB`;
  if (b >= 1024 ** 2) return `${(b / 1024 ** 2).toFixed(1)} MiB`;
  if (b >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${b} B`;
}

export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );
}

/** 1, 2, 5 × 10^n steps so axis labels stay round. */
function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
}

export interface Bar {
  label: string;
  /** Stacked segments, drawn left to right. */
  segments: { value: number; cls: string; title: string }[];
  marker?: { value: number; title: string };
  note: string;
  failed: boolean;
}

/** The chart's geometry: margins, row height, and the value axis rounded to a nice step. */
interface ChartFrame {
  width: number;
  height: number;
  left: number;
  top: number;
  rowH: number;
  plotW: number;
  step: number;
  axisMax: number;
  x(v: number): number;
}

function chartFrame(bars: Bar[]): ChartFrame {
  const width = 760;
  const left = 170;
  const right = 90;
  const rowH = 28;
  const top = 30;
  const plotW = width - left - right;
  const max = Math.max(
    1,
    ...bars.map((b) =>
      Math.max(
        b.segments.reduce((s, x) => s + x.value, 0),
        b.marker?.value ?? 0,
      ),
    ),
  );
  const step = niceStep(max, 4);
  const axisMax = Math.ceil(max / step) * step;
  return {
    width,
    height: top + bars.length * rowH + 30,
    left,
    top,
    rowH,
    plotW,
    step,
    axisMax,
    x: (v) => left + (v / axisMax) * plotW,
  };
}

/** The grid lines with their ticks, then the legend's swatches. */
function chartAxes(f: ChartFrame, rows: number, format: (v: number) => string, legend: [string, string][]) {
  const parts: string[] = [];
  for (let v = 0; v <= f.axisMax + f.step / 2; v += f.step) {
    const gx = f.x(v).toFixed(1);
    parts.push(
      `<line class="grid" x1="${gx}" y1="${f.top - 6}" x2="${gx}" y2="${f.top + rows * f.rowH}"/>`,
      `<text class="tick" x="${gx}" y="${f.top + rows * f.rowH + 16}" text-anchor="middle">${escapeHtml(format(v))}</text>`,
    );
  }
  let lx = f.left;
  for (const [cls, name] of legend) {
    parts.push(
      `<rect class="${cls}" x="${lx}" y="6" width="12" height="12"/>`,
      `<text class="legend" x="${lx + 16}" y="16">${escapeHtml(name)}</text>`,
    );
    lx += 24 + name.length * 7;
  }
  return parts;
}

/** One bar: its label, stacked segments, the optional limit marker and the note after it. */
function chartBar(f: ChartFrame, b: Bar, i: number): string[] {
  const y = f.top + i * f.rowH;
  const parts = [
    `<g class="bar${b.failed ? ' failed' : ''}" data-candidate="${escapeHtml(b.label)}">`,
    `<text class="label" x="${f.left - 8}" y="${y + 17}" text-anchor="end">${escapeHtml(b.label)}</text>`,
  ];
  let at = 0;
  for (const s of b.segments) {
    const w = Math.max(s.value > 0 ? 1 : 0, (s.value / f.axisMax) * f.plotW);
    parts.push(
      `<rect class="${s.cls}" x="${f.x(at).toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${f.rowH - 10}"><title>${escapeHtml(s.title)}</title></rect>`,
    );
    at += s.value;
  }
  if (b.marker) {
    const mx = f.x(b.marker.value).toFixed(1);
    parts.push(
      `<line class="limit" x1="${mx}" y1="${y + 1}" x2="${mx}" y2="${y + f.rowH - 3}"><title>${escapeHtml(b.marker.title)}</title></line>`,
    );
  }
  parts.push(
    `<text class="value" x="${(f.x(at) + 6).toFixed(1)}" y="${y + 17}">${escapeHtml(b.note)}</text>`,
    '</g>',
  );
  return parts;
}

export function barChart(
  id: string,
  title: string,
  bars: Bar[],
  format: (v: number) => string,
  legend: [string, string][],
): string {
  const f = chartFrame(bars);
  return [
    `<svg id="${id}" class="chart" role="img" aria-labelledby="${id}-title" viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}" xmlns="http://www.w3.org/2000/svg">`,
    `<title id="${id}-title">${escapeHtml(title)}</title>`,
    ...chartAxes(f, bars.length, format, legend),
    ...bars.flatMap((b, i) => chartBar(f, b, i)),
    '</svg>',
  ].join('\n');
}
