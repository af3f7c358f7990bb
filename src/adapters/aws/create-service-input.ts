// The CreateService request of a service: circuit breaker with rollback, awsvpc, Service Connect,
// target groups, a capacity provider for GPU tasks, and the alarms that roll a deployment back.

import type { CreateServiceCommandInput } from '@aws-sdk/client-ecs';
import type { CreateServiceSpec, ServiceConnectSpec } from '../../core/deploy/aws-apis.js';
import { ecsTags, type Tags } from './tags.js';

/** Each offered port under its container's name; no `services` at all for a client-only service. */
export function serviceConnectConfiguration(
  sc: ServiceConnectSpec,
): NonNullable<CreateServiceCommandInput['serviceConnectConfiguration']> {
  return {
    enabled: true,
    namespace: sc.namespace,
    ...(sc.services.length
      ? {
          services: sc.services.map((s) => ({
            portName: s.portName,
            discoveryName: s.discoveryName,
            clientAliases: [{ port: s.port, dnsName: s.discoveryName }],
          })),
        }
      : {}),
  };
}

/**
 * Rolling deployments with the circuit breaker (tasks that do not start roll back), and with
 * alarms when given: a deployment during which one of them goes into ALARM rolls back too
 * (a rollout's 5xx and latency alarms), whether or not anyone is watching.
 */
export function deploymentConfiguration(
  alarms?: string[],
): NonNullable<CreateServiceCommandInput['deploymentConfiguration']> {
  return {
    deploymentCircuitBreaker: { enable: true, rollback: true },
    maximumPercent: 200,
    minimumHealthyPercent: 100,
    // An empty list turns them off (what was there before a rollout).
    ...(alarms
      ? { alarms: { alarmNames: alarms, enable: alarms.length > 0, rollback: alarms.length > 0 } }
      : {}),
  };
}

export function createServiceInput(spec: CreateServiceSpec, tags: Tags = {}): CreateServiceCommandInput {
  return {
    cluster: spec.cluster,
    serviceName: spec.serviceName,
    taskDefinition: spec.taskDefinition,
    // A launch type and a capacity provider strategy exclude each other.
    ...(spec.capacityProvider
      ? { capacityProviderStrategy: [{ capacityProvider: spec.capacityProvider, weight: 1, base: 0 }] }
      : { launchType: spec.launchType }),
    desiredCount: spec.desiredCount,
    networkConfiguration: {
      awsvpcConfiguration: {
        subnets: spec.subnets,
        securityGroups: spec.securityGroups,
        assignPublicIp: spec.assignPublicIp ? 'ENABLED' : 'DISABLED',
      },
    },
    deploymentConfiguration: deploymentConfiguration(spec.deploymentAlarms),
    ...(spec.healthCheckGracePeriodSeconds
      ? { healthCheckGracePeriodSeconds: spec.healthCheckGracePeriodSeconds }
      : {}),
    ...(spec.loadBalancers?.length ? { loadBalancers: spec.loadBalancers } : {}),
    ...(spec.serviceConnect
      ? { serviceConnectConfiguration: serviceConnectConfiguration(spec.serviceConnect) }
      : {}),
    enableECSManagedTags: true,
    propagateTags: 'SERVICE',
    tags: ecsTags(tags),
  };
}
