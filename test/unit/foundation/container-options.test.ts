import { describe, expect, it } from 'vitest';
import { containerCreateOptions, demuxBuffer, MANAGED_LABEL } from '../../../src/adapters/docker/engine.js';

describe('what is sent to the engine for a container', () => {
  it('GPU requests become nvidia device requests', () => {
    expect(containerCreateOptions({ image: 'x', gpus: 'all' }).HostConfig?.DeviceRequests).toEqual([
      { Driver: 'nvidia', Capabilities: [['gpu']], Count: -1 },
    ]);
    expect(containerCreateOptions({ image: 'x', gpus: 2 }).HostConfig?.DeviceRequests).toEqual([
      { Driver: 'nvidia', Capabilities: [['gpu']], Count: 2 },
    ]);
    expect(containerCreateOptions({ image: 'x', gpus: ['0', '3'] }).HostConfig?.DeviceRequests).toEqual([
      { Driver: 'nvidia', Capabilities: [['gpu']], DeviceIDs: ['0', '3'] },
    ]);
    expect(containerCreateOptions({ image: 'x' }).HostConfig?.DeviceRequests).toBeUndefined();
  });

  it('memory limits cap swap too, mounts, env, ports on loopback and the mlship label', () => {
    const o = containerCreateOptions({
      image: 'img',
      env: { A: '1' },
      memoryBytes: 64 * 1024 * 1024,
      cpus: 1.5,
      mounts: [{ type: 'bind', source: '/w', target: '/weights', readOnly: true }],
      ports: { 8080: 0 },
      labels: { 'dev.mlship.run': 't1' },
    });
    expect(o.Env).toEqual(['A=1']);
    expect(o.Labels).toEqual({ [MANAGED_LABEL]: 'true', 'dev.mlship.run': 't1' });
    expect(o.HostConfig).toMatchObject({
      Memory: 67108864,
      MemorySwap: 67108864,
      NanoCpus: 1_500_000_000,
      Mounts: [{ Type: 'bind', Source: '/w', Target: '/weights', ReadOnly: true }],
      PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
    });
  });

  it('demultiplexes docker log frames', () => {
    const frame = (type: number, text: string) => {
      const body = Buffer.from(text);
      const head = Buffer.alloc(8);
      head[0] = type;
      head.writeUInt32BE(body.length, 4);
      return Buffer.concat([head, body]);
    };
    expect(demuxBuffer(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')]))).toBe('out\nerr\n');
  });
});
