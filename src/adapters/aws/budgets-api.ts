// AWS Budgets: the stack's monthly cost budget, filtered by its cost-allocation tag, with
// forecast alerts e-mailed at the planned percentages. Created once, then kept to the spec
// (amount, filter, the set of notifications) on every apply.

import type * as BudgetsSdk from '@aws-sdk/client-budgets';
import type { BudgetSpec, BudgetsApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';
import { keyValueTags, type Tags } from './tags.js';

/** Cost Explorer names a user-defined cost-allocation tag "user:<key>", and its filter "user:<key>$<value>". */
export const tagFilter = (spec: BudgetSpec) => `user:${spec.tag.key}$${spec.tag.value}`;

export function budgetOf(spec: BudgetSpec): BudgetsSdk.Budget {
  return {
    BudgetName: spec.name,
    BudgetLimit: { Amount: spec.monthlyUsd.toFixed(2), Unit: 'USD' },
    TimeUnit: 'MONTHLY',
    BudgetType: 'COST',
    CostFilters: { TagKeyValue: [tagFilter(spec)] },
  };
}

const notification = (percent: number): BudgetsSdk.Notification => ({
  NotificationType: 'FORECASTED',
  ComparisonOperator: 'GREATER_THAN',
  Threshold: percent,
  ThresholdType: 'PERCENTAGE',
});

export function createBudgetsApi(
  sdk: typeof BudgetsSdk,
  client: BudgetsSdk.BudgetsClient,
  tags: Tags = {},
): BudgetsApi {
  const subscribers = (spec: BudgetSpec): BudgetsSdk.Subscriber[] =>
    spec.email ? [{ SubscriptionType: 'EMAIL', Address: spec.email }] : [];
  async function describe(accountId: string, name: string) {
    return call(`describe budget ${name}`, async () => {
      try {
        return (await client.send(new sdk.DescribeBudgetCommand({ AccountId: accountId, BudgetName: name })))
          .Budget;
      } catch (e) {
        if ((e as { name?: string }).name === 'NotFoundException') return undefined;
        throw e;
      }
    });
  }
  return {
    async ensureBudget(spec) {
      const existing = await describe(spec.accountId, spec.name);
      if (!existing) {
        await call(`create budget ${spec.name}`, () =>
          client.send(
            new sdk.CreateBudgetCommand({
              AccountId: spec.accountId,
              Budget: budgetOf(spec),
              ...(spec.email
                ? {
                    NotificationsWithSubscribers: spec.forecastPercents.map((p) => ({
                      Notification: notification(p),
                      Subscribers: subscribers(spec),
                    })),
                  }
                : {}),
              ResourceTags: keyValueTags(tags),
            }),
          ),
        );
        return { created: true, changed: [] };
      }
      const changed: string[] = [];
      const amount = Number(existing.BudgetLimit?.Amount ?? 0);
      const filter = existing.CostFilters?.TagKeyValue ?? [];
      if (Math.abs(amount - spec.monthlyUsd) > 0.005 || filter.join() !== tagFilter(spec)) {
        await call(`update budget ${spec.name}`, () =>
          client.send(new sdk.UpdateBudgetCommand({ AccountId: spec.accountId, NewBudget: budgetOf(spec) })),
        );
        changed.push('amount and filter');
      }
      const current = await call(`read the notifications of budget ${spec.name}`, () =>
        client.send(
          new sdk.DescribeNotificationsForBudgetCommand({ AccountId: spec.accountId, BudgetName: spec.name }),
        ),
      );
      const have = (current.Notifications ?? []).filter((n) => n.NotificationType === 'FORECASTED');
      const want = spec.email ? spec.forecastPercents : [];
      for (const n of have) {
        if (want.includes(n.Threshold ?? -1)) continue;
        await call(`delete a notification of budget ${spec.name}`, () =>
          client.send(
            new sdk.DeleteNotificationCommand({
              AccountId: spec.accountId,
              BudgetName: spec.name,
              Notification: n,
            }),
          ),
        );
        changed.push(`removed the ${n.Threshold}% alert`);
      }
      for (const p of want) {
        if (have.some((n) => n.Threshold === p)) continue;
        await call(`add a ${p}% alert to budget ${spec.name}`, () =>
          client.send(
            new sdk.CreateNotificationCommand({
              AccountId: spec.accountId,
              BudgetName: spec.name,
              Notification: notification(p),
              Subscribers: subscribers(spec),
            }),
          ),
        );
        changed.push(`added the ${p}% alert`);
      }
      return { created: false, changed };
    },
    async deleteBudget(accountId, name) {
      if (!(await describe(accountId, name))) return false;
      await call(`delete budget ${name}`, () =>
        client.send(new sdk.DeleteBudgetCommand({ AccountId: accountId, BudgetName: name })),
      );
      return true;
    },
  };
}
