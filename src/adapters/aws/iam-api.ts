// IAM: whether the roles task definitions name exist, and the roles mlship owns for a
// stack (task execution and task roles): created, their policies kept exactly as the
// deploy wants them, and removed by --destroy.

import type * as IamSdk from '@aws-sdk/client-iam';
import type { IamApi, ServiceRoleSpec } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

const notFound = (e: unknown) => (e as { name?: string }).name === 'NoSuchEntityException';

/** Documents compare by content: IAM returns them URL-encoded, with its own key order. */
function same(a: unknown, b: unknown): boolean {
  const norm = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(norm)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v as Record<string, unknown>)
              .filter(([, x]) => !(Array.isArray(x) && x.length === 0))
              .sort(([x], [y]) => x.localeCompare(y))
              .map(([k, x]) => [k, norm(x)]),
          )
        : v;
  return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
}

function parseDocument(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(decodeURIComponent(text));
  } catch {
    return undefined;
  }
}

export function createIamApi(iamSdk: typeof IamSdk, iamClient: IamSdk.IAMClient): IamApi {
  const getRole = (name: string) =>
    iamClient.send(new iamSdk.GetRoleCommand({ RoleName: name })).then(
      (r) => r.Role,
      (e) => {
        if (notFound(e)) return undefined;
        throw e;
      },
    );

  async function syncPolicies(spec: ServiceRoleSpec, changed: string[]): Promise<void> {
    const name = spec.name;
    const attached = await iamClient.send(new iamSdk.ListAttachedRolePoliciesCommand({ RoleName: name }));
    const have = new Set((attached.AttachedPolicies ?? []).map((p) => p.PolicyArn!));
    for (const arn of spec.managedPolicies.filter((p) => !have.has(p))) {
      await iamClient.send(new iamSdk.AttachRolePolicyCommand({ RoleName: name, PolicyArn: arn }));
      changed.push(`attached ${arn.split('/').pop()}`);
    }
    const inline = await iamClient.send(new iamSdk.ListRolePoliciesCommand({ RoleName: name }));
    for (const policy of inline.PolicyNames ?? []) {
      if (spec.inlinePolicies[policy]) continue;
      await iamClient.send(new iamSdk.DeleteRolePolicyCommand({ RoleName: name, PolicyName: policy }));
      changed.push(`removed policy ${policy}`);
    }
    for (const [policy, document] of Object.entries(spec.inlinePolicies)) {
      const current = (inline.PolicyNames ?? []).includes(policy)
        ? await iamClient
            .send(new iamSdk.GetRolePolicyCommand({ RoleName: name, PolicyName: policy }))
            .then((r) => parseDocument(r.PolicyDocument))
        : undefined;
      if (same(current, document)) continue;
      await iamClient.send(
        new iamSdk.PutRolePolicyCommand({
          RoleName: name,
          PolicyName: policy,
          PolicyDocument: JSON.stringify(document),
        }),
      );
      changed.push(current ? `updated policy ${policy}` : `added policy ${policy}`);
    }
  }

  return {
    async roleExists(name) {
      return call(`look up IAM role ${name}`, async () => Boolean(await getRole(name)));
    },
    async ensureServiceRole(spec) {
      return call(`set up IAM role ${spec.name}`, async () => {
        const assume = JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: spec.service }, Action: 'sts:AssumeRole' }],
        });
        const tags = Object.entries(spec.tags).map(([Key, Value]) => ({ Key, Value }));
        let role = await getRole(spec.name);
        const changed: string[] = [];
        if (role && !role.Tags?.some((t) => t.Key === 'mlship:managed' && t.Value === 'true')) {
          return { arn: role.Arn!, created: false, changed, managed: false };
        }
        const created = !role;
        if (!role) {
          role = (
            await iamClient.send(
              new iamSdk.CreateRoleCommand({
                RoleName: spec.name,
                Description: spec.description,
                AssumeRolePolicyDocument: assume,
                Tags: tags,
              }),
            )
          ).Role!;
        } else if (!same(parseDocument(role.AssumeRolePolicyDocument), JSON.parse(assume))) {
          await iamClient.send(
            new iamSdk.UpdateAssumeRolePolicyCommand({ RoleName: spec.name, PolicyDocument: assume }),
          );
          changed.push('trust policy');
        }
        await syncPolicies(spec, changed);
        return { arn: role.Arn!, created, changed: created ? [] : changed, managed: true };
      });
    },
    async deleteServiceRole(name) {
      return call(`delete IAM role ${name}`, async () => {
        if (!(await getRole(name))) return false;
        const attached = await iamClient.send(new iamSdk.ListAttachedRolePoliciesCommand({ RoleName: name }));
        for (const p of attached.AttachedPolicies ?? [])
          await iamClient.send(
            new iamSdk.DetachRolePolicyCommand({ RoleName: name, PolicyArn: p.PolicyArn! }),
          );
        const inline = await iamClient.send(new iamSdk.ListRolePoliciesCommand({ RoleName: name }));
        for (const policy of inline.PolicyNames ?? [])
          await iamClient.send(new iamSdk.DeleteRolePolicyCommand({ RoleName: name, PolicyName: policy }));
        await iamClient.send(new iamSdk.DeleteRoleCommand({ RoleName: name }));
        return true;
      });
    },
  };
}
