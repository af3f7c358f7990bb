// Bundled, dated AWS list prices for the plan's cost estimate (USD, Linux, on-demand).
// An estimate to prevent surprise bills, not a quote: the plan prints the date and region.
// Source: the public AWS pricing pages for each service (us-east-1), read on the date below.

export const PRICES_DATE = '2025-11-01';
export const PRICES_REGION = 'us-east-1';
export const HOURS_PER_MONTH = 730;

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
  /** GPU instances for the EC2 task (one instance runs the whole GPU task). */
  gpuInstanceHour: {
    'g4dn.xlarge': 0.526,
    'g5.xlarge': 1.006,
    'g6.xlarge': 0.8048,
    'g5.2xlarge': 1.212,
  } as Record<string, number>,
} as const;

export const DEFAULT_GPU_INSTANCE = 'g4dn.xlarge';
