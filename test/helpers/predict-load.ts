// The rollout fixtures' model (fixtures/rollout v1 and v2, `{"x": n}` → `prediction`): how to
// wrap a version, and its predictions for x = from..to-1, `concurrency` at a time, each answer with the version that gave it
// (`X-Model-Version`), and what `rollout status --json` says of them: shared by the rollout
// tests, locally and on ECS (`deploy ecs --local`).

import path from 'node:path';
import { LOCAL_PYTHON_IMAGE } from './docker.js';

/** `mlship wrap` arguments of a version of fixtures/rollout, wrapped into `out` as service `name`. */
export function wrapRolloutArgs(version: 'v1' | 'v2', out: string, name: string): string[] {
  const entry = `${path.resolve('fixtures/rollout', version, 'predict.py')}:predict`;
  return ['wrap', '--entry', entry, '--out', out, '--name', name, '--base-image', LOCAL_PYTHON_IMAGE];
}

export interface Answer {
  x: number;
  status: number;
  version: string | null;
  prediction: unknown;
}

/** `send(x)` posts one request (with whatever retry or headers the caller needs). */
export async function predictAll(
  send: (x: number) => Promise<Response>,
  from: number,
  to: number,
  concurrency: number,
): Promise<Answer[]> {
  const out: Answer[] = [];
  let next = from;
  const worker = async () => {
    while (next < to) {
      const x = next++;
      const r = await send(x);
      const body = (await r.json().catch(() => ({}))) as { prediction?: unknown };
      out.push({
        x,
        status: r.status,
        version: r.headers.get('x-model-version'),
        prediction: body.prediction,
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

/** The part of `mlship rollout status --json` the rollout tests read. */
export interface StatusJson {
  comparison: {
    stable: { requests: number };
    candidate: { requests: number };
    agreement?: { pairs: number; rate: number };
  };
  mirror?: { mirrored: number; predicted: number; notPredicted: number };
  verdict: { decision: string; reasons: string[] };
}
