// The pre-flight's view of the host: a port something listens on is in use, and on Linux the
// process holding it is found through /proc (here: this test process itself). A user's compose
// file publishes what it says, in the form the pre-flight reads.

import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostPorts } from '../../../src/adapters/host-ports.js';
import { publishedPorts } from '../../../src/core/compose/ports.js';
import { userComposeStack } from '../../../src/core/compose/user-compose.js';

describe('host ports', () => {
  it('a listening port is in use and, on Linux, held by this very process', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const host = hostPorts();
      expect(await host.inUse('127.0.0.1', port)).toBe(true);
      expect(await host.inUse('0.0.0.0', port)).toBe(true);
      if (process.platform === 'linux') {
        const owner = await host.owner(port);
        expect(owner?.pid).toBe(process.pid);
        expect(owner?.command).toContain(path.basename(process.execPath));
      }
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await hostPorts().inUse('127.0.0.1', port)).toBe(false);
  });

  it("a user's compose file: the host ports it publishes, TCP only, host IPs kept", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-ports-'));
    const file = path.join(dir, 'docker-compose.yml');
    writeFileSync(
      file,
      [
        'services:',
        '  web:',
        '    image: nginx',
        '    ports: ["8080:80", "127.0.0.1:8443:443", "5353:53/udp", "9000"]',
        '  api:',
        '    image: api',
        '    ports:',
        '      - target: 8000',
        '        published: "8001"',
        '        host_ip: "::1"',
        '',
      ].join('\n'),
    );
    const stack = await userComposeStack(file);
    expect(publishedPorts(stack, ['web', 'api'])).toEqual([
      { service: 'api', hostIp: '::1', port: 8001 },
      { service: 'web', hostIp: '0.0.0.0', port: 8080 },
      { service: 'web', hostIp: '127.0.0.1', port: 8443 },
    ]);
  });
});
