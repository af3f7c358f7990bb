// CloudWatch Logs: the stack's log group and its retention.

import type * as LogsSdk from '@aws-sdk/client-cloudwatch-logs';
import type { LogsApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

export function createLogsApi(logsSdk: typeof LogsSdk, logsClient: LogsSdk.CloudWatchLogsClient): LogsApi {
  return {
    async ensureLogGroup(name, retentionDays) {
      const created = await call(`create log group ${name}`, async () => {
        try {
          await logsClient.send(
            new logsSdk.CreateLogGroupCommand({ logGroupName: name, tags: { 'mlship:managed': 'true' } }),
          );
          return true;
        } catch (e) {
          if ((e as { name?: string }).name === 'ResourceAlreadyExistsException') return false;
          throw e;
        }
      });
      await call(`set retention of ${name}`, () =>
        logsClient.send(
          new logsSdk.PutRetentionPolicyCommand({ logGroupName: name, retentionInDays: retentionDays }),
        ),
      );
      return { created };
    },
  };
}
