// The serve use case without Docker: a fake engine whose "container" is a local
// HTTP server, to check the sequence (build when missing, mount, wait for
// /readyz, send the example) and the failure paths (exited, port in use).

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildOptions, ContainerHandle, ContainerSpec } from '../../../src/adapters/docker/engine.js';
import { serve } from '../../../src/core/serve/serve.js';
import { runWrap } from '../../../src/core/wrap/wrap.js';
import { fakeClock } from '../../../src/io/clock.js';
import { EngineError, OperationFailedError, UsageError } from '../../../src/io/errors.js';
import { runPool, type TaskRunner } from '../../../src/io/progress.js';

const tasks: TaskRunner = {
  run: (t, o = {}) => runPool(t, o, () => ({ title: () => undefined, output: () => undefined })),
};
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-serve-'));
const dir = path.join(tmp, 'svc');
let server: http.Server;
let port = 0;
let readyAfter = 0;
const received: unknown[] = [];

beforeAll(async () => {
  await runWrap({
    cwd: process.cwd(),
    model: 'fixtures/wrap/iris/model.joblib',
    out: dir,
    force: false,
    dryRun: false,
  });
  server = http.createServer((req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(readyAfter-- > 0 ? 503 : 200).end('{}');
      return;
    }
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"prediction": 2}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.close();
  rmSync(tmp, { recursive: true, force: true });
});

function fakeEngine(opts: { imageExists: boolean; running?: boolean; startError?: Error }) {
  const calls = { builds: [] as BuildOptions[], starts: [] as ContainerSpec[], removed: 0 };
  const handle = {
    id: 'c0ffee0000000000',
    hostPort: async () => port,
    inspect: async () => ({ State: { Running: opts.running ?? true, ExitCode: 3 } }),
    logs: async () => 'line one\nWeightsError: model file not found\n',
    remove: async () => {
      calls.removed++;
    },
  } as unknown as ContainerHandle;
  const engine = {
    imageExists: async () => opts.imageExists,
    build: async (b: BuildOptions) => {
      calls.builds.push(b);
      return {
        imageId: 'sha256:x',
        tags: b.tags,
        steps: [],
        cachedSteps: 0,
        contextBytes: 0,
        contextFiles: 0,
      };
    },
    start: async (spec: ContainerSpec) => {
      calls.starts.push(spec);
      if (opts.startError) throw opts.startError;
      return handle;
    },
  };
  return { engine, calls };
}

describe('serve (fake engine)', () => {
  it('builds a missing image, mounts the weights read-only, waits for /readyz, sends the example', async () => {
    readyAfter = 3;
    const { engine, calls } = fakeEngine({ imageExists: false });
    const running = await serve({ dir, build: false, runLabel: 't1' }, { engine, tasks, clock: fakeClock() });
    expect(calls.builds).toHaveLength(1);
    expect(calls.builds[0]).toMatchObject({ context: dir, tags: ['mlship/iris:latest'] });
    expect(calls.starts[0]).toMatchObject({
      image: 'mlship/iris:latest',
      ports: { 8080: 8080 },
      mounts: [
        {
          type: 'bind',
          source: path.resolve('fixtures/wrap/iris/model.joblib'),
          target: '/models/model.joblib',
          readOnly: true,
        },
      ],
      labels: { 'dev.mlship.service': 'iris', 'dev.mlship.run': 't1' },
    });
    expect(received.at(-1)).toEqual({
      sepal_length: 5.1,
      sepal_width: 3.5,
      petal_length: 1.4,
      petal_width: 0.2,
    });
    expect(running.result).toMatchObject({ url: `http://127.0.0.1:${port}`, prediction: 2, built: true });
    expect(calls.removed).toBe(0);
  });

  it('does not rebuild an existing image unless asked', async () => {
    readyAfter = 0;
    const { engine, calls } = fakeEngine({ imageExists: true });
    await serve({ dir, build: false, hostPort: 0 }, { engine, tasks, clock: fakeClock() });
    expect(calls.builds).toHaveLength(0);
    expect(calls.starts[0]!.ports).toEqual({ 8080: 0 });
  });

  it('a container that exits before it is ready is an error with its log, and is removed', async () => {
    readyAfter = 1000;
    const { engine, calls } = fakeEngine({ imageExists: true, running: false });
    const err = await serve({ dir, build: false }, { engine, tasks, clock: fakeClock() }).catch(
      (e: unknown) => e,
    );
    readyAfter = 0;
    expect(err).toBeInstanceOf(OperationFailedError);
    expect((err as OperationFailedError).code).toBe('SERVICE_EXITED');
    expect((err as OperationFailedError).details).toContain('WeightsError: model file not found');
    expect(calls.removed).toBe(1);
  });

  it('a busy host port is a usage error that says what to do', async () => {
    const { engine } = fakeEngine({
      imageExists: true,
      startError: new EngineError(
        'start container: Bind for 127.0.0.1:8080 failed: port is already allocated',
      ),
    });
    const err = await serve({ dir, build: false }, { engine, tasks, clock: fakeClock() }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).hint).toContain('--port 0');
  });
});
