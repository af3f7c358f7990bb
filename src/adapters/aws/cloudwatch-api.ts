// Amazon CloudWatch: the stack's dashboard and alarms (created or replaced as planned,
// found by their name prefix when removed), and metric values for `mlship top` on ECS.

import type * as CwSdk from '@aws-sdk/client-cloudwatch';
import type { AlarmSpec, CloudWatchApi, MetricRef, MetricSeriesQuery } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';
import { keyValueTags, type Tags } from './tags.js';

const dimensions = (m: MetricRef) => Object.entries(m.dimensions).map(([Name, Value]) => ({ Name, Value }));
/** A percentile (p99, p99.9) is an extended statistic; the rest are statistics. */
const isPercentile = (stat: string) => /^p\d+(\.\d+)?$/.test(stat);

export function alarmInput(spec: AlarmSpec, tags: Tags = {}): CwSdk.PutMetricAlarmCommandInput {
  const common = {
    AlarmName: spec.name,
    AlarmDescription: spec.description,
    ActionsEnabled: spec.actions.length > 0,
    AlarmActions: spec.actions,
    OKActions: spec.actions,
    ComparisonOperator: spec.comparison,
    Threshold: spec.threshold,
    EvaluationPeriods: spec.evaluationPeriods,
    DatapointsToAlarm: spec.datapointsToAlarm,
    TreatMissingData: spec.treatMissingData,
    Tags: keyValueTags({ ...tags, ...spec.tags }),
  };
  if (spec.metric) {
    const m = spec.metric;
    return {
      ...common,
      Namespace: m.namespace,
      MetricName: m.name,
      Dimensions: dimensions(m),
      Period: spec.periodSeconds,
      ...(isPercentile(m.statistic)
        ? { ExtendedStatistic: m.statistic }
        : { Statistic: m.statistic as CwSdk.Statistic }),
    };
  }
  const math = spec.math!;
  return {
    ...common,
    Metrics: [
      ...Object.entries(math.metrics).map(([Id, m]) => ({
        Id,
        MetricStat: {
          Metric: { Namespace: m.namespace, MetricName: m.name, Dimensions: dimensions(m) },
          Period: spec.periodSeconds,
          Stat: m.statistic,
        },
        ReturnData: false,
      })),
      { Id: 'result', Expression: math.expression, Label: math.label, ReturnData: true },
    ],
  };
}

/** GetMetricData's request for up to 500 queries, newest values first (exported for the model check). */
export function metricDataInput(
  queries: MetricSeriesQuery[],
  startMs: number,
  endMs: number,
  nextToken?: string,
): CwSdk.GetMetricDataCommandInput {
  return {
    MetricDataQueries: queries.map((q) => ({
      Id: q.id,
      MetricStat: {
        Metric: {
          Namespace: q.metric.namespace,
          MetricName: q.metric.name,
          Dimensions: dimensions(q.metric),
        },
        Period: q.periodSeconds,
        Stat: q.statistic,
      },
      ReturnData: true,
    })),
    StartTime: new Date(startMs),
    EndTime: new Date(endMs),
    ScanBy: 'TimestampDescending',
    ...(nextToken ? { NextToken: nextToken } : {}),
  };
}

export function createCloudWatchApi(
  cwSdk: typeof CwSdk,
  cwClient: CwSdk.CloudWatchClient,
  tags: Tags = {},
): CloudWatchApi {
  return {
    async putDashboard(name, body) {
      await call(`put dashboard ${name}`, () =>
        cwClient.send(
          new cwSdk.PutDashboardCommand({ DashboardName: name, DashboardBody: JSON.stringify(body) }),
        ),
      );
    },
    async deleteDashboards(names) {
      const existing = new Set<string>();
      for (const name of names) {
        const r = await call(`list dashboards ${name}`, () =>
          cwClient.send(new cwSdk.ListDashboardsCommand({ DashboardNamePrefix: name })),
        );
        for (const d of r.DashboardEntries ?? []) if (d.DashboardName === name) existing.add(name);
      }
      if (existing.size)
        await call('delete dashboards', () =>
          cwClient.send(new cwSdk.DeleteDashboardsCommand({ DashboardNames: [...existing] })),
        );
      return [...existing];
    },
    async putAlarm(spec) {
      await call(`put alarm ${spec.name}`, () =>
        cwClient.send(new cwSdk.PutMetricAlarmCommand(alarmInput(spec, tags))),
      );
    },
    async alarmNames(prefix) {
      const names: string[] = [];
      let NextToken: string | undefined;
      do {
        const r = await call(`describe alarms ${prefix}*`, () =>
          cwClient.send(new cwSdk.DescribeAlarmsCommand({ AlarmNamePrefix: prefix, NextToken })),
        );
        for (const a of [...(r.MetricAlarms ?? []), ...(r.CompositeAlarms ?? [])])
          if (a.AlarmName) names.push(a.AlarmName);
        NextToken = r.NextToken;
      } while (NextToken);
      return names;
    },
    async deleteAlarms(names) {
      for (let i = 0; i < names.length; i += 100) {
        const batch = names.slice(i, i + 100);
        await call('delete alarms', () =>
          cwClient.send(new cwSdk.DeleteAlarmsCommand({ AlarmNames: batch })),
        );
      }
    },
    async metricData(queries, startMs, endMs) {
      const out: Record<string, number[]> = Object.fromEntries(queries.map((q) => [q.id, []]));
      // GetMetricData takes at most 500 queries a call.
      for (let i = 0; i < queries.length; i += 500) {
        let NextToken: string | undefined;
        do {
          const r = await call('get metric data', () =>
            cwClient.send(
              new cwSdk.GetMetricDataCommand(
                metricDataInput(queries.slice(i, i + 500), startMs, endMs, NextToken),
              ),
            ),
          );
          for (const d of r.MetricDataResults ?? [])
            if (d.Id) out[d.Id] = [...(out[d.Id] ?? []), ...(d.Values ?? [])];
          NextToken = r.NextToken;
        } while (NextToken);
      }
      return out;
    },
  };
}
