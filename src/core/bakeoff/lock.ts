// bakeoff.lock: what a bakeoff ran, exactly: per candidate the commit, the base
// image, the image id and the `pip freeze` inside it. `--frozen` re-runs that.

import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { UsageError } from '../../io/errors.js';

export const LOCK_VERSION = 1;

const LockEntry = z.strictObject({
  repo: z.string(),
  ref: z.string(),
  commit: z.string().regex(/^[0-9a-f]{40}$/),
  baseImage: z.string(),
  imageTag: z.string(),
  imageId: z.string(),
  pipFreeze: z.array(z.string()),
});

export const LockSchema = z.strictObject({
  lockVersion: z.literal(LOCK_VERSION),
  candidates: z.record(z.string(), LockEntry),
});

export type BakeoffLock = z.output<typeof LockSchema>;
export type LockEntry = z.output<typeof LockEntry>;

export async function readLock(file: string): Promise<BakeoffLock> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new UsageError(`--frozen needs ${file}, which does not exist`, {
      hint: 'run `mlship bakeoff` once without --frozen to write it',
    });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid JSON: ${(e as Error).message}`, {
      hint: 'restore it from version control, or delete it and run without --frozen',
    });
  }
  const parsed = LockSchema.safeParse(data);
  if (!parsed.success) {
    throw new UsageError(`${file} is not a bakeoff lock (version ${LOCK_VERSION})`, {
      details: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`),
      hint: 'delete it and run without --frozen to write a new one',
    });
  }
  return parsed.data;
}

/** Serialises a lock deterministically (candidates by name). */
export function lockText(lock: BakeoffLock): string {
  const candidates = Object.fromEntries(
    Object.entries(lock.candidates).sort(([a], [b]) => a.localeCompare(b)),
  );
  return `${JSON.stringify({ lockVersion: lock.lockVersion, candidates }, null, 2)}\n`;
}
