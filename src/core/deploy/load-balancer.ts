// The stack's shared Application Load Balancer (`deploy ecs --apply`), only when a
// service publishes a port: its security group, the load balancer, a target group and
// listener per port, and the tasks' security groups opened to it.

import { OperationFailedError } from '../../io/errors.js';
import type { ServiceLoadBalancer } from './aws-apis.js';
import type { ApplyDeps, DeployNetwork } from './deps.js';
import { type EcsPlanResult, loadBalancerNames } from './plan.js';

/** The stack's shared Application Load Balancer, when a service publishes a port. */
export interface LoadBalancerResult {
  name: string;
  dnsName: string;
  created: boolean;
  securityGroup: { id: string; created: boolean };
  listeners: {
    port: number;
    protocol: 'HTTP' | 'HTTPS';
    /** Where it forwards; a redirect to HTTPS has none. */
    service?: string;
    container?: string;
    containerPort?: number;
    targetGroup?: string;
    redirectToHttps?: number;
    created: boolean;
    changed: boolean;
  }[];
  /** Inbound rules added to the tasks' security groups so the load balancer reaches them. */
  ingressAdded: { group: string; port: number }[];
}

/** Whether a service already sends its tasks to exactly these target groups. */
export function sameLoadBalancers(
  actual: { targetGroupArn?: string; containerName?: string; containerPort?: number }[],
  wanted: ServiceLoadBalancer[],
): boolean {
  const key = (l: { targetGroupArn?: string; containerName?: string; containerPort?: number }) =>
    `${l.targetGroupArn} ${l.containerName} ${l.containerPort}`;
  const a = actual.map(key).sort();
  const w = wanted.map(key).sort();
  return a.length === w.length && a.every((k, i) => k === w[i]);
}

/**
 * The shared ALB: its security group (open on the listener ports), the load balancer, a target
 * group per published port, the listeners, and an inbound rule in the tasks' security groups
 * from the load balancer's. Each piece is found before it is created, so a re-run converges.
 */
export async function ensureLoadBalancer(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  network: DeployNetwork,
): Promise<{ loadBalancer: LoadBalancerResult; targets: Map<string, ServiceLoadBalancer[]> }> {
  const targets = new Map<string, ServiceLoadBalancer[]>();
  const { ec2, elb } = deps.aws;
  const balancer = network.balancer!;
  const wanted = plan.loadBalancer!;
  const names = loadBalancerNames(plan.stack);
  const sg = await ec2.ensureSecurityGroup({
    vpcId: balancer.vpcId,
    name: wanted.securityGroup,
    description: `mlship: load balancer of stack ${plan.stack}`,
  });
  for (const l of wanted.listeners)
    await ec2.allowIngress(sg.id, {
      port: l.port,
      cidr: '0.0.0.0/0',
      description: `mlship: ${l.protocol} listener`,
    });
  const lb = await elb.ensureLoadBalancer({
    name: wanted.name,
    subnets: balancer.subnets,
    securityGroups: [sg.id],
  });
  if (!lb.managed) {
    throw new OperationFailedError(
      'LOAD_BALANCER_NOT_OURS',
      `a load balancer named ${wanted.name} exists and was not created by mlship; it is left alone`,
      { hint: 'deploy the stack under another name (name: in mlship.yaml or the compose file)' },
    );
  }
  if (lb.created) deps.log(`created load balancer ${wanted.name} (${lb.dnsName})`);
  const result: LoadBalancerResult = {
    name: wanted.name,
    dnsName: lb.dnsName,
    created: lb.created,
    securityGroup: sg,
    listeners: [],
    ingressAdded: [],
  };
  for (const l of wanted.listeners) {
    const p = l.forward;
    if (!p) {
      const listener = await elb.ensureListener({
        loadBalancerArn: lb.arn,
        port: l.port,
        protocol: 'HTTP',
        redirectToHttpsPort: l.redirectToHttps!,
      });
      result.listeners.push({
        port: l.port,
        protocol: l.protocol,
        redirectToHttps: l.redirectToHttps!,
        created: listener.created,
        changed: listener.changed,
      });
      continue;
    }
    const tgName = names.targetGroup(p.container, p.containerPort);
    const tg = await elb.ensureTargetGroup({
      name: tgName,
      vpcId: balancer.vpcId,
      port: p.containerPort,
      healthCheckPath: p.healthCheckPath,
      healthCheckIntervalSeconds: p.healthCheckIntervalSeconds,
    });
    const listener = await elb.ensureListener(
      l.protocol === 'HTTPS'
        ? {
            loadBalancerArn: lb.arn,
            port: l.port,
            protocol: 'HTTPS',
            targetGroupArn: tg.arn,
            certificateArn: wanted.certificateArn!,
          }
        : { loadBalancerArn: lb.arn, port: l.port, protocol: 'HTTP', targetGroupArn: tg.arn },
    );
    for (const group of network.securityGroups) {
      const rule = await ec2.allowIngress(group, {
        port: p.containerPort,
        fromGroup: sg.id,
        description: `mlship: load balancer of stack ${plan.stack}`,
      });
      if (rule.added) {
        result.ingressAdded.push({ group, port: p.containerPort });
        deps.log(`allowed tcp ${p.containerPort} from the load balancer into ${group}`);
      }
    }
    targets.set(p.service, [
      ...(targets.get(p.service) ?? []),
      { targetGroupArn: tg.arn, containerName: p.container, containerPort: p.containerPort },
    ]);
    result.listeners.push({
      port: l.port,
      protocol: l.protocol,
      service: p.service,
      container: p.container,
      containerPort: p.containerPort,
      targetGroup: tgName,
      created: listener.created,
      changed: listener.changed || tg.changed,
    });
  }
  return { loadBalancer: result, targets };
}
