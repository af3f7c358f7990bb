// The IAM roles a stack's tasks run with, when the user names none (`--execution-role-arn`,
// `--task-role-arn`, aws.*_role_arn): mlship creates and owns two per stack, each allowed
// only what the stack needs. The execution role pulls images, writes logs and reads the
// stack's own secrets; the task role reads the stack's weights (only their prefix) and,
// as the stack grows, its bucket and queues. Policies are built here as data; the apply
// makes the roles match them.

import type { RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import type { PolicyDocument, ServiceRoleSpec } from './aws-apis.js';
import { awsName } from './names.js';
import { WEIGHTS_PREFIX, type WeightsPlan } from './weights.js';

export const TASK_EXECUTION_POLICY = 'arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy';

export function roleNames(stack: string) {
  return {
    execution: awsName(`mlship-${stack}-execution`, 64),
    task: awsName(`mlship-${stack}-task`, 64),
  };
}

export const roleArn = (accountId: string, name: string) => `arn:aws:iam::${accountId}:role/${name}`;

/** What the stack's task role must be allowed (each addition is one statement). */
export interface TaskRoleNeeds {
  weights: WeightsPlan[];
  /** The stack's files (storage:): read and write the bucket's objects, except mlship's own. */
  bucketAccess?: { bucket: string };
  /** The job queues the workers consume (ARNs): receive, delete, extend; nothing else. */
  queues?: string[];
}

function s3ObjectArn(url: string): string | undefined {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  return m ? `arn:aws:s3:::${m[1]}/${m[2]}` : undefined;
}

/** The task role's inline policies: read the weights (and nothing else of the bucket). */
export function taskRolePolicies(needs: TaskRoleNeeds): Record<string, PolicyDocument> {
  const policies: Record<string, PolicyDocument> = {};
  const uploaded = [...new Set(needs.weights.flatMap((w) => (w.upload ? [w.upload.bucket] : [])))];
  const elsewhere = needs.weights.flatMap((w) => (w.upload ? [] : [s3ObjectArn(w.url)].filter(Boolean)));
  const resources = [
    ...uploaded.map((b) => `arn:aws:s3:::${b}/${WEIGHTS_PREFIX}/*`),
    ...(elsewhere as string[]),
  ];
  if (resources.length) {
    policies['mlship-weights'] = {
      Version: '2012-10-17',
      Statement: [{ Sid: 'ReadModelWeights', Effect: 'Allow', Action: 's3:GetObject', Resource: resources }],
    };
  }
  if (needs.bucketAccess) {
    const { bucket } = needs.bucketAccess;
    policies['mlship-storage'] = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'ListStackBucket',
          Effect: 'Allow',
          Action: 's3:ListBucket',
          Resource: `arn:aws:s3:::${bucket}`,
        },
        {
          Sid: 'ReadWriteStackObjects',
          Effect: 'Allow',
          Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
          Resource: `arn:aws:s3:::${bucket}/*`,
        },
        {
          // mlship's own objects (weights, staged dumps) are not the application's to change.
          Sid: 'KeepMlshipObjects',
          Effect: 'Deny',
          Action: ['s3:PutObject', 's3:DeleteObject'],
          Resource: `arn:aws:s3:::${bucket}/mlship/*`,
        },
      ],
    };
  }
  if (needs.queues?.length) {
    policies['mlship-queues'] = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'ConsumeJobQueues',
          Effect: 'Allow',
          Action: [
            'sqs:GetQueueUrl',
            'sqs:GetQueueAttributes',
            'sqs:ReceiveMessage',
            'sqs:DeleteMessage',
            'sqs:ChangeMessageVisibility',
          ],
          Resource: needs.queues,
        },
      ],
    };
  }
  return policies;
}

/** The execution role's inline policy: read exactly the secrets the task definitions name. */
export function executionRolePolicies(
  taskDefinitions: RegisterTaskDefinitionCommandInput[],
): Record<string, PolicyDocument> {
  const refs = [
    ...new Set(
      taskDefinitions.flatMap((td) =>
        (td.containerDefinitions ?? []).flatMap((c) => (c.secrets ?? []).map((s) => s.valueFrom!)),
      ),
    ),
  ].sort();
  const ssm = refs.filter((r) => r.startsWith('arn:aws:ssm:'));
  // ECS appends `:json-key:stage:id` to a secret reference; the policy names the secret itself.
  const secrets = [
    ...new Set(refs.filter((r) => r.startsWith('arn:aws:secretsmanager:')).map(secretResource)),
  ];
  const statements: PolicyDocument['Statement'] = [];
  if (ssm.length)
    statements.push({
      Sid: 'ReadStackParameters',
      Effect: 'Allow',
      Action: 'ssm:GetParameters',
      Resource: ssm,
    });
  if (secrets.length)
    statements.push({
      Sid: 'ReadStackSecrets',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: secrets,
    });
  return statements.length ? { 'mlship-secrets': { Version: '2012-10-17', Statement: statements } } : {};
}

/** A Secrets Manager ARN for a policy: the secret, any random suffix AWS adds to its name. */
function secretResource(ref: string): string {
  const at = ref.indexOf(':secret:') + ':secret:'.length;
  const end = ref.indexOf(':', at);
  const base = end < 0 ? ref : ref.slice(0, end);
  return /-[A-Za-z0-9]{6}$/.test(base) ? base : `${base}-??????`;
}

export function roleSpecs(
  stack: string,
  taskDefinitions: RegisterTaskDefinitionCommandInput[],
  needs: TaskRoleNeeds,
): { execution: ServiceRoleSpec; task: ServiceRoleSpec } {
  const names = roleNames(stack);
  const tags = { 'mlship:stack': stack, 'mlship:managed': 'true' };
  return {
    execution: {
      name: names.execution,
      service: 'ecs-tasks.amazonaws.com',
      description: `mlship: pulls images, writes logs and reads the secrets of stack ${stack}`,
      managedPolicies: [TASK_EXECUTION_POLICY],
      inlinePolicies: executionRolePolicies(taskDefinitions),
      tags,
    },
    task: {
      name: names.task,
      service: 'ecs-tasks.amazonaws.com',
      description: `mlship: what the tasks of stack ${stack} may do (its weights, bucket and queues)`,
      managedPolicies: [],
      inlinePolicies: taskRolePolicies(needs),
      tags,
    },
  };
}
