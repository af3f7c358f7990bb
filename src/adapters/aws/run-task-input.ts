// The RunTask request of a one-off task (`mlship data push` restores the database with one):
// Fargate in the stack's subnets and security groups, environment overrides per container.
// A module of its own so the request is checked against botocore's model in the tests.

import type { RunTaskCommandInput } from '@aws-sdk/client-ecs';
import type { RunTaskSpec } from '../../core/deploy/aws-apis.js';

export function runTaskInput(spec: RunTaskSpec): RunTaskCommandInput {
  const overrides = Object.entries(spec.environment ?? {}).map(([name, env]) => ({
    name,
    environment: Object.entries(env).map(([k, value]) => ({ name: k, value })),
  }));
  return {
    cluster: spec.cluster,
    taskDefinition: spec.taskDefinition,
    launchType: 'FARGATE',
    count: 1,
    startedBy: spec.startedBy,
    networkConfiguration: {
      awsvpcConfiguration: {
        subnets: spec.subnets,
        securityGroups: spec.securityGroups,
        assignPublicIp: spec.assignPublicIp ? 'ENABLED' : 'DISABLED',
      },
    },
    ...(overrides.length ? { overrides: { containerOverrides: overrides } } : {}),
    ...(spec.tags
      ? {
          tags: Object.entries(spec.tags).map(([key, value]) => ({ key, value })),
          propagateTags: 'TASK_DEFINITION',
        }
      : {}),
  };
}
