// What a bakeoff needs from the outside world, injected as one object (built in the
// command from the CLI context), so tests can hand in fakes.

import type { Readable } from 'node:stream';
import type { EngineEndpoint } from '../../adapters/docker/endpoint.js';
import type {
  BuildOptions,
  BuildResult,
  ContainerHandle,
  ContainerSpec,
  EngineInfo,
  EngineVersion,
  ImageSummary,
} from '../../adapters/docker/engine.js';
import type { Exec } from '../../adapters/exec.js';
import type { GitClient } from '../../adapters/git.js';
import type { IoHost } from '../../io/io-host.js';

export interface BakeoffEngine {
  /** Where the engine is: its GPUs are found through it, its GPU memory sampled only when local. */
  readonly endpoint: EngineEndpoint;
  info(): Promise<EngineInfo>;
  version(): Promise<EngineVersion>;
  build(options: BuildOptions): Promise<BuildResult>;
  inspectImage(ref: string): Promise<ImageSummary>;
  start(spec: ContainerSpec): Promise<ContainerHandle>;
  getArchive(containerId: string, path: string): Promise<Readable | undefined>;
}

export interface BakeoffDeps {
  /** Connects on first use (`--plan` never does). */
  engine(): Promise<BakeoffEngine>;
  git: GitClient;
  /** For the local nvidia-smi (`--plan`, local engines without the NVIDIA runtime, GPU memory). */
  exec: Exec;
  io: IoHost;
  /** Registered cleanups run on Ctrl-C (the engine registers its containers itself). */
  cleanup: { add(name: string, fn: () => Promise<void> | void): () => void };
  now(): Date;
  mlshipVersion: string;
}

export interface IndexPage {
  /** The URL the answer came from (after redirects): relative links resolve against it. */
  url: string;
  contentType: string;
  body: string;
}

/** The reads of a wheel index for `bakeoff matrix refresh` (implemented by adapters/wheel-index.ts). */
export interface WheelIndex {
  /** GET of a project page, asking for PEP 691 JSON first and accepting PEP 503 HTML. */
  page(url: string): Promise<IndexPage>;
  /** GET of a small text file (a wheel's `.metadata`); undefined when the index has none. */
  text(url: string): Promise<string | undefined>;
}
