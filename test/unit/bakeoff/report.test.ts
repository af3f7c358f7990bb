// Ranking and the three report formats; the Markdown has a golden file (timestamp
// normalised), the HTML must be self-contained and escape everything it shows.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { rank } from '../../../src/core/bakeoff/bakeoff.js';
import { renderHtmlReport, renderMarkdownReport } from '../../../src/generators/bakeoff-report.js';
import type { BakeoffReport, CandidateReport } from '../../../src/generators/bakeoff-report-schema.js';

const UPDATE = process.env.UPDATE_GOLDEN === '1';

function cand(
  name: string,
  over: Partial<CandidateReport> & { runMs?: number | null; peak?: number | null } = {},
): CandidateReport {
  const { runMs = 1000, peak = 100 * 1024 ** 2, ...rest } = over;
  return {
    name,
    status: 'passed',
    rank: null,
    source: {
      repo: `https://example.com/${name}.git`,
      ref: 'main',
      commit: `${name.charCodeAt(0).toString(16)}`.padEnd(40, '0'),
    },
    plan: {
      python: '3.11',
      framework: null,
      cuda: null,
      flavor: 'slim',
      baseImage: 'python:3.11-slim',
      reasons: ['python:3.11-slim base: no CUDA in the image'],
    },
    image: { tag: `mlship-bakeoff/${name}:abc`, id: `sha256:${'a'.repeat(64)}`, sizeBytes: 200 * 1024 ** 2 },
    metrics: {
      cloneMs: 100,
      buildMs: 5000,
      runMs,
      containerMs: runMs === null ? null : runMs + 300,
      peakMemoryBytes: peak,
      memoryLimitBytes: 512 * 1024 ** 2,
      gpuMemoryBytes: null,
      imageSizeBytes: 200 * 1024 ** 2,
    },
    run: { exitCode: 0, timedOut: false, oomKilled: false, gpus: 0 },
    outputs: [
      {
        pattern: 'out/*.png',
        files: [{ path: '/workspace/repo/out/a.png', bytes: 2048, savedAs: 'out/a.png' }],
      },
    ],
    failure: null,
    log: { phase: 'run', lines: ['loading model', 'done'] },
    ...rest,
  };
}

const failed = cand('broken', {
  status: 'failed',
  runMs: null,
  peak: null,
  run: { exitCode: null, timedOut: false, oomKilled: false, gpus: 1 },
  outputs: [],
  failure: {
    category: 'dependency_install_failed',
    origin: 'candidate',
    message: 'installing the Python dependencies failed on <evil>',
    hint: 'pin another version',
    evidence: ['ERROR: No matching distribution found for <evil>'],
    package: '<evil>',
  },
  log: {
    phase: 'build',
    lines: ['<script>alert(1)</script>', 'ERROR: No matching distribution found for <evil>'],
  },
});

function report(candidates: CandidateReport[]): BakeoffReport {
  const ranked = rank(candidates, ['run_time', 'peak_memory']);
  return {
    schemaVersion: 1,
    tool: { name: 'mlship', version: '0.1.0' },
    runId: 'bakeoff-test',
    createdAt: '2026-01-01T00:00:00.000Z',
    config: 'bakeoff.yaml',
    rankBy: ['run_time', 'peak_memory'],
    host: {
      cpus: 2,
      memoryBytes: 8 * 1024 ** 3,
      engine: 'Docker 20.10.24 (API 1.41)',
      driver: null,
      gpus: [],
    },
    summary: {
      total: ranked.length,
      passed: ranked.filter((c) => c.status === 'passed').length,
      failed: ranked.filter((c) => c.status === 'failed').length,
      best: ranked.find((c) => c.rank === 1)?.name ?? null,
    },
    candidates: ranked,
  };
}

describe('ranking', () => {
  it('orders passed candidates by the metrics in order, unknown values last, failed ones after without a rank', () => {
    const ranked = rank(
      [
        failed,
        cand('slow', { runMs: 3000 }),
        cand('fast-big', { runMs: 1000, peak: 900 }),
        cand('fast-small', { runMs: 1000, peak: 100 }),
        cand('unmeasured', { runMs: null }),
      ],
      ['run_time', 'peak_memory'],
    );
    expect(ranked.map((c) => [c.name, c.rank])).toEqual([
      ['fast-small', 1],
      ['fast-big', 2],
      ['slow', 3],
      ['unmeasured', 4],
      ['broken', null],
    ]);
    expect(
      rank([cand('a', { peak: 5 }), cand('b', { peak: 1, runMs: 9999 })], ['peak_memory']).map((c) => c.name),
    ).toEqual(['b', 'a']);
  });
});

describe('Markdown report', () => {
  it('matches the golden file', () => {
    const text = renderMarkdownReport(
      report([cand('alpha', { runMs: 2500 }), cand('beta', { runMs: 1500 }), failed]),
    );
    const file = path.join('test/golden/bakeoff', 'report.md');
    if (UPDATE || !existsSync(file)) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, text);
    }
    expect(text, 'regenerate with UPDATE_GOLDEN=1 if the change is intended').toBe(
      readFileSync(file, 'utf8'),
    );
    expect(text).toMatch(/\| 1 \| beta \| passed \| 1\.5 s/);
    expect(text).toMatch(/### broken: dependency_install_failed \(candidate\)/);
  });
});

describe('HTML report', () => {
  const html = renderHtmlReport(report([cand('alpha'), cand('beta', { runMs: 1500 }), failed]));

  it('is self-contained: no script, no external URL, no external stylesheet or image', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link\b/i);
    // Anchors, and the copied outputs next to the report (relative, never leaving outputs/).
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(
      urls.filter((u) => !u.startsWith('#')).every((u) => /^outputs\/[^:]+$/.test(u) && !u.includes('..')),
    ).toBe(true);
    // The only URLs are the SVG namespace and the candidates' repositories, shown as text.
    const external = (html.match(/https?:\/\/[^\s"<]+/g) ?? []).filter(
      (u) => u !== 'http://www.w3.org/2000/svg' && !u.startsWith('https://example.com/'),
    );
    expect(external).toEqual([]);
  });

  it('escapes log lines and messages', () => {
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('failed on &lt;evil&gt;');
    expect(html).not.toContain('<evil>');
  });

  it('adds a GPU memory chart and column only when a GPU was measured', () => {
    expect(html).not.toContain('chart-gpu-memory');
    const gpu = renderHtmlReport(
      report([
        cand('alpha', { metrics: { ...cand('alpha').metrics, gpuMemoryBytes: 3 * 1024 ** 3 } }),
        cand('beta'),
      ]),
    );
    expect(gpu).toContain('<svg id="chart-gpu-memory"');
    expect(gpu).toContain('<th class="num">GPU memory</th>');
    expect(gpu).toContain('3.00 GiB');
  });

  it('draws one bar per candidate in both charts, a limit marker, and one table row each', () => {
    for (const id of ['chart-time', 'chart-memory']) {
      const svg = html.slice(
        html.indexOf(`<svg id="${id}"`),
        html.indexOf('</svg>', html.indexOf(`<svg id="${id}"`)),
      );
      expect(svg.match(/<g class="bar/g)?.length, id).toBe(3);
    }
    expect(html.match(/<line class="limit"/g)?.length).toBe(3);
    expect(html.match(/<tr data-status=/g)?.length).toBe(3);
    expect(html.match(/<details class="log">/g)?.length).toBe(3);
  });
});
