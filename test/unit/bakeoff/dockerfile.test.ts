// The candidate Dockerfile: golden files per case (UPDATE_GOLDEN=1 to regenerate on
// purpose), and the layer order that makes candidates share cache.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CandidateSchema } from '../../../src/config/bakeoff-schema.js';
import { builtinMatrix } from '../../../src/core/bakeoff/matrix.js';
import { resolveCandidate } from '../../../src/core/bakeoff/resolve.js';
import { imageSpec } from '../../../src/core/bakeoff/run-candidate.js';
import {
  generateBakeoffDockerfile,
  generateSharedPrefix,
} from '../../../src/generators/bakeoff-dockerfile.js';

const UPDATE = process.env.UPDATE_GOLDEN === '1';
const GOLDEN = 'test/golden/bakeoff';
const matrix = builtinMatrix();

function dockerfileFor(
  name: string,
  fields: Record<string, unknown>,
  o: { compiles?: boolean; requirementFiles?: string[]; frozen?: string[] } = {},
): string {
  const candidate = CandidateSchema.parse({
    repo: 'https://example.com/r.git',
    run: 'python demo.py',
    ...fields,
  });
  const plan = resolveCandidate(candidate, {
    matrix,
    compilesCuda: { yes: o.compiles ?? false, evidence: o.compiles ? ['kernels/add.cu'] : [] },
    host: { driver: '550.54.15', count: 1 },
  });
  return generateBakeoffDockerfile(
    imageSpec({
      name,
      candidate,
      plan,
      facts: {
        compilesCuda: { yes: false, evidence: [] },
        requirementFiles: o.requirementFiles ?? ['requirements.txt'],
      },
      ...(o.frozen ? { frozen: { imageId: 'sha256:x', imageTag: 'x', pipFreeze: o.frozen } } : {}),
    }),
  );
}

const CASES: [string, () => string][] = [
  ['cpu-requirements', () => dockerfileFor('cpu', { python: '3.11' })],
  [
    'torch-gpu-slim',
    () => dockerfileFor('torch-gpu', { framework: 'torch', framework_version: '2.3.1', gpus: 1 }),
  ],
  [
    'torch-devel-deadsnakes',
    () =>
      dockerfileFor(
        'ext',
        {
          framework: 'torch',
          framework_version: '2.1.2',
          gpus: 1,
          system_packages: ['libgl1', 'git'],
          setup: ['pip install -e .', 'python setup.py build_ext --inplace'],
        },
        { compiles: true },
      ),
  ],
  [
    'tensorflow-runtime-apt',
    () =>
      dockerfileFor('tf', { framework: 'tensorflow', framework_version: '2.12', python: '3.10', gpus: 1 }),
  ],
  [
    'frozen-pins',
    () =>
      dockerfileFor(
        'frozen',
        { framework: 'torch', framework_version: '2.3.1' },
        {
          frozen: [
            'numpy==1.26.4',
            'torch==2.3.1+cpu',
            '-e git+https://x/y@abc#egg=y',
            'mypkg @ file:///workspace/repo',
            'pip==24.0',
          ],
        },
      ),
  ],
];

describe('bakeoff Dockerfile generator', () => {
  for (const [name, make] of CASES) {
    it(`matches the golden file: ${name}`, () => {
      const file = path.join(GOLDEN, `${name}.Dockerfile`);
      const content = make();
      expect(make(), 'deterministic').toBe(content);
      if (UPDATE || !existsSync(file)) {
        mkdirSync(GOLDEN, { recursive: true });
        writeFileSync(file, content);
      }
      expect(content, 'regenerate with UPDATE_GOLDEN=1 if the change is intended').toBe(
        readFileSync(file, 'utf8'),
      );
    });
  }

  it('orders layers: base → interpreter → system deps → framework → requirements → repo → setup → freeze', () => {
    const text = dockerfileFor(
      'ext',
      {
        framework: 'torch',
        framework_version: '2.1.2',
        gpus: 1,
        system_packages: ['git'],
        setup: ['pip install -e .'],
      },
      { compiles: true },
    );
    const at = (needle: string) => {
      const i = text.indexOf(needle);
      expect(i, needle).toBeGreaterThanOrEqual(0);
      return i;
    };
    const order = [
      at('FROM nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04'),
      at('ppa:deadsnakes'),
      at('install -y --no-install-recommends git'),
      at('-m venv /opt/venv'),
      at('PIP_CONSTRAINT'),
      at('RUN pip install torch==2.1.2 --index-url https://download.pytorch.org/whl/cu121'),
      at('COPY src/ /workspace/repo/'),
      at('RUN pip install -e .'),
      at('pip freeze --all'),
    ];
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('with the default setup, only requirement files are copied before the install (code edits keep the cache)', () => {
    const text = dockerfileFor('cpu', {});
    const req = text.indexOf('COPY src/requirements.txt /workspace/repo/requirements.txt');
    const install = text.indexOf('pip install -r requirements.txt');
    const repo = text.indexOf('COPY src/ /workspace/repo/');
    expect(req).toBeGreaterThan(0);
    expect(install).toBeGreaterThan(req);
    expect(repo).toBeGreaterThan(install);
  });

  it('two candidates on the same base differ only after the shared layers (the candidate name is a comment)', () => {
    const a = dockerfileFor('alpha', {}, { requirementFiles: [] }).split('\n');
    const b = dockerfileFor('beta', {}, { requirementFiles: [] }).split('\n');
    const instructionsA = a.filter((l) => !l.startsWith('#'));
    const instructionsB = b.filter((l) => !l.startsWith('#'));
    expect(instructionsA).toEqual(instructionsB);
  });

  it('frozen pins keep registry packages only and override the framework companions', () => {
    const text = dockerfileFor(
      'frozen',
      { framework: 'torch', framework_version: '2.3.1' },
      {
        frozen: [
          'numpy==1.26.4',
          'torch==2.3.1+cpu',
          '-e git+https://x/y@abc#egg=y',
          'mypkg @ file:///workspace/repo',
        ],
      },
    );
    const line = text.split('\n').find((l) => l.includes('constraints.txt') && l.startsWith('RUN'))!;
    expect(line).toContain('numpy==1.26.4');
    expect(line).toContain('torch==2.3.1+cpu');
    expect(line).not.toContain('mypkg');
    expect(line).not.toContain('git+');
  });
});

describe('the shared prefix (built once before concurrent builds)', () => {
  it('is the first instructions of every candidate Dockerfile that shares it, and copies nothing', () => {
    const a = dockerfileFor('a', { framework: 'torch', framework_version: '2.3.1', gpus: 1 });
    const b = dockerfileFor(
      'b',
      { framework: 'torch', framework_version: '2.3.1', gpus: 1 },
      {
        requirementFiles: ['requirements.txt', 'extra.txt'],
      },
    );
    const instructions = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#'));
    const spec = (name: string, files: string[]) => {
      const candidate = CandidateSchema.parse({
        repo: 'https://example.com/r.git',
        run: 'python demo.py',
        framework: 'torch',
        framework_version: '2.3.1',
        gpus: 1,
      });
      const plan = resolveCandidate(candidate, {
        matrix,
        compilesCuda: { yes: false, evidence: [] },
        host: { driver: '550.54.15', count: 1 },
      });
      return imageSpec({
        name,
        candidate,
        plan,
        facts: { compilesCuda: { yes: false, evidence: [] }, requirementFiles: files },
      });
    };
    const prefixA = generateSharedPrefix(spec('a', ['requirements.txt']));
    const prefixB = generateSharedPrefix(spec('b', ['requirements.txt', 'extra.txt']));
    // Same base, Python and framework: the same prefix, whatever the repos hold.
    expect(prefixA).toBe(prefixB);
    expect(prefixA).not.toMatch(/^(COPY|ADD)\b/m);
    const shared = instructions(prefixA);
    expect(instructions(a).slice(0, shared.length)).toEqual(shared);
    expect(instructions(b).slice(0, shared.length)).toEqual(shared);
    expect(shared.some((l) => l.startsWith('RUN pip install'))).toBe(true); // the framework layer
  });
});
