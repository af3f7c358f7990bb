// The score command against a fake engine: which image it runs in (the candidate's, or
// `score.image`), what it sees (outputs and config read-only, inputs, the weights cache),
// and that each way it can go wrong is a score_failed of its own, with the container
// always removed. (The docker tier scores real candidates: test/docker/bakeoff-judge.test.ts.)

import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ContainerHandle, ContainerSpec } from '../../../src/adapters/docker/engine.js';
import { RUN_LABEL } from '../../../src/adapters/docker/engine.js';
import { ScoreSchema } from '../../../src/config/bakeoff-schema.js';
import type { BakeoffEngine } from '../../../src/core/bakeoff/deps.js';
import { CONFIG_DIR, OUTPUTS_DIR, type ScoreJob, scoreCandidate } from '../../../src/core/bakeoff/score.js';

interface Behaviour {
  exitCode?: number;
  log?: string;
  hang?: boolean;
  startError?: Error;
}

/** Only `start` is used by scoring; the rest of the engine must not be reached. */
function fakeEngine(b: Behaviour) {
  const started: ContainerSpec[] = [];
  const seen = { removed: 0, killed: 0 };
  const unused = async (): Promise<never> => {
    throw new Error('scoring must only start a container');
  };
  const engine: BakeoffEngine = {
    endpoint: { source: 'default socket', address: 'unix:///var/run/docker.sock', socketPath: '/x' },
    info: unused,
    version: unused,
    build: unused,
    inspectImage: unused,
    getArchive: unused,
    async start(spec: ContainerSpec): Promise<ContainerHandle> {
      if (b.startError) throw b.startError;
      started.push(spec);
      let finish!: (code: number) => void;
      const done = new Promise<number>((resolve) => {
        finish = resolve;
      });
      if (!b.hang) setTimeout(() => finish(b.exitCode ?? 0), 5);
      return {
        id: 'score0',
        inspect: unused,
        hostPort: async () => undefined,
        followLogs: async () => undefined,
        logs: async () => b.log ?? '',
        stop: async () => undefined,
        kill: async () => {
          seen.killed++;
          finish(137);
        },
        wait: async () => ({ exitCode: await done }),
        remove: async () => {
          seen.removed++;
        },
        stats: async () => ({ memoryBytes: 0 }),
      };
    },
  };
  return { engine, started, seen };
}

function job(score: Record<string, unknown>, extra: Partial<ScoreJob> = {}): ScoreJob {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-score-'));
  return {
    name: 'pose-b',
    score: ScoreSchema.parse(score),
    imageId: `sha256:${'c'.repeat(64)}`,
    outputsDir: path.join(dir, 'outputs'),
    configDir: dir,
    inputs: [
      { type: 'bind', source: path.join(dir, 'images'), target: '/workspace/inputs/images', readOnly: true },
    ],
    runId: 'run-1',
    wanted: ['pck'],
    ...extra,
  };
}

const signal = () => new AbortController().signal;

describe('the score command (fake engine)', () => {
  it("runs in the candidate's image with outputs and config read-only, and reads the metrics", async () => {
    const { engine, started, seen } = fakeEngine({
      log: 'scoring 12 images\n{"pck": 0.83, "latency_ms": 41}\n',
    });
    const j = job({ run: 'python score.py' }, { weightsCache: '/home/u/.cache/mlship/weights' });
    const r = await scoreCandidate(j, engine, signal());
    expect(r.failure).toBeNull();
    expect(r.metrics).toEqual({ pck: 0.83, latency_ms: 41 });
    const spec = started[0]!;
    expect(spec.image).toBe(j.imageId);
    expect(spec.cmd).toEqual(['sh', '-c', 'python score.py']);
    expect(spec.workdir).toBe(CONFIG_DIR);
    expect(spec.labels?.[RUN_LABEL]).toBe('run-1');
    expect(spec.env).toMatchObject({ MLSHIP_OUTPUTS: OUTPUTS_DIR, MLSHIP_CANDIDATE: 'pose-b' });
    expect(spec.env?.HF_HOME).toMatch(/huggingface$/);
    const byTarget = Object.fromEntries((spec.mounts ?? []).map((m) => [m.target, m]));
    expect(byTarget[OUTPUTS_DIR]).toMatchObject({ source: j.outputsDir, readOnly: true });
    expect(byTarget[CONFIG_DIR]).toMatchObject({ source: j.configDir, readOnly: true });
    expect(byTarget['/workspace/inputs/images']).toMatchObject({ readOnly: true });
    expect(Object.keys(byTarget)).toHaveLength(4);
    expect(seen.removed).toBe(1);
  });

  it('score.image: a scoring image of its own, not the candidate’s', async () => {
    const { engine, started } = fakeEngine({ log: '{"pck": 0.5}\n' });
    const r = await scoreCandidate(
      job({ run: 'python score.py', image: 'mlship-local/python:3.11-slim' }),
      engine,
      signal(),
    );
    expect(r.metrics).toEqual({ pck: 0.5 });
    expect(started[0]!.image).toBe('mlship-local/python:3.11-slim');
    expect(started[0]!.env?.HF_HOME).toBeUndefined();
  });

  it('a non-zero exit, a timeout and a start failure are each score_failed, container removed', async () => {
    const crashed = fakeEngine({ exitCode: 1, log: 'Traceback\nKeyError: labels\n' });
    const a = await scoreCandidate(job({ run: 'python score.py' }), crashed.engine, signal());
    expect(a.failure).toMatchObject({
      category: 'score_failed',
      message: 'the score command exited with code 1',
    });
    expect(a.failure?.evidence).toContain('KeyError: labels');
    expect(crashed.seen.removed).toBe(1);

    const slow = fakeEngine({ hang: true });
    const b = await scoreCandidate(job({ run: 'sleep 99', timeout: '0.05s' }), slow.engine, signal());
    expect(b.failure?.category).toBe('score_failed');
    expect(b.failure?.message).toMatch(/did not finish within/);
    expect(b.failure?.hint).toMatch(/score\.timeout/);
    expect(slow.seen).toEqual({ killed: 1, removed: 1 });

    const missing = fakeEngine({ startError: new Error('No such image: scorer:1') });
    const c = await scoreCandidate(job({ run: 'x', image: 'scorer:1' }), missing.engine, signal());
    expect(c.failure).toMatchObject({ category: 'score_failed', hint: 'check score.image and score.run' });
    expect(c.failure?.message).toContain('No such image: scorer:1');
    expect(c.metrics).toEqual({});
  });
});
