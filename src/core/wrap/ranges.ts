// The ranges of a service's number fields (issue 18: "numbers with their ranges"). Two sources:
// - several example requests (an example file holding a JSON list): each number field's smallest
//   and largest value over them, a HINT the front end shows and never a limit — a few examples are
//   not the model's domain, and a service refusing a value merely unseen would break real callers;
// - mlship.yaml's `ranges:`, declared: a LIMIT the service enforces (422 naming the field) unless
//   `strict: false`. A declared range replaces what the examples suggest.

import type { z } from 'zod';
import type { RangeSchema } from '../../config/range-schema.js';
import type { JsonValue } from '../../generators/wrap-input.js';
import type { NumberRange } from '../../generators/wrap-spec.js';
import { UsageError } from '../../io/errors.js';

type DeclaredRange = z.infer<typeof RangeSchema>;

/** The example (the first request) and all of them, from an example file's content. */
export function splitExamples(read: JsonValue, file: string): { example: JsonValue; examples: JsonValue[] } {
  if (!Array.isArray(read)) return { example: read, examples: [read] };
  const bad = read.findIndex((e) => e === null || typeof e !== 'object' || Array.isArray(e));
  if (read.length === 0 || bad >= 0) {
    throw new UsageError(
      `example input ${file}: ${read.length === 0 ? 'the list is empty' : `item ${bad} is not a request object`}`,
      {
        hint: 'give one request body, or a list of them: [{"x": 1.5}, {"x": 3.2}] (the first is the example)',
      },
    );
  }
  return { example: read[0]!, examples: read };
}

/** Each scalar number field's range over the examples (only with two examples or more). */
export function exampleRanges(examples: JsonValue[]): Record<string, NumberRange> {
  const ranges: Record<string, NumberRange> = {};
  if (examples.length < 2) return ranges;
  const first = examples[0] as Record<string, JsonValue>;
  for (const name of Object.keys(first)) {
    const values = examples.map((e) => (e as Record<string, JsonValue>)[name]);
    if (!values.every((v) => typeof v === 'number')) continue;
    const numbers = values as number[];
    ranges[name] = {
      minimum: Math.min(...numbers),
      maximum: Math.max(...numbers),
      strict: false,
      from: 'examples',
    };
  }
  return ranges;
}

export interface RangeContext {
  runtime: 'python' | 'node';
  /** Your own request model (--schema): its constraints are the ranges. */
  userSchema: boolean;
  /** The example request: declared fields must be its numbers, inside their strict range. */
  example: JsonValue;
}

/** A declared range for the spec, checked against the example. */
function declared(name: string, range: DeclaredRange, example: Record<string, JsonValue>): NumberRange {
  const r = Array.isArray(range) ? { minimum: range[0], maximum: range[1], strict: true } : range;
  const value = example[name];
  if (typeof value !== 'number') {
    const numbers = Object.keys(example).filter((k) => typeof example[k] === 'number');
    throw new UsageError(`mlship.yaml, ranges.${name}: the example has no number field "${name}"`, {
      hint: numbers.length ? `its number fields: ${numbers.join(', ')}` : 'the example has no number field',
    });
  }
  if (r.strict && ((r.minimum ?? value) > value || (r.maximum ?? value) < value)) {
    throw new UsageError(
      `mlship.yaml, ranges.${name}: the example's ${value} is outside [${r.minimum ?? ''}, ${r.maximum ?? ''}]`,
      {
        hint: 'the example is the warm-up call and would be refused (422): fix the range or the example',
      },
    );
  }
  return {
    ...(r.minimum !== undefined ? { minimum: r.minimum } : {}),
    ...(r.maximum !== undefined ? { maximum: r.maximum } : {}),
    strict: r.strict,
    from: 'mlship.yaml',
  };
}

/** The ranges the service publishes: the examples' hints, replaced by declared ranges. */
export function resolveRanges(
  examples: JsonValue[],
  declaredRanges: Record<string, DeclaredRange> | undefined,
  ctx: RangeContext,
): { ranges?: Record<string, NumberRange>; notes: string[] } {
  const names = Object.keys(declaredRanges ?? {});
  if (names.length && ctx.userSchema) {
    throw new UsageError('ranges: are not used with your own request model (--schema)', {
      hint: 'declare them there: x: float = Field(ge=0, le=1) (enforced, and published in /openapi.json)',
    });
  }
  if (names.length && ctx.runtime === 'node') {
    throw new UsageError('ranges: the Node runtime does not publish or enforce number ranges yet', {
      hint: 'remove ranges: from the service, or wrap it with --runtime python',
    });
  }
  const published = !ctx.userSchema && ctx.runtime === 'python';
  const hints = published ? exampleRanges(examples) : {};
  const notes =
    examples.length > 1 && !published
      ? [
          `${examples.length} examples: the first is the example; their ranges are not published (${ctx.userSchema ? 'your request model has its own' : 'not on Node yet'})`,
        ]
      : [];
  const ranges = { ...hints };
  for (const name of names)
    ranges[name] = declared(name, declaredRanges![name]!, ctx.example as Record<string, JsonValue>);
  const seen = Object.keys(hints).filter((n) => !names.includes(n));
  if (seen.length) {
    notes.push(`ranges of ${seen.join(', ')} from ${examples.length} examples: hints, not limits`);
  }
  if (names.length) {
    const kinds = names.map((n) => `${n} (${ranges[n]!.strict ? 'a limit' : 'a hint'})`);
    notes.push(`ranges from mlship.yaml: ${kinds.join(', ')}`);
  }
  return { ...(Object.keys(ranges).length ? { ranges } : {}), notes };
}
