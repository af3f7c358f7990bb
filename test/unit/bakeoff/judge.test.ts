// What judges candidates on the user's task: score output parsing, ranking by scores in
// either direction, download failures told apart by origin, output previews, and the
// side-by-side outputs and scores in the report.

import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RankSchema } from '../../../src/config/bakeoff-schema.js';
import { classifyRun } from '../../../src/core/bakeoff/classify.js';
import { previewFile } from '../../../src/core/bakeoff/outputs.js';
import { rank, rankingOf } from '../../../src/core/bakeoff/report.js';
import { parseScore } from '../../../src/core/bakeoff/score.js';
import { renderHtmlReport, renderMarkdownReport } from '../../../src/generators/bakeoff-report.js';
import type { BakeoffReport, CandidateReport } from '../../../src/generators/bakeoff-report-schema.js';

function cand(
  name: string,
  runMs: number,
  metrics: Record<string, number> | null,
  over: Partial<CandidateReport> = {},
): CandidateReport {
  return {
    name,
    status: 'passed',
    rank: null,
    source: { repo: `./${name}`, ref: 'HEAD', commit: 'a'.repeat(40) },
    plan: null,
    image: null,
    metrics: {
      cloneMs: 1,
      buildMs: 1,
      runMs,
      containerMs: runMs + 100,
      peakMemoryBytes: 1,
      memoryLimitBytes: null,
      gpuMemoryBytes: null,
      imageSizeBytes: 1,
    },
    run: { exitCode: 0, timedOut: false, oomKilled: false, gpus: 0 },
    outputs: [],
    failure: null,
    ...(metrics ? { score: { metrics, failure: null, ms: 200 } } : {}),
    log: { phase: 'run', lines: [] },
    ...over,
  };
}

const run = {
  exitCode: 1,
  timedOut: false,
  oomKilled: false,
  timeoutMs: 60_000,
  gpusRequested: false,
  missingOutputs: [],
};

describe('scores', () => {
  it('the last JSON object of numbers counts; log lines around it do not matter', () => {
    expect(
      parseScore(['loading', '{"pck": 0.5}', '{"pck": 0.83, "latency_ms": 41}', 'bye'], ['pck']),
    ).toEqual({ metrics: { pck: 0.83, latency_ms: 41 } });
    // A metric may be called anything, "category" and "failure" included.
    expect(parseScore(['{"category": 3, "failure": 0}'], [])).toEqual({
      metrics: { category: 3, failure: 0 },
    });
  });

  it('no JSON, non-numbers, or a metric rank_by needs but the command did not print: score_failed', () => {
    expect(parseScore(['accuracy: 0.9'], [])).toMatchObject({
      failure: { category: 'score_failed', origin: 'config' },
    });
    expect(parseScore(['{"pck": "high"}'], [])).toMatchObject({
      failure: { message: expect.stringMatching(/pck/) },
    });
    expect(parseScore(['{"acc": 1}'], ['pck'])).toMatchObject({
      failure: { message: expect.stringMatching(/no pck/) },
    });
  });

  it('rank_by takes built-ins bare and scores with their direction; a bare score is refused', () => {
    expect(RankSchema.parse(['run_time', { 'score.pck': 'desc' }])).toEqual([
      'run_time',
      { 'score.pck': 'desc' },
    ]);
    expect(RankSchema.safeParse(['score.pck']).success).toBe(false);
    expect(RankSchema.safeParse([{ 'score.pck': 'up' }]).success).toBe(false);
    expect(rankingOf(['run_time', { 'score.pck': 'desc' }])).toEqual([
      { metric: 'run_time', direction: 'asc' },
      { metric: 'score.pck', direction: 'desc' },
    ]);
  });

  it('ranking by a score puts the best first even when it is the slowest; unscored candidates last', () => {
    const ranked = rank(
      [
        cand('fast', 100, { pck: 0.41 }),
        cand('best', 9000, { pck: 0.93 }),
        cand('mid', 500, { pck: 0.7 }),
        cand('unscored', 50, null),
      ],
      [{ 'score.pck': 'desc' }, 'run_time'],
    );
    expect(ranked.map((c) => [c.name, c.rank])).toEqual([
      ['best', 1],
      ['mid', 2],
      ['fast', 3],
      ['unscored', 4],
    ]);
    // Ascending scores (a latency) rank the lowest first.
    expect(rank([cand('a', 1, { ms: 40 }), cand('b', 1, { ms: 20 })], [{ 'score.ms': 'asc' }])[0]!.name).toBe(
      'b',
    );
  });
});

describe('download failures', () => {
  it('a 404 or an auth error is the candidate’s (huggingface_hub, transformers, urllib, requests)', () => {
    for (const line of [
      'huggingface_hub.errors.RepositoryNotFoundError: 404 Client Error. (Request ID: Root=1-abc)',
      'requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://huggingface.co/org/private/resolve/main/model.bin',
      'urllib.error.HTTPError: HTTP Error 404: Not Found',
      "OSError: org/nope is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'",
    ]) {
      const f = classifyRun({ ...run, log: ['Traceback (most recent call last):', line] });
      expect(f, line).toMatchObject({ category: 'download_failed', origin: 'candidate' });
    }
  });

  it('an unreachable network or hub is the host’s, with how to pre-fetch into the cache', () => {
    for (const line of [
      'urllib.error.URLError: <urlopen error [Errno 111] Connection refused>',
      "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded with url: /bert/resolve/main/config.json (Caused by NewConnectionError('Failed to establish a new connection: [Errno -3] Temporary failure in name resolution'))",
      "OSError: We couldn't connect to 'https://huggingface.co' to load this file, couldn't find it in the cached files",
      'huggingface_hub.errors.LocalEntryNotFoundError: An error happened while trying to locate the file on the Hub',
    ]) {
      const f = classifyRun({ ...run, log: [line], weightsCache: '/home/u/.cache/mlship/weights' });
      expect(f, line).toMatchObject({ category: 'download_failed', origin: 'host' });
      expect(f!.hint).toContain('/home/u/.cache/mlship/weights/huggingface');
    }
    const f = classifyRun({
      ...run,
      log: [
        'urllib.error.URLError: <urlopen error [Errno 111] Connection refused> for http://10.0.0.1:8000/w.bin',
      ],
    });
    expect(f!.message).toContain('http://10.0.0.1:8000/w.bin');
  });

  it('the URL comes from the line that announced the download when the error does not name it', () => {
    const f = classifyRun({
      ...run,
      log: [
        'Downloading: "http://hub.local/w/model.bin" to /mlship/weights/torch/hub/checkpoints/model.bin',
        'urllib.error.HTTPError: HTTP Error 404: Not Found',
      ],
    });
    expect(f).toMatchObject({
      origin: 'candidate',
      message: expect.stringContaining('http://hub.local/w/model.bin'),
    });
    // The announcement on stdout, the traceback on stderr: the engine may return them either way round.
    const swapped = classifyRun({
      ...run,
      log: [
        'Traceback (most recent call last):',
        'urllib.error.HTTPError: HTTP Error 404: Not Found',
        'Downloading: "http://hub.local/w/model.bin" to /mlship/weights/torch/hub/checkpoints/model.bin',
      ],
    });
    expect(swapped!.message).toContain('http://hub.local/w/model.bin');
  });

  it('an ordinary crash is still nonzero_exit', () => {
    expect(classifyRun({ ...run, log: ['ValueError: bad input'] })?.category).toBe('nonzero_exit');
  });
});

describe('output previews', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-preview-'));
  const file = (name: string, content: string | Buffer) => {
    const p = path.join(dir, name);
    writeFileSync(p, content);
    return p;
  };

  it('images by extension, JSON pretty-printed, long text truncated, binary listed only', async () => {
    expect(await previewFile(file('a.png', Buffer.from([0x89, 0x50])))).toEqual({ kind: 'image' });
    expect(await previewFile(file('b.json', '{"k":[1,2]}'))).toEqual({
      kind: 'json',
      text: '{\n  "k": [\n    1,\n    2\n  ]\n}',
    });
    const long = await previewFile(file('c.txt', 'x'.repeat(5000)));
    expect(long).toMatchObject({ kind: 'text', truncated: true });
    expect(long.text).toHaveLength(2048);
    expect(await previewFile(file('d.bin', Buffer.from([1, 0, 2])))).toEqual({ kind: 'other' });
    expect(await previewFile(path.join(dir, 'missing.txt'))).toEqual({ kind: 'other' });
  });
});

describe('report: scores and outputs side by side', () => {
  const file = (
    savedAs: string,
    bytes: number,
    preview: NonNullable<CandidateReport['outputs'][0]['files'][0]['preview']>,
  ) => ({
    path: `/workspace/repo/${savedAs}`,
    bytes,
    savedAs,
    preview,
  });
  const a = cand(
    'alpha',
    100,
    { pck: 0.4 },
    {
      inputs: ['cat.jpg', 'dog.jpg'],
      outputs: [
        {
          pattern: 'out/*.png',
          files: [file('out/cat.png', 900, { kind: 'image' }), file('out/dog.png', 800, { kind: 'image' })],
        },
        {
          pattern: 'out/*.json',
          files: [file('out/cat.json', 20, { kind: 'json', text: '{\n  "label": "<cat>"\n}' })],
        },
      ],
    },
  );
  const b = cand(
    'beta',
    900,
    { pck: 0.9 },
    {
      inputs: ['cat.jpg', 'dog.jpg'],
      outputs: [
        {
          pattern: 'result/**',
          files: [
            file('result/cat/mask.png', 700, { kind: 'image' }),
            file('result/summary.txt', 9000, { kind: 'text', text: 'long', truncated: true }),
          ],
        },
      ],
    },
  );
  const ranked = rank([a, b], [{ 'score.pck': 'desc' }]);
  const r: BakeoffReport = {
    schemaVersion: 1,
    tool: { name: 'mlship', version: '0.0.0' },
    runId: 'r',
    createdAt: '2026-12-02T00:00:00.000Z',
    config: 'bakeoff.yaml',
    rankBy: ['score.pck'],
    ranking: [{ metric: 'score.pck', direction: 'desc' }],
    host: { cpus: 2, memoryBytes: 1, engine: 'Docker', driver: null, gpus: [] },
    summary: { total: 2, passed: 2, failed: 0, best: 'beta' },
    candidates: ranked,
  };
  const html = renderHtmlReport(r);

  it('one row per input, one column per candidate; files that belong to no input get rows of their own', () => {
    const rows = [...html.matchAll(/<tr data-input="([^"]+)">/g)].map((m) => m[1]);
    expect(rows).toEqual(['cat.jpg', 'dog.jpg', 'result/summary.txt']);
    const cat = /<tr data-input="cat.jpg">([\s\S]*?)<\/tr>/.exec(html)![1]!;
    // beta first (rank 1), then alpha; thumbnails link to the full file next to the report.
    expect(cat.indexOf('outputs/beta/result/cat/mask.png')).toBeLessThan(
      cat.indexOf('outputs/alpha/out/cat.png'),
    );
    expect(cat).toContain('<a href="outputs/alpha/out/cat.png" target="_blank"><img class="thumb"');
    expect(cat).toContain('&quot;label&quot;: &quot;&lt;cat&gt;&quot;');
    expect(html).toContain('full file (8.8 KiB)');
  });

  it('a scores table with the best value marked, a chart per metric, and directions in the ranking line', () => {
    expect(html).toMatch(/<tr data-candidate="beta"><td>beta<\/td><td class="num best">0.9<\/td>/);
    expect(html).toContain('id="chart-score-pck"');
    expect(html).toContain('ranked by score.pck (higher is better)');
    const md = renderMarkdownReport(r);
    expect(md).toContain('## Scores');
    expect(md).toContain('| beta | 0.9 |');
  });
});
