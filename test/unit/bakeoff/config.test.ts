// bakeoff.yaml and the bakeoff: section of mlship.yaml: one schema, every problem located.

import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findBakeoffConfig, loadBakeoffConfig } from '../../../src/core/bakeoff/config.js';
import { ConfigError, UsageError } from '../../../src/io/errors.js';

function write(name: string, text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-bakeoff-config-'));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('bakeoff config', () => {
  it('loads the fixture with defaults filled in', async () => {
    const config = await loadBakeoffConfig('fixtures/bakeoff/bakeoff.yaml');
    expect(Object.keys(config.candidates)).toEqual(['ok', 'deps-fail', 'hang', 'oom', 'no-output']);
    expect(config.candidates.ok).toMatchObject({
      ref: 'HEAD',
      framework: 'none',
      cuda: 'auto',
      gpus: 0,
      outputs: ['out/*.txt'],
    });
    expect(config.candidates.ok!.setup).toBeUndefined();
    expect(config.rank_by).toEqual(['run_time', 'peak_memory']);
  });

  it('reports every problem at once with file:line:column, field path and fix', async () => {
    const file = write(
      'bakeoff.yaml',
      [
        'candidates:',
        '  Bad_Name:',
        '    repo: x',
        '    run: python a.py',
        '  det:',
        '    repo: https://example.com/det.git',
        '    python: 3.11',
        '    cuda: twelve',
        '    timout: 5m',
        '    memory: 4GB',
        '    framework: jax',
        'rank_by: [speed]',
      ].join('\n'),
    );
    const error = await loadBakeoffConfig(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p]));
    expect(byPath['candidates.det.run']?.message).toBe('required field is missing');
    expect(byPath['candidates.det.python']).toMatchObject({ line: 7, fix: 'quote it: "3.11"' });
    expect(byPath['candidates.det.timout']).toMatchObject({
      line: 9,
      column: 5,
      fix: 'did you mean "timeout"?',
    });
    expect(byPath['candidates.det.memory']?.line).toBe(10);
    expect(byPath['candidates.det.framework']?.fix).toMatch(/"torch", "tensorflow", "none"/);
    expect(byPath['candidates.det.cuda']?.line).toBe(8);
    expect(byPath['rank_by[0]']?.line).toBe(12);
    expect(problems.some((p) => p.path === 'candidates.Bad_Name')).toBe(true);
    expect(problems.length).toBeGreaterThanOrEqual(8);
  });

  it('reads the bakeoff: section of mlship.yaml with the same schema, located in mlship.yaml', async () => {
    const file = write(
      'mlship.yaml',
      [
        'name: demo',
        'bakeoff:',
        '  candidates:',
        '    a:',
        '      repo: ./a',
        '      run: python a.py',
        '      gpus: -1',
      ].join('\n'),
    );
    const error = (await loadBakeoffConfig(file).catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.problems[0]).toMatchObject({ path: 'bakeoff.candidates.a.gpus', line: 7 });
    const ok = write(
      'mlship.yaml',
      ['name: demo', 'bakeoff:', '  candidates:', '    a: { repo: ./a, run: python a.py }'].join('\n'),
    );
    expect((await loadBakeoffConfig(ok)).candidates.a?.timeout).toBe('15m');
    const none = write('mlship.yaml', 'name: demo\n');
    await expect(loadBakeoffConfig(none)).rejects.toThrow(/no bakeoff: section/);
  });

  it('finds bakeoff.yaml, then mlship.yaml; says what to do when there is neither', async () => {
    const dir = path.dirname(write('mlship.yaml', 'name: x\n'));
    expect(await findBakeoffConfig(dir, undefined)).toBe('mlship.yaml');
    writeFileSync(path.join(dir, 'bakeoff.yaml'), '');
    expect(await findBakeoffConfig(dir, undefined)).toBe('bakeoff.yaml');
    const empty = mkdtempSync(path.join(os.tmpdir(), 'mlship-empty-'));
    await expect(findBakeoffConfig(empty, undefined)).rejects.toBeInstanceOf(UsageError);
  });
});
