// The write plan of `mlship wrap`: for every file of the service, whether to create, update,
// leave or refuse it, decided by comparing three checksums (on disk, recorded in
// mlship-wrap.json, about to be written). A file the user changed since mlship wrote it is
// never replaced without `force`; with `keep` (--upgrade) it is left alone and listed.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { MlshipError } from '../../io/errors.js';
import { writeFileAtomic } from '../../io/files.js';
import type { WrapManifest } from './manifest.js';

/**
 * create/update/unchanged: as it says. conflict: changed by the user, refused (exit 2).
 * overwrite: changed by the user, replaced (--force). kept: changed by the user, left alone (--upgrade).
 */
export type FileAction = 'create' | 'update' | 'unchanged' | 'conflict' | 'overwrite' | 'kept';

export interface FilePlan {
  path: string;
  action: FileAction;
  /** With --dry-run: a unified diff (current → generated) of a text file that would change. */
  diff?: string;
}

/** A file planned for the output directory: text, or a copy of a (possibly large) file. */
export type Planned = { path: string; content: string } | { path: string; copyFrom: string };

export type PlannedFile = FilePlan & { file: Planned; hash: string };

/** What to do with a file the user changed: refuse the whole run, replace it, or leave it. */
export type EditPolicy = 'refuse' | 'force' | 'keep';

export class FileConflictError extends MlshipError {
  constructor(dir: string, files: string[]) {
    super(
      'FILE_CONFLICT',
      'usage',
      `${files.length} file(s) in ${dir} were changed since mlship generated them`,
      {
        details: files.map((f) => `changed: ${f}`),
        hint: 'keep your edits (choose another --out), or pass --force to overwrite them; --dry-run shows the plan',
      },
    );
  }
}

export function sha256Text(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function hashOf(p: Planned): Promise<string> {
  return 'content' in p ? sha256Text(p.content) : sha256File(p.copyFrom);
}

export async function currentHash(file: string): Promise<string | undefined> {
  try {
    return await sha256File(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function planFiles(
  outDir: string,
  planned: Planned[],
  previous: WrapManifest | undefined,
  policy: EditPolicy,
): Promise<PlannedFile[]> {
  const plan: PlannedFile[] = [];
  for (const file of planned) {
    const next = await hashOf(file);
    const now = await currentHash(path.join(outDir, file.path));
    let action: FileAction;
    if (now === undefined) action = 'create';
    else if (now === next) action = 'unchanged';
    else if (previous?.files[file.path] === now) action = 'update';
    else action = policy === 'force' ? 'overwrite' : policy === 'keep' ? 'kept' : 'conflict';
    plan.push({ path: file.path, action, file, hash: next });
  }
  return plan;
}

/** The manifest itself: written last, always mlship's. */
export async function planManifest(outDir: string, file: string, text: string): Promise<PlannedFile> {
  const now = await currentHash(path.join(outDir, file));
  const hash = sha256Text(text);
  const action: FileAction = now === undefined ? 'create' : now === hash ? 'unchanged' : 'update';
  return { path: file, action, file: { path: file, content: text }, hash };
}

const CHANGES: FileAction[] = ['update', 'overwrite', 'conflict', 'kept'];

/** The plan as shown: with --dry-run, the diff of every text file that would (or, kept, could) change. */
export async function showPlan(outDir: string, plan: PlannedFile[], withDiffs: boolean): Promise<FilePlan[]> {
  return Promise.all(
    plan.map(async (p) => {
      if (!withDiffs || !CHANGES.includes(p.action) || !('content' in p.file)) {
        return { path: p.path, action: p.action };
      }
      const current = await readFile(path.join(outDir, p.path), 'utf8');
      const diff = createTwoFilesPatch(
        `a/${p.path}`,
        `b/${p.path}`,
        current,
        p.file.content,
        'current',
        'mlship wrap',
        {
          context: 2,
        },
      );
      return { path: p.path, action: p.action, diff };
    }),
  );
}

export async function writePlan(outDir: string, plan: PlannedFile[]): Promise<void> {
  const conflicts = plan.filter((p) => p.action === 'conflict').map((p) => p.path);
  if (conflicts.length) throw new FileConflictError(outDir, conflicts);
  await mkdir(outDir, { recursive: true });
  for (const { action, file } of plan) {
    if (action === 'unchanged' || action === 'kept') continue;
    const target = path.join(outDir, file.path);
    if ('content' in file) {
      await writeFileAtomic(target, file.content);
    } else {
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(file.copyFrom, target);
    }
  }
}
