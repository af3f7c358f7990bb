// A recorded rollout with the defaults `mlship rollout start` gives it, for tests that build
// one by hand (the generated stack, the state file, watch with a fake target).

import type { Rollout } from '../../src/config/rollout-schema.js';

export function rollout(over: Partial<Rollout> & Pick<Rollout, 'service' | 'mode'>): Rollout {
  return {
    weight: 0,
    mirror: false,
    recordSample: 0.1,
    shadowTimeoutMs: 250,
    candidate: { env: {}, recordInputs: false },
    status: 'running',
    startedAt: '2025-01-01T00:00:00.000Z',
    history: [],
    ...over,
  };
}
