import { defineConfig } from 'vitest/config';

// Tiers:
// - unit: pure and fast; needs nothing but `npm ci` (no dist/, no .venv, no engine).
// - tools: the built CLI (dist/, built by the global setup when stale) and the tools of
//   .venv (moto, ruff, pytest, botocore's models) or docker-compose; no engine.
// - docker: a real engine (test/docker), and the packed CLI against it (test/e2e).
// A test whose tool is missing skips with its reason locally and fails on CI.
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
          name: 'tools',
          include: ['test/tools/**/*.test.ts'],
          globalSetup: ['test/helpers/global-build.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'docker',
          include: ['test/docker/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/helpers/global-build.ts', 'test/helpers/global-docker.ts'],
          testTimeout: 600_000,
          hookTimeout: 900_000,
          // The machine has 2 cores: run engine-heavy files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
