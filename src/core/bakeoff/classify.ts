// Why a candidate failed: every failure gets a stable category, where the problem
// lies (host, image, candidate code, config), a one-line hint, and the log lines
// that prove it. Pure: takes what was observed, returns the verdict.

import type { GitError } from '../../adapters/git.js';
import type { Failure } from '../../generators/bakeoff-report-schema.js';

export type { Failure };

export interface RunObservation {
  exitCode: number;
  timedOut: boolean;
  oomKilled: boolean;
  timeoutMs: number;
  memoryLimitBytes?: number;
  gpusRequested: boolean;
  log: string[];
  missingOutputs: string[];
  /** Host directory of the download cache mounted into the candidate, if any (for the hint). */
  weightsCache?: string;
}

function find(lines: string[], re: RegExp): { line: string; match: RegExpExecArray } | undefined {
  for (const line of lines) {
    const match = re.exec(line);
    if (match) return { line, match };
  }
  return undefined;
}

const PIP_PATTERNS: [RegExp, (m: RegExpExecArray) => string][] = [
  [/No matching distribution found for ([^\s;]+)/, (m) => m[1]!],
  [/Could not find a version that satisfies the requirement ([^\s;(]+)/, (m) => m[1]!],
  [/Failed building wheel for ([^\s]+)/, (m) => m[1]!],
  [/Failed to build ([^\s]+)/, (m) => m[1]!],
  [/Cannot install ([^\s]+?)(?: and | because|,)/, (m) => m[1]!],
  [/ResolutionImpossible/, () => ''],
  [/Getting requirements to build wheel did not run successfully/, () => ''],
  [/ERROR: Could not install packages due to an OSError/, () => ''],
];

/** Removes terminal colour codes (pip colours its errors). */
export function stripAnsi(s: string): string {
  return s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
}

/** "torch==2.1.0+cu118," → "torch"; "Pillow[extra]>=9" → "Pillow". */
export function packageName(requirement: string): string {
  return requirement.replace(/[,.]$/, '').split(/[<>=!~;[\s(]/)[0] ?? '';
}

function shortSize(bytes: number): string {
  return bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(1)} GiB`
    : `${Math.round(bytes / 1024 ** 2)} MiB`;
}

/** Host-side GPU problems: no driver, no GPU, no container toolkit. */
const HOST_GPU =
  /could not select device driver|nvidia-container-cli|NVIDIA-SMI has failed|Found no NVIDIA driver|no CUDA-capable device is detected|No CUDA GPUs are available|CUDA driver initialization failed/i;
/** The image's CUDA is newer than the host driver. */
const DRIVER =
  /driver[^.]{0,40}? is (too old|insufficient)|CUDA driver version is insufficient|forward compatibility was attempted on non supported HW|cudaErrorInsufficientDriver/i;
/** The wheel has no kernels for this GPU, or was built for another architecture. */
const ARCH =
  /no kernel image is available for execution|Unknown CUDA arch|is not compatible with the current PyTorch installation|sm_\d+ is not (compatible|supported)|invalid device function|CUDA error: no kernel image/i;

/**
 * A download the candidate could not make: the file or repo is not there or needs credentials
 * (the candidate's problem: its URL or model id), as huggingface_hub, transformers, torch.hub
 * (urllib) and requests word it.
 */
const DOWNLOAD_REFUSED =
  /HTTP Error (401|403|404)|\b(401|403|404) Client Error|\bRepositoryNotFoundError|\bEntryNotFoundError|\bRevisionNotFoundError|\bGatedRepoError|Repository Not Found for url|is not a valid model identifier/;
/** The network or the hub is unreachable from the container: the host's problem. */
const DOWNLOAD_UNREACHABLE =
  /urlopen error|Temporary failure in name resolution|Name or service not known|Failed to establish a new connection|Max retries exceeded with url|Network is unreachable|Connection refused|ConnectTimeout|ReadTimeout|We couldn't connect to '|LocalEntryNotFoundError|OfflineModeIsEnabled|outgoing traffic has been disabled/;

function downloadFailure(log: string[], weightsCache: string | undefined): Failure | undefined {
  const refused = find(log, DOWNLOAD_REFUSED);
  const unreachable = refused ? undefined : find(log, DOWNLOAD_UNREACHABLE);
  const hit = refused ?? unreachable;
  if (!hit) return undefined;
  // The URL, from the error line, else from the last line before it that names one ("Downloading: …"),
  // else from the first after it: the announcement is often on stdout and the traceback on stderr,
  // and the engine stamps each stream on its own, so the two can come back in either order.
  const urlIn = (l: string) => /https?:\/\/[^\s'")>]+/.exec(l)?.[0];
  const at = log.indexOf(hit.line);
  const url =
    urlIn(hit.line) ??
    log.slice(0, at).reverse().map(urlIn).find(Boolean) ??
    log
      .slice(at + 1)
      .map(urlIn)
      .find(Boolean);
  const cache = weightsCache ?? 'the weights cache (weights_cache in bakeoff.yaml)';
  const prefetch = `pre-fetch into ${cache} where the network works (HF_HOME=${weightsCache ? `${weightsCache}/huggingface` : '<cache>/huggingface'} huggingface-cli download <repo>; TORCH_HOME=${weightsCache ? `${weightsCache}/torch` : '<cache>/torch'} for torch.hub), or mount the weights as an input and point the example at /workspace/inputs`;
  return refused
    ? {
        category: 'download_failed',
        origin: 'candidate',
        message: `a download at run time was refused${url ? ` (${url})` : ''}: the file does not exist there, or it needs credentials`,
        hint: `check the URL or model id the example uses, and for a private or gated repo pass a token through env (e.g. HF_TOKEN); or ${prefetch}`,
        evidence: [hit.line.trim()],
      }
    : {
        category: 'download_failed',
        origin: 'host',
        message: `a download at run time could not reach its server${url ? ` (${url})` : ''}: no network or the hub is down`,
        hint: prefetch,
        evidence: [hit.line.trim()],
      };
}

/** Classifies a failed image build (the build step and its output). */
export function classifyBuildFailure(step: string | undefined, output: string[], message: string): Failure {
  const lines = [...output, message].map(stripAnsi);
  for (const [re, pkg] of PIP_PATTERNS) {
    const hit = find(lines, re);
    if (hit) {
      const name = packageName(pkg(hit.match));
      return {
        category: 'dependency_install_failed',
        origin: 'candidate',
        message: name
          ? `installing the Python dependencies failed on ${name}`
          : 'installing the Python dependencies failed',
        hint: name
          ? `${name} cannot be installed for this Python/platform: pin another version in the requirements, pick another python version, or add the system packages it builds against (system_packages)`
          : 'read the pip output above; pin compatible versions or change the python version',
        evidence: [hit.line.trim()],
        ...(name ? { package: name } : {}),
      };
    }
  }
  const apt = find(
    lines,
    /E: Unable to locate package (\S+)|E: Package '([^']+)' has no installation candidate/,
  );
  if (apt) {
    const name = apt.match[1] ?? apt.match[2] ?? '';
    return {
      category: 'dependency_install_failed',
      origin: 'config',
      message: `system package ${name} is not available in the base image's distribution`,
      hint: 'check the name in system_packages against the base image (Debian for python:slim, Ubuntu for nvidia/cuda)',
      evidence: [apt.line.trim()],
      package: name,
    };
  }
  const pull = find(
    lines,
    /pull access denied|manifest unknown|not found: manifest|failed to resolve reference|dial tcp|no such host|TLS handshake timeout/i,
  );
  if (pull) {
    return {
      category: 'build_failed',
      origin: 'host',
      message: 'the base image could not be pulled',
      hint: 'check the network/registry access, or point base_images (or --base-image) at a mirror',
      evidence: [pull.line.trim()],
    };
  }
  const tail = lines.slice(-4, -1).map((l) => l.trim());
  return {
    category: 'build_failed',
    origin: 'candidate',
    message: step ? `the image build failed at ${step}` : `the image build failed: ${message}`,
    hint: 'the build output in the report shows the failing command; fix setup or system_packages',
    evidence: tail,
  };
}

const GPU_OOM = /CUDA out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED|RESOURCE_EXHAUSTED: OOM/;

/** A GPU-side cause in the log of a failed run (host, driver, architecture, GPU memory). */
function gpuFailure(o: RunObservation, gpuOom: ReturnType<typeof find>): Failure | undefined {
  const host = find(o.log, HOST_GPU);
  if (host) {
    return {
      category: 'host_gpu_unavailable',
      origin: 'host',
      message: 'the example needs a GPU that the host does not provide to containers',
      hint: o.gpusRequested
        ? 'check the host: nvidia-smi, the NVIDIA Container Toolkit, and `docker run --gpus all` working at all'
        : 'the candidate requests no GPU: set gpus: 1 (and a CUDA build), or run the example on CPU',
      evidence: [host.line.trim()],
    };
  }
  const driver = find(o.log, DRIVER);
  if (driver) {
    return {
      category: 'cuda_driver_mismatch',
      origin: 'host',
      message: "the host's NVIDIA driver is older than the image's CUDA needs",
      hint: 'update the driver, or pin an older cuda for this candidate (bakeoff checks nvidia-smi before running)',
      evidence: [driver.line.trim()],
    };
  }
  const arch = find(o.log, ARCH);
  if (arch) {
    return {
      category: 'cuda_arch_mismatch',
      origin: 'image',
      message: "the framework build has no kernels for this GPU's architecture",
      hint: 'pick a framework/CUDA build that supports this GPU (newer GPUs need newer CUDA), or build the extension with TORCH_CUDA_ARCH_LIST',
      evidence: [arch.line.trim()],
    };
  }
  if (gpuOom) {
    return {
      category: 'out_of_memory',
      origin: 'candidate',
      message: 'the example ran out of GPU memory',
      hint: 'use a smaller batch/input, half precision, or a GPU with more memory',
      evidence: [gpuOom.line.trim()],
    };
  }
  return undefined;
}

/** A run that exited non-zero: a GPU cause, a failed download, a missing import, or the exit itself. */
function exitFailure(o: RunObservation, gpuOom: ReturnType<typeof find>): Failure {
  const gpu = gpuFailure(o, gpuOom);
  if (gpu) return gpu;
  const download = downloadFailure(o.log, o.weightsCache);
  if (download) return download;
  const missing = find(o.log, /ModuleNotFoundError: No module named '([^']+)'|ImportError: (.+)/);
  return {
    category: 'nonzero_exit',
    origin: 'candidate',
    message: `the example exited with code ${o.exitCode}`,
    hint: missing
      ? `a Python import failed (${missing.match[1] ?? missing.match[2]}): add it to the requirements or setup`
      : 'the log tail in the report shows the error',
    evidence: missing ? [missing.line.trim()] : o.log.slice(-3),
  };
}

/** Classifies a finished run, or returns undefined when it succeeded. */
export function classifyRun(o: RunObservation): Failure | undefined {
  if (o.timedOut) {
    return {
      category: 'timeout',
      origin: 'candidate',
      message: `the example did not finish within ${Math.round(o.timeoutMs / 1000)} s and was stopped`,
      hint: 'raise timeout if it is just slow; a hang often waits for input, a download, or a GPU that is not there',
      evidence: o.log.slice(-2),
    };
  }
  const gpuOom = find(o.log, GPU_OOM);
  if (o.oomKilled || (o.exitCode === 137 && o.memoryLimitBytes !== undefined && !gpuOom)) {
    return {
      category: 'out_of_memory',
      origin: 'candidate',
      message: `the example was killed for exceeding its memory limit${o.memoryLimitBytes ? ` (${shortSize(o.memoryLimitBytes)})` : ''}`,
      hint: 'raise memory, or make the example use less (smaller batch or input size)',
      evidence: o.log.slice(-2),
    };
  }
  if (o.exitCode !== 0) return exitFailure(o, gpuOom);
  if (o.missingOutputs.length) {
    return {
      category: 'missing_output',
      origin: 'candidate',
      message: `the example exited 0 but produced no ${o.missingOutputs.join(', ')}`,
      hint: 'check the output paths in outputs (relative to the repo directory) and the example arguments',
      evidence: o.log.slice(-2),
    };
  }
  return undefined;
}

/** A container that could not even start: the engine's reason, GPU problems told apart. */
export function classifyStartFailure(message: string, gpusRequested: boolean): Failure {
  if (HOST_GPU.test(message)) {
    return {
      category: 'host_gpu_unavailable',
      origin: 'host',
      message: 'the engine cannot give the container a GPU',
      hint: gpusRequested
        ? 'install the NVIDIA Container Toolkit and restart the engine (`docker run --gpus all ... nvidia-smi` must work), or set gpus: 0'
        : 'the engine reported a GPU problem; check `mlship doctor`',
      evidence: [message],
    };
  }
  return {
    category: 'engine_error',
    origin: 'host',
    message: `the Docker engine could not start the example: ${message}`,
    hint: 'check `mlship doctor` and the engine logs',
    evidence: [message],
  };
}

export function cloneFailure(repo: string, stderr: string, submodule?: GitError['submodule']): Failure {
  const lines = stderr.split('\n').filter(Boolean);
  const auth = /Authentication failed|could not read Username|Permission denied \(publickey\)/i.test(stderr);
  const ref =
    /unknown revision|did not match any|couldn't find remote ref|not a valid object name|bad revision/i.test(
      stderr,
    );
  if (submodule) {
    const at = `submodule ${submodule.path} (${submodule.location})`;
    return {
      category: 'clone_failed',
      origin: auth ? 'host' : 'candidate',
      message: ref
        ? `${repo} pins commit ${submodule.commit.slice(0, 12)} of ${at}, which it does not have`
        : `cloning ${at} of ${repo} failed`,
      hint: ref
        ? "the submodule's repository no longer has the pinned commit: pin another commit of the candidate"
        : auth
          ? 'the submodule needs credentials: configure git (ssh key or credential helper) for its host'
          : "check the submodule's URL in .gitmodules, and the network",
      evidence: lines.slice(-3),
    };
  }
  return {
    category: 'clone_failed',
    origin: ref ? 'config' : auth ? 'host' : 'candidate',
    message: ref ? `the ref does not exist in ${repo}` : `cloning ${repo} failed`,
    hint: ref
      ? 'check ref (a branch, tag or commit of that repository)'
      : auth
        ? 'the repository needs credentials: configure git (ssh key or credential helper) for this host'
        : 'check the URL or path, and the network',
    evidence: lines.slice(-3),
  };
}
