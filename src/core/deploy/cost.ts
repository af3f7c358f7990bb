// The plan's itemised monthly estimate, from the dated list-price table (prices.ts):
// what the tasks, the load balancer, public addresses and logs cost, and what is left out.

import type { EcsTranslation } from '../../generators/ecs-task-definitions.js';
import { HOURS_PER_MONTH, PRICES, PRICES_DATE, PRICES_REGION } from './prices.js';

export interface CostLine {
  item: string;
  monthlyUsd: number;
  detail: string;
}

export interface CostEstimate {
  lines: CostLine[];
  totalMonthlyUsd: number;
  pricesDate: string;
  pricesRegion: string;
  note?: string;
  /** The month at maximum scale (every part that scales at its maximum, all month). */
  worstCase?: { totalMonthlyUsd: number; detail: string };
}

export function usd(n: number): number {
  return Math.round(n * 100) / 100;
}

export function estimateCost(
  t: EcsTranslation,
  options: { gpuInstanceType: string; logsGbPerServiceMonth: number },
): CostEstimate {
  const lines: CostLine[] = [];
  for (const td of t.taskDefinitions) {
    const svc = t.services.find((s) => s.taskFamily === td.family)!;
    if (svc.launchType === 'FARGATE') {
      const vcpu = Number(td.cpu) / 1024;
      const gb = Number(td.memory) / 1024;
      const cost =
        (vcpu * PRICES.fargateVcpuHour + gb * PRICES.fargateGbHour) * HOURS_PER_MONTH * svc.desiredCount;
      lines.push({
        item: `Fargate ${svc.name}`,
        monthlyUsd: usd(cost),
        detail: `${vcpu} vCPU, ${gb} GB × ${svc.desiredCount} task, 730 h`,
      });
    } else {
      const price = PRICES.gpuInstanceHour[options.gpuInstanceType];
      lines.push({
        item: `GPU instance for ${svc.name}`,
        monthlyUsd: usd((price ?? 0) * HOURS_PER_MONTH),
        detail: price
          ? `${options.gpuInstanceType} on demand, 730 h (runs even when idle)`
          : `${options.gpuInstanceType}: no bundled price`,
      });
    }
  }
  const tasks = t.services.reduce((n, s) => n + s.desiredCount, 0);
  const publicServices = t.services.filter((s) => s.publicPorts.length > 0);
  if (publicServices.length) {
    lines.push({
      item: 'Application Load Balancer (shared)',
      monthlyUsd: usd((PRICES.albHour + PRICES.albLcuHour) * HOURS_PER_MONTH),
      detail: `one ALB for ${publicServices.map((s) => s.name).join(', ')}: hourly charge plus ~1 LCU`,
    });
  }
  lines.push({
    item: 'Public IPv4 addresses',
    monthlyUsd: usd((tasks + (publicServices.length ? 2 : 0)) * PRICES.publicIpv4Hour * HOURS_PER_MONTH),
    detail: `${tasks} task(s) in public subnets${publicServices.length ? ' + 2 for the load balancer' : ''}, $${PRICES.publicIpv4Hour}/h each`,
  });
  const logsGb = options.logsGbPerServiceMonth * t.services.length;
  lines.push({
    item: 'CloudWatch Logs',
    monthlyUsd: usd(logsGb * (PRICES.logsIngestGb + PRICES.logsStorageGbMonth)),
    detail: `~${logsGb} GB/month ingested and kept (set --logs-gb to change)`,
  });
  const total = usd(lines.reduce((n, l) => n + l.monthlyUsd, 0));
  return {
    lines,
    totalMonthlyUsd: total,
    pricesDate: PRICES_DATE,
    pricesRegion: PRICES_REGION,
    note: `not included: a NAT gateway if tasks run in private subnets ($${usd(PRICES.natGatewayHour * HOURS_PER_MONTH)}/month + $${PRICES.natGatewayGb}/GB), data transfer`,
  };
}
