// Builds the dependencies that core functions receive, from global options and
// the process. The only place (with main) that reads process state.

import type { Command } from 'commander';
import type { Engine } from '../adapters/docker/engine.js';
import type { CleanupRegistry } from '../io/cleanup.js';
import { type IoHost, StreamIoHost } from '../io/io-host.js';
import { ListrTaskRunner, PlainTaskRunner, wantsLiveProgress } from '../io/progress.js';
import { DefaultsPrompter, InquirerPrompter } from '../io/prompts.js';
import { colorLevel, createStyler } from '../io/style.js';

export interface GlobalOptions {
  json: boolean;
  yes: boolean;
  debug: boolean;
  color: boolean;
}

export interface CliContext {
  io: IoHost;
  cleanup: CleanupRegistry;
  env: NodeJS.ProcessEnv;
  cwd: string;
  global: GlobalOptions;
  /** Connects to the Docker engine on first use; the same client afterwards. */
  engine(): Promise<Engine>;
}

/** Gives a command its context, built on first use (after the global options are parsed). */
export type ContextHolder = { get(): CliContext };

/** A command module: registers its options on the program; imports its work when it runs. */
export type Register = (program: Command, holder: ContextHolder) => void;

export function createContext(global: GlobalOptions, cleanup: CleanupRegistry): CliContext {
  const env = process.env;
  const stderrTTY = Boolean(process.stderr.isTTY);
  const level = global.color ? colorLevel(env, stderrTTY) : 0;
  const style = createStyler(level);
  const interactive =
    !global.yes && Boolean(process.stdin.isTTY) && Boolean(process.stdout.isTTY) && !global.json;
  const io = new StreamIoHost({
    streams: { stdout: process.stdout, stderr: process.stderr },
    json: global.json,
    debug: global.debug,
    style,
    prompter: interactive ? new InquirerPrompter() : new DefaultsPrompter(),
    tasks: wantsLiveProgress(env, stderrTTY)
      ? new ListrTaskRunner()
      : new PlainTaskRunner(process.stderr, style),
  });
  let engine: Promise<Engine> | undefined;
  return {
    io,
    cleanup,
    env,
    cwd: process.cwd(),
    global,
    engine() {
      engine ??= import('../adapters/docker/engine.js').then(({ DockerEngine }) =>
        DockerEngine.connect(undefined, cleanup),
      );
      return engine;
    },
  };
}
