// Bundled, dated AWS list prices for the plan's cost estimate (USD, Linux, on-demand).
// An estimate to prevent surprise bills, not a quote: the plan prints the date and region.
// Source: the public AWS pricing pages for each service (us-east-1), read on the date below.

export const PRICES_DATE = '2025-11-01';
export const PRICES_REGION = 'us-east-1';
export const HOURS_PER_MONTH = 730;

/** GPU instance types mlship chooses from: GPUs, memory (GiB), USD per hour. */
export const GPU_INSTANCES: { type: string; gpus: number; memoryGiB: number; hour: number }[] = [
  { type: 'g4dn.xlarge', gpus: 1, memoryGiB: 16, hour: 0.526 },
  { type: 'g4dn.2xlarge', gpus: 1, memoryGiB: 32, hour: 0.752 },
  { type: 'g6.xlarge', gpus: 1, memoryGiB: 16, hour: 0.8048 },
  { type: 'g5.xlarge', gpus: 1, memoryGiB: 16, hour: 1.006 },
  { type: 'g5.2xlarge', gpus: 1, memoryGiB: 32, hour: 1.212 },
  { type: 'g4dn.12xlarge', gpus: 4, memoryGiB: 192, hour: 3.912 },
  { type: 'g5.12xlarge', gpus: 4, memoryGiB: 192, hour: 5.672 },
  { type: 'g4dn.metal', gpus: 8, memoryGiB: 384, hour: 7.824 },
  { type: 'g5.48xlarge', gpus: 8, memoryGiB: 768, hour: 16.288 },
];

export const PRICES = {
  fargateVcpuHour: 0.04048,
  fargateGbHour: 0.004445,
  /** Application Load Balancer: per hour, plus about one LCU for light traffic. */
  albHour: 0.0225,
  albLcuHour: 0.008,
  natGatewayHour: 0.045,
  natGatewayGb: 0.045,
  publicIpv4Hour: 0.005,
  logsIngestGb: 0.5,
  logsStorageGbMonth: 0.03,
  /** S3 Standard storage, first 50 TB. */
  s3GbMonth: 0.023,
  /** Fargate task storage beyond the 20 GB included. */
  fargateStorageGbHour: 0.000111,
  /** Aurora Serverless v2 (standard configuration): per ACU-hour; 0 ACU while paused. */
  auroraAcuHour: 0.12,
  /** Aurora storage per GB-month (backups within the retention period and the database's size are free). */
  auroraGbMonth: 0.1,
  /** RDS instances per hour (single-AZ, PostgreSQL/MySQL). */
  rdsInstanceHour: { 'db.t4g.micro': 0.016, 'db.t4g.small': 0.032, 'db.t4g.medium': 0.065 } as Record<
    string,
    number
  >,
  /** RDS gp3 storage per GB-month (20 GB allocated). */
  rdsGp3GbMonth: 0.115,
  secretsManagerSecretMonth: 0.4,
  /** EFS standard storage per GB-month (elastic throughput is billed per GB transferred). */
  efsGbMonth: 0.3,
  /** CloudWatch: a dashboard per month, an alarm per metric it reads, a custom metric (first 10,000). */
  cloudwatchDashboardMonth: 3,
  cloudwatchAlarmMetricMonth: 0.1,
  cloudwatchCustomMetricMonth: 0.3,
  /** AWS WAF: a web ACL and a rule per month, and per million requests inspected. */
  wafWebAclMonth: 5,
  wafRuleMonth: 1,
  wafMillionRequests: 0.6,
  /** AWS Budgets beyond the first two of an account, per budget-day. */
  budgetDay: 0.02,
  /** GPU instances for the EC2 task (one instance runs the whole GPU task). */
  gpuInstanceHour: Object.fromEntries(GPU_INSTANCES.map((i) => [i.type, i.hour])) as Record<string, number>,
} as const;

export const DEFAULT_GPU_INSTANCE = 'g4dn.xlarge';

/** Share of an instance's memory ECS can give tasks (the OS and the agent keep the rest). */
export const TASK_MEMORY_SHARE = 0.9;

/**
 * The cheapest instance type that holds a GPU task: all its GPUs, and its memory within what an
 * instance can give tasks. Undefined when no type in the table does.
 */
export function gpuInstanceFor(gpus: number, memoryMiB: number): string | undefined {
  return GPU_INSTANCES.filter(
    (i) => i.gpus >= gpus && i.memoryGiB * 1024 * TASK_MEMORY_SHARE >= memoryMiB,
  ).sort((a, b) => a.hour - b.hour)[0]?.type;
}
