// What the engine adapter asks dockerode to push, and which registry an auth failure
// names, for references that hand-sliced strings used to get wrong: `user/repo:tag` is
// Docker Hub's, and `name@sha256:…` is no tag. dockerode is replaced by an object that
// records the call and answers with the engine's JSON lines.

import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import { describe, expect, it } from 'vitest';
import { DockerEngine } from '../../../src/adapters/docker/engine.js';
import { RegistryAuthError } from '../../../src/io/errors.js';

function recordingDocker(lines: object[]) {
  const calls: { name: string; options: unknown }[] = [];
  const docker = {
    getImage(name: string) {
      return {
        async push(options: unknown) {
          calls.push({ name, options });
          const stream = new PassThrough();
          setImmediate(() => {
            for (const l of lines) stream.write(`${JSON.stringify(l)}\n`);
            stream.end();
          });
          return stream;
        },
      };
    },
  };
  const engine = new DockerEngine(
    docker as unknown as Dockerode,
    {
      address: 'unix:///fake.sock',
      socketPath: '/fake.sock',
      source: 'test',
    } as never,
  );
  return { engine, calls };
}

describe('engine push', () => {
  it('user/repo:tag is pushed as Docker Hub repository user/repo, and an auth failure names docker.io', async () => {
    const { engine, calls } = recordingDocker([{ error: 'unauthorized: authentication required' }]);
    const failure = await engine.push('user/repo:tag', undefined).catch((e: unknown) => e);
    expect(calls).toEqual([{ name: 'user/repo', options: { tag: 'tag' } }]);
    expect(failure).toBeInstanceOf(RegistryAuthError);
    expect((failure as Error).message).toContain('docker.io');
    expect((failure as Error).message).not.toMatch(/registry user\b/);
  });

  it('a registry with a port keeps it in the name, and the tag is what follows the last colon of the path', async () => {
    const { engine, calls } = recordingDocker([
      { status: 'Pushed', id: 'abc' },
      { aux: { Digest: `sha256:${'d'.repeat(64)}` } },
    ]);
    const r = await engine.push('127.0.0.1:5000/stack/web:0a1b2c', undefined);
    expect(calls).toEqual([{ name: '127.0.0.1:5000/stack/web', options: { tag: '0a1b2c' } }]);
    expect(r).toEqual({ digest: `sha256:${'d'.repeat(64)}`, layersPushed: 1, layersSkipped: 0 });
  });
});
