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

interface PortWorld {
  /** Containers publishing a host port. */
  publishing?: Record<number, Partial<ContainerState>[]>;
  /** Host ports a process listens on, with its pid and command. */
  processes?: Record<number, { pid: number; command: string }>;
}

function fakes(timeline: (tick: number) => Record<string, Partial<ContainerState>>, world: PortWorld = {}) {
  const calls: string[][] = [];
  let tick = 0;
  let clock = 0;
  const container = (c: Partial<ContainerState>): ContainerState => ({
    id: 'c',
    name: 'c',
    image: 'x',
    state: 'running',
    health: undefined,
    labels: {},
    ...c,
  });
  return {
    calls,
    deps: {
      host: {
        inUse: async (_ip: string, port: number) =>
          Boolean(world.processes?.[port] || world.publishing?.[port]?.length),
        owner: async (port: number) => world.processes?.[port],
      },
      engine: {
        listPublishing: async (port: number) => (world.publishing?.[port] ?? []).map(container),
        listByLabel: async (label: string, value?: string) => {
          expect(label).toBe(PROJECT_LABEL);
          const states = calls.some((c) => c[0] === 'down') ? {} : timeline(tick++);
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
    // Nothing of the stack runs before this up (tick 0); then the detector turns unhealthy.
    const f = fakes(
      (t): Record<string, Partial<ContainerState>> =>
        t === 0
          ? {}
          : {
              database: { health: 'healthy' },
              storage: { health: 'healthy' },
              frontend: { health: 'healthy' },
              'detector-cpu': { health: t < 2 ? 'health: starting' : 'unhealthy' },
              'pose-2d-cpu': { state: 'created' },
              'pose-3d-cpu': { state: 'created' },
              'proxy-cpu': { state: 'created' },
            },
    );
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
      'stopped and removed what this up started: 7 container(s) and the network of pose-pipeline; its volumes are kept (data)',
    ]);
    expect(f.calls).toContainEqual(['logs', '--no-color', '--tail', '30', 'detector-cpu']);
    expect(f.calls.at(-1)).toEqual(['down', '--remove-orphans']);
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

describe('compose up: pre-flight and failures (fake engine)', () => {
  const unhealthy = (t: number): Record<string, Partial<ContainerState>> =>
    t === 0
      ? {}
      : {
          database: { health: 'healthy' },
          'detector-cpu': { health: 'unhealthy' },
          'proxy-cpu': { state: 'created' },
        };

  it('a published port held by another container is named, with the setting that moves it; nothing starts', async () => {
    const g = await gen();
    let written = false;
    const f = fakes(() => ({}), {
      publishing: {
        8080: [{ name: 'other-web-1', image: 'nginx:1.27', labels: { [PROJECT_LABEL]: 'other' } }],
      },
    });
    const err = await composeUp(f.deps, g, {
      build: true,
      smoke: false,
      profile: 'cpu',
      write: async () => {
        written = true;
        return g;
      },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'PORT_IN_USE',
      exitCode: 3,
      message:
        'port 8080 on 127.0.0.1, which proxy-cpu publishes, is already in use by container other-web-1 (nginx:1.27, compose project other)',
      hint: 'set proxy.port in mlship.yaml (8081 is free), or stop it (docker stop other-web-1); nothing was started',
    });
    expect(f.calls).toEqual([]);
    expect(written).toBe(false);
  });

  it('every taken port at once: a process by pid and command, a container; free ports not already taken', async () => {
    const g = await gen();
    const f = fakes(() => ({}), {
      processes: {
        9000: { pid: 4242, command: 'python3 -m http.server 9000' },
        8081: { pid: 1, command: 'x' },
      },
      publishing: { 8080: [{ name: 'web', image: 'nginx', labels: {} }] },
    });
    const err = (await composeUp(f.deps, g, { build: false, smoke: false, profile: 'cpu' }).catch(
      (e: unknown) => e,
    )) as OperationFailedError;
    expect(err.message).toBe('2 ports this stack publishes are already in use');
    expect(err.details).toEqual([
      'port 8080 on 127.0.0.1, which proxy-cpu publishes, is in use by container web (nginx): set proxy.port in mlship.yaml (8082 is free), or stop it (docker stop web)',
      'port 9000 on 127.0.0.1, which storage publishes, is in use by process 4242 (python3 -m http.server 9000): set storage.host_port in mlship.yaml (9001 is free), or stop process 4242',
    ]);
  });

  it('the stack’s own container publishing its port (up again) is not a conflict', async () => {
    const g = await gen();
    const own = {
      name: 'proxy',
      image: 'nginx',
      labels: { [PROJECT_LABEL]: 'pose-pipeline', [SERVICE_LABEL]: 'proxy-cpu' },
    };
    const f = fakes(() => ({ database: { health: 'healthy' } }), { publishing: { 8080: [own] } });
    const err = (await composeUp(f.deps, g, {
      build: false,
      smoke: false,
      profile: 'cpu',
      timeoutSeconds: 1,
    }).catch((e: unknown) => e)) as OperationFailedError;
    expect(err.code).toBe('COMPOSE_UNHEALTHY'); // it got past the pre-flight
    expect(err.details.at(-1)).toBe(
      'the stack already had containers before this up: left as they are (1 now)',
    );
    expect(f.calls).not.toContainEqual(['down', '--remove-orphans']);
  });

  it('--keep-on-failure leaves what was started and lists it, with how to remove it', async () => {
    const g = await gen();
    const f = fakes(unhealthy);
    const err = (await composeUp(f.deps, g, {
      build: false,
      smoke: false,
      profile: 'cpu',
      keepOnFailure: true,
      downCommand: 'mlship compose down -f stack.yaml',
    }).catch((e: unknown) => e)) as OperationFailedError;
    expect(err.details.slice(-4)).toEqual([
      'left as it is (--keep-on-failure): 3 container(s) of pose-pipeline, and its network',
      '  database: running (healthy)',
      '  detector-cpu: running (unhealthy)',
      '  proxy-cpu: created',
    ]);
    expect(err.hint).toBe(
      '`mlship compose logs detector-cpu` shows more; remove them with `mlship compose down -f stack.yaml`',
    );
    expect(f.calls).not.toContainEqual(['down', '--remove-orphans']);
  });

  it('a failed `compose up` itself (exit 1) is cleaned up too', async () => {
    const g = await gen();
    const f = fakes(unhealthy);
    const compose = f.deps.compose;
    f.deps.compose = async (p: ComposeProject, args: string[]) =>
      args.includes('up')
        ? {
            ...(await compose(p, args)),
            exitCode: 1,
            stderr: 'Error starting userland proxy: bind: address already in use',
          }
        : compose(p, args);
    const err = (await composeUp(f.deps, g, { build: false, smoke: false, profile: 'cpu' }).catch(
      (e: unknown) => e,
    )) as OperationFailedError;
    expect(err.code).toBe('COMPOSE_UP_FAILED');
    expect(err.details).toContain('Error starting userland proxy: bind: address already in use');
    expect(f.calls.at(-1)).toEqual(['down', '--remove-orphans']);
  });
});
