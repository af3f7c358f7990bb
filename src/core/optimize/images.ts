// What mlship knows about base images by their reference: the slim variant of a
// full python/node image, the flavour of a CUDA image and its runtime
// counterpart, which images ship no Python. Mirrors count: the repository is
// matched on its last path component (`mlship-local/python:3.11`,
// `<account>.dkr.ecr.<region>.amazonaws.com/nvidia/cuda:12.4.1-runtime-ubuntu22.04`).

// Tags of the full official images: a version, optionally with the Debian release.
const PY_FULL = /^(\d+(?:\.\d+){0,2}(?:(?:a|b|rc)\d+)?)(?:-(bookworm|bullseye|buster|trixie))?$/;
const NODE_FULL =
  /^(\d+(?:\.\d+){0,2}|lts|current|hydrogen|iron|jod|krypton)(?:-(bookworm|bullseye|buster|trixie))?$/;

export interface SlimVariant {
  /** The full image, as given (registry and namespace kept). */
  image: string;
  /** The same image family and version without the toolchain. */
  slim: string;
  /** `python` or `node`: the official image the repository's last path component names. */
  family: string;
  /** The reference pins a digest, which the slim variant cannot keep. */
  digest: boolean;
}

/**
 * The slim variant of a full official python/node image (`python:3.11` →
 * `python:3.11-slim`, `node:20-bookworm` → `node:20-bookworm-slim`), or undefined
 * when the tag is already slim, alpine, distroless, unpinned or unknown. The
 * repository is matched on its last path component, so mirrors
 * (`mlship-local/python:3.11`, `<account>.dkr.ecr.<region>.amazonaws.com/python:3.11`) count too.
 */
export function slimVariant(image: string): SlimVariant | undefined {
  const at = image.indexOf('@');
  const ref = at >= 0 ? image.slice(0, at) : image;
  const slash = ref.lastIndexOf('/');
  const colon = ref.indexOf(':', slash + 1);
  if (colon < 0) return undefined;
  const repo = ref.slice(0, colon);
  const family = repo.slice(slash + 1).toLowerCase();
  const tag = ref.slice(colon + 1);
  let slimTag: string | undefined;
  if (family === 'python') {
    const m = PY_FULL.exec(tag);
    if (m) slimTag = `${m[1]}-slim${m[2] ? `-${m[2]}` : ''}`;
  } else if (family === 'node') {
    const m = NODE_FULL.exec(tag);
    if (m) slimTag = `${m[1]}${m[2] ? `-${m[2]}` : ''}-slim`;
  }
  if (!slimTag) return undefined;
  return { image, slim: `${repo}:${slimTag}`, family, digest: at >= 0 };
}

/** Repository path (registry included) and tag of a reference; the digest is dropped. */
function splitRef(image: string): { repo: string; name: string; namespace: string; tag: string } {
  const at = image.indexOf('@');
  const ref = at >= 0 ? image.slice(0, at) : image;
  const slash = ref.lastIndexOf('/');
  const colon = ref.indexOf(':', slash + 1);
  const repo = colon >= 0 ? ref.slice(0, colon) : ref;
  const parts = repo.toLowerCase().split('/');
  return {
    repo,
    name: parts.at(-1) ?? '',
    namespace: parts.at(-2) ?? '',
    tag: colon >= 0 ? ref.slice(colon + 1) : 'latest',
  };
}

export interface CudaImage {
  /** `base` (cudart only), `runtime` (the CUDA libraries), `devel` (plus compilers and headers). */
  flavour: 'base' | 'runtime' | 'devel';
  cudnn: boolean;
  /** The Ubuntu release in the tag (`22.04`), when there is one. */
  ubuntu: string | undefined;
  /** Package manager of the OS underneath: the tags without an OS name are Ubuntu. */
  apt: boolean;
}

/** NVIDIA's CUDA image (`nvidia/cuda`, `nvcr.io/nvidia/cuda` or a mirror of it), by its tag. */
export function cudaImage(image: string): CudaImage | undefined {
  const { name, tag } = splitRef(image);
  if (name !== 'cuda') return undefined;
  const flavour = /(^|-)devel(-|$)/.test(tag)
    ? 'devel'
    : /(^|-)runtime(-|$)/.test(tag)
      ? 'runtime'
      : /(^|-)base(-|$)/.test(tag)
        ? 'base'
        : undefined;
  if (!flavour) return undefined;
  return {
    flavour,
    cudnn: /cudnn/.test(tag),
    ubuntu: /ubuntu(\d+\.\d+)/.exec(tag)?.[1],
    apt: !/(ubi|rockylinux|centos|oraclelinux|rhel|amzn)/.test(tag),
  };
}

/**
 * The runtime image matching a devel one, where the family publishes both
 * under tags that differ only in that word (`nvidia/cuda`, `pytorch/pytorch`);
 * undefined otherwise (a tensorflow `devel` image is for building TensorFlow).
 */
export function runtimeOf(image: string): string | undefined {
  const { repo, name, namespace, tag } = splitRef(image);
  const family = name === 'cuda' || (name === 'pytorch' && namespace === 'pytorch');
  if (!family || !/(^|-)devel(-|$)/.test(tag) || image.includes('@')) return undefined;
  return `${repo}:${tag.replace(/(^|-)devel(?=-|$)/, '$1runtime')}`;
}

/** Any image whose tag says devel, of a CUDA family (what cuda-devel-runtime looks at). */
export function isCudaDevel(image: string): boolean {
  return /(cuda|pytorch|tensorflow|nvidia)[^:]*:.*devel/i.test(image);
}

export interface PythonLessBase {
  family: 'cuda' | 'ubuntu' | 'debian' | 'alpine';
  /** Installs with apt-get (so mlship can add Python the way the OS does). */
  apt: boolean;
}

/**
 * Base images known to ship neither Python nor pip: NVIDIA's CUDA images
 * (every flavour), and the official ubuntu, debian and alpine images.
 */
export function pythonLessBase(image: string): PythonLessBase | undefined {
  const { name } = splitRef(image);
  if (name === 'cuda') {
    const c = cudaImage(image);
    return c ? { family: 'cuda', apt: c.apt } : undefined;
  }
  if (name === 'ubuntu' || name === 'debian') return { family: name, apt: true };
  if (name === 'alpine') return { family: 'alpine', apt: false };
  return undefined;
}

/** Jupyter's own images (`jupyter/*-notebook`, `quay.io/jupyter/*`) and TensorFlow's `-jupyter` tags. */
export function isJupyterImage(image: string): boolean {
  const { name, namespace, tag } = splitRef(image);
  return namespace === 'jupyter' || /notebook$/.test(name) || /(^|-)jupyter$/.test(tag);
}

/** The Python an Ubuntu release installs with `apt-get install python3`. */
export const UBUNTU_PYTHON: Record<string, string> = {
  '18.04': '3.6',
  '20.04': '3.8',
  '22.04': '3.10',
  '24.04': '3.12',
};
