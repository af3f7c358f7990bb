// What the resolver needs to know about a repo tree: does it compile CUDA code
// (then the image needs nvcc, the devel flavour), and which requirement files exist.

import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

const SKIP_DIRS = new Set(['.git', 'node_modules', '__pycache__', '.venv', 'venv', '.tox']);
const BUILD_FILES = /^(setup\.py|pyproject\.toml|setup\.cfg|CMakeLists\.txt|Makefile|build\.sh|.*\.py)$/;

/** Patterns in build files that mean "this compiles CUDA code", with what each means. */
const CUDA_BUILD_PATTERNS: [RegExp, string][] = [
  [/\bCUDAExtension\s*\(/, 'CUDAExtension'],
  [/\bnvcc\b/, 'calls nvcc'],
  [/enable_language\s*\(\s*CUDA|project\s*\([^)]*\bCUDA\b/, 'CMake CUDA language'],
  [/cpp_extension\.load\s*\([\s\S]{0,400}?\.cu['"]/, 'JIT-compiles .cu sources'],
];

export interface RepoFacts {
  compilesCuda: { yes: boolean; evidence: string[] };
  requirementFiles: string[];
  /**
   * Files that are Git LFS pointers, not their content (`git archive` does not fetch LFS
   * objects): looked for only when a `.gitattributes` routes files through the lfs filter.
   */
  lfsPointers?: string[];
}

const LFS_POINTER = 'version https://git-lfs.github.com/spec/v1';

/** The LFS pointer files of the tree (pointers are ~130 bytes: only small files are read). */
async function lfsPointers(dir: string, files: string[]): Promise<string[]> {
  const attributes = files.filter((f) => path.basename(f) === '.gitattributes');
  let lfs = false;
  for (const f of attributes)
    if (/filter=lfs/.test(await readFile(path.join(dir, f), 'utf8').catch(() => ''))) lfs = true;
  if (!lfs) return [];
  const out: string[] = [];
  for (const f of files) {
    const abs = path.join(dir, f);
    const st = await stat(abs).catch(() => undefined);
    if (!st || st.size > 1024 || st.size < LFS_POINTER.length) continue;
    if ((await readFile(abs, 'utf8').catch(() => '')).startsWith(LFS_POINTER)) out.push(f);
  }
  return out;
}

async function walk(dir: string, rel: string, out: string[], depth: number): Promise<void> {
  if (depth > 6 || out.length > 20_000) return;
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) await walk(path.join(dir, e.name), `${rel}${e.name}/`, out, depth + 1);
    } else if (e.isFile()) out.push(`${rel}${e.name}`);
  }
}

export async function inspectRepo(dir: string): Promise<RepoFacts> {
  const files: string[] = [];
  await walk(dir, '', files, 0);
  const evidence: string[] = [];
  const cu = files.filter((f) => /\.(cu|cuh)$/.test(f));
  if (cu.length)
    evidence.push(
      `${cu.length} CUDA source file${cu.length === 1 ? '' : 's'} (${cu.slice(0, 2).join(', ')})`,
    );
  for (const f of files.filter((f) => BUILD_FILES.test(path.basename(f)))) {
    // Only build scripts and top-level/py files small enough to be code, not data.
    const st = await stat(path.join(dir, f));
    if (st.size > 512 * 1024) continue;
    if (f.endsWith('.py') && !/(^|\/)(setup|build|.*extension.*|.*ext)\.py$/.test(f)) continue;
    const text = await readFile(path.join(dir, f), 'utf8');
    for (const [re, what] of CUDA_BUILD_PATTERNS) if (re.test(text)) evidence.push(`${f}: ${what}`);
  }
  const requirementFiles = files.filter((f) => f === 'requirements.txt');
  const pointers = await lfsPointers(dir, files);
  return {
    compilesCuda: { yes: evidence.length > 0, evidence },
    requirementFiles,
    ...(pointers.length ? { lfsPointers: pointers } : {}),
  };
}
