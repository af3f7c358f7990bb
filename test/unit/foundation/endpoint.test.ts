import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type DiscoveryEnv,
  parseDockerHost,
  resolveEngineEndpoint,
} from '../../../src/adapters/docker/endpoint.js';

function fakeEnv(
  env: NodeJS.ProcessEnv,
  files: Record<string, string> = {},
  sockets: string[] = [],
): DiscoveryEnv {
  return {
    env,
    homedir: '/home/u',
    exists: (p) => sockets.includes(p) || p in files,
    readFile: (p) => files[p],
  };
}

describe('engine discovery', () => {
  it('DOCKER_HOST wins over everything', () => {
    const e = resolveEngineEndpoint(
      fakeEnv({ DOCKER_HOST: 'tcp://10.0.0.5:2375' }, {}, ['/var/run/docker.sock']),
    );
    expect(e).toMatchObject({ source: 'DOCKER_HOST', host: '10.0.0.5', port: 2375, protocol: 'http' });
  });

  it('DOCKER_HOST with TLS reads certificates from DOCKER_CERT_PATH', () => {
    const e = resolveEngineEndpoint(
      fakeEnv(
        { DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' },
        { '/certs/ca.pem': 'CA', '/certs/cert.pem': 'CERT', '/certs/key.pem': 'KEY' },
      ),
    );
    expect(e).toMatchObject({ protocol: 'https', port: 2376, tls: { ca: 'CA', cert: 'CERT', key: 'KEY' } });
  });

  it('unix sockets in DOCKER_HOST', () => {
    expect(parseDockerHost('unix:///run/user/1000/docker.sock', 'DOCKER_HOST', false)).toMatchObject({
      socketPath: '/run/user/1000/docker.sock',
      address: 'unix:///run/user/1000/docker.sock',
    });
  });

  it('rejects hosts it cannot parse with a message that shows the expected form', () => {
    expect(() => parseDockerHost('ftp://x', 'DOCKER_HOST', false)).toThrow(/unsupported docker host scheme/);
  });

  it('follows the current docker context from config.json', () => {
    const id = createHash('sha256').update('remote').digest('hex');
    const e = resolveEngineEndpoint(
      fakeEnv(
        {},
        {
          '/home/u/.docker/config.json': JSON.stringify({ currentContext: 'remote' }),
          [`/home/u/.docker/contexts/meta/${id}/meta.json`]: JSON.stringify({
            Endpoints: { docker: { Host: 'ssh://me@gpu-box' } },
          }),
        },
        ['/var/run/docker.sock'],
      ),
    );
    expect(e).toMatchObject({ source: 'docker context', protocol: 'ssh', host: 'gpu-box' });
  });

  it('the "default" context and DOCKER_CONTEXT=default fall through to the socket', () => {
    const e = resolveEngineEndpoint(fakeEnv({ DOCKER_CONTEXT: 'default' }, {}, ['/var/run/docker.sock']));
    expect(e).toMatchObject({ source: 'default socket', socketPath: '/var/run/docker.sock' });
  });

  it('finds Docker Desktop and rootless sockets', () => {
    expect(resolveEngineEndpoint(fakeEnv({}, {}, ['/home/u/.docker/run/docker.sock'])).socketPath).toBe(
      '/home/u/.docker/run/docker.sock',
    );
    expect(
      resolveEngineEndpoint(
        fakeEnv({ XDG_RUNTIME_DIR: '/run/user/1000' }, {}, ['/run/user/1000/docker.sock']),
      ),
    ).toMatchObject({ source: 'rootless socket' });
  });

  it('with nothing found, names the conventional socket', () => {
    expect(resolveEngineEndpoint(fakeEnv({})).address).toBe('unix:///var/run/docker.sock');
  });
});
