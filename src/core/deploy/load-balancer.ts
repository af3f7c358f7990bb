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
  const wanted = plan.loadBalancer!;
  const { sg, lb } = await ensureBalancer(plan, deps, network);
  const result: LoadBalancerResult = {
    name: wanted.name,
    dnsName: lb.dnsName,
    created: lb.created,
    securityGroup: sg,
    listeners: [],
    ingressAdded: [],
  };
  for (const l of wanted.listeners) {
    if (!l.forward) {
      const listener = await deps.aws.elb.ensureListener({
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
    const forward = await ensureForward(
      plan,
      deps,
      network,
      { lbArn: lb.arn, sgId: sg.id, listener: l },
      result,
    );
    targets.set(l.forward.service, [...(targets.get(l.forward.service) ?? []), forward]);
  }
  return { loadBalancer: result, targets };
}

type WantedListener = NonNullable<EcsPlanResult['loadBalancer']>['listeners'][number];

/** The load balancer's security group (open on the listener ports) and the load balancer, if it is mlship's. */
async function ensureBalancer(plan: EcsPlanResult, deps: ApplyDeps, network: DeployNetwork) {
  const { ec2, elb } = deps.aws;
  const wanted = plan.loadBalancer!;
  const sg = await ec2.ensureSecurityGroup({
    vpcId: network.balancer!.vpcId,
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
    subnets: network.balancer!.subnets,
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
  return { sg, lb };
}

/** A forwarding listener: its target group, the listener, and the tasks' groups opened to the balancer. */
async function ensureForward(
  plan: EcsPlanResult,
  deps: ApplyDeps,
  network: DeployNetwork,
  at: { lbArn: string; sgId: string; listener: WantedListener },
  result: LoadBalancerResult,
): Promise<ServiceLoadBalancer> {
  const { ec2, elb } = deps.aws;
  const l = at.listener;
  const p = l.forward!;
  const tgName = loadBalancerNames(plan.stack).targetGroup(p.container, p.containerPort);
  const tg = await elb.ensureTargetGroup({
    name: tgName,
    vpcId: network.balancer!.vpcId,
    port: p.containerPort,
    healthCheckPath: p.healthCheckPath,
    healthCheckIntervalSeconds: p.healthCheckIntervalSeconds,
  });
  const listener = await elb.ensureListener(
    l.protocol === 'HTTPS'
      ? {
          loadBalancerArn: at.lbArn,
          port: l.port,
          protocol: 'HTTPS',
          targetGroupArn: tg.arn,
          certificateArn: plan.loadBalancer!.certificateArn!,
        }
      : { loadBalancerArn: at.lbArn, port: l.port, protocol: 'HTTP', targetGroupArn: tg.arn },
  );
  for (const group of network.securityGroups) {
    const rule = await ec2.allowIngress(group, {
      port: p.containerPort,
      fromGroup: at.sgId,
      description: `mlship: load balancer of stack ${plan.stack}`,
    });
    if (rule.added) {
      result.ingressAdded.push({ group, port: p.containerPort });
      deps.log(`allowed tcp ${p.containerPort} from the load balancer into ${group}`);
    }
  }
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
  return { targetGroupArn: tg.arn, containerName: p.container, containerPort: p.containerPort };
}
