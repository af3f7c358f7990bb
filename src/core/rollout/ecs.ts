// `mlship rollout` on ECS: the candidate runs as its own service (`<name>-candidate`, the
// stable revision with the candidate's image) with its own target group; a listener rule of
// the stack's load balancer forwards the service's requests to both groups by weight, changed
// in place at each step; both services roll back on their own CloudWatch alarms
// (deploymentConfiguration.alarms); the comparison reads each target group's metrics.
// Every created piece is recorded in deploy/ecs-rollouts.json, and a failed start undoes them.

import type { Service } from '@aws-sdk/client-ecs';
import type { Rollout, RolloutsFile } from '../../config/rollout-schema.js';
import type { Clock } from '../../io/clock.js';
import { UsageError } from '../../io/errors.js';
import type { CloudWatchApi, Ec2Api, EcsApi, ElbApi, ServiceLoadBalancer } from '../deploy/aws-apis.js';
import { loadBalancerNames } from '../deploy/load-balancer-plan.js';
import type { EcsPlanResult } from '../deploy/plan.js';
import {
  candidateTaskDefinition,
  compareFromMetrics,
  type EcsRolloutLayout,
  ecsRolloutLayout,
  metricQueries,
  refuseOnEcs,
  sideAlarms,
  weightsAt,
} from './ecs-plan.js';
import { promoteInConfig } from './promote-config.js';
import { readRollouts, writeRollouts } from './state.js';
import type { PromoteResult, RolloutTarget, StatusReport } from './target.js';
import { DEFAULT_GATES, type Gates, verdict } from './verdict.js';

export interface EcsRolloutDeps {
  ecs: Pick<
    EcsApi,
    | 'describeService'
    | 'latestTaskDefinition'
    | 'registerTaskDefinition'
    | 'deregisterTaskDefinition'
    | 'createService'
    | 'updateService'
    | 'scaleService'
    | 'deleteService'
  >;
  elb: Pick<
    ElbApi,
    | 'findLoadBalancer'
    | 'ensureTargetGroup'
    | 'listenerArn'
    | 'createRule'
    | 'setRuleWeights'
    | 'deleteRule'
    | 'deleteTargetGroups'
  >;
  cloudwatch: Pick<CloudWatchApi, 'putAlarm' | 'deleteAlarms' | 'metricData'>;
  ec2: Pick<Ec2Api, 'allowIngress'>;
  /** Until the service runs its desired tasks of that revision (deploy's wait); fails with the reason. */
  waitStable(service: string, taskDefinition: string): Promise<void>;
  /** `--path`: builds the candidate and pushes it beside the stable image; the reference ECS pulls. */
  candidateImage?(rollout: Rollout, stableImage: string): Promise<string>;
  clock: Clock;
  log(line: string): void;
}

export interface EcsStack {
  plan: EcsPlanResult;
  configFile: string;
  /** deploy/ecs-rollouts.json beside mlship.yaml (state.ts: ecsRolloutsFile). */
  stateFile: string;
}

type EcsRecord = NonNullable<Rollout['ecs']>;

/** The ECS target of one service's rollout. */
export class EcsRollout implements RolloutTarget {
  private readonly layout: EcsRolloutLayout;

  constructor(
    private readonly deps: EcsRolloutDeps,
    private readonly stack: EcsStack,
    readonly service: string,
    private readonly gatesOverride?: Partial<Gates>,
  ) {
    this.layout = ecsRolloutLayout(stack.plan, service);
  }

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  private async record(): Promise<{ state: RolloutsFile; rollout: Rollout; ecs: EcsRecord }> {
    const state = await readRollouts(this.stack.stateFile);
    const rollout = state.rollouts[this.service];
    if (!rollout?.ecs)
      throw new UsageError(`no rollout of ${this.service} on ECS in ${this.stack.stateFile}`, {
        hint: `start one: mlship rollout start ${this.service} --target ecs --canary 10 --image <ref>`,
      });
    return { state, rollout, ecs: rollout.ecs };
  }

  private async save(state: RolloutsFile, rollout: Rollout): Promise<void> {
    await writeRollouts(this.stack.stateFile, {
      ...state,
      rollouts: { ...state.rollouts, [this.service]: rollout },
    });
  }

  private async running(): Promise<{ state: RolloutsFile; rollout: Rollout; ecs: EcsRecord }> {
    const r = await this.record();
    if (r.rollout.status !== 'running')
      throw new UsageError(`the rollout of ${this.service} is over (${r.rollout.status})`, {
        hint: `start a new one: mlship rollout start ${this.service} --target ecs ...`,
      });
    return r;
  }

  private async stableService(): Promise<Service> {
    const svc = await this.deps.ecs.describeService(this.layout.cluster, this.service);
    if (!svc?.taskDefinition)
      throw new UsageError(`service ${this.service} is not deployed in cluster ${this.layout.cluster}`, {
        hint: 'deploy the stack first: mlship deploy ecs --apply',
      });
    return svc;
  }

  /** `mlship rollout start --target ecs`: candidate service, target groups, alarms, the weighted rule. */
  async start(rollout: Rollout): Promise<EcsRecord> {
    refuseOnEcs(rollout);
    const state = await readRollouts(this.stack.stateFile);
    if (state.rollouts[this.service]?.status === 'running')
      throw new UsageError(`a rollout of ${this.service} is running`, {
        hint: `promote or roll it back first: mlship rollout status ${this.service} --target ecs`,
      });
    const undo: (() => Promise<unknown>)[] = [];
    try {
      const ecs = await this.create(rollout, undo);
      await this.save(state, { ...rollout, ecs });
      return ecs;
    } catch (e) {
      for (const step of undo.reverse()) await step().catch(() => undefined);
      throw e;
    }
  }

  private async create(rollout: Rollout, undo: (() => Promise<unknown>)[]): Promise<EcsRecord> {
    const { ecs, elb, cloudwatch, log } = this.deps;
    const L = this.layout;
    const stable = await this.stableService();
    const lb = await elb.findLoadBalancer(loadBalancerNames(this.stack.plan.stack).loadBalancer);
    const listenerArn = lb && (await elb.listenerArn(lb.arn, L.listenerPort));
    if (!lb || !listenerArn)
      throw new UsageError(
        `the load balancer of stack ${L.cluster} (listener ${L.listenerPort}) is not deployed`,
        {
          hint: 'mlship deploy ecs --apply',
        },
      );
    // The candidate's revision: the stable one with the candidate's image.
    const running = await ecs.latestTaskDefinition(stable.taskDefinition!);
    const stableImage = running?.containerDefinitions?.find((c) => c.name === L.container)?.image;
    if (!running || !stableImage) throw new UsageError(`cannot read ${stable.taskDefinition}`);
    const image = rollout.candidate.image ?? (await this.deps.candidateImage?.(rollout, stableImage));
    if (!image)
      throw new UsageError('on ECS the candidate needs --image, or --path with an engine to build it');
    const revision = await ecs.registerTaskDefinition(
      candidateTaskDefinition(running, L.container, image, rollout.candidate.env),
    );
    undo.push(() => ecs.deregisterTaskDefinition(revision.arn));
    log(`registered ${revision.arn.split('/').pop()} (the candidate: ${image})`);
    // Target groups: one for each side, so the rule can weigh them and each has its metrics.
    const groups: Record<'stable' | 'candidate', string> = { stable: '', candidate: '' };
    // Once the stable service uses its group, the group stays (a service keeps a deleted group's ARN).
    let attached = false;
    for (const side of ['stable', 'candidate'] as const) {
      const tg = await elb.ensureTargetGroup({
        name: L.targetGroups[side],
        vpcId: lb.vpcId,
        port: L.port,
        healthCheckPath: '/healthz',
        healthCheckIntervalSeconds: 10,
      });
      if (tg.created)
        undo.push(async () =>
          side === 'stable' && attached ? [] : elb.deleteTargetGroups([L.targetGroups[side]]),
        );
      groups[side] = tg.arn;
    }
    const alarms = {
      stable: sideAlarms(L, 'stable', { loadBalancer: lb.arn, targetGroup: groups.stable }, L.cluster),
      candidate: sideAlarms(
        L,
        'candidate',
        { loadBalancer: lb.arn, targetGroup: groups.candidate },
        L.cluster,
      ),
    };
    const alarmNames = [...alarms.stable, ...alarms.candidate].map((a) => a.name);
    for (const a of [...alarms.stable, ...alarms.candidate]) await cloudwatch.putAlarm(a);
    undo.push(() => cloudwatch.deleteAlarms(alarmNames));
    // The load balancer reaches the model's port now, not only the proxy's (deploy opened that one);
    // --destroy revokes every rule from the load balancer's group.
    const network = stable.networkConfiguration?.awsvpcConfiguration;
    for (const group of network?.securityGroups ?? [])
      for (const from of lb.securityGroups)
        await this.deps.ec2.allowIngress(group, {
          port: L.port,
          fromGroup: from,
          description: `mlship: load balancer to ${this.service} (rollout)`,
        });
    const target = (arn: string): ServiceLoadBalancer => ({
      targetGroupArn: arn,
      containerName: L.container,
      containerPort: L.port,
    });
    // The stable service registers with its rollout group too (kept after the rollout: the next
    // one needs no deployment of the stable service for it) and rolls back on its alarms.
    // By name: a group of that name deleted and created again has another ARN.
    const others = ((stable.loadBalancers ?? []) as ServiceLoadBalancer[]).filter(
      (l) => !l.targetGroupArn.includes(`:targetgroup/${L.targetGroups.stable}/`),
    );
    const has = (stable.loadBalancers ?? []).some((l) => l.targetGroupArn === groups.stable);
    await ecs.updateService({
      cluster: L.cluster,
      service: this.service,
      taskDefinition: stable.taskDefinition!,
      forceNewDeployment: false,
      deploymentAlarms: alarms.stable.map((a) => a.name),
      ...(has ? {} : { loadBalancers: [...others, target(groups.stable)] }),
    });
    attached = true;
    undo.push(() =>
      ecs.updateService({
        cluster: L.cluster,
        service: this.service,
        taskDefinition: stable.taskDefinition!,
        forceNewDeployment: false,
        // Its alarms as they were (the rollout's are deleted); its rollout group stays, unused.
        deploymentAlarms: stable.deploymentConfiguration?.alarms?.alarmNames ?? [],
      }),
    );
    log(`${this.service}: rolls back on ${alarms.stable.map((a) => a.name).join(', ')}`);
    await ecs.createService({
      cluster: L.cluster,
      serviceName: L.candidateService,
      taskDefinition: revision.arn,
      launchType: 'FARGATE',
      desiredCount: Math.max(1, stable.desiredCount ?? 1),
      subnets: network?.subnets ?? [],
      securityGroups: network?.securityGroups ?? [],
      assignPublicIp: network?.assignPublicIp === 'ENABLED',
      ...(stable.healthCheckGracePeriodSeconds
        ? { healthCheckGracePeriodSeconds: stable.healthCheckGracePeriodSeconds }
        : {}),
      // A client of the namespace only: Service Connect traffic to the service stays on stable.
      serviceConnect: { namespace: L.cluster, services: [] },
      loadBalancers: [target(groups.candidate)],
      deploymentAlarms: alarms.candidate.map((a) => a.name),
    });
    undo.push(() => ecs.deleteService(L.cluster, L.candidateService));
    log(`created service ${L.candidateService}; waiting until it is stable`);
    await this.deps.waitStable(L.candidateService, revision.arn);
    const tags = { 'mlship:stack': L.cluster, 'mlship:rollout': this.service };
    const overrideRuleArn = await elb.createRule({
      listenerArn,
      priority: L.priority,
      paths: L.paths,
      header: { name: 'X-Model-Version', value: 'candidate' },
      ...(L.rewrite ? { rewrite: L.rewrite } : {}),
      weights: [{ targetGroupArn: groups.candidate, weight: 1 }],
      tags,
    });
    undo.push(() => elb.deleteRule(overrideRuleArn));
    const ruleArn = await elb.createRule({
      listenerArn,
      priority: L.priority + 1,
      paths: L.paths,
      ...(L.rewrite ? { rewrite: L.rewrite } : {}),
      weights: weightsAt(rollout.weight, groups),
      tags,
    });
    log(`listener ${L.listenerPort}: ${L.paths.join(', ')} → ${100 - rollout.weight}/${rollout.weight}`);
    return {
      cluster: L.cluster,
      stableService: this.service,
      candidateService: L.candidateService,
      stableTaskDefinition: stable.taskDefinition!,
      candidateTaskDefinition: revision.arn,
      loadBalancerArn: lb.arn,
      listenerArn,
      ruleArn,
      overrideRuleArn,
      stableTargetGroupArn: groups.stable,
      candidateTargetGroupArn: groups.candidate,
      alarms: alarmNames,
    };
  }

  private groups(e: EcsRecord) {
    return { stable: e.stableTargetGroupArn, candidate: e.candidateTargetGroupArn };
  }

  async setWeight(weight: number): Promise<void> {
    const { state, rollout, ecs } = await this.running();
    await this.deps.elb.setRuleWeights(ecs.ruleArn, weightsAt(weight, this.groups(ecs)));
    await this.save(state, {
      ...rollout,
      weight,
      history: [...rollout.history, { at: this.now(), action: 'step', weight }],
    });
  }

  async status(): Promise<StatusReport> {
    const { rollout, ecs } = await this.record();
    const gates: Gates = { ...DEFAULT_GATES, ...rollout.gates, ...this.gatesOverride };
    const start = Date.parse(rollout.startedAt);
    // CloudWatch refuses an empty window; a minute is its resolution anyway.
    const end = Math.max(this.deps.clock.now(), start + 60_000);
    const values = await this.deps.cloudwatch.metricData(
      metricQueries(
        {
          loadBalancer: ecs.loadBalancerArn,
          stable: ecs.stableTargetGroupArn,
          candidate: ecs.candidateTargetGroupArn,
        },
        (end - start) / 1000,
      ),
      start,
      end,
    );
    const comparison = compareFromMetrics(values, gates, rollout.weight || 50);
    const candidate = await this.deps.ecs.describeService(ecs.cluster, ecs.candidateService);
    const { health, down } = candidateHealth(candidate, rollout.status === 'running');
    return {
      rollout,
      comparison,
      verdict: verdict(comparison, gates),
      candidateHealth: health,
      candidateDown: down,
      notes: [
        "from the load balancer's metrics per target group (CloudWatch, 1-minute resolution, a few minutes late); latency tested on the minutes' averages",
        'answers are not compared on ECS (the load balancer cannot mirror)',
      ],
    };
  }

  /**
   * Every request to the candidate, the stable service updated to the candidate's revision (its
   * one deployment) and waited for, then every request back to it and the rules removed (traffic
   * flows through the proxy again), then the candidate, its group and its alarms removed.
   */
  async promote(): Promise<PromoteResult> {
    const { state, rollout, ecs } = await this.running();
    const { elb, log } = this.deps;
    await elb.setRuleWeights(ecs.ruleArn, weightsAt(100, this.groups(ecs)));
    await this.deps.ecs.updateService({
      cluster: ecs.cluster,
      service: ecs.stableService,
      taskDefinition: ecs.candidateTaskDefinition,
      forceNewDeployment: false,
    });
    log(
      `${ecs.stableService}: updated to ${ecs.candidateTaskDefinition.split('/').pop()}; waiting until it is stable`,
    );
    await this.deps.waitStable(ecs.stableService, ecs.candidateTaskDefinition);
    await elb.setRuleWeights(ecs.ruleArn, weightsAt(0, this.groups(ecs)));
    await this.removeCandidate(ecs);
    const changed = await promoteInConfig(this.stack.configFile, rollout);
    await this.save(state, {
      ...rollout,
      status: 'promoted',
      weight: 0,
      history: [...rollout.history, { at: this.now(), action: 'promote', weight: 100 }],
    });
    return {
      stableNow: `${ecs.candidateTaskDefinition.split('/').pop()} (${rollout.candidate.image ?? rollout.candidate.path})`,
      ...(changed.length ? { configChanged: this.stack.configFile } : {}),
      notes: [
        ...changed.map((c) => `${this.stack.configFile}: ${c}`),
        `${ecs.stableService} keeps its rollout target group and alarms for the next rollout`,
      ],
    };
  }

  /** The candidate's rules, service, target group and alarms (its revision stays, deregistered). */
  private async removeCandidate(ecs: EcsRecord): Promise<void> {
    const { elb, cloudwatch, log } = this.deps;
    for (const rule of [ecs.overrideRuleArn, ecs.ruleArn]) if (rule) await elb.deleteRule(rule);
    await this.deps.ecs.deleteService(ecs.cluster, ecs.candidateService);
    await elb.deleteTargetGroups([this.layout.targetGroups.candidate]);
    await cloudwatch.deleteAlarms(ecs.alarms.filter((a) => a.includes('-candidate-')));
    log(`removed ${ecs.candidateService}, its target group, alarms and listener rules`);
  }

  async rollback(reason: string, options: { destroy?: boolean } = {}): Promise<void> {
    const { state, rollout, ecs } = await this.record();
    if (rollout.status === 'promoted')
      throw new UsageError(
        `the rollout of ${this.service} was promoted: there is no candidate to roll back`,
        {
          hint: `start a new rollout with the old version as the candidate: mlship rollout start ${this.service} --target ecs --image <old image>`,
        },
      );
    // Already removed (rollback --destroy, or deploy ecs --destroy): nothing is left to change.
    if (rollout.history.some((h) => h.action === 'destroy')) return;
    await this.deps.elb.setRuleWeights(ecs.ruleArn, weightsAt(0, this.groups(ecs)));
    await this.deps.ecs.scaleService(ecs.cluster, ecs.candidateService, 0);
    // The family's latest ACTIVE revision is the stable one again (the next deploy compares with it).
    await this.deps.ecs.deregisterTaskDefinition(ecs.candidateTaskDefinition).catch(() => undefined);
    if (options.destroy) await this.removeCandidate(ecs);
    const events = [
      ...(rollout.status === 'running'
        ? [{ at: this.now(), action: 'rollback' as const, weight: 0, reason }]
        : []),
      ...(options.destroy ? [{ at: this.now(), action: 'destroy' as const, weight: 0 }] : []),
    ];
    if (!events.length) return;
    await this.save(state, {
      ...rollout,
      status: 'rolled-back',
      weight: 0,
      history: [...rollout.history, ...events],
    });
  }
}

/** The candidate service as ECS sees it; a missing one, or a failed deployment, is down. */
export function candidateHealth(
  svc: Service | undefined,
  running: boolean,
): { health: string; down: boolean } {
  if (!svc) return { health: 'missing', down: running };
  const failed = svc.deployments?.find((d) => d.status === 'PRIMARY')?.rolloutState === 'FAILED';
  const health = `${failed ? 'deployment failed, ' : ''}running (${svc.runningCount ?? 0}/${svc.desiredCount ?? 0})`;
  return {
    health,
    down:
      running &&
      (failed || ((svc.desiredCount ?? 0) > 0 && svc.runningCount === 0 && svc.pendingCount === 0)),
  };
}
