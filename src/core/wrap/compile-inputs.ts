// The inputs a compiled model is checked on (`wrap --compile/--quantize`): the example,
// then the user's own data (--check-data, JSON Lines, a JSON list or CSV), else inputs
// generated around the example. Each is turned into the row the service would build
// from that request (fields in example order, lists flattened), so the check compares
// what the service will really be asked.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type FieldShape,
  type InputField,
  inferFields,
  type JsonValue,
} from '../../generators/wrap-input.js';
import { UsageError } from '../../io/errors.js';

export interface CheckRows {
  rows: number[][];
  /** Where each row came from, shown next to a difference: "example", "data.jsonl line 3", "generated #5". */
  sources: string[];
  /** One sentence for the report. */
  description: string;
}

/** Rows generated when there is no --check-data. */
export const GENERATED_ROWS = 256;

class RowError extends Error {}

function flatten(value: JsonValue | undefined, shape: FieldShape, where: string): number[] {
  if (shape.kind === 'number' || shape.kind === 'boolean') {
    if (typeof value === 'boolean') return [value ? 1 : 0];
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new RowError(`${where} should be a number`);
    return [value];
  }
  if (shape.kind === 'array') {
    if (!Array.isArray(value) || value.length !== shape.length) {
      throw new RowError(`${where} should be a list of ${shape.length}`);
    }
    return value.flatMap((v, i) => flatten(v, shape.items, `${where}[${i}]`));
  }
  throw new RowError(`${where}: a model file takes numbers only`);
}

/** The service's row for one request body. */
export function rowOf(body: JsonValue, fields: InputField[]): number[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RowError('should be a JSON object with the example’s fields');
  }
  const extra = Object.keys(body).find((k) => !fields.some((f) => f.name === k));
  if (extra !== undefined) throw new RowError(`has a field the example does not: "${extra}"`);
  return fields.flatMap((f) => flatten(body[f.name], f.shape, `field "${f.name}"`));
}

/** A small seeded generator (mulberry32): the same inputs on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Flags of the example's row: which values are booleans (0/1) and which whole numbers. */
function kinds(example: JsonValue, fields: InputField[]): ('boolean' | 'integer' | 'real')[] {
  const of = (value: JsonValue | undefined): ('boolean' | 'integer' | 'real')[] =>
    Array.isArray(value)
      ? value.flatMap(of)
      : [typeof value === 'boolean' ? 'boolean' : Number.isInteger(value) ? 'integer' : 'real'];
  return fields.flatMap((f) => of((example as Record<string, JsonValue>)[f.name]));
}

/**
 * Rows around the example: each value drawn uniformly within half its size either side
 * (at least ±0.5), whole numbers kept whole, booleans 0 or 1.
 */
export function generatedRows(example: JsonValue, fields: InputField[], count = GENERATED_ROWS): number[][] {
  const base = rowOf(example, fields);
  const types = kinds(example, fields);
  const next = random(17);
  return Array.from({ length: count }, () =>
    base.map((v, i) => {
      if (types[i] === 'boolean') return next() < 0.5 ? 0 : 1;
      const span = Math.max(Math.abs(v) / 2, 0.5);
      const drawn = v - span + next() * 2 * span;
      return types[i] === 'integer' ? Math.round(drawn) : drawn;
    }),
  );
}

function csvBodies(text: string, fields: InputField[]): { body: JsonValue; where: string }[] {
  const lines = text.split(/\r?\n/);
  const header = lines[0]!.split(',').map((h) => h.trim());
  for (const f of fields) {
    if (f.shape.kind === 'array') throw new RowError(`CSV holds scalar fields only; "${f.name}" is a list`);
    if (!header.includes(f.name)) throw new RowError(`line 1: the header has no column "${f.name}"`);
  }
  const out: { body: JsonValue; where: string }[] = [];
  lines.slice(1).forEach((line, i) => {
    if (!line.trim()) return;
    const cells = line.split(',');
    const body: Record<string, JsonValue> = {};
    for (const f of fields) {
      const cell = cells[header.indexOf(f.name)]?.trim() ?? '';
      body[f.name] = cell === '' ? null : Number(cell);
    }
    out.push({ body, where: `line ${i + 2}` });
  });
  return out;
}

function jsonBodies(file: string, text: string): { body: JsonValue; where: string }[] {
  if (file.endsWith('.jsonl') || file.endsWith('.ndjson')) {
    return text
      .split(/\r?\n/)
      .map((line, i) => ({ line, where: `line ${i + 1}` }))
      .filter(({ line }) => line.trim())
      .map(({ line, where }) => {
        try {
          return { body: JSON.parse(line) as JsonValue, where };
        } catch (e) {
          throw new RowError(`${where}: not JSON (${(e as Error).message})`);
        }
      });
  }
  let parsed: JsonValue;
  try {
    parsed = JSON.parse(text) as JsonValue;
  } catch (e) {
    throw new RowError(`not JSON: ${(e as Error).message}`);
  }
  const list =
    parsed && typeof parsed === 'object' && !Array.isArray(parsed) && Array.isArray(parsed.inputs)
      ? parsed.inputs
      : parsed;
  if (!Array.isArray(list)) throw new RowError('should be a list of request bodies, or {"inputs": [...]}');
  return list.map((body, i) => ({ body, where: `item ${i}` }));
}

/** The example first, then --check-data (every row), else generated rows. */
export async function checkRows(example: JsonValue, checkData?: string): Promise<CheckRows> {
  const fields = inferFields(example);
  const rows = [rowOf(example, fields)];
  const sources = ['example'];
  if (!checkData) {
    const generated = generatedRows(example, fields);
    rows.push(...generated);
    sources.push(...generated.map((_, i) => `generated #${i + 1}`));
    return {
      rows,
      sources,
      description: `the example and ${generated.length} inputs generated around it: each value within ±50% of the example's, at least ±0.5`,
    };
  }
  const name = path.basename(checkData);
  let text: string;
  try {
    text = await readFile(checkData, 'utf8');
  } catch {
    throw new UsageError(`--check-data ${checkData} not found`);
  }
  try {
    const bodies = checkData.endsWith('.csv') ? csvBodies(text, fields) : jsonBodies(checkData, text);
    if (bodies.length === 0) throw new RowError('has no inputs');
    for (const { body, where } of bodies) {
      try {
        rows.push(rowOf(body, fields));
      } catch (e) {
        throw new RowError(`${where}: ${(e as Error).message}`);
      }
      sources.push(`${name} ${where}`);
    }
  } catch (e) {
    if (!(e instanceof RowError)) throw e;
    throw new UsageError(`--check-data ${checkData}: ${e.message}`, {
      hint: 'one request body per line (.jsonl), a JSON list of bodies, or a CSV whose header names the example’s fields',
    });
  }
  return { rows, sources, description: `the example and ${rows.length - 1} inputs of ${name}` };
}
