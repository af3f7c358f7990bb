// Application Auto Scaling for the queue workers (a scalable target, a target tracking policy on
// a metric math expression, a step policy) and the CloudWatch alarm that drives the step policy;
// FARGATE_SPOT on the cluster for Spot workers. Policies and the alarm are written every time
// (PutScalingPolicy and PutMetricAlarm replace what exists), after comparing, so `changed` says
// what a re-run corrected.

import type * as AasSdk from '@aws-sdk/client-application-auto-scaling';
import type * as CwSdk from '@aws-sdk/client-cloudwatch';
import type * as EcsSdk from '@aws-sdk/client-ecs';
import type { MetricQuery, ScalingApi, WorkerScalingSpec } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

const NAMESPACE = 'ecs';
const DIMENSION = 'ecs:service:DesiredCount';
const resourceOf = (cluster: string, service: string) => `service/${cluster}/${service}`;

function dimensionsOf(d: Record<string, string>) {
  return Object.entries(d).map(([Name, Value]) => ({ Name, Value }));
}

/**
 * A metric math query in the shape Application Auto Scaling's target tracking and CloudWatch's
 * alarms share (alarms add a period to the statistic), typed by neither SDK so both accept it.
 */
function metricQuery<Extra extends object>(q: MetricQuery, statExtra: Extra) {
  return {
    Id: q.id,
    ...(q.label ? { Label: q.label } : {}),
    ...(q.expression ? { Expression: q.expression } : {}),
    ...(q.metric
      ? {
          MetricStat: {
            Metric: {
              Namespace: q.metric.namespace,
              MetricName: q.metric.name,
              Dimensions: dimensionsOf(q.metric.dimensions),
            },
            Stat: q.metric.stat,
            ...statExtra,
          },
        }
      : {}),
    ReturnData: q.returnData,
  };
}

/** Target tracking's form of a metric math query. */
const trackingMetric = (q: MetricQuery): AasSdk.TargetTrackingMetricDataQuery => metricQuery(q, {});

/** An alarm's form of the same query (one-minute periods). */
const alarmMetric = (q: MetricQuery): CwSdk.MetricDataQuery => metricQuery(q, { Period: 60 });

export function createScalingApi(
  aas: typeof AasSdk,
  aasClient: AasSdk.ApplicationAutoScalingClient,
  cw: typeof CwSdk,
  cwClient: CwSdk.CloudWatchClient,
  ecs: typeof EcsSdk,
  ecsClient: EcsSdk.ECSClient,
): ScalingApi {
  async function target(spec: WorkerScalingSpec) {
    const r = await call(`describe the scaling of ${spec.service}`, () =>
      aasClient.send(
        new aas.DescribeScalableTargetsCommand({
          ServiceNamespace: NAMESPACE,
          ResourceIds: [resourceOf(spec.cluster, spec.service)],
          ScalableDimension: DIMENSION,
        }),
      ),
    );
    return r.ScalableTargets?.[0];
  }

  async function policies(cluster: string, service: string) {
    const r = await call(`describe the scaling policies of ${service}`, () =>
      aasClient.send(
        new aas.DescribeScalingPoliciesCommand({
          ServiceNamespace: NAMESPACE,
          ResourceId: resourceOf(cluster, service),
          ScalableDimension: DIMENSION,
        }),
      ),
    );
    return r.ScalingPolicies ?? [];
  }

  return {
    async ensureWorkerScaling(spec) {
      const resource = resourceOf(spec.cluster, spec.service);
      const before = await target(spec);
      const changed: string[] = [];
      if (!before || before.MinCapacity !== spec.minTasks || before.MaxCapacity !== spec.maxTasks) {
        await call(`register ${spec.service} with Application Auto Scaling`, () =>
          aasClient.send(
            new aas.RegisterScalableTargetCommand({
              ServiceNamespace: NAMESPACE,
              ResourceId: resource,
              ScalableDimension: DIMENSION,
              MinCapacity: spec.minTasks,
              MaxCapacity: spec.maxTasks,
            }),
          ),
        );
        if (before) changed.push('task bounds');
      }
      const existing = await policies(spec.cluster, spec.service);
      const tracking: AasSdk.TargetTrackingScalingPolicyConfiguration = {
        TargetValue: spec.tracking.targetValue,
        CustomizedMetricSpecification: { Metrics: spec.tracking.metrics.map(trackingMetric) },
        ScaleOutCooldown: spec.tracking.scaleOutCooldownSeconds,
        ScaleInCooldown: spec.tracking.scaleInCooldownSeconds,
      };
      const had = existing.find((p) => p.PolicyName === spec.tracking.policyName);
      if (had && had.TargetTrackingScalingPolicyConfiguration?.TargetValue !== tracking.TargetValue)
        changed.push('backlog per task');
      await call(`put the backlog-per-task policy of ${spec.service}`, () =>
        aasClient.send(
          new aas.PutScalingPolicyCommand({
            PolicyName: spec.tracking.policyName,
            ServiceNamespace: NAMESPACE,
            ResourceId: resource,
            ScalableDimension: DIMENSION,
            PolicyType: 'TargetTrackingScaling',
            TargetTrackingScalingPolicyConfiguration: tracking,
          }),
        ),
      );
      if (spec.fromZero) {
        const z = spec.fromZero;
        const step = await call(`put the start-from-zero policy of ${spec.service}`, () =>
          aasClient.send(
            new aas.PutScalingPolicyCommand({
              PolicyName: z.policyName,
              ServiceNamespace: NAMESPACE,
              ResourceId: resource,
              ScalableDimension: DIMENSION,
              PolicyType: 'StepScaling',
              StepScalingPolicyConfiguration: {
                AdjustmentType: 'ChangeInCapacity',
                StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
                Cooldown: 60,
                MetricAggregationType: 'Maximum',
              },
            }),
          ),
        );
        await call(`put alarm ${z.alarmName}`, () =>
          cwClient.send(
            new cw.PutMetricAlarmCommand({
              AlarmName: z.alarmName,
              AlarmDescription: `mlship: starts a task of ${spec.service} when an item waits and none runs`,
              Metrics: z.metrics.map(alarmMetric),
              // >= 1, not > 1: one waiting item is enough (copilot-cli #3376).
              ComparisonOperator: 'GreaterThanOrEqualToThreshold',
              Threshold: z.threshold,
              EvaluationPeriods: 1,
              DatapointsToAlarm: 1,
              TreatMissingData: 'notBreaching',
              AlarmActions: [step.PolicyARN!],
            }),
          ),
        );
      }
      return { created: !before, changed };
    },
    async removeWorkerScaling(cluster, service, alarmName) {
      if (alarmName) {
        await call(`delete alarm ${alarmName}`, () =>
          cwClient.send(new cw.DeleteAlarmsCommand({ AlarmNames: [alarmName] })),
        );
      }
      const exists = await call(`describe the scaling of ${service}`, () =>
        aasClient.send(
          new aas.DescribeScalableTargetsCommand({
            ServiceNamespace: NAMESPACE,
            ResourceIds: [resourceOf(cluster, service)],
            ScalableDimension: DIMENSION,
          }),
        ),
      );
      if (!exists.ScalableTargets?.length) return false;
      // Deregistering the target deletes its policies too.
      await call(`deregister ${service} from Application Auto Scaling`, () =>
        aasClient.send(
          new aas.DeregisterScalableTargetCommand({
            ServiceNamespace: NAMESPACE,
            ResourceId: resourceOf(cluster, service),
            ScalableDimension: DIMENSION,
          }),
        ),
      );
      return true;
    },
    async ensureFargateSpot(cluster) {
      const r = await call(`describe cluster ${cluster}`, () =>
        ecsClient.send(new ecs.DescribeClustersCommand({ clusters: [cluster] })),
      );
      const providers = r.clusters?.[0]?.capacityProviders ?? [];
      if (providers.includes('FARGATE_SPOT')) return { added: false };
      await call(`add FARGATE_SPOT to cluster ${cluster}`, () =>
        ecsClient.send(
          new ecs.PutClusterCapacityProvidersCommand({
            cluster,
            capacityProviders: [...new Set([...providers, 'FARGATE', 'FARGATE_SPOT'])],
            defaultCapacityProviderStrategy: r.clusters?.[0]?.defaultCapacityProviderStrategy ?? [],
          }),
        ),
      );
      return { added: true };
    },
  };
}
