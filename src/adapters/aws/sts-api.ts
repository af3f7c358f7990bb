// STS: the credentials local containers run with (`deploy ecs --local`): the task role's,
// assumed, so the containers can do what the tasks may do on AWS and no more; else the
// credentials in use. Never logged or written.

import type * as StsSdk from '@aws-sdk/client-sts';
import type { AwsCredentials, StsApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

export function createStsApi(
  stsSdk: typeof StsSdk,
  client: StsSdk.STSClient,
  chain: () => Promise<AwsCredentials>,
): StsApi {
  return {
    async assumeRole(roleArn, sessionName) {
      try {
        const r = await client.send(
          new stsSdk.AssumeRoleCommand({
            RoleArn: roleArn,
            RoleSessionName: sessionName,
            DurationSeconds: 3600,
          }),
        );
        const c = r.Credentials;
        if (!c?.AccessKeyId || !c.SecretAccessKey) return undefined;
        return {
          accessKeyId: c.AccessKeyId,
          secretAccessKey: c.SecretAccessKey,
          ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}),
        };
      } catch (e) {
        // The role trusts ECS tasks only (as it should): these credentials may not assume it.
        if ((e as { name?: string }).name === 'AccessDenied') return undefined;
        return call(`assume role ${roleArn}`, () => Promise.reject(e));
      }
    },
    callerCredentials: chain,
  };
}
