// The text of a `wrap --compile/--quantize` report: what was checked, how equal the
// answers are, and size and latency before and after (ratios included).

import type { CompileReport } from '../core/wrap/compile.js';

function size(bytes: number): string {
  return bytes >= 1024 * 1024
    ? `${(bytes / 1024 / 1024).toFixed(1)} MiB`
    : `${(bytes / 1024).toFixed(1)} KiB`;
}

function ms(value: number): string {
  return value >= 10 ? `${value.toFixed(1)} ms` : `${value.toPrecision(2)} ms`;
}

function ratio(after: number, before: number): string {
  if (!(before > 0)) return 'n/a';
  const r = after / before;
  return `${r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}x`;
}

export function renderCompileReport(r: CompileReport): string[] {
  const what = [
    r.compile ? `converted to ONNX (${r.from} → onnxruntime)` : '',
    r.quantize ? 'int8-quantized' : '',
  ]
    .filter(Boolean)
    .join(', ');
  const labels = r.labels ? `labels ${r.labels.matched}/${r.labels.total} equal; ` : '';
  const { before, after } = r.latencyMs;
  return [
    `${what}: answers checked equal on ${r.rows} inputs`,
    `  inputs: ${r.checkedOn}`,
    `  ${labels}${r.output === 'labels' ? '' : `${r.output === 'values' ? 'values' : 'probabilities'} within ${r.tolerance} (max difference ${r.maxDifference.toPrecision(2)})`}`,
    `  size: ${size(r.sizeBytes.before)} → ${size(r.sizeBytes.after)} (${ratio(r.sizeBytes.after, r.sizeBytes.before)})`,
    `  latency, one thread: 1 row ${ms(before['1'])} → ${ms(after['1'])} (${ratio(after['1'], before['1'])}); 64 rows ${ms(before['64'])} → ${ms(after['64'])} (${ratio(after['64'], before['64'])})`,
    '  (full report: compile-report.json)',
  ];
}
