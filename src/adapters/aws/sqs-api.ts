// Amazon SQS (or an SQS-compatible server: ElasticMQ, moto) through the SDK: the queues a
// deploy or a local stack creates (SqsApi, core/deploy/aws-apis.ts) and what `mlship jobs`
// sends and reads (JobQueue, core/jobs/deps.ts). One client for both, so the local stack and
// AWS take the same code path and only the endpoint differs.

import type * as SqsSdk from '@aws-sdk/client-sqs';
import type { QueueSpec, SqsApi } from '../../core/deploy/aws-apis.js';
import type { JobQueue } from '../../core/jobs/deps.js';
import { call } from './aws-call.js';

const missing = (e: unknown) =>
  /QueueDoesNotExist|NonExistentQueue/.test(`${(e as { name?: string }).name} ${(e as Error).message}`);

/** The attributes mlship sets, as SQS stores them (strings). */
function attributesOf(spec: QueueSpec): Record<string, string> {
  return {
    VisibilityTimeout: String(spec.visibilityTimeoutSeconds),
    MessageRetentionPeriod: String(spec.retentionSeconds),
    ...(spec.deadLetter
      ? {
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: spec.deadLetter.arn,
            maxReceiveCount: spec.deadLetter.maxReceiveCount,
          }),
        }
      : {}),
    ...(spec.encrypted ? { SqsManagedSseEnabled: 'true' } : {}),
  };
}

function sameAttribute(name: string, wanted: string, actual: string | undefined): boolean {
  if (name !== 'RedrivePolicy' || actual === undefined) return wanted === actual;
  const a = JSON.parse(actual) as { deadLetterTargetArn?: string; maxReceiveCount?: number | string };
  const w = JSON.parse(wanted) as { deadLetterTargetArn: string; maxReceiveCount: number };
  return a.deadLetterTargetArn === w.deadLetterTargetArn && Number(a.maxReceiveCount) === w.maxReceiveCount;
}

export function createSqsApi(sdk: typeof SqsSdk, client: SqsSdk.SQSClient): SqsApi & JobQueue {
  const queueUrl = async (name: string): Promise<string | undefined> => {
    try {
      const r = await client.send(new sdk.GetQueueUrlCommand({ QueueName: name }));
      return r.QueueUrl;
    } catch (e) {
      if (missing(e)) return undefined;
      return call(`look up queue ${name}`, () => Promise.reject(e));
    }
  };
  const attributes = async (url: string, names: SqsSdk.QueueAttributeName[]) =>
    (
      await call(`read the attributes of ${url}`, () =>
        client.send(new sdk.GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: names })),
      )
    ).Attributes ?? {};
  return {
    queueUrl,
    async ensureQueue(spec) {
      const wanted = attributesOf(spec);
      let url = await queueUrl(spec.name);
      let created = false;
      const changed: string[] = [];
      if (!url) {
        const r = await call(`create queue ${spec.name}`, () =>
          client.send(
            new sdk.CreateQueueCommand({ QueueName: spec.name, Attributes: wanted, tags: spec.tags }),
          ),
        );
        url = r.QueueUrl!;
        created = true;
      } else {
        const actual = await attributes(url, Object.keys(wanted) as SqsSdk.QueueAttributeName[]);
        const fix = Object.fromEntries(
          Object.entries(wanted).filter(
            ([k, v]) => !sameAttribute(k, v, (actual as Record<string, string | undefined>)[k]),
          ),
        );
        if (Object.keys(fix).length) {
          await call(`correct queue ${spec.name}`, () =>
            client.send(new sdk.SetQueueAttributesCommand({ QueueUrl: url, Attributes: fix })),
          );
          changed.push(...Object.keys(fix));
        }
      }
      const arn = (await attributes(url, ['QueueArn'])).QueueArn!;
      return { url, arn, created, changed };
    },
    async deleteQueue(name) {
      const url = await queueUrl(name);
      if (!url) return false;
      await call(`delete queue ${name}`, () => client.send(new sdk.DeleteQueueCommand({ QueueUrl: url })));
      return true;
    },
    async sendBatch(url, entries) {
      const r = await call(`send ${entries.length} item(s) to ${url}`, () =>
        client.send(
          new sdk.SendMessageBatchCommand({
            QueueUrl: url,
            Entries: entries.map((e) => ({ Id: e.id, MessageBody: e.body })),
          }),
        ),
      );
      return (r.Failed ?? []).map((f) => ({ id: f.Id!, reason: `${f.Code}: ${f.Message ?? ''}` }));
    },
    async counts(url) {
      const a = await attributes(url, [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
      ]);
      return {
        visible: Number(a.ApproximateNumberOfMessages ?? 0),
        inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
      };
    },
    async receive(url, max, waitSeconds, visibilitySeconds) {
      const r = await call(`receive from ${url}`, () =>
        client.send(
          new sdk.ReceiveMessageCommand({
            QueueUrl: url,
            MaxNumberOfMessages: Math.min(10, max),
            WaitTimeSeconds: waitSeconds,
            VisibilityTimeout: visibilitySeconds,
          }),
        ),
      );
      return (r.Messages ?? []).map((m) => ({ receipt: m.ReceiptHandle!, body: m.Body ?? '' }));
    },
    async deleteBatch(url, receipts) {
      for (let i = 0; i < receipts.length; i += 10) {
        const chunk = receipts.slice(i, i + 10);
        await call(`delete ${chunk.length} message(s) from ${url}`, () =>
          client.send(
            new sdk.DeleteMessageBatchCommand({
              QueueUrl: url,
              Entries: chunk.map((r, j) => ({ Id: String(j), ReceiptHandle: r })),
            }),
          ),
        );
      }
    },
    async release(url, receipts) {
      for (let i = 0; i < receipts.length; i += 10) {
        const chunk = receipts.slice(i, i + 10);
        await call(`release ${chunk.length} message(s) of ${url}`, () =>
          client.send(
            new sdk.ChangeMessageVisibilityBatchCommand({
              QueueUrl: url,
              Entries: chunk.map((r, j) => ({ Id: String(j), ReceiptHandle: r, VisibilityTimeout: 0 })),
            }),
          ),
        );
      }
    },
  };
}
