// composeUp's decisions with fake engine and compose: what it runs, how it waits,
// and what it shows when a service fails.

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ComposeCli, ComposeProject } from '../../../src/adapters/compose.js';
import type { ContainerState } from '../../../src/adapters/docker/engine.js';
import type { ExecResult } from '../../../src/adapters/exec.js';
import { generateCompose } from '../../../src/core/compose/generate.js';
import { composeUp, PROJECT_LABEL, SERVICE_LABEL } from '../../../src/core/compose/run.js';
import { OperationFailedError } from '../../../src/io/errors.js';
import { PlainTaskRunner } from '../../../src/io/progress.js';
import { createStyler } from '../../../src/io/style.js';

const cli: ComposeCli = { argv: ['docker-compose'], version: '1.29.2', major: 1 };
const ok = (stdout = ''): ExecResult => ({
  exitCode: 0,
  stdout,
  stderr: '',
  notFound: false,
  timedOut: false,
});
const quiet = new Writable({ write: (_c, _e, cb) => cb() });

function fakes(timeline: (tick: number) => Record<string, Partial<ContainerState>>) {
  const calls: string[][] = [];
  let tick = 0;
  let clock = 0;
  return {
    calls,
    deps: {
      engine: {
        listByLabel: async (label: string, value?: string) => {
          expect(label).toBe(PROJECT_LABEL);
          const states = timeline(tick++);
          return Object.entries(states).map(([svc, st]) => ({
            id: svc,
            name: svc,
            image: 'x',
            state: 'running',
            health: undefined,
            ...st,
            labels: { [PROJECT_LABEL]: value!, [SERVICE_LABEL]: svc },
          }));
        },
        run: async () => ({
          containerId: 'x',
          exitCode: 0,
          oomKilled: false,
          timedOut: false,
          durationMs: 1,
          stdoutTail: [],
          stderrTail: [],
        }),
        volumeExists: async () => false,
      },
      ensureBucket: async () => true,
      compose: async (_p: ComposeProject, args: string[]) => {
        calls.push(args);
        return args.includes('logs')
          ? ok('iris  | Traceback (most recent call last):\niris  | ValueError: model file is corrupt')
          : ok();
      },
      cli,
      tasks: new PlainTaskRunner(quiet, createStyler(0)),
      fetch: (async () => new Response(JSON.stringify({ prediction: 1 }), { status: 200 })) as typeof fetch,
      log: () => undefined,
      sleep: async (ms: number) => {
        clock += ms;
      },
      now: () => clock,
    },
  };
}

const gen = () =>
  generateCompose({ configFile: 'fixtures/compose/pipeline/mlship.yaml', force: false, dryRun: true });

describe('compose up (fake engine)', () => {
  it('runs the active profile only, waits for every service of it, and reports them', async () => {
    const g = await gen();
    const names = [
      'database',
      'storage',
      'frontend',
      'detector-cpu',
      'pose-2d-cpu',
      'pose-3d-cpu',
      'proxy-cpu',
    ];
    const f = fakes((t) =>
      Object.fromEntries(names.map((n) => [n, { health: t < 3 ? 'health: starting' : 'healthy' }])),
    );
    const r = await composeUp(f.deps, g, { build: true, smoke: false, profile: 'cpu' });
    expect(f.calls.slice(0, 2)).toEqual([
      ['--profile', 'cpu', 'build'],
      ['--profile', 'cpu', 'up', '-d', '--remove-orphans'],
    ]);
    expect(r.profile).toBe('cpu');
    expect(r.services.map((s) => s.service).sort()).toEqual([...names].sort());
    expect(r.services.find((s) => s.service === 'detector-cpu')?.url).toBe(
      'http://127.0.0.1:8080/api/detector/',
    );
    expect(r.storage).toEqual({ endpoint: 'http://127.0.0.1:9000', bucket: 'pose-models', created: true });
  });

  it('a service that turns unhealthy fails the run with its state and last log lines', async () => {
    const g = await gen();
    const f = fakes((t) => ({
      database: { health: 'healthy' },
      storage: { health: 'healthy' },
      frontend: { health: 'healthy' },
      'detector-cpu': { health: t < 2 ? 'health: starting' : 'unhealthy' },
      'pose-2d-cpu': { state: 'created' },
      'pose-3d-cpu': { state: 'created' },
      'proxy-cpu': { state: 'created' },
    }));
    const err = await composeUp(f.deps, g, { build: false, smoke: false, profile: 'cpu' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OperationFailedError);
    const e = err as OperationFailedError;
    expect(e.code).toBe('COMPOSE_UNHEALTHY');
    expect(e.message).toBe('service detector-cpu unhealthy');
    expect(e.details).toEqual([
      'state: running (unhealthy)',
      'last log lines:',
      'iris  | Traceback (most recent call last):',
      'iris  | ValueError: model file is corrupt',
    ]);
    expect(f.calls).toContainEqual(['logs', '--no-color', '--tail', '30', 'detector-cpu']);
  });

  it('gives up after the timeout, naming the service that never became healthy', async () => {
    const g = await gen();
    const f = fakes(() => ({ database: { health: 'health: starting' } }));
    const err = (await composeUp(f.deps, g, {
      build: false,
      smoke: false,
      profile: 'cpu',
      timeoutSeconds: 5,
    }).catch((e: unknown) => e)) as OperationFailedError;
    expect(err.code).toBe('COMPOSE_UNHEALTHY');
    expect(err.message).toMatch(/^service \S+ not healthy after 5 s$/);
  });
});
