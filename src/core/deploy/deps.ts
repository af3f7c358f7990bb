// What `deploy ecs --apply` and the modules it is split into (checks, GPU capacity,
// load balancer, wait) receive: the AWS APIs, the engine's image calls, a log, progress
// and a clock; and the options of one apply. A module of its own, so the parts of the
// apply import it instead of importing apply.ts back (no import cycles).

import type { ImageClient } from '../../adapters/docker/engine.js';
import type { Clock } from '../../io/clock.js';
import type { TaskRunner } from '../../io/progress.js';
import type { AwsDeployApis } from './aws-apis.js';

export interface ApplyDeps {
  aws: AwsDeployApis;
  engine: Pick<ImageClient, 'imageExists' | 'tag' | 'push' | 'inspectImage'>;
  log(line: string): void;
  /** Per-service progress while waiting (default: plain lines through `log`). */
  tasks?: TaskRunner;
  clock?: Clock;
  /**
   * Which of `programs` a local image has (on its PATH), or undefined when the image is not on
   * this machine: health checks are checked against it before anything is created.
   */
  imagePrograms?(image: string, programs: string[]): Promise<Set<string> | undefined>;
}

export interface ApplyOptions {
  /** Local image per service to push (built beforehand). */
  localImages: Record<string, string>;
  /** Push to this registry instead of ECR (emulators, pull-through setups); no ECR login. */
  registry?: string;
  /** Also push each built image under this tag (e.g. "latest"); task definitions keep the commit tag. */
  movingTag?: string;
  /** Redeploy services even when their task definition did not change. */
  force: boolean;
  subnets?: string[];
  securityGroups?: string[];
  keepImages?: number;
  logRetentionDays?: number;
  gpuInstanceType?: string;
  /** Wait until every created or updated service is stable (`--no-wait` turns it off). */
  wait: boolean;
  /** Default: the longest health-check grace period of the changed services + 10 minutes. */
  waitTimeoutSeconds?: number;
  /** Between two DescribeServices calls while waiting (default 15 s, as the AWS waiters). */
  pollSeconds?: number;
  /** After creating IAM roles (default 10 s; emulators need none). */
  iamPropagationSeconds?: number;
  /** Values of the stack's local .env: secrets the task definitions read from SSM, created when missing. */
  localSecrets?: Record<string, string>;
  /** How long to wait for a new database (default 30 minutes). */
  databaseWaitSeconds?: number;
  /**
   * Runs once nothing is refused, before the checks that referenced secrets exist: creates
   * secrets the stack brings itself (the proxy's API keys, operate.ts).
   */
  beforeChecks?: () => Promise<void>;
}

export interface DeployNetwork {
  subnets: string[];
  securityGroups: string[];
  /** Where the shared load balancer goes (only when a service publishes a port). */
  balancer?: { vpcId: string; subnets: string[] };
  /** The GPU instances' AMI (only with a GPU task). */
  gpuAmi?: string;
}
