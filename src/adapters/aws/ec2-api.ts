// EC2: the network the services run in (VPC, subnets, security groups) and instance types.

import type * as Ec2Sdk from '@aws-sdk/client-ec2';
import type { Ec2Api } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';
import { keyValueTags, type Tags } from './tags.js';

export function createEc2Api(ec2Sdk: typeof Ec2Sdk, ec2Client: Ec2Sdk.EC2Client, tags: Tags = {}): Ec2Api {
  /** The ids of the security groups of that name in the VPC (names are unique per VPC). */
  const groupsNamed = async (vpcId: string, name: string, what: string): Promise<string[]> => {
    const r = await call(what, () =>
      ec2Client.send(
        new ec2Sdk.DescribeSecurityGroupsCommand({
          Filters: [
            { Name: 'vpc-id', Values: [vpcId] },
            { Name: 'group-name', Values: [name] },
          ],
        }),
      ),
    );
    return (r.SecurityGroups ?? []).map((g) => g.GroupId!);
  };
  return {
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
        groupsNamed(vpcId, 'default', 'list security groups'),
      ]);
      return {
        vpcId,
        subnets: (subnets.Subnets ?? []).map((s) => s.SubnetId!).sort(),
        securityGroups: groups,
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
      const [id] = await groupsNamed(vpcId, name, `find security group ${name}`);
      if (id) return { id, created: false };
      const created = await call(`create security group ${name}`, () =>
        ec2Client.send(
          new ec2Sdk.CreateSecurityGroupCommand({
            GroupName: name,
            Description: description,
            VpcId: vpcId,
            TagSpecifications: [{ ResourceType: 'security-group', Tags: keyValueTags(tags) }],
          }),
        ),
      );
      return { id: created.GroupId!, created: true };
    },
    async findSecurityGroup(vpcId, name) {
      return (await groupsNamed(vpcId, name, `find security group ${name}`))[0];
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
}
