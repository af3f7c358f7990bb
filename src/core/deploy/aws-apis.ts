// The AWS operations the deploy core calls, declared here (core owns the interfaces it
// needs; adapters/aws implements them, one file per AWS service), so the core is tested
// with recorded answers and never imports an SDK client. Only the calls used are listed.
// Records are the SDK's own request/response shapes where ECS defines them (task
// definitions, services), imported as types only.

import type { Readable } from 'node:stream';
import type { RegisterTaskDefinitionCommandInput, Service, Task, TaskDefinition } from '@aws-sdk/client-ecs';
import type { RegistryAuth } from '../../adapters/docker/engine.js';

export interface AwsTarget {
  region: string;
  profile?: string;
  /** For emulators (moto) and private endpoints. */
  endpointUrl?: string;
  /** Tags every resource created through these APIs carries (besides mlship:managed), e.g. mlship:stack. */
  tags?: Record<string, string>;
}

export interface EcrApi {
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
    serviceConnect?: ServiceConnectSpec;
    /** CloudWatch alarms whose ALARM state rolls a deployment back (deploymentConfiguration.alarms). */
    deploymentAlarms?: string[];
    desiredCount?: number;
  }): Promise<void>;
  /** Starts a one-off task (Fargate, awsvpc) of a registered task definition; its ARN. */
  runTask(spec: RunTaskSpec): Promise<string>;
  /** ARNs of the cluster's tasks started with `startedBy` (ECS lists stopped ones for about an hour). */
  tasksStartedBy(cluster: string, startedBy: string, status: 'RUNNING' | 'STOPPED'): Promise<string[]>;
}

/** A one-off task: `mlship data push` restores the database from inside the VPC with one. */
export interface RunTaskSpec {
  cluster: string;
  taskDefinition: string;
  subnets: string[];
  securityGroups: string[];
  assignPublicIp: boolean;
  /** Who started it (ListTasks finds the tasks of an interrupted run by it). */
  startedBy: string;
  /** Environment added to containers, by container name. */
  environment?: Record<string, Record<string, string>>;
  tags?: Record<string, string>;
}

/** A target group a service registers its tasks with. */
export interface ServiceLoadBalancer {
  targetGroupArn: string;
  containerName: string;
  containerPort: number;
}

/**
 * Service Connect of a service: every container port it offers under its container's name, and
 * the namespace to resolve the others' names in (a service that offers none is a client only).
 */
export interface ServiceConnectSpec {
  namespace: string;
  services: { portName: string; port: number; discoveryName: string }[];
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
  serviceConnect?: ServiceConnectSpec;
  loadBalancers?: ServiceLoadBalancer[];
  /** CloudWatch alarms whose ALARM state rolls a deployment back (deploymentConfiguration.alarms). */
  deploymentAlarms?: string[];
}

export interface LogsApi {
  ensureLogGroup(name: string, retentionDays: number): Promise<{ created: boolean }>;
  /** Every message of a log stream, oldest first; none when the stream does not exist (yet). */
  streamMessages(group: string, stream: string): Promise<string[]>;
  /**
   * The messages of the group's streams whose names start with `streamPrefix`, from `startMs`
   * to `endMs`, at most `maxPages` pages (FilterLogEvents); `truncated` when more were left.
   */
  filterMessages(spec: LogFilterSpec): Promise<{ messages: string[]; truncated: boolean }>;
}

export interface LogFilterSpec {
  group: string;
  streamPrefix: string;
  startMs: number;
  endMs: number;
  maxPages: number;
}

/** Whether the secrets a task definition references (`valueFrom`) exist. */
export interface SecretsApi {
  /** The SSM parameter names of `names` that do not exist. */
  missingParameters(names: string[]): Promise<string[]>;
  /** Whether a Secrets Manager secret exists (by ARN, partial ARN or name). */
  secretExists(id: string): Promise<boolean>;
  /**
   * The value a task definition's `valueFrom` resolves to (an SSM parameter, decrypted, or a
   * Secrets Manager secret, with ECS's `:json-key:stage:version` suffix), for running tasks
   * locally. Never logged.
   */
  value(valueFrom: string): Promise<string>;
  /** A JSON secret's keys and values, or undefined when there is no such secret. */
  jsonSecret(name: string): Promise<Record<string, string> | undefined>;
  /** Creates the secret (tags) or puts a new version of it; values are never logged. */
  putJsonSecret(
    name: string,
    value: Record<string, string>,
    tags: Record<string, string>,
  ): Promise<'created' | 'updated'>;
  /** Creates a SecureString parameter unless it exists (an existing one is never overwritten). */
  createParameter(name: string, value: string, tags: Record<string, string>): Promise<'created' | 'exists'>;
  /** Schedules the secret's deletion (Secrets Manager keeps it recoverable for 7 days). */
  deleteSecret(name: string): Promise<boolean>;
}

/** A database cluster (Aurora) or instance (RDS) as mlship reads it. */
export interface DbState {
  identifier: string;
  status: string;
  endpoint?: string;
  port?: number;
  engineVersion?: string;
  /** Aurora Serverless v2 capacity. */
  scaling?: { minCapacity: number; maxCapacity: number; secondsUntilAutoPause?: number };
  deletionProtection: boolean;
  /** Whether mlship created it (tag mlship:managed). */
  managed: boolean;
}

export interface DbCreateSpec {
  identifier: string;
  kind: 'aurora' | 'rds';
  engine: string;
  engineVersion: string;
  database: string;
  username: string;
  password: string;
  port: number;
  subnetGroup: string;
  securityGroups: string[];
  backupRetentionDays: number;
  scaling?: { minCapacity: number; maxCapacity: number; secondsUntilAutoPause: number };
  instanceClass?: string;
  tags: Record<string, string>;
}

/** Amazon RDS: the stack's database (Aurora Serverless v2 cluster, or one RDS instance). */
export interface RdsApi {
  /** The engine versions the region offers, newest first, and whether each scales to 0 ACU. */
  engineVersions(engine: string): Promise<{ version: string; scalesToZero?: boolean }[]>;
  ensureSubnetGroup(
    name: string,
    subnets: string[],
    tags: Record<string, string>,
  ): Promise<{ created: boolean }>;
  describe(kind: 'aurora' | 'rds', identifier: string): Promise<DbState | undefined>;
  /** Creates the cluster and its one serverless writer (Aurora), or the instance (RDS). */
  create(spec: DbCreateSpec): Promise<void>;
  /** Aurora: the writer instance of the cluster, created unless it exists. */
  ensureWriter(cluster: string, engine: string, tags: Record<string, string>): Promise<{ created: boolean }>;
  /** Changes the capacity (Aurora) or the backups of an existing database. */
  modify(
    kind: 'aurora' | 'rds',
    identifier: string,
    changes: { scaling?: DbCreateSpec['scaling']; backupRetentionDays?: number },
  ): Promise<void>;
  /** With a final snapshot of that name; deletion protection is turned off first. */
  deleteWithSnapshot(kind: 'aurora' | 'rds', identifier: string, snapshot: string): Promise<void>;
  deleteSubnetGroup(name: string): Promise<boolean>;
}

/** Amazon EFS: the file systems of a stack's named volumes. */
export interface EfsApi {
  /** The file system of `token` (encrypted, tagged), created unless it exists; its id. */
  ensureFileSystem(token: string, tags: Record<string, string>): Promise<{ id: string; created: boolean }>;
  /** A mount target in each subnet (one per zone), in the given security group. */
  ensureMountTargets(
    fileSystemId: string,
    subnets: string[],
    securityGroup: string,
  ): Promise<{ created: number }>;
  /** An access point rooted at `path`, owned by uid:gid; its id. */
  ensureAccessPoint(spec: {
    fileSystemId: string;
    name: string;
    path: string;
    uid: number;
    gid: number;
    tags: Record<string, string>;
  }): Promise<{ id: string; created: boolean }>;
}

/** Temporary credentials; never logged or written. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface StsApi {
  /** Credentials of `roleArn` (sts:AssumeRole), or undefined when these credentials may not assume it. */
  assumeRole(roleArn: string, sessionName: string): Promise<AwsCredentials | undefined>;
  /** The credentials in use (the SDK chain), to hand to local containers when no role can be assumed. */
  callerCredentials(): Promise<AwsCredentials>;
}

/** An IAM policy document (only the parts mlship writes). */
export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: {
    Sid?: string;
    Effect: 'Allow' | 'Deny';
    Action: string | string[];
    Resource: string | string[];
    Condition?: Record<string, Record<string, string | string[]>>;
  }[];
}

/** A role a service (ECS tasks) assumes, with managed and inline policies, owned by mlship. */
export interface ServiceRoleSpec {
  name: string;
  /** The service principal that assumes it, e.g. ecs-tasks.amazonaws.com. */
  service: string;
  description: string;
  managedPolicies: string[];
  /** Inline policies by name; a policy mlship wrote before and no longer wants is removed. */
  inlinePolicies: Record<string, PolicyDocument>;
  tags: Record<string, string>;
}

export interface IamApi {
  roleExists(name: string): Promise<boolean>;
  /**
   * Creates the role unless it exists, then makes its trust, managed and inline policies exactly
   * these (idempotent: `changed` lists what had to be set). `managed: false` for a role of that
   * name that mlship did not create: it is left alone.
   */
  ensureServiceRole(
    spec: ServiceRoleSpec,
  ): Promise<{ arn: string; created: boolean; changed: string[]; managed: boolean }>;
  /** Detaches, removes inline policies and deletes the role; false when there was none. */
  deleteServiceRole(name: string): Promise<boolean>;
}

export interface BucketSpec {
  name: string;
  region: string;
  tags: Record<string, string>;
  /** SSE-S3 by default; SSE-KMS with a key id or ARN. */
  kmsKeyId?: string;
  versioning: boolean;
  /** Objects under `prefix` expire after `days` (user uploads are a liability to keep). */
  expire?: { prefix: string; days: number };
}

/** The stack's S3 bucket and the objects mlship puts in it (weights, staged dumps). */
export interface S3Api {
  /** `owned`: it exists and this account can use it; `taken`: another account's name; `missing`. */
  bucketState(name: string): Promise<'owned' | 'taken' | 'missing'>;
  /**
   * Creates the bucket unless it exists, with Block Public Access, default encryption, tags,
   * versioning and the expiry rule set to the spec (each corrected on an existing bucket).
   */
  ensureBucket(spec: BucketSpec): Promise<{ created: boolean; changed: string[] }>;
  /** Size and mlship's sha256 metadata of an object, if it exists. */
  headObject(bucket: string, key: string): Promise<{ sizeBytes: number; sha256?: string } | undefined>;
  /**
   * Uploads a local file: one PUT when small, else a multipart upload that resumes the parts an
   * earlier, interrupted upload of the same key already sent. Reports progress in bytes.
   */
  uploadFile(spec: UploadSpec): Promise<{ uploadedBytes: number; resumedBytes: number }>;
  /** Whether the bucket holds any object (a bucket with data is never deleted without a flag). */
  isEmpty(bucket: string): Promise<boolean>;
  /** Deletes an empty bucket; false when there was none. */
  deleteBucket(bucket: string): Promise<boolean>;
  /** Deletes every object (and every version) of the bucket; how many. */
  emptyBucket(bucket: string): Promise<number>;
  /** Every object under `prefix` (all when none), with its size. */
  listObjects(bucket: string, prefix?: string): Promise<{ key: string; sizeBytes: number }[]>;
  /** An object's content as a stream. */
  getObject(bucket: string, key: string): Promise<Readable>;
  /**
   * One PUT of a small object held in memory, with its SHA-256 sent as the request's checksum
   * (S3 refuses the object when the bytes it received do not match) and kept as metadata.
   */
  putObject(spec: { bucket: string; key: string; body: Buffer; sha256: string }): Promise<void>;
  deleteObject(bucket: string, key: string): Promise<void>;
  /** Aborts the unfinished multipart uploads of `key` (parts of another content); how many. */
  abortUploads(bucket: string, key: string): Promise<number>;
  /** The keys under `prefix` with an unfinished multipart upload. */
  unfinishedUploads(bucket: string, prefix: string): Promise<string[]>;
  /**
   * A multipart upload fed while its content is still being produced (a dump as it is
   * written): every part but the last is exactly `partBytes` (so an upload of the finished
   * file with the same part size resumes it), a few go up at once, and nothing exists under
   * the key until `finish()` completes the upload.
   */
  uploadStream(spec: StreamUploadSpec): Promise<UploadStream>;
}

export interface StreamUploadSpec {
  bucket: string;
  key: string;
  partBytes: number;
  onProgress?: (doneBytes: number) => void;
}

export interface UploadStream {
  /** Takes the next bytes; the promise, when there is one, resolves once there is room for more. */
  write(chunk: Buffer): Promise<void> | undefined;
  /** Sends the last part and completes the upload: the object appears. */
  finish(): Promise<{ uploadedBytes: number }>;
  /** Drops the parts sent (the producer failed): nothing is left under the key. */
  abort(): Promise<void>;
}

export interface UploadSpec {
  bucket: string;
  key: string;
  file: string;
  sizeBytes: number;
  sha256: string;
  /** Parts of a multipart upload (S3: 5 MiB to 5 GiB, at most 10,000 parts). */
  partBytes: number;
  onProgress?: (doneBytes: number) => void;
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
  /** The ARNs of the target groups of these names that exist (for dashboards and alarms). */
  targetGroupArns(names: string[]): Promise<Record<string, string>>;
  /** The listener of the load balancer on `port`, if there is one. */
  listenerArn(loadBalancerArn: string, port: number): Promise<string | undefined>;
  /** A listener rule (a rollout's weighted forward); its ARN. */
  createRule(spec: WeightedRuleSpec): Promise<string>;
  /** Changes the weights of a weighted forward rule in place. */
  setRuleWeights(ruleArn: string, weights: TargetWeight[]): Promise<void>;
  /** The weights a rule forwards with, or undefined when there is no such rule. */
  ruleWeights(ruleArn: string): Promise<TargetWeight[] | undefined>;
  /** Deletes the rule; false when there was none. */
  deleteRule(ruleArn: string): Promise<boolean>;
}

export interface TargetWeight {
  targetGroupArn: string;
  weight: number;
}

/** A listener rule forwarding matching requests to target groups by weight. */
export interface WeightedRuleSpec {
  listenerArn: string;
  priority: number;
  /** Path patterns, e.g. /api/iris/*. */
  paths: string[];
  /** Only requests carrying this header value (e.g. X-Model-Version: candidate). */
  header?: { name: string; value: string };
  /** A regex and its replacement applied to the path before forwarding (the ALB's url-rewrite transform). */
  rewrite?: { regex: string; replace: string };
  weights: TargetWeight[];
  tags: Record<string, string>;
}

export type ListenerSpec = { loadBalancerArn: string; port: number } & (
  | { protocol: 'HTTP'; targetGroupArn: string }
  | { protocol: 'HTTPS'; targetGroupArn: string; certificateArn: string }
  | { protocol: 'HTTP'; redirectToHttpsPort: number }
);

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
  /** Turns on the group's 1-minute metrics (GroupInServiceInstances: the idle-GPU alarm reads it). */
  enableGroupMetrics(name: string): Promise<void>;
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

/** A job queue (or its dead-letter queue) as mlship wants it. */
export interface QueueSpec {
  name: string;
  visibilityTimeoutSeconds: number;
  retentionSeconds: number;
  /** Items move to this queue after `maxReceiveCount` receives (the redrive policy). */
  deadLetter?: { arn: string; maxReceiveCount: number };
  /** SSE-SQS (SQS-managed keys); off only for local servers that lack it. */
  encrypted: boolean;
  tags: Record<string, string>;
}

/** Amazon SQS: the stack's job queues. */
export interface SqsApi {
  /** Creates the queue unless it exists, then corrects its attributes to the spec. */
  ensureQueue(spec: QueueSpec): Promise<{ url: string; arn: string; created: boolean; changed: string[] }>;
  /** Deletes the queue (and the items in it); false when there was none. */
  deleteQueue(name: string): Promise<boolean>;
}

/** One query of a CloudWatch metric math expression (a metric, or an expression over others). */
export interface MetricQuery {
  id: string;
  label?: string;
  metric?: { namespace: string; name: string; dimensions: Record<string, string>; stat: string };
  expression?: string;
  returnData: boolean;
}

/** How a worker service scales: Application Auto Scaling target and policies, one CloudWatch alarm. */
export interface WorkerScalingSpec {
  cluster: string;
  service: string;
  minTasks: number;
  maxTasks: number;
  /** Target tracking on a metric math expression (backlog per task). */
  tracking: {
    policyName: string;
    targetValue: number;
    metrics: MetricQuery[];
    scaleOutCooldownSeconds: number;
    scaleInCooldownSeconds: number;
  };
  /** A step policy and its alarm that start the first task (target tracking cannot scale from 0). */
  fromZero?: { policyName: string; alarmName: string; metrics: MetricQuery[]; threshold: number };
}

/** Application Auto Scaling (and the CloudWatch alarm it acts on) for the workers. */
export interface ScalingApi {
  /** Registers the scalable target and makes its policies and alarm exactly these. */
  ensureWorkerScaling(spec: WorkerScalingSpec): Promise<{ created: boolean; changed: string[] }>;
  /** Removes the alarm, policies and scalable target of a service; false when there were none. */
  removeWorkerScaling(cluster: string, service: string, alarmName?: string): Promise<boolean>;
  /** Makes FARGATE and FARGATE_SPOT capacity providers of the cluster (for Spot workers). */
  ensureFargateSpot(cluster: string): Promise<{ added: boolean }>;
}

/** One metric of a CloudWatch alarm or query: a namespace, name and dimensions. */
export interface MetricRef {
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
}

/**
 * A CloudWatch alarm as mlship writes it: on one metric's statistic, or on a metric-math
 * expression over several (`metrics` by id, `expression` the returned value).
 */
export interface AlarmSpec {
  name: string;
  description: string;
  comparison: 'GreaterThanThreshold' | 'GreaterThanOrEqualToThreshold' | 'LessThanThreshold';
  threshold: number;
  periodSeconds: number;
  evaluationPeriods: number;
  datapointsToAlarm: number;
  treatMissingData: 'notBreaching' | 'breaching' | 'missing' | 'ignore';
  /** SNS topics to notify (in alarm and back to OK). */
  actions: string[];
  tags: Record<string, string>;
  metric?: MetricRef & { statistic: string };
  math?: { expression: string; label: string; metrics: Record<string, MetricRef & { statistic: string }> };
}

/** A value series of GetMetricData, by query id. */
export interface MetricSeriesQuery {
  id: string;
  metric: MetricRef;
  /** Sum, Average, Maximum, SampleCount or a percentile such as p99. */
  statistic: string;
  periodSeconds: number;
}

/** Amazon CloudWatch: the stack's dashboard and alarms, and metric values for `mlship top`. */
export interface CloudWatchApi {
  putDashboard(name: string, body: object): Promise<void>;
  /** Deletes the dashboards that exist of these names; the names deleted. */
  deleteDashboards(names: string[]): Promise<string[]>;
  /** Creates or replaces the alarm (PutMetricAlarm is idempotent). */
  putAlarm(spec: AlarmSpec): Promise<void>;
  /** Names of the alarms whose name starts with the prefix. */
  alarmNames(prefix: string): Promise<string[]>;
  deleteAlarms(names: string[]): Promise<void>;
  /** Each query's values over [start, end), newest first. */
  metricData(queries: MetricSeriesQuery[], startMs: number, endMs: number): Promise<Record<string, number[]>>;
}

/** Amazon SNS: the topic alarms notify, and its e-mail subscription. */
export interface SnsApi {
  /** CreateTopic is idempotent for the same name and attributes. */
  ensureTopic(name: string, tags: Record<string, string>): Promise<{ arn: string }>;
  /** Subscribes the address unless it is; 'pending' until the person confirms the e-mail AWS sends. */
  ensureEmailSubscription(topicArn: string, email: string): Promise<'created' | 'pending' | 'confirmed'>;
  /** The topic of that name, if it exists. */
  findTopic(name: string): Promise<string | undefined>;
  deleteTopic(arn: string): Promise<void>;
}

export interface BudgetSpec {
  accountId: string;
  name: string;
  monthlyUsd: number;
  /** Cost filter: resources carrying this cost-allocation tag (key and value). */
  tag: { key: string; value: string };
  /** Forecast alerts at these percentages of the amount, e-mailed here. */
  forecastPercents: number[];
  email?: string;
}

/** AWS Budgets: the stack's monthly budget and its forecast alerts. */
export interface BudgetsApi {
  /** Creates the budget, or updates its amount, filter and notifications to the spec. */
  ensureBudget(spec: BudgetSpec): Promise<{ created: boolean; changed: string[] }>;
  deleteBudget(accountId: string, name: string): Promise<boolean>;
}

/** What a tag scan finds (Resource Groups Tagging API). */
export interface TaggedResource {
  arn: string;
  tags: Record<string, string>;
}

export interface TaggingApi {
  /** Every resource of the region carrying tag key=value. */
  resourcesTagged(key: string, value: string): Promise<TaggedResource[]>;
}

/** AWS WAF (v2, regional): a web ACL with one rate-based rule, on the load balancer. */
export interface WafApi {
  ensureRateLimitAcl(spec: {
    name: string;
    /** Requests one IP address may send in 5 minutes. */
    limit: number;
    tags: Record<string, string>;
  }): Promise<{ arn: string; created: boolean; changed: boolean }>;
  /** Associates the ACL with the resource (the load balancer) unless it is. */
  associate(aclArn: string, resourceArn: string): Promise<{ associated: boolean }>;
  /** Disassociates the resource, then deletes the ACL; false when there was none. */
  deleteAcl(name: string, resourceArn?: string): Promise<boolean>;
}

export interface AwsDeployApis {
  s3: S3Api;
  ecr: EcrApi;
  ecs: EcsApi;
  logs: LogsApi;
  ec2: Ec2Api;
  elb: ElbApi;
  acm: AcmApi;
  gpu: GpuCapacityApi;
  secrets: SecretsApi;
  iam: IamApi;
  sts: StsApi;
  rds: RdsApi;
  efs: EfsApi;
  sqs: SqsApi;
  scaling: ScalingApi;
  cloudwatch: CloudWatchApi;
  sns: SnsApi;
  budgets: BudgetsApi;
  tagging: TaggingApi;
  waf: WafApi;
  destroy(): void;
}
