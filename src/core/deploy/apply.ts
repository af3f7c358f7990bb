// `mlship deploy ecs --apply`: pre-deploy checks, ECR repositories and pushes,
// log group, cluster, task definitions and services. Every step is idempotent:
// a re-run with nothing changed registers no revision and updates no service, and
// a run that failed part-way is finished by the next one.

import type { RegisterTaskDefinitionCommandInput, TaskDefinition } from '@aws-sdk/client-ecs';
import type { AwsDeployApis } from '../../adapters/aws/ecs-deploy.js';
import type { ImageClient, PushProgress, RegistryAuth } from '../../adapters/docker/engine.js';
import { OperationFailedError, UsageError } from '../../io/errors.js';
import type { EcsPlanResult } from './plan.js';

export interface ApplyDeps {
  aws: AwsDeployApis;
  engine: Pick<ImageClient, 'imageExists' | 'tag' | 'push' | 'inspectImage'>;
  log(line: string): void;
}

export interface ApplyOptions {
  /** Local image per service to push (built beforehand). */
  localImages: Record<string, string>;
  /** Push to this registry instead of ECR (emulators, pull-through setups); no ECR login. */
  registry?: string;
  /** Redeploy services even when their task definition did not change. */
  force: boolean;
  subnets?: string[];
  securityGroups?: string[];
  keepImages?: number;
  logRetentionDays?: number;
  gpuInstanceType?: string;
}

export interface ApplyResult {
  cluster: { name: string; created: boolean };
  logGroup: { name: string; created: boolean };
  repositories: { name: string; created: boolean }[];
  pushes: { service: string; image: string; skipped: boolean; digest?: string; layersPushed?: number }[];
  taskDefinitions: { family: string; arn: string; registered: boolean }[];
  services: { name: string; action: 'created' | 'updated' | 'unchanged' }[];
}

/** Whether every field we send is already what ECS has (ECS adds defaults and read-only fields). */
export function sameAsRegistered(wanted: unknown, actual: unknown): boolean {
  if (wanted === undefined) return true;
  if (Array.isArray(wanted)) {
    return (
      Array.isArray(actual) &&
      actual.length === wanted.length &&
      wanted.every((w, i) => sameAsRegistered(w, actual[i]))
    );
  }
  if (wanted !== null && typeof wanted === 'object') {
    if (actual === null || typeof actual !== 'object') return false;
    return Object.entries(wanted).every(([k, v]) =>
      sameAsRegistered(v, (actual as Record<string, unknown>)[k]),
    );
  }
  return wanted === actual;
}

function withoutTags(td: RegisterTaskDefinitionCommandInput): RegisterTaskDefinitionCommandInput {
  // DescribeTaskDefinition does not return tags unless asked: compare the rest.
  const { tags: _tags, ...rest } = td;
  return rest;
}

export async function preDeployChecks(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
): Promise<{ subnets: string[]; securityGroups: string[] }> {
  const problems: string[] = [];
  let subnets = options.subnets ?? [];
  let securityGroups = options.securityGroups ?? [];
  if (!subnets.length || !securityGroups.length) {
    const net = await deps.aws.ec2.defaultNetwork();
    if (!net) {
      throw new UsageError('no default VPC in this region, and no --subnets/--security-groups given', {
        hint: 'pass --subnets subnet-a,subnet-b and --security-groups sg-x (of the VPC the services should run in)',
      });
    }
    subnets = subnets.length ? subnets : net.subnets;
    securityGroups = securityGroups.length ? securityGroups : net.securityGroups;
    // Service Connect (Cloud Map) needs DNS support and hostnames in the VPC.
    const dns = await deps.aws.ec2.vpcDns(net.vpcId);
    if (!dns.support || !dns.hostnames) {
      problems.push(
        `VPC ${net.vpcId} has DNS ${dns.support ? '' : 'support '}${!dns.support && !dns.hostnames ? 'and ' : ''}${dns.hostnames ? '' : 'hostnames '}disabled, which Service Connect needs (fix: aws ec2 modify-vpc-attribute --vpc-id ${net.vpcId} --enable-dns-support / --enable-dns-hostnames)`,
      );
    }
  }
  if (!subnets.length) problems.push('no subnets to run tasks in (fix: pass --subnets)');
  if (plan.translation.services.some((s) => s.launchType === 'EC2')) {
    const type = options.gpuInstanceType ?? 'g4dn.xlarge';
    if (!(await deps.aws.ec2.instanceTypeOffered(type))) {
      problems.push(
        `GPU instance type ${type} is not offered in this region (fix: choose another with --gpu-instance)`,
      );
    }
  }
  if (problems.length) {
    throw new OperationFailedError(
      'PREDEPLOY_CHECKS_FAILED',
      `${problems.length} pre-deploy check(s) failed; nothing was created`,
      {
        details: problems,
        hint: 'fix the items above and run again',
      },
    );
  }
  return { subnets, securityGroups };
}

export async function applyEcs(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
): Promise<ApplyResult> {
  const { aws, log } = deps;
  const network = await preDeployChecks(plan, deps, options);
  const stack = plan.stack;
  const result: ApplyResult = {
    cluster: { name: stack, created: false },
    logGroup: { name: plan.translation.logGroup, created: false },
    repositories: [],
    pushes: [],
    taskDefinitions: [],
    services: [],
  };

  // 1. Images: ECR repositories, then pushes that skip tags ECR already has.
  const imageFor = new Map<string, string>();
  for (const td of plan.translation.taskDefinitions)
    for (const c of td.containerDefinitions ?? []) imageFor.set(c.name!, c.image!);
  let auth: RegistryAuth | undefined;
  for (const [service, local] of Object.entries(options.localImages)) {
    const remote = imageFor.get(service);
    if (!remote?.includes('.dkr.ecr.')) continue; // only images mlship builds go to ECR
    const slash = remote.indexOf('/');
    const colon = remote.lastIndexOf(':');
    const repository = remote.slice(slash + 1, colon);
    const tag = remote.slice(colon + 1);
    const target = options.registry ? `${options.registry}/${repository}:${tag}` : remote;
    if (!options.registry) {
      const repo = await aws.ecr.ensureRepository(repository, options.keepImages ?? 20);
      result.repositories.push({ name: repository, created: repo.created });
      const digest = await aws.ecr.imageDigest(repository, tag);
      if (digest) {
        log(`${service}: ${repository}:${tag} is already in ECR (${digest.slice(0, 19)}…), not pushed again`);
        result.pushes.push({ service, image: target, skipped: true, digest });
        continue;
      }
      auth ??= await aws.ecr.authorization();
    }
    if (!(await deps.engine.imageExists(local))) {
      throw new UsageError(`image ${local} of service ${service} is not on this machine`, {
        hint: 'build it first (`mlship compose up` builds every service)',
      });
    }
    const [name, t] = [target.slice(0, target.lastIndexOf(':')), tag];
    await deps.engine.tag(local, name, t);
    let lastLayer = '';
    const pushed = await deps.engine.push(target, auth, (p: PushProgress) => {
      if (p.layer && p.status !== lastLayer && /Pushed|already exists/.test(p.status))
        log(`${service}: layer ${p.layer} ${p.status.toLowerCase()}`);
      lastLayer = p.status;
    });
    result.pushes.push({
      service,
      image: target,
      skipped: false,
      ...(pushed.digest ? { digest: pushed.digest } : {}),
      layersPushed: pushed.layersPushed,
    });
  }

  // 2. Log group first: a failed deploy keeps its logs for debugging.
  result.logGroup.created = (
    await aws.logs.ensureLogGroup(plan.translation.logGroup, options.logRetentionDays ?? 30)
  ).created;
  result.cluster.created = (await aws.ecs.ensureCluster(stack, stack)).created;

  // 3. Task definitions: a new revision only when something we send changed.
  const arnOf = new Map<string, string>();
  for (const td of plan.translation.taskDefinitions) {
    const input = options.registry ? withRegistry(td, imageFor, options.registry) : td;
    const current: TaskDefinition | undefined = await aws.ecs.latestTaskDefinition(td.family!);
    if (current && sameAsRegistered(withoutTags(input), current)) {
      arnOf.set(td.family!, current.taskDefinitionArn!);
      result.taskDefinitions.push({ family: td.family!, arn: current.taskDefinitionArn!, registered: false });
      continue;
    }
    const registered = await aws.ecs.registerTaskDefinition(input);
    log(`registered ${td.family}:${registered.revision}`);
    arnOf.set(td.family!, registered.arn);
    result.taskDefinitions.push({ family: td.family!, arn: registered.arn, registered: true });
  }

  // 4. Services: create the missing ones, update only those whose task definition changed.
  for (const svc of plan.translation.services) {
    const arn = arnOf.get(svc.taskFamily)!;
    const existing = await aws.ecs.describeService(stack, svc.name);
    if (!existing) {
      const port = svc.containers.find((c) => c.portName);
      await aws.ecs.createService({
        cluster: stack,
        serviceName: svc.name,
        taskDefinition: arn,
        launchType: svc.launchType,
        desiredCount: svc.desiredCount,
        subnets: network.subnets,
        securityGroups: network.securityGroups,
        assignPublicIp: svc.launchType === 'FARGATE',
        ...(svc.healthCheckGracePeriodSeconds
          ? { healthCheckGracePeriodSeconds: svc.healthCheckGracePeriodSeconds }
          : {}),
        ...(port?.portName && port.port
          ? {
              serviceConnect: {
                namespace: stack,
                portName: port.portName,
                port: port.port,
                discoveryName: port.name,
              },
            }
          : {}),
      });
      result.services.push({ name: svc.name, action: 'created' });
    } else if (existing.taskDefinition !== arn || options.force) {
      await aws.ecs.updateService({
        cluster: stack,
        service: svc.name,
        taskDefinition: arn,
        forceNewDeployment: options.force,
      });
      result.services.push({ name: svc.name, action: 'updated' });
    } else {
      result.services.push({ name: svc.name, action: 'unchanged' });
    }
  }
  return result;
}

/** Task definition images pointed at an overriding registry. */
function withRegistry(
  td: RegisterTaskDefinitionCommandInput,
  images: Map<string, string>,
  registry: string,
): RegisterTaskDefinitionCommandInput {
  return {
    ...td,
    containerDefinitions: td.containerDefinitions?.map((c) => {
      const image = images.get(c.name!) ?? c.image!;
      return image.includes('.dkr.ecr.')
        ? { ...c, image: `${registry}/${image.slice(image.indexOf('/') + 1)}` }
        : c;
    }),
  };
}
