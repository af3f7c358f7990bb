// The routing state of a local rollout (core/rollout/proxy-routing.ts): replaced in one rename
// inside the folder the proxy mounts, so that a reader (NGINX's njs, per request) sees the old
// file or the new one and never half of one; changes that do not reload NGINX; and how a
// refused nginx -t tells an NGINX without njs (messages as mlship-local/nginx:1.22 without
// libnginx-mod-http-js, and without the routing folder, print them).

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  changeRouting,
  lacksNjs,
  routingStatePath,
  writeRoutingState,
} from '../../../src/core/rollout/proxy-routing.js';
import { routingOf, routingState } from '../../../src/generators/compose-rollout.js';
import { fakeClock } from '../../../src/io/clock.js';
import { rollout } from '../../helpers/rollout.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'mlship-routing-'));

/** Reads `file` in a loop on another thread until told to stop: what it saw, by content. */
function reader(file: string) {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const fs = require('node:fs');
     const seen = {}; let bad = 0; let reads = 0; let stop = false;
     parentPort.on('message', () => { stop = true; });
     (function loop() {
       for (let i = 0; i < 200; i++) {
         try { const t = fs.readFileSync(workerData, 'utf8'); JSON.parse(t); seen[t] = (seen[t] || 0) + 1; }
         catch (e) { bad++; }
         reads++;
       }
       if (stop) parentPort.postMessage({ seen, bad, reads }); else setImmediate(loop);
     })();`,
    { eval: true, workerData: file },
  );
  return {
    stop: () =>
      new Promise<{ seen: Record<string, number>; bad: number; reads: number }>((resolve) => {
        worker.once('message', (m) => {
          void worker.terminate();
          resolve(m);
        });
        worker.postMessage('stop');
      }),
  };
}

describe('the routing state file', () => {
  it('is replaced by a rename in its folder: a concurrent reader never sees a partial file', async () => {
    const out = tmp();
    const a = routingState([rollout({ service: 'iris', mode: 'canary', weight: 10 })]);
    const b = routingState([rollout({ service: 'iris', mode: 'canary', weight: 50, mirror: true })]);
    await writeRoutingState(out, a);
    const file = routingStatePath(out);
    expect(file).toBe(path.join(out, 'proxy/routing/state.json'));
    // A new inode (the new file exists before the old one goes): why the proxy mounts the folder.
    const inode = statSync(file).ino;
    await writeRoutingState(out, b);
    expect(statSync(file).ino).not.toBe(inode);
    const r = reader(file);
    for (let i = 0; i < 400; i++) await writeRoutingState(out, i % 2 ? a : b);
    const { seen, bad, reads } = await r.stop();
    expect(bad).toBe(0);
    expect(reads).toBeGreaterThan(0);
    expect(Object.keys(seen).every((t) => t === a || t === b)).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(a);
    expect(readdirSync(path.dirname(file))).toEqual(['state.json']);
  });

  it('holds each running rollout: weight, mirror (a shadow: 0 and mirrored), recorded share, sticky key, sorted by service', () => {
    const text = routingState([
      rollout({ service: 'pose', mode: 'shadow', weight: 0, recordSample: 1 }),
      rollout({ service: 'iris', mode: 'ab', weight: 50, sticky: { cookie: 'uid' } }),
    ]);
    expect(Object.keys(JSON.parse(text))).toEqual(['iris', 'pose']);
    expect(JSON.parse(text)).toEqual({
      iris: { weight: 50, mirror: false, record: 0.1, sticky: { cookie: 'uid' } },
      pose: { weight: 0, mirror: true, record: 1 },
    });
    expect(routingState([])).toBe('{}\n');
  });
});

describe('a change of routing without a reload', () => {
  it('writes the state, leaves nginx.conf as the proxy loaded it, waits until the proxy answers so', async () => {
    const out = tmp();
    mkdirSync(path.join(out, 'proxy'));
    const confFile = path.join(out, 'proxy/nginx.conf');
    writeFileSync(confFile, 'conf v1\n');
    const before = statSync(confFile).mtimeMs;
    const clock = fakeClock();
    let polls = 0;
    await changeRouting(
      { clock },
      {
        outDir: out,
        state: '{"iris":{"weight":100,"mirror":false}}\n',
        active: async () => ++polls >= 3,
      },
    );
    expect(readFileSync(routingStatePath(out), 'utf8')).toContain('"weight":100');
    expect(statSync(confFile).mtimeMs).toBe(before);
    expect(polls).toBe(3);
    expect(clock.slept).toEqual([100, 100]);
    // The end of a rollout: the state only; nginx.conf stays what runs.
    await changeRouting({ clock }, { outDir: out, state: '{}\n' });
    expect(readFileSync(routingStatePath(out), 'utf8')).toBe('{}\n');
    expect(readFileSync(confFile, 'utf8')).toBe('conf v1\n');
  });

  it('a proxy that never answers as the state says is an error after 10 s, naming the file', async () => {
    const out = tmp();
    mkdirSync(path.join(out, 'proxy'));
    const confFile = path.join(out, 'proxy/nginx.conf');
    writeFileSync(confFile, 'c\n');
    const e = await changeRouting(
      { clock: fakeClock() },
      { outDir: out, state: '{}\n', active: async () => false },
    ).then(
      () => undefined,
      (x: unknown) => x as Error & { code?: string },
    );
    expect(e?.code).toBe('PROXY_ROUTING_FAILED');
    expect(e?.message).toContain(routingStatePath(out));
  });
});

describe('which way a proxy routes', () => {
  it('from the nginx.conf it was given', () => {
    expect(
      routingOf(
        'js_import mlship_route from /etc/nginx/mlship-routing/route.js;\n# ---- mlship rollout of iris',
      ),
    ).toBe('state');
    expect(routingOf('# ---- mlship rollout of iris: canary, 10 %')).toBe('reload');
    expect(routingOf('server { listen 80; }')).toBeUndefined();
  });

  it('an NGINX without njs, or without the routing folder, is told from nginx -t; other refusals are not', () => {
    expect(
      lacksNjs([
        '2026/12/02 15:36:26 [emerg] 1#1: unknown directive "js_import" in /etc/nginx/conf.d/default.conf:34',
        'nginx: configuration file /etc/nginx/nginx.conf test failed',
      ]),
    ).toBe(true);
    expect(
      lacksNjs([
        '2026/12/02 15:36:27 [emerg] 1#1: SyntaxError: Cannot find module "/etc/nginx/mlship-routing/route.js" in /etc/nginx/:1',
      ]),
    ).toBe(true);
    expect(
      lacksNjs(['2026/12/02 15:36:27 [emerg] 1#1: host not found in upstream "iris-candidate:8080"']),
    ).toBe(false);
  });
});
