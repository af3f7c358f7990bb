// Whether the secrets task definitions reference exist (SSM parameters, Secrets Manager). Values
// are read only to run a stack's tasks locally (`deploy ecs --local`), and never logged.

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
    async value(valueFrom) {
      if (valueFrom.startsWith('arn:aws:secretsmanager:') || valueFrom.startsWith('arn:aws-')) {
        // arn:aws:secretsmanager:region:account:secret:name[:json-key[:version-stage[:version-id]]]
        const parts = valueFrom.split(':');
        const id = parts.slice(0, 7).join(':');
        const [jsonKey, stage, versionId] = parts.slice(7);
        const r = await call(`read secret ${parts[6]}`, () =>
          smClient.send(
            new smSdk.GetSecretValueCommand({
              SecretId: id,
              ...(stage ? { VersionStage: stage } : {}),
              ...(versionId ? { VersionId: versionId } : {}),
            }),
          ),
        );
        const text = r.SecretString ?? Buffer.from(r.SecretBinary ?? []).toString('utf8');
        if (!jsonKey) return text;
        const v = (JSON.parse(text) as Record<string, unknown>)[jsonKey];
        return typeof v === 'string' ? v : JSON.stringify(v);
      }
      const name = valueFrom.startsWith('arn:')
        ? valueFrom.slice(valueFrom.indexOf(':parameter') + 10)
        : valueFrom;
      // Hierarchical names keep their leading slash; a plain name has none.
      const param = name.slice(1).includes('/') ? name : name.replace(/^\//, '');
      const r = await call(`read SSM parameter ${param}`, () =>
        ssmClient.send(new ssmSdk.GetParameterCommand({ Name: param, WithDecryption: true })),
      );
      return r.Parameter?.Value ?? '';
    },
    async jsonSecret(name) {
      return call(`read secret ${name}`, async () => {
        try {
          const r = await smClient.send(new smSdk.GetSecretValueCommand({ SecretId: name }));
          return JSON.parse(r.SecretString ?? '{}') as Record<string, string>;
        } catch (e) {
          if ((e as { name?: string }).name === 'ResourceNotFoundException') return undefined;
          throw e;
        }
      });
    },
    async putJsonSecret(name, value, tags) {
      return call(`store secret ${name}`, async () => {
        const text = JSON.stringify(value);
        try {
          await smClient.send(new smSdk.PutSecretValueCommand({ SecretId: name, SecretString: text }));
          return 'updated' as const;
        } catch (e) {
          if ((e as { name?: string }).name !== 'ResourceNotFoundException') throw e;
        }
        await smClient.send(
          new smSdk.CreateSecretCommand({
            Name: name,
            SecretString: text,
            Description: 'mlship: connection settings of the stack database',
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          }),
        );
        return 'created' as const;
      });
    },
    async createParameter(name, value, tags) {
      return call(`create SSM parameter ${name}`, async () => {
        try {
          await ssmClient.send(
            new ssmSdk.PutParameterCommand({
              Name: name,
              Value: value,
              Type: 'SecureString',
              Overwrite: false,
              Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
            }),
          );
          return 'created' as const;
        } catch (e) {
          if ((e as { name?: string }).name === 'ParameterAlreadyExists') return 'exists' as const;
          throw e;
        }
      });
    },
    async deleteSecret(name) {
      return call(`delete secret ${name}`, async () => {
        try {
          await smClient.send(new smSdk.DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7 }));
          return true;
        } catch (e) {
          const err = e as { name?: string; message?: string };
          if (err.name === 'ResourceNotFoundException') return false;
          // Already scheduled for deletion by an earlier run: nothing more to do.
          if (
            err.name === 'InvalidRequestException' &&
            /marked deleted|scheduled for deletion/i.test(err.message ?? '')
          )
            return false;
          throw e;
        }
      });
    },
  };
}
