// How a queue worker scales on ECS, as data: Application Auto Scaling keeps the backlog per
// task (waiting items / running tasks, metric math over SQS's ApproximateNumberOfMessagesVisible
// and Container Insights' RunningTaskCount, which mlship's clusters enable) at the worker's
// `backlog_per_task`. Target tracking alone never leaves 0 tasks: with none running, backlog
// per task has no value, and its alarm wants the metric *above* the target, which one waiting
// item never is (AWS Copilot's worker services stay at 0 for that reason, copilot-cli #3376).
// So a minimum-0 worker also gets a step policy on its own alarm: a waiting item while no task
// runs (>= 1, not > 1) starts one task, and target tracking takes over from there.

import type { MetricQuery, WorkerScalingSpec } from './aws-apis.js';
import { awsName } from './names.js';
import type { ManagedQueue } from './queues.js';

function queueMetrics(cluster: string, q: ManagedQueue): MetricQuery[] {
  return [
    {
      id: 'waiting',
      label: 'items waiting in the queue',
      metric: {
        namespace: 'AWS/SQS',
        name: 'ApproximateNumberOfMessagesVisible',
        dimensions: { QueueName: q.name },
        stat: 'Sum',
      },
      returnData: false,
    },
    {
      id: 'running',
      label: 'running tasks of the worker',
      metric: {
        namespace: 'ECS/ContainerInsights',
        name: 'RunningTaskCount',
        dimensions: { ClusterName: cluster, ServiceName: q.worker },
        stat: 'Average',
      },
      returnData: false,
    },
  ];
}

export function workerScalingSpec(cluster: string, q: ManagedQueue): WorkerScalingSpec {
  const base = awsName(`mlship-${cluster}-${q.worker}`, 200);
  return {
    cluster,
    service: q.worker,
    minTasks: q.scaling.minTasks,
    maxTasks: q.scaling.maxTasks,
    tracking: {
      policyName: `${base}-backlog-per-task`,
      targetValue: q.scaling.backlogPerTask,
      metrics: [
        ...queueMetrics(cluster, q),
        { id: 'backlog', label: 'backlog per task', expression: 'waiting / running', returnData: true },
      ],
      scaleOutCooldownSeconds: 60,
      // Slower to scale in: a worker that just emptied its queue often gets the next batch soon.
      scaleInCooldownSeconds: 300,
    },
    ...(q.scaling.minTasks === 0
      ? {
          fromZero: {
            policyName: `${base}-start-from-zero`,
            alarmName: `${base}-items-waiting-no-task`,
            threshold: 1,
            metrics: [
              ...queueMetrics(cluster, q),
              {
                id: 'waiting_without_task',
                label: 'items waiting while no task runs',
                expression: 'IF(FILL(running, 0) < 1, waiting, 0)',
                returnData: true,
              },
            ],
          },
        }
      : {}),
  };
}
