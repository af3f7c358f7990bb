// The EC2 capacity of a GPU task: instance role and profile, launch template on the ECS GPU AMI,
// Auto Scaling group and capacity provider; and their removal.

import type * as AsgSdk from '@aws-sdk/client-auto-scaling';
import type * as Ec2Sdk from '@aws-sdk/client-ec2';
import type * as EcsSdk from '@aws-sdk/client-ecs';
import type * as IamSdk from '@aws-sdk/client-iam';
import type * as SsmSdk from '@aws-sdk/client-ssm';
import type { GpuCapacityApi } from '../../core/deploy/aws-apis.js';
import { OperationFailedError } from '../../io/errors.js';
import { call } from './aws-call.js';
import { ecsTags, keyValueTags, type Tags } from './tags.js';

export function createGpuCapacityApi(
  ecsSdk: typeof EcsSdk,
  ecsClient: EcsSdk.ECSClient,
  ec2Sdk: typeof Ec2Sdk,
  ec2Client: Ec2Sdk.EC2Client,
  ssmSdk: typeof SsmSdk,
  ssmClient: SsmSdk.SSMClient,
  iamSdk: typeof IamSdk,
  iamClient: IamSdk.IAMClient,
  asgSdk: typeof AsgSdk,
  asgClient: AsgSdk.AutoScalingClient,
  tags: Tags = {},
): GpuCapacityApi {
  const managedTags = keyValueTags(tags);
  return {
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
              Tags: managedTags,
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
              new iamSdk.CreateInstanceProfileCommand({ InstanceProfileName: name, Tags: managedTags }),
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
        TagSpecifications: [{ ResourceType: 'instance' as const, Tags: managedTags }],
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
            TagSpecifications: [{ ResourceType: 'launch-template', Tags: managedTags }],
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
                  ...managedTags.map((t) => ({ ...t, PropagateAtLaunch: true })),
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
    async enableGroupMetrics(name) {
      await call(`enable the metrics of Auto Scaling group ${name}`, () =>
        asgClient.send(
          new asgSdk.EnableMetricsCollectionCommand({
            AutoScalingGroupName: name,
            Granularity: '1Minute',
            Metrics: ['GroupInServiceInstances'],
          }),
        ),
      );
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
              tags: ecsTags(tags),
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
      const c = { ecsSdk, ecsClient, ec2Sdk, ec2Client, iamSdk, iamClient, asgSdk, asgClient };
      const removed: string[] = [];
      for (const step of [
        removeCapacityProvider,
        removeAutoScalingGroup,
        removeLaunchTemplate,
        removeInstanceProfile,
      ]) {
        const what = await step(c, spec);
        if (what) removed.push(what);
      }
      return removed;
    },
  };
}

interface Clients {
  ecsSdk: typeof EcsSdk;
  ecsClient: EcsSdk.ECSClient;
  ec2Sdk: typeof Ec2Sdk;
  ec2Client: Ec2Sdk.EC2Client;
  iamSdk: typeof IamSdk;
  iamClient: IamSdk.IAMClient;
  asgSdk: typeof AsgSdk;
  asgClient: AsgSdk.AutoScalingClient;
}
type CapacitySpec = Parameters<GpuCapacityApi['deleteCapacity']>[0];

/** The capacity provider detached from the cluster, then deleted; what was removed, if anything. */
async function removeCapacityProvider(c: Clients, spec: CapacitySpec): Promise<string | undefined> {
  const cluster = (
    await call(`describe cluster ${spec.cluster}`, () =>
      c.ecsClient.send(new c.ecsSdk.DescribeClustersCommand({ clusters: [spec.cluster] })),
    )
  ).clusters?.find((x) => x.status === 'ACTIVE');
  if (cluster?.capacityProviders?.includes(spec.capacityProvider)) {
    await call(`detach capacity provider ${spec.capacityProvider}`, () =>
      c.ecsClient.send(
        new c.ecsSdk.PutClusterCapacityProvidersCommand({
          cluster: spec.cluster,
          capacityProviders: cluster.capacityProviders!.filter((x) => x !== spec.capacityProvider),
          defaultCapacityProviderStrategy: (cluster.defaultCapacityProviderStrategy ?? []).filter(
            (x) => x.capacityProvider !== spec.capacityProvider,
          ),
        }),
      ),
    );
  }
  const provider = await call(`look up capacity provider ${spec.capacityProvider}`, () =>
    c.ecsClient.send(
      new c.ecsSdk.DescribeCapacityProvidersCommand({ capacityProviders: [spec.capacityProvider] }),
    ),
  );
  if (!provider.capacityProviders?.some((x) => x.status === 'ACTIVE')) return undefined;
  await call(`delete capacity provider ${spec.capacityProvider}`, () =>
    c.ecsClient.send(new c.ecsSdk.DeleteCapacityProviderCommand({ capacityProvider: spec.capacityProvider })),
  );
  return `capacity provider ${spec.capacityProvider}`;
}

async function removeAutoScalingGroup(c: Clients, spec: CapacitySpec): Promise<string | undefined> {
  const group = await call(`look up Auto Scaling group ${spec.autoScalingGroup}`, () =>
    c.asgClient.send(
      new c.asgSdk.DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [spec.autoScalingGroup] }),
    ),
  );
  if (!group.AutoScalingGroups?.length) return undefined;
  // ForceDelete terminates the group's instances: the GPU bill stops here.
  await call(`delete Auto Scaling group ${spec.autoScalingGroup}`, () =>
    c.asgClient.send(
      new c.asgSdk.DeleteAutoScalingGroupCommand({
        AutoScalingGroupName: spec.autoScalingGroup,
        ForceDelete: true,
      }),
    ),
  );
  return `Auto Scaling group ${spec.autoScalingGroup} (its instances are terminated)`;
}

async function removeLaunchTemplate(c: Clients, spec: CapacitySpec): Promise<string | undefined> {
  const template = await call(`look up launch template ${spec.launchTemplate}`, () =>
    c.ec2Client
      .send(new c.ec2Sdk.DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [spec.launchTemplate] }))
      .then(
        (r) => r.LaunchTemplates?.[0],
        (e: { name?: string }) => {
          if (/NotFound/.test(e.name ?? '')) return undefined;
          throw e;
        },
      ),
  );
  if (!template?.LaunchTemplateId) return undefined;
  await call(`delete launch template ${spec.launchTemplate}`, () =>
    c.ec2Client.send(
      new c.ec2Sdk.DeleteLaunchTemplateCommand({ LaunchTemplateId: template.LaunchTemplateId }),
    ),
  );
  return `launch template ${spec.launchTemplate}`;
}

/** The instance profile emptied and deleted, then its role (the ECS-for-EC2 policy detached first). */
async function removeInstanceProfile(c: Clients, spec: CapacitySpec): Promise<string | undefined> {
  const profile = await call(`look up instance profile ${spec.instanceProfile}`, () =>
    c.iamClient
      .send(new c.iamSdk.GetInstanceProfileCommand({ InstanceProfileName: spec.instanceProfile }))
      .then(
        (r) => r.InstanceProfile,
        (e: { name?: string }) => {
          if (e.name === 'NoSuchEntityException') return undefined;
          throw e;
        },
      ),
  );
  if (!profile) return undefined;
  await call(`delete instance profile ${spec.instanceProfile}`, async () => {
    for (const role of profile.Roles ?? [])
      await c.iamClient.send(
        new c.iamSdk.RemoveRoleFromInstanceProfileCommand({
          InstanceProfileName: spec.instanceProfile,
          RoleName: role.RoleName!,
        }),
      );
    await c.iamClient.send(
      new c.iamSdk.DeleteInstanceProfileCommand({ InstanceProfileName: spec.instanceProfile }),
    );
    await c.iamClient.send(
      new c.iamSdk.DetachRolePolicyCommand({
        RoleName: spec.instanceProfile,
        PolicyArn: 'arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role',
      }),
    );
    await c.iamClient.send(new c.iamSdk.DeleteRoleCommand({ RoleName: spec.instanceProfile }));
  });
  return `instance profile and role ${spec.instanceProfile}`;
}
