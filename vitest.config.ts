import { defineConfig } from 'vitest/config';

// Tiers: unit (pure, fast), docker (a real engine), e2e (the packed CLI against a real engine).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'docker',
          include: ['test/docker/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/helpers/global-docker.ts'],
          testTimeout: 600_000,
          hookTimeout: 900_000,
          // The machine has 2 cores: run engine-heavy files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
