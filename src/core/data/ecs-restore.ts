// The restore task on ECS: its role and task definition made to match (a re-run registers
// nothing new), RunTask in the stack's cluster with the subnets and security groups the
// services use (the only ones the database admits), waiting until the task stops, then its
// containers' exit codes and their CloudWatch log lines (the verify lines among them).

import type { RegisterTaskDefinitionCommandInput, Task } from '@aws-sdk/client-ecs';
import { type Clock, realClock } from '../../io/clock.js';
import { OperationFailedError } from '../../io/errors.js';
import type { AwsDeployApis } from '../deploy/aws-apis.js';
import { IAM_PROPAGATION_SECONDS } from '../deploy/stack-resources.js';
import type { RestoreOutcome, RestoreRunner } from './deps.js';
import { dataRoleSpec, type RestoreTaskSpec, restoreTaskDefinition } from './restore-task.js';

export interface EcsRestoreOptions extends Omit<RestoreTaskSpec, 'roleArn'> {
  cluster: string;
  bucket: string;
  kmsKeyId?: string;
  subnets: string[];
  securityGroups: string[];
  assignPublicIp: boolean;
  pollSeconds?: number;
  /** Give up waiting after this long (default 2 hours: a large restore takes a while). */
  timeoutSeconds?: number;
  iamPropagationSeconds?: number;
}

export const startedBy = (stack: string) => `mlship-data-${stack}`.slice(0, 36);

/** The task definition's fields that matter, to compare a registered revision with the wanted one. */
function essence(td: RegisterTaskDefinitionCommandInput): string {
  return JSON.stringify({
    c: td.containerDefinitions?.map((c) => ({
      n: c.name,
      i: c.image,
      e: c.entryPoint,
      cmd: c.command,
      env: c.environment,
      s: c.secrets,
      d: c.dependsOn,
    })),
    r: [td.executionRoleArn, td.taskRoleArn],
    st: td.ephemeralStorage?.sizeInGiB ?? 20,
  });
}

/** Lines of a stopped task's containers, from the awslogs streams (data/<container>/<task id>). */
async function taskLines(aws: Pick<AwsDeployApis, 'logs'>, logGroup: string, task: Task): Promise<string[]> {
  const taskId = task.taskArn!.split('/').pop()!;
  const lines: string[] = [];
  for (const container of ['fetch', 'restore'])
    lines.push(...(await aws.logs.streamMessages(logGroup, `data/${container}/${taskId}`)));
  return lines;
}

export function ecsRestoreRunner(
  aws: Pick<AwsDeployApis, 'ecs' | 'iam' | 'logs'>,
  opts: EcsRestoreOptions,
  log: (line: string) => void,
  clock: Clock = realClock,
): RestoreRunner {
  const by = startedBy(opts.stack);
  async function ensureDefinition(): Promise<string> {
    const role = await aws.iam.ensureServiceRole(dataRoleSpec(opts));
    if (!role.managed) {
      throw new OperationFailedError(
        'ROLE_NOT_OURS',
        `IAM role ${dataRoleSpec(opts).name} exists and was not created by mlship`,
        {
          hint: 'delete that role, or rename the stack',
        },
      );
    }
    if (role.created) await clock.sleep((opts.iamPropagationSeconds ?? IAM_PROPAGATION_SECONDS) * 1000);
    const wanted = restoreTaskDefinition({ ...opts, roleArn: role.arn });
    const latest = await aws.ecs.latestTaskDefinition(wanted.family!);
    if (latest && essence(latest as RegisterTaskDefinitionCommandInput) === essence(wanted))
      return latest.taskDefinitionArn!;
    const r = await aws.ecs.registerTaskDefinition(wanted);
    log(`task definition ${wanted.family}: registered revision ${r.revision}`);
    return r.arn;
  }
  return {
    where: `ECS task in ${opts.cluster}, subnets ${opts.subnets.join(', ')}`,
    inFlight: () => aws.ecs.tasksStartedBy(opts.cluster, by, 'RUNNING'),
    async start(run) {
      const taskDefinition = await ensureDefinition();
      return aws.ecs.runTask({
        cluster: opts.cluster,
        taskDefinition,
        subnets: opts.subnets,
        securityGroups: opts.securityGroups,
        assignPublicIp: opts.assignPublicIp,
        startedBy: by,
        environment: {
          fetch: { MLSHIP_DUMP_URL: run.dumpUrl },
          restore: { MLSHIP_REPLACE: run.replace ? '1' : '0', MLSHIP_ROW_HASH: run.rowHash },
        },
        tags: { 'mlship:stack': opts.stack, 'mlship:managed': 'true' },
      });
    },
    async wait(id): Promise<RestoreOutcome> {
      const deadline = clock.now() + (opts.timeoutSeconds ?? 7200) * 1000;
      let last = '';
      for (;;) {
        const [task] = await aws.ecs.describeTasks(opts.cluster, [id]);
        if (!task) return { exitCode: undefined, reason: `task ${id} is unknown to ECS`, lines: [] };
        if (task.lastStatus !== last) {
          log(`restore task ${id.split('/').pop()}: ${task.lastStatus?.toLowerCase()}`);
          last = task.lastStatus ?? '';
        }
        if (task.lastStatus === 'STOPPED') {
          const restore = task.containers?.find((c) => c.name === 'restore');
          const fetch = task.containers?.find((c) => c.name === 'fetch');
          const reason = [task.stoppedReason, fetch?.reason, restore?.reason].filter(Boolean).join('; ');
          return {
            exitCode: restore?.exitCode ?? undefined,
            ...(reason ? { reason } : {}),
            lines: await taskLines(aws, opts.logGroup, task),
          };
        }
        if (clock.now() > deadline) {
          throw new OperationFailedError(
            'DATA_RESTORE_TIMEOUT',
            `the restore task ${id} is still ${task.lastStatus}`,
            {
              hint: 'run mlship data push again later: it waits for this task and does not start another',
            },
          );
        }
        await clock.sleep((opts.pollSeconds ?? 6) * 1000);
      }
    },
  };
}
