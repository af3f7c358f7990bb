// A rollout on ECS that the stack's proxy routes (a shadow; a canary sticky on a header; any
// rollout behind the proxy's API keys, as this stack's are) against moto's real ECS APIs, with
// the CLI's own bake (a real engine, pushed to the local registry): the candidate as a Service
// Connect server named `<service>-candidate`, the proxy moved to a new revision whose image
// (built FROM its image from before the rollout, pushed to the local registry) carries the
// rollout's nginx.conf, checked against a golden file and by `nginx -t` in that very image; a
// step of the share is the next such revision; rollback and promote put the proxy's previous
// revision back. moto starts no task, so start/rollback/promote run through EcsRollout with a
// wait that records what it waited for (the CLI waits for running tasks); status and the
// refused step run through the CLI. Requests are routed for real by `deploy ecs --local`, which
// runs what the services run (two wrapped versions of fixtures/rollout, the candidate differing
// on 10 % of inputs, behind the baked proxy, its API keys read from moto's Secrets Manager);
// their log lines are shipped to moto's CloudWatch Logs as the awslogs driver would, and
// `rollout status` compares them from there.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as logsSdk from '@aws-sdk/client-cloudwatch-logs';
import * as ec2Sdk from '@aws-sdk/client-ec2';
import * as ecsSdk from '@aws-sdk/client-ecs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bakeAndPush } from '../../src/cli/commands/rollout-ecs.js';
import { serviceConnectOf } from '../../src/core/deploy/apply.js';
import type { AwsDeployApis } from '../../src/core/deploy/aws-apis.js';
import type { EcsPlanResult } from '../../src/core/deploy/plan.js';
import { rolloutFromFlags } from '../../src/core/rollout/options.js';
import { fakeClock } from '../../src/io/clock.js';
import { shipAsAwslogs, timedLogLines } from '../helpers/awslogs-ship.js';
import { LOCAL_PYTHON_IMAGE, removeImagesTagged, requireEngine, requireImage } from '../helpers/docker.js';
import { emfDimensions } from '../helpers/emf.js';
import { expectGolden } from '../helpers/golden.js';
import { FAKE_CREDENTIALS, type Moto, startMoto } from '../helpers/moto.js';
import { ecsRolloutOnMoto, planOnMoto } from '../helpers/moto-stack.js';
import { predictAll as predictLoad, type StatusJson, wrapRolloutArgs } from '../helpers/predict-load.js';

const engine = await requireEngine();
const BIN = path.resolve('bin/mlship.js');
const REGION = 'eu-west-1';
/** The proxy's running image: the local NGINX (no registry can be pulled from here). */
const PROXY_IMAGE = 'mlship-local/nginx:1.22';
const CANDIDATE_IMAGE = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/sh-demo/iris:v2';
/** The stable image: fixtures/rollout/v1 wrapped and built here (the candidate's is v2). */
const STABLE_IMAGE = 'mlship-test/sh-demo-iris:v1';
/** Requests sent through the locally run proxy: x = 0..N-1, of which v2 differs on exactly 10 %. */
const N = 500;
/** The stack's one API key (36 characters, as `mlship keys create` makes them), in moto's Secrets Manager. */
const KEY = 'mlk_test0123456789abcdefghijklmnopqr';
const PROJECT = `# a model behind the stack's proxy, which asks for API keys
version: 1
name: sh-demo
services:
  iris:
    image: mlship-test/sh-demo-iris:v1
proxy:
  auth: api_key
aws:
  region: eu-west-1
  account_id: "123456789012"
`;

/** fixtures/rollout v1 and v2 wrapped (`mlship wrap`) and built as the stable and candidate images. */
function buildVersions(dir: string): void {
  for (const [version, image] of [
    ['v1', STABLE_IMAGE],
    ['v2', CANDIDATE_IMAGE],
  ] as const) {
    const out = path.join(dir, 'versions', version);
    const wrap = spawnSync(process.execPath, [BIN, ...wrapRolloutArgs(version, out, 'iris')], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CI: 'true' },
    });
    expect(wrap.status, wrap.stderr).toBe(0);
    const build = spawnSync('docker', ['build', '-q', '-t', image, out], { encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(0);
  }
}

/** One prediction POSTed to the locally run load balancer listener, with the API key unless `key` is ''. */
function send(base: string, x: number, headers: Record<string, string> = {}, key = KEY) {
  return fetch(new URL('api/iris/predict', base), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'x-api-key': key } : {}), ...headers },
    body: JSON.stringify({ x }),
  });
}

/** x = 0..n-1 POSTed with the key, 8 at a time; `headers(x)` added to each. */
function predictAll(base: string, n: number, headers: (x: number) => Record<string, string> = () => ({})) {
  return predictLoad((x) => send(base, x, headers(x)), 0, n, 8);
}

/** The nginx.conf baked into a routing proxy image. */
function bakedConf(image: string): string {
  const baked = spawnSync('docker', ['run', '--rm', image, 'cat', '/etc/nginx/conf.d/default.conf'], {
    encoding: 'utf8',
  });
  expect(baked.status, baked.stderr).toBe(0);
  return baked.stdout;
}

/** NGINX accepts the baked file in that very image (with the hosts Service Connect names). */
function expectNginxAccepts(image: string): void {
  const hosts = ['--add-host', 'iris:127.0.0.1', '--add-host', 'iris-candidate:127.0.0.1'];
  const check = spawnSync('docker', ['run', '--rm', ...hosts, image, 'nginx', '-t'], { encoding: 'utf8' });
  expect(check.status, check.stderr).toBe(0);
  expect(check.stderr).toContain('test is successful');
}

/** The JSON log lines of a container. */
function jsonLines(container: string): Record<string, unknown>[] {
  const r = spawnSync('docker', ['logs', container], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return `${r.stdout}\n${r.stderr}`.split('\n').flatMap((l) => {
    try {
      return l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

/** The "shadow" lines (a mirrored request predicted) a container logged. */
function shadowLines(container: string): number {
  return jsonLines(container).filter((l) => l.msg === 'shadow').length;
}

/** The dimension sets of the /predict lines with message `msg` a container logged, counted. */
function emfDimensionCounts(container: string, msg: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const l of jsonLines(container).filter((x) => x.msg === msg && x.path === '/predict')) {
    const dims = emfDimensions(l);
    const key = dims ? JSON.stringify(dims) : 'none';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe.runIf(engine)(
  'rollout through the proxy on ECS: shadow, sticky canary, API keys (moto, engine, registry)',
  () => {
    let moto: Moto | undefined;
    let dir: string;
    let plan: EcsPlanResult;
    let aws: AwsDeployApis;
    let proxyBefore: string;
    const pushed: string[] = [];

    const mlship = (...args: string[]) => {
      const r = spawnSync(
        process.execPath,
        [BIN, ...args, '--target', 'ecs', '--endpoint-url', moto!.endpoint, '--registry', '127.0.0.1:5000'],
        {
          cwd: dir,
          encoding: 'utf8',
          env: { ...process.env, ...moto!.env, ...FAKE_CREDENTIALS, CI: 'true', NO_COLOR: '1' },
          timeout: 120_000,
        },
      );
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    /** The CLI on moto, without the rollout's flags (deploy ecs takes no --target). */
    const cli = (args: string[]) => {
      const r = spawnSync(process.execPath, [BIN, ...args, '--endpoint-url', moto!.endpoint], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, ...moto!.env, ...FAKE_CREDENTIALS, CI: 'true', NO_COLOR: '1' },
        timeout: 600_000,
      });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const service = async (name: string) => {
      const client = new ecsSdk.ECSClient({ region: REGION, endpoint: moto!.endpoint });
      const r = await client.send(
        new ecsSdk.DescribeServicesCommand({ cluster: plan.stack, services: [name] }),
      );
      client.destroy();
      return r.services?.find((s) => s.status === 'ACTIVE');
    };
    const imageOf = async (td: string) =>
      (await aws.ecs.latestTaskDefinition(td))?.containerDefinitions?.find((c) => c.name === 'proxy')?.image;
    const waited: string[] = [];
    const clock = fakeClock(Date.parse('2026-12-02T12:00:00Z'));
    const target = (failOn?: string) =>
      ecsRolloutOnMoto({
        plan,
        aws,
        dir,
        clock,
        waited,
        failOn,
        deps: {
          // The CLI's bake and push (rollout-ecs.ts), on this engine, to the local registry.
          bakeProxyImage: (base, files) =>
            bakeAndPush({ io: { info: () => undefined }, engine: async () => engine! }, base, files, {
              ecr: aws.ecr,
              registry: '127.0.0.1:5000',
              file: path.join(dir, 'mlship.yaml'),
            }),
        },
      });
    const shadow = () =>
      rolloutFromFlags('iris', { shadow: true, image: CANDIDATE_IMAGE }, new Date(clock.now()));
    /** The routing proxy images this run pushed (for the clean-up), from the engine. */
    const routeImages = () =>
      spawnSync(
        'docker',
        ['images', '--format', '{{.Repository}}:{{.Tag}}', '127.0.0.1:5000/mlship-local/nginx'],
        {
          encoding: 'utf8',
        },
      )
        .stdout.split('\n')
        .filter((t) => t.includes(':rollout-'));
    const state = () => JSON.parse(readFileSync(path.join(dir, 'deploy', 'ecs-rollouts.json'), 'utf8'));

    // Without moto (a machine without the .venv) every test is skipped, with startMoto's reason;
    // on CI its absence is an error there.
    beforeEach((ctx) => {
      if (!moto) ctx.skip();
    });

    beforeAll(async () => {
      moto = await startMoto();
      if (!moto) return;
      Object.assign(process.env, moto.env);
      dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-rollout-shadow-'));
      writeFileSync(path.join(dir, 'mlship.yaml'), PROJECT);
      await requireImage(engine!, LOCAL_PYTHON_IMAGE);
      buildVersions(dir);
      ({ plan, aws } = await planOnMoto(moto, path.join(dir, 'mlship.yaml'), REGION));
      // The keys as deploy puts them (operate.ts: the keys file's map lines, under "keys").
      await aws.secrets.putJsonSecret(`${plan.stack}/api-keys`, { keys: `"${KEY}" "ci";` }, {});
      // The deployed stack as --apply leaves it: the iris and proxy services in the namespace.
      await aws.ecs.ensureCluster(plan.stack, plan.stack);
      const ec2 = new ec2Sdk.EC2Client({ region: REGION, endpoint: moto.endpoint });
      const net = await ec2.send(
        new ec2Sdk.DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }),
      );
      ec2.destroy();
      const subnets = (net.Subnets ?? []).slice(0, 2).map((s) => s.SubnetId!);
      for (const name of ['iris', 'proxy']) {
        const td = plan.translation.taskDefinitions.find((t) => t.family === `sh-demo-${name}`)!;
        const containers = td.containerDefinitions!.map((c) =>
          c.name === 'proxy' ? { ...c, image: PROXY_IMAGE } : c,
        );
        const registered = await aws.ecs.registerTaskDefinition({ ...td, containerDefinitions: containers });
        if (name === 'proxy') proxyBefore = registered.arn;
        const svc = plan.translation.services.find((s) => s.name === name)!;
        await aws.ecs.createService({
          cluster: plan.stack,
          serviceName: name,
          taskDefinition: registered.arn,
          launchType: 'FARGATE',
          desiredCount: 1,
          subnets,
          securityGroups: [],
          assignPublicIp: false,
          serviceConnect: serviceConnectOf(plan.stack, svc),
        });
      }
    }, 120_000);
    afterAll(async () => {
      aws?.destroy();
      await moto?.stop();
      for (const image of pushed) spawnSync('docker', ['rmi', '-f', image], { stdio: 'ignore' });
      removeImagesTagged('mlship-proxy/rollout');
      cli(['deploy', 'ecs', '--local', '--down']);
      spawnSync('docker', ['rmi', '-f', STABLE_IMAGE, CANDIDATE_IMAGE], { stdio: 'ignore' });
    });

    it('a proxy that never becomes stable: start undoes everything (the proxy back on its revision, no candidate)', async () => {
      await expect(target('proxy').start(shadow())).rejects.toThrow(/proxy did not become stable/);
      expect((await service('proxy'))?.taskDefinition).toBe(proxyBefore);
      expect(await service('iris-candidate')).toBeUndefined();
      expect(await aws.cloudwatch.alarmNames('mlship-sh-demo-rollout-')).toEqual([]);
      expect((await aws.ecs.activeRevisions('sh-demo-proxy')).map((a) => a.split('/').pop())).toEqual([
        'sh-demo-proxy:1',
      ]);
      expect((await aws.ecs.activeRevisions('sh-demo-iris')).map((a) => a.split('/').pop())).toEqual([
        'sh-demo-iris:1',
      ]);
      for (const tag of routeImages()) pushed.push(tag);
      waited.length = 0;
    }, 300_000);

    it('start: the candidate serves as sh-demo iris-candidate; the proxy runs a new revision with the mirror baked in', async () => {
      await target().start(shadow());
      const record = state().rollouts.iris.ecsProxy;
      // The candidate: its own revision of the iris family, a Service Connect server by its own name.
      const candidate = await service('iris-candidate');
      expect(candidate?.taskDefinition).toBe(record.candidateTaskDefinition);
      expect(waited).toEqual([
        `iris-candidate ${record.candidateTaskDefinition.split('/').pop()}`,
        `proxy ${record.routeProxyTaskDefinition.split('/').pop()}`,
      ]);
      const candidateTd = await aws.ecs.latestTaskDefinition(record.candidateTaskDefinition);
      expect(candidateTd?.containerDefinitions?.[0]?.image).toBe(CANDIDATE_IMAGE);
      // The proxy: the next revision of its family, on an image pushed to the registry.
      const proxy = await service('proxy');
      expect(proxy?.taskDefinition).toBe(record.routeProxyTaskDefinition);
      expect(proxy?.taskDefinition).not.toBe(proxyBefore);
      expect(record.proxyTaskDefinition).toBe(proxyBefore);
      const image = await imageOf(record.routeProxyTaskDefinition);
      expect(image).toBe(record.routeProxyImage);
      expect(image).toMatch(/^127\.0\.0\.1:5000\/mlship-local\/nginx:rollout-[0-9a-f]{12}$/);
      pushed.push(image!);
      // The file baked into that image: the golden, and NGINX accepts it (the hosts Service Connect names).
      const baked = bakedConf(image!);
      expectGolden('test/golden/rollout/ecs-shadow-nginx.conf', baked);
      expect(baked).toContain('mirror /_mlship/shadow/iris;');
      expect(baked).toContain('server iris-candidate:8080 max_fails=1 fail_timeout=5s;');
      // Behind the proxy's API keys: the mirrored route asks for one too.
      expect(baked).toContain('if ($mlship_key_id = "") {');
      expectNginxAccepts(image!);
    }, 300_000);

    it('status names what it can read on ECS; a shadow takes no --to step', () => {
      const status = mlship('rollout', 'status', 'iris', '--json');
      expect(status.code, status.stderr).toBe(0);
      const report = JSON.parse(status.stdout) as { verdict: { decision: string }; notes: string[] };
      expect(report.verdict.decision).toBe('hold');
      // Nothing logged yet: both sides' streams read, none found.
      expect(report.notes.join('\n')).toContain('read 0 log lines of /mlship/sh-demo, streams iris/iris/*');
      expect(report.notes.join('\n')).toContain(
        'read 0 log lines of /mlship/sh-demo, streams iris-candidate/iris/*',
      );
      const step = mlship('rollout', 'promote', 'iris', '--to', '50');
      expect(step.code).toBe(2);
      expect(step.stderr).toMatch(/is a shadow: it takes no share/);
    }, 120_000);

    it('rollback: the proxy back on its previous revision (no mirror), the candidate at 0 tasks', async () => {
      const shadowTd = state().rollouts.iris.ecsProxy.routeProxyTaskDefinition;
      await target().rollback('by hand');
      expect((await service('proxy'))?.taskDefinition).toBe(proxyBefore);
      expect((await service('iris-candidate'))?.desiredCount).toBe(0);
      expect(await aws.ecs.latestTaskDefinition(shadowTd)).toBeUndefined(); // deregistered
      expect(state().rollouts.iris.status).toBe('rolled-back');
    }, 120_000);

    it('deploy ecs --local runs the shadow as ECS does: all N requests mirrored to iris-candidate, clients get stable answers; status compares them from CloudWatch Logs', async () => {
      await aws.ecs.deleteService(plan.stack, 'iris-candidate');
      // Every answer recorded (the known share is then exact); a mirror on a loaded machine may wait.
      const flags = { shadow: true, image: CANDIDATE_IMAGE, recordSample: '1', shadowTimeout: '2s' };
      await target().start(rolloutFromFlags('iris', flags, new Date(clock.now())));
      const record = state().rollouts.iris.ecsProxy;
      pushed.push(record.routeProxyImage);
      try {
        // --force: start's bake wrote its context under deploy/ecs, which the plan regenerates.
        const run = cli(['deploy', 'ecs', '--local', '--force', '--json']);
        const out = JSON.parse(run.stdout) as {
          ok: boolean;
          revisions: string[];
          containers: { family: string; container: string; status: string }[];
          endpoints: { port: number; url: string }[];
        };
        expect(out.ok, run.stderr + JSON.stringify(out.containers)).toBe(true);
        // What the services run now: stable, the proxy's mirroring revision, the candidate by its own name.
        const rev = (arn: string) => arn.split('/').pop()!;
        expect(out.revisions.sort()).toEqual(
          [record.stableTaskDefinition, record.routeProxyTaskDefinition, record.candidateTaskDefinition]
            .map(rev)
            .sort(),
        );
        expect(out.containers.map((c) => `${c.container} ${c.status}`).sort()).toEqual([
          'iris healthy',
          'iris-candidate healthy',
          'proxy healthy',
        ]);
        // Here the shadow shares the stable service's CPUs (on ECS it has its own task's): lowest weight.
        const shares = (name: string) =>
          spawnSync('docker', ['inspect', '-f', '{{.HostConfig.CpuShares}}', name], {
            encoding: 'utf8',
          }).stdout.trim();
        expect([shares('sh-demo-local-iris-candidate'), shares('sh-demo-local-iris')]).toEqual(['2', '0']);
        // The relay's connection per copy: the proxy's revision (baked over the one before the
        // rollout) keeps systemControls, and its namespace reuses TIME_WAIT ports.
        const reuse = spawnSync(
          'docker',
          ['exec', 'sh-demo-local-proxy', 'cat', '/proc/sys/net/ipv4/tcp_tw_reuse'],
          { encoding: 'utf8' },
        );
        expect(reuse.stdout.trim(), reuse.stderr).toBe('1');
        const base = out.endpoints.find((e) => e.port === 80)!.url;
        const answers = await predictAll(base, N);
        // Clients got only stable answers (v1: 2x), none failed.
        expect(answers.filter((a) => a.status !== 200 || a.version !== 'stable')).toEqual([]);
        for (const a of answers) expect(a.prediction).toBe(a.x * 2);
        // The candidate predicted every mirrored request (in the background, a moment later).
        for (let i = 0; i < 60 && shadowLines('sh-demo-local-iris-candidate') < N; i++)
          await new Promise((r) => setTimeout(r, 500));
        expect(shadowLines('sh-demo-local-iris-candidate')).toBe(N);
        // As CloudWatch metrics (EMF): the service's requests counted once, by the stable version
        // that answered them; the shadow's N predictions under ModelVersion only, its 202s not at
        // all (they write no line: one line per mirrored request).
        expect(emfDimensionCounts('sh-demo-local-iris', 'request')).toEqual({ '[["Service"]]': N });
        expect(emfDimensionCounts('sh-demo-local-iris-candidate', 'request')).toEqual({});
        expect(emfDimensionCounts('sh-demo-local-iris-candidate', 'shadow')).toEqual({
          '[["Service","ModelVersion"]]': N,
        });
        // Behind the proxy's API keys: a request without one is refused, and mirrored to no one.
        const refused = await send(base, 7, {}, '');
        expect(refused.status).toBe(401);
        expect(((await refused.json()) as { detail: string }).detail).toMatch(/API key is required/);
        await new Promise((r) => setTimeout(r, 1000));
        expect(shadowLines('sh-demo-local-iris-candidate')).toBe(N);
        await shipLogs(record);
        const status = (...gates: string[]) => {
          const r = mlship('rollout', 'status', 'iris', '--json', ...gates);
          expect(r.code, r.stderr).toBe(0);
          return JSON.parse(r.stdout) as StatusJson;
        };
        // The candidate's latency is its background prediction's on a loaded machine: that gate widened only.
        const report = status('--min-requests', '100', '--max-latency-increase', '20');
        console.info(
          `shadow on ECS (--local): ${report.comparison.candidate.requests}/${N} predicted; agreement ${(report.comparison.agreement!.rate * 100).toFixed(2)} % of ${report.comparison.agreement!.pairs} pairs`,
        );
        expect([report.comparison.stable.requests, report.comparison.candidate.requests]).toEqual([N, N]);
        expect(report.comparison.agreement!.pairs).toBe(N);
        expect(Math.abs(report.comparison.agreement!.rate - 0.9)).toBeLessThanOrEqual(0.02);
        expect(report.verdict.decision, report.verdict.reasons.join('; ')).toBe('promote');
        // The same answers against a 95 % agreement gate: rolled back (the verdict, not only the numbers).
        const strict = status(
          '--min-requests',
          '100',
          '--max-latency-increase',
          '20',
          '--min-agreement',
          '0.95',
        );
        expect(strict.verdict.decision, strict.verdict.reasons.join('; ')).toBe('rollback');
      } finally {
        cli(['deploy', 'ecs', '--local', '--down']);
        await target().rollback('test done');
      }
    }, 600_000);

    /** Both versions' container lines into moto, as the awslogs driver of each revision ships them. */
    const shipLogs = async (record: { stableTaskDefinition: string; candidateTaskDefinition: string }) => {
      const client = new logsSdk.CloudWatchLogsClient({ region: REGION, endpoint: moto!.endpoint });
      try {
        for (const [container, arn] of [
          ['sh-demo-local-iris', record.stableTaskDefinition],
          ['sh-demo-local-iris-candidate', record.candidateTaskDefinition],
        ] as const) {
          const def = (await aws.ecs.latestTaskDefinition(arn))!.containerDefinitions!.find(
            (c) => c.name === 'iris',
          )!;
          const id = spawnSync('docker', ['inspect', '-f', '{{.Id}}', container], { encoding: 'utf8' });
          await shipAsAwslogs(client, def, container, id.stdout.trim().slice(0, 32));
        }
      } finally {
        client.destroy();
      }
    };

    it('a 10 % canary sticky on X-User-Id, behind API keys: the proxy routes it; deploy ecs --local: no key is a 401, 10 % ± 2 of 1,000 users reach the candidate, each user always the same version; a step to 50 % is the next proxy revision, baked from the image before the rollout', async () => {
      await aws.ecs.deleteService(plan.stack, 'iris-candidate');
      const flags = { canary: '10', stickyHeader: 'X-User-Id', image: CANDIDATE_IMAGE, recordSample: '1' };
      // No load balancer is deployed here: a rule-based canary could not start; the proxy needs none.
      // Started now: status reads the log lines from here on, not the shadow's shipped before.
      await target().start(rolloutFromFlags('iris', flags, new Date()));
      const record = state().rollouts.iris.ecsProxy;
      expect(state().rollouts.iris.ecs).toBeUndefined();
      pushed.push(record.routeProxyImage);
      // No target group of its own: the candidate rolls back on its own metrics' alarm (no slo_p99_ms here).
      expect(record.alarms).toEqual(['mlship-sh-demo-rollout-iris-candidate-5xx']);
      expect(await aws.cloudwatch.alarmNames('mlship-sh-demo-rollout-')).toEqual(record.alarms);
      expect(record.proxyTaskDefinition).toBe(proxyBefore);
      expect((await service('proxy'))?.taskDefinition).toBe(record.routeProxyTaskDefinition);
      const baked = bakedConf(record.routeProxyImage);
      expectGolden('test/golden/rollout/ecs-canary-nginx.conf', baked);
      expect(baked).toContain('map $http_x_user_id $iris_split_key {');
      expect(baked).toContain('    10% candidate;');
      expectNginxAccepts(record.routeProxyImage);
      const users = 1000;
      try {
        const run = cli(['deploy', 'ecs', '--local', '--force', '--json']);
        const out = JSON.parse(run.stdout) as {
          ok: boolean;
          containers: { container: string; status: string }[];
          endpoints: { port: number; url: string }[];
        };
        expect(out.ok, run.stderr + JSON.stringify(out.containers)).toBe(true);
        const base = out.endpoints.find((e) => e.port === 80)!.url;
        // No key: refused by the proxy, whichever version the split would have chosen.
        const refused = await send(base, 3, { 'X-User-Id': 'user-3' }, '');
        expect(refused.status).toBe(401);
        // Each user twice: the share of users, and that a user stays on one version.
        const user = (x: number) => ({ 'X-User-Id': `user-${x % users}` });
        const answers = await predictAll(base, 2 * users, user);
        expect(answers.filter((a) => a.status !== 200)).toEqual([]);
        const versionOf = new Map<number, Set<string | null>>();
        for (const a of answers)
          versionOf.set(a.x % users, (versionOf.get(a.x % users) ?? new Set()).add(a.version));
        expect([...versionOf.values()].filter((v) => v.size !== 1)).toEqual([]);
        const onCandidate = [...versionOf.values()].filter((v) => v.has('candidate')).length;
        console.info(`canary on ECS (--local): ${onCandidate} of ${users} users on the candidate`);
        expect(Math.abs(onCandidate / users - 0.1)).toBeLessThanOrEqual(0.02);
        // The candidate's answers are v2's (x % 10 == 0: one more), the stable's v1's.
        for (const a of answers)
          expect(a.prediction).toBe(a.x * 2 + (a.version === 'candidate' && a.x % 10 === 0 ? 1 : 0));
        // What those alarms watch: each version's request lines carry embedded metrics; the
        // candidate's also under ModelVersion=candidate (moto extracts no metric from them).
        const emf = (container: string) =>
          timedLogLines(container)
            .map((l) => l.message)
            .filter((l) => l.startsWith('{') && l.includes('"_aws"'))
            .map(
              (l) =>
                JSON.parse(l) as {
                  _aws: { CloudWatchMetrics: { Dimensions: string[][] }[] };
                  ModelVersion?: string;
                },
            )[0];
        const [stableEmf, candidateEmf] = [emf('sh-demo-local-iris'), emf('sh-demo-local-iris-candidate')];
        expect([stableEmf, candidateEmf].map((l) => l === undefined)).toEqual([false, false]);
        expect(stableEmf!._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([['Service']]);
        expect(candidateEmf!._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([
          ['Service'],
          ['Service', 'ModelVersion'],
        ]);
        expect(candidateEmf!.ModelVersion).toBe('candidate');
        // The header override reaches the candidate whatever the user.
        const forced = await send(base, 10, { 'X-User-Id': 'user-0', 'X-Model-Version': 'candidate' });
        expect([forced.status, forced.headers.get('x-model-version')]).toEqual([200, 'candidate']);
        await shipLogs(record);
        const r = mlship('rollout', 'status', 'iris', '--json');
        expect(r.code, r.stderr).toBe(0);
        const report = JSON.parse(r.stdout) as StatusJson & { notes: string[] };
        const candidateAnswers = answers.filter((a) => a.version === 'candidate').length + 1;
        expect([report.comparison.stable.requests, report.comparison.candidate.requests]).toEqual([
          2 * users - candidateAnswers + 1,
          candidateAnswers,
        ]);
        expect(report.mirror).toBeUndefined();
        expect(report.notes.join('\n')).toContain(
          'sends 10 % of /api/iris/ to iris-candidate, sticky on the header X-User-Id',
        );
      } finally {
        cli(['deploy', 'ecs', '--local', '--down']);
      }
      // A step: the next proxy revision with the new share, the previous routing revision
      // deregistered. The stable service scaled to 4 tasks meanwhile: 50 % of them is 2 candidate
      // tasks, started and waited for before the proxy's revision sends it half of the requests.
      await aws.ecs.scaleService(plan.stack, 'iris', 4);
      expect((await service('iris-candidate'))?.desiredCount).toBe(1);
      waited.length = 0;
      await target().setWeight(50);
      const stepped = state().rollouts.iris.ecsProxy;
      pushed.push(stepped.routeProxyImage);
      expect(state().rollouts.iris.weight).toBe(50);
      expect(stepped.routeProxyTaskDefinition).not.toBe(record.routeProxyTaskDefinition);
      expect((await service('iris-candidate'))?.desiredCount).toBe(2);
      expect(waited).toEqual([
        `iris-candidate ${record.candidateTaskDefinition.split('/').pop()}`,
        `proxy ${stepped.routeProxyTaskDefinition.split('/').pop()}`,
      ]);
      await aws.ecs.scaleService(plan.stack, 'iris', 1);
      expect((await service('proxy'))?.taskDefinition).toBe(stepped.routeProxyTaskDefinition);
      expect(await aws.ecs.latestTaskDefinition(record.routeProxyTaskDefinition)).toBeUndefined();
      const next = bakedConf(stepped.routeProxyImage);
      expect(next).toContain('    50% candidate;');
      // Baked from the proxy's image before the rollout: one file over it, not a layer per step.
      const parent = (image: string) =>
        spawnSync('docker', ['history', '-q', image], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)
          .length;
      expect(parent(stepped.routeProxyImage)).toBe(parent(record.routeProxyImage));
      await target().rollback('test done');
      expect((await service('proxy'))?.taskDefinition).toBe(proxyBefore);
      expect((await service('iris-candidate'))?.desiredCount).toBe(0);
      await target().rollback('test done', { destroy: true });
      expect(await aws.cloudwatch.alarmNames('mlship-sh-demo-rollout-')).toEqual([]);
    }, 600_000);

    it("promote: the stable service on the candidate's version (a stable revision of it), the proxy back without the mirror, the candidate gone", async () => {
      await aws.ecs.deleteService(plan.stack, 'iris-candidate');
      await target().start(shadow());
      const record = state().rollouts.iris.ecsProxy;
      pushed.push(record.routeProxyImage);
      const promoted = await target().promote();
      expect(promoted.notes.join('\n')).toMatch(/proxy is back on sh-demo-proxy:1/);
      // The candidate's version as a stable revision: its image, no longer labelled candidate.
      const stableNow = (await service('iris'))!.taskDefinition!;
      expect(stableNow).not.toBe(record.candidateTaskDefinition);
      const model = (await aws.ecs.latestTaskDefinition(stableNow))!.containerDefinitions!.find(
        (c) => c.name === 'iris',
      )!;
      expect(model.image).toBe(CANDIDATE_IMAGE);
      expect(model.environment?.map((e) => e.name)).not.toContain('MLSHIP_MODEL_VERSION');
      expect(model.logConfiguration?.options?.['awslogs-stream-prefix']).toBe('iris');
      expect(waited.at(-2)).toBe(`iris ${stableNow.split('/').pop()}`);
      expect((await service('proxy'))?.taskDefinition).toBe(proxyBefore);
      expect(await service('iris-candidate')).toBeUndefined();
      expect(await aws.cloudwatch.alarmNames('mlship-sh-demo-rollout-')).toEqual([]);
      expect(state().rollouts.iris.status).toBe('promoted');
      expect(readFileSync(path.join(dir, 'mlship.yaml'), 'utf8')).toContain(`image: ${CANDIDATE_IMAGE}`);
    }, 300_000);
  },
);
