// Layer measurement on synthetic `docker save` archives: overwrites, whiteouts,
// opaque directories, layers shared by symlink, the manifest after the layers
// (as docker 20.10 writes it), and a large layer streamed in bounded memory.

import { PassThrough, type Readable } from 'node:stream';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  analyseLayers,
  compareLayers,
  cudaStacks,
  instructionOf,
  readSaveStream,
} from '../../../src/core/optimize/layers.js';

type FileSpec = { name: string; size: number; type?: 'file' | 'directory' };

function layerTar(files: FileSpec[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const f of files) {
    if (f.type === 'directory') pack.entry({ name: f.name, type: 'directory' });
    else pack.entry({ name: f.name, size: f.size }, Buffer.alloc(f.size, 1));
  }
  pack.finalize();
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    pack.on('data', (c: unknown) => {
      parts.push(c as Buffer);
    });
    pack.on('end', () => resolve(Buffer.concat(parts)));
    pack.on('error', reject);
  });
}

const HISTORY = [
  { created_by: '/bin/sh -c #(nop) ADD file:abc in / ' },
  { created_by: '/bin/sh -c #(nop)  ENV A=1', empty_layer: true },
  { created_by: '/bin/sh -c rm big.bin && echo 120 > a.txt' },
  { created_by: '/bin/sh -c #(nop) COPY dir:123 in /dir ' },
  { created_by: 'RUN /bin/sh -c again # buildkit' },
];

async function saveArchive(): Promise<Readable> {
  const a = await layerTar([
    { name: 'a.txt', size: 100 },
    { name: 'big.bin', size: 1000 },
    { name: 'dir/', size: 0, type: 'directory' },
    { name: 'dir/x', size: 50 },
    { name: 'dir/y', size: 60 },
  ]);
  const b = await layerTar([
    { name: 'a.txt', size: 120 },
    { name: '.wh.big.bin', size: 0 },
  ]);
  const c = await layerTar([
    { name: 'dir/.wh..wh..opq', size: 0 },
    { name: 'dir/z', size: 10 },
  ]);
  const pack = tar.pack();
  pack.entry({ name: 'l1/layer.tar' }, a);
  pack.entry({ name: 'l2/layer.tar' }, b);
  pack.entry({ name: 'l3/layer.tar' }, c);
  // docker save links identical layers to the first copy.
  pack.entry({ name: 'l4/layer.tar', type: 'symlink', linkname: '../l2/layer.tar' });
  pack.entry(
    { name: 'cfg.json' },
    JSON.stringify({
      rootfs: { diff_ids: ['sha256:a', 'sha256:b', 'sha256:c', 'sha256:b'] },
      history: HISTORY,
    }),
  );
  // The manifest last, after the layers it orders.
  pack.entry(
    { name: 'manifest.json' },
    JSON.stringify([
      { Config: 'cfg.json', Layers: ['l1/layer.tar', 'l2/layer.tar', 'l3/layer.tar', 'l4/layer.tar'] },
    ]),
  );
  pack.finalize();
  return pack as unknown as Readable;
}

describe('layer measurement', () => {
  it('counts each wasted byte once, with the layer and path that caused it', async () => {
    const r = analyseLayers('img', await readSaveStream(await saveArchive()));
    expect(r.layers.map((l) => l.sizeBytes)).toEqual([1210, 120, 10, 120]);
    expect(r.totalBytes).toBe(1460);
    expect(r.wastedBytes).toBe(100 + 1000 + 50 + 60 + 120);
    expect(r.visibleBytes).toBe(130);
    const w = (p: string, by: number) => r.wasted.find((x) => x.path === p && x.wastedBy === by);
    expect(w('big.bin', 1)).toMatchObject({ bytes: 1000, addedIn: 0, how: 'deleted' });
    expect(w('a.txt', 1)).toMatchObject({ bytes: 100, addedIn: 0, how: 'overwritten' });
    expect(w('dir/x', 2)).toMatchObject({ bytes: 50, addedIn: 0, how: 'deleted' });
    expect(w('a.txt', 3)).toMatchObject({ bytes: 120, addedIn: 1, how: 'overwritten' });
    expect(r.layers.map((l) => l.wastedBytes)).toEqual([1210, 120, 0, 0]);
    expect(r.largestFiles).toEqual([
      { path: 'a.txt', bytes: 120, layer: 3 },
      { path: 'dir/z', bytes: 10, layer: 2 },
    ]);
  });

  it('names the instruction of each layer from the image history, skipping empty layers', async () => {
    const r = analyseLayers('img', await readSaveStream(await saveArchive()));
    expect(r.layers.map((l) => l.createdBy)).toEqual([
      'ADD file:abc in /',
      'RUN rm big.bin && echo 120 > a.txt',
      'COPY dir:123 in /dir',
      'RUN /bin/sh -c again',
    ]);
    expect(r.layers.map((l) => l.diffId)).toEqual(['sha256:a', 'sha256:b', 'sha256:c', 'sha256:b']);
    expect(instructionOf('/bin/sh -c #(nop)  CMD ["python"]')).toBe('CMD ["python"]');
  });

  it('compares two images: shared layers and the bytes a push would upload', async () => {
    const after = analyseLayers('after', await readSaveStream(await saveArchive()));
    const before = { ...after, image: 'before', layers: after.layers.slice(0, 2), totalBytes: 1330 };
    const c = compareLayers(before, after);
    expect(c.sharedLayers).toBe(3); // a, b and b again
    expect(c.newBytes).toBe(10);
    expect(c.deltaBytes).toBe(130);
  });

  it('streams a large layer in bounded memory', async () => {
    const big = 256 * 1024 * 1024;
    const innerSize = 512 + big + 1024;
    const outer = tar.pack();
    const source = new PassThrough();
    outer.pipe(source);
    (async () => {
      const sink = outer.entry({ name: 'big/layer.tar', size: innerSize });
      const inner = tar.pack();
      inner.pipe(sink);
      const file = inner.entry({ name: 'weights.bin', size: big });
      for (let n = 0; n < big; n += 1024 * 1024) {
        // A fresh buffer per chunk, so holding on to them would show in memory.
        const chunk = Buffer.allocUnsafe(1024 * 1024).fill(n % 251);
        if (!file.write(chunk)) await new Promise<void>((r) => file.once('drain', () => r()));
      }
      file.end(undefined);
      inner.finalize();
      await new Promise<void>((r) => sink.on('finish', () => r()));
      outer.entry(
        { name: 'c.json' },
        JSON.stringify({ rootfs: { diff_ids: ['sha256:big'] }, history: [{ created_by: 'COPY weights' }] }),
      );
      outer.entry(
        { name: 'manifest.json' },
        JSON.stringify([{ Config: 'c.json', Layers: ['big/layer.tar'] }]),
      );
      outer.finalize();
    })();
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const r = analyseLayers('big', await readSaveStream(source));
    clearInterval(timer);
    expect(r.totalBytes).toBe(big);
    expect(r.largestFiles[0]).toEqual({ path: 'weights.bin', bytes: big, layer: 0 });
    // Buffering the layer would cost at least its size; streaming costs a few chunks.
    expect(peak - base).toBeLessThan(96 * 1024 * 1024);
  }, 60_000);

  it('rejects an archive without a manifest', async () => {
    const pack = tar.pack();
    pack.entry({ name: 'x/layer.tar' }, await layerTar([{ name: 'a', size: 1 }]));
    pack.finalize();
    await expect(readSaveStream(pack as unknown as Readable)).rejects.toMatchObject({
      code: 'IMAGE_ARCHIVE_UNREADABLE',
      exitCode: 1,
      message: expect.stringMatching(/manifest/),
    });
  });
});

describe('cudaStacks', () => {
  const MB = 1024 * 1024;
  it('sums the CUDA libraries of the base image and those pip wheels brought, when both are there', () => {
    const files: [string, number][] = [
      ['usr/local/cuda-12.4/lib64/libcublasLt.so.12', 400 * MB],
      ['usr/local/cuda-12.4/lib64/libcudnn_engines_precompiled.so.9', 500 * MB],
      ['usr/lib/x86_64-linux-gnu/libnccl.so.2', 200 * MB],
      ['opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublasLt.so.12', 400 * MB],
      ['opt/venv/lib/python3.11/site-packages/torch/lib/libtorch_cuda.so', 900 * MB],
      ['opt/venv/lib/python3.11/site-packages/torch/lib/libcudnn.so.8', 100 * MB],
      ['usr/lib/x86_64-linux-gnu/libc.so.6', 2 * MB],
    ];
    expect(cudaStacks(files)).toEqual({
      systemBytes: 1100 * MB,
      wheelBytes: 500 * MB,
      systemDirs: ['/usr/local/cuda-12.4', '/usr/lib/x86_64-linux-gnu'],
    });
  });
  it('is undefined with one stack only (python slim with torch, or a CUDA image without wheels)', () => {
    expect(
      cudaStacks([['usr/local/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9', 600 * MB]]),
    ).toBeUndefined();
    expect(cudaStacks([['usr/local/cuda/lib64/libcublas.so.12', 300 * MB]])).toBeUndefined();
  });
});
