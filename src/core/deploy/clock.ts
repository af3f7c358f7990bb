// Time for the steps that wait on AWS (services draining, rollouts): a real clock, or
// a fake one in tests so that nothing sleeps.

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
