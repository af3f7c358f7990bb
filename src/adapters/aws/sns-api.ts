// Amazon SNS: the topic the stack's alarms notify, and the e-mail subscription to it
// (AWS e-mails a confirmation link; until it is followed the subscription is pending).

import type * as SnsSdk from '@aws-sdk/client-sns';
import type { SnsApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';
import { keyValueTags, type Tags } from './tags.js';

export function createSnsApi(snsSdk: typeof SnsSdk, snsClient: SnsSdk.SNSClient, tags: Tags = {}): SnsApi {
  async function findTopic(name: string): Promise<string | undefined> {
    let NextToken: string | undefined;
    do {
      const r = await call('list SNS topics', () =>
        snsClient.send(new snsSdk.ListTopicsCommand({ NextToken })),
      );
      const hit = (r.Topics ?? []).find((t) => t.TopicArn?.endsWith(`:${name}`));
      if (hit?.TopicArn) return hit.TopicArn;
      NextToken = r.NextToken;
    } while (NextToken);
    return undefined;
  }
  return {
    findTopic,
    async ensureTopic(name, extra) {
      const existing = await findTopic(name);
      if (existing) return { arn: existing };
      const r = await call(`create SNS topic ${name}`, () =>
        snsClient.send(
          new snsSdk.CreateTopicCommand({ Name: name, Tags: keyValueTags({ ...tags, ...extra }) }),
        ),
      );
      return { arn: r.TopicArn! };
    },
    async ensureEmailSubscription(topicArn, email) {
      let NextToken: string | undefined;
      do {
        const r = await call('list the topic subscriptions', () =>
          snsClient.send(new snsSdk.ListSubscriptionsByTopicCommand({ TopicArn: topicArn, NextToken })),
        );
        const mine = (r.Subscriptions ?? []).find(
          (s) => s.Protocol === 'email' && s.Endpoint?.toLowerCase() === email.toLowerCase(),
        );
        if (mine) return mine.SubscriptionArn === 'PendingConfirmation' ? 'pending' : 'confirmed';
        NextToken = r.NextToken;
      } while (NextToken);
      await call(`subscribe ${email} to ${topicArn}`, () =>
        snsClient.send(
          new snsSdk.SubscribeCommand({ TopicArn: topicArn, Protocol: 'email', Endpoint: email }),
        ),
      );
      return 'created';
    },
    async deleteTopic(arn) {
      await call(`delete SNS topic ${arn}`, () =>
        snsClient.send(new snsSdk.DeleteTopicCommand({ TopicArn: arn })),
      );
    },
  };
}
