// The running-the-stack part of `mlship deploy ecs` (issue 21): its flags (--budget,
// --alert-email, --waf-rate-limit, --no-monitoring), what --apply does before and after
// the apply itself (the API keys secret; dashboard, alarms, topic, budget, WAF), and how the
// results and the post-destroy tag scan read. Kept out of deploy.ts, which is long enough.

import path from 'node:path';
import type { AwsDeployApis } from '../../core/deploy/aws-apis.js';
import type { LeftoverScan, OperateResult } from '../../core/deploy/operate.js';
import type { OperateOptions } from '../../core/deploy/operate-plan.js';
import type { EcsPlanResult } from '../../core/deploy/plan.js';
import { UsageError } from '../../io/errors.js';
import type { CliContext } from '../context.js';

interface OperateFlags {
  file: string;
  budget?: string;
  alertEmail?: string;
  wafRateLimit?: string;
  monitoring: boolean;
}

/** The flags as plan options, each checked (exit 2 with the fix on a bad value). */
export function operateOptions(flags: OperateFlags): OperateOptions {
  const budget = flags.budget === undefined ? undefined : Number(flags.budget);
  if (budget !== undefined && !(budget > 0 && budget <= 1_000_000))
    throw new UsageError(`--budget ${flags.budget} is not an amount of US dollars`, {
      hint: 'a positive number of dollars per month, e.g. --budget 50',
    });
  if (flags.alertEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(flags.alertEmail))
    throw new UsageError(`--alert-email ${flags.alertEmail} is not an e-mail address`, {
      hint: 'e.g. --alert-email ops@example.com',
    });
  const waf = flags.wafRateLimit === undefined ? undefined : Number(flags.wafRateLimit);
  if (waf !== undefined && !(Number.isInteger(waf) && waf >= 10))
    throw new UsageError(`--waf-rate-limit ${flags.wafRateLimit} is not a number of requests (10 or more)`, {
      hint: 'requests one IP address may send in 5 minutes, e.g. --waf-rate-limit 1000',
    });
  return {
    ...(budget !== undefined ? { budgetUsd: budget } : {}),
    ...(flags.alertEmail ? { alertEmail: flags.alertEmail } : {}),
    ...(waf !== undefined ? { wafRateLimit: waf } : {}),
    ...(flags.monitoring ? {} : { monitoring: false }),
  };
}

export function renderScan(stack: string, scan: LeftoverScan): string[] {
  return [
    scan.billed.length
      ? `still there and billed, tagged mlship:stack=${stack} (run --destroy again, or remove by hand):`
      : `tag scan (mlship:stack=${stack}): nothing billed is left${scan.kept.length ? ' but what is kept on purpose' : ''}`,
    ...scan.billed.map((a) => `  ${a}`),
    ...(scan.kept.length ? [`kept on purpose (images, logs, data): ${scan.kept.length} resource(s)`] : []),
  ];
}

/** Before the apply: the API keys secret; after: dashboard, alarms, topic, budget, WAF. */
export function applyOperate(ctx: CliContext, r: EcsPlanResult, aws: AwsDeployApis, file: string) {
  const deps = { aws, log: (l: string) => ctx.io.info(l) };
  return {
    async before(): Promise<OperateResult['apiKeys']> {
      if (!r.operate?.apiKeys) return undefined;
      const [{ prepareOperate }, { keysFile, keysMapText }] = await Promise.all([
        import('../../core/deploy/operate.js'),
        import('../../core/keys/keys.js'),
      ]);
      // The keys `mlship keys` keeps beside the local stack (deploy/compose of mlship.yaml).
      const dir = path.join(path.dirname(path.resolve(ctx.cwd, file)), 'deploy', 'compose');
      return prepareOperate(r, deps, await keysMapText(keysFile(dir)));
    },
    async after(apiKeys: OperateResult['apiKeys'], services: { name: string; action: string }[]) {
      const { ensureOperate } = await import('../../core/deploy/operate.js');
      if (r.operate?.budget && !r.operate.budget.email)
        ctx.io.warn(
          '--budget without --alert-email: the budget is created, but nobody is told when the forecast passes it',
        );
      return ensureOperate(r, deps, { ...(apiKeys ? { apiKeys } : {}), services });
    },
    lines(o: OperateResult): string[] {
      return [
        ...(o.dashboard
          ? [
              `dashboard ${o.dashboard}: https://console.aws.amazon.com/cloudwatch/home?region=${r.region}#dashboards:name=${o.dashboard}`,
            ]
          : []),
        ...(o.alarms.length
          ? [
              `${o.alarms.length} alarm(s): ${o.alarms.join(', ')}${o.alarmsRemoved.length ? `; removed ${o.alarmsRemoved.join(', ')}` : ''}`,
            ]
          : []),
        ...(o.topic
          ? [
              `alerts: SNS topic ${o.topic.arn} (e-mail ${o.topic.subscription === 'confirmed' ? 'confirmed' : 'pending confirmation: follow the link AWS e-mailed'})`,
            ]
          : []),
        ...(o.budget
          ? [
              `budget ${o.budget.name}: ${o.budget.created ? 'created' : o.budget.changed.length ? `updated (${o.budget.changed.join(', ')})` : 'unchanged'}; activate the cost-allocation tag mlship:stack once (see the plan)`,
            ]
          : []),
        ...(o.waf
          ? [
              `web ACL ${o.waf.arn}: ${o.waf.created ? 'created' : o.waf.changed ? 'updated' : 'unchanged'}${o.waf.associated ? ', on the load balancer' : ''}`,
            ]
          : []),
        ...o.redeployed.map((s) => `service ${s}: redeployed with the new API keys`),
      ];
    },
  };
}
