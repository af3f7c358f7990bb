// An image's labels without pulling it: the local engine's inspect when it has the image,
// else the registry's image config over the distribution API (manifest → config blob, a
// few KiB), with the anonymous or basic token flow registries use. This is how the GPU
// fit check reads what an image needs before anyone pushes or pulls gigabytes.

import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type ImageRef, isEcr, parseImageRef } from '../../config/image-ref.js';
import type { ImageLabels } from '../../core/deploy/gpu-fit-apis.js';
import type { ImageSummary } from './engine.js';

const MANIFESTS = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

interface Manifest {
  manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[];
  config?: { digest: string };
}

/** Where a registry answers: Docker Hub's API host, plain HTTP on loopback (as the engine allows). */
function base(ref: ImageRef): string {
  const host = ref.registry === 'docker.io' ? 'registry-1.docker.io' : ref.registry;
  const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(host);
  return `${loopback ? 'http' : 'https'}://${host}`;
}

function repository(ref: ImageRef): string {
  return ref.registry === 'docker.io' && !ref.repository.includes('/')
    ? `library/${ref.repository}`
    : ref.repository;
}

/** Basic credentials of ~/.docker/config.json `auths` (credential helpers are not asked). */
async function dockerConfigAuth(registry: string, home: string): Promise<string | undefined> {
  try {
    const config = JSON.parse(await readFile(path.join(home, '.docker', 'config.json'), 'utf8')) as {
      auths?: Record<string, { auth?: string }>;
    };
    const keys =
      registry === 'docker.io'
        ? ['https://index.docker.io/v1/', 'docker.io']
        : [registry, `https://${registry}`];
    for (const k of keys) if (config.auths?.[k]?.auth) return config.auths[k]!.auth;
  } catch {
    // no config: anonymous
  }
  return undefined;
}

class RegistryClient {
  private token: string | undefined;
  constructor(
    private readonly ref: ImageRef,
    private readonly basic: string | undefined,
    private readonly timeoutMs: number,
  ) {}

  private async authorize(challenge: string): Promise<boolean> {
    if (/^Basic/i.test(challenge)) {
      if (!this.basic) return false;
      this.token = `Basic ${this.basic}`;
      return true;
    }
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (!params.realm) return false;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? `repository:${repository(this.ref)}:pull`);
    const r = await fetch(url, {
      headers: this.basic ? { Authorization: `Basic ${this.basic}` } : {},
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!r.ok) return false;
    const body = (await r.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) return false;
    this.token = `Bearer ${token}`;
    return true;
  }

  async get(pathPart: string, accept: string): Promise<Response | undefined> {
    const url = `${base(this.ref)}/v2/${repository(this.ref)}/${pathPart}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await fetch(url, {
        headers: { Accept: accept, ...(this.token ? { Authorization: this.token } : {}) },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (
        r.status === 401 &&
        attempt === 0 &&
        (await this.authorize(r.headers.get('www-authenticate') ?? ''))
      )
        continue;
      return r.ok ? r : undefined;
    }
    return undefined;
  }
}

/** The labels in the registry's image config of `ref` (linux/amd64 of a multi-platform image). */
export async function registryLabels(
  text: string,
  o: { home?: string; timeoutMs?: number } = {},
): Promise<Record<string, string> | undefined> {
  const ref = parseImageRef(text);
  // ECR answers only with a token from its own API (GetAuthorizationToken), not from this flow.
  if (isEcr(ref)) return undefined;
  const client = new RegistryClient(
    ref,
    await dockerConfigAuth(ref.registry, o.home ?? os.homedir()),
    o.timeoutMs ?? 10_000,
  );
  let manifest = (await (
    await client.get(`manifests/${ref.digest ?? ref.tag ?? 'latest'}`, MANIFESTS)
  )?.json()) as Manifest | undefined;
  if (manifest?.manifests) {
    const pick =
      manifest.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ??
      manifest.manifests[0];
    manifest = pick
      ? ((await (await client.get(`manifests/${pick.digest}`, MANIFESTS))?.json()) as Manifest)
      : undefined;
  }
  if (!manifest?.config?.digest) return undefined;
  const config = (await (await client.get(`blobs/${manifest.config.digest}`, '*/*'))?.json()) as
    | { config?: { Labels?: Record<string, string> | null } }
    | undefined;
  return config ? (config.config?.Labels ?? {}) : undefined;
}

type Inspector = { inspectImage(ref: string): Promise<ImageSummary> };

/** Local engine first (when one is given, or reachable, and has the image), then the registry. */
export function createImageLabels(o: {
  /** The engine, or how to reach it on first use (undefined: no engine). */
  engine?: Inspector | (() => Promise<Inspector | undefined>);
  home?: string;
  timeoutMs?: number;
}): ImageLabels {
  let engine: Promise<Inspector | undefined> | undefined;
  const localEngine = () => {
    engine ??= typeof o.engine === 'function' ? o.engine().catch(() => undefined) : Promise.resolve(o.engine);
    return engine;
  };
  return {
    async labels(ref, localOnly) {
      const local = await (await localEngine())?.inspectImage(ref).catch(() => undefined);
      if (local) return { labels: local.labels, source: 'local' };
      if (localOnly) return undefined;
      const remote = await registryLabels(ref, o).catch(() => undefined);
      return remote ? { labels: remote, source: 'registry' } : undefined;
    },
  };
}
