import type { ContextFile, ContextSnapshot } from '../../../src/core/optimize/context.js';
import { lintDockerfile } from '../../../src/core/optimize/lint.js';
import { parseDockerfile } from '../../../src/core/optimize/parse.js';
import type { Finding } from '../../../src/core/optimize/rules.js';

/** Dockerfile text from lines, so line numbers in tests are easy to count. */
export function df(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

export function snapshot(
  files: Record<string, number>,
  dockerignore: string | null = '.git\n',
  texts: Record<string, string> = {},
): ContextSnapshot {
  const list: ContextFile[] = Object.entries(files).map(([path, size]) => ({ path, size }));
  return { files: list, dockerignore, readText: (p) => texts[p] };
}

export function findings(
  text: string,
  opts: { context?: ContextSnapshot; ignore?: string[]; large?: number; target?: string } = {},
): Finding[] {
  return lintDockerfile(parseDockerfile(text, 'Dockerfile'), {
    context: opts.context,
    ignore: opts.ignore ?? [],
    largeFileBytes: opts.large ?? 1000,
    target: opts.target,
  }).findings;
}

/** [line, rule] pairs of one rule, for compact assertions. */
export function hits(text: string, rule: string, opts: Parameters<typeof findings>[1] = {}): number[] {
  return findings(text, opts)
    .filter((f) => f.rule === rule)
    .map((f) => f.line);
}

import {
  existsSync as existsSyncNode,
  readdirSync as readdirSyncNode,
  readFileSync as readFileSyncNode,
  writeFileSync as writeFileSyncNode,
} from 'node:fs';
import { readFile as readFileNode } from 'node:fs/promises';
import pathNode from 'node:path';
import { expect } from 'vitest';
import { listContext } from '../../../src/adapters/docker/build-context.js';
import type { OptimizeFsDeps } from '../../../src/core/optimize/optimize.js';

export const FIXTURES = pathNode.resolve('fixtures/optimize');

export interface FixtureInfo {
  name: string;
  dir: string;
  context: string;
  description: string;
  build: boolean;
  largeFileBytes?: number;
  /** Rewrite with --slim-base. */
  slimBase?: boolean;
  /** A CUDA devel final stage the rewrite splits onto the runtime image (built on local stand-ins). */
  cudaSplit?: boolean;
  /** The original cannot build (the point of the fixture); the rewrite must. */
  failsBefore?: boolean;
}

export function fixtures(): FixtureInfo[] {
  return readdirSyncNode(FIXTURES)
    .sort()
    .map((name) => {
      const dir = pathNode.join(FIXTURES, name);
      const meta = JSON.parse(readFileSyncNode(pathNode.join(dir, 'fixture.json'), 'utf8')) as Omit<
        FixtureInfo,
        'name' | 'dir' | 'context'
      >;
      return { name, dir, context: pathNode.join(dir, 'context'), ...meta };
    });
}

export const fsDeps: OptimizeFsDeps = {
  readText: async (f) => {
    try {
      return await readFileNode(f, 'utf8');
    } catch {
      return undefined;
    }
  },
  listContext: async (dir, dockerfile) =>
    (await listContext(dir, dockerfile))
      .filter((e) => e.type === 'file')
      .map((e) => ({ path: e.name, size: e.size })),
};

/** Compares with a golden file; `UPDATE_GOLDEN=1` rewrites it instead (review the diff). */
export function expectGolden(file: string, actual: string): void {
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSyncNode(file, actual);
    return;
  }
  if (!existsSyncNode(file))
    throw new Error(`golden ${file} is missing: run with UPDATE_GOLDEN=1 and review it`);
  expect(actual, `${file} differs (UPDATE_GOLDEN=1 updates it)`).toBe(readFileSyncNode(file, 'utf8'));
}
