// Where a stack's rollouts are recorded (beside the generated stack:
// deploy/compose/rollouts.json; on ECS deploy/ecs-rollouts.json) and how they are read
// and written: validated on the way in (a damaged file names its field), atomically on the
// way out. Imports nothing of compose or deploy, so both can read it without a cycle.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Rollout, type RolloutsFile, RolloutsFileSchema } from '../../config/rollout-schema.js';
import { UsageError } from '../../io/errors.js';
import { exists, writeFileAtomic } from '../../io/files.js';

export const ROLLOUTS_FILE = 'rollouts.json';

/**
 * The rollouts on ECS of the stack of `configFile`: deploy/ecs-rollouts.json, beside (not in)
 * deploy/ecs, which `deploy ecs` owns and regenerates.
 */
export function ecsRolloutsFile(configFile: string): string {
  return path.join(path.dirname(path.resolve(configFile)), 'deploy', 'ecs-rollouts.json');
}

export async function readRollouts(file: string): Promise<RolloutsFile> {
  if (!(await exists(file))) return { version: 1, rollouts: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${file} is not valid JSON: ${(e as Error).message}`, {
      hint: 'it records the rollouts of this stack; restore it from version control or remove it to forget them',
    });
  }
  const parsed = RolloutsFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UsageError(`${file} does not describe rollouts`, {
      details: parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`),
      hint: 'it is written by `mlship rollout`; restore it, or remove it to forget the rollouts it records',
    });
  }
  return parsed.data;
}

export async function writeRollouts(file: string, data: RolloutsFile): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(data, null, 2)}\n`);
}

/** The rollouts still running (a promoted or rolled-back one no longer shapes the stack). */
export async function runningRollouts(dir: string): Promise<Rollout[]> {
  const { rollouts } = await readRollouts(path.join(dir, ROLLOUTS_FILE));
  return Object.values(rollouts).filter((r) => r.status === 'running');
}
