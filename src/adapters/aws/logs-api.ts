// CloudWatch Logs: the stack's log group and its retention.

import type * as LogsSdk from '@aws-sdk/client-cloudwatch-logs';
import type { LogsApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';
import { mapTags, type Tags } from './tags.js';

export function createLogsApi(
  logsSdk: typeof LogsSdk,
  logsClient: LogsSdk.CloudWatchLogsClient,
  tags: Tags = {},
): LogsApi {
  return {
    async ensureLogGroup(name, retentionDays) {
      const created = await call(`create log group ${name}`, async () => {
        try {
          await logsClient.send(
            new logsSdk.CreateLogGroupCommand({ logGroupName: name, tags: mapTags(tags) }),
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
