// `mlship bakeoff matrix refresh`: brings the framework matrix up to date from a wheel
// index instead of waiting for an mlship release (the lag Cog's users complain about).
// Reads one project page of the index (PEP 691 JSON, or PEP 503 HTML), keeps the Linux
// x86_64 wheels of final releases, and records per release the Python versions and the
// CUDA variants it finds: from the local version (`+cu128`) where the index has them
// (download.pytorch.org), else from the wheel's core metadata (PEP 658: the CUDA runtime
// it requires, as on PyPI). The result is a matrix file for `--matrix`.

import { stringify } from 'yaml';
import { UsageError } from '../../io/errors.js';
import type { IndexPage, WheelIndex } from './deps.js';
import { compareVersions, type FrameworkInfo, type Matrix, sortVersions } from './matrix.js';

export type { IndexPage, WheelIndex };

export type Framework = 'torch' | 'tensorflow';

export interface IndexFile {
  filename: string;
  url: string;
  /** The index says it serves the wheel's METADATA at `<url>.metadata` (PEP 658/714). */
  coreMetadata: boolean;
  yanked: boolean;
}

export const DEFAULT_INDEXES: Record<Framework, string> = {
  torch: 'https://download.pytorch.org/whl',
  tensorflow: 'https://pypi.org/simple',
};

const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';

/** PEP 691: `{"files": [{"filename", "url", "core-metadata", "yanked"}]}`. */
export function parseSimpleJson(body: string, baseUrl: string): IndexFile[] {
  const doc = JSON.parse(body) as { files?: Record<string, unknown>[] };
  return (doc.files ?? []).map((f) => {
    const meta = f['core-metadata'] ?? f['data-dist-info-metadata'];
    return {
      filename: String(f.filename),
      url: new URL(String(f.url), baseUrl).href,
      coreMetadata: Boolean(meta) && meta !== false,
      yanked: Boolean(f.yanked),
    };
  });
}

function unescapeHtml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

/** PEP 503: one `<a href="…">filename</a>` per file; PEP 658/714 attributes on the anchor. */
export function parseSimpleHtml(body: string, baseUrl: string): IndexFile[] {
  const out: IndexFile[] = [];
  for (const m of body.matchAll(/<a\s([^>]*)>([^<]*)<\/a>/gi)) {
    const attrs = m[1]!;
    const href = /\bhref\s*=\s*"([^"]*)"/i.exec(attrs)?.[1];
    if (!href) continue;
    const url = new URL(unescapeHtml(href), baseUrl);
    const filename = unescapeHtml(m[2]!.trim()) || decodeURIComponent(url.pathname.split('/').pop() ?? '');
    url.hash = '';
    out.push({
      filename,
      url: url.href,
      coreMetadata: /\bdata-(core|dist-info)-metadata\b/i.test(attrs),
      yanked: /\bdata-yanked\b/i.test(attrs),
    });
  }
  return out;
}

export function parseIndexPage(page: IndexPage): IndexFile[] {
  return page.contentType.includes(JSON_TYPE) || page.contentType.includes('application/json')
    ? parseSimpleJson(page.body, page.url)
    : parseSimpleHtml(page.body, page.url);
}

export interface WheelName {
  name: string;
  /** The public version ("2.9.0"), without the local part. */
  version: string;
  /** The local version ("cu128", "cpu", "rocm6.4"), if any. */
  local?: string;
  /** Python versions of the cpXY tags ("3.11"). */
  pythons: string[];
  platform: string;
}

/** `torch-2.9.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl` → its parts (undefined: not a wheel). */
export function parseWheelName(filename: string): WheelName | undefined {
  const m = /^([A-Za-z0-9_.]+)-([^-]+)(?:-\d[^-]*)?-([^-]+)-([^-]+)-([^-]+)\.whl$/.exec(filename);
  if (!m) return undefined;
  const [version, local] = decodeURIComponent(m[2]!).split('+') as [string, string | undefined];
  const pythons = m[3]!
    .split('.')
    .map((t) => /^cp(\d)(\d+)$/.exec(t))
    .filter((t): t is RegExpExecArray => t !== null)
    .map((t) => `${t[1]}.${t[2]}`);
  return { name: m[1]!.toLowerCase(), version, ...(local ? { local } : {}), pythons, platform: m[5]! };
}

/** Final releases only: "2.9.0", not "2.10.0rc1" or "2.10.0.dev20250101". */
function isFinal(version: string): boolean {
  return /^\d+(\.\d+)*$/.test(version);
}

function linuxX86(platform: string): boolean {
  return /(^|\.)(manylinux[\w]*_x86_64|linux_x86_64)($|\.)/.test(platform);
}

/** "cu128" → "12.8", "cu130" → "13.0"; "cpu" → null; anything else (rocm) → undefined. */
export function cudaOfLocal(local: string): string | null | undefined {
  if (local === 'cpu') return null;
  const m = /^cu(\d{2,3})$/.exec(local);
  if (!m) return undefined;
  const digits = m[1]!;
  return `${digits.slice(0, digits.length - 1)}.${digits.slice(-1)}`;
}

/**
 * The CUDA runtime a wheel requires, from its METADATA: `cuda-toolkit[…]==13.0.2`,
 * `nvidia-cuda-runtime-cu12==12.8.90`, or the lower bound of a range (`>=12.5.82`).
 */
export function cudaOfMetadata(text: string): string | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith('Requires-Dist:')) continue;
    const m =
      /Requires-Dist:\s*(?:cuda-toolkit(?:\[[^\]]*\])?|nvidia-cuda-runtime(?:-cu\d+)?)\s*\(?\s*[^;]*?(?:==|>=|~=)\s*(\d+)\.(\d+)/.exec(
        line,
      );
    if (m) return `${m[1]}.${m[2]}`;
  }
  return undefined;
}

/** Whether METADATA puts the CUDA libraries behind an extra (TensorFlow's `and-cuda`). */
function cudaExtra(text: string): string | undefined {
  return /Requires-Dist:\s*nvidia-cuda-runtime[^;]*;\s*extra\s*==\s*["']([^"']+)["']/.exec(text)?.[1];
}

interface Release {
  pythons: Set<string>;
  cuda: Set<string>;
  /** A wheel whose METADATA can tell the CUDA of a build without a local version. */
  metadataUrl?: string;
  metadataAdvertised?: boolean;
}

function collectReleases(files: IndexFile[], project: string, since: string): Map<string, Release> {
  const releases = new Map<string, Release>();
  for (const f of files) {
    const w = parseWheelName(f.filename);
    if (!w || f.yanked || w.name.replace(/[-_.]+/g, '_') !== project.replace(/[-_.]+/g, '_')) continue;
    if (!isFinal(w.version) || !linuxX86(w.platform) || compareVersions(w.version, since) < 0) continue;
    const r = releases.get(w.version) ?? { pythons: new Set(), cuda: new Set() };
    for (const p of w.pythons) r.pythons.add(p);
    const cuda = w.local === undefined ? undefined : cudaOfLocal(w.local);
    if (cuda) r.cuda.add(cuda);
    // An advertised `.metadata` first; else tried anyway (indexes serve it without saying so).
    if (w.local === undefined && (!r.metadataUrl || (f.coreMetadata && !r.metadataAdvertised))) {
      r.metadataUrl = `${f.url}.metadata`;
      r.metadataAdvertised = f.coreMetadata;
    }
    releases.set(w.version, r);
  }
  return releases;
}

/** The newest patch of each minor release (what the built-in matrix lists). */
function newestPatches(versions: string[]): string[] {
  const byMinor = new Map<string, string>();
  for (const v of sortVersions(versions)) byMinor.set(v.split('.').slice(0, 2).join('.'), v);
  return sortVersions(byMinor.values());
}

export interface RefreshOptions {
  framework: Framework;
  /** The index root (`https://download.pytorch.org/whl`, `https://pypi.org/simple`). */
  index: string;
  /** The matrix refreshed (kept: companions, CUDA table; its oldest release is the default `since`). */
  base: Matrix;
  since?: string;
  now: Date;
}

export interface RefreshResult {
  framework: Framework;
  projectUrl: string;
  entries: Record<string, FrameworkInfo>;
  /** CUDA versions found that the matrix's cuda table does not describe, with the releases using them. */
  unknownCuda: Record<string, string[]>;
  /** Releases whose CUDA builds the index does not say (no local versions, no metadata). */
  cudaUnknown: string[];
  /** The matrix file (`--matrix`) to write. */
  file: Record<string, unknown>;
}

function entryFor(
  fw: Framework,
  r: Release,
  extra: string | undefined,
  base: FrameworkInfo | undefined,
  known: Set<string>,
): FrameworkInfo {
  const cuda = sortVersions([...r.cuda].filter((c) => known.has(c)));
  const bundles = fw === 'torch' ? true : extra !== undefined || (base?.bundlesCuda ?? false);
  const pkg =
    fw === 'tensorflow' ? (extra ? `tensorflow[${extra}]` : (base?.package ?? 'tensorflow')) : base?.package;
  return {
    python: sortVersions(r.pythons),
    cuda: cuda.length || !base ? cuda : base.cuda,
    bundlesCuda: bundles,
    ...(pkg ? { package: pkg } : {}),
    ...(base?.companions ? { companions: base.companions } : {}),
  };
}

export async function refreshMatrix(o: RefreshOptions, index: WheelIndex): Promise<RefreshResult> {
  const projectUrl = `${o.index.replace(/\/+$/, '')}/${o.framework}/`;
  const page = await index.page(projectUrl);
  const baseEntries = o.base.frameworks[o.framework];
  const since = o.since ?? sortVersions(Object.keys(baseEntries))[0] ?? '0';
  const releases = collectReleases(parseIndexPage(page), o.framework, since);
  if (!releases.size) {
    throw new UsageError(`${projectUrl} lists no Linux x86_64 wheels of ${o.framework} ${since} or newer`, {
      hint: 'check --index (the index root, e.g. https://download.pytorch.org/whl or https://pypi.org/simple) and --since',
    });
  }
  const known = new Set(Object.keys(o.base.cuda));
  const entries: Record<string, FrameworkInfo> = {};
  const unknownCuda: Record<string, string[]> = {};
  const cudaUnknown: string[] = [];
  for (const version of newestPatches([...releases.keys()])) {
    const r = releases.get(version)!;
    let extra: string | undefined;
    if (!r.cuda.size && r.metadataUrl) {
      const meta = await index.text(r.metadataUrl);
      const cuda = meta ? cudaOfMetadata(meta) : undefined;
      if (cuda) r.cuda.add(cuda);
      extra = meta ? cudaExtra(meta) : undefined;
    }
    for (const c of r.cuda) if (!known.has(c)) unknownCuda[c] = [...(unknownCuda[c] ?? []), version];
    if (!r.cuda.size && !baseEntries[version]) cudaUnknown.push(version);
    entries[version] = entryFor(o.framework, r, extra, baseEntries[version], known);
  }
  const date = o.now.toISOString().slice(0, 10);
  return {
    framework: o.framework,
    projectUrl,
    entries,
    unknownCuda,
    cudaUnknown,
    file: {
      matrixVersion: 1,
      updated: date,
      sources: {
        [o.framework]: `${projectUrl} (${page.contentType.includes('json') ? 'PEP 691 JSON' : 'PEP 503 HTML'}), read by \`mlship bakeoff matrix refresh\` on ${date}`,
      },
      frameworks: { [o.framework]: entries },
      ...(o.framework === 'torch' && o.index !== DEFAULT_INDEXES.torch && !o.index.includes('pypi.org')
        ? {
            torchIndex: {
              cuda: `${o.index.replace(/\/+$/, '')}/{tag}`,
              cpu: `${o.index.replace(/\/+$/, '')}/cpu`,
            },
          }
        : {}),
    },
  };
}

export function matrixFileText(r: RefreshResult): string {
  const head = [
    `# Written by \`mlship bakeoff matrix refresh\` from ${r.projectUrl}.`,
    '# Use it with `mlship bakeoff --matrix <this file>`: its entries replace or extend the built-in ones.',
    ...Object.entries(r.unknownCuda).map(
      ([c, vs]) =>
        `# CUDA ${c} (used by ${vs.join(', ')}) is not in the cuda table: add cuda."${c}" (full, minDriver, minDriverCompat, cudnn, ubuntu) to use those builds.`,
    ),
  ];
  return `${head.join('\n')}\n${stringify(r.file, { lineWidth: 0 })}`;
}
