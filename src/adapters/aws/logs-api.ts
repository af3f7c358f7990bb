// CloudWatch Logs: the stack's log group and its retention; a stream read whole; the
// messages of a service's streams in a time window (what `rollout status` compares on ECS).

import type * as LogsSdk from '@aws-sdk/client-cloudwatch-logs';
import type { LogFilterSpec, LogsApi } from '../../core/deploy/aws-apis.js';
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
    filterMessages: (spec) => filterMessages(logsSdk, logsClient, spec),
  };
}

/** FilterLogEvents, page after page, up to `maxPages`; the events of other streams are dropped. */
async function filterMessages(
  logsSdk: typeof LogsSdk,
  logsClient: LogsSdk.CloudWatchLogsClient,
  spec: LogFilterSpec,
): Promise<{ messages: string[]; truncated: boolean }> {
  const messages: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < spec.maxPages; page++) {
    const r = await call(`read the log group ${spec.group}`, async () => {
      try {
        return await logsClient.send(
          new logsSdk.FilterLogEventsCommand({
            logGroupName: spec.group,
            logStreamNamePrefix: spec.streamPrefix,
            startTime: spec.startMs,
            endTime: spec.endMs,
            ...(token ? { nextToken: token } : {}),
          }),
        );
      } catch (e) {
        if ((e as { name?: string }).name === 'ResourceNotFoundException') return undefined;
        throw e;
      }
    });
    if (!r) return { messages, truncated: false };
    // AWS filters by the prefix already; moto ignores it (and a guard costs nothing).
    for (const e of r.events ?? [])
      if (e.message !== undefined && e.logStreamName?.startsWith(spec.streamPrefix)) messages.push(e.message);
    if (!r.nextToken) return { messages, truncated: false };
    token = r.nextToken;
  }
  return { messages, truncated: true };
}
