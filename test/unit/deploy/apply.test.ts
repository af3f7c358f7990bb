import { describe, expect, it } from 'vitest';
import { sameAsRegistered } from '../../../src/core/deploy/apply.js';
import type { AwsDeployApis } from '../../../src/core/deploy/aws-apis.js';
import { parameterName, preDeployChecks, secretId } from '../../../src/core/deploy/checks.js';
import { planEcs } from '../../../src/core/deploy/plan.js';
import { gpuInstanceFor } from '../../../src/core/deploy/prices.js';
import { OperationFailedError } from '../../../src/io/errors.js';
import { strictAws } from '../../helpers/aws-fake.js';

function fakeAws(
  over: Partial<AwsDeployApis['ec2']>,
  more: { [K in 'secrets' | 'iam' | 'gpu']?: Partial<AwsDeployApis[K]> } = {},
): AwsDeployApis {
  return strictAws({
    secrets: { missingParameters: async () => [], secretExists: async () => true },
    iam: { roleExists: async () => true },
    gpu: { gpuAmi: async () => 'ami-0gpu' },
    ...more,
    ec2: {
      defaultNetwork: async () => ({
        vpcId: 'vpc-1',
        subnets: ['subnet-a', 'subnet-b'],
        securityGroups: ['sg-1'],
      }),
      subnets: async (ids: string[]) =>
        ids.map((id) => ({ id, vpcId: 'vpc-1', zone: `eu-west-1${id.slice(-1)}` })),
      vpcDns: async () => ({ support: true, hostnames: true }),
      instanceTypeOffered: async () => true,
      instanceTypeInfo: async (type: string) =>
        type === 'g4dn.12xlarge' ? { gpus: 4, memoryMiB: 196608 } : { gpus: 1, memoryMiB: 16384 },
      ...over,
    },
  });
}

const plan = () =>
  planEcs({
    file: 'fixtures/deploy/gpu-pipeline/compose.yaml',
    outDir: `/tmp/mlship-apply-unit-${process.pid}`,
    region: 'eu-west-1',
    accountId: '123456789012',
    imageTag: 'x',
    force: true,
  });

describe('deploy ecs --apply: decisions', () => {
  it('a registered task definition equals the wanted one when every field we send is unchanged', () => {
    const wanted = {
      family: 'f',
      containerDefinitions: [{ name: 'a', image: 'i', portMappings: [{ containerPort: 80 }] }],
    };
    const registered = {
      ...wanted,
      revision: 3,
      status: 'ACTIVE',
      containerDefinitions: [
        {
          name: 'a',
          image: 'i',
          cpu: 0,
          portMappings: [{ containerPort: 80, hostPort: 80 }],
          mountPoints: [],
        },
      ],
    };
    expect(sameAsRegistered(wanted, registered)).toBe(true);
    expect(
      sameAsRegistered({ ...wanted, containerDefinitions: [{ name: 'a', image: 'j' }] }, registered),
    ).toBe(false);
    expect(sameAsRegistered({ family: 'f', containerDefinitions: [] }, registered)).toBe(false);
  });

  it('pre-deploy checks use the default VPC and pass when everything is in place', async () => {
    const r = await preDeployChecks(
      await plan(),
      { aws: fakeAws({}), engine: {} as never, log: () => undefined },
      { localImages: {}, force: false, wait: false },
    );
    // The proxy publishes port 80: the load balancer goes into the tasks' VPC, one subnet per zone.
    expect(r).toEqual({
      subnets: ['subnet-a', 'subnet-b'],
      securityGroups: ['sg-1'],
      balancer: { vpcId: 'vpc-1', subnets: ['subnet-a', 'subnet-b'] },
      gpuAmi: 'ami-0gpu',
    });
  });

  it('fail fast, all at once, with fixes: VPC DNS for Service Connect, an unoffered GPU type', async () => {
    const err = (await preDeployChecks(
      await plan(),
      {
        aws: fakeAws({
          vpcDns: async () => ({ support: true, hostnames: false }),
          instanceTypeOffered: async () => false,
        }),
        engine: {} as never,
        log: () => undefined,
      },
      { localImages: {}, force: false, wait: false, gpuInstanceType: 'p5.48xlarge' },
    ).catch((e: unknown) => e)) as OperationFailedError;
    expect(err).toBeInstanceOf(OperationFailedError);
    expect(err.message).toBe('2 pre-deploy check(s) failed; nothing was created');
    expect(err.details[0]).toMatch(/VPC vpc-1 has DNS hostnames disabled.*modify-vpc-attribute/);
    expect(err.details[1]).toMatch(/p5\.48xlarge is not offered.*--gpu-instance/);
  });

  it('a published port: subnets that do not exist or span two VPCs fail before anything is created', async () => {
    const err = (await preDeployChecks(
      await plan(),
      {
        aws: fakeAws({
          subnets: async () => [
            { id: 'subnet-a', vpcId: 'vpc-1', zone: 'eu-west-1a' },
            { id: 'subnet-b', vpcId: 'vpc-2', zone: 'eu-west-1b' },
          ],
        }),
        engine: {} as never,
        log: () => undefined,
      },
      {
        localImages: {},
        force: false,
        wait: false,
        subnets: ['subnet-a', 'subnet-b', 'subnet-gone'],
        securityGroups: ['sg-1'],
      },
    ).catch((e: unknown) => e)) as OperationFailedError;
    expect(err).toBeInstanceOf(OperationFailedError);
    expect(err.details).toEqual([
      'subnet(s) subnet-gone do not exist (fix: check --subnets)',
      'the subnets are in 2 VPCs (vpc-1, vpc-2); a service and its load balancer need one (fix: pass --subnets of one VPC)',
    ]);
  });

  it('a GPU task that cannot fit the chosen instance, or no GPU AMI in the region, fails before anything is created', async () => {
    const err = (await preDeployChecks(
      await plan(),
      {
        aws: fakeAws({}, { gpu: { gpuAmi: async () => undefined } as unknown as AwsDeployApis['gpu'] }),
        engine: {} as never,
        log: () => undefined,
      },
      { localImages: {}, force: false, wait: false, gpuInstanceType: 'g4dn.xlarge' },
    ).catch((e: unknown) => e)) as OperationFailedError;
    expect(err.details).toEqual([
      'task gpu-pipeline-gpu needs 2 GPUs on one instance, and g4dn.xlarge has 1 (fix: --gpu-instance with 2 GPUs or more, e.g. g4dn.12xlarge or g5.12xlarge with 4)',
      'no ECS-optimized GPU AMI is published in this region (SSM /aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended) (fix: deploy to another region)',
    ]);
  });

  it('the GPU instance type chosen by default is the cheapest bundled one that holds the task', () => {
    expect(gpuInstanceFor(1, 4096)).toBe('g4dn.xlarge');
    expect(gpuInstanceFor(1, 20_000)).toBe('g4dn.2xlarge'); // more than 90% of 16 GiB
    expect(gpuInstanceFor(2, 10_240)).toBe('g4dn.12xlarge');
    expect(gpuInstanceFor(8, 100_000)).toBe('g4dn.metal');
    expect(gpuInstanceFor(16, 1024)).toBeUndefined();
  });

  it('no default VPC and no subnets given: a usage error saying which flags to pass', async () => {
    await expect(
      preDeployChecks(
        await plan(),
        {
          aws: fakeAws({ defaultNetwork: async () => undefined }),
          engine: {} as never,
          log: () => undefined,
        },
        { localImages: {}, force: false, wait: false },
      ),
    ).rejects.toMatchObject({ code: 'USAGE', hint: expect.stringMatching(/--subnets/) });
  });

  it('secret references: SSM parameter names from ARNs, Secrets Manager ids without the ECS suffix', () => {
    expect(parameterName('arn:aws:ssm:eu-west-1:123456789012:parameter/pose/HF_TOKEN')).toBe(
      '/pose/HF_TOKEN',
    );
    expect(parameterName('arn:aws:ssm:eu-west-1:123456789012:parameter/flat')).toBe('flat');
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pose/db-AbCdEf';
    expect(secretId(`${arn}:password::`)).toBe(arn);
    expect(secretId(arn)).toBe(arn);
  });

  it('missing secrets and roles: every one located (task definition, container, variable) with a fix', async () => {
    const p = await planEcs({
      file: 'fixtures/deploy/gpu-pipeline/compose.yaml',
      outDir: `/tmp/mlship-apply-unit-roles-${process.pid}`,
      region: 'eu-west-1',
      accountId: '123456789012',
      imageTag: 'x',
      force: true,
      executionRoleArn: 'arn:aws:iam::123456789012:role/ecs/pose-exec',
    });
    const refs = p.translation.taskDefinitions.flatMap((td) =>
      (td.containerDefinitions ?? []).flatMap((c) =>
        (c.secrets ?? []).map((s) => ({ td: td.family!, c: c.name!, ...s })),
      ),
    );
    expect(refs.length).toBeGreaterThan(0);
    const asked: string[][] = [];
    const err = (await preDeployChecks(
      p,
      {
        aws: fakeAws(
          {},
          {
            secrets: {
              missingParameters: async (names) => {
                asked.push(names);
                return names;
              },
              secretExists: async () => false,
            },
            iam: { roleExists: async (name) => name !== 'pose-exec' },
          },
        ),
        engine: {} as never,
        log: () => undefined,
      },
      { localImages: {}, force: false, wait: false },
    ).catch((e: unknown) => e)) as OperationFailedError;
    expect(err.code).toBe('PREDEPLOY_CHECKS_FAILED');
    expect(asked.flat().sort()).toEqual([...new Set(refs.map((r) => parameterName(r.valueFrom!)))].sort());
    for (const r of refs) {
      const line = err.details.find((d) => d.includes(`SSM parameter ${parameterName(r.valueFrom!)} `));
      expect(line).toContain(`${r.td}/${r.c} ${r.name}`);
      expect(line).toContain('fix: aws ssm put-parameter');
    }
    const role = err.details.filter((d) => d.startsWith('execution role'));
    expect(role).toHaveLength(1);
    expect(role[0]).toContain('pose-exec');
    expect(role[0]).toContain(p.translation.taskDefinitions.map((t) => t.family).join(', '));
    expect(role[0]).toMatch(/fix: .*AmazonECSTaskExecutionRolePolicy.*--execution-role-arn/);
  });
});
