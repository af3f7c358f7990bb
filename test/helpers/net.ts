import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';

/** A TCP port that is free on `host` right now (loopback unless a test needs the bridge to reach it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

/** The host as containers on the default bridge see it (for servers a container must reach). */
export function bridgeGateway(): string {
  const out = execFileSync(
    'docker',
    ['network', 'inspect', 'bridge', '--format', '{{range .IPAM.Config}}{{.Gateway}}|{{.Subnet}}{{end}}'],
    { encoding: 'utf8' },
  );
  const [gateway, subnet] = out.trim().split('|');
  if (gateway) return gateway;
  return subnet!.replace(/\.0\/\d+$/, '.1'); // the default bridge leaves Gateway empty: it is the first address
}
