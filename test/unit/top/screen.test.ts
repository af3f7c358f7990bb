// The screen of `mlship top`: goldens at 120 and 80 columns and on a narrow terminal (40),
// every line within the width (colour codes aside), colours only when asked; the keys; and
// the terminal handed back as it was — on q, on Ctrl-C, and only once.

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatMs, formatRate, renderTop } from '../../../src/cli/top-screen.js';
import type { TopSnapshot } from '../../../src/core/top/snapshot.js';
import { createStyler } from '../../../src/io/style.js';
import { keyAction, openScreen } from '../../../src/io/terminal.js';
import { expectGolden } from '../../helpers/golden.js';

const GOLDEN = 'test/golden/top';

const golden = (file: string, actual: string) => expectGolden(path.join(GOLDEN, file), actual);

const SNAPSHOT: TopSnapshot = {
  stack: 'shop',
  where: 'local',
  at: '2026-12-02T12:00:05.000Z',
  windowSeconds: 2,
  services: [
    {
      name: 'iris',
      role: 'model',
      versions: ['v1.4.2'],
      replicas: { running: 2, desired: 2 },
      requestsPerSecond: 184.25,
      p50Ms: 2.6859,
      p99Ms: 22.443,
      errorRate: 0,
      inFlight: 3,
    },
    {
      name: 'sentiment-classifier-large',
      role: 'model',
      versions: ['dev'],
      replicas: { running: 1, desired: 1 },
      requestsPerSecond: 3.5,
      p50Ms: 143.2,
      p99Ms: 1250,
      errorRate: 0.0286,
      inFlight: 1,
    },
    {
      name: 'iris-candidate',
      role: 'model',
      versions: [],
      replicas: { running: 0, desired: 1 },
      note: 'its /metrics could not be read: no such container',
    },
    { name: 'iris-worker', role: 'worker', versions: [], replicas: { running: 1, desired: 2 } },
    { name: 'proxy', role: 'proxy', versions: [], replicas: { running: 1, desired: 1 } },
  ],
  queues: [{ service: 'iris', name: 'shop-iris-jobs', waiting: 1204, inFlight: 10, deadLetters: 2 }],
  notes: [],
};

const visible = (line: string) => line.replace(/\x1b\[[0-9;]*m/g, '');

describe('the screen', () => {
  for (const width of [120, 80, 40]) {
    it(`at ${width} columns: golden, no line wider`, () => {
      const lines = renderTop(SNAPSHOT, width, createStyler(0));
      golden(`shop-${width}.txt`, `${lines.join('\n')}\n`);
      for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(width);
    });
  }

  it('degrades: role, then version, in-flight and replicas go before the numbers', () => {
    const header = (w: number) => renderTop(SNAPSHOT, w, createStyler(0))[2]!;
    expect(header(120)).toMatch(/ROLE .*VERSION .*REPLICAS .*REQ\/S .*P50 .*P99 .*5XX .*INFLIGHT/);
    expect(header(80)).not.toMatch(/ROLE/);
    expect(header(80)).toMatch(/VERSION/);
    for (const w of [60, 50, 40]) expect(header(w)).toMatch(/REQ\/S +P50 +P99 +5XX/);
    expect(header(50)).not.toMatch(/VERSION|INFLIGHT/);
  });

  it('colours with a colour styler (5xx share, missing replicas, dead letters); never wider', () => {
    const lines = renderTop(SNAPSHOT, 100, createStyler(1));
    expect(lines.join('\n')).toContain('\x1b[');
    expect(lines.find((l) => l.startsWith('sentiment'))).toContain('\x1b[31m  2.9%');
    for (const l of lines) expect(visible(l).length).toBeLessThanOrEqual(100);
    // Narrower than the columns that always stay: cut, plain.
    for (const l of renderTop(SNAPSHOT, 20, createStyler(1)))
      expect(visible(l).length).toBeLessThanOrEqual(20);
  });

  it('formats rates and durations for a glance', () => {
    expect([formatRate(undefined), formatRate(0), formatRate(12.345), formatRate(1534.4)]).toEqual([
      '-',
      '0.0',
      '12.3',
      '1534',
    ]);
    expect([formatMs(2.68), formatMs(143.2), formatMs(1250)]).toEqual(['2.7 ms', '143 ms', '1.25 s']);
  });
});

describe('keys and the terminal', () => {
  it('q, Q and Ctrl-D quit; Ctrl-C interrupts; r, space and Enter redraw; the rest is ignored', () => {
    expect(['q', 'Q', '\u0004', 'xq'].map(keyAction)).toEqual(['quit', 'quit', 'quit', 'quit']);
    expect(keyAction('\u0003')).toBe('interrupt');
    expect(['r', ' ', '\r'].map(keyAction)).toEqual(['refresh', 'refresh', 'refresh']);
    expect(['x', '\x1b[A', ''].map(keyAction)).toEqual([undefined, undefined, undefined]);
  });

  function fakeTerminal() {
    const calls: string[] = [];
    let listener: ((chunk: string) => void) | undefined;
    const input = {
      isTTY: true,
      setRawMode: (m: boolean) => calls.push(`raw ${m}`),
      setEncoding: () => undefined,
      on: (_: 'data', l: (chunk: string) => void) => {
        listener = l;
      },
      off: () => {
        listener = undefined;
        calls.push('off');
      },
      resume: () => calls.push('resume'),
      pause: () => calls.push('pause'),
    };
    let out = '';
    const output = { write: (t: string) => (out += t) };
    return { input, output, calls, press: (k: string) => listener?.(k), out: () => out };
  }

  it('raw mode and the alternate screen on open; a key reaches the handler; restored once', () => {
    const t = fakeTerminal();
    const actions: string[] = [];
    const screen = openScreen(t.input, t.output, (a) => actions.push(a));
    expect(t.calls).toEqual(['raw true', 'resume']);
    expect(t.out()).toBe('\x1b[?1049h\x1b[?25l');
    screen.draw(['a', 'b']);
    expect(t.out()).toContain('\x1b[Ha\x1b[K\r\nb\x1b[K\x1b[J');
    t.press('q');
    t.press('\u0003');
    expect(actions).toEqual(['quit', 'interrupt']);
    screen.restore();
    screen.restore();
    expect(t.calls).toEqual(['raw true', 'resume', 'off', 'raw false', 'pause']);
    expect(t.out().endsWith('\x1b[?25h\x1b[?1049l')).toBe(true);
    expect(t.out().match(/\x1b\[\?1049l/g)).toHaveLength(1);
    screen.draw(['after']);
    expect(t.out()).not.toContain('after');
  });

  it('without a terminal on stdin: no raw mode (Ctrl-C stays a signal)', () => {
    const t = fakeTerminal();
    t.input.isTTY = false;
    openScreen(t.input, t.output, () => undefined).restore();
    expect(t.calls).toEqual([]);
  });
});
