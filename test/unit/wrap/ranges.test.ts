// Number ranges of a wrapped service (src/core/wrap/ranges.ts, mlship.yaml's ranges:): the examples'
// ranges are hints, declared ones limits unless strict: false; mistakes are refused at their line or
// with the fix, before anything is written.

import { describe, expect, it } from 'vitest';
import {
  exampleRanges,
  type RangeContext,
  resolveRanges,
  splitExamples,
} from '../../../src/core/wrap/ranges.js';
import { UsageError } from '../../../src/io/errors.js';
import { configProblems } from '../../helpers/config-problems.js';

const python: RangeContext = { runtime: 'python', userSchema: false, example: { x: 0.5, y: 2, name: 'a' } };

describe('number ranges', () => {
  it('an example file with a list: the first is the example, all of them give the ranges', () => {
    const read = [
      { x: 0.5, y: 2, name: 'a' },
      { x: -1, y: 2, name: 'b' },
      { x: 3, y: 'n/a', name: 'c' },
    ];
    const { example, examples } = splitExamples(read, 'ex.json');
    expect(example).toEqual(read[0]);
    expect(exampleRanges(examples)).toEqual({
      x: { minimum: -1, maximum: 3, strict: false, from: 'examples' },
    });
    // One example says nothing about a range.
    expect(exampleRanges([read[0]!])).toEqual({});
    expect(splitExamples({ x: 1 }, 'ex.json')).toEqual({ example: { x: 1 }, examples: [{ x: 1 }] });
    expect(() => splitExamples([], 'ex.json')).toThrow(/ex\.json: the list is empty/);
    expect(() => splitExamples([{ x: 1 }, 2], 'ex.json')).toThrow(/item 1 is not a request object/);
  });

  it("a declared range replaces the examples' hint and is a limit unless strict: false", () => {
    const examples = [python.example, { x: 0.9, y: 4, name: 'b' }];
    const { ranges, notes } = resolveRanges(
      examples,
      { x: [0, 1], y: { maximum: 10, strict: false } },
      python,
    );
    expect(ranges).toEqual({
      x: { minimum: 0, maximum: 1, strict: true, from: 'mlship.yaml' },
      y: { maximum: 10, strict: false, from: 'mlship.yaml' },
    });
    expect(notes).toEqual(['ranges from mlship.yaml: x (a limit), y (a hint)']);
    expect(resolveRanges(examples, { x: [0, 1] }, python).notes).toEqual([
      'ranges of y from 2 examples: hints, not limits',
      'ranges from mlship.yaml: x (a limit)',
    ]);
    expect(resolveRanges([python.example], undefined, python)).toEqual({ notes: [] });
  });

  it('refuses what would not work, saying the fix', () => {
    const refused = (declared: Parameters<typeof resolveRanges>[1], ctx = python) => {
      try {
        resolveRanges([ctx.example], declared, ctx);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return `${(e as UsageError).message} / ${(e as UsageError).hint}`;
      }
      return 'accepted';
    };
    expect(refused({ z: [0, 1] })).toBe(
      'mlship.yaml, ranges.z: the example has no number field "z" / its number fields: x, y',
    );
    expect(refused({ name: [0, 1] })).toMatch(/^mlship\.yaml, ranges\.name: the example has no number field/);
    // The example is the warm-up call: a limit that refuses it would keep the service from starting.
    expect(refused({ y: [0, 1] })).toMatch(/example's 2 is outside \[0, 1\].*fix the range or the example/);
    expect(refused({ y: { maximum: 1, strict: false } })).toBe('accepted');
    expect(refused({ x: [0, 1] }, { ...python, userSchema: true })).toMatch(/--schema.*Field\(ge=0, le=1\)/);
    expect(refused({ x: [0, 1] }, { ...python, runtime: 'node' })).toMatch(/Node runtime.*--runtime python/);
  });

  it("on Node and with your own request model the examples' ranges are not published, and it says so", () => {
    const examples = [python.example, { x: 0.9, y: 4, name: 'b' }];
    expect(resolveRanges(examples, undefined, { ...python, runtime: 'node' })).toEqual({
      notes: ['2 examples: the first is the example; their ranges are not published (not on Node yet)'],
    });
    expect(resolveRanges(examples, undefined, { ...python, userSchema: true }).ranges).toBeUndefined();
  });

  it('mistakes in mlship.yaml are reported at their line', () => {
    const brief = configProblems([
      'version: 1',
      'name: demo',
      'services:',
      '  iris:',
      '    ranges:',
      '      a: [3, 1]',
      '      b: { strict: false }',
      '      c: { minimum: 2, maximum: 1 }',
      '      d: [0, 1]',
    ]);
    expect(brief['services.iris.ranges.a']).toBe('6: must be [minimum, maximum] with minimum <= maximum / ');
    expect(brief['services.iris.ranges.b']).toBe('7: give minimum, maximum or both / ');
    expect(brief['services.iris.ranges.c.minimum']).toBe('8: minimum must not be larger than maximum / ');
    const lines = Object.keys(brief);
    expect(lines.some((l) => /ranges\.d/.test(l))).toBe(false);
  });
});
