// What a RUN installs, read from the command line: pip requirements with their
// version specifiers, index URLs, requirement and constraint files; npm and
// conda package specs. And the facts about ML packages the rules need: which
// wheels bring their own CUDA, which compile CUDA code when installed, which are
// development tools.

import { type SimpleCommand, splitShell } from './shell.js';

export interface PipRequirement {
  /** As written. */
  raw: string;
  /** Lower-case, `_` and `.` as `-` (PEP 503). */
  name: string;
  extras: string[];
  /** Everything after the name and extras: `==1.2`, `>=2`, `@ https://…`; '' when none. */
  spec: string;
}

export interface PipInstall {
  requirements: PipRequirement[];
  /** `-r` files. */
  files: string[];
  /** `-c` files. */
  constraints: string[];
  /** `-e` targets and local paths (`.`, `./pkg`, `/src/x`, `x.whl`). */
  local: string[];
  /** VCS and archive URLs (`git+https://…`, `https://…/x.zip`). */
  urls: string[];
  /** `--index-url`, `--extra-index-url`, `--find-links` values. */
  indexes: string[];
  editable: boolean;
  requireHashes: boolean;
  /** `--global-option`, `--install-option`, `--build-option`, `--config-settings`: options for a build. */
  buildOptions: string[];
}

const VALUE_FLAGS = new Set([
  '-r',
  '--requirement',
  '-c',
  '--constraint',
  '-e',
  '--editable',
  '-i',
  '--index-url',
  '--extra-index-url',
  '-f',
  '--find-links',
  '--trusted-host',
  '-t',
  '--target',
  '--prefix',
  '--root',
  '--platform',
  '--python-version',
  '--implementation',
  '--abi',
  '--progress-bar',
  '--timeout',
  '--retries',
  '--cache-dir',
  '--src',
  '--upgrade-strategy',
  '--root-user-action',
  '--global-option',
  '--install-option',
  '--build-option',
  '--config-settings',
  '-C',
  '--log',
  '--proxy',
  '--cert',
  '--client-cert',
  '--exists-action',
  '--python',
  '--report',
  '--only-binary',
  '--no-binary',
  '--use-feature',
  '--use-deprecated',
  '--keyring-provider',
]);

const REQUIREMENT = /^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$/;

export function normaliseName(name: string): string {
  return name.toLowerCase().replace(/[._]+/g, '-');
}

function isUrl(a: string): boolean {
  return /^[a-z+]+:\/\//i.test(a) || a.startsWith('git+') || a.startsWith('git@');
}

function isLocal(a: string): boolean {
  return a === '.' || /^(\.{1,2}|~)?\//.test(a) || /\.(whl|tar\.gz|zip|tgz)$/i.test(a) || a.startsWith('./');
}

/** A requirement line or argument: a name with extras and a specifier, or undefined for paths and URLs. */
export function parseRequirement(raw: string): PipRequirement | undefined {
  const text = raw
    .replace(/\s+#.*$/, '')
    .replace(/;.*$/, '')
    .trim();
  if (!text || isUrl(text) || isLocal(text)) return undefined;
  const m = REQUIREMENT.exec(text);
  if (!m) return undefined;
  const extras = (m[2] ?? '')
    .replace(/[[\]]/g, '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter(Boolean);
  return { raw, name: normaliseName(m[1]!), extras, spec: (m[3] ?? '').trim() };
}

/** Reads the arguments after `pip install`. */
export function parsePipInstall(args: string[]): PipInstall {
  const out: PipInstall = {
    requirements: [],
    files: [],
    constraints: [],
    local: [],
    urls: [],
    indexes: [],
    editable: false,
    requireHashes: false,
    buildOptions: [],
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (flag.startsWith('-')) {
      if (flag === '--require-hashes') out.requireHashes = true;
      if (!VALUE_FLAGS.has(flag)) continue;
      const value = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (value === undefined) break;
      if (flag === '-r' || flag === '--requirement') out.files.push(value);
      else if (flag === '-c' || flag === '--constraint') out.constraints.push(value);
      else if (flag === '-e' || flag === '--editable') {
        out.editable = true;
        (isUrl(value) ? out.urls : out.local).push(value);
      } else if (['-i', '--index-url', '--extra-index-url', '-f', '--find-links'].includes(flag))
        out.indexes.push(value);
      else if (/^--(global|install|build)-option$|^--config-settings$|^-C$/.test(flag))
        out.buildOptions.push(value);
      continue;
    }
    if (isUrl(a)) out.urls.push(a);
    else if (isLocal(a)) out.local.push(a);
    else {
      const r = parseRequirement(a);
      if (r) out.requirements.push(r);
    }
  }
  return out;
}

/** Requirement lines of a requirements file (options, paths and URLs left out). */
export function requirementsOfFile(text: string): { requirements: PipRequirement[]; other: string[] } {
  const requirements: PipRequirement[] = [];
  const other: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const r = line.startsWith('-') ? undefined : parseRequirement(line);
    if (r) requirements.push(r);
    else other.push(line);
  }
  return { requirements, other };
}

/** The package name and version of an npm spec (`left-pad`, `@scope/x@1.2.3`, `x@^1`). */
export function npmSpec(spec: string): { name: string; version: string | undefined } {
  const at = spec.indexOf('@', spec.startsWith('@') ? 1 : 0);
  return at > 0
    ? { name: spec.slice(0, at), version: spec.slice(at + 1) }
    : { name: spec, version: undefined };
}

/** Packages named by `npm install|i|add`, `yarn add`, `pnpm add|install` (flags dropped), or undefined. */
export function npmInstallArgs(c: SimpleCommand): string[] | undefined {
  const [cmd, sub] = c.words;
  const verbs: Record<string, string[]> = {
    npm: ['install', 'i', 'add'],
    yarn: ['add', 'install'],
    pnpm: ['add', 'install', 'i'],
  };
  if (!cmd || !verbs[cmd]?.includes(sub ?? '')) return undefined;
  return c.words.slice(2).filter((w) => !w.startsWith('-'));
}

/** Packages named by `conda|mamba|micromamba install` (flags and channels dropped), or undefined. */
export function condaInstallArgs(c: SimpleCommand): string[] | undefined {
  const [cmd, sub] = c.words;
  if (!/^(conda|mamba|micromamba)$/.test(cmd ?? '') || sub !== 'install') return undefined;
  const out: string[] = [];
  for (let i = 2; i < c.words.length; i++) {
    const w = c.words[i]!;
    if (['-c', '--channel', '-n', '--name', '-p', '--prefix', '--file'].includes(w)) i++;
    else if (!w.startsWith('-')) out.push(w);
  }
  return out;
}

/** Every command of a RUN's shell text, assignments (`A=b cmd`) dropped. */
export function commandsOf(script: string): SimpleCommand[] {
  return splitShell(script).map((c) => {
    const k = c.words.findIndex((w) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w));
    return { words: k < 0 ? [] : c.words.slice(k), op: c.op };
  });
}

// -- ML package facts -------------------------------------------------------------

/** Index URLs of CPU-only PyTorch wheels. */
export function isCpuIndex(url: string): boolean {
  return /download\.pytorch\.org\/whl\/(nightly\/)?cpu/.test(url);
}

/**
 * Does this requirement install a wheel that bundles its own CUDA libraries
 * (so a CUDA base image underneath is a second copy)? torch's Linux wheels do
 * (in torch/lib, or as nvidia-* dependencies) unless they are the CPU build;
 * `tensorflow[and-cuda]`, `jax[cudaNN…]` and the nvidia-*-cuNN packages do.
 * tensorflow without the extra, onnxruntime-gpu and CuPy use the system's CUDA.
 */
export function bundlesCuda(r: PipRequirement, indexes: string[]): boolean {
  if (r.name === 'torch') return !indexes.some(isCpuIndex) && !/\+cpu\b/.test(r.spec);
  if (r.name === 'tensorflow') return r.extras.includes('and-cuda');
  if (r.name === 'jax') return r.extras.some((e) => /^cuda\d/.test(e));
  return /^nvidia-[a-z-]+-cu1\d$/.test(r.name);
}

/**
 * Packages that load the system's CUDA libraries (not a wheel's): with one of
 * them, the CUDA base image is not a second copy but what they run on.
 */
export function usesSystemCuda(r: PipRequirement): boolean {
  if (r.name === 'tensorflow') return !r.extras.includes('and-cuda');
  if (r.name === 'jax') return r.extras.some((e) => /_local$/.test(e));
  return (
    SYSTEM_CUDA.has(r.name) ||
    /^(cupy-cuda|tensorrt|onnxruntime-gpu|paddlepaddle-gpu|tensorflow-gpu|mxnet-cu)/.test(r.name)
  );
}

const SYSTEM_CUDA = new Set([
  'cupy',
  'pycuda',
  'numba',
  'llama-cpp-python',
  'bitsandbytes',
  'ctranslate2',
  'faster-whisper',
]);

/** The package a VCS URL or a wheel file names (`git+https://…/diffusers.git` → diffusers). */
export function nameFromSource(src: string): string | undefined {
  const egg = /#egg=([A-Za-z0-9._-]+)/.exec(src)?.[1];
  if (egg) return normaliseName(egg);
  const file =
    src
      .replace(/[#?].*$/, '')
      .replace(/@[^/]*$/, '')
      .replace(/\/+$/, '')
      .split('/')
      .at(-1) ?? '';
  const wheel = /^([A-Za-z0-9_.]+)-\d/.exec(file)?.[1];
  if (file.endsWith('.whl')) return wheel ? normaliseName(wheel) : undefined;
  const name = file.replace(/\.git$/, '');
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) && !/[*?]/.test(name) ? normaliseName(name) : undefined;
}

/** Packages that compile CUDA or C++ extensions when pip installs them (no wheel for most setups). */
export const COMPILES_ON_INSTALL = new Set([
  'apex',
  'flash-attn',
  'mmcv-full',
  'pytorch3d',
  'detectron2',
  'causal-conv1d',
  'mamba-ssm',
  'auto-gptq',
  'nvdiffrast',
  'torch-scatter',
  'torch-sparse',
  'torch-cluster',
  'torch-spline-conv',
  'cupy',
  'deepspeed',
]);

/** Development tools: a notebook server, test runners, linters, debuggers. */
export const DEV_TOOLS_PIP = new Set([
  'jupyter',
  'jupyterlab',
  'notebook',
  'ipykernel',
  'ipython',
  'pytest',
  'coverage',
  'tox',
  'nox',
  'black',
  'flake8',
  'ruff',
  'mypy',
  'pylint',
  'isort',
  'pre-commit',
  'ipdb',
  'pdbpp',
]);
