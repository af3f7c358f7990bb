// The pre-deploy checks of `deploy ecs --apply`: everything that would otherwise fail
// only after a long wait (network, VPC DNS, GPU instance and AMI, certificate, secrets,
// roles) is checked before anything is created, and every problem is reported at once.

import { taskGpus } from '../../generators/ecs-task-definitions.js';
import { OperationFailedError, UsageError } from '../../io/errors.js';
import type { ApplyDeps, ApplyOptions, DeployNetwork } from './deps.js';
import { gpuFitOfBuiltImages } from './gpu-fit.js';
import type { EcsPlanResult } from './plan.js';
import { TASK_MEMORY_SHARE } from './prices.js';

export async function preDeployChecks(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
): Promise<DeployNetwork> {
  const problems: string[] = [];
  const { subnets, securityGroups } = await networkOf(deps, options, problems);
  if (!subnets.length) problems.push('no subnets to run tasks in (fix: pass --subnets)');
  const balancer =
    subnets.length && plan.loadBalancer ? await balancerNetwork(deps, subnets, problems) : undefined;
  const gpuAmi = plan.translation.services.some((s) => s.launchType === 'EC2')
    ? await gpuChecks(plan, deps, options, problems)
    : undefined;
  problems.push(
    ...(await certificateProblems(plan, deps)),
    ...(await missingSecrets(plan, deps)),
    ...(await missingRoles(plan, deps)),
  );
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

/** The subnets and security groups given, else the default VPC's (whose DNS Service Connect needs). */
async function networkOf(deps: ApplyDeps, options: ApplyOptions, problems: string[]) {
  let subnets = options.subnets ?? [];
  let securityGroups = options.securityGroups ?? [];
  if (subnets.length && securityGroups.length) return { subnets, securityGroups };
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
  return { subnets, securityGroups };
}

/** The shared load balancer needs the VPC, and subnets in two Availability Zones at least. */
async function balancerNetwork(
  deps: ApplyDeps,
  subnets: string[],
  problems: string[],
): Promise<DeployNetwork['balancer']> {
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
    return { vpcId: vpcs[0], subnets: [...zones.values()] };
  }
  return undefined;
}

/** The GPU instance type (offered, large enough), the built images' fit, and the GPU AMI it runs. */
async function gpuChecks(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  options: ApplyOptions,
  problems: string[],
): Promise<string | undefined> {
  const type = options.gpuInstanceType ?? plan.gpuInstanceType;
  if (!(await deps.aws.ec2.instanceTypeOffered(type))) {
    problems.push(
      `GPU instance type ${type} is not offered in this region (fix: choose another with --gpu-instance)`,
    );
  } else {
    problems.push(...(await gpuTaskFit(plan, deps, type)));
  }
  // The images just built, against the instance type and the driver the plan found (gpu-fit.ts).
  problems.push(...(await gpuFitOfBuiltImages(plan, options.localImages, type, deps.engine)));
  const gpuAmi = await deps.aws.gpu.gpuAmi();
  if (!gpuAmi) {
    problems.push(
      'no ECS-optimized GPU AMI is published in this region (SSM /aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended) (fix: deploy to another region)',
    );
  }
  return gpuAmi;
}

/** The GPU task is placed on one instance: it must hold all its GPUs and memory. */
async function gpuTaskFit(plan: EcsPlanResult, deps: ApplyDeps, type: string): Promise<string[]> {
  const problems: string[] = [];
  const info = await deps.aws.ec2.instanceTypeInfo(type);
  for (const td of plan.translation.taskDefinitions.filter((t) =>
    t.requiresCompatibilities?.includes('EC2'),
  )) {
    const gpus = taskGpus(td);
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
  return problems;
}

/** A listener takes only an ISSUED certificate of this region. */
async function certificateProblems(plan: EcsPlanResult, deps: ApplyDeps): Promise<string[]> {
  const certificate = plan.loadBalancer?.certificateArn;
  if (!certificate?.includes(':acm:')) return [];
  const status = await deps.aws.acm.certificateStatus(certificate);
  if (status === 'ISSUED') return [];
  return [
    status
      ? `certificate ${certificate} is ${status}, and a listener takes only an ISSUED one (fix: finish its validation: aws acm describe-certificate --certificate-arn ${certificate})`
      : `certificate ${certificate} does not exist in this region (fix: request or import it in ${plan.region}: aws acm request-certificate --domain-name <your domain> --validation-method DNS)`,
  ];
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
  // The database's secret is written by the apply itself, once the database exists.
  const ours = new Set(plan.databases.map((d) => d.secretName));
  for (const ref of refs.keys()) {
    if (!ref.startsWith('arn:aws:secretsmanager:')) continue;
    const id = secretId(ref);
    const name = id.slice(id.indexOf(':secret:') + ':secret:'.length);
    if (ours.has(name)) continue;
    // A partial ARN (no random suffix) is what mlship writes; DescribeSecret also takes the name.
    if ((await deps.aws.secrets.secretExists(id)) || (await deps.aws.secrets.secretExists(name))) continue;
    problems.push(
      `Secrets Manager secret ${name} does not exist (${usedBy(ref)}) (fix: aws secretsmanager create-secret --name ${name} --secret-string ...)`,
    );
  }
  return problems;
}

async function missingRoles(plan: EcsPlanResult, deps: ApplyDeps): Promise<string[]> {
  // The roles mlship owns are created by the apply itself; only the user's must exist.
  const ours = new Set([plan.roles.execution?.name, plan.roles.task?.name].filter(Boolean));
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
    if (ours.has(name)) continue;
    if (await deps.aws.iam.roleExists(name)) continue;
    const flag = kind === 'execution role' ? '--execution-role-arn' : '--task-role-arn';
    problems.push(
      `${kind} ${name} (${arn}) of ${families.join(', ')} does not exist (fix: create it, e.g. aws iam create-role --role-name ${name} --assume-role-policy-document with ecs-tasks.amazonaws.com${kind === 'execution role' ? ' and attach AmazonECSTaskExecutionRolePolicy' : ''}, or pass ${flag})`,
    );
  }
  return problems;
}
