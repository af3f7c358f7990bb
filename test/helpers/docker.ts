// Integration tests need a real engine. Locally without one they skip with a
// reason; with CI set they fail loudly instead, so CI can never pass by skipping.

import { execFileSync } from 'node:child_process';
import { DockerEngine, MANAGED_LABEL } from '../../src/adapters/docker/engine.js';

export const CI = Boolean(process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0');

let cached: { engine: DockerEngine | undefined; reason: string | undefined } | undefined;

export async function probeEngine(): Promise<{
  engine: DockerEngine | undefined;
  reason: string | undefined;
}> {
  if (cached) return cached;
  try {
    const engine = await DockerEngine.connect();
    await engine.ping(3000);
    cached = { engine, reason: undefined };
  } catch (e) {
    cached = { engine: undefined, reason: (e as Error).message };
  }
  return cached;
}

/**
 * Returns the engine, or undefined when tests should skip (never on CI).
 * Use: `const engine = await requireEngine(); it.skipIf(!engine)(...)` or call in beforeAll.
 */
export async function requireEngine(): Promise<DockerEngine | undefined> {
  const { engine, reason } = await probeEngine();
  if (!engine) {
    if (CI)
      throw new Error(
        `CI is set but no Docker engine is reachable (${reason}); integration tests must not skip on CI`,
      );
    console.warn(`skipping Docker tests: ${reason}`);
  }
  return engine;
}

/** Base images created by scripts/local-base-images.sh (no registry is reachable here). */
export const LOCAL_PYTHON_IMAGE = process.env.MLSHIP_TEST_PYTHON_IMAGE ?? 'mlship-local/python:3.11-slim';
export const LOCAL_DEBIAN_IMAGE = process.env.MLSHIP_TEST_DEBIAN_IMAGE ?? 'mlship-local/debian:bookworm';

export async function requireImage(engine: DockerEngine, image: string): Promise<void> {
  if (!(await engine.imageExists(image))) {
    throw new Error(`base image ${image} is missing: run scripts/local-base-images.sh first`);
  }
}

/** Containers carrying mlship's label and the given test run label. */
export async function countManaged(engine: DockerEngine, runLabel?: string): Promise<number> {
  const list = runLabel
    ? await engine.listByLabel('dev.mlship.run', runLabel)
    : await engine.listByLabel(MANAGED_LABEL);
  return list.length;
}

export function dockerCli(args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' });
}

/**
 * Removes every image tag that contains `marker` (a run's unique id), including the tags a test
 * gave it for pushes (`127.0.0.1:5000/<repo>:<run>`), so repeated runs do not pile up images.
 */
export function removeImagesTagged(marker: string): number {
  const tags = dockerCli(['images', '--format', '{{.Repository}}:{{.Tag}}'])
    .split('\n')
    .filter((t) => t && !t.includes('<none>') && t.includes(marker));
  for (const t of tags) execFileSync('docker', ['rmi', '-f', t], { stdio: 'ignore' });
  return tags.length;
}
