// The AWS calls `mlship deploy ecs --apply` makes, behind narrow interfaces (one
// per service, only the calls used), so core can be tested with recorded answers.
// SDK errors become typed mlship errors; credentials are never logged.

import type {
  CreateServiceCommandInput,
  RegisterTaskDefinitionCommandInput,
  Service,
  Task,
  TaskDefinition,
} from '@aws-sdk/client-ecs';
import { CredentialsError, OperationFailedError } from '../../io/errors.js';
import type { RegistryAuth } from '../docker/engine.js';

export interface AwsTarget {
  region: string;
  profile?: string;
  /** For emulators (moto) and private endpoints. */
  endpointUrl?: string;
}

export interface EcrApi {
  /** Creates the repository (scan on push, immutable tags, encryption, lifecycle) unless it exists. */
  /**
   * Creates the repository (scan on push, immutable tags, encryption, lifecycle) unless it
   * exists. A moving tag (e.g. "latest") is excluded from immutability so it can be moved.
   */
  ensureRepository(
    name: string,
    keepImages: number,
    movingTag?: string,
  ): Promise<{ uri: string; created: boolean }>;
  /** Registry credentials from GetAuthorizationToken (valid for 12 hours). */
  authorization(): Promise<RegistryAuth>;
  /** Digest of `repo:tag` in ECR, if that tag exists. */
  imageDigest(repository: string, tag: string): Promise<string | undefined>;
}

export interface EcsApi {
  ensureCluster(name: string, namespace: string): Promise<{ created: boolean }>;
  latestTaskDefinition(family: string): Promise<TaskDefinition | undefined>;
  registerTaskDefinition(
    input: RegisterTaskDefinitionCommandInput,
  ): Promise<{ arn: string; revision: number }>;
  describeService(cluster: string, name: string): Promise<Service | undefined>;
  /** DescribeServices for several services at once (at most 10 per call, as ECS allows). */
  describeServices(cluster: string, names: string[]): Promise<Service[]>;
  /** ARNs of the service's recently stopped tasks (ECS keeps them for about an hour). */
  listStoppedTasks(cluster: string, service: string): Promise<string[]>;
  describeTasks(cluster: string, arns: string[]): Promise<Task[]>;
  createService(input: CreateServiceSpec): Promise<void>;
  /** Deletes the service (force: its tasks are stopped); false when there was none. */
  deleteService(cluster: string, name: string): Promise<boolean>;
  /** ARNs of the family's ACTIVE revisions. */
  activeRevisions(family: string): Promise<string[]>;
  deregisterTaskDefinition(arn: string): Promise<void>;
  /** Deletes the cluster; `false` when there was none, `'busy'` while services or tasks drain. */
  deleteCluster(name: string): Promise<boolean | 'busy'>;
  /** Sets how many tasks the service runs. */
  scaleService(cluster: string, service: string, desiredCount: number): Promise<void>;
  updateService(input: {
    cluster: string;
    service: string;
    taskDefinition: string;
    forceNewDeployment: boolean;
    /** Replaces the service's load balancers (ECS allows it for rolling deployments). */
    loadBalancers?: ServiceLoadBalancer[];
    healthCheckGracePeriodSeconds?: number;
  }): Promise<void>;
}

/** A target group a service registers its tasks with. */
export interface ServiceLoadBalancer {
  targetGroupArn: string;
  containerName: string;
  containerPort: number;
}

export interface CreateServiceSpec {
  cluster: string;
  serviceName: string;
  taskDefinition: string;
  launchType: 'FARGATE' | 'EC2';
  /** EC2 services run through this capacity provider (its instances scale with the tasks). */
  capacityProvider?: string;
  desiredCount: number;
  subnets: string[];
  securityGroups: string[];
  assignPublicIp: boolean;
  healthCheckGracePeriodSeconds?: number;
  serviceConnect?: { namespace: string; portName: string; port: number; discoveryName: string };
  loadBalancers?: ServiceLoadBalancer[];
}

export interface LogsApi {
  ensureLogGroup(name: string, retentionDays: number): Promise<{ created: boolean }>;
}

/** Whether the secrets a task definition references (`valueFrom`) exist. */
export interface SecretsApi {
  /** The SSM parameter names of `names` that do not exist. */
  missingParameters(names: string[]): Promise<string[]>;
  /** Whether a Secrets Manager secret exists (by ARN, partial ARN or name). */
  secretExists(id: string): Promise<boolean>;
}

export interface IamApi {
  roleExists(name: string): Promise<boolean>;
}

export interface Ec2Api {
  /** The default VPC, its subnets and its default security group. */
  defaultNetwork(): Promise<{ vpcId: string; subnets: string[]; securityGroups: string[] } | undefined>;
  /** The VPC and Availability Zone of each subnet (unknown ids are left out). */
  subnets(ids: string[]): Promise<{ id: string; vpcId: string; zone: string }[]>;
  vpcDns(vpcId: string): Promise<{ support: boolean; hostnames: boolean }>;
  instanceTypeOffered(type: string): Promise<boolean>;
  /** GPUs and memory of an instance type, if EC2 knows it. */
  instanceTypeInfo(type: string): Promise<{ gpus: number; memoryMiB: number } | undefined>;
  /** The security group `name` of the VPC, created (tagged as mlship's) unless it exists. */
  ensureSecurityGroup(spec: {
    vpcId: string;
    name: string;
    description: string;
  }): Promise<{ id: string; created: boolean }>;
  /** The security group `name` of the VPC, if it exists. */
  findSecurityGroup(vpcId: string, name: string): Promise<string | undefined>;
  /** Removes every inbound rule of `groupId` that lets `fromGroup` in; how many were removed. */
  revokeIngressFrom(groupId: string, fromGroup: string): Promise<number>;
  /** Deletes the group; `'in-use'` while network interfaces (e.g. a deleted load balancer's) remain. */
  deleteSecurityGroup(id: string): Promise<'deleted' | 'in-use' | 'missing'>;
  /** Allows inbound tcp `port` from a security group or a CIDR; `added: false` when already allowed. */
  allowIngress(
    groupId: string,
    rule: { port: number; fromGroup?: string; cidr?: string; description: string },
  ): Promise<{ added: boolean }>;
}

export interface TargetGroupSpec {
  name: string;
  vpcId: string;
  port: number;
  healthCheckPath: string;
  healthCheckIntervalSeconds: number;
}

/** The shared Application Load Balancer of a stack (Elastic Load Balancing v2). */
export interface ElbApi {
  /** Unless it exists: an internet-facing ALB. `managed: false` when the name is taken by someone else's. */
  ensureLoadBalancer(spec: {
    name: string;
    subnets: string[];
    securityGroups: string[];
  }): Promise<{ arn: string; dnsName: string; created: boolean; managed: boolean }>;
  /** An `ip` target group (awsvpc tasks) with the health check; an existing one's check is corrected. */
  ensureTargetGroup(spec: TargetGroupSpec): Promise<{ arn: string; created: boolean; changed: boolean }>;
  /**
   * A listener forwarding to the target group (HTTPS with the certificate), or answering HTTP with
   * a permanent redirect to HTTPS; an existing one on the port is corrected to that.
   */
  ensureListener(spec: ListenerSpec): Promise<{ arn: string; created: boolean; changed: boolean }>;
  /** The load balancer `name`, with its VPC and whether mlship created it. */
  findLoadBalancer(
    name: string,
  ): Promise<{ arn: string; vpcId: string; managed: boolean; securityGroups: string[] } | undefined>;
  /** Deletes the load balancer's listeners, then its target groups and the load balancer. */
  deleteLoadBalancer(arn: string): Promise<{ listeners: number; targetGroups: string[] }>;
  /** Deletes target groups by name (those no listener uses any more); the names deleted. */
  deleteTargetGroups(names: string[]): Promise<string[]>;
}

export type ListenerSpec = { loadBalancerArn: string; port: number } & (
  | { protocol: 'HTTP'; targetGroupArn: string }
  | { protocol: 'HTTPS'; targetGroupArn: string; certificateArn: string }
  | { protocol: 'HTTP'; redirectToHttpsPort: number }
);

/** TLS policy of HTTPS listeners: TLS 1.3 and 1.2 only (the AWS-recommended policy). */
export const TLS_POLICY = 'ELBSecurityPolicy-TLS13-1-2-2021-06';

export interface AcmApi {
  /** The certificate's status (ISSUED, PENDING_VALIDATION, EXPIRED, …), or undefined when unknown. */
  certificateStatus(arn: string): Promise<string | undefined>;
}

/** The EC2 capacity a GPU task runs on: instances of an Auto Scaling group behind a capacity provider. */
export interface GpuCapacityApi {
  /** The ECS-optimized GPU AMI of the region (Amazon Linux 2023, else Amazon Linux 2), from SSM. */
  gpuAmi(): Promise<string | undefined>;
  /** An instance role with AmazonEC2ContainerServiceforEC2Role, and its instance profile. */
  ensureInstanceProfile(name: string): Promise<{ arn: string; created: boolean }>;
  /** A launch template; a new default version when the AMI, type or user data changed. */
  ensureLaunchTemplate(spec: LaunchTemplateSpec): Promise<{ id: string; created: boolean; changed: boolean }>;
  /** An Auto Scaling group (min 0) on the template's latest version, left to the capacity provider. */
  ensureAutoScalingGroup(spec: {
    name: string;
    launchTemplateId: string;
    subnets: string[];
    maxSize: number;
  }): Promise<{ arn: string; created: boolean }>;
  /** Raises or lowers the group's maximum (for more GPU tasks); false when the group does not exist. */
  resizeAutoScalingGroup(name: string, maxSize: number): Promise<boolean>;
  /** A capacity provider with managed scaling for the group, attached to the cluster. */
  ensureCapacityProvider(spec: {
    name: string;
    autoScalingGroupArn: string;
    cluster: string;
  }): Promise<{ created: boolean; attached: boolean }>;
  /** Detaches and deletes the capacity provider, deletes the group (its instances stop) and the template. */
  deleteCapacity(spec: {
    cluster: string;
    capacityProvider: string;
    autoScalingGroup: string;
    launchTemplate: string;
    instanceProfile: string;
  }): Promise<string[]>;
}

export interface LaunchTemplateSpec {
  name: string;
  imageId: string;
  instanceType: string;
  instanceProfileArn: string;
  securityGroups: string[];
  /** Plain text; base64-encoded for EC2. */
  userData: string;
  volumeGb: number;
}

export interface AwsDeployApis {
  ecr: EcrApi;
  ecs: EcsApi;
  logs: LogsApi;
  ec2: Ec2Api;
  elb: ElbApi;
  acm: AcmApi;
  gpu: GpuCapacityApi;
  secrets: SecretsApi;
  iam: IamApi;
  destroy(): void;
}

/** The CreateService request: circuit breaker with rollback, awsvpc, Service Connect. */
export function createServiceInput(spec: CreateServiceSpec): CreateServiceCommandInput {
  return {
    cluster: spec.cluster,
    serviceName: spec.serviceName,
    taskDefinition: spec.taskDefinition,
    // A launch type and a capacity provider strategy exclude each other.
    ...(spec.capacityProvider
      ? { capacityProviderStrategy: [{ capacityProvider: spec.capacityProvider, weight: 1, base: 0 }] }
      : { launchType: spec.launchType }),
    desiredCount: spec.desiredCount,
    networkConfiguration: {
      awsvpcConfiguration: {
        subnets: spec.subnets,
        securityGroups: spec.securityGroups,
        assignPublicIp: spec.assignPublicIp ? 'ENABLED' : 'DISABLED',
      },
    },
    deploymentConfiguration: {
      deploymentCircuitBreaker: { enable: true, rollback: true },
      maximumPercent: 200,
      minimumHealthyPercent: 100,
    },
    ...(spec.healthCheckGracePeriodSeconds
      ? { healthCheckGracePeriodSeconds: spec.healthCheckGracePeriodSeconds }
      : {}),
    ...(spec.loadBalancers?.length ? { loadBalancers: spec.loadBalancers } : {}),
    ...(spec.serviceConnect
      ? {
          serviceConnectConfiguration: {
            enabled: true,
            namespace: spec.serviceConnect.namespace,
            services: [
              {
                portName: spec.serviceConnect.portName,
                discoveryName: spec.serviceConnect.discoveryName,
                clientAliases: [
                  { port: spec.serviceConnect.port, dnsName: spec.serviceConnect.discoveryName },
                ],
              },
            ],
          },
        }
      : {}),
    enableECSManagedTags: true,
    propagateTags: 'SERVICE',
    tags: [{ key: 'mlship:managed', value: 'true' }],
  };
}

function translate(e: unknown, what: string): Error {
  const err = e as { name?: string; message?: string };
  const name = err.name ?? '';
  if (
    /CredentialsProviderError|ExpiredToken|UnrecognizedClientException|InvalidClientTokenId|AuthFailure/.test(
      name,
    )
  ) {
    return new CredentialsError(
      `AWS refused or could not find credentials while trying to ${what} (${name})`,
    );
  }
  if (/AccessDenied/.test(name)) {
    return new OperationFailedError('AWS_ACCESS_DENIED', `not allowed to ${what}: ${err.message ?? name}`, {
      hint: 'the credentials in use lack this permission; see docs/deploy.md for the IAM actions mlship uses',
    });
  }
  return new OperationFailedError('AWS_ERROR', `${what} failed: ${name}: ${err.message ?? ''}`.trim());
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw translate(e, what);
  }
}

export async function createDeployApis(target: AwsTarget): Promise<AwsDeployApis> {
  const [ecrSdk, ecsSdk, logsSdk, ec2Sdk, ssmSdk, smSdk, iamSdk, elbSdk, acmSdk, asgSdk] = await Promise.all([
    import('@aws-sdk/client-ecr'),
    import('@aws-sdk/client-ecs'),
    import('@aws-sdk/client-cloudwatch-logs'),
    import('@aws-sdk/client-ec2'),
    import('@aws-sdk/client-ssm'),
    import('@aws-sdk/client-secrets-manager'),
    import('@aws-sdk/client-iam'),
    import('@aws-sdk/client-elastic-load-balancing-v2'),
    import('@aws-sdk/client-acm'),
    import('@aws-sdk/client-auto-scaling'),
  ]);
  const config = {
    region: target.region,
    ...(target.profile ? { profile: target.profile } : {}),
    ...(target.endpointUrl ? { endpoint: target.endpointUrl } : {}),
  };
  const ecrClient = new ecrSdk.ECRClient(config);
  const ecsClient = new ecsSdk.ECSClient(config);
  const logsClient = new logsSdk.CloudWatchLogsClient(config);
  const ec2Client = new ec2Sdk.EC2Client(config);
  const ssmClient = new ssmSdk.SSMClient(config);
  const smClient = new smSdk.SecretsManagerClient(config);
  const iamClient = new iamSdk.IAMClient(config);
  const elbClient = new elbSdk.ElasticLoadBalancingV2Client(config);
  const acmClient = new acmSdk.ACMClient(config);
  const asgClient = new asgSdk.AutoScalingClient(config);

  const ecr: EcrApi = {
    async ensureRepository(name, keepImages, movingTag) {
      const existing = await call(`describe ECR repository ${name}`, async () => {
        try {
          const r = await ecrClient.send(new ecrSdk.DescribeRepositoriesCommand({ repositoryNames: [name] }));
          return r.repositories?.[0];
        } catch (e) {
          if ((e as { name?: string }).name === 'RepositoryNotFoundException') return undefined;
          throw e;
        }
      });
      const exclusion = movingTag ? [{ filterType: 'WILDCARD' as const, filter: movingTag }] : undefined;
      if (existing?.repositoryUri) {
        const excluded = (existing.imageTagMutabilityExclusionFilters ?? []).some(
          (f) => f.filter === movingTag,
        );
        if (exclusion && existing.imageTagMutability !== 'MUTABLE' && !excluded) {
          await call(`let ${movingTag} move in ${name}`, () =>
            ecrClient.send(
              new ecrSdk.PutImageTagMutabilityCommand({
                repositoryName: name,
                imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
                imageTagMutabilityExclusionFilters: [
                  ...(existing.imageTagMutabilityExclusionFilters ?? []),
                  ...exclusion,
                ],
              }),
            ),
          );
        }
        return { uri: existing.repositoryUri, created: false };
      }
      const created = await call(`create ECR repository ${name}`, () =>
        ecrClient.send(
          new ecrSdk.CreateRepositoryCommand({
            repositoryName: name,
            // Commit tags never move; only the moving tag, when asked for, may.
            imageTagMutability: exclusion ? 'IMMUTABLE_WITH_EXCLUSION' : 'IMMUTABLE',
            ...(exclusion ? { imageTagMutabilityExclusionFilters: exclusion } : {}),
            imageScanningConfiguration: { scanOnPush: true },
            encryptionConfiguration: { encryptionType: 'AES256' },
            tags: [{ Key: 'mlship:managed', Value: 'true' }],
          }),
        ),
      );
      await call(`set the lifecycle policy of ${name}`, () =>
        ecrClient.send(
          new ecrSdk.PutLifecyclePolicyCommand({
            repositoryName: name,
            lifecyclePolicyText: JSON.stringify({
              rules: [
                {
                  rulePriority: 1,
                  description: `keep the last ${keepImages} images`,
                  selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: keepImages },
                  action: { type: 'expire' },
                },
              ],
            }),
          }),
        ),
      );
      return { uri: created.repository!.repositoryUri!, created: true };
    },
    async authorization() {
      const r = await call('get an ECR authorization token', () =>
        ecrClient.send(new ecrSdk.GetAuthorizationTokenCommand({})),
      );
      const data = r.authorizationData?.[0];
      if (!data?.authorizationToken || !data.proxyEndpoint)
        throw new CredentialsError('ECR returned no authorization token');
      const [username, password] = Buffer.from(data.authorizationToken, 'base64').toString('utf8').split(':');
      return {
        username: username ?? 'AWS',
        password: password ?? '',
        serveraddress: data.proxyEndpoint.replace(/^https?:\/\//, ''),
      };
    },
    async imageDigest(repository, tag) {
      return call(`look up ${repository}:${tag}`, async () => {
        try {
          const r = await ecrClient.send(
            new ecrSdk.DescribeImagesCommand({ repositoryName: repository, imageIds: [{ imageTag: tag }] }),
          );
          return r.imageDetails?.[0]?.imageDigest;
        } catch (e) {
          if (/ImageNotFoundException|RepositoryNotFoundException/.test((e as { name?: string }).name ?? ''))
            return undefined;
          throw e;
        }
      });
    },
  };

  const ecs: EcsApi = {
    async ensureCluster(name, namespace) {
      const r = await call(`describe cluster ${name}`, () =>
        ecsClient.send(new ecsSdk.DescribeClustersCommand({ clusters: [name] })),
      );
      if (r.clusters?.some((c) => c.status === 'ACTIVE')) return { created: false };
      await call(`create cluster ${name}`, () =>
        ecsClient.send(
          new ecsSdk.CreateClusterCommand({
            clusterName: name,
            serviceConnectDefaults: { namespace },
            settings: [{ name: 'containerInsights', value: 'enabled' }],
            tags: [{ key: 'mlship:managed', value: 'true' }],
          }),
        ),
      );
      return { created: true };
    },
    async latestTaskDefinition(family) {
      return call(`describe task definition ${family}`, async () => {
        try {
          const r = await ecsClient.send(
            new ecsSdk.DescribeTaskDefinitionCommand({ taskDefinition: family }),
          );
          return r.taskDefinition?.status === 'ACTIVE' ? r.taskDefinition : undefined;
        } catch (e) {
          if ((e as { name?: string }).name === 'ClientException') return undefined; // unknown family
          throw e;
        }
      });
    },
    async registerTaskDefinition(input) {
      const r = await call(`register task definition ${input.family}`, () =>
        ecsClient.send(new ecsSdk.RegisterTaskDefinitionCommand(input)),
      );
      return { arn: r.taskDefinition!.taskDefinitionArn!, revision: r.taskDefinition!.revision! };
    },
    async describeService(cluster, name) {
      const r = await call(`describe service ${name}`, () =>
        ecsClient.send(new ecsSdk.DescribeServicesCommand({ cluster, services: [name] })),
      );
      return r.services?.find((s) => s.status !== 'INACTIVE');
    },
    async describeServices(cluster, names) {
      const out: Service[] = [];
      for (let i = 0; i < names.length; i += 10) {
        const r = await call(`describe services ${names.slice(i, i + 10).join(', ')}`, () =>
          ecsClient.send(new ecsSdk.DescribeServicesCommand({ cluster, services: names.slice(i, i + 10) })),
        );
        out.push(...(r.services ?? []).filter((s) => s.status !== 'INACTIVE'));
      }
      return out;
    },
    async listStoppedTasks(cluster, service) {
      const r = await call(`list the stopped tasks of ${service}`, () =>
        ecsClient.send(
          new ecsSdk.ListTasksCommand({ cluster, serviceName: service, desiredStatus: 'STOPPED' }),
        ),
      );
      return r.taskArns ?? [];
    },
    async describeTasks(cluster, arns) {
      if (!arns.length) return [];
      const r = await call('describe tasks', () =>
        ecsClient.send(new ecsSdk.DescribeTasksCommand({ cluster, tasks: arns.slice(0, 100) })),
      );
      return r.tasks ?? [];
    },
    async createService(spec) {
      await call(`create service ${spec.serviceName}`, () =>
        ecsClient.send(new ecsSdk.CreateServiceCommand(createServiceInput(spec))),
      );
    },
    async deleteService(cluster, name) {
      return call(`delete service ${name}`, async () => {
        try {
          // DRAINING or INACTIVE: already being deleted, or gone.
          const r = await ecsClient.send(new ecsSdk.DescribeServicesCommand({ cluster, services: [name] }));
          if (!r.services?.some((s) => s.status === 'ACTIVE')) return false;
          await ecsClient.send(new ecsSdk.DeleteServiceCommand({ cluster, service: name, force: true }));
          return true;
        } catch (e) {
          const n = (e as { name?: string }).name ?? '';
          if (
            n === 'ServiceNotFoundException' ||
            n === 'ServiceNotActiveException' ||
            n === 'ClusterNotFoundException'
          )
            return false;
          throw e;
        }
      });
    },
    async activeRevisions(family) {
      const arns: string[] = [];
      let nextToken: string | undefined;
      do {
        const r = await call(`list the revisions of ${family}`, () =>
          ecsClient.send(
            new ecsSdk.ListTaskDefinitionsCommand({ familyPrefix: family, status: 'ACTIVE', nextToken }),
          ),
        );
        // familyPrefix is a prefix: keep this family's revisions only.
        arns.push(
          ...(r.taskDefinitionArns ?? []).filter((a) => a.split('/').pop()!.replace(/:\d+$/, '') === family),
        );
        nextToken = r.nextToken;
      } while (nextToken);
      return arns;
    },
    async deregisterTaskDefinition(arn) {
      await call(`deregister ${arn.split('/').pop()}`, () =>
        ecsClient.send(new ecsSdk.DeregisterTaskDefinitionCommand({ taskDefinition: arn })),
      );
    },
    async deleteCluster(name) {
      return call(`delete cluster ${name}`, async () => {
        try {
          const r = await ecsClient.send(new ecsSdk.DescribeClustersCommand({ clusters: [name] }));
          if (!r.clusters?.some((c) => c.status === 'ACTIVE')) return false;
          await ecsClient.send(new ecsSdk.DeleteClusterCommand({ cluster: name }));
          return true;
        } catch (e) {
          const n = (e as { name?: string }).name ?? '';
          if (n === 'ClusterNotFoundException') return false;
          if (
            /ClusterContains(Services|Tasks|ContainerInstances)Exception/.test(n) ||
            n === 'UpdateInProgressException'
          )
            return 'busy';
          throw e;
        }
      });
    },
    async scaleService(cluster, service, desiredCount) {
      await call(`scale service ${service}`, () =>
        ecsClient.send(new ecsSdk.UpdateServiceCommand({ cluster, service, desiredCount })),
      );
    },
    async updateService(input) {
      await call(`update service ${input.service}`, () =>
        ecsClient.send(
          new ecsSdk.UpdateServiceCommand({
            cluster: input.cluster,
            service: input.service,
            taskDefinition: input.taskDefinition,
            forceNewDeployment: input.forceNewDeployment,
            ...(input.loadBalancers ? { loadBalancers: input.loadBalancers } : {}),
            ...(input.healthCheckGracePeriodSeconds
              ? { healthCheckGracePeriodSeconds: input.healthCheckGracePeriodSeconds }
              : {}),
          }),
        ),
      );
    },
  };

  const logs: LogsApi = {
    async ensureLogGroup(name, retentionDays) {
      const created = await call(`create log group ${name}`, async () => {
        try {
          await logsClient.send(
            new logsSdk.CreateLogGroupCommand({ logGroupName: name, tags: { 'mlship:managed': 'true' } }),
          );
          return true;
        } catch (e) {
          if ((e as { name?: string }).name === 'ResourceAlreadyExistsException') return false;
          throw e;
        }
      });
      await call(`set retention of ${name}`, () =>
        logsClient.send(
          new logsSdk.PutRetentionPolicyCommand({ logGroupName: name, retentionInDays: retentionDays }),
        ),
      );
      return { created };
    },
  };

  const ec2: Ec2Api = {
    async defaultNetwork() {
      const vpcs = await call('find the default VPC', () =>
        ec2Client.send(
          new ec2Sdk.DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] }),
        ),
      );
      const vpcId = vpcs.Vpcs?.[0]?.VpcId;
      if (!vpcId) return undefined;
      const [subnets, groups] = await Promise.all([
        call('list subnets', () =>
          ec2Client.send(
            new ec2Sdk.DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
          ),
        ),
        call('list security groups', () =>
          ec2Client.send(
            new ec2Sdk.DescribeSecurityGroupsCommand({
              Filters: [
                { Name: 'vpc-id', Values: [vpcId] },
                { Name: 'group-name', Values: ['default'] },
              ],
            }),
          ),
        ),
      ]);
      return {
        vpcId,
        subnets: (subnets.Subnets ?? []).map((s) => s.SubnetId!).sort(),
        securityGroups: (groups.SecurityGroups ?? []).map((g) => g.GroupId!),
      };
    },
    async subnets(ids) {
      if (!ids.length) return [];
      const r = await call(`describe subnets ${ids.join(', ')}`, async () => {
        try {
          return await ec2Client.send(new ec2Sdk.DescribeSubnetsCommand({ SubnetIds: ids }));
        } catch (e) {
          if ((e as { name?: string }).name === 'InvalidSubnetID.NotFound') return { Subnets: [] };
          throw e;
        }
      });
      return (r.Subnets ?? []).map((s) => ({ id: s.SubnetId!, vpcId: s.VpcId!, zone: s.AvailabilityZone! }));
    },
    async ensureSecurityGroup({ vpcId, name, description }) {
      const found = await call(`find security group ${name}`, () =>
        ec2Client.send(
          new ec2Sdk.DescribeSecurityGroupsCommand({
            Filters: [
              { Name: 'vpc-id', Values: [vpcId] },
              { Name: 'group-name', Values: [name] },
            ],
          }),
        ),
      );
      const id = found.SecurityGroups?.[0]?.GroupId;
      if (id) return { id, created: false };
      const created = await call(`create security group ${name}`, () =>
        ec2Client.send(
          new ec2Sdk.CreateSecurityGroupCommand({
            GroupName: name,
            Description: description,
            VpcId: vpcId,
            TagSpecifications: [
              { ResourceType: 'security-group', Tags: [{ Key: 'mlship:managed', Value: 'true' }] },
            ],
          }),
        ),
      );
      return { id: created.GroupId!, created: true };
    },
    async findSecurityGroup(vpcId, name) {
      const r = await call(`find security group ${name}`, () =>
        ec2Client.send(
          new ec2Sdk.DescribeSecurityGroupsCommand({
            Filters: [
              { Name: 'vpc-id', Values: [vpcId] },
              { Name: 'group-name', Values: [name] },
            ],
          }),
        ),
      );
      return r.SecurityGroups?.[0]?.GroupId;
    },
    async revokeIngressFrom(groupId, fromGroup) {
      return call(`remove the rules for ${fromGroup} from ${groupId}`, async () => {
        const r = await ec2Client.send(
          new ec2Sdk.DescribeSecurityGroupRulesCommand({
            Filters: [{ Name: 'group-id', Values: [groupId] }],
          }),
        );
        // By rule id: exact, whatever the rule's description or owner.
        const ids = (r.SecurityGroupRules ?? [])
          .filter((rule) => !rule.IsEgress && rule.ReferencedGroupInfo?.GroupId === fromGroup)
          .map((rule) => rule.SecurityGroupRuleId!);
        if (ids.length) {
          await ec2Client.send(
            new ec2Sdk.RevokeSecurityGroupIngressCommand({ GroupId: groupId, SecurityGroupRuleIds: ids }),
          );
        }
        return ids.length;
      });
    },
    async deleteSecurityGroup(id) {
      return call(`delete security group ${id}`, async () => {
        try {
          await ec2Client.send(new ec2Sdk.DeleteSecurityGroupCommand({ GroupId: id }));
          return 'deleted' as const;
        } catch (e) {
          const n = (e as { name?: string }).name ?? '';
          if (n === 'InvalidGroup.NotFound') return 'missing' as const;
          if (n === 'DependencyViolation' || n === 'InvalidGroup.InUse') return 'in-use' as const;
          throw e;
        }
      });
    },
    async allowIngress(groupId, rule) {
      return call(`allow tcp ${rule.port} into ${groupId}`, async () => {
        try {
          await ec2Client.send(
            new ec2Sdk.AuthorizeSecurityGroupIngressCommand({
              GroupId: groupId,
              IpPermissions: [
                {
                  IpProtocol: 'tcp',
                  FromPort: rule.port,
                  ToPort: rule.port,
                  ...(rule.fromGroup
                    ? { UserIdGroupPairs: [{ GroupId: rule.fromGroup, Description: rule.description }] }
                    : {}),
                  ...(rule.cidr ? { IpRanges: [{ CidrIp: rule.cidr, Description: rule.description }] } : {}),
                },
              ],
            }),
          );
          return { added: true };
        } catch (e) {
          if ((e as { name?: string }).name === 'InvalidPermission.Duplicate') return { added: false };
          throw e;
        }
      });
    },
    async vpcDns(vpcId) {
      const [support, hostnames] = await Promise.all([
        call('read VPC DNS support', () =>
          ec2Client.send(
            new ec2Sdk.DescribeVpcAttributeCommand({ VpcId: vpcId, Attribute: 'enableDnsSupport' }),
          ),
        ),
        call('read VPC DNS hostnames', () =>
          ec2Client.send(
            new ec2Sdk.DescribeVpcAttributeCommand({ VpcId: vpcId, Attribute: 'enableDnsHostnames' }),
          ),
        ),
      ]);
      return {
        support: Boolean(support.EnableDnsSupport?.Value),
        hostnames: Boolean(hostnames.EnableDnsHostnames?.Value),
      };
    },
    async instanceTypeInfo(type) {
      const r = await call(`describe instance type ${type}`, () =>
        ec2Client.send(new ec2Sdk.DescribeInstanceTypesCommand({ InstanceTypes: [type as never] })).then(
          (x) => x.InstanceTypes?.[0],
          (e: { name?: string }) => {
            if (/InvalidInstanceType/.test(e.name ?? '')) return undefined;
            throw e;
          },
        ),
      );
      if (!r) return undefined;
      return {
        gpus: (r.GpuInfo?.Gpus ?? []).reduce((n, g) => n + (g.Count ?? 0), 0),
        memoryMiB: r.MemoryInfo?.SizeInMiB ?? 0,
      };
    },
    async instanceTypeOffered(type) {
      const r = await call(`check that ${type} is offered`, () =>
        ec2Client.send(
          new ec2Sdk.DescribeInstanceTypeOfferingsCommand({
            LocationType: 'region',
            Filters: [{ Name: 'instance-type', Values: [type] }],
          }),
        ),
      );
      return (r.InstanceTypeOfferings ?? []).length > 0;
    },
  };

  const elb: ElbApi = {
    async ensureLoadBalancer({ name, subnets, securityGroups }) {
      const existing = await call(`describe load balancer ${name}`, async () => {
        try {
          const r = await elbClient.send(new elbSdk.DescribeLoadBalancersCommand({ Names: [name] }));
          return r.LoadBalancers?.[0];
        } catch (e) {
          if ((e as { name?: string }).name === 'LoadBalancerNotFoundException') return undefined;
          throw e;
        }
      });
      if (existing?.LoadBalancerArn) {
        const tags = await call(`read the tags of load balancer ${name}`, () =>
          elbClient.send(new elbSdk.DescribeTagsCommand({ ResourceArns: [existing.LoadBalancerArn!] })),
        );
        const managed = (tags.TagDescriptions?.[0]?.Tags ?? []).some(
          (t) => t.Key === 'mlship:managed' && t.Value === 'true',
        );
        return { arn: existing.LoadBalancerArn, dnsName: existing.DNSName ?? '', created: false, managed };
      }
      const r = await call(`create load balancer ${name}`, () =>
        elbClient.send(
          new elbSdk.CreateLoadBalancerCommand({
            Name: name,
            Type: 'application',
            Scheme: 'internet-facing',
            IpAddressType: 'ipv4',
            Subnets: subnets,
            SecurityGroups: securityGroups,
            Tags: [{ Key: 'mlship:managed', Value: 'true' }],
          }),
        ),
      );
      const lb = r.LoadBalancers![0]!;
      return { arn: lb.LoadBalancerArn!, dnsName: lb.DNSName ?? '', created: true, managed: true };
    },
    async ensureTargetGroup(spec) {
      const health = {
        HealthCheckProtocol: 'HTTP' as const,
        HealthCheckPath: spec.healthCheckPath,
        HealthCheckIntervalSeconds: spec.healthCheckIntervalSeconds,
        HealthCheckTimeoutSeconds: Math.min(5, spec.healthCheckIntervalSeconds - 1),
        HealthyThresholdCount: 2,
        UnhealthyThresholdCount: 3,
        Matcher: { HttpCode: '200-399' },
      };
      const existing = await call(`describe target group ${spec.name}`, async () => {
        try {
          const r = await elbClient.send(new elbSdk.DescribeTargetGroupsCommand({ Names: [spec.name] }));
          return r.TargetGroups?.[0];
        } catch (e) {
          if ((e as { name?: string }).name === 'TargetGroupNotFoundException') return undefined;
          throw e;
        }
      });
      if (existing?.TargetGroupArn) {
        const same =
          existing.HealthCheckPath === health.HealthCheckPath &&
          existing.HealthCheckIntervalSeconds === health.HealthCheckIntervalSeconds &&
          existing.Matcher?.HttpCode === health.Matcher.HttpCode;
        if (!same) {
          await call(`update the health check of target group ${spec.name}`, () =>
            elbClient.send(
              new elbSdk.ModifyTargetGroupCommand({ TargetGroupArn: existing.TargetGroupArn!, ...health }),
            ),
          );
        }
        return { arn: existing.TargetGroupArn, created: false, changed: !same };
      }
      const r = await call(`create target group ${spec.name}`, () =>
        elbClient.send(
          new elbSdk.CreateTargetGroupCommand({
            Name: spec.name,
            Protocol: 'HTTP',
            Port: spec.port,
            VpcId: spec.vpcId,
            TargetType: 'ip',
            ...health,
            Tags: [{ Key: 'mlship:managed', Value: 'true' }],
          }),
        ),
      );
      const arn = r.TargetGroups![0]!.TargetGroupArn!;
      // The default 300 s of connection draining makes every rolling deployment 5 minutes longer.
      await call(`set the deregistration delay of ${spec.name}`, () =>
        elbClient.send(
          new elbSdk.ModifyTargetGroupAttributesCommand({
            TargetGroupArn: arn,
            Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '30' }],
          }),
        ),
      );
      return { arn, created: true, changed: false };
    },
    async ensureListener(spec) {
      const r = await call('describe the listeners of the load balancer', () =>
        elbClient.send(new elbSdk.DescribeListenersCommand({ LoadBalancerArn: spec.loadBalancerArn })),
      );
      const actions =
        'redirectToHttpsPort' in spec
          ? [
              {
                Type: 'redirect' as const,
                RedirectConfig: {
                  Protocol: 'HTTPS',
                  Port: String(spec.redirectToHttpsPort),
                  StatusCode: 'HTTP_301' as const,
                },
              },
            ]
          : [{ Type: 'forward' as const, TargetGroupArn: spec.targetGroupArn }];
      const tls =
        'certificateArn' in spec
          ? { Certificates: [{ CertificateArn: spec.certificateArn }], SslPolicy: TLS_POLICY }
          : {};
      const existing = r.Listeners?.find((l) => l.Port === spec.port);
      if (existing?.ListenerArn) {
        const action = existing.DefaultActions?.length === 1 ? existing.DefaultActions[0] : undefined;
        const sameAction =
          'redirectToHttpsPort' in spec
            ? action?.Type === 'redirect' &&
              action.RedirectConfig?.Protocol === 'HTTPS' &&
              action.RedirectConfig.Port === String(spec.redirectToHttpsPort)
            : action?.Type === 'forward' &&
              (action.TargetGroupArn === spec.targetGroupArn ||
                (action.ForwardConfig?.TargetGroups?.length === 1 &&
                  action.ForwardConfig.TargetGroups[0]?.TargetGroupArn === spec.targetGroupArn));
        const sameTls =
          'certificateArn' in spec
            ? existing.Certificates?.[0]?.CertificateArn === spec.certificateArn &&
              existing.SslPolicy === TLS_POLICY
            : true;
        const same = existing.Protocol === spec.protocol && sameAction && sameTls;
        if (!same) {
          await call(`update listener ${spec.port}`, () =>
            elbClient.send(
              new elbSdk.ModifyListenerCommand({
                ListenerArn: existing.ListenerArn!,
                Protocol: spec.protocol,
                Port: spec.port,
                DefaultActions: actions,
                ...tls,
              }),
            ),
          );
        }
        return { arn: existing.ListenerArn, created: false, changed: !same };
      }
      const created = await call(`create listener ${spec.port}`, () =>
        elbClient.send(
          new elbSdk.CreateListenerCommand({
            LoadBalancerArn: spec.loadBalancerArn,
            Protocol: spec.protocol,
            Port: spec.port,
            DefaultActions: actions,
            ...tls,
            Tags: [{ Key: 'mlship:managed', Value: 'true' }],
          }),
        ),
      );
      return { arn: created.Listeners![0]!.ListenerArn!, created: true, changed: false };
    },
    async findLoadBalancer(name) {
      return call(`describe load balancer ${name}`, async () => {
        const lb = await elbClient.send(new elbSdk.DescribeLoadBalancersCommand({ Names: [name] })).then(
          (r) => r.LoadBalancers?.[0],
          (e: { name?: string }) => {
            if (e.name === 'LoadBalancerNotFoundException') return undefined;
            throw e;
          },
        );
        if (!lb?.LoadBalancerArn) return undefined;
        const tags = await elbClient.send(
          new elbSdk.DescribeTagsCommand({ ResourceArns: [lb.LoadBalancerArn] }),
        );
        return {
          arn: lb.LoadBalancerArn,
          vpcId: lb.VpcId ?? '',
          securityGroups: lb.SecurityGroups ?? [],
          managed: (tags.TagDescriptions?.[0]?.Tags ?? []).some(
            (t) => t.Key === 'mlship:managed' && t.Value === 'true',
          ),
        };
      });
    },
    async deleteLoadBalancer(arn) {
      return call('delete the load balancer', async () => {
        const listeners =
          (await elbClient.send(new elbSdk.DescribeListenersCommand({ LoadBalancerArn: arn }))).Listeners ??
          [];
        const groups =
          (await elbClient.send(new elbSdk.DescribeTargetGroupsCommand({ LoadBalancerArn: arn })))
            .TargetGroups ?? [];
        for (const l of listeners)
          await elbClient.send(new elbSdk.DeleteListenerCommand({ ListenerArn: l.ListenerArn! }));
        for (const g of groups)
          await elbClient.send(new elbSdk.DeleteTargetGroupCommand({ TargetGroupArn: g.TargetGroupArn! }));
        await elbClient.send(new elbSdk.DeleteLoadBalancerCommand({ LoadBalancerArn: arn }));
        return { listeners: listeners.length, targetGroups: groups.map((g) => g.TargetGroupName!) };
      });
    },
    async deleteTargetGroups(names) {
      const deleted: string[] = [];
      for (const name of names) {
        const group = await call(`describe target group ${name}`, async () => {
          try {
            return (await elbClient.send(new elbSdk.DescribeTargetGroupsCommand({ Names: [name] })))
              .TargetGroups?.[0];
          } catch (e) {
            if ((e as { name?: string }).name === 'TargetGroupNotFoundException') return undefined;
            throw e;
          }
        });
        if (!group?.TargetGroupArn) continue;
        await call(`delete target group ${name}`, () =>
          elbClient.send(new elbSdk.DeleteTargetGroupCommand({ TargetGroupArn: group.TargetGroupArn! })),
        );
        deleted.push(name);
      }
      return deleted;
    },
  };

  const acm: AcmApi = {
    async certificateStatus(arn) {
      return call(`look up certificate ${arn}`, async () => {
        try {
          const r = await acmClient.send(new acmSdk.DescribeCertificateCommand({ CertificateArn: arn }));
          return r.Certificate?.Status ?? 'UNKNOWN';
        } catch (e) {
          if ((e as { name?: string }).name === 'ResourceNotFoundException') return undefined;
          throw e;
        }
      });
    },
  };

  const managedTag = { Key: 'mlship:managed', Value: 'true' };
  const gpu: GpuCapacityApi = {
    async gpuAmi() {
      for (const name of [
        '/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id',
        '/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id',
      ]) {
        const r = await call('look up the ECS GPU AMI', () =>
          ssmClient.send(new ssmSdk.GetParametersCommand({ Names: [name] })),
        );
        const value = r.Parameters?.[0]?.Value;
        if (value) return value;
      }
      return undefined;
    },
    async ensureInstanceProfile(name) {
      const existing = await call(`look up instance profile ${name}`, () =>
        iamClient.send(new iamSdk.GetInstanceProfileCommand({ InstanceProfileName: name })).then(
          (r) => r.InstanceProfile,
          (e: { name?: string }) => {
            if (e.name === 'NoSuchEntityException') return undefined;
            throw e;
          },
        ),
      );
      if (existing?.Arn && existing.Roles?.some((r) => r.RoleName === name))
        return { arn: existing.Arn, created: false };
      await call(`create instance role ${name}`, async () => {
        const role = await iamClient.send(new iamSdk.GetRoleCommand({ RoleName: name })).then(
          (r) => r.Role,
          (e: { name?: string }) => {
            if (e.name === 'NoSuchEntityException') return undefined;
            throw e;
          },
        );
        if (!role) {
          await iamClient.send(
            new iamSdk.CreateRoleCommand({
              RoleName: name,
              Description: 'mlship: ECS container instances of a GPU task',
              AssumeRolePolicyDocument: JSON.stringify({
                Version: '2012-10-17',
                Statement: [
                  { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
                ],
              }),
              Tags: [managedTag],
            }),
          );
        }
        // Attaching an attached policy is a no-op.
        await iamClient.send(
          new iamSdk.AttachRolePolicyCommand({
            RoleName: name,
            PolicyArn: 'arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role',
          }),
        );
      });
      const profile =
        existing ??
        (
          await call(`create instance profile ${name}`, () =>
            iamClient.send(
              new iamSdk.CreateInstanceProfileCommand({ InstanceProfileName: name, Tags: [managedTag] }),
            ),
          )
        ).InstanceProfile!;
      await call(`add role ${name} to its instance profile`, () =>
        iamClient.send(
          new iamSdk.AddRoleToInstanceProfileCommand({ InstanceProfileName: name, RoleName: name }),
        ),
      );
      return { arn: profile.Arn!, created: true };
    },
    async ensureLaunchTemplate(spec) {
      const data = {
        ImageId: spec.imageId,
        InstanceType: spec.instanceType as never,
        IamInstanceProfile: { Arn: spec.instanceProfileArn },
        SecurityGroupIds: spec.securityGroups,
        UserData: Buffer.from(spec.userData).toString('base64'),
        // IMDSv2 only.
        MetadataOptions: { HttpTokens: 'required' as const, HttpEndpoint: 'enabled' as const },
        // Model images are large: room for a few of them and their layers.
        BlockDeviceMappings: [
          {
            DeviceName: '/dev/xvda',
            Ebs: {
              VolumeSize: spec.volumeGb,
              VolumeType: 'gp3' as const,
              Encrypted: true,
              DeleteOnTermination: true,
            },
          },
        ],
        TagSpecifications: [{ ResourceType: 'instance' as const, Tags: [managedTag] }],
      };
      const found = await call(`look up launch template ${spec.name}`, () =>
        ec2Client.send(new ec2Sdk.DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [spec.name] })).then(
          (r) => r.LaunchTemplates?.[0],
          (e: { name?: string }) => {
            if (/NotFound/.test(e.name ?? '')) return undefined;
            throw e;
          },
        ),
      );
      if (found?.LaunchTemplateId) {
        const latest = await call(`read launch template ${spec.name}`, () =>
          ec2Client.send(
            new ec2Sdk.DescribeLaunchTemplateVersionsCommand({
              LaunchTemplateId: found.LaunchTemplateId,
              Versions: ['$Latest'],
            }),
          ),
        );
        const current = latest.LaunchTemplateVersions?.[0]?.LaunchTemplateData;
        const same =
          current?.ImageId === data.ImageId &&
          current?.InstanceType === data.InstanceType &&
          current?.UserData === data.UserData &&
          current?.IamInstanceProfile?.Arn === data.IamInstanceProfile.Arn;
        if (!same) {
          await call(`update launch template ${spec.name}`, () =>
            ec2Client.send(
              new ec2Sdk.CreateLaunchTemplateVersionCommand({
                LaunchTemplateId: found.LaunchTemplateId,
                LaunchTemplateData: data,
              }),
            ),
          );
        }
        return { id: found.LaunchTemplateId, created: false, changed: !same };
      }
      const r = await call(`create launch template ${spec.name}`, () =>
        ec2Client.send(
          new ec2Sdk.CreateLaunchTemplateCommand({
            LaunchTemplateName: spec.name,
            LaunchTemplateData: data,
            TagSpecifications: [{ ResourceType: 'launch-template', Tags: [managedTag] }],
          }),
        ),
      );
      return { id: r.LaunchTemplate!.LaunchTemplateId!, created: true, changed: false };
    },
    async ensureAutoScalingGroup(spec) {
      const describe = () =>
        call(`look up Auto Scaling group ${spec.name}`, () =>
          asgClient.send(new asgSdk.DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [spec.name] })),
        );
      const found = (await describe()).AutoScalingGroups?.[0];
      if (found?.AutoScalingGroupARN) {
        if (found.MaxSize !== spec.maxSize) {
          await call(`resize Auto Scaling group ${spec.name}`, () =>
            asgClient.send(
              new asgSdk.UpdateAutoScalingGroupCommand({
                AutoScalingGroupName: spec.name,
                MaxSize: spec.maxSize,
              }),
            ),
          );
        }
        return { arn: found.AutoScalingGroupARN, created: false };
      }
      await call(`create Auto Scaling group ${spec.name}`, async () => {
        // A new instance profile takes a few seconds to be usable by Auto Scaling.
        for (let attempt = 1; ; attempt++) {
          try {
            await asgClient.send(
              new asgSdk.CreateAutoScalingGroupCommand({
                AutoScalingGroupName: spec.name,
                LaunchTemplate: { LaunchTemplateId: spec.launchTemplateId, Version: '$Latest' },
                MinSize: 0,
                MaxSize: spec.maxSize,
                DesiredCapacity: 0,
                VPCZoneIdentifier: spec.subnets.join(','),
                Tags: [
                  { Key: 'AmazonECSManaged', Value: 'true', PropagateAtLaunch: true },
                  { ...managedTag, PropagateAtLaunch: true },
                ],
              }),
            );
            return;
          } catch (e) {
            const message = (e as { message?: string }).message ?? '';
            if (attempt >= 8 || !/instance profile/i.test(message)) throw e;
            await new Promise((resolve) => setTimeout(resolve, 5000));
          }
        }
      });
      const created = (await describe()).AutoScalingGroups?.[0]?.AutoScalingGroupARN;
      if (!created)
        throw new OperationFailedError('AWS_ERROR', `Auto Scaling group ${spec.name} was not created`);
      return { arn: created, created: true };
    },
    async resizeAutoScalingGroup(name, maxSize) {
      const found = await call(`look up Auto Scaling group ${name}`, () =>
        asgClient.send(new asgSdk.DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] })),
      );
      const group = found.AutoScalingGroups?.[0];
      if (!group) return false;
      if (group.MaxSize !== maxSize) {
        await call(`resize Auto Scaling group ${name}`, () =>
          asgClient.send(
            new asgSdk.UpdateAutoScalingGroupCommand({ AutoScalingGroupName: name, MaxSize: maxSize }),
          ),
        );
      }
      return true;
    },
    async ensureCapacityProvider(spec) {
      const found = await call(`look up capacity provider ${spec.name}`, () =>
        ecsClient.send(new ecsSdk.DescribeCapacityProvidersCommand({ capacityProviders: [spec.name] })),
      );
      const active = found.capacityProviders?.some((c) => c.status === 'ACTIVE');
      if (!active) {
        await call(`create capacity provider ${spec.name}`, () =>
          ecsClient.send(
            new ecsSdk.CreateCapacityProviderCommand({
              name: spec.name,
              autoScalingGroupProvider: {
                autoScalingGroupArn: spec.autoScalingGroupArn,
                // ECS starts instances for pending tasks and stops idle ones (to zero).
                managedScaling: {
                  status: 'ENABLED',
                  targetCapacity: 100,
                  minimumScalingStepSize: 1,
                  maximumScalingStepSize: 1,
                },
                managedTerminationProtection: 'DISABLED',
              },
              tags: [{ key: 'mlship:managed', value: 'true' }],
            }),
          ),
        );
      }
      const cluster = (
        await call(`describe cluster ${spec.cluster}`, () =>
          ecsClient.send(new ecsSdk.DescribeClustersCommand({ clusters: [spec.cluster] })),
        )
      ).clusters?.[0];
      const providers = cluster?.capacityProviders ?? [];
      if (providers.includes(spec.name)) return { created: !active, attached: false };
      await call(`attach capacity provider ${spec.name} to ${spec.cluster}`, () =>
        ecsClient.send(
          new ecsSdk.PutClusterCapacityProvidersCommand({
            cluster: spec.cluster,
            capacityProviders: [...new Set([...providers, 'FARGATE', 'FARGATE_SPOT', spec.name])],
            defaultCapacityProviderStrategy: cluster?.defaultCapacityProviderStrategy ?? [],
          }),
        ),
      );
      return { created: !active, attached: true };
    },
    async deleteCapacity(spec) {
      const removed: string[] = [];
      const cluster = (
        await call(`describe cluster ${spec.cluster}`, () =>
          ecsClient.send(new ecsSdk.DescribeClustersCommand({ clusters: [spec.cluster] })),
        )
      ).clusters?.find((c) => c.status === 'ACTIVE');
      if (cluster?.capacityProviders?.includes(spec.capacityProvider)) {
        await call(`detach capacity provider ${spec.capacityProvider}`, () =>
          ecsClient.send(
            new ecsSdk.PutClusterCapacityProvidersCommand({
              cluster: spec.cluster,
              capacityProviders: cluster.capacityProviders!.filter((c) => c !== spec.capacityProvider),
              defaultCapacityProviderStrategy: (cluster.defaultCapacityProviderStrategy ?? []).filter(
                (c) => c.capacityProvider !== spec.capacityProvider,
              ),
            }),
          ),
        );
      }
      const provider = await call(`look up capacity provider ${spec.capacityProvider}`, () =>
        ecsClient.send(
          new ecsSdk.DescribeCapacityProvidersCommand({ capacityProviders: [spec.capacityProvider] }),
        ),
      );
      if (provider.capacityProviders?.some((c) => c.status === 'ACTIVE')) {
        await call(`delete capacity provider ${spec.capacityProvider}`, () =>
          ecsClient.send(
            new ecsSdk.DeleteCapacityProviderCommand({ capacityProvider: spec.capacityProvider }),
          ),
        );
        removed.push(`capacity provider ${spec.capacityProvider}`);
      }
      const group = await call(`look up Auto Scaling group ${spec.autoScalingGroup}`, () =>
        asgClient.send(
          new asgSdk.DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [spec.autoScalingGroup] }),
        ),
      );
      if (group.AutoScalingGroups?.length) {
        // ForceDelete terminates the group's instances: the GPU bill stops here.
        await call(`delete Auto Scaling group ${spec.autoScalingGroup}`, () =>
          asgClient.send(
            new asgSdk.DeleteAutoScalingGroupCommand({
              AutoScalingGroupName: spec.autoScalingGroup,
              ForceDelete: true,
            }),
          ),
        );
        removed.push(`Auto Scaling group ${spec.autoScalingGroup} (its instances are terminated)`);
      }
      const template = await call(`look up launch template ${spec.launchTemplate}`, () =>
        ec2Client
          .send(new ec2Sdk.DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [spec.launchTemplate] }))
          .then(
            (r) => r.LaunchTemplates?.[0],
            (e: { name?: string }) => {
              if (/NotFound/.test(e.name ?? '')) return undefined;
              throw e;
            },
          ),
      );
      if (template?.LaunchTemplateId) {
        await call(`delete launch template ${spec.launchTemplate}`, () =>
          ec2Client.send(
            new ec2Sdk.DeleteLaunchTemplateCommand({ LaunchTemplateId: template.LaunchTemplateId }),
          ),
        );
        removed.push(`launch template ${spec.launchTemplate}`);
      }
      const profile = await call(`look up instance profile ${spec.instanceProfile}`, () =>
        iamClient
          .send(new iamSdk.GetInstanceProfileCommand({ InstanceProfileName: spec.instanceProfile }))
          .then(
            (r) => r.InstanceProfile,
            (e: { name?: string }) => {
              if (e.name === 'NoSuchEntityException') return undefined;
              throw e;
            },
          ),
      );
      if (profile) {
        await call(`delete instance profile ${spec.instanceProfile}`, async () => {
          for (const role of profile.Roles ?? [])
            await iamClient.send(
              new iamSdk.RemoveRoleFromInstanceProfileCommand({
                InstanceProfileName: spec.instanceProfile,
                RoleName: role.RoleName!,
              }),
            );
          await iamClient.send(
            new iamSdk.DeleteInstanceProfileCommand({ InstanceProfileName: spec.instanceProfile }),
          );
          await iamClient.send(
            new iamSdk.DetachRolePolicyCommand({
              RoleName: spec.instanceProfile,
              PolicyArn: 'arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role',
            }),
          );
          await iamClient.send(new iamSdk.DeleteRoleCommand({ RoleName: spec.instanceProfile }));
        });
        removed.push(`instance profile and role ${spec.instanceProfile}`);
      }
      return removed;
    },
  };

  const secrets: SecretsApi = {
    async missingParameters(names) {
      const missing: string[] = [];
      for (let i = 0; i < names.length; i += 10) {
        const r = await call('look up SSM parameters', () =>
          // Only InvalidParameters is used; values stay encrypted (no WithDecryption) and unread.
          ssmClient.send(new ssmSdk.GetParametersCommand({ Names: names.slice(i, i + 10) })),
        );
        missing.push(...(r.InvalidParameters ?? []));
      }
      return missing;
    },
    async secretExists(id) {
      return call(`look up secret ${id}`, async () => {
        try {
          await smClient.send(new smSdk.DescribeSecretCommand({ SecretId: id }));
          return true;
        } catch (e) {
          if ((e as { name?: string }).name === 'ResourceNotFoundException') return false;
          throw e;
        }
      });
    },
  };

  const iam: IamApi = {
    async roleExists(name) {
      return call(`look up IAM role ${name}`, async () => {
        try {
          await iamClient.send(new iamSdk.GetRoleCommand({ RoleName: name }));
          return true;
        } catch (e) {
          if ((e as { name?: string }).name === 'NoSuchEntityException') return false;
          throw e;
        }
      });
    },
  };

  return {
    ecr,
    ecs,
    logs,
    ec2,
    elb,
    acm,
    gpu,
    secrets,
    iam,
    destroy() {
      for (const c of [
        ecrClient,
        ecsClient,
        logsClient,
        ec2Client,
        ssmClient,
        smClient,
        iamClient,
        elbClient,
        acmClient,
        asgClient,
      ])
        c.destroy();
    },
  };
}
