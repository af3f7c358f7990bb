// Packs a build context directory into a tar stream, honouring .dockerignore
// with Docker's own matching rules (@balena/dockerignore implements them).
// Files are streamed, never read whole, so large contexts use bounded memory.

import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import dockerignoreModule from '@balena/dockerignore';
import tar from 'tar-stream';

export interface ContextEntry {
  /** Path relative to the context root, with forward slashes. */
  name: string;
  abs: string;
  type: 'file' | 'directory' | 'symlink';
  size: number;
  mode: number;
  mtime: Date;
}

export async function readDockerignore(contextDir: string): Promise<string[]> {
  try {
    const text = await readFile(path.join(contextDir, '.dockerignore'), 'utf8');
    return text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
  } catch {
    return [];
  }
}

/**
 * Lists what a build of `contextDir` sends to the engine. The Dockerfile and
 * .dockerignore are always sent, as the docker CLI does, even when ignored.
 */
export async function listContext(contextDir: string, dockerfile = 'Dockerfile'): Promise<ContextEntry[]> {
  const patterns = await readDockerignore(contextDir);
  // The package is CommonJS whose typings claim an ES default export; normalize.
  const factory = ((dockerignoreModule as unknown as { default?: unknown }).default ??
    dockerignoreModule) as unknown as (o: { ignorecase: boolean }) => {
    add(p: string[]): { ignores(p: string): boolean };
  };
  const ig = factory({ ignorecase: false }).add(patterns);
  const always = new Set([dockerfile.split(path.sep).join('/'), '.dockerignore']);
  const entries: ContextEntry[] = [];

  async function walk(rel: string): Promise<void> {
    const dir = path.join(contextDir, rel);
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const relPath = rel ? `${rel}/${name}` : name;
      const abs = path.join(dir, name);
      const st = await lstat(abs);
      const ignored = ig.ignores(relPath) && !always.has(relPath);
      if (st.isDirectory()) {
        // An ignored directory may still contain re-included files (`!dir/keep`),
        // so only skip descending when no negation pattern could match inside it.
        const hasNegation = patterns.some((p) => p.startsWith('!'));
        if (ignored && !hasNegation) continue;
        if (!ignored)
          entries.push({ name: relPath, abs, type: 'directory', size: 0, mode: st.mode, mtime: st.mtime });
        await walk(relPath);
      } else if (!ignored && (st.isFile() || st.isSymbolicLink())) {
        entries.push({
          name: relPath,
          abs,
          type: st.isSymbolicLink() ? 'symlink' : 'file',
          size: st.isFile() ? st.size : 0,
          mode: st.mode,
          mtime: st.mtime,
        });
      }
    }
  }
  await walk('');
  return entries;
}

/** A tar stream of the context; entries are added one at a time as the engine reads. */
export function packContext(contextDir: string, entries: ContextEntry[]): Readable {
  const pack = tar.pack();
  (async () => {
    for (const e of entries) {
      const header = { name: e.name, mode: e.mode & 0o7777, mtime: e.mtime };
      if (e.type === 'directory') {
        pack.entry({ ...header, type: 'directory' });
      } else if (e.type === 'symlink') {
        pack.entry({ ...header, type: 'symlink', linkname: await readlink(e.abs) });
      } else {
        await new Promise<void>((resolve, reject) => {
          const sink = pack.entry({ ...header, type: 'file', size: e.size }, (err) =>
            err ? reject(err) : resolve(),
          );
          createReadStream(path.join(contextDir, e.name)).on('error', reject).pipe(sink);
        });
      }
    }
    pack.finalize();
  })().catch((err) => pack.destroy(err as Error));
  return pack as unknown as Readable;
}
