import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CleanupRegistry } from '../../../src/io/cleanup.js';
import { StreamIoHost } from '../../../src/io/io-host.js';
import { PlainTaskRunner, runPool, wantsLiveProgress } from '../../../src/io/progress.js';
import { DefaultsPrompter } from '../../../src/io/prompts.js';
import { installSignalHandlers } from '../../../src/io/signals.js';
import { colorLevel, createStyler } from '../../../src/io/style.js';

function sink(): Writable & { text: string } {
  const w = new Writable({
    write(chunk, _e, cb) {
      w.text += chunk.toString();
      cb();
    },
  }) as Writable & { text: string };
  w.text = '';
  return w;
}

describe('colour', () => {
  it('FORCE_COLOR beats NO_COLOR beats the terminal', () => {
    expect(colorLevel({ NO_COLOR: '1' }, true)).toBe(0);
    expect(colorLevel({ FORCE_COLOR: '1', NO_COLOR: '1' }, false)).toBe(1);
    expect(colorLevel({ FORCE_COLOR: '0' }, true)).toBe(0);
    expect(colorLevel({}, false)).toBe(0);
    expect(colorLevel({}, true)).toBe(1);
    expect(colorLevel({ TERM: 'dumb' }, true)).toBe(0);
    expect(createStyler(0)('fail', 'x')).toBe('x');
    expect(createStyler(1)('fail', 'x')).toBe('\u001b[31mx\u001b[39m');
  });
});

describe('progress', () => {
  it('live progress only on a TTY outside CI', () => {
    expect(wantsLiveProgress({}, true)).toBe(true);
    expect(wantsLiveProgress({ CI: 'true' }, true)).toBe(false);
    expect(wantsLiveProgress({}, false)).toBe(false);
  });

  it('plain runner prints one line per state change and collects failures', async () => {
    const err = sink();
    const runner = new PlainTaskRunner(err, createStyler(0));
    const outcomes = await runner.run(
      [
        { title: 'build a', run: async (c) => c.output('step 1/2') },
        {
          title: 'build b',
          run: async () => {
            throw new Error('no space left');
          },
        },
      ],
      { exitOnError: false },
    );
    expect(outcomes.map((o) => o.ok)).toEqual([true, false]);
    expect(err.text).toMatch(
      /^• build a\n {2}build a: step 1\/2\n✓ build a \(\d+\.\ds\)\n• build b\n✗ build b \(\d+\.\ds\): no space left\n$/,
    );
  });

  it('the pool respects its concurrency limit', async () => {
    let running = 0;
    let peak = 0;
    const task = (i: number) => ({
      title: `t${i}`,
      run: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
      },
    });
    const outcomes = await runPool(
      Array.from({ length: 6 }, (_, i) => task(i)),
      { concurrent: 2 },
      () => ({ title() {}, output() {} }),
    );
    expect(outcomes).toHaveLength(6);
    expect(peak).toBe(2);
  });
});

describe('cleanups and signals', () => {
  it('runs every registered cleanup once, newest first, bounded by a timeout', async () => {
    const reg = new CleanupRegistry();
    const order: string[] = [];
    reg.add('a', () => {
      order.push('a');
    });
    const un = reg.add('b', () => {
      order.push('b');
    });
    reg.add('slow', () => new Promise(() => undefined));
    reg.add('c', () => {
      order.push('c');
    });
    un();
    const errors: string[] = [];
    await reg.runAll(50, (name) => errors.push(name));
    expect(order).toEqual(['c', 'a']);
    expect(errors).toEqual(['slow']);
    expect(reg.size).toBe(0);
  });

  it('SIGINT runs cleanups then exits 130; a second signal exits at once', async () => {
    const source = new EventEmitter();
    const reg = new CleanupRegistry();
    let cleaned = false;
    reg.add('container', async () => {
      await new Promise((r) => setTimeout(r, 10));
      cleaned = true;
    });
    const exits: number[] = [];
    const lines: string[] = [];
    const uninstall = installSignalHandlers(
      source as unknown as Parameters<typeof installSignalHandlers>[0],
      reg,
      (l) => lines.push(l),
      (c) => exits.push(c),
    );
    source.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([]);
    await new Promise((r) => setTimeout(r, 40));
    expect(cleaned).toBe(true);
    expect(exits).toEqual([130]);
    source.emit('SIGTERM', 'SIGTERM');
    expect(exits).toEqual([130, 130]);
    expect(lines[0]).toMatch(/SIGINT: cleaning up \(1 item\)/);
    uninstall();
    expect(source.listenerCount('SIGINT')).toBe(0);
  });
});

describe('one JSON object on stdout', () => {
  const host = (json: boolean) => {
    const stdout = sink();
    const stderr = sink();
    const io = new StreamIoHost({
      streams: { stdout, stderr },
      json,
      debug: false,
      style: createStyler(0),
      prompter: new DefaultsPrompter(),
      tasks: new PlainTaskRunner(stderr, createStyler(0)),
    });
    return { io, stdout };
  };

  it('a failure after the result does not add a second object (it was written past the guard before)', () => {
    const { io, stdout } = host(true);
    io.result({ ok: false, removed: [] }, 'text');
    io.failure({ code: 'AWS_ERROR', message: 'late' });
    expect(JSON.parse(stdout.text)).toEqual({ ok: false, removed: [] });
  });

  it('a failure before any result is the JSON answer; without --json stdout stays empty', () => {
    const json = host(true);
    json.io.failure({ code: 'USAGE', message: 'bad' });
    expect(JSON.parse(json.stdout.text)).toEqual({ ok: false, error: { code: 'USAGE', message: 'bad' } });
    const text = host(false);
    text.io.failure({ code: 'USAGE', message: 'bad' });
    expect(text.stdout.text).toBe('');
  });
});
