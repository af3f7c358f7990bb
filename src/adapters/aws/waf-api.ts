// AWS WAF (v2, regional): a web ACL whose one rule blocks an IP address above a request
// rate (per 5 minutes), associated with the stack's load balancer. The ACL's limit follows
// the spec on every apply; --destroy disassociates it and deletes it.

import type * as WafSdk from '@aws-sdk/client-wafv2';
import type { WafApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';
import { keyValueTags, type Tags } from './tags.js';

export const RATE_RULE = 'mlship-rate-limit';

const visibility = (metric: string): WafSdk.VisibilityConfig => ({
  SampledRequestsEnabled: true,
  CloudWatchMetricsEnabled: true,
  MetricName: metric.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 128),
});

export function rateRule(name: string, limit: number): WafSdk.Rule {
  return {
    Name: RATE_RULE,
    Priority: 0,
    Action: { Block: {} },
    Statement: { RateBasedStatement: { Limit: limit, AggregateKeyType: 'IP' } },
    VisibilityConfig: visibility(`${name}-rate`),
  };
}

export function createWafApi(sdk: typeof WafSdk, client: WafSdk.WAFV2Client, tags: Tags = {}): WafApi {
  async function find(name: string) {
    let NextMarker: string | undefined;
    do {
      const r = await call('list web ACLs', () =>
        client.send(new sdk.ListWebACLsCommand({ Scope: 'REGIONAL', NextMarker, Limit: 100 })),
      );
      const hit = (r.WebACLs ?? []).find((a) => a.Name === name);
      if (hit) return hit;
      NextMarker = r.WebACLs?.length ? r.NextMarker : undefined;
    } while (NextMarker);
    return undefined;
  }
  return {
    async ensureRateLimitAcl(spec) {
      const existing = await find(spec.name);
      if (!existing) {
        const r = await call(`create web ACL ${spec.name}`, () =>
          client.send(
            new sdk.CreateWebACLCommand({
              Name: spec.name,
              Scope: 'REGIONAL',
              DefaultAction: { Allow: {} },
              Description: 'mlship: blocks an IP address above the rate limit',
              Rules: [rateRule(spec.name, spec.limit)],
              VisibilityConfig: visibility(spec.name),
              Tags: keyValueTags({ ...tags, ...spec.tags }),
            }),
          ),
        );
        return { arn: r.Summary!.ARN!, created: true, changed: false };
      }
      const acl = await call(`read web ACL ${spec.name}`, () =>
        client.send(new sdk.GetWebACLCommand({ Name: spec.name, Scope: 'REGIONAL', Id: existing.Id! })),
      );
      const limit = acl.WebACL?.Rules?.find((r) => r.Name === RATE_RULE)?.Statement?.RateBasedStatement
        ?.Limit;
      if (limit === spec.limit) return { arn: existing.ARN!, created: false, changed: false };
      await call(`update web ACL ${spec.name}`, () =>
        client.send(
          new sdk.UpdateWebACLCommand({
            Name: spec.name,
            Scope: 'REGIONAL',
            Id: existing.Id!,
            LockToken: acl.LockToken!,
            DefaultAction: { Allow: {} },
            Rules: [rateRule(spec.name, spec.limit)],
            VisibilityConfig: visibility(spec.name),
          }),
        ),
      );
      return { arn: existing.ARN!, created: false, changed: true };
    },
    async associate(aclArn, resourceArn) {
      const current = await call('read the web ACL of the load balancer', () =>
        client.send(new sdk.GetWebACLForResourceCommand({ ResourceArn: resourceArn })),
      );
      if (current.WebACL?.ARN === aclArn) return { associated: false };
      await call('associate the web ACL with the load balancer', () =>
        client.send(new sdk.AssociateWebACLCommand({ WebACLArn: aclArn, ResourceArn: resourceArn })),
      );
      return { associated: true };
    },
    async deleteAcl(name, resourceArn) {
      const existing = await find(name);
      if (!existing) return false;
      if (resourceArn) {
        await call('disassociate the web ACL from the load balancer', () =>
          client.send(new sdk.DisassociateWebACLCommand({ ResourceArn: resourceArn })),
        );
      }
      await call(`delete web ACL ${name}`, () =>
        client.send(
          new sdk.DeleteWebACLCommand({
            Name: name,
            Scope: 'REGIONAL',
            Id: existing.Id!,
            LockToken: existing.LockToken!,
          }),
        ),
      );
      return true;
    },
  };
}
