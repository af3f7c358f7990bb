import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { BuildStreamParser } from '../../../src/adapters/docker/build-stream.js';
import { BuildFailedError } from '../../../src/io/errors.js';

const lines = (...objs: unknown[]) => objs.map((o) => `${JSON.stringify(o)}\r\n`).join('');

// Encodes a BuildKit StatusResponse the way the engine sends it.
const root = protobuf.parse(`
syntax = "proto3";
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
message Vertex { string digest = 1; repeated string inputs = 2; string name = 3; bool cached = 4;
  Timestamp started = 5; Timestamp completed = 6; string error = 7; }
message VertexLog { string vertex = 1; Timestamp timestamp = 2; int64 stream = 3; bytes msg = 4; }
message StatusResponse { repeated Vertex vertexes = 1; repeated VertexLog logs = 3; }`).root;
const Status = root.lookupType('StatusResponse');
function trace(payload: object): string {
  const aux = Buffer.from(Status.encode(Status.fromObject(payload)).finish()).toString('base64');
  return `${JSON.stringify({ id: 'moby.buildkit.trace', aux })}\n`;
}

describe('build stream parser', () => {
  it('follows classic builder steps, counts cache hits and returns the image id', () => {
    const events: string[] = [];
    const p = new BuildStreamParser((e) => e.step && !e.line && !e.cached && events.push(e.step));
    const text = lines(
      { stream: 'Step 1/3 : FROM base\n' },
      { stream: ' ---> 04d55b29e9af\n' },
      { stream: 'Step 2/3 : COPY app.py /app/\n' },
      { stream: ' ---> Using cache\n' },
      { stream: 'Step 3/3 : RUN echo hi\n' },
      { stream: 'hi\n' },
      { aux: { ID: 'sha256:abc' } },
      { stream: 'Successfully built abc\n' },
    );
    // Split mid-line to check reassembly.
    p.write(text.slice(0, 37));
    p.write(text.slice(37));
    const r = p.end();
    expect(r.imageId).toBe('sha256:abc');
    expect(r.cachedSteps).toBe(1);
    expect(r.steps).toEqual([
      'Step 1/3 : FROM base',
      'Step 2/3 : COPY app.py /app/',
      'Step 3/3 : RUN echo hi',
    ]);
    expect(events).toEqual(r.steps);
  });

  it('rejects on an error line with the failing step and its output, even if the stream ends normally', () => {
    const p = new BuildStreamParser();
    p.write(
      lines(
        { stream: 'Step 1/2 : FROM base\n' },
        { stream: 'Step 2/2 : RUN echo boom && false\n' },
        { stream: ' ---> Running in 123\n' },
        { stream: 'boom\n' },
        {
          errorDetail: {
            code: 1,
            message: "The command '/bin/sh -c echo boom && false' returned a non-zero code: 1",
          },
          error: "The command '/bin/sh -c echo boom && false' returned a non-zero code: 1",
        },
      ),
    );
    let err: unknown;
    try {
      p.end();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BuildFailedError);
    const e = err as BuildFailedError;
    expect(e.step).toBe('Step 2/2 : RUN echo boom && false');
    expect(e.details).toEqual(['boom']);
    expect(e.message).toMatch(/returned a non-zero code: 1/);
    expect(e.exitCode).toBe(1);
  });

  it('decodes BuildKit traces: steps, cache, per-step output and the failing vertex', () => {
    const p = new BuildStreamParser();
    p.write(trace({ vertexes: [{ digest: 'sha256:1', name: '[internal] load .dockerignore' }] }));
    p.write(trace({ vertexes: [{ digest: 'sha256:2', name: '[1/3] FROM base', cached: true }] }));
    p.write(trace({ vertexes: [{ digest: 'sha256:3', name: '[2/3] RUN pip install nope' }] }));
    p.write(
      trace({
        logs: [
          {
            vertex: 'sha256:3',
            stream: 2,
            msg: Buffer.from('ERROR: No matching distribution found for nope\n'),
          },
        ],
      }),
    );
    p.write(
      trace({
        vertexes: [
          {
            digest: 'sha256:3',
            name: '[2/3] RUN pip install nope',
            error: 'process "/bin/sh -c pip install nope" did not complete successfully: exit code: 1',
          },
        ],
      }),
    );
    p.write(
      lines({
        errorDetail: {
          message: 'process "/bin/sh -c pip install nope" did not complete successfully: exit code: 1',
        },
      }),
    );
    try {
      p.end();
      throw new Error('expected failure');
    } catch (e) {
      expect(e).toBeInstanceOf(BuildFailedError);
      expect((e as BuildFailedError).step).toBe('[2/3] RUN pip install nope');
      expect((e as BuildFailedError).details).toEqual(['ERROR: No matching distribution found for nope']);
    }
  });

  it('BuildKit success reports the image id from moby.image.id', () => {
    const p = new BuildStreamParser();
    p.write(trace({ vertexes: [{ digest: 'sha256:2', name: '[1/2] FROM base', cached: true }] }));
    p.write(trace({ vertexes: [{ digest: 'sha256:3', name: '[2/2] COPY . .', cached: true }] }));
    p.write(lines({ id: 'moby.image.id', aux: { ID: 'sha256:feed' } }));
    expect(p.end()).toEqual({
      imageId: 'sha256:feed',
      steps: ['[1/2] FROM base', '[2/2] COPY . .'],
      cachedSteps: 2,
    });
  });

  it('a stream that ends without an image id is a failure, not a success', () => {
    const p = new BuildStreamParser();
    p.write(lines({ stream: 'Step 1/1 : FROM base\n' }));
    expect(() => p.end()).toThrow(BuildFailedError);
  });
});
