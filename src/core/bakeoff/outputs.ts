// Expected outputs: globs matched against the container's files after the example
// exits, and copied out of the (stopped) container through the engine's archive API.

import { createWriteStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { OutputPreview } from '../../generators/bakeoff-report-schema.js';

/** A glob as a RegExp over absolute POSIX paths: `**` any depth, `*` and `?` within a segment. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        const slash = glob[i + 2] === '/';
        re += slash ? '(?:.*/)?' : '.*';
        i += slash ? 2 : 1;
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end === -1) re += '\\[';
      else {
        re += `[${glob
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The absolute pattern, and the deepest directory (or the file) that holds every match. */
export function archiveRoot(
  pattern: string,
  workdir: string,
): { absolute: string; root: string; literal: boolean } {
  const absolute = path.posix.resolve(workdir, pattern);
  const parts = absolute.split('/');
  const firstGlob = parts.findIndex((p) => /[*?[]/.test(p));
  if (firstGlob === -1) return { absolute, root: absolute, literal: true };
  return { absolute, root: parts.slice(0, firstGlob).join('/') || '/', literal: false };
}

export interface CopiedFile {
  /** Path in the container. */
  path: string;
  bytes: number;
  /** Where it was saved, relative to the output directory. */
  savedAs: string;
  preview?: OutputPreview;
}

export interface OutputMatch {
  pattern: string;
  files: CopiedFile[];
}

export type ArchiveSource = (containerPath: string) => Promise<Readable | undefined>;

/**
 * Copies every file matching the patterns into `destDir`, keeping paths relative to
 * `workdir` (absolute paths outside it keep their full path under `_root/`).
 */
export async function collectOutputs(
  patterns: string[],
  workdir: string,
  archive: ArchiveSource,
  destDir: string,
): Promise<OutputMatch[]> {
  const matches = new Map(patterns.map((p) => [p, [] as CopiedFile[]]));
  const roots = new Map<string, { pattern: string; re: RegExp; literal: boolean; absolute: string }[]>();
  for (const pattern of patterns) {
    const r = archiveRoot(pattern, workdir);
    const list = roots.get(r.root) ?? [];
    list.push({ pattern, re: globToRegExp(r.absolute), literal: r.literal, absolute: r.absolute });
    roots.set(r.root, list);
  }
  const saved = new Set<string>();
  for (const [root, wanted] of roots) {
    const stream = await archive(root);
    if (!stream) continue;
    const parent = path.posix.dirname(root);
    const extract = tar.extract();
    extract.on('entry', (header, entry, next) => {
      const inContainer = path.posix.join(parent, header.name.replace(/\/$/, ''));
      const hits =
        header.type === 'file'
          ? wanted.filter((w) =>
              w.literal
                ? inContainer === w.absolute || inContainer.startsWith(`${w.absolute}/`)
                : w.re.test(inContainer),
            )
          : [];
      if (hits.length === 0) {
        entry.on('end', next);
        entry.resume();
        return;
      }
      const rel = inContainer.startsWith(`${workdir}/`)
        ? inContainer.slice(workdir.length + 1)
        : path.posix.join('_root', inContainer);
      const file: CopiedFile = { path: inContainer, bytes: header.size ?? 0, savedAs: rel };
      for (const h of hits) matches.get(h.pattern)!.push(file);
      if (saved.has(rel)) {
        entry.on('end', next);
        entry.resume();
        return;
      }
      saved.add(rel);
      const target = path.join(destDir, ...rel.split('/'));
      mkdir(path.dirname(target), { recursive: true })
        .then(() => pipeline(entry, createWriteStream(target)))
        .then(() => next(), next);
    });
    await pipeline(stream, extract);
  }
  return patterns.map((pattern) => ({ pattern, files: matches.get(pattern)! }));
}

/**
 * Reads several small files of one container directory in a single archive read (each read
 * is a round trip the engine serialises per container: one is cheaper than several).
 */
export async function readContainerFiles(
  archive: ArchiveSource,
  dir: string,
  names: string[],
): Promise<Record<string, string>> {
  const stream = await archive(dir);
  if (!stream) return {};
  const base = path.posix.basename(dir);
  const chunks = new Map<string, Buffer[]>();
  const extract = tar.extract();
  extract.on('entry', (header, entry, next) => {
    const rel = header.name.replace(/\/$/, '');
    const name = rel.startsWith(`${base}/`) ? rel.slice(base.length + 1) : rel;
    if (header.type === 'file' && names.includes(name)) {
      const list: Buffer[] = [];
      chunks.set(name, list);
      entry.on('data', (c: unknown) => list.push(c as Buffer));
    }
    entry.on('end', next);
    entry.resume();
  });
  await pipeline(stream, extract);
  return Object.fromEntries([...chunks].map(([n, c]) => [n, Buffer.concat(c).toString('utf8')]));
}

const IMAGE = /\.(png|jpe?g|gif|webp|bmp|svg)$/i;
const PREVIEW_BYTES = 2048;

/** What the HTML report shows of a copied file: an image, the start of a text or JSON file, or its name. */
export async function previewFile(file: string): Promise<OutputPreview> {
  if (IMAGE.test(file)) return { kind: 'image' };
  let head: Buffer;
  let size: number;
  try {
    const fh = await open(file, 'r');
    try {
      size = (await fh.stat()).size;
      const buf = Buffer.alloc(Math.min(size, 64 * 1024));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      head = buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch {
    return { kind: 'other' };
  }
  // Binary (a NUL, or bytes that are not UTF-8) is listed, not shown.
  if (head.includes(0)) return { kind: 'other' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(head);
  } catch {
    return { kind: 'other' };
  }
  if (/\.json$/i.test(file) && size === head.length) {
    try {
      const pretty = JSON.stringify(JSON.parse(text), null, 2);
      return {
        kind: 'json',
        text: pretty.slice(0, PREVIEW_BYTES),
        ...(pretty.length > PREVIEW_BYTES ? { truncated: true } : {}),
      };
    } catch {
      // not JSON after all: shown as text
    }
  }
  return {
    kind: /\.json$/i.test(file) ? 'json' : 'text',
    text: text.slice(0, PREVIEW_BYTES),
    ...(size > PREVIEW_BYTES ? { truncated: true } : {}),
  };
}

/** The matches with a preview of every copied file (read from `destDir`). */
export async function withPreviews(matches: OutputMatch[], destDir: string): Promise<OutputMatch[]> {
  const previews = new Map<string, OutputPreview>();
  for (const m of matches)
    for (const f of m.files)
      if (!previews.has(f.savedAs))
        previews.set(f.savedAs, await previewFile(path.join(destDir, ...f.savedAs.split('/'))));
  return matches.map((m) => ({
    ...m,
    files: m.files.map((f) => ({ ...f, preview: previews.get(f.savedAs)! })),
  }));
}
