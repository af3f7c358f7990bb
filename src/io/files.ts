// File writes that never leave a half-written file and never overwrite a
// user's file unless asked to.

import { randomBytes } from 'node:crypto';
import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FileExistsError } from './errors.js';

export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** Writes via a temporary file in the same directory and an atomic rename. */
export async function writeFileAtomic(file: string, content: string | Buffer, mode?: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, content, mode === undefined ? undefined : { mode });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Like writeFileAtomic, but refuses to replace an existing file unless `force`. */
export async function writeNewFile(file: string, content: string, force: boolean): Promise<void> {
  if (!force && (await exists(file))) throw new FileExistsError(file);
  await writeFileAtomic(file, content);
}
