// `mlship deploy ecs --apply`: pre-deploy checks, ECR repositories and pushes,
// log group, cluster, task definitions and services. Every step is idempotent:
// a re-run with nothing changed registers no revision and updates no service, and
// a run that failed part-way is finished by the next one.

import type { RegisterTaskDefinitionCommandInput, Service, TaskDefinition } from '@aws-sdk/client-ecs';
import type { AwsDeployApis, ServiceLoadBalancer } from '../../adapters/aws/ecs-deploy.js';
import type { ImageClient, PushProgress, RegistryAuth } from '../../adapters/docker/engine.js';
import { OperationFailedError, UsageError } from '../../io/errors.js';
import { runPool, type TaskControl, type TaskRunner } from '../../io/progress.js';
import { awsName, type EcsPlanResult, type ListenerPlan, loadBalancerNames } from './plan.js';
import { TASK_MEMORY_SHARE } from './prices.js';

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface ApplyDeps {
  aws: AwsDeployApis;
  engine: Pick<ImageClient, 'imageExists' | 'tag' | 'push' | 'inspectImage'>;
  log(line: string): void;
  /** Per-service progress while waiting (default: plain lines through `log`). */
  tasks?: TaskRunner;
  clock?: Clock;
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
}

export interface ServiceEndpoints {
  service: string;
  /** `<discovery name>:<port>` inside the Service Connect namespace (the stack name). */
  serviceConnect?: { namespace: string; dnsName: string; port: number };
  /** Published ports: a listener of the shared load balancer each. */
  public: { port: number; url?: string; loadBalancerDns?: string; note: string }[];
}

/** The GPU instances: an Auto Scaling group behind a capacity provider of the cluster. */
export interface GpuCapacityResult {
  instanceType: string;
  ami: string;
  capacityProvider: string;
  autoScalingGroup: string;
  maxInstances: number;
  created: string[];
}

/** Names of the GPU capacity of a stack. */
export function gpuCapacityNames(stack: string) {
  const name = awsName(`mlship-${stack}-gpu`, 64);
  return {
    instanceProfile: awsName(`mlship-${stack}-gpu-instance`, 64),
    launchTemplate: name,
    autoScalingGroup: name,
    capacityProvider: name,
  };
}

/** What the GPU instances run at boot: join the cluster, with GPU support. */
export function gpuUserData(cluster: string): string {
  return [
    '#!/bin/bash',
    "cat >> /etc/ecs/ecs.config <<'EOF'",
    `ECS_CLUSTER=${cluster}`,
    'ECS_ENABLE_GPU_SUPPORT=true',
    'EOF',
    '',
  ].join('\n');
}

async function ensureGpuCapacity(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  network: DeployNetwork,
  options: ApplyOptions,
): Promise<GpuCapacityResult> {
  const { gpu } = deps.aws;
  const names = gpuCapacityNames(plan.stack);
  const instanceType = options.gpuInstanceType ?? plan.gpuInstanceType;
  const tasks = plan.translation.services
    .filter((s) => s.launchType === 'EC2')
    .reduce((n, s) => n + s.desiredCount, 0);
  // A rolling deployment starts the new task before stopping the old one: twice the instances.
  const maxInstances = Math.max(1, tasks) * 2;
  const created: string[] = [];
  const profile = await gpu.ensureInstanceProfile(names.instanceProfile);
  if (profile.created) created.push(`instance role and profile ${names.instanceProfile}`);
  const template = await gpu.ensureLaunchTemplate({
    name: names.launchTemplate,
    imageId: network.gpuAmi!,
    instanceType,
    instanceProfileArn: profile.arn,
    securityGroups: network.securityGroups,
    userData: gpuUserData(plan.stack),
    volumeGb: 100,
  });
  if (template.created) created.push(`launch template ${names.launchTemplate}`);
  else if (template.changed)
    deps.log(`launch template ${names.launchTemplate}: new version (AMI or instance type changed)`);
  const group = await gpu.ensureAutoScalingGroup({
    name: names.autoScalingGroup,
    launchTemplateId: template.id,
    subnets: network.subnets,
    maxSize: maxInstances,
  });
  if (group.created)
    created.push(`Auto Scaling group ${names.autoScalingGroup} (0 to ${maxInstances} × ${instanceType})`);
  const provider = await gpu.ensureCapacityProvider({
    name: names.capacityProvider,
    autoScalingGroupArn: group.arn,
    cluster: plan.stack,
  });
  if (provider.created) created.push(`capacity provider ${names.capacityProvider}`);
  for (const c of created) deps.log(`created ${c}`);
  return {
    instanceType,
    ami: network.gpuAmi!,
    capacityProvider: names.capacityProvider,
    autoScalingGroup: names.autoScalingGroup,
    maxInstances,
    created,
  };
}

/** The stack's shared Application Load Balancer, when a service publishes a port. */
export interface LoadBalancerResult {
  name: string;
  dnsName: string;
  created: boolean;
  securityGroup: { id: string; created: boolean };
  listeners: {
    port: number;
    protocol: 'HTTP' | 'HTTPS';
    /** Where it forwards; a redirect to HTTPS has none. */
    service?: string;
    container?: string;
    containerPort?: number;
    targetGroup?: string;
    redirectToHttps?: number;
    created: boolean;
    changed: boolean;
  }[];
  /** Inbound rules added to the tasks' security groups so the load balancer reaches them. */
  ingressAdded: { group: string; port: number }[];
}

export interface ApplyResult {
  cluster: { name: string; created: boolean };
  logGroup: { name: string; created: boolean };
  repositories: { name: string; created: boolean }[];
  pushes: {
    service: string;
    image: string;
    skipped: boolean;
    digest?: string;
    layersPushed?: number;
    movingTag?: string;
  }[];
  taskDefinitions: { family: string; arn: string; registered: boolean }[];
  services: { name: string; action: 'created' | 'updated' | 'unchanged' }[];
  loadBalancer?: LoadBalancerResult;
  gpuCapacity?: GpuCapacityResult;
  /** Services waited for; empty with --no-wait or when nothing changed. */
  stable: { name: string; seconds: number }[];
  endpoints: ServiceEndpoints[];
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
): Promise<DeployNetwork> {
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
  let balancer: DeployNetwork['balancer'];
  if (subnets.length && plan.loadBalancer) {
    // The shared load balancer needs the VPC, and subnets in two Availability Zones at least.
    const found = await deps.aws.ec2.subnets(subnets);
    const unknown = subnets.filter((id) => !found.some((f) => f.id === id));
    const vpcs = [...new Set(found.map((f) => f.vpcId))];
    const zones = new Map<string, string>();
    for (const f of found) if (!zones.has(f.zone)) zones.set(f.zone, f.id);
    if (unknown.length) problems.push(`subnet(s) ${unknown.join(', ')} do not exist (fix: check --subnets)`);
    if (vpcs.length > 1) {
      problems.push(
        `the subnets are in ${vpcs.length} VPCs (${vpcs.join(', ')}); a service and its load balancer need one (fix: pass --subnets of one VPC)`,
      );
    } else if (zones.size < 2) {
      problems.push(
        `the load balancer needs subnets in at least two Availability Zones; ${zones.size ? `all are in ${[...zones.keys()].join(', ')}` : 'none found'} (fix: pass --subnets with one in another zone)`,
      );
    } else if (vpcs[0]) {
      // One subnet per zone: an ALB takes no two subnets of the same zone.
      balancer = { vpcId: vpcs[0], subnets: [...zones.values()] };
    }
  }
  let gpuAmi: string | undefined;
  if (plan.translation.services.some((s) => s.launchType === 'EC2')) {
    const type = options.gpuInstanceType ?? plan.gpuInstanceType;
    if (!(await deps.aws.ec2.instanceTypeOffered(type))) {
      problems.push(
        `GPU instance type ${type} is not offered in this region (fix: choose another with --gpu-instance)`,
      );
    } else {
      // The GPU task is placed on one instance: it must hold all its GPUs and memory.
      const info = await deps.aws.ec2.instanceTypeInfo(type);
      for (const td of plan.translation.taskDefinitions.filter((t) =>
        t.requiresCompatibilities?.includes('EC2'),
      )) {
        const gpus = (td.containerDefinitions ?? []).reduce(
          (n, c) => n + Number(c.resourceRequirements?.find((r) => r.type === 'GPU')?.value ?? 0),
          0,
        );
        if (info && gpus > info.gpus) {
          problems.push(
            `task ${td.family} needs ${gpus} GPUs on one instance, and ${type} has ${info.gpus} (fix: --gpu-instance with ${gpus} GPUs or more, e.g. g4dn.12xlarge or g5.12xlarge with 4)`,
          );
        }
        // The ECS agent and the OS keep some memory; ECS places a task only where its memory fits.
        if (info?.memoryMiB && Number(td.memory) > info.memoryMiB * TASK_MEMORY_SHARE) {
          problems.push(
            `task ${td.family} asks for ${td.memory} MiB, more than ${type} can give a task (${Math.floor(info.memoryMiB * TASK_MEMORY_SHARE)} of ${info.memoryMiB} MiB) (fix: lower the services' memory limits, or a larger --gpu-instance)`,
          );
        }
      }
    }
    gpuAmi = await deps.aws.gpu.gpuAmi();
    if (!gpuAmi) {
      problems.push(
        'no ECS-optimized GPU AMI is published in this region (SSM /aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended) (fix: deploy to another region)',
      );
    }
  }
  const certificate = plan.loadBalancer?.certificateArn;
  if (certificate?.includes(':acm:')) {
    const status = await deps.aws.acm.certificateStatus(certificate);
    if (status !== 'ISSUED') {
      problems.push(
        status
          ? `certificate ${certificate} is ${status}, and a listener takes only an ISSUED one (fix: finish its validation: aws acm describe-certificate --certificate-arn ${certificate})`
          : `certificate ${certificate} does not exist in this region (fix: request or import it in ${plan.region}: aws acm request-certificate --domain-name <your domain> --validation-method DNS)`,
      );
    }
  }
  problems.push(...(await missingSecrets(plan, deps)), ...(await missingRoles(plan, deps)));
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
  return { subnets, securityGroups, ...(balancer ? { balancer } : {}), ...(gpuAmi ? { gpuAmi } : {}) };
}

export interface DeployNetwork {
  subnets: string[];
  securityGroups: string[];
  /** Where the shared load balancer goes (only when a service publishes a port). */
  balancer?: { vpcId: string; subnets: string[] };
  /** The GPU instances' AMI (only with a GPU task). */
  gpuAmi?: string;
}

/** Where each `valueFrom` is used, so a problem names the task definition and container. */
function secretReferences(plan: EcsPlanResult): Map<string, string[]> {
  const refs = new Map<string, string[]>();
  for (const td of plan.translation.taskDefinitions)
    for (const c of td.containerDefinitions ?? [])
      for (const s of c.secrets ?? [])
        if (s.valueFrom)
          refs.set(s.valueFrom, [...(refs.get(s.valueFrom) ?? []), `${td.family}/${c.name} ${s.name}`]);
  return refs;
}

/** The SSM parameter name of a parameter ARN: hierarchical names keep their leading slash. */
export function parameterName(arn: string): string {
  const rest = arn.slice(arn.indexOf(':parameter') + ':parameter'.length);
  return rest.slice(1).includes('/') ? rest : rest.slice(1);
}

/** A Secrets Manager reference without ECS's `:json-key:version-stage:version-id` suffix. */
export function secretId(arn: string): string {
  const at = arn.indexOf(':secret:') + ':secret:'.length;
  const end = arn.indexOf(':', at);
  return end < 0 ? arn : arn.slice(0, end);
}

async function missingSecrets(plan: EcsPlanResult, deps: ApplyDeps): Promise<string[]> {
  const refs = secretReferences(plan);
  const problems: string[] = [];
  const usedBy = (ref: string) => `used by ${refs.get(ref)!.join(', ')}`;
  const ssm = [...refs.keys()].filter((r) => r.startsWith('arn:aws:ssm:') || !r.startsWith('arn:'));
  if (ssm.length) {
    const byName = new Map(ssm.map((r) => [r.startsWith('arn:') ? parameterName(r) : r, r]));
    for (const name of await deps.aws.secrets.missingParameters([...byName.keys()])) {
      const ref = byName.get(name) ?? name;
      problems.push(
        `SSM parameter ${name} does not exist (${usedBy(ref)}) (fix: aws ssm put-parameter --type SecureString --name ${name} --value ...)`,
      );
    }
  }
  for (const ref of refs.keys()) {
    if (!ref.startsWith('arn:aws:secretsmanager:')) continue;
    const id = secretId(ref);
    const name = id.slice(id.indexOf(':secret:') + ':secret:'.length);
    // A partial ARN (no random suffix) is what mlship writes; DescribeSecret also takes the name.
    if ((await deps.aws.secrets.secretExists(id)) || (await deps.aws.secrets.secretExists(name))) continue;
    problems.push(
      `Secrets Manager secret ${name} does not exist (${usedBy(ref)}) (fix: aws secretsmanager create-secret --name ${name} --secret-string ...)`,
    );
  }
  return problems;
}

async function missingRoles(plan: EcsPlanResult, deps: ApplyDeps): Promise<string[]> {
  const roles = new Map<string, { kind: string; families: string[] }>();
  for (const td of plan.translation.taskDefinitions)
    for (const [kind, arn] of [
      ['execution role', td.executionRoleArn],
      ['task role', td.taskRoleArn],
    ] as const)
      if (arn) {
        const r = roles.get(arn) ?? { kind, families: [] };
        r.families.push(td.family!);
        roles.set(arn, r);
      }
  const problems: string[] = [];
  for (const [arn, { kind, families }] of roles) {
    const name = arn.slice(arn.lastIndexOf('/') + 1);
    if (await deps.aws.iam.roleExists(name)) continue;
    const flag = kind === 'execution role' ? '--execution-role-arn' : '--task-role-arn';
    problems.push(
      `${kind} ${name} (${arn}) of ${families.join(', ')} does not exist (fix: create it, e.g. aws iam create-role --role-name ${name} --assume-role-policy-document with ecs-tasks.amazonaws.com${kind === 'execution role' ? ' and attach AmazonECSTaskExecutionRolePolicy' : ''}, or pass ${flag})`,
    );
  }
  return problems;
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
    stable: [],
    endpoints: [],
  };

  // 1. Images: ECR repositories, then pushes that skip tags ECR already has.
  const imageFor = new Map<string, string>();
  for (const td of plan.translation.taskDefinitions)
    for (const c of td.containerDefinitions ?? []) imageFor.set(c.name!, c.image!);
  // The registered task definitions, read first: an image whose content did not change keeps
  // the reference it is registered with (tags are commits, so every commit is a new tag).
  const current = new Map<string, TaskDefinition | undefined>();
  for (const td of plan.translation.taskDefinitions)
    current.set(td.family!, await aws.ecs.latestTaskDefinition(td.family!));
  const registeredImage = new Map<string, string>();
  for (const td of current.values())
    for (const c of td?.containerDefinitions ?? []) if (c.image) registeredImage.set(c.name!, c.image);
  const reuse = new Map<string, string>();
  let auth: RegistryAuth | undefined;
  for (const [service, local] of Object.entries(options.localImages)) {
    const remote = imageFor.get(service);
    if (!remote?.includes('.dkr.ecr.')) continue; // only images mlship builds go to ECR
    const slash = remote.indexOf('/');
    const colon = remote.lastIndexOf(':');
    const repository = remote.slice(slash + 1, colon);
    const tag = remote.slice(colon + 1);
    const target = options.registry ? `${options.registry}/${repository}:${tag}` : remote;
    const before = registeredImage.get(service);
    const sameRepository =
      before && before !== target && before.startsWith(`${target.slice(0, target.lastIndexOf(':'))}:`);
    if (sameRepository && (await deps.engine.imageExists(local))) {
      // This very image was pushed under the registered tag before: nothing to push or register.
      if ((await deps.engine.inspectImage(local)).tags.includes(before)) {
        log(`${service}: unchanged since ${before.slice(before.lastIndexOf(':') + 1)}, not pushed again`);
        reuse.set(service, before);
        if (options.movingTag) {
          // The image did not change, but the moving tag may not point at it yet.
          const repoName = before.slice(0, before.lastIndexOf(':'));
          if (!options.registry) auth ??= await aws.ecr.authorization();
          await deps.engine.tag(local, repoName, options.movingTag);
          await deps.engine.push(`${repoName}:${options.movingTag}`, auth);
        }
        result.pushes.push({
          service,
          image: before,
          skipped: true,
          ...(options.movingTag ? { movingTag: options.movingTag } : {}),
        });
        continue;
      }
    }
    if (!options.registry) {
      const repo = await aws.ecr.ensureRepository(repository, options.keepImages ?? 20, options.movingTag);
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
    // One line per layer and outcome (the engine repeats statuses; consecutive layers share them).
    const logged = new Set<string>();
    const pushed = await deps.engine.push(target, auth, (p: PushProgress) => {
      const outcome = /Pushed|already exists|Mounted from/.exec(p.status)?.[0];
      if (!p.layer || !outcome || logged.has(`${p.layer} ${outcome}`)) return;
      logged.add(`${p.layer} ${outcome}`);
      log(`${service}: layer ${p.layer} ${p.status.replace(/^Layer /, '').toLowerCase()}`);
    });
    if (options.movingTag) {
      // Same content, a second name: only a manifest is uploaded.
      await deps.engine.tag(local, name, options.movingTag);
      await deps.engine.push(`${name}:${options.movingTag}`, auth);
      log(`${service}: ${name.slice(name.indexOf('/') + 1)}:${options.movingTag} now points at ${tag}`);
    }
    result.pushes.push({
      service,
      image: target,
      skipped: false,
      ...(pushed.digest ? { digest: pushed.digest } : {}),
      layersPushed: pushed.layersPushed,
      ...(options.movingTag ? { movingTag: options.movingTag } : {}),
    });
  }

  // 2. Log group first: a failed deploy keeps its logs for debugging.
  result.logGroup.created = (
    await aws.logs.ensureLogGroup(plan.translation.logGroup, options.logRetentionDays ?? 30)
  ).created;
  result.cluster.created = (await aws.ecs.ensureCluster(stack, stack)).created;
  // The instances a GPU task runs on: ECS scales them with the tasks (to zero with none).
  if (network.gpuAmi) result.gpuCapacity = await ensureGpuCapacity(plan, deps, network, options);

  // 3. Task definitions: a new revision only when something we send changed.
  const arnOf = new Map<string, string>();
  for (const td of plan.translation.taskDefinitions) {
    const routed = options.registry ? withRegistry(td, imageFor, options.registry) : td;
    const input = {
      ...routed,
      containerDefinitions: routed.containerDefinitions?.map((c) =>
        reuse.has(c.name!) ? { ...c, image: reuse.get(c.name!)! } : c,
      ),
    };
    const registered = current.get(td.family!);
    if (registered && sameAsRegistered(withoutTags(input), registered)) {
      arnOf.set(td.family!, registered.taskDefinitionArn!);
      result.taskDefinitions.push({
        family: td.family!,
        arn: registered.taskDefinitionArn!,
        registered: false,
      });
      continue;
    }
    const revision = await aws.ecs.registerTaskDefinition(input);
    log(`registered ${td.family}:${revision.revision}`);
    arnOf.set(td.family!, revision.arn);
    result.taskDefinitions.push({ family: td.family!, arn: revision.arn, registered: true });
  }

  // 4. The shared load balancer, for the services that publish a port; before the services,
  // because a service can only be created with target groups that belong to a load balancer.
  const targets = new Map<string, ServiceLoadBalancer[]>();
  if (network.balancer) {
    result.loadBalancer = await ensureLoadBalancer(plan, deps, network, targets);
  }

  // 5. Services: create the missing ones, update only those whose task definition or load
  // balancers changed.
  for (const svc of plan.translation.services) {
    const arn = arnOf.get(svc.taskFamily)!;
    const existing = await aws.ecs.describeService(stack, svc.name);
    const loadBalancers = targets.get(svc.name) ?? [];
    if (!existing) {
      const port = svc.containers.find((c) => c.portName);
      await aws.ecs.createService({
        cluster: stack,
        serviceName: svc.name,
        taskDefinition: arn,
        launchType: svc.launchType,
        ...(svc.launchType === 'EC2' && result.gpuCapacity
          ? { capacityProvider: result.gpuCapacity.capacityProvider }
          : {}),
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
        ...(loadBalancers.length ? { loadBalancers } : {}),
      });
      result.services.push({ name: svc.name, action: 'created' });
    } else if (
      existing.taskDefinition !== arn ||
      options.force ||
      !sameLoadBalancers(existing.loadBalancers ?? [], loadBalancers)
    ) {
      const lbChanged = !sameLoadBalancers(existing.loadBalancers ?? [], loadBalancers);
      await aws.ecs.updateService({
        cluster: stack,
        service: svc.name,
        taskDefinition: arn,
        forceNewDeployment: options.force,
        ...(lbChanged ? { loadBalancers } : {}),
        ...(lbChanged && svc.healthCheckGracePeriodSeconds
          ? { healthCheckGracePeriodSeconds: svc.healthCheckGracePeriodSeconds }
          : {}),
      });
      result.services.push({ name: svc.name, action: 'updated' });
    } else {
      result.services.push({ name: svc.name, action: 'unchanged' });
    }
  }

  // 6. Wait for the changed services; a failure keeps the log group for debugging.
  const changed = plan.translation.services.filter((s) =>
    result.services.some((r) => r.name === s.name && r.action !== 'unchanged'),
  );
  if (options.wait && changed.length) {
    result.stable = await waitUntilStable(
      plan,
      changed.map((s) => ({ plan: s, taskDefinition: arnOf.get(s.taskFamily)! })),
      deps,
      options,
    );
  }
  result.endpoints = plan.translation.services.map((s) =>
    endpointsOf(
      stack,
      s,
      result.loadBalancer && plan.loadBalancer
        ? { dnsName: result.loadBalancer.dnsName, listeners: plan.loadBalancer.listeners }
        : undefined,
    ),
  );
  return result;
}

/** Whether a service already sends its tasks to exactly these target groups. */
export function sameLoadBalancers(
  actual: { targetGroupArn?: string; containerName?: string; containerPort?: number }[],
  wanted: ServiceLoadBalancer[],
): boolean {
  const key = (l: { targetGroupArn?: string; containerName?: string; containerPort?: number }) =>
    `${l.targetGroupArn} ${l.containerName} ${l.containerPort}`;
  const a = actual.map(key).sort();
  const w = wanted.map(key).sort();
  return a.length === w.length && a.every((k, i) => k === w[i]);
}

/**
 * The shared ALB: its security group (open on the listener ports), the load balancer, a target
 * group per published port, the listeners, and an inbound rule in the tasks' security groups
 * from the load balancer's. Each piece is found before it is created, so a re-run converges.
 */
async function ensureLoadBalancer(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  network: DeployNetwork,
  targets: Map<string, ServiceLoadBalancer[]>,
): Promise<LoadBalancerResult> {
  const { ec2, elb } = deps.aws;
  const balancer = network.balancer!;
  const wanted = plan.loadBalancer!;
  const names = loadBalancerNames(plan.stack);
  const sg = await ec2.ensureSecurityGroup({
    vpcId: balancer.vpcId,
    name: wanted.securityGroup,
    description: `mlship: load balancer of stack ${plan.stack}`,
  });
  for (const l of wanted.listeners)
    await ec2.allowIngress(sg.id, {
      port: l.port,
      cidr: '0.0.0.0/0',
      description: `mlship: ${l.protocol} listener`,
    });
  const lb = await elb.ensureLoadBalancer({
    name: wanted.name,
    subnets: balancer.subnets,
    securityGroups: [sg.id],
  });
  if (!lb.managed) {
    throw new OperationFailedError(
      'LOAD_BALANCER_NOT_OURS',
      `a load balancer named ${wanted.name} exists and was not created by mlship; it is left alone`,
      { hint: 'deploy the stack under another name (name: in mlship.yaml or the compose file)' },
    );
  }
  if (lb.created) deps.log(`created load balancer ${wanted.name} (${lb.dnsName})`);
  const result: LoadBalancerResult = {
    name: wanted.name,
    dnsName: lb.dnsName,
    created: lb.created,
    securityGroup: sg,
    listeners: [],
    ingressAdded: [],
  };
  for (const l of wanted.listeners) {
    const p = l.forward;
    if (!p) {
      const listener = await elb.ensureListener({
        loadBalancerArn: lb.arn,
        port: l.port,
        protocol: 'HTTP',
        redirectToHttpsPort: l.redirectToHttps!,
      });
      result.listeners.push({
        port: l.port,
        protocol: l.protocol,
        redirectToHttps: l.redirectToHttps!,
        created: listener.created,
        changed: listener.changed,
      });
      continue;
    }
    const tgName = names.targetGroup(p.container, p.containerPort);
    const tg = await elb.ensureTargetGroup({
      name: tgName,
      vpcId: balancer.vpcId,
      port: p.containerPort,
      healthCheckPath: p.healthCheckPath,
      healthCheckIntervalSeconds: p.healthCheckIntervalSeconds,
    });
    const listener = await elb.ensureListener(
      l.protocol === 'HTTPS'
        ? {
            loadBalancerArn: lb.arn,
            port: l.port,
            protocol: 'HTTPS',
            targetGroupArn: tg.arn,
            certificateArn: wanted.certificateArn!,
          }
        : { loadBalancerArn: lb.arn, port: l.port, protocol: 'HTTP', targetGroupArn: tg.arn },
    );
    for (const group of network.securityGroups) {
      const rule = await ec2.allowIngress(group, {
        port: p.containerPort,
        fromGroup: sg.id,
        description: `mlship: load balancer of stack ${plan.stack}`,
      });
      if (rule.added) {
        result.ingressAdded.push({ group, port: p.containerPort });
        deps.log(`allowed tcp ${p.containerPort} from the load balancer into ${group}`);
      }
    }
    targets.set(p.service, [
      ...(targets.get(p.service) ?? []),
      { targetGroupArn: tg.arn, containerName: p.container, containerPort: p.containerPort },
    ]);
    result.listeners.push({
      port: l.port,
      protocol: l.protocol,
      service: p.service,
      container: p.container,
      containerPort: p.containerPort,
      targetGroup: tgName,
      created: listener.created,
      changed: listener.changed || tg.changed,
    });
  }
  return result;
}

/** How to reach each service: Service Connect inside the namespace; published ports through the load balancer. */
export function endpointsOf(
  namespace: string,
  svc: EcsPlanResult['translation']['services'][number],
  loadBalancer?: { dnsName: string; listeners: ListenerPlan[] },
): ServiceEndpoints {
  const port = svc.containers.find((c) => c.portName && c.port);
  return {
    service: svc.name,
    ...(port?.port ? { serviceConnect: { namespace, dnsName: port.name, port: port.port } } : {}),
    public: svc.publicPorts.map((p) => {
      const listener = loadBalancer?.listeners.find(
        (l) => l.forward?.service === svc.name && l.forward.listener === p.listener,
      );
      if (!loadBalancer || !listener) {
        return { port: p.listener, note: `public port ${p.listener}: no load balancer (not applied)` };
      }
      const scheme = listener.protocol === 'HTTPS' ? 'https' : 'http';
      const defaultPort = listener.port === (scheme === 'https' ? 443 : 80);
      const url = `${scheme}://${loadBalancer.dnsName}${defaultPort ? '' : `:${listener.port}`}/`;
      return {
        port: listener.port,
        url,
        loadBalancerDns: loadBalancer.dnsName,
        note: `${url} → ${p.container}:${p.containerPort} (${scheme === 'https' ? "point your certificate's domain at it with a CNAME; " : ''}a new load balancer's name takes a few minutes to resolve)`,
      };
    }),
  };
}

type RolloutState =
  | { kind: 'stable' }
  | { kind: 'failed'; reason: string; rolledBackTo?: string }
  | { kind: 'progress'; text: string };

/**
 * Stable: the PRIMARY deployment runs our task definition, its rollout COMPLETED, all tasks running.
 * `seenOurs`: whether an earlier answer had our deployment; until then an older PRIMARY is not a
 * rollback, only an answer from before our update (DescribeServices is eventually consistent).
 */
export function rolloutOf(service: Service, taskDefinition: string, seenOurs: boolean): RolloutState {
  const deployments = service.deployments ?? [];
  const primary = deployments.find((d) => d.status === 'PRIMARY');
  const ours =
    primary?.taskDefinition === taskDefinition
      ? primary
      : deployments.find((d) => d.taskDefinition === taskDefinition);
  const rolledBackTo =
    primary?.taskDefinition && primary.taskDefinition !== taskDefinition
      ? { rolledBackTo: primary.taskDefinition.split('/').pop()! }
      : {};
  if (ours?.rolloutState === 'FAILED') {
    return {
      kind: 'failed',
      reason: ours.rolloutStateReason ?? service.events?.[0]?.message ?? 'the deployment failed',
      ...rolledBackTo,
    };
  }
  if (primary && primary.taskDefinition !== taskDefinition && !ours && seenOurs) {
    // Our deployment is gone and an older one is PRIMARY: the circuit breaker rolled back.
    return {
      kind: 'failed',
      reason: primary.rolloutStateReason ?? service.events?.[0]?.message ?? 'rolled back',
      ...rolledBackTo,
    };
  }
  if (
    primary?.taskDefinition === taskDefinition &&
    primary.rolloutState === 'COMPLETED' &&
    service.runningCount === service.desiredCount
  ) {
    return { kind: 'stable' };
  }
  if (!ours) {
    return {
      kind: 'progress',
      text: `waiting for the deployment of ${taskDefinition.split('/').pop()} to start`,
    };
  }
  return {
    kind: 'progress',
    text: `${service.runningCount ?? 0}/${service.desiredCount ?? 0} running, ${service.pendingCount ?? 0} pending, rollout ${primary?.rolloutState ?? 'not started'}${primary?.failedTasks ? `, ${primary.failedTasks} failed task(s)` : ''}`,
  };
}

const plainRunner = (log: (line: string) => void): TaskRunner => ({
  run: (tasks, options = {}) =>
    runPool(tasks, options, (task) => ({
      title: () => undefined,
      output: (line) => log(`${task.title.split(':')[0]}: ${line}`),
    })),
});

async function stoppedReasons(stack: string, service: string, deps: ApplyDeps): Promise<string[]> {
  try {
    const arns = await deps.aws.ecs.listStoppedTasks(stack, service);
    const tasks = await deps.aws.ecs.describeTasks(stack, arns.slice(0, 5));
    return [
      ...new Set(
        tasks.flatMap((t) => [
          ...(t.stoppedReason ? [t.stoppedReason] : []),
          ...(t.containers ?? [])
            .filter((c) => c.reason || (c.exitCode !== undefined && c.exitCode !== 0))
            .map((c) => `${c.name}: ${c.reason ?? `exit code ${c.exitCode}`}`),
        ]),
      ),
    ];
  } catch {
    return []; // the rollout reason is reported anyway
  }
}

async function waitUntilStable(
  plan: EcsPlanResult,
  services: { plan: EcsPlanResult['translation']['services'][number]; taskDefinition: string }[],
  deps: ApplyDeps,
  options: ApplyOptions,
): Promise<{ name: string; seconds: number }[]> {
  const clock = deps.clock ?? realClock;
  const stack = plan.stack;
  const timeoutSeconds =
    options.waitTimeoutSeconds ??
    Math.max(0, ...services.map((s) => s.plan.healthCheckGracePeriodSeconds)) + 600;
  const pollMs = (options.pollSeconds ?? 15) * 1000;
  const started = clock.now();
  const deadline = started + timeoutSeconds * 1000;

  const controls = new Map<string, TaskControl>();
  const settle = new Map<string, { resolve(): void; reject(e: Error): void }>();
  const done = new Map<string, Promise<void>>();
  for (const s of services) {
    done.set(
      s.plan.name,
      new Promise<void>((resolve, reject) => settle.set(s.plan.name, { resolve, reject })),
    );
  }
  const stable: { name: string; seconds: number }[] = [];
  const failures: string[] = [];
  const runner = (deps.tasks ?? plainRunner(deps.log)).run(
    services.map((s) => ({
      title: `${s.plan.name}: waiting until stable`,
      run: async (control) => {
        controls.set(s.plan.name, control);
        await done.get(s.plan.name);
      },
    })),
    { concurrent: true, exitOnError: false },
  );

  const pending = new Map(services.map((s) => [s.plan.name, s]));
  const last = new Map<string, string>();
  const seen = new Set<string>();
  const visible = new Set<string>();
  while (pending.size) {
    const answers = await deps.aws.ecs.describeServices(stack, [...pending.keys()]);
    for (const [name, s] of pending) {
      const svc = answers.find((a) => a.serviceName === name);
      // Right after CreateService, DescribeServices may still answer MISSING for a while.
      const state: RolloutState = svc
        ? rolloutOf(svc, s.taskDefinition, seen.has(name))
        : visible.has(name)
          ? { kind: 'failed', reason: 'the service no longer exists' }
          : { kind: 'progress', text: 'waiting for the service to appear' };
      if (svc) visible.add(name);
      if (svc?.deployments?.some((d) => d.taskDefinition === s.taskDefinition)) seen.add(name);
      if (state.kind === 'progress') {
        if (last.get(name) !== state.text) controls.get(name)?.output(state.text);
        last.set(name, state.text);
        continue;
      }
      pending.delete(name);
      if (state.kind === 'stable') {
        const seconds = Math.round((clock.now() - started) / 1000);
        stable.push({ name, seconds });
        controls.get(name)?.title(`${name}: stable (${seconds}s)`);
        settle.get(name)!.resolve();
        continue;
      }
      const stopped = await stoppedReasons(stack, name, deps);
      const prefixes = s.plan.containers.map((c) => c.name).join(', ');
      const outcome = state.rolledBackTo
        ? `the circuit breaker rolled back to ${state.rolledBackTo}`
        : 'the circuit breaker stopped it';
      const message = `service ${name}: deployment failed, ${outcome}: ${state.reason}${stopped.length ? `; stopped tasks: ${stopped.join('; ')}` : ''}; logs kept in log group ${plan.translation.logGroup}, stream prefix ${prefixes}`;
      failures.push(message);
      settle.get(name)!.reject(new Error(`rolled back: ${state.reason}`));
    }
    if (!pending.size) break;
    if (clock.now() + pollMs > deadline) {
      for (const [name, s] of pending) {
        failures.push(
          `service ${name}: not stable after ${timeoutSeconds}s (${last.get(name) ?? 'no answer'}); logs in log group ${plan.translation.logGroup}, stream prefix ${s.plan.containers.map((c) => c.name).join(', ')}`,
        );
        settle.get(name)!.reject(new Error(`not stable after ${timeoutSeconds}s`));
      }
      break;
    }
    await clock.sleep(pollMs);
  }
  await runner;
  if (failures.length) {
    const timedOut = failures.every((f) => f.includes('not stable after'));
    throw new OperationFailedError(
      timedOut ? 'DEPLOY_TIMEOUT' : 'DEPLOY_FAILED',
      timedOut
        ? `${failures.length} service(s) not stable within ${timeoutSeconds}s`
        : `${failures.length} service(s) did not deploy`,
      {
        details: failures,
        hint: timedOut
          ? `ECS keeps deploying; look again with \`aws ecs describe-services --cluster ${stack}\`, or wait longer with --wait-timeout`
          : `read the logs: aws logs tail ${plan.translation.logGroup} --log-stream-name-prefix <service>; fix and run again`,
      },
    );
  }
  return stable;
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
