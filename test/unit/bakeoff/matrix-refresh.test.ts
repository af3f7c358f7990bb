// `mlship bakeoff matrix refresh` against a local wheel index served from fixture files
// (fixtures/bakeoff/index): PEP 691 JSON and PEP 503 HTML, content negotiation, local
// CUDA variants (download.pytorch.org) and CUDA read from core metadata (PyPI).

import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWheelIndex } from '../../../src/adapters/wheel-index.js';
import { builtinMatrix, mergeMatrix } from '../../../src/core/bakeoff/matrix.js';
import {
  cudaOfLocal,
  cudaOfMetadata,
  matrixFileText,
  parseWheelName,
  refreshMatrix,
} from '../../../src/core/bakeoff/matrix-refresh.js';
import { EnvironmentError, UsageError } from '../../../src/io/errors.js';

const FIXTURES = path.resolve('fixtures/bakeoff/index');
const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';
const fixture = (f: string) => readFileSync(path.join(FIXTURES, f), 'utf8');
let server: Server;
let root = '';
const requests: { url: string; accept: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push({ url, accept: String(req.headers.accept ?? '') });
    const send = (type: string, body: string) => {
      res.writeHead(200, { 'content-type': type });
      res.end(body);
    };
    if (url === '/whl/torch/') {
      // Content negotiation, as PEP 691 describes it: JSON when asked for, else HTML.
      if (String(req.headers.accept).includes(JSON_TYPE)) send(JSON_TYPE, fixture('torch.json'));
      else send('text/html', fixture('torch.html'));
    } else if (url === '/html-only/torch/') send('text/html; charset=utf-8', fixture('torch.html'));
    else if (url === '/simple/tensorflow/') send('text/html', fixture('tensorflow.html'));
    else if (/^\/files\/tensorflow-2\.2[01]\.0-[^/]+\.whl\.metadata$/.test(url))
      send('text/plain', fixture(`tensorflow-${/2\.2[01]\.0/.exec(url)![0]}.metadata`));
    else {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  root = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const now = new Date('2026-12-02T00:00:00Z');

describe('wheel file names and CUDA tags', () => {
  it('parses names, local versions and Python tags', () => {
    expect(parseWheelName('torch-2.9.1+cu128-cp312-cp312-manylinux_2_28_x86_64.whl')).toEqual({
      name: 'torch',
      version: '2.9.1',
      local: 'cu128',
      pythons: ['3.12'],
      platform: 'manylinux_2_28_x86_64',
    });
    expect(parseWheelName('torch-2.15.0%2Bcu132-cp315-cp315-manylinux_2_28_x86_64.whl')?.pythons).toEqual([
      '3.15',
    ]);
    expect(parseWheelName('torchvision-0.29.2-py3-none-manylinux_2_28_x86_64.whl')?.pythons).toEqual([]);
    expect(parseWheelName('torch-2.9.1.tar.gz')).toBeUndefined();
  });

  it('reads CUDA from local versions and from METADATA (the real torch and TensorFlow lines)', () => {
    expect(cudaOfLocal('cu128')).toBe('12.8');
    expect(cudaOfLocal('cu130')).toBe('13.0');
    expect(cudaOfLocal('cu92')).toBe('9.2');
    expect(cudaOfLocal('cpu')).toBeNull();
    expect(cudaOfLocal('rocm6.4')).toBeUndefined();
    expect(
      cudaOfMetadata(
        'Requires-Dist: cuda-toolkit[cublas,cudart,cufft]==13.2.2; platform_system == "Linux"\n',
      ),
    ).toBe('13.2');
    expect(
      cudaOfMetadata(
        'Requires-Dist: nvidia-cuda-runtime-cu12==12.8.90; platform_system == "Linux" and platform_machine == "x86_64"\n',
      ),
    ).toBe('12.8');
    expect(cudaOfMetadata(fixture('tensorflow-2.21.0.metadata'))).toBe('12.5');
    expect(cudaOfMetadata(fixture('tensorflow-2.20.0.metadata'))).toBe('12.5');
    expect(cudaOfMetadata('Requires-Dist: numpy>=1.26\n')).toBeUndefined();
  });
});

describe('refreshing from a local index', () => {
  it('PEP 691 JSON: releases × Python × CUDA variants; pre-releases, yanked, other platforms and ROCm left out', async () => {
    const r = await refreshMatrix(
      { framework: 'torch', index: `${root}/whl`, base: builtinMatrix(), now },
      createWheelIndex(),
    );
    expect(requests.find((q) => q.url === '/whl/torch/')?.accept).toContain(JSON_TYPE);
    expect(Object.keys(r.entries)).toEqual(['2.9.1', '2.15.0']);
    expect(r.entries['2.9.1']).toEqual({
      python: ['3.10', '3.11', '3.12', '3.13', '3.14'],
      cuda: ['12.6', '12.8', '13.0'],
      bundlesCuda: true,
      // Kept from the matrix refreshed: the index does not say which torchvision goes with it.
      companions: { torchvision: '0.24.1', torchaudio: '2.9.1' },
    });
    expect(r.entries['2.15.0']).toMatchObject({
      python: ['3.11', '3.12', '3.13', '3.14', '3.15'],
      cuda: ['13.0', '13.2'],
    });
    expect(r.unknownCuda).toEqual({});
    // A mirror's matrix points the wheel index at the mirror too.
    expect(r.file.torchIndex).toEqual({ cuda: `${root}/whl/{tag}`, cpu: `${root}/whl/cpu` });
  });

  it('PEP 503 HTML gives the same answer; a CUDA the table lacks is left out and named', async () => {
    const base = builtinMatrix();
    const { '13.2': _dropped, ...cuda } = base.cuda;
    const r = await refreshMatrix(
      { framework: 'torch', index: `${root}/html-only`, base: { ...base, cuda }, now, since: '2.10' },
      createWheelIndex(),
    );
    expect(Object.keys(r.entries)).toEqual(['2.15.0']);
    expect(r.entries['2.15.0']!.cuda).toEqual(['13.0']);
    expect(r.unknownCuda).toEqual({ '13.2': ['2.15.0'] });
    expect(matrixFileText(r)).toMatch(/CUDA 13\.2 \(used by 2\.15\.0\) is not in the cuda table/);
  });

  it('wheels without local versions: CUDA from the core metadata the index offers (TensorFlow on PyPI)', async () => {
    const r = await refreshMatrix(
      { framework: 'tensorflow', index: `${root}/simple`, base: builtinMatrix(), now, since: '2.20' },
      createWheelIndex(),
    );
    expect(r.entries).toEqual({
      '2.20.0': {
        python: ['3.10', '3.11', '3.12', '3.13'],
        cuda: ['12.5'],
        bundlesCuda: true,
        package: 'tensorflow[and-cuda]',
      },
      '2.21.0': {
        python: ['3.10', '3.11', '3.12', '3.13'],
        cuda: ['12.5'],
        bundlesCuda: true,
        package: 'tensorflow[and-cuda]',
      },
    });
    expect(requests.some((q) => q.url.endsWith('.whl.metadata'))).toBe(true);
  });

  it('the file it writes is a matrix `--matrix` accepts, and it extends the built-in one', async () => {
    const r = await refreshMatrix(
      { framework: 'torch', index: `${root}/whl`, base: builtinMatrix(), now },
      createWheelIndex(),
    );
    const merged = mergeMatrix(builtinMatrix(), 'bakeoff-matrix.yaml', matrixFileText(r));
    expect(merged.frameworks.torch['2.15.0']!.cuda).toEqual(['13.0', '13.2']);
    expect(merged.frameworks.torch['2.8.0']).toEqual(builtinMatrix().frameworks.torch['2.8.0']);
    expect(merged.torchIndex.cuda).toBe(`${root}/whl/{tag}`);
  });

  it('a project the index lacks is a usage error; an unreachable index an environment error', async () => {
    await expect(
      refreshMatrix(
        { framework: 'torch', index: `${root}/nothing`, base: builtinMatrix(), now },
        createWheelIndex(),
      ),
    ).rejects.toBeInstanceOf(UsageError);
    await expect(
      refreshMatrix(
        { framework: 'torch', index: 'http://127.0.0.1:9/whl', base: builtinMatrix(), now },
        createWheelIndex(2000),
      ),
    ).rejects.toBeInstanceOf(EnvironmentError);
  });
});
