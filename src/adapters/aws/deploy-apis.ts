// The AWS APIs of the deploy commands: for one region (and profile or endpoint), each
// interface the deploy core declares (core/deploy/aws-apis.ts) implemented by the file of
// its AWS service. SDK modules and clients are loaded on the first call of a group, so a
// command that talks to three services does not load fifteen. SDK errors become typed
// mlship errors (aws-call.ts); credentials are never logged.

import type { AwsDeployApis, AwsTarget } from '../../core/deploy/aws-apis.js';
import { createAcmApi } from './acm-api.js';
import { createEc2Api } from './ec2-api.js';
import { createEcrApi } from './ecr-api.js';
import { createEcsApi } from './ecs-api.js';
import { createEfsApi } from './efs-api.js';
import { createElbApi } from './elb-api.js';
import { createGpuCapacityApi } from './gpu-capacity-api.js';
import { createIamApi } from './iam-api.js';
import { createLogsApi } from './logs-api.js';
import { createRdsApi } from './rds-api.js';
import { createS3Api } from './s3-api.js';
import { createScalingApi } from './scaling-api.js';
import { createSecretsApi } from './secrets-api.js';
import { createSqsApi } from './sqs-api.js';
import { createStsApi } from './sts-api.js';

interface Destroyable {
  destroy(): void;
}

/** An API object whose methods load its SDK and client on their first call. */
function lazy<T extends object>(load: () => Promise<T>): T {
  let loaded: Promise<T> | undefined;
  return new Proxy({} as T, {
    get(_target, method) {
      if (typeof method !== 'string' || method === 'then') return undefined;
      return async (...args: unknown[]) => {
        loaded ??= load();
        const api = (await loaded) as Record<string, (...a: unknown[]) => unknown>;
        return api[method]!(...args);
      };
    },
  });
}

export function createDeployApis(target: AwsTarget): AwsDeployApis {
  const config = {
    region: target.region,
    ...(target.profile ? { profile: target.profile } : {}),
    ...(target.endpointUrl ? { endpoint: target.endpointUrl } : {}),
  };
  const clients: Destroyable[] = [];
  const client = <C extends Destroyable>(c: C): C => {
    clients.push(c);
    return c;
  };
  const iamClient = async () => {
    const sdk = await import('@aws-sdk/client-iam');
    return { sdk, client: client(new sdk.IAMClient(config)) };
  };
  return {
    s3: lazy(async () => {
      const sdk = await import('@aws-sdk/client-s3');
      // Path-style for emulators and private endpoints, as their names are not DNS names.
      return createS3Api(
        sdk,
        client(new sdk.S3Client({ ...config, forcePathStyle: Boolean(target.endpointUrl) })),
      );
    }),
    ecr: lazy(async () => {
      const sdk = await import('@aws-sdk/client-ecr');
      return createEcrApi(sdk, client(new sdk.ECRClient(config)));
    }),
    ecs: lazy(async () => {
      const sdk = await import('@aws-sdk/client-ecs');
      return createEcsApi(sdk, client(new sdk.ECSClient(config)));
    }),
    logs: lazy(async () => {
      const sdk = await import('@aws-sdk/client-cloudwatch-logs');
      return createLogsApi(sdk, client(new sdk.CloudWatchLogsClient(config)));
    }),
    ec2: lazy(async () => {
      const sdk = await import('@aws-sdk/client-ec2');
      return createEc2Api(sdk, client(new sdk.EC2Client(config)));
    }),
    elb: lazy(async () => {
      const sdk = await import('@aws-sdk/client-elastic-load-balancing-v2');
      return createElbApi(sdk, client(new sdk.ElasticLoadBalancingV2Client(config)));
    }),
    acm: lazy(async () => {
      const sdk = await import('@aws-sdk/client-acm');
      return createAcmApi(sdk, client(new sdk.ACMClient(config)));
    }),
    gpu: lazy(async () => {
      const [ecs, ec2, ssm, asg, iam] = await Promise.all([
        import('@aws-sdk/client-ecs'),
        import('@aws-sdk/client-ec2'),
        import('@aws-sdk/client-ssm'),
        import('@aws-sdk/client-auto-scaling'),
        iamClient(),
      ]);
      return createGpuCapacityApi(
        ecs,
        client(new ecs.ECSClient(config)),
        ec2,
        client(new ec2.EC2Client(config)),
        ssm,
        client(new ssm.SSMClient(config)),
        iam.sdk,
        iam.client,
        asg,
        client(new asg.AutoScalingClient(config)),
      );
    }),
    secrets: lazy(async () => {
      const [ssm, sm] = await Promise.all([
        import('@aws-sdk/client-ssm'),
        import('@aws-sdk/client-secrets-manager'),
      ]);
      return createSecretsApi(
        ssm,
        client(new ssm.SSMClient(config)),
        sm,
        client(new sm.SecretsManagerClient(config)),
      );
    }),
    iam: lazy(async () => {
      const { sdk, client: c } = await iamClient();
      return createIamApi(sdk, c);
    }),
    sts: lazy(async () => {
      const [sdk, { fromNodeProviderChain }] = await Promise.all([
        import('@aws-sdk/client-sts'),
        import('@aws-sdk/credential-providers'),
      ]);
      const chain = fromNodeProviderChain(target.profile ? { profile: target.profile } : {});
      return createStsApi(sdk, client(new sdk.STSClient(config)), async () => {
        const c = await chain();
        return {
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
        };
      });
    }),
    rds: lazy(async () => {
      const sdk = await import('@aws-sdk/client-rds');
      return createRdsApi(sdk, client(new sdk.RDSClient(config)));
    }),
    efs: lazy(async () => {
      const sdk = await import('@aws-sdk/client-efs');
      return createEfsApi(sdk, client(new sdk.EFSClient(config)));
    }),
    sqs: lazy(async () => {
      const sdk = await import('@aws-sdk/client-sqs');
      return createSqsApi(sdk, client(new sdk.SQSClient(config)));
    }),
    scaling: lazy(async () => {
      const [aas, cw, ecs] = await Promise.all([
        import('@aws-sdk/client-application-auto-scaling'),
        import('@aws-sdk/client-cloudwatch'),
        import('@aws-sdk/client-ecs'),
      ]);
      return createScalingApi(
        aas,
        client(new aas.ApplicationAutoScalingClient(config)),
        cw,
        client(new cw.CloudWatchClient(config)),
        ecs,
        client(new ecs.ECSClient(config)),
      );
    }),
    destroy() {
      for (const c of clients.splice(0)) c.destroy();
    },
  };
}
