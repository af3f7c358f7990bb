// `mlship deploy ecs --destroy`: stop paying for a stack. Removes what `--apply`
// created (services and the workers' scaling, the shared load balancer and its security
// group, task definition revisions, the cluster) in the order AWS accepts, and keeps the
// ECR repositories and the log group (images and logs), saying how to remove them; data
// (the database, the bucket, the job queues and what waits in them) only with --delete-data.
// Idempotent: what is already gone is skipped, so a run that stopped part-way
// (e.g. while a load balancer's network interfaces were released) is finished by
// the next one.

import { type Clock, realClock } from '../../io/clock.js';
import type { AwsDeployApis } from './aws-apis.js';
import { gpuCapacityNames } from './gpu-capacity.js';
import { type EcsPlanResult, loadBalancerNames } from './plan.js';
import { workerScalingSpec } from './worker-scaling.js';

export interface DestroyDeps {
  aws: AwsDeployApis;
  log(line: string): void;
  clock?: Clock;
}

export interface DestroyOptions {
  /** Security groups of the tasks (default: the default VPC's), from which the load balancer's rules are removed. */
  securityGroups?: string[];
  /** How long to wait for services to drain and the load balancer's interfaces to go (default 600 s). */
  waitTimeoutSeconds?: number;
  /** Between two checks while waiting (default 15 s). */
  pollSeconds?: number;
  /** Also delete the stack's data: the database (after a final snapshot), the bucket and the job queues. */
  deleteData?: boolean;
}

export interface DestroyResult {
  removed: string[];
  /** Left on purpose: images and logs, and anything mlship did not create. */
  kept: string[];
  /** Not removed yet (still draining or in use): run `--destroy` again later. */
  remaining: string[];
}

export async function destroyEcs(
  plan: EcsPlanResult,
  deps: DestroyDeps,
  options: DestroyOptions = {},
): Promise<DestroyResult> {
  const { aws, log } = deps;
  const clock = deps.clock ?? realClock;
  const deadline = clock.now() + (options.waitTimeoutSeconds ?? 600) * 1000;
  const pollMs = (options.pollSeconds ?? 15) * 1000;
  const stack = plan.stack;
  const result: DestroyResult = { removed: [], kept: [], remaining: [] };
  const removed = (what: string) => {
    result.removed.push(what);
    log(`removed ${what}`);
  };

  // 1. Services first: they hold the target groups and keep tasks (and the bill) running.
  // A rollout's candidate (`mlship rollout --target ecs`, model services) is a service of the stack too.
  const rolled = new Set(
    (plan.operate?.models ?? []).filter((m) => !m.gpu && m.service === m.container).map((m) => m.service),
  );
  const services = plan.translation.services.flatMap((s) =>
    rolled.has(s.name) ? [s.name, `${s.name}-candidate`] : [s.name],
  );
  for (const name of services) if (await aws.ecs.deleteService(stack, name)) removed(`service ${name}`);
  // The workers' scaling acts on services that are gone now (and its alarm is billed).
  for (const q of plan.queues ?? []) {
    const alarm = workerScalingSpec(stack, q).fromZero?.alarmName;
    if (await aws.scaling.removeWorkerScaling(stack, q.worker, alarm))
      removed(`scaling of ${q.worker} (scalable target, policies${alarm ? ', alarm' : ''})`);
  }

  // 2. The GPU capacity: the capacity provider, its Auto Scaling group (the instances stop), the
  // launch template and the instance role.
  const gpu = gpuCapacityNames(stack);
  for (const what of await aws.gpu.deleteCapacity({
    cluster: stack,
    capacityProvider: gpu.capacityProvider,
    autoScalingGroup: gpu.autoScalingGroup,
    launchTemplate: gpu.launchTemplate,
    instanceProfile: gpu.instanceProfile,
  }))
    removed(what);

  // 3. The shared load balancer: listeners, target groups, the load balancer; then the rules
  // that let it into the tasks' groups, and its own security group.
  const names = loadBalancerNames(stack);
  const lb = await aws.elb.findLoadBalancer(names.loadBalancer);
  let vpcId = lb?.vpcId;
  if (lb && !lb.managed) {
    result.kept.push(`load balancer ${names.loadBalancer} (not created by mlship)`);
  } else if (lb) {
    const gone = await aws.elb.deleteLoadBalancer(lb.arn);
    removed(
      `load balancer ${names.loadBalancer} (${gone.listeners} listener(s), target group(s) ${gone.targetGroups.join(', ') || 'none'})`,
    );
  }
  // Target groups a listener no longer used (a port unpublished since) are not found through it.
  const planned = plan.translation.services.flatMap((s) => [
    ...s.publicPorts.map((p) => names.targetGroup(p.container, p.containerPort)),
    // A rollout's target groups (the listener rules that used them went with the listeners).
    ...s.containers.flatMap((c) =>
      c.port && rolled.has(c.name)
        ? (['stable', 'candidate'] as const).map((side) => names.rolloutTargetGroup(c.name, c.port!, side))
        : [],
    ),
  ]);
  for (const tg of await aws.elb.deleteTargetGroups(planned)) removed(`target group ${tg}`);

  const network = vpcId && options.securityGroups ? undefined : await aws.ec2.defaultNetwork();
  vpcId ??= network?.vpcId;
  const albGroup = vpcId ? await aws.ec2.findSecurityGroup(vpcId, names.securityGroup) : undefined;
  if (albGroup) {
    const taskGroups = options.securityGroups ?? network?.securityGroups ?? [];
    for (const group of taskGroups) {
      const n = await aws.ec2.revokeIngressFrom(group, albGroup);
      if (n) removed(`${n} inbound rule(s) for the load balancer in ${group}`);
    }
    // A deleted load balancer's network interfaces take a few minutes to go; until then the
    // group is in use.
    for (;;) {
      const state = await aws.ec2.deleteSecurityGroup(albGroup);
      if (state === 'deleted') removed(`security group ${names.securityGroup} (${albGroup})`);
      if (state !== 'in-use') break;
      if (clock.now() + pollMs > deadline) {
        result.remaining.push(
          `security group ${names.securityGroup} (${albGroup}): still in use by the load balancer's network interfaces`,
        );
        break;
      }
      await clock.sleep(pollMs);
    }
  }

  // 4. Task definitions: every ACTIVE revision of the stack's families is deregistered.
  for (const td of plan.translation.taskDefinitions) {
    const revisions = await aws.ecs.activeRevisions(td.family!);
    for (const arn of revisions) await aws.ecs.deregisterTaskDefinition(arn);
    if (revisions.length)
      removed(`task definition ${td.family} (${revisions.length} revision(s) deregistered)`);
  }

  // 5. The cluster, once its services have drained.
  for (;;) {
    const state = await aws.ecs.deleteCluster(stack);
    if (state === true) removed(`cluster ${stack}`);
    if (state !== 'busy') break;
    if (clock.now() + pollMs > deadline) {
      result.remaining.push(`cluster ${stack}: its services are still draining`);
      break;
    }
    await clock.sleep(pollMs);
  }

  // 6. Kept on purpose: images and logs outlive the deployment.
  const repositories = [
    ...new Set(
      plan.translation.taskDefinitions.flatMap((td) =>
        (td.containerDefinitions ?? []).flatMap((c) => {
          const m = /\.dkr\.ecr\.[^/]+\/([^:]+):/.exec(c.image ?? '');
          return m?.[1]?.startsWith(`${stack}/`) ? [m[1]] : [];
        }),
      ),
    ),
  ];
  if (repositories.length) {
    result.kept.push(
      `ECR repositories ${repositories.join(', ')} (remove with: aws ecr delete-repository --force --repository-name <name>)`,
    );
  }
  result.kept.push(
    `log group ${plan.translation.logGroup} (remove with: aws logs delete-log-group --log-group-name ${plan.translation.logGroup})`,
  );
  await destroyRoles(plan, deps, removed);
  await destroyData(plan, deps, options, { removed, result, clock });
  await destroyQueues(plan, deps, options, { removed, result });
  return result;
}

/** The roles mlship owns for the stack (no data in them, nothing billed: removed). */
async function destroyRoles(plan: EcsPlanResult, deps: DestroyDeps, removed: (what: string) => void) {
  for (const role of [plan.roles.execution, plan.roles.task]) {
    if (role && (await deps.aws.iam.deleteServiceRole(role.name))) removed(`IAM role ${role.name}`);
  }
}

/**
 * The stack's data: its database and bucket are kept, each listed with how to remove it, unless
 * --delete-data (then the database's final snapshot is taken first, and named).
 */
async function destroyData(
  plan: EcsPlanResult,
  deps: DestroyDeps,
  options: DestroyOptions,
  ctx: { removed: (what: string) => void; result: DestroyResult; clock: Clock },
) {
  const { aws } = deps;
  for (const db of plan.databases) {
    const state = await aws.rds.describe(db.settings.kind, db.identifier);
    if (!state) continue;
    if (!options.deleteData) {
      ctx.result.kept.push(
        `database ${db.identifier} and its data (remove with: mlship deploy ecs --destroy --delete-data, which takes a final snapshot first)`,
      );
      continue;
    }
    if (!state.managed) {
      ctx.result.kept.push(`database ${db.identifier} (not created by mlship)`);
      continue;
    }
    const stamp = new Date(ctx.clock.now()).toISOString().slice(0, 16).replace(/[-:T]/g, '');
    const snapshot = `${db.identifier}-final-${stamp}`;
    if (state.status !== 'deleting') {
      await aws.rds.deleteWithSnapshot(db.settings.kind, db.identifier, snapshot);
      ctx.removed(`database ${db.identifier} (final snapshot ${snapshot})`);
    }
    if (await aws.secrets.deleteSecret(db.secretName))
      ctx.removed(`secret ${db.secretName} (recoverable for 7 days)`);
    if (!(await aws.rds.deleteSubnetGroup(db.subnetGroup).catch(() => false)))
      ctx.result.remaining.push(`DB subnet group ${db.subnetGroup}: in use until the database is gone`);
  }
  if ((await aws.s3.bucketState(plan.bucket)) !== 'owned') return;
  if (!options.deleteData) {
    ctx.result.kept.push(
      `bucket ${plan.bucket} and its objects (remove with: mlship deploy ecs --destroy --delete-data)`,
    );
    return;
  }
  const objects = await aws.s3.emptyBucket(plan.bucket);
  if (await aws.s3.deleteBucket(plan.bucket)) ctx.removed(`bucket ${plan.bucket} (${objects} object(s))`);
}

/** The job queues hold the items not yet done (and the failed ones): data, kept unless --delete-data. */
async function destroyQueues(
  plan: EcsPlanResult,
  deps: DestroyDeps,
  options: DestroyOptions,
  ctx: { removed: (what: string) => void; result: DestroyResult },
) {
  for (const q of plan.queues ?? []) {
    if (!options.deleteData) {
      ctx.result.kept.push(
        `queue ${q.name} and its dead-letter queue ${q.deadLetter.name}, with any items in them (remove with: mlship deploy ecs --destroy --delete-data)`,
      );
      continue;
    }
    for (const name of [q.name, q.deadLetter.name])
      if (await deps.aws.sqs.deleteQueue(name)) ctx.removed(`queue ${name} (and its items)`);
  }
}
