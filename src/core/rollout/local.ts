// `mlship rollout` on the local stack (compose): the candidate is a second service of the
// stack, NGINX routes to it (split, header override, mirror) and reloads gracefully; the
// numbers come from both services' logs. Each step writes the rollout's record first and
// undoes what it changed when a later part fails, so a failed start leaves the stack as it was.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ComposeCli, ComposeRunner } from '../../adapters/compose.js';
import type { ContainerState, Engine } from '../../adapters/docker/engine.js';
import type { Rollout, RolloutsFile } from '../../config/rollout-schema.js';
import {
  candidateName,
  DEFAULT_CPU_SHARES,
  type ProxyRouting,
  ROLLOUT_LABEL,
  ROUTING_DIR,
  ROUTING_STATE_FILE,
  routingOf,
} from '../../generators/compose-rollout.js';
import type { Clock } from '../../io/clock.js';
import { isMlshipError, OperationFailedError, UsageError } from '../../io/errors.js';
import { exists, writeFileAtomic } from '../../io/files.js';
import { type ComposeGenerateResult, generateCompose, renderComposeYaml } from '../compose/generate.js';
import { PROJECT_LABEL, SERVICE_LABEL } from '../compose/ports.js';
import { promoteInConfig } from './promote-config.js';
import { type ExecResult, reloadProxy } from './proxy-reload.js';
import { changeRouting, lacksNjs, writeRoutingState } from './proxy-routing.js';
import { candidateShare, mirrorOutcome, parseServiceLog, rolloutSamples } from './samples.js';
import { atIdle, idleContainer, type ShadowCgroups } from './shadow-priority.js';
import { ROLLOUTS_FILE, readRollouts, writeRollouts } from './state.js';
import type { PromoteResult, RolloutTarget, StatusReport } from './target.js';
import { compare, DEFAULT_GATES, type Gates, verdict } from './verdict.js';

export interface LocalRolloutDeps {
  compose: ComposeRunner;
  cli: ComposeCli;
  engine: Pick<Engine, 'listByLabel' | 'tag'>;
  /** A container's stdout since a moment (`docker logs --since`). */
  containerLogs(container: string, since: Date): Promise<string>;
  execIn(container: string, argv: string[]): Promise<ExecResult>;
  removeContainer(container: string): Promise<void>;
  /** `docker update` of a running container's CPU weight and cap (null: no cap, every CPU). */
  updateCpu(container: string, cpu: { shares: number; cpus?: number | null }): Promise<void>;
  /** A shadow's idle cgroup parent on the host. */
  shadowCgroups: ShadowCgroups;
  fetch: typeof fetch;
  clock: Clock;
  log(line: string): void;
}

export interface LocalStack {
  configFile: string;
  /** Where the generated stack is (default deploy/compose beside mlship.yaml). */
  outDir?: string;
  /** How long a new candidate may take to be healthy (default: its start-up grace + 120 s). */
  timeoutSeconds?: number;
}

const PROXY_MOUNT = '/etc/nginx/conf.d/default.conf';
const running = (f: RolloutsFile) => Object.values(f.rollouts).filter((r) => r.status === 'running');
const tail = (text: string, n = 30) => text.split('\n').filter(Boolean).slice(-n);

interface Names {
  stable: string;
  candidate: string;
  proxy: string;
  profileArgs: string[];
}

/** The local target of one service's rollout. */
export class LocalRollout implements RolloutTarget {
  constructor(
    private readonly deps: LocalRolloutDeps,
    private readonly stack: LocalStack,
    readonly service: string,
    private readonly gatesOverride?: Partial<Gates>,
  ) {}

  private outDir(): string {
    return path.resolve(
      this.stack.outDir ?? path.join(path.dirname(path.resolve(this.stack.configFile)), 'deploy', 'compose'),
    );
  }

  private stateFile(): string {
    return path.join(this.outDir(), ROLLOUTS_FILE);
  }

  private generate(state: RolloutsFile, proxyRouting?: ProxyRouting): Promise<ComposeGenerateResult> {
    return generateCompose({
      configFile: this.stack.configFile,
      outDir: this.outDir(),
      force: false,
      dryRun: true,
      rollouts: running(state),
      ...(proxyRouting ? { proxyRouting } : {}),
    });
  }

  private project(gen: ComposeGenerateResult) {
    return { cli: this.deps.cli, name: gen.project.name, file: gen.composeFile, dir: gen.outDir };
  }

  private async containers(project: string): Promise<ContainerState[]> {
    return this.deps.engine.listByLabel(PROJECT_LABEL, project);
  }

  /** Compose names of the stable service, its candidate and the proxy in the profile that runs. */
  private async names(gen: ComposeGenerateResult): Promise<Names> {
    const list = await this.containers(gen.project.name);
    const cpu = list.some((c) => c.labels[SERVICE_LABEL] === `${this.service}-cpu`);
    const suffix = cpu ? '-cpu' : '';
    return {
      stable: `${this.service}${suffix}`,
      candidate: `${candidateName(this.service)}${suffix}`,
      proxy: `proxy${gen.stack.profiles.length ? suffix : ''}`,
      profileArgs: gen.stack.profiles.length ? ['--profile', cpu ? 'cpu' : 'gpu'] : [],
    };
  }

  private async rollout(): Promise<{ state: RolloutsFile; rollout: Rollout }> {
    const state = await readRollouts(this.stateFile());
    const rollout = state.rollouts[this.service];
    if (!rollout)
      throw new UsageError(`no rollout of ${this.service} in ${this.stateFile()}`, {
        hint: `start one: mlship rollout start ${this.service} --canary 10 --path <candidate>`,
      });
    return { state, rollout };
  }

  private async compose(gen: ComposeGenerateResult, args: string[], what: string, timeoutMs = 30 * 60_000) {
    const r = await this.deps.compose(this.project(gen), args, { timeoutMs });
    if (r.exitCode !== 0)
      throw new OperationFailedError('ROLLOUT_COMPOSE_FAILED', `${what} failed`, {
        details: tail(`${r.stdout}\n${r.stderr}`),
      });
    return r;
  }

  /** Waits until the service's container is healthy; its state and last log lines when it is not. */
  private async waitHealthy(
    gen: ComposeGenerateResult,
    service: string,
    graceSeconds = Number.parseInt(gen.stack.compose.services[service]?.healthcheck.start_period ?? '60', 10),
  ): Promise<void> {
    const deadline = this.deps.clock.monotonic() + (this.stack.timeoutSeconds ?? graceSeconds + 120) * 1000;
    for (;;) {
      const c = (await this.containers(gen.project.name)).find((x) => x.labels[SERVICE_LABEL] === service);
      if (c?.health === 'healthy' || (c && c.health === undefined && c.state === 'running')) return;
      const failed = c && (c.state === 'exited' || c.state === 'dead' || c.health === 'unhealthy');
      if (failed || this.deps.clock.monotonic() > deadline) {
        const logs = await this.deps.compose(this.project(gen), [
          'logs',
          '--no-color',
          '--tail',
          '30',
          service,
        ]);
        throw new OperationFailedError('ROLLOUT_CANDIDATE_UNHEALTHY', `${service} did not become healthy`, {
          details: [
            `state: ${c?.state ?? 'not created'}${c?.health ? ` (${c.health})` : ''}`,
            ...tail(logs.stdout || logs.stderr),
          ],
          hint: `\`mlship compose logs ${service}\` shows more`,
        });
      }
      await this.deps.clock.sleep(500);
    }
  }

  private proxyUrl(gen: ComposeGenerateResult): string {
    return `http://127.0.0.1:${gen.project.proxy!.port}`;
  }

  /**
   * The proxy routes as `gen` says. A proxy that routes from the state file (njs) gets the new
   * state file and no reload, unless `reload` (a new rollout: new upstreams); otherwise nginx.conf
   * is replaced and NGINX reloaded. `routed` says whether the rollout must show in answers.
   */
  private async applyProxy(
    gen: ComposeGenerateResult,
    names: Names,
    routed: boolean | 'any',
    reload = false,
  ): Promise<void> {
    const content = gen.stack.files.find((f) => f.path === 'proxy/nginx.conf')!.content;
    const state = gen.stack.files.find((f) => f.path === `${ROUTING_DIR}/${ROUTING_STATE_FILE}`)?.content;
    const confFile = path.join(gen.outDir, 'proxy', 'nginx.conf');
    const url = `${this.proxyUrl(gen)}/api/${this.service}/healthz`;
    const active =
      routed === 'any'
        ? undefined
        : async () => {
            const r = await this.deps.fetch(url, { headers: { 'x-model-version': 'stable' } });
            await r.arrayBuffer();
            return r.headers.has('x-model-version') === routed;
          };
    const runs = routingOf(await readFile(confFile, 'utf8').catch(() => ''));
    if (!reload && runs === 'state' && state !== undefined) {
      await changeRouting(this.deps, {
        outDir: gen.outDir,
        state,
        ...(active ? { active } : {}),
      });
      return;
    }
    const proxy = (await this.containers(gen.project.name)).find(
      (c) => c.labels[SERVICE_LABEL] === names.proxy,
    );
    if (!proxy)
      throw new UsageError(`the stack's proxy is not running`, { hint: 'run `mlship compose up` first' });
    if (state !== undefined) await writeRoutingState(gen.outDir, state);
    await reloadProxy(this.deps, {
      container: proxy.id,
      file: confFile,
      mountedAt: PROXY_MOUNT,
      content,
      ...(active ? { active } : {}),
      recreate: async () => {
        await this.compose(
          gen,
          [...names.profileArgs, 'up', '-d', '--no-deps', '--force-recreate', names.proxy],
          'recreating the proxy',
        );
        await this.waitHealthy(gen, names.proxy, 30);
        const c = (await this.containers(gen.project.name)).find(
          (x) => x.labels[SERVICE_LABEL] === names.proxy,
        );
        return c!.id;
      },
    });
  }

  /**
   * A new rollout's routing. With the routing state, nginx.conf is already ready for it (written
   * by `compose generate/up`): the state file replaced, NGINX not reloaded. It is reloaded once
   * when its nginx.conf is older or the rollout asks what the ready one has not (the candidate on
   * another port, another shadow timeout); an NGINX without njs gets the shares in nginx.conf,
   * reloaded at each change.
   */
  private async routeNew(state: RolloutsFile, gen: ComposeGenerateResult, names: Names) {
    const content = gen.stack.files.find((f) => f.path === 'proxy/nginx.conf')!.content;
    if (routingOf(content) !== 'state') return this.applyProxy(gen, names, true, true);
    const current = await readFile(path.join(gen.outDir, 'proxy', 'nginx.conf'), 'utf8').catch(() => '');
    try {
      await this.applyProxy(gen, names, true, current !== content);
    } catch (e) {
      if (!isMlshipError(e) || e.code !== 'PROXY_CONFIG_INVALID' || !lacksNjs(e.details)) throw e;
      this.deps.log(
        "warning: the proxy's NGINX has no JavaScript module (njs) or routing folder: each change of share reloads it, which may close idle keep-alive connections (use an NGINX image that loads njs, e.g. mlship-local/nginx:1.22, and `mlship compose up`)",
      );
      await this.applyProxy(await this.generate(state, 'reload'), names, true, true);
    }
  }

  private async writeStack(gen: ComposeGenerateResult): Promise<void> {
    await writeFileAtomic(gen.composeFile, renderComposeYaml(gen.stack));
  }

  /** `mlship rollout start`: records the rollout, starts the candidate, routes to it. */
  async start(planned: Rollout, options: { stackShadowTimeout?: boolean } = {}): Promise<Rollout> {
    const state = await readRollouts(this.stateFile());
    if (state.rollouts[this.service]?.status === 'running')
      throw new UsageError(`a rollout of ${this.service} is running`, {
        hint: `promote or roll it back first: mlship rollout status ${this.service}`,
      });
    const before = await this.generate(state);
    const project = before.project;
    // The stack's shadow timeout unless one was given: nginx.conf is ready with it.
    const rollout =
      options.stackShadowTimeout && project.proxy
        ? { ...planned, shadowTimeoutMs: project.proxy.shadow_timeout_ms }
        : planned;
    if (!project.services[this.service])
      throw new UsageError(`${this.stack.configFile} has no service ${this.service}`, {
        hint: `services: ${Object.keys(project.services).join(', ')}`,
      });
    if (!project.proxy)
      throw new UsageError("a rollout routes through the stack's NGINX, and this stack has none", {
        hint: `add \`proxy: {}\` to ${this.stack.configFile} and run \`mlship compose up\``,
      });
    if (rollout.candidate.path) {
      const dir = path.resolve(path.dirname(path.resolve(this.stack.configFile)), rollout.candidate.path);
      if (!(await exists(path.join(dir, 'Dockerfile'))))
        throw new UsageError(`--path ${rollout.candidate.path} has no Dockerfile`, {
          hint: `wrap the candidate model there first: mlship wrap <model> --out ${rollout.candidate.path}`,
        });
    }
    const names = await this.names(before);
    const list = await this.containers(project.name);
    for (const s of [names.stable, names.proxy])
      if (!list.some((c) => c.labels[SERVICE_LABEL] === s && c.state === 'running'))
        throw new UsageError(`${s} of stack ${project.name} is not running`, {
          hint: 'run `mlship compose up` first',
        });
    const stable = list.find((c) => c.labels[SERVICE_LABEL] === names.stable)!;
    const shadowCgroup = rollout.mode === 'shadow' ? await this.shadowParent(stable.id, names) : undefined;
    const next: RolloutsFile = {
      ...state,
      rollouts: {
        ...state.rollouts,
        [this.service]: { ...rollout, ...(shadowCgroup ? { shadowCgroup } : {}) },
      },
    };
    // The routing state unless this proxy is known to lack njs (routeNew falls back when it does).
    const runs = routingOf(
      await readFile(path.join(before.outDir, 'proxy', 'nginx.conf'), 'utf8').catch(() => ''),
    );
    const gen = await this.generate(next, runs === 'reload' ? 'reload' : 'state');
    const saved = await Promise.all(
      [this.stateFile(), gen.composeFile].map(
        async (f) => [f, await readFile(f, 'utf8').catch(() => undefined)] as const,
      ),
    );
    let routed = false;
    try {
      await writeRollouts(this.stateFile(), next);
      await this.writeStack(gen);
      if (rollout.candidate.path) {
        this.deps.log(`building ${names.candidate} from ${rollout.candidate.path}`);
        await this.compose(
          gen,
          [...names.profileArgs, 'build', names.candidate],
          `building ${names.candidate}`,
          60 * 60_000,
        );
      }
      this.deps.log(`starting ${names.candidate}`);
      await this.compose(
        gen,
        [...names.profileArgs, 'up', '-d', '--no-deps', names.candidate],
        `starting ${names.candidate}`,
      );
      await this.waitHealthy(gen, names.candidate);
      if (rollout.mode === 'shadow') await this.idleShadow(gen, names, shadowCgroup);
      routed = true;
      await this.routeNew(next, gen, names);
      return next.rollouts[this.service]!;
    } catch (e) {
      for (const [file, text] of saved) if (text !== undefined) await writeFileAtomic(file, text);
      if (routed) await this.applyProxy(before, names, false).catch(() => undefined);
      await this.deps
        .compose(this.project(gen), [...names.profileArgs, 'rm', '-s', '-f', names.candidate])
        .catch(() => undefined);
      throw e;
    }
  }

  /**
   * A change of the running rollout, generated. A shadow that starts answering clients (it
   * becomes a canary) first gets the CPU a client-facing service has (see candidateCpu).
   */
  private async update(
    change: (r: Rollout) => Rollout,
  ): Promise<{ state: RolloutsFile; rollout: Rollout; gen: ComposeGenerateResult; names: Names }> {
    const { state, rollout } = await this.rollout();
    if (rollout.status !== 'running')
      throw new UsageError(`the rollout of ${this.service} is over (${rollout.status})`, {
        hint: `start a new one: mlship rollout start ${this.service} ...`,
      });
    const changed = change(rollout);
    // A shadow's idle cgroup parent is a shadow's only (its container is recreated without it).
    const { shadowCgroup: _parent, ...rest } = changed;
    const next = changed.mode === 'shadow' ? changed : rest;
    const file: RolloutsFile = { ...state, rollouts: { ...state.rollouts, [this.service]: next } };
    const gen = await this.generate(file);
    const names = await this.names(gen);
    if (rollout.mode === 'shadow' && next.mode !== 'shadow') {
      await this.leaveIdle(gen, names, Boolean(rollout.shadowCgroup));
      await this.candidateCpu(gen, names, rollout);
    }
    return { state: file, rollout: next, gen, names };
  }

  private async candidateContainers(gen: ComposeGenerateResult, names: Names) {
    return (await this.containers(gen.project.name)).filter(
      (c) => c.labels[SERVICE_LABEL] === names.candidate && c.state === 'running',
    );
  }

  /**
   * The idle cgroup parent for a shadow (shadow-priority.ts), made ready on the host where the
   * stable's container (`reference`) has its cgroup; undefined, with the reason told, when not.
   */
  private async shadowParent(reference: string, names: Names): Promise<string | undefined> {
    const r = await this.deps.shadowCgroups.prepare(reference);
    if (r.ok && r.parent) return r.parent;
    this.deps.log(
      `warning: ${names.candidate} shares the engine's cgroup with the primary (no idle cgroup parent: ${r.detail})`,
    );
    return undefined;
  }

  /** A shadow's processes at SCHED_IDLE (shadow-priority.ts); only its weight when that fails. */
  private async idleShadow(gen: ComposeGenerateResult, names: Names, parent?: string): Promise<void> {
    for (const c of await this.candidateContainers(gen, names)) {
      const r = await idleContainer(this.deps.execIn, c.id);
      this.deps.log(
        r.ok
          ? `${names.candidate}: at SCHED_IDLE (${r.detail}): it runs on CPU time the primary leaves`
          : `warning: ${names.candidate} runs at the lowest CPU weight only, not at SCHED_IDLE: ${r.detail}`,
      );
      if (!parent) continue;
      this.deps.log(
        (await this.deps.shadowCgroups.idle(c.id))
          ? `${names.candidate}: in the idle cgroup ${parent}`
          : `warning: ${names.candidate}'s cgroup parent ${parent} is not idle`,
      );
    }
  }

  /**
   * A shadow about to answer clients leaves SCHED_IDLE and its idle cgroup parent: a container
   * can do neither by itself, so it is recreated (as compose.yaml now has it: no cgroup parent)
   * and waited for before any request is routed to it; candidateCpu then gives it a
   * client-facing service's CPU.
   */
  private async leaveIdle(gen: ComposeGenerateResult, names: Names, inParent: boolean): Promise<void> {
    let idle = inParent;
    for (const c of await this.candidateContainers(gen, names)) idle ||= await atIdle(this.deps.execIn, c.id);
    if (!idle) return;
    this.deps.log(
      `recreating ${names.candidate} at the default CPU policy (a shadow runs at SCHED_IDLE, in an idle cgroup)`,
    );
    // As compose.yaml has it now: out of the idle cgroup parent.
    await this.writeStack(gen);
    await this.compose(
      gen,
      [...names.profileArgs, 'up', '-d', '--no-deps', '--force-recreate', names.candidate],
      `recreating ${names.candidate}`,
    );
    await this.waitHealthy(gen, names.candidate);
  }

  /**
   * A shadow runs at the lowest CPU weight (and under --shadow-cpus); once it answers clients
   * it gets the default weight and the stable's limit, in place (`docker update`, after
   * leaveIdle, before any request is routed to it). compose.yaml says the same from now.
   */
  private async candidateCpu(gen: ComposeGenerateResult, names: Names, shadow: Rollout): Promise<void> {
    const limit = gen.stack.compose.services[names.candidate]?.deploy?.resources.limits?.cpus;
    const cpu = {
      shares: DEFAULT_CPU_SHARES,
      ...(shadow.shadowCpus === undefined ? {} : { cpus: limit === undefined ? null : Number(limit) }),
    };
    for (const c of await this.candidateContainers(gen, names)) await this.deps.updateCpu(c.id, cpu);
  }

  async setWeight(weight: number): Promise<void> {
    const now = new Date(this.deps.clock.now()).toISOString();
    const { state, gen, names } = await this.update((r) => ({
      ...r,
      mode: r.mode === 'shadow' ? 'canary' : r.mode,
      weight,
      history: [...r.history, { at: now, action: 'step', weight }],
    }));
    await this.applyProxy(gen, names, 'any');
    await writeRollouts(this.stateFile(), state);
    await this.writeStack(gen);
  }

  /**
   * Every request to the candidate, then the stable service replaced by it (mlship.yaml edited,
   * its image the candidate's, recreated while it takes no traffic), then traffic back to it and
   * the candidate removed: users' requests move once.
   */
  async promote(): Promise<PromoteResult> {
    const now = () => new Date(this.deps.clock.now()).toISOString();
    const all = await this.update((r) => ({
      ...r,
      mode: r.mode === 'shadow' ? 'canary' : r.mode,
      weight: 100,
    }));
    await this.applyProxy(all.gen, all.names, 'any');
    await writeRollouts(this.stateFile(), all.state);
    const rollout = all.rollout;
    const changed = await promoteInConfig(this.stack.configFile, rollout);
    const project = all.gen.project.name;
    const stableImage = `${project}/${this.service}:dev`;
    if (rollout.candidate.path) {
      // The candidate's own image, under the stable service's name: nothing is built again.
      await this.deps.engine.tag(
        `${project}/${candidateName(this.service)}:dev`,
        `${project}/${this.service}`,
        'dev',
      );
    }
    // The stack as mlship.yaml now says, the candidate still taking every request.
    const swapped = await this.generate(all.state);
    await this.writeStack(swapped);
    await this.compose(
      swapped,
      [...all.names.profileArgs, 'up', '-d', '--no-deps', '--force-recreate', all.names.stable],
      `recreating ${all.names.stable}`,
    );
    await this.waitHealthy(swapped, all.names.stable);
    // Back to the stable service (now the new version); the candidate leaves.
    const done: RolloutsFile = {
      ...all.state,
      rollouts: {
        ...all.state.rollouts,
        [this.service]: {
          ...rollout,
          status: 'promoted',
          weight: 0,
          history: [...rollout.history, { at: now(), action: 'promote', weight: 100 }],
        },
      },
    };
    const final = await this.generate(done);
    await this.applyProxy(final, all.names, false);
    await this.compose(
      swapped,
      [...all.names.profileArgs, 'rm', '-s', '-f', all.names.candidate],
      `removing ${all.names.candidate}`,
    );
    await writeRollouts(this.stateFile(), done);
    await this.writeStack(final);
    return {
      stableNow: rollout.candidate.image ?? `${stableImage} (built from ${rollout.candidate.path})`,
      ...(changed.length ? { configChanged: this.stack.configFile } : {}),
      notes: changed.map((c) => `${this.stack.configFile}: ${c}`),
    };
  }

  async rollback(reason: string, options: { destroy?: boolean } = {}): Promise<void> {
    const { state, rollout } = await this.rollout();
    const now = new Date(this.deps.clock.now()).toISOString();
    const done: RolloutsFile = {
      ...state,
      rollouts: {
        ...state.rollouts,
        [this.service]: {
          ...rollout,
          status: rollout.status === 'promoted' ? 'promoted' : 'rolled-back',
          weight: 0,
          history: [
            ...rollout.history,
            { at: now, action: options.destroy ? 'destroy' : 'rollback', weight: 0, reason },
          ],
        },
      },
    };
    const gen = await this.generate(done);
    const names = await this.names(gen);
    if (rollout.status === 'running') await this.applyProxy(gen, names, false);
    const candidates = (await this.containers(gen.project.name)).filter(
      (c) => c.labels[ROLLOUT_LABEL] === 'candidate' && c.labels['dev.mlship.rollout-of'] === this.service,
    );
    // Stopped (scaled to 0), the candidate's container is kept for its logs until --destroy.
    for (const c of candidates) {
      if (options.destroy) await this.deps.removeContainer(c.id);
      else if (c.state === 'running')
        await this.compose(
          gen,
          [...names.profileArgs, 'stop', c.labels[SERVICE_LABEL] ?? names.candidate],
          'stopping the candidate',
        );
    }
    await writeRollouts(this.stateFile(), done);
    await this.writeStack(gen);
  }

  async status(): Promise<StatusReport> {
    const { rollout } = await this.rollout();
    const gen = await this.generate(await readRollouts(this.stateFile()));
    const names = await this.names(gen);
    const list = await this.containers(gen.project.name);
    const stable = list.filter((c) => c.labels[SERVICE_LABEL] === names.stable);
    const candidate = list.filter(
      (c) => c.labels[ROLLOUT_LABEL] === 'candidate' && c.labels['dev.mlship.rollout-of'] === this.service,
    );
    const since = new Date(rollout.startedAt);
    const read = async (cs: ContainerState[]) =>
      parseServiceLog(
        (await Promise.all(cs.map((c) => this.deps.containerLogs(c.id, since)))).join('\n').split('\n'),
      );
    const [s, c] = await Promise.all([read(stable), read(candidate)]);
    const gates: Gates = { ...DEFAULT_GATES, ...rollout.gates, ...this.gatesOverride };
    const comparison = compare(rolloutSamples(s, c), gates, candidateShare(rollout));
    const cand = candidate[0];
    const health = cand ? (cand.health ?? cand.state) : 'missing';
    const notes: string[] = [];
    if (s.otherLines && !s.samples.length)
      notes.push(
        `${names.stable} logs no request lines: only services made by \`mlship wrap\` can be compared`,
      );
    const mirrors = rollout.mode === 'shadow' || rollout.mirror;
    return {
      rollout,
      comparison,
      verdict: verdict(comparison, gates),
      ...(mirrors ? { mirror: mirrorOutcome(s, c) } : {}),
      candidateHealth: health,
      candidateDown:
        rollout.status === 'running' &&
        (health === 'missing' || health === 'exited' || health === 'dead' || health === 'unhealthy'),
      notes,
    };
  }
}
