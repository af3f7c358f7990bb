// The shared load balancer of a stack whose services publish ports, as planned: its
// names (within ELB's rules) and listeners, and the plan's lines about it.

import type { EcsTranslation, PublicPort } from '../../generators/ecs-task-definitions.js';
import { awsName } from './names.js';

/** Names of the shared load balancer's resources (ALB and target group names: at most 32 characters). */
export function loadBalancerNames(stack: string) {
  return {
    loadBalancer: awsName(stack, 32),
    securityGroup: `${stack}-alb`,
    targetGroup: (service: string, port: number) => awsName(`${stack}-${service}-${port}`, 32),
    /** A rollout's target groups of a model service (mlship rollout on ECS): its stable tasks', its candidate's. */
    rolloutTargetGroup: (service: string, port: number, side: 'stable' | 'candidate') =>
      awsName(`${stack}-${service}-${side === 'stable' ? 's' : 'c'}-${port}`, 32),
  };
}

/** One listener of the shared load balancer. */
export interface ListenerPlan {
  port: number;
  protocol: 'HTTP' | 'HTTPS';
  /** The ECS service and published port it forwards to; absent for a redirect to HTTPS. */
  forward?: PublicPort & { service: string };
  /** HTTP that answers with a permanent redirect to HTTPS on this port. */
  redirectToHttps?: number;
}

export interface LoadBalancerPlan {
  name: string;
  securityGroup: string;
  certificateArn?: string;
  listeners: ListenerPlan[];
}

/**
 * The shared load balancer of a stack whose services publish ports: an HTTP listener per port,
 * or with a certificate HTTPS, where port 80 becomes HTTPS on 443 plus a redirect from 80.
 */
export function loadBalancerOf(
  stack: string,
  t: EcsTranslation,
  certificateArn?: string,
): LoadBalancerPlan | undefined {
  const ports = t.services.flatMap((s) => s.publicPorts.map((p) => ({ service: s.name, ...p })));
  if (!ports.length) return undefined;
  const names = loadBalancerNames(stack);
  const listeners: ListenerPlan[] = [];
  const taken = new Set(ports.map((p) => p.listener));
  for (const p of ports) {
    if (!certificateArn) listeners.push({ port: p.listener, protocol: 'HTTP', forward: p });
    else if (p.listener === 80 && !taken.has(443)) {
      listeners.push({ port: 443, protocol: 'HTTPS', forward: p });
      listeners.push({ port: 80, protocol: 'HTTP', redirectToHttps: 443 });
    } else listeners.push({ port: p.listener, protocol: 'HTTPS', forward: p });
  }
  listeners.sort((a, b) => a.port - b.port);
  return {
    name: names.loadBalancer,
    securityGroup: names.securityGroup,
    ...(certificateArn ? { certificateArn } : {}),
    listeners,
  };
}

export function loadBalancerPlanLines(lb: LoadBalancerPlan | undefined): string[] {
  if (!lb) return [];
  const describe = (l: ListenerPlan) =>
    l.forward
      ? `${l.protocol} :${l.port} → ${l.forward.container}:${l.forward.containerPort} (health ${l.forward.healthCheckPath})`
      : `HTTP :${l.port} redirects to HTTPS :${l.redirectToHttps}`;
  const containerPorts = [
    ...new Set(lb.listeners.flatMap((l) => (l.forward ? [l.forward.containerPort] : []))),
  ];
  return [
    `load balancer ${lb.name} (Application Load Balancer, internet-facing, shared): ${lb.listeners.map(describe).join(', ')}${lb.certificateArn ? `; certificate ${lb.certificateArn}` : ''}`,
    `security group ${lb.securityGroup} (the load balancer's: tcp ${lb.listeners.map((l) => l.port).join(', ')} from anywhere); the tasks' security groups let it reach port(s) ${containerPorts.join(', ')}`,
  ];
}
