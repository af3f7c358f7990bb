// What the rules know about the build context: the files a build would send
// (after .dockerignore), and which of them each COPY/ADD picks up.

import path from 'node:path';

export interface ContextFile {
  /** Path relative to the context root, forward slashes. */
  path: string;
  size: number;
}

export interface ContextSnapshot {
  /** Text of .dockerignore, or null when there is none. */
  dockerignore: string | null;
  /** Files sent with the build (the .dockerignore already applied). */
  files: ContextFile[];
  /** Reads a small text file of the context (requirements files); undefined when absent. */
  readText(rel: string): string | undefined;
}

/** Model weights, checkpoints and data sets: the files that belong outside an image. */
export const WEIGHT_EXTENSIONS = [
  '.pt',
  '.pth',
  '.bin',
  '.safetensors',
  '.onnx',
  '.h5',
  '.hdf5',
  '.ckpt',
  '.pb',
  '.tflite',
  '.gguf',
  '.ggml',
  '.joblib',
  '.pkl',
  '.pickle',
  '.npy',
  '.npz',
  '.parquet',
  '.arrow',
  '.feather',
  '.tfrecord',
  '.csv',
  '.tsv',
  '.jsonl',
  '.zip',
  '.tar',
  '.gz',
];

export const DEFAULT_LARGE_FILE_BYTES = 50 * 1024 * 1024;

export function isWeightLike(p: string): boolean {
  const lower = p.toLowerCase();
  return WEIGHT_EXTENSIONS.some((e) => lower.endsWith(e));
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, '^')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}(/.*)?$`);
}

/** Normalises a COPY source to a context-relative path ('' for the whole context). */
export function normaliseSource(src: string): string {
  const n = path.posix.normalize(src.replace(/^\/+/, ''));
  return n === '.' ? '' : n.replace(/\/+$/, '');
}

/** Context files a COPY/ADD source picks up. */
export function filesMatching(files: ContextFile[], src: string): ContextFile[] {
  const n = normaliseSource(src);
  if (n === '') return files;
  if (/[*?[]/.test(n)) {
    const re = globToRegExp(n);
    return files.filter((f) => re.test(f.path));
  }
  return files.filter((f) => f.path === n || f.path.startsWith(`${n}/`));
}

export function isRemoteSource(src: string): boolean {
  return /^(https?|git):\/\//.test(src) || src.startsWith('git@');
}

export function isArchive(src: string): boolean {
  return /\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst)$/i.test(src);
}

export function formatBytes(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GB`;
  if (abs >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  if (abs >= 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${n} B`;
}
