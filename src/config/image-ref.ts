// An image reference (`[registry/]repository[:tag][@digest]`) as a value: parsed once
// with Docker's own rules, formatted back, so no caller slices strings by hand.
// Docker's rule for the registry: the first path component is a registry only when it
// has a "." or a ":" or is "localhost"; otherwise the image is on Docker Hub
// (`user/repo:tag` is Docker Hub's `user/repo`, not a registry called `user`).

export const DOCKER_HUB = 'docker.io';

export interface ImageRef {
  /** Registry host (with port), or `docker.io` when the reference names none. */
  registry: string;
  /** Whether the registry was written in the reference (not the implied Docker Hub). */
  explicitRegistry: boolean;
  /** Repository path inside the registry, e.g. `library/nginx` is written `nginx`. */
  repository: string;
  tag?: string;
  /** `sha256:…` when pinned by digest. */
  digest?: string;
}

const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-f0-9]{32,}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

export class ImageRefError extends Error {}

function isRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/** Parses a reference; throws ImageRefError naming what is wrong. */
export function parseImageRef(text: string): ImageRef {
  let rest = text.trim();
  if (!rest) throw new ImageRefError('an image reference is empty');
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ImageRefError(`"${text}": "${digest}" is not a digest`);
  }
  let registry = DOCKER_HUB;
  let explicitRegistry = false;
  const slash = rest.indexOf('/');
  if (slash > 0 && isRegistry(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    explicitRegistry = true;
    rest = rest.slice(slash + 1);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ImageRefError(`"${text}": "${tag}" is not a valid tag`);
  }
  if (!REPOSITORY.test(rest)) {
    throw new ImageRefError(`"${text}": "${rest}" is not a repository name (lowercase, digits, . _ - and /)`);
  }
  return {
    registry,
    explicitRegistry,
    repository: rest,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest ? { digest } : {}),
  };
}

/** `registry/repository` as written (Docker Hub names without their implied registry). */
export function imageName(ref: ImageRef): string {
  return ref.explicitRegistry ? `${ref.registry}/${ref.repository}` : ref.repository;
}

/** The reference as Docker writes it: name, then `:tag`, then `@digest`. */
export function formatImageRef(ref: ImageRef): string {
  return `${imageName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The same image under another tag (any digest dropped: a new tag names its own manifest). */
export function withTag(ref: ImageRef, tag: string): ImageRef {
  const { digest: _digest, ...rest } = ref;
  return { ...rest, tag };
}

/** The same repository path and tag in another registry (pushes to a mirror or emulator). */
export function inRegistry(ref: ImageRef, registry: string): ImageRef {
  return { ...ref, registry, explicitRegistry: true };
}

/**
 * The major version a tag starts with (`postgres:16.4-bookworm` → 16), if it starts with one;
 * a registry port (`host:5000/postgres`) is never mistaken for it.
 */
export function tagMajor(text: string): number | undefined {
  let ref: ImageRef;
  try {
    ref = parseImageRef(text);
  } catch {
    return undefined;
  }
  const m = /^(\d+)(?:[.-]|$)/.exec(ref.tag ?? '');
  return m ? Number(m[1]) : undefined;
}

/** The last path component of the repository (`ghcr.io/org/postgres:16` → `postgres`). */
export function imageBaseName(text: string): string | undefined {
  try {
    return parseImageRef(text).repository.split('/').pop();
  } catch {
    return undefined;
  }
}

/** Whether the reference is an Amazon ECR repository (`<account>.dkr.ecr.<region>.amazonaws.com`). */
export function isEcr(ref: ImageRef): boolean {
  return /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(ref.registry);
}
