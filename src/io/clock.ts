// The one clock: wall time, a monotonic reading for durations, and sleeping. Core
// receives it with its other dependencies, so tests that wait (rollouts, retries,
// health polling) pass a fake one and never sleep.

export interface Clock {
  /** Wall-clock milliseconds since the epoch (timestamps, deadlines across processes). */
  now(): number;
  /** Monotonic milliseconds for measuring durations (never jumps with the system clock). */
  monotonic(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** A clock that only moves when something sleeps on it (or `advance` is called): for tests. */
export function fakeClock(start = 0): Clock & { advance(ms: number): void; slept: number[] } {
  let t = start;
  const slept: number[] = [];
  return {
    now: () => t,
    monotonic: () => t,
    async sleep(ms) {
      slept.push(ms);
      t += ms;
    },
    advance(ms) {
      t += ms;
    },
    slept,
  };
}
