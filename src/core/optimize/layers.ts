// Measures an image from its `docker save` stream: per-layer size with the
// instruction that created it, bytes wasted by files that later layers overwrite
// or delete, and the largest files. The outer tar and every layer tar inside it
// are streamed: only per-layer tables of (path, size) are kept, so a 10 GB image
// costs a few MB of memory. The manifest may come after the layers (docker 20.10
// does that), so tables are keyed by their path in the archive and ordered at the end.

import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { OperationFailedError } from '../../io/errors.js';

function unreadable(message: string): OperationFailedError {
  return new OperationFailedError('IMAGE_ARCHIVE_UNREADABLE', message, {
    hint: 'the engine returned an image archive mlship cannot read; check `docker save <image> | tar t`',
  });
}

interface LayerTable {
  /** Regular files: path → size. */
  files: Map<string, number>;
  /** Paths deleted by whiteouts (`.wh.name`). */
  whiteouts: string[];
  /** Directories made opaque (`.wh..wh..opq`): everything below from lower layers is hidden. */
  opaque: string[];
  tarBytes: number;
}

export interface LayerInfo {
  index: number;
  diffId: string | undefined;
  createdBy: string;
  /** Bytes of regular files in the layer. */
  sizeBytes: number;
  files: number;
  /** Bytes of this layer that later layers overwrite or delete. */
  wastedBytes: number;
}

export interface WastedFile {
  path: string;
  bytes: number;
  /** Layer that added the bytes, and the layer that overwrote or deleted them. */
  addedIn: number;
  wastedBy: number;
  how: 'overwritten' | 'deleted';
}

export interface LargeFile {
  path: string;
  bytes: number;
  layer: number;
}

/**
 * CUDA libraries found twice in an image: the base image's (what `cuda-twice`
 * says a python:<ver>-slim base would drop) and the ones pip wheels brought.
 */
export interface CudaStacks {
  /** Bytes of the base image's CUDA libraries: /usr/local/cuda*, the cuDNN, NCCL and other CUDA packages. */
  systemBytes: number;
  /** Bytes of the CUDA libraries pip wheels brought (site-packages/nvidia/*, torch/lib). */
  wheelBytes: number;
  /** Where the system copy lives (top directories, largest first). */
  systemDirs: string[];
}

export interface LayerReport {
  image: string;
  /** Bytes of regular files in all layers (what `docker history` sums). */
  totalBytes: number;
  /** Bytes a container actually sees (total minus wasted). */
  visibleBytes: number;
  wastedBytes: number;
  layers: LayerInfo[];
  wasted: WastedFile[];
  largestFiles: LargeFile[];
  /** Set when the final filesystem holds a system CUDA stack and one from pip wheels. */
  cudaStacks?: CudaStacks;
}

export interface SaveContents {
  layerOrder: string[];
  tables: Map<string, LayerTable>;
  diffIds: string[];
  /** `created_by` of each non-empty history entry, oldest first. */
  createdBy: string[];
}

function normalise(name: string): string {
  return name.replace(/^\.\//, '').replace(/\/+$/, '');
}

async function* prepend(first: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield r.value;
  }
}

async function readLayer(chunks: AsyncIterable<Buffer>): Promise<LayerTable> {
  const table: LayerTable = { files: new Map(), whiteouts: [], opaque: [], tarBytes: 0 };
  const inner = tar.extract();
  const feeding = pipeline(
    (async function* () {
      for await (const c of chunks) {
        table.tarBytes += c.length;
        yield c;
      }
    })(),
    inner,
  );
  for await (const entry of inner) {
    const h = entry.header;
    const p = normalise(h.name);
    const base = p.slice(p.lastIndexOf('/') + 1);
    const dir = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    if (base === '.wh..wh..opq') table.opaque.push(dir);
    else if (base.startsWith('.wh.')) table.whiteouts.push(dir ? `${dir}/${base.slice(4)}` : base.slice(4));
    else if (h.type === 'file' || h.type === 'contiguous-file') table.files.set(p, h.size ?? 0);
    entry.resume();
  }
  await feeding;
  return table;
}

async function readSmall(chunks: AsyncIterable<Buffer>, limit: number): Promise<string | undefined> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of chunks) {
    n += c.length;
    if (n <= limit) parts.push(c);
  }
  return n <= limit ? Buffer.concat(parts).toString('utf8') : undefined;
}

function looksLikeTar(first: Buffer): boolean {
  return first.length >= 262 && first.subarray(257, 262).toString('latin1') === 'ustar';
}

/** Reads a `docker save` stream (docker and OCI layouts) into per-layer tables. */
export async function readSaveStream(source: Readable): Promise<SaveContents> {
  const outer = tar.extract();
  const tables = new Map<string, LayerTable>();
  const jsons = new Map<string, string>();
  const aliases = new Map<string, string>();
  const feeding = pipeline(source, outer);
  for await (const entry of outer) {
    const name = normalise(entry.header.name);
    if (entry.header.type === 'symlink' && entry.header.linkname) {
      // docker save writes an identical layer once and links the others to it.
      const dir = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '';
      aliases.set(name, normalise(posix.normalize(posix.join(dir, entry.header.linkname))));
    }
    if (entry.header.type !== 'file' && entry.header.type !== 'contiguous-file') {
      entry.resume();
      continue;
    }
    const it = entry[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const first = await it.next();
    if (first.done) {
      if (name.endsWith('layer.tar'))
        tables.set(name, { files: new Map(), whiteouts: [], opaque: [], tarBytes: 0 });
      continue;
    }
    const chunks = prepend(first.value, it);
    if (name.endsWith('layer.tar') || looksLikeTar(first.value)) tables.set(name, await readLayer(chunks));
    else {
      const text = await readSmall(chunks, 16 * 1024 * 1024);
      if (text !== undefined) jsons.set(name, text);
    }
  }
  await feeding;

  const manifestText = jsons.get('manifest.json');
  if (!manifestText) throw unreadable('docker save output has no manifest.json');
  const manifest = JSON.parse(manifestText) as { Config: string; Layers: string[] }[];
  const m = manifest[0];
  if (!m) throw unreadable('docker save manifest.json lists no image');
  const config = JSON.parse(jsons.get(normalise(m.Config)) ?? '{}') as {
    rootfs?: { diff_ids?: string[] };
    history?: { created_by?: string; empty_layer?: boolean }[];
  };
  const createdBy = (config.history ?? []).filter((h) => !h.empty_layer).map((h) => h.created_by ?? '');
  const layerOrder = m.Layers.map(normalise).map((l) => aliases.get(l) ?? l);
  return { layerOrder, tables, diffIds: config.rootfs?.diff_ids ?? [], createdBy };
}

/** A `created_by` made readable: the builder's `/bin/sh -c #(nop) ` prefixes removed. */
export function instructionOf(createdBy: string): string {
  return createdBy
    .replace(/^\/bin\/sh -c #\(nop\)\s*/, '')
    .replace(/^\/bin\/sh -c /, 'RUN ')
    .replace(/\s*# buildkit$/, '')
    .replace(/\s+/g, ' ')
    .trim();
}

const CUDA_LIB =
  /^lib(cudnn|nccl|cublas|cublasLt|cufft|cufftw|curand|cusolver|cusolverMg|cusparse|cusparseLt|nvrtc|nvjpeg|npp\w*|cudart|nvJitLink|nvToolsExt|cupti|nvinfer|nvblas)[^/]*\.(so|a)(\.[\d.]+)?$/;
const WHEEL_CUDA = /(^|\/)(site|dist)-packages\/(nvidia\/[^/]+\/|torch\/lib\/)/;
const SYSTEM_CUDA_DIR = /^(usr\/local\/cuda(-[\d.]+)?)\//;

/** The two CUDA stacks of a final filesystem, when there are two (over 10 MB each). */
export function cudaStacks(files: Iterable<[string, number]>): CudaStacks | undefined {
  let systemBytes = 0;
  let wheelBytes = 0;
  const dirs = new Map<string, number>();
  for (const [p, size] of files) {
    const base = p.slice(p.lastIndexOf('/') + 1);
    if (WHEEL_CUDA.test(p)) {
      if (p.includes('/nvidia/') || CUDA_LIB.test(base)) wheelBytes += size;
      continue;
    }
    const dir =
      SYSTEM_CUDA_DIR.exec(p)?.[1] ?? (CUDA_LIB.test(base) ? p.slice(0, p.lastIndexOf('/')) : undefined);
    if (dir === undefined) continue;
    systemBytes += size;
    dirs.set(dir, (dirs.get(dir) ?? 0) + size);
  }
  const MIN = 10 * 1024 * 1024;
  if (systemBytes < MIN || wheelBytes < MIN) return undefined;
  const systemDirs = [...dirs].sort((a, b) => b[1] - a[1]).map(([d]) => `/${d}`);
  return { systemBytes, wheelBytes, systemDirs };
}

/** The layers applied in order: the files still visible, and what each later layer hid or replaced. */
function replayLayers(save: SaveContents) {
  const live = new Map<string, { size: number; layer: number }>();
  const wasted: WastedFile[] = [];
  const wastedPerLayer: number[] = [];
  const layers: LayerInfo[] = [];
  const waste = (path: string, f: { size: number; layer: number }, by: number, how: WastedFile['how']) => {
    if (f.size <= 0) return;
    wasted.push({ path, bytes: f.size, addedIn: f.layer, wastedBy: by, how });
    wastedPerLayer[f.layer] = (wastedPerLayer[f.layer] ?? 0) + f.size;
  };
  const removeUnder = (prefix: string, layer: number) => {
    for (const [p, f] of live) {
      if (p === prefix || prefix === '' || p.startsWith(`${prefix}/`)) {
        waste(p, f, layer, 'deleted');
        live.delete(p);
      }
    }
  };
  save.layerOrder.forEach((name, index) => {
    const t = save.tables.get(name);
    if (!t) throw unreadable(`docker save output lacks the layer ${name} its manifest lists`);
    // Within one layer, opaque markers and whiteouts apply to lower layers only.
    for (const dir of t.opaque) removeUnder(dir, index);
    for (const p of t.whiteouts) removeUnder(p, index);
    let size = 0;
    for (const [p, s] of t.files) {
      size += s;
      const before = live.get(p);
      if (before) waste(p, before, index, 'overwritten');
      live.set(p, { size: s, layer: index });
    }
    layers.push({
      index,
      diffId: save.diffIds[index],
      createdBy: instructionOf(save.createdBy[index] ?? ''),
      sizeBytes: size,
      files: t.files.size,
      wastedBytes: 0,
    });
  });
  return { live, wasted, wastedPerLayer, layers };
}

export function analyseLayers(image: string, save: SaveContents, topN = 10): LayerReport {
  const { live, wasted, wastedPerLayer, layers } = replayLayers(save);
  for (const l of layers) l.wastedBytes = wastedPerLayer[l.index] ?? 0;
  const totalBytes = layers.reduce((n, l) => n + l.sizeBytes, 0);
  const wastedBytes = wasted.reduce((n, w) => n + w.bytes, 0);
  const largestFiles = [...live.entries()]
    .map(([path, f]) => ({ path, bytes: f.size, layer: f.layer }))
    .sort((a, b) => b.bytes - a.bytes || a.path.localeCompare(b.path))
    .slice(0, topN);
  const stacks = cudaStacks([...live].map(([p, f]) => [p, f.size]));
  return {
    image,
    totalBytes,
    visibleBytes: totalBytes - wastedBytes,
    wastedBytes,
    layers,
    wasted: wasted.sort((a, b) => b.bytes - a.bytes || a.path.localeCompare(b.path)).slice(0, topN),
    largestFiles,
    ...(stacks ? { cudaStacks: stacks } : {}),
  };
}

export interface LayerComparison {
  before: LayerReport;
  after: LayerReport;
  deltaBytes: number;
  /** Layers of `after` that `before` already has (a registry holding `before` skips them). */
  sharedLayers: number;
  /** Bytes of `after`'s layers that `before` does not have: what a push after `before` uploads. */
  newBytes: number;
}

export function compareLayers(before: LayerReport, after: LayerReport): LayerComparison {
  const known = new Set(before.layers.map((l) => l.diffId).filter(Boolean));
  const fresh = after.layers.filter((l) => !l.diffId || !known.has(l.diffId));
  return {
    before,
    after,
    deltaBytes: after.totalBytes - before.totalBytes,
    sharedLayers: after.layers.length - fresh.length,
    newBytes: fresh.reduce((n, l) => n + l.sizeBytes, 0),
  };
}

export interface LayerDeps {
  saveImage(ref: string): Promise<Readable>;
}

export async function measureImage(image: string, deps: LayerDeps, topN = 10): Promise<LayerReport> {
  const stream = await deps.saveImage(image);
  return analyseLayers(image, await readSaveStream(stream), topN);
}
