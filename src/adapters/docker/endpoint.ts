// Finds the Docker engine the way the docker CLI does. An ordered list of
// strategies; each returns undefined when it does not apply, the first answer wins.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface EngineEndpoint {
  /** Which strategy found it, for `doctor` and error messages. */
  source: 'DOCKER_HOST' | 'docker context' | 'default socket' | 'rootless socket';
  /** Human form: "unix:///var/run/docker.sock", "tcp://host:2376". */
  address: string;
  socketPath?: string;
  host?: string;
  port?: number;
  protocol?: 'http' | 'https' | 'ssh';
  tls?: { ca?: string; cert?: string; key?: string };
}

export interface DiscoveryEnv {
  env: NodeJS.ProcessEnv;
  homedir: string;
  exists(p: string): boolean;
  readFile(p: string): string | undefined;
}

export const defaultDiscoveryEnv = (): DiscoveryEnv => ({
  env: process.env,
  homedir: os.homedir(),
  exists: existsSync,
  readFile: (p) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return undefined;
    }
  },
});

function tlsFromDir(dir: string | undefined, d: DiscoveryEnv): EngineEndpoint['tls'] | undefined {
  if (!dir) return undefined;
  const read = (f: string) => d.readFile(path.join(dir, f));
  const tls = { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
  return tls.ca || tls.cert ? tls : undefined;
}

/** Parses a docker host URL: unix://, tcp://, http(s)://, ssh://. */
export function parseDockerHost(
  url: string,
  source: EngineEndpoint['source'],
  tlsVerify: boolean,
  tls?: EngineEndpoint['tls'],
): EngineEndpoint {
  if (url.startsWith('unix://')) {
    const socketPath = url.slice('unix://'.length) || '/var/run/docker.sock';
    return { source, address: `unix://${socketPath}`, socketPath };
  }
  if (url.startsWith('/')) return { source, address: `unix://${url}`, socketPath: url };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(
      `cannot parse docker host "${url}" (expected unix:///path, tcp://host:port or ssh://user@host)`,
    );
  }
  const scheme = parsed.protocol.replace(':', '');
  if (scheme === 'ssh') {
    return { source, address: url, host: parsed.hostname, port: Number(parsed.port || 22), protocol: 'ssh' };
  }
  if (scheme !== 'tcp' && scheme !== 'http' && scheme !== 'https') {
    throw new Error(`unsupported docker host scheme "${scheme}" in "${url}"`);
  }
  const port = Number(parsed.port || (tlsVerify ? 2376 : 2375));
  const secure = scheme === 'https' || tlsVerify || port === 2376;
  return {
    source,
    address: url,
    host: parsed.hostname,
    port,
    protocol: secure ? 'https' : 'http',
    ...(secure && tls ? { tls } : {}),
  };
}

type Strategy = (d: DiscoveryEnv) => EngineEndpoint | undefined;

const fromDockerHost: Strategy = (d) => {
  const host = d.env.DOCKER_HOST;
  if (!host) return undefined;
  const verify = d.env.DOCKER_TLS_VERIFY === '1';
  return parseDockerHost(host, 'DOCKER_HOST', verify, tlsFromDir(d.env.DOCKER_CERT_PATH, d));
};

/** The current docker context (DOCKER_CONTEXT, else currentContext in config.json). */
const fromDockerContext: Strategy = (d) => {
  const configDir = d.env.DOCKER_CONFIG || path.join(d.homedir, '.docker');
  let name = d.env.DOCKER_CONTEXT;
  if (!name) {
    const cfg = d.readFile(path.join(configDir, 'config.json'));
    if (cfg) {
      try {
        name = (JSON.parse(cfg) as { currentContext?: string }).currentContext;
      } catch {
        return undefined;
      }
    }
  }
  if (!name || name === 'default') return undefined;
  // The CLI stores contexts under the sha256 of their name.
  const id = createHash('sha256').update(name).digest('hex');
  const meta = d.readFile(path.join(configDir, 'contexts', 'meta', id, 'meta.json'));
  if (!meta) return undefined;
  try {
    const parsed = JSON.parse(meta) as {
      Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } };
    };
    const host = parsed.Endpoints?.docker?.Host;
    if (!host) return undefined;
    const tlsDir = path.join(configDir, 'contexts', 'tls', id, 'docker');
    const tls = tlsFromDir(tlsDir, d);
    return parseDockerHost(host, 'docker context', Boolean(tls), tls);
  } catch {
    return undefined;
  }
};

const fromRootlessSocket: Strategy = (d) => {
  const runtimeDir = d.env.XDG_RUNTIME_DIR;
  if (!runtimeDir) return undefined;
  const socketPath = path.join(runtimeDir, 'docker.sock');
  return d.exists(socketPath)
    ? { source: 'rootless socket', address: `unix://${socketPath}`, socketPath }
    : undefined;
};

const fromDefaultSocket: Strategy = (d) => {
  // Docker Desktop on macOS puts its socket in the home directory.
  for (const socketPath of ['/var/run/docker.sock', path.join(d.homedir, '.docker', 'run', 'docker.sock')]) {
    if (d.exists(socketPath))
      return { source: 'default socket', address: `unix://${socketPath}`, socketPath };
  }
  return undefined;
};

const STRATEGIES: Strategy[] = [fromDockerHost, fromDockerContext, fromDefaultSocket, fromRootlessSocket];

export function resolveEngineEndpoint(d: DiscoveryEnv = defaultDiscoveryEnv()): EngineEndpoint {
  for (const strategy of STRATEGIES) {
    const found = strategy(d);
    if (found) return found;
  }
  // Nothing found: report the conventional socket, so the error names it.
  return {
    source: 'default socket',
    address: 'unix:///var/run/docker.sock',
    socketPath: '/var/run/docker.sock',
  };
}
