// The CUDA × framework × Python compatibility matrix: data (matrix.json, with its
// sources), not code, so a user can extend or override it with `--matrix file`
// without waiting for an mlship release.

import { z } from 'zod';
import { parseYamlConfig } from '../../config/load.js';
import { ConfigError } from '../../io/errors.js';
import builtin from './matrix.json' with { type: 'json' };

const Version = z.string().regex(/^\d+(\.\d+){0,2}$/, { message: 'must be a version such as "12.1"' });
const Driver = z
  .string()
  .regex(/^\d+(\.\d+){1,2}$/, { message: 'must be a driver version such as "530.30.02"' });

const CudaEntry = z.strictObject({
  full: z.string().regex(/^\d+\.\d+\.\d+$/, { message: 'must be the full toolkit version, e.g. "12.1.1"' }),
  minDriver: Driver.describe('Minimum Linux driver of the toolkit (full compatibility).'),
  minDriverCompat: Driver.describe('Minimum driver under CUDA minor-version compatibility.'),
  cudnn: z.string().describe('cuDNN part of the nvidia/cuda tag ("cudnn8", "cudnn9", "cudnn").'),
  ubuntu: z.enum(['20.04', '22.04', '24.04']),
});

const FrameworkEntry = z.strictObject({
  python: z.array(Version).min(1),
  cuda: z.array(Version),
  bundlesCuda: z
    .boolean()
    .describe('The wheels carry their own CUDA libraries (no CUDA needed in the image).'),
  package: z.string().optional().describe('pip requirement name (default: the framework name).'),
  companions: z
    .record(z.string(), z.string())
    .optional()
    .describe('Packages pinned with it (torchvision, …).'),
});

export const MatrixSchema = z.strictObject({
  matrixVersion: z.literal(1),
  updated: z.string().optional(),
  sources: z.record(z.string(), z.string()).default({}),
  cuda: z.record(Version, CudaEntry),
  ubuntuPython: z.record(z.string(), Version),
  frameworks: z.strictObject({
    torch: z.record(Version, FrameworkEntry).default({}),
    tensorflow: z.record(Version, FrameworkEntry).default({}),
  }),
  torchIndex: z.strictObject({ cuda: z.string(), cpu: z.string() }),
});

export type Matrix = z.output<typeof MatrixSchema>;
export type CudaInfo = z.output<typeof CudaEntry>;
export type FrameworkInfo = z.output<typeof FrameworkEntry>;

/** The matrix shipped with mlship. */
export function builtinMatrix(): Matrix {
  return MatrixSchema.parse(builtin);
}

const OverrideSchema = MatrixSchema.partial().extend({
  frameworks: z
    .strictObject({
      torch: z.record(Version, FrameworkEntry).optional(),
      tensorflow: z.record(Version, FrameworkEntry).optional(),
    })
    .optional(),
});

/**
 * Merges a user matrix (JSON or YAML) over the built-in one: entries with the same key
 * replace the built-in entry, new keys extend it. Cross references are checked after merging.
 */
export function mergeMatrix(base: Matrix, file: string, text: string): Matrix {
  const over = parseYamlConfig(file, text, OverrideSchema);
  const merged: Matrix = {
    ...base,
    sources: { ...base.sources, ...(over.sources ?? {}) },
    cuda: { ...base.cuda, ...(over.cuda ?? {}) },
    ubuntuPython: { ...base.ubuntuPython, ...(over.ubuntuPython ?? {}) },
    frameworks: {
      torch: { ...base.frameworks.torch, ...(over.frameworks?.torch ?? {}) },
      tensorflow: { ...base.frameworks.tensorflow, ...(over.frameworks?.tensorflow ?? {}) },
    },
    torchIndex: over.torchIndex ?? base.torchIndex,
  };
  const problems = matrixProblems(merged);
  if (problems.length) {
    throw new ConfigError(
      file,
      problems.map((p) => ({ file, line: 1, column: 1, path: p.path, message: p.message, fix: p.fix })),
    );
  }
  return merged;
}

/** Cross-reference problems: a framework naming a CUDA version the table does not describe. */
export function matrixProblems(m: Matrix): { path: string; message: string; fix: string }[] {
  const out: { path: string; message: string; fix: string }[] = [];
  for (const fw of ['torch', 'tensorflow'] as const) {
    for (const [version, entry] of Object.entries(m.frameworks[fw])) {
      entry.cuda.forEach((c, i) => {
        if (!m.cuda[c]) {
          out.push({
            path: `frameworks.${fw}.${version}.cuda[${i}]`,
            message: `CUDA ${c} is not in the cuda table`,
            fix: `add cuda."${c}" (full version, minDriver, minDriverCompat, cudnn, ubuntu)`,
          });
        }
      });
    }
  }
  return out;
}

/** Numeric comparison of dotted versions ("2.10" > "2.9"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function sortVersions(vs: Iterable<string>): string[] {
  return [...vs].sort(compareVersions);
}
