// SIGINT/SIGTERM: run every registered cleanup (bounded), then exit 130.
// A second signal exits at once, for the user who really means it.

import type { CleanupRegistry } from './cleanup.js';
import { ExitCode } from './errors.js';

export interface SignalSource {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export function installSignalHandlers(
  source: SignalSource,
  cleanup: CleanupRegistry,
  log: (line: string) => void,
  exit: (code: number) => void,
  timeoutMs = 5000,
): () => void {
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      exit(ExitCode.interrupted);
      return;
    }
    interrupted = true;
    log(`\n${signal}: cleaning up (${cleanup.size} item${cleanup.size === 1 ? '' : 's'})…`);
    void cleanup
      .runAll(timeoutMs, (name, e) => log(`cleanup ${name} failed: ${(e as Error).message}`))
      .finally(() => exit(ExitCode.interrupted));
  };
  source.on('SIGINT', onSignal);
  source.on('SIGTERM', onSignal);
  return () => {
    source.off('SIGINT', onSignal);
    source.off('SIGTERM', onSignal);
  };
}
