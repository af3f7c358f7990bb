// The AWS APIs of `mlship deploy ecs`: the SDK clients for one region (and profile or
// endpoint), each wrapped by the file that implements the interface the deploy core
// declares (core/deploy/aws-apis.ts). SDK errors become typed mlship errors
// (aws-call.ts); credentials are never logged. The SDK is imported only when a deploy runs.

import type { AwsDeployApis, AwsTarget } from '../../core/deploy/aws-apis.js';
import { createAcmApi } from './acm-api.js';
import { createEc2Api } from './ec2-api.js';
import { createEcrApi } from './ecr-api.js';
import { createEcsApi } from './ecs-api.js';
import { createElbApi } from './elb-api.js';
import { createGpuCapacityApi } from './gpu-capacity-api.js';
import { createIamApi } from './iam-api.js';
import { createLogsApi } from './logs-api.js';
import { createSecretsApi } from './secrets-api.js';

export async function createDeployApis(target: AwsTarget): Promise<AwsDeployApis> {
  const [ecrSdk, ecsSdk, logsSdk, ec2Sdk, ssmSdk, smSdk, iamSdk, elbSdk, acmSdk, asgSdk] = await Promise.all([
    import('@aws-sdk/client-ecr'),
    import('@aws-sdk/client-ecs'),
    import('@aws-sdk/client-cloudwatch-logs'),
    import('@aws-sdk/client-ec2'),
    import('@aws-sdk/client-ssm'),
    import('@aws-sdk/client-secrets-manager'),
    import('@aws-sdk/client-iam'),
    import('@aws-sdk/client-elastic-load-balancing-v2'),
    import('@aws-sdk/client-acm'),
    import('@aws-sdk/client-auto-scaling'),
  ]);
  const config = {
    region: target.region,
    ...(target.profile ? { profile: target.profile } : {}),
    ...(target.endpointUrl ? { endpoint: target.endpointUrl } : {}),
  };
  const ecrClient = new ecrSdk.ECRClient(config);
  const ecsClient = new ecsSdk.ECSClient(config);
  const logsClient = new logsSdk.CloudWatchLogsClient(config);
  const ec2Client = new ec2Sdk.EC2Client(config);
  const ssmClient = new ssmSdk.SSMClient(config);
  const smClient = new smSdk.SecretsManagerClient(config);
  const iamClient = new iamSdk.IAMClient(config);
  const elbClient = new elbSdk.ElasticLoadBalancingV2Client(config);
  const acmClient = new acmSdk.ACMClient(config);
  const asgClient = new asgSdk.AutoScalingClient(config);
  const ecr = createEcrApi(ecrSdk, ecrClient);
  const ecs = createEcsApi(ecsSdk, ecsClient);
  const logs = createLogsApi(logsSdk, logsClient);
  const ec2 = createEc2Api(ec2Sdk, ec2Client);
  const elb = createElbApi(elbSdk, elbClient);
  const acm = createAcmApi(acmSdk, acmClient);
  const gpu = createGpuCapacityApi(
    ecsSdk,
    ecsClient,
    ec2Sdk,
    ec2Client,
    ssmSdk,
    ssmClient,
    iamSdk,
    iamClient,
    asgSdk,
    asgClient,
  );
  const secrets = createSecretsApi(ssmSdk, ssmClient, smSdk, smClient);
  const iam = createIamApi(iamSdk, iamClient);

  return {
    ecr,
    ecs,
    logs,
    ec2,
    elb,
    acm,
    gpu,
    secrets,
    iam,
    destroy() {
      for (const c of [
        ecrClient,
        ecsClient,
        logsClient,
        ec2Client,
        ssmClient,
        smClient,
        iamClient,
        elbClient,
        acmClient,
        asgClient,
      ])
        c.destroy();
    },
  };
}
