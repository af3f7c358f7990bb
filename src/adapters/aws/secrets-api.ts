// Whether the secrets task definitions reference exist (SSM parameters, Secrets Manager); values are never read.

import type * as SmSdk from '@aws-sdk/client-secrets-manager';
import type * as SsmSdk from '@aws-sdk/client-ssm';
import type { SecretsApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

export function createSecretsApi(
  ssmSdk: typeof SsmSdk,
  ssmClient: SsmSdk.SSMClient,
  smSdk: typeof SmSdk,
  smClient: SmSdk.SecretsManagerClient,
): SecretsApi {
  return {
    async missingParameters(names) {
      const missing: string[] = [];
      for (let i = 0; i < names.length; i += 10) {
        const r = await call('look up SSM parameters', () =>
          // Only InvalidParameters is used; values stay encrypted (no WithDecryption) and unread.
          ssmClient.send(new ssmSdk.GetParametersCommand({ Names: names.slice(i, i + 10) })),
        );
        missing.push(...(r.InvalidParameters ?? []));
      }
      return missing;
    },
    async secretExists(id) {
      return call(`look up secret ${id}`, async () => {
        try {
          await smClient.send(new smSdk.DescribeSecretCommand({ SecretId: id }));
          return true;
        } catch (e) {
          if ((e as { name?: string }).name === 'ResourceNotFoundException') return false;
          throw e;
        }
      });
    },
  };
}
