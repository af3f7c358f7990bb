// Elastic Load Balancing v2: the shared Application Load Balancer, its target groups and listeners,
// and the weighted listener rules of rollouts.

import type * as ElbSdk from '@aws-sdk/client-elastic-load-balancing-v2';
import type { ElbApi, TargetWeight, WeightedRuleSpec } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';
import { keyValueTags, type Tags } from './tags.js';

/** TLS policy of HTTPS listeners: TLS 1.3 and 1.2 only (the AWS-recommended policy). */
export const TLS_POLICY = 'ELBSecurityPolicy-TLS13-1-2-2021-06';

export function createElbApi(
  elbSdk: typeof ElbSdk,
  elbClient: ElbSdk.ElasticLoadBalancingV2Client,
  tags: Tags = {},
): ElbApi {
  /** The target group of that name, or undefined where there is none. */
  const targetGroup = (name: string) =>
    call(`describe target group ${name}`, async () => {
      try {
        return (await elbClient.send(new elbSdk.DescribeTargetGroupsCommand({ Names: [name] })))
          .TargetGroups?.[0];
      } catch (e) {
        if ((e as { name?: string }).name === 'TargetGroupNotFoundException') return undefined;
        throw e;
      }
    });
  return {
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
            Tags: keyValueTags(tags),
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
      const existing = await targetGroup(spec.name);
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
            Tags: keyValueTags(tags),
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
            Tags: keyValueTags(tags),
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
        const group = await targetGroup(name);
        if (!group?.TargetGroupArn) continue;
        await call(`delete target group ${name}`, () =>
          elbClient.send(new elbSdk.DeleteTargetGroupCommand({ TargetGroupArn: group.TargetGroupArn! })),
        );
        deleted.push(name);
      }
      return deleted;
    },
    async targetGroupArns(names) {
      const arns: Record<string, string> = {};
      for (const name of names) {
        const group = await targetGroup(name);
        if (group?.TargetGroupArn) arns[name] = group.TargetGroupArn;
      }
      return arns;
    },
    async listenerArn(loadBalancerArn, port) {
      const r = await call('describe the listeners of the load balancer', () =>
        elbClient.send(new elbSdk.DescribeListenersCommand({ LoadBalancerArn: loadBalancerArn })),
      );
      return r.Listeners?.find((l) => l.Port === port)?.ListenerArn;
    },
    async createRule(spec) {
      const r = await call(`create a listener rule for ${spec.paths.join(', ')}`, () =>
        elbClient.send(new elbSdk.CreateRuleCommand(ruleInput(spec, tags))),
      );
      return r.Rules![0]!.RuleArn!;
    },
    async setRuleWeights(ruleArn, weights) {
      await call('change the weights of a listener rule', () =>
        elbClient.send(new elbSdk.ModifyRuleCommand({ RuleArn: ruleArn, Actions: [forwardAction(weights)] })),
      );
    },
    async ruleWeights(ruleArn) {
      const rule = await call('describe a listener rule', async () => {
        try {
          return (await elbClient.send(new elbSdk.DescribeRulesCommand({ RuleArns: [ruleArn] }))).Rules?.[0];
        } catch (e) {
          if ((e as { name?: string }).name === 'RuleNotFoundException') return undefined;
          throw e;
        }
      });
      const forward = rule?.Actions?.find((a) => a.Type === 'forward');
      if (!forward) return undefined;
      return (forward.ForwardConfig?.TargetGroups ?? []).map((t) => ({
        targetGroupArn: t.TargetGroupArn!,
        weight: t.Weight ?? 1,
      }));
    },
    async deleteRule(ruleArn) {
      return call('delete a listener rule', async () => {
        try {
          await elbClient.send(new elbSdk.DeleteRuleCommand({ RuleArn: ruleArn }));
          return true;
        } catch (e) {
          if ((e as { name?: string }).name === 'RuleNotFoundException') return false;
          throw e;
        }
      });
    },
  };
}

/** A forward to target groups by weight (0 to 999 each; a group at 0 gets no request). */
export function forwardAction(weights: TargetWeight[]): ElbSdk.Action {
  return {
    Type: 'forward',
    ForwardConfig: {
      TargetGroups: weights.map((w) => ({ TargetGroupArn: w.targetGroupArn, Weight: w.weight })),
      TargetGroupStickinessConfig: { Enabled: false },
    },
  };
}

/** The CreateRule request of a rollout's rule: path (and header) conditions, the rewrite, the weights. */
export function ruleInput(spec: WeightedRuleSpec, tags: Tags = {}): ElbSdk.CreateRuleCommandInput {
  return {
    ListenerArn: spec.listenerArn,
    Priority: spec.priority,
    Conditions: [
      { Field: 'path-pattern', PathPatternConfig: { Values: spec.paths } },
      ...(spec.header
        ? [
            {
              Field: 'http-header',
              HttpHeaderConfig: { HttpHeaderName: spec.header.name, Values: [spec.header.value] },
            },
          ]
        : []),
    ],
    Actions: [forwardAction(spec.weights)],
    ...(spec.rewrite
      ? {
          Transforms: [
            {
              Type: 'url-rewrite',
              UrlRewriteConfig: { Rewrites: [{ Regex: spec.rewrite.regex, Replace: spec.rewrite.replace }] },
            },
          ],
        }
      : {}),
    Tags: keyValueTags({ ...tags, ...spec.tags }),
  };
}
