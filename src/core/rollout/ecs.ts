// `mlship rollout` on ECS: the candidate runs as its own service (`<name>-candidate`, the
// stable revision with the candidate's image) with its own target group; a listener rule of
// the stack's load balancer forwards the service's requests to both groups by weight, changed
// in place at each step; both services roll back on their own CloudWatch alarms
// (deploymentConfiguration.alarms); the comparison reads each target group's metrics. What the
// load balancer cannot do (mirror, stick, keep the proxy's API keys) the stack's NGINX proxy
// does (ecs-proxy-route.ts), and the comparison reads both services' log lines in CloudWatch
// Logs (ecs-logs.ts).
// Every created piece is recorded in deploy/ecs-rollouts.json, and a failed start undoes them.

import type { Service, TaskDefinition } from '@aws-sdk/client-ecs';
import type { Rollout, RolloutsFile } from '../../config/rollout-schema.js';
import type { Clock } from '../../io/clock.js';
import { UsageError } from '../../io/errors.js';
import type { CloudWatchApi, Ec2Api, ElbApi, ServiceLoadBalancer } from '../deploy/aws-apis.js';
import { loadBalancerNames } from '../deploy/load-balancer-plan.js';
import type { EcsPlanResult } from '../deploy/plan.js';
import { type RouteLogDeps, routeComparison } from './ecs-logs.js';
import {
  compareFromMetrics,
  type EcsRolloutLayout,
  ecsRolloutLayout,
  metricQueries,
  proxyRouteReasons,
  refuseOnEcs,
  sideAlarms,
  weightsAt,
} from './ecs-plan.js';
import {
  candidateServiceSpec,
  type ProxyRouteDeps,
  type ProxyRouteRecord,
  promoteProxyRoute,
  promoteStable,
  registerCandidate,
  routeSummary,
  startProxyRoute,
  stepProxyRoute,
  stopProxyRoute,
} from './ecs-proxy-route.js';
import { candidateSize, resizeAround } from './ecs-size.js';
import { promoteInConfig } from './promote-config.js';
import { candidateShare } from './samples.js';
import { readRollouts, writeRollouts } from './state.js';
import type { PromoteResult, RolloutTarget, StatusReport } from './target.js';
import { type Comparison, compare, DEFAULT_GATES, type Gates, verdict } from './verdict.js';

export interface EcsRolloutDeps {
  ecs: ProxyRouteDeps['ecs'];
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
  /** A proxy-routed rollout's comparison: both services' log lines (FilterLogEvents). */
  logs: RouteLogDeps['logs'];
  /** Until the service runs its desired tasks of that revision (deploy's wait); fails with the reason. */
  waitStable(service: string, taskDefinition: string): Promise<void>;
  /** `--path`: builds the candidate and pushes it beside the stable image; the reference ECS pulls. */
  candidateImage?(rollout: Rollout, stableImage: string): Promise<string>;
  /** A proxy-routed rollout: the proxy's image with the rollout's nginx.conf (ecs-proxy-route.ts). */
  bakeProxyImage?: ProxyRouteDeps['bakeProxyImage'];
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
type Undo = (() => Promise<unknown>)[];
type Sides<T> = Record<'stable' | 'candidate', T>;

/** What start found deployed, and the candidate's revision; `attached` once stable uses its group. */
interface Deployed {
  stable: Service;
  lb: { arn: string; vpcId: string; securityGroups: string[] };
  listenerArn: string;
  revision: string;
  /** The stable revision the candidate's was made from (its sizes are the candidate's). */
  running: TaskDefinition;
  attached: boolean;
}

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

  /** The rollout of the service, any kind: the proxy's record when the proxy routes it. */
  private async any(): Promise<{ state: RolloutsFile; rollout: Rollout; proxy?: ProxyRouteRecord }> {
    const state = await readRollouts(this.stack.stateFile);
    const rollout = state.rollouts[this.service];
    if (rollout?.ecsProxy) return { state, rollout, proxy: rollout.ecsProxy };
    const r = await this.record();
    return { state: r.state, rollout: r.rollout };
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
  async start(rollout: Rollout): Promise<Rollout> {
    refuseOnEcs(rollout);
    const state = await readRollouts(this.stack.stateFile);
    if (state.rollouts[this.service]?.status === 'running')
      throw new UsageError(`a rollout of ${this.service} is running`, {
        hint: `promote or roll it back first: mlship rollout status ${this.service} --target ecs`,
      });
    const reasons = proxyRouteReasons(rollout, this.layout);
    const undo: Undo = [];
    try {
      if (reasons.length) {
        this.deps.log(`routed by the stack's proxy: ${reasons.join('; ')}`);
        const proxy = await startProxyRoute(
          this.deps,
          this.stack,
          this.layout,
          await this.stableService(),
          rollout,
          undo,
        );
        const recorded = { ...rollout, ecsProxy: proxy };
        await this.save(state, recorded);
        return recorded;
      }
      const recorded = { ...rollout, ecs: await this.create(rollout, undo) };
      await this.save(state, recorded);
      return recorded;
    } catch (e) {
      for (const step of undo.reverse()) await step().catch(() => undefined);
      throw e;
    }
  }

  /** start's steps in order; each one registers how to undo what it created. */
  private async create(rollout: Rollout, undo: Undo): Promise<EcsRecord> {
    const base = await this.deployed(rollout, undo);
    const groups = await this.targetGroups(base, undo);
    const alarms = await this.alarms(base, groups, undo);
    await this.openPort(base);
    await this.wireStable(base, groups, alarms, undo);
    await this.candidateService(base, groups, alarms, rollout, undo);
    const rules = await this.rules(base, groups, rollout.weight, undo);
    return {
      cluster: this.layout.cluster,
      stableService: this.service,
      candidateService: this.layout.candidateService,
      stableTaskDefinition: base.stable.taskDefinition!,
      candidateTaskDefinition: base.revision,
      loadBalancerArn: base.lb.arn,
      listenerArn: base.listenerArn,
      ...rules,
      stableTargetGroupArn: groups.stable,
      candidateTargetGroupArn: groups.candidate,
      alarms: [...alarms.stable, ...alarms.candidate],
    };
  }

  /** The deployed stable service, load balancer and listener, and the candidate's revision registered. */
  private async deployed(rollout: Rollout, undo: Undo): Promise<Deployed> {
    const { elb } = this.deps;
    const L = this.layout;
    const stable = await this.stableService();
    const lb = await elb.findLoadBalancer(loadBalancerNames(this.stack.plan.stack).loadBalancer);
    const listenerArn = lb && (await elb.listenerArn(lb.arn, L.listenerPort));
    if (!lb || !listenerArn)
      throw new UsageError(
        `the load balancer of stack ${L.cluster} (listener ${L.listenerPort}) is not deployed`,
        { hint: 'mlship deploy ecs --apply' },
      );
    const { arn: revision, running } = await registerCandidate(this.deps, L, stable, rollout, undo);
    return { stable, lb, listenerArn, revision, running, attached: false };
  }

  /** One target group for each side, so the rule can weigh them and each has its metrics. */
  private async targetGroups(base: Deployed, undo: Undo): Promise<Sides<string>> {
    const L = this.layout;
    const groups: Sides<string> = { stable: '', candidate: '' };
    for (const side of ['stable', 'candidate'] as const) {
      const tg = await this.deps.elb.ensureTargetGroup({
        name: L.targetGroups[side],
        vpcId: base.lb.vpcId,
        port: L.port,
        healthCheckPath: '/healthz',
        healthCheckIntervalSeconds: 10,
      });
      // Once the stable service uses its group, the group stays (a service keeps a deleted group's ARN).
      if (tg.created)
        undo.push(async () =>
          side === 'stable' && base.attached ? [] : this.deps.elb.deleteTargetGroups([L.targetGroups[side]]),
        );
      groups[side] = tg.arn;
    }
    return groups;
  }

  private async alarms(base: Deployed, groups: Sides<string>, undo: Undo): Promise<Sides<string[]>> {
    const L = this.layout;
    const specs = (side: 'stable' | 'candidate') =>
      sideAlarms(L, side, { loadBalancer: base.lb.arn, targetGroup: groups[side] }, L.cluster);
    const all = [...specs('stable'), ...specs('candidate')];
    for (const a of all) await this.deps.cloudwatch.putAlarm(a);
    undo.push(() => this.deps.cloudwatch.deleteAlarms(all.map((a) => a.name)));
    return { stable: specs('stable').map((a) => a.name), candidate: specs('candidate').map((a) => a.name) };
  }

  /**
   * The load balancer reaches the model's port now, not only the proxy's (deploy opened that one);
   * --destroy revokes every rule from the load balancer's group.
   */
  private async openPort(base: Deployed): Promise<void> {
    const network = base.stable.networkConfiguration?.awsvpcConfiguration;
    for (const group of network?.securityGroups ?? [])
      for (const from of base.lb.securityGroups)
        await this.deps.ec2.allowIngress(group, {
          port: this.layout.port,
          fromGroup: from,
          description: `mlship: load balancer to ${this.service} (rollout)`,
        });
  }

  private target(arn: string): ServiceLoadBalancer {
    return { targetGroupArn: arn, containerName: this.layout.container, containerPort: this.layout.port };
  }

  /**
   * The stable service registers with its rollout group too (kept after the rollout: the next one
   * needs no deployment of the stable service for it) and rolls back on its alarms.
   */
  private async wireStable(base: Deployed, groups: Sides<string>, alarms: Sides<string[]>, undo: Undo) {
    const L = this.layout;
    const { stable } = base;
    // By name: a group of that name deleted and created again has another ARN.
    const others = ((stable.loadBalancers ?? []) as ServiceLoadBalancer[]).filter(
      (l) => !l.targetGroupArn.includes(`:targetgroup/${L.targetGroups.stable}/`),
    );
    const has = (stable.loadBalancers ?? []).some((l) => l.targetGroupArn === groups.stable);
    const update = { cluster: L.cluster, service: this.service, taskDefinition: stable.taskDefinition! };
    await this.deps.ecs.updateService({
      ...update,
      forceNewDeployment: false,
      deploymentAlarms: alarms.stable,
      ...(has ? {} : { loadBalancers: [...others, this.target(groups.stable)] }),
    });
    base.attached = true;
    undo.push(() =>
      this.deps.ecs.updateService({
        ...update,
        forceNewDeployment: false,
        // Its alarms as they were (the rollout's are deleted); its rollout group stays, unused.
        deploymentAlarms: stable.deploymentConfiguration?.alarms?.alarmNames ?? [],
      }),
    );
    this.deps.log(`${this.service}: rolls back on ${alarms.stable.join(', ')}`);
  }

  private async candidateService(
    base: Deployed,
    groups: Sides<string>,
    alarms: Sides<string[]>,
    rollout: Rollout,
    undo: Undo,
  ): Promise<void> {
    const L = this.layout;
    const { stable } = base;
    await this.deps.ecs.createService({
      ...candidateServiceSpec(L, stable, base.revision, rollout),
      // A client of the namespace only: Service Connect traffic to the service stays on stable.
      serviceConnect: { namespace: L.cluster, services: [] },
      loadBalancers: [this.target(groups.candidate)],
      deploymentAlarms: alarms.candidate,
    });
    undo.push(() => this.deps.ecs.deleteService(L.cluster, L.candidateService));
    this.deps.log(
      `created service ${L.candidateService}, ${candidateSize(this.service, stable.desiredCount ?? 1, base.running, rollout)}; waiting until it is stable`,
    );
    await this.deps.waitStable(L.candidateService, base.revision);
  }

  /** The header override (every such request to the candidate), then the weighted split. */
  private async rules(base: Deployed, groups: Sides<string>, weight: number, undo: Undo) {
    const L = this.layout;
    const common = {
      listenerArn: base.listenerArn,
      paths: L.paths,
      ...(L.rewrite ? { rewrite: L.rewrite } : {}),
      tags: { 'mlship:stack': L.cluster, 'mlship:rollout': this.service },
    };
    const overrideRuleArn = await this.deps.elb.createRule({
      ...common,
      priority: L.priority,
      header: { name: 'X-Model-Version', value: 'candidate' },
      weights: [{ targetGroupArn: groups.candidate, weight: 1 }],
    });
    undo.push(() => this.deps.elb.deleteRule(overrideRuleArn));
    const ruleArn = await this.deps.elb.createRule({
      ...common,
      priority: L.priority + 1,
      weights: weightsAt(weight, groups),
    });
    this.deps.log(`listener ${L.listenerPort}: ${L.paths.join(', ')} → ${100 - weight}/${weight}`);
    return { ruleArn, overrideRuleArn };
  }

  private groups(e: EcsRecord) {
    return { stable: e.stableTargetGroupArn, candidate: e.candidateTargetGroupArn };
  }

  async setWeight(weight: number): Promise<void> {
    const found = await this.any();
    if (found.proxy) return this.stepThroughProxy(found.state, found.rollout, found.proxy, weight);
    const { state, rollout, ecs } = await this.running();
    await this.toWeight(ecs, rollout, weight);
    await this.save(state, this.stepped(rollout, weight));
  }

  /** The listener's split at `weight`, the candidate sized for it (ecs-size.ts). */
  private async toWeight(ecs: EcsRecord, rollout: Rollout, weight: number): Promise<void> {
    await resizeAround(this.deps, ecs, { ...rollout, weight }, async () => {
      await this.deps.elb.setRuleWeights(ecs.ruleArn, weightsAt(weight, this.groups(ecs)));
      this.deps.log(
        `listener ${this.layout.listenerPort}: ${this.layout.paths.join(', ')} → ${100 - weight}/${weight}`,
      );
    });
  }

  private stepped(rollout: Rollout, weight: number): Rollout {
    return { ...rollout, weight, history: [...rollout.history, { at: this.now(), action: 'step', weight }] };
  }

  /** A step of a rollout the proxy routes: the proxy's next revision, with the new share. */
  private async stepThroughProxy(
    state: RolloutsFile,
    rollout: Rollout,
    s: ProxyRouteRecord,
    weight: number,
  ): Promise<void> {
    if (rollout.mode === 'shadow')
      throw new UsageError(
        `the rollout of ${this.service} on ECS is a shadow: it takes no share of requests`,
        {
          hint: `promote it (mlship rollout promote ${this.service} --target ecs) or roll it back; a canary is its own rollout`,
        },
      );
    if (rollout.status !== 'running')
      throw new UsageError(`the rollout of ${this.service} is over (${rollout.status})`);
    const next = this.stepped(rollout, weight);
    const proxy = await resizeAround(this.deps, s, next, () =>
      stepProxyRoute(this.deps, this.stack, s, next),
    );
    await this.save(state, { ...next, ecsProxy: proxy });
  }

  async status(): Promise<StatusReport> {
    const { rollout, proxy } = await this.any();
    if (proxy) return this.proxyStatus(rollout, proxy);
    const { ecs } = await this.record();
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
    return this.report(rollout, comparison, gates, ecs, [
      "from the load balancer's metrics per target group (CloudWatch, 1-minute resolution, a few minutes late); latency tested on the minutes' averages",
      'answers are not compared on ECS (the load balancer cannot mirror)',
    ]);
  }

  /** The status with its verdict and the candidate service's health. */
  private async report(
    rollout: Rollout,
    comparison: Comparison,
    gates: Gates,
    where: { cluster: string; candidateService: string },
    notes: string[],
  ): Promise<StatusReport> {
    const candidate = await this.deps.ecs.describeService(where.cluster, where.candidateService);
    const { health, down } = candidateHealth(candidate, rollout.status === 'running');
    return {
      rollout,
      comparison,
      verdict: verdict(comparison, gates),
      candidateHealth: health,
      candidateDown: down,
      notes,
    };
  }

  /**
   * The requests of a rollout the proxy routes pass through the proxy, not through a target
   * group per version: no load balancer metrics to compare. Both versions log each request, and
   * the sampled answers, to CloudWatch Logs; status reads them since the rollout started
   * (ecs-logs.ts).
   */
  private async proxyStatus(rollout: Rollout, s: ProxyRouteRecord): Promise<StatusReport> {
    const gates: Gates = { ...DEFAULT_GATES, ...rollout.gates, ...this.gatesOverride };
    // A rollout that is over is read up to its end (the stable service's later lines are not its).
    const ended = rollout.status === 'running' ? undefined : rollout.history.at(-1)?.at;
    const window = {
      startMs: Date.parse(rollout.startedAt),
      endMs: ended ? Date.parse(ended) : this.deps.clock.now(),
    };
    const read = await routeComparison(this.deps, s, this.layout.container, window, gates, {
      share: candidateShare(rollout),
      mirrored: rollout.mode === 'shadow' || rollout.mirror,
    });
    const comparison = read.comparison ?? compare({ stable: [], candidate: [], pairs: [] }, gates);
    const report = await this.report(rollout, comparison, gates, s, [
      `routed by the stack's proxy: ${s.proxyService} runs ${s.routeProxyTaskDefinition.split('/').pop()} (${routeSummary(rollout)}); before the rollout ${s.proxyTaskDefinition.split('/').pop()}`,
      ...read.notes,
    ]);
    return read.mirror ? { ...report, mirror: read.mirror } : report;
  }

  /**
   * Every request to the candidate, the stable service updated to the candidate's version
   * registered as a stable revision (its one deployment; promoteStable) and waited for, then
   * every request back to it and the rules removed (traffic flows through the proxy again), then
   * the candidate, its group and its alarms removed.
   */
  async promote(): Promise<PromoteResult> {
    const found = await this.any();
    if (found.proxy) return this.promoteThroughProxy(found.state, found.rollout, found.proxy);
    const { state, rollout, ecs } = await this.running();
    const { elb } = this.deps;
    // Every request to the candidate while the stable service deploys its version: all its tasks first.
    await this.toWeight(ecs, rollout, 100);
    const promoted = await promoteStable(
      this.deps,
      ecs.cluster,
      ecs.stableService,
      this.layout.container,
      ecs.candidateTaskDefinition,
    );
    await elb.setRuleWeights(ecs.ruleArn, weightsAt(0, this.groups(ecs)));
    await this.removeCandidate(ecs);
    return this.promoted(
      state,
      rollout,
      promoted,
      `${ecs.stableService} keeps its rollout target group and alarms for the next rollout`,
    );
  }

  /** After a promotion: mlship.yaml edited as locally, the rollout recorded as promoted. */
  private async promoted(
    state: RolloutsFile,
    rollout: Rollout,
    stableRevision: string,
    note: string,
  ): Promise<PromoteResult> {
    const changed = await promoteInConfig(this.stack.configFile, rollout);
    await this.save(state, {
      ...rollout,
      status: 'promoted',
      weight: 0,
      history: [...rollout.history, { at: this.now(), action: 'promote', weight: 100 }],
    });
    return {
      stableNow: `${stableRevision.split('/').pop()} (${rollout.candidate.image ?? rollout.candidate.path})`,
      ...(changed.length ? { configChanged: this.stack.configFile } : {}),
      notes: [...changed.map((c) => `${this.stack.configFile}: ${c}`), note],
    };
  }

  private async promoteThroughProxy(
    state: RolloutsFile,
    rollout: Rollout,
    s: ProxyRouteRecord,
  ): Promise<PromoteResult> {
    if (rollout.status !== 'running')
      throw new UsageError(`the rollout of ${this.service} is over (${rollout.status})`);
    const promoted = await promoteProxyRoute(this.deps, s, this.layout.container);
    return this.promoted(
      state,
      rollout,
      promoted,
      `${s.proxyService} is back on ${s.proxyTaskDefinition.split('/').pop()} (no rollout)`,
    );
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
    const found = await this.any();
    if (found.proxy)
      return this.rollbackThroughProxy(found.state, found.rollout, found.proxy, reason, options);
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
    await this.rolledBack(state, rollout, reason, options);
  }

  /** The rollback (if it was running) and the removal (with --destroy), recorded. */
  private async rolledBack(
    state: RolloutsFile,
    rollout: Rollout,
    reason: string,
    options: { destroy?: boolean },
  ): Promise<void> {
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

  private async rollbackThroughProxy(
    state: RolloutsFile,
    rollout: Rollout,
    s: ProxyRouteRecord,
    reason: string,
    options: { destroy?: boolean },
  ): Promise<void> {
    if (rollout.status === 'promoted')
      throw new UsageError(`the rollout of ${this.service} was promoted: there is no candidate to roll back`);
    if (rollout.history.some((h) => h.action === 'destroy')) return;
    if (rollout.status === 'running' || options.destroy) await stopProxyRoute(this.deps, s, options);
    await this.rolledBack(state, rollout, reason, options);
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
