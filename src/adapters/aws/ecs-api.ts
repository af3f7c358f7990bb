// ECS: clusters, task definitions and services.

import type * as EcsSdk from '@aws-sdk/client-ecs';
import type { Service } from '@aws-sdk/client-ecs';
import type { EcsApi } from '../../core/deploy/aws-apis.js';
import { OperationFailedError } from '../../io/errors.js';
import { call } from './aws-call.js';
import {
  createServiceInput,
  deploymentConfiguration,
  serviceConnectConfiguration,
} from './create-service-input.js';
import { runTaskInput } from './run-task-input.js';
import { ecsTags, type Tags } from './tags.js';

export function createEcsApi(ecsSdk: typeof EcsSdk, ecsClient: EcsSdk.ECSClient, tags: Tags = {}): EcsApi {
  return {
    async ensureCluster(name, namespace) {
      const r = await call(`describe cluster ${name}`, () =>
        ecsClient.send(new ecsSdk.DescribeClustersCommand({ clusters: [name] })),
      );
      if (r.clusters?.some((c) => c.status === 'ACTIVE')) return { created: false };
      await call(`create cluster ${name}`, () =>
        ecsClient.send(
          new ecsSdk.CreateClusterCommand({
            clusterName: name,
            serviceConnectDefaults: { namespace },
            settings: [{ name: 'containerInsights', value: 'enabled' }],
            tags: ecsTags(tags),
          }),
        ),
      );
      return { created: true };
    },
    async latestTaskDefinition(family) {
      return call(`describe task definition ${family}`, async () => {
        try {
          const r = await ecsClient.send(
            new ecsSdk.DescribeTaskDefinitionCommand({ taskDefinition: family }),
          );
          return r.taskDefinition?.status === 'ACTIVE' ? r.taskDefinition : undefined;
        } catch (e) {
          if ((e as { name?: string }).name === 'ClientException') return undefined; // unknown family
          throw e;
        }
      });
    },
    async registerTaskDefinition(input) {
      const r = await call(`register task definition ${input.family}`, () =>
        ecsClient.send(new ecsSdk.RegisterTaskDefinitionCommand(input)),
      );
      return { arn: r.taskDefinition!.taskDefinitionArn!, revision: r.taskDefinition!.revision! };
    },
    async describeService(cluster, name) {
      const r = await call(`describe service ${name}`, () =>
        ecsClient.send(new ecsSdk.DescribeServicesCommand({ cluster, services: [name] })),
      );
      return r.services?.find((s) => s.status !== 'INACTIVE');
    },
    async describeServices(cluster, names) {
      const out: Service[] = [];
      for (let i = 0; i < names.length; i += 10) {
        const r = await call(`describe services ${names.slice(i, i + 10).join(', ')}`, () =>
          ecsClient.send(new ecsSdk.DescribeServicesCommand({ cluster, services: names.slice(i, i + 10) })),
        );
        out.push(...(r.services ?? []).filter((s) => s.status !== 'INACTIVE'));
      }
      return out;
    },
    async listStoppedTasks(cluster, service) {
      const r = await call(`list the stopped tasks of ${service}`, () =>
        ecsClient.send(
          new ecsSdk.ListTasksCommand({ cluster, serviceName: service, desiredStatus: 'STOPPED' }),
        ),
      );
      return r.taskArns ?? [];
    },
    async describeTasks(cluster, arns) {
      if (!arns.length) return [];
      const r = await call('describe tasks', () =>
        ecsClient.send(new ecsSdk.DescribeTasksCommand({ cluster, tasks: arns.slice(0, 100) })),
      );
      return r.tasks ?? [];
    },
    async createService(spec) {
      await call(`create service ${spec.serviceName}`, () =>
        ecsClient.send(new ecsSdk.CreateServiceCommand(createServiceInput(spec, tags))),
      );
    },
    async deleteService(cluster, name) {
      return call(`delete service ${name}`, async () => {
        try {
          // DRAINING or INACTIVE: already being deleted, or gone.
          const r = await ecsClient.send(new ecsSdk.DescribeServicesCommand({ cluster, services: [name] }));
          if (!r.services?.some((s) => s.status === 'ACTIVE')) return false;
          await ecsClient.send(new ecsSdk.DeleteServiceCommand({ cluster, service: name, force: true }));
          return true;
        } catch (e) {
          const n = (e as { name?: string }).name ?? '';
          if (
            n === 'ServiceNotFoundException' ||
            n === 'ServiceNotActiveException' ||
            n === 'ClusterNotFoundException'
          )
            return false;
          throw e;
        }
      });
    },
    async activeRevisions(family) {
      const arns: string[] = [];
      let nextToken: string | undefined;
      do {
        const r = await call(`list the revisions of ${family}`, () =>
          ecsClient.send(
            new ecsSdk.ListTaskDefinitionsCommand({ familyPrefix: family, status: 'ACTIVE', nextToken }),
          ),
        );
        // familyPrefix is a prefix: keep this family's revisions only.
        arns.push(
          ...(r.taskDefinitionArns ?? []).filter((a) => a.split('/').pop()!.replace(/:\d+$/, '') === family),
        );
        nextToken = r.nextToken;
      } while (nextToken);
      return arns;
    },
    async deregisterTaskDefinition(arn) {
      await call(`deregister ${arn.split('/').pop()}`, () =>
        ecsClient.send(new ecsSdk.DeregisterTaskDefinitionCommand({ taskDefinition: arn })),
      );
    },
    async deleteCluster(name) {
      return call(`delete cluster ${name}`, async () => {
        try {
          const r = await ecsClient.send(new ecsSdk.DescribeClustersCommand({ clusters: [name] }));
          if (!r.clusters?.some((c) => c.status === 'ACTIVE')) return false;
          await ecsClient.send(new ecsSdk.DeleteClusterCommand({ cluster: name }));
          return true;
        } catch (e) {
          const n = (e as { name?: string }).name ?? '';
          if (n === 'ClusterNotFoundException') return false;
          if (
            /ClusterContains(Services|Tasks|ContainerInstances)Exception/.test(n) ||
            n === 'UpdateInProgressException'
          )
            return 'busy';
          throw e;
        }
      });
    },
    async scaleService(cluster, service, desiredCount) {
      await call(`scale service ${service}`, () =>
        ecsClient.send(new ecsSdk.UpdateServiceCommand({ cluster, service, desiredCount })),
      );
    },
    async updateService(input) {
      await call(`update service ${input.service}`, () =>
        ecsClient.send(
          new ecsSdk.UpdateServiceCommand({
            cluster: input.cluster,
            service: input.service,
            taskDefinition: input.taskDefinition,
            forceNewDeployment: input.forceNewDeployment,
            ...(input.loadBalancers ? { loadBalancers: input.loadBalancers } : {}),
            ...(input.healthCheckGracePeriodSeconds
              ? { healthCheckGracePeriodSeconds: input.healthCheckGracePeriodSeconds }
              : {}),
            ...(input.serviceConnect
              ? { serviceConnectConfiguration: serviceConnectConfiguration(input.serviceConnect) }
              : {}),
            ...(input.deploymentAlarms
              ? { deploymentConfiguration: deploymentConfiguration(input.deploymentAlarms) }
              : {}),
            ...(input.desiredCount === undefined ? {} : { desiredCount: input.desiredCount }),
          }),
        ),
      );
    },
    async runTask(spec) {
      const r = await call(`run a task of ${spec.taskDefinition}`, () =>
        ecsClient.send(new ecsSdk.RunTaskCommand(runTaskInput(spec))),
      );
      const arn = r.tasks?.[0]?.taskArn;
      if (!arn) {
        const why = r.failures?.map((f) => `${f.reason ?? 'failed'}${f.detail ? ` (${f.detail})` : ''}`);
        throw new OperationFailedError(
          'TASK_NOT_STARTED',
          `ECS did not start a task of ${spec.taskDefinition}: ${why?.join('; ') || 'no reason given'}`,
          { hint: 'check the subnets and the Fargate quota of the region, then run again' },
        );
      }
      return arn;
    },
    async tasksStartedBy(cluster, startedBy, status) {
      return call(`list the tasks started by ${startedBy}`, async () => {
        try {
          const r = await ecsClient.send(
            new ecsSdk.ListTasksCommand({ cluster, startedBy, desiredStatus: status }),
          );
          return r.taskArns ?? [];
        } catch (e) {
          if ((e as { name?: string }).name === 'ClusterNotFoundException') return [];
          throw e;
        }
      });
    },
  };
}
