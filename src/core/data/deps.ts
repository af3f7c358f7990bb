// What `mlship data push` receives: the engine (the local database container, through
// `exec`), the AWS APIs, the object store of the local stack, the runner of the restore
// task (ECS, or this engine in tests), a log, progress and a clock. A module of its own so
// the parts of the push import it and not each other.

import type { ContainerClient } from '../../adapters/docker/engine.js';
import type { Clock } from '../../io/clock.js';
import type { AwsDeployApis, S3Api } from '../deploy/aws-apis.js';
import type { RowHash } from './checks.js';

export type DataEngine = Pick<ContainerClient, 'exec' | 'listByLabel'>;

/** Progress of one part of the push: bytes or objects done of a total (unknown: undefined). */
export type DataProgress = (
  part: 'dump' | 'upload' | 'restore' | 'files',
  done: number,
  total?: number,
) => void;

export interface RestoreOutcome {
  /** The restore container's exit code (undefined: it never ran). */
  exitCode: number | undefined;
  /** Why the task stopped, when it did not end on its own (ECS's stoppedReason). */
  reason?: string;
  /** The output of the fetch and restore containers, in order. */
  lines: string[];
}

/** Runs the restore task: on ECS (RunTask in the VPC), or on this engine (tests, benchmarks). */
export interface RestoreRunner {
  /** Where it runs, for messages ("ECS task in subnets ..."). */
  readonly where: string;
  /** Restores an earlier, interrupted push started that are still running. */
  inFlight(): Promise<string[]>;
  /**
   * Starts the restore of the dump staged under `dumpUrl` (its parts may still be arriving);
   * its verify lines hash rows as `rowHash` says (the local side's choice).
   */
  start(run: { dumpUrl: string; replace: boolean; rowHash: RowHash }): Promise<string>;
  wait(id: string): Promise<RestoreOutcome>;
}

export interface DataDeps {
  engine: DataEngine;
  aws: Pick<AwsDeployApis, 'rds' | 's3'>;
  /** The local stack's object store (its S3 API), when the stack has one. */
  source?: S3Api;
  restore?: RestoreRunner;
  log(line: string): void;
  progress?: DataProgress;
  clock?: Clock;
  /** Where dumps and the push's state are kept between runs (the user's cache, not the project). */
  cacheDir: string;
  /** Size of the staged dump's parts (default 16 MiB); tests make a small dump several parts. */
  dumpPartBytes?: number;
}
