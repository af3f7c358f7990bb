// The items of a job or of `mlship predict`: one JSON input per line (JSONL), or the rows
// of a CSV file with a header (numbers become numbers). Item ids are the items' positions,
// so results come back in input order and a re-run finds the same ids.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../../io/errors.js';

export interface Item {
  /** Position in the file (0-based), as a string: the item id. */
  id: string;
  /** Line of the file it came from (1-based), for messages. */
  line: number;
  input: unknown;
}

export async function readItems(file: string): Promise<Item[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const ext = path.extname(file).toLowerCase();
  const items = ext === '.csv' ? csvItems(file, text) : jsonlItems(file, text);
  if (!items.length)
    throw new UsageError(`${file} has no items`, { hint: 'one JSON input per line (or CSV rows)' });
  return items;
}

function jsonlItems(file: string, text: string): Item[] {
  const items: Item[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    try {
      items.push({ id: String(items.length), line: i + 1, input: JSON.parse(line) });
    } catch (e) {
      throw new UsageError(`${file}:${i + 1}: not a JSON value (${(e as Error).message})`, {
        hint: 'write one JSON input per line (JSON Lines), as /predict takes it',
      });
    }
  }
  return items;
}

/** RFC 4180 fields: quotes around a field, "" for a quote inside one. */
export function csvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.some((f) => f !== '')) rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  row.push(field);
  if (row.some((f) => f !== '')) rows.push(row);
  return rows;
}

function csvItems(file: string, text: string): Item[] {
  const [header, ...rows] = csvRows(text);
  if (!header) return [];
  return rows.map((row, i) => {
    if (row.length !== header.length) {
      throw new UsageError(`${file}: row ${i + 2} has ${row.length} fields, the header ${header.length}`);
    }
    const input: Record<string, unknown> = {};
    header.forEach((name, j) => {
      const v = row[j]!;
      input[name] = v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
    });
    return { id: String(i), line: i + 2, input };
  });
}
