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
    async streamMessages(group, stream) {
      const messages: string[] = [];
      let token: string | undefined;
      for (;;) {
        const r = await call(`read log stream ${stream}`, async () => {
          try {
            return await logsClient.send(
              new logsSdk.GetLogEventsCommand({
                logGroupName: group,
                logStreamName: stream,
                startFromHead: true,
                ...(token ? { nextToken: token } : {}),
              }),
            );
          } catch (e) {
            if ((e as { name?: string }).name === 'ResourceNotFoundException') return undefined;
            throw e;
          }
        });
        if (!r) return messages;
        for (const e of r.events ?? []) if (e.message !== undefined) messages.push(e.message);
        // The last page repeats its token.
        if (!r.nextForwardToken || r.nextForwardToken === token || !r.events?.length) return messages;
        token = r.nextForwardToken;
      }
    },
  };
}
