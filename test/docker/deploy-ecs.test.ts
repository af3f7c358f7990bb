// `mlship deploy ecs --apply` against real AWS APIs served by moto, pushing to a
// real local registry: creation, idempotent re-apply, changes, recovery after a
// failure part-way, and no credential in any output or file.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ACMClient, ImportCertificateCommand, RequestCertificateCommand } from '@aws-sdk/client-acm';
import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import {
  DescribeLaunchTemplateVersionsCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { DescribeRepositoriesCommand, ECRClient, GetLifecyclePolicyCommand } from '@aws-sdk/client-ecr';
import {
  DescribeCapacityProvidersCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  ECSClient,
  ListClustersCommand,
  ListTaskDefinitionsCommand,
} from '@aws-sdk/client-ecs';
import {
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { CreateRoleCommand, GetInstanceProfileCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployApis } from '../../src/adapters/aws/deploy-apis.js';
import { applyEcs } from '../../src/core/deploy/apply.js';
import type { AwsDeployApis } from '../../src/core/deploy/aws-apis.js';
import { parameterName, preDeployChecks } from '../../src/core/deploy/checks.js';
import { type EcsPlanResult, planEcs } from '../../src/core/deploy/plan.js';
import { OperationFailedError } from '../../src/io/errors.js';
import {
  LOCAL_DEBIAN_IMAGE,
  LOCAL_PYTHON_IMAGE,
  removeImagesTagged,
  requireEngine,
} from '../helpers/docker.js';
import { FAKE_CREDENTIALS, type Moto, startMoto } from '../helpers/moto.js';

const engine = await requireEngine();
const BIN = path.resolve('bin/mlship.js');
let moto: Moto | undefined;
let dir: string;
const STACK = `dep-${process.pid}`;
const outputs: string[] = [];
/** Secret values this test stores in SSM and Secrets Manager: they must never show up either. */
const SECRET_VALUES = ['hf_mlshipTestTokenNeverPrinted8912', 'db-password-never-printed-3344'];

function config(env: string): void {
  writeFileSync(
    path.join(dir, 'mlship.yaml'),
    [
      `name: ${STACK}`,
      'services:',
      '  web:',
      '    path: services/web',
      '    env:',
      `      GREETING: ${env}`,
      'aws:',
      '  region: us-east-1',
      '  account_id: "123456789012"',
      '',
    ].join('\n'),
  );
}

/** `deploy ecs --apply --no-wait` of the test's stack against moto, pushing to the local registry. */
function applyToMoto(...extra: string[]) {
  return mlship([
    'deploy',
    'ecs',
    '--apply',
    '--no-wait',
    '--endpoint-url',
    moto!.endpoint,
    '--registry',
    '127.0.0.1:5000',
    ...extra,
  ]);
}

/** `deploy ecs -f <file>` against moto in us-east-1, then `extra`. */
function stackOnMoto(file: string, ...extra: string[]): string[] {
  return [
    'deploy',
    'ecs',
    '-f',
    file,
    '--region',
    'us-east-1',
    '--account-id',
    '123456789012',
    '--endpoint-url',
    moto!.endpoint,
    ...extra,
  ];
}

/** The real APIs with some methods of one group replaced (the groups load lazily: no spreading). */
function withOverride<K extends keyof AwsDeployApis>(
  apis: AwsDeployApis,
  group: K,
  methods: Partial<AwsDeployApis[K]>,
): AwsDeployApis {
  const real = apis[group] as unknown as Record<string, unknown>;
  const overridden = new Proxy(real, {
    get: (target, prop) =>
      prop in methods ? (methods as Record<string | symbol, unknown>)[prop] : target[prop as string],
  });
  return new Proxy(apis, { get: (target, prop) => (prop === group ? overridden : target[prop as K]) });
}

function mlship(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, ...moto!.env, CI: 'true' },
    timeout: 300_000,
  });
  outputs.push(r.stdout, r.stderr);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  if (!engine) return;
  moto = await startMoto();
  // The in-process adapters resolve credentials through the SDK chain, like the CLI.
  Object.assign(process.env, moto!.env);
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-deploy-it-'));
  mkdirSync(path.join(dir, 'services/web'), { recursive: true });
  writeFileSync(
    path.join(dir, 'services/web/Dockerfile'),
    `FROM ${LOCAL_PYTHON_IMAGE}\nCMD ["sleep", "infinity"]\n`,
  );
  config('hello');
  execFileSync('git', ['init', '-q', dir]);
  execFileSync('git', ['-C', dir, 'add', '-A']);
  execFileSync('git', [
    '-C',
    dir,
    '-c',
    'user.email=t@t',
    '-c',
    'user.name=t',
    'commit',
    '-q',
    '--allow-empty',
    '-m',
    'x',
  ]);
  await engine.build({
    context: path.join(dir, 'services/web'),
    tags: [`${STACK}/web:dev`],
    labels: { 'dev.mlship.run': STACK },
  });
  config('hello');
}, 120_000);

afterAll(async () => {
  await moto?.stop();
  if (engine) {
    await engine.removeImage(`${STACK}/web:dev`, true);
    removeImagesTagged(`/${STACK}/`); // the tags pushed to the local registry
  }
});

const clientConfig = () => ({
  region: 'us-east-1',
  endpoint: moto!.endpoint,
  credentials: {
    accessKeyId: FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID,
    secretAccessKey: FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
  },
});

describe.runIf(engine)('mlship deploy ecs --apply (moto + local registry)', () => {
  it('ECR: repositories created once with scan on push, immutable tags and a lifecycle policy; auth token', async () => {
    const apis = await createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
    try {
      const first = await apis.ecr.ensureRepository(`${STACK}/probe`, 7);
      const again = await apis.ecr.ensureRepository(`${STACK}/probe`, 7);
      expect(first.created).toBe(true);
      expect(again).toEqual({ uri: first.uri, created: false });
      const ecr = new ECRClient(clientConfig());
      const repo = (await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [`${STACK}/probe`] })))
        .repositories![0]!;
      expect(repo.imageTagMutability).toBe('IMMUTABLE');
      expect(repo.imageScanningConfiguration?.scanOnPush).toBe(true);
      const policy = JSON.parse(
        (await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: `${STACK}/probe` })))
          .lifecyclePolicyText!,
      );
      expect(policy.rules[0].selection).toMatchObject({ countType: 'imageCountMoreThan', countNumber: 7 });
      // A moving tag is the one exception to immutable tags, on new and existing repositories.
      await apis.ecr.ensureRepository(`${STACK}/moving`, 7, 'latest');
      await apis.ecr.ensureRepository(`${STACK}/probe`, 7, 'stable');
      for (const [name, tag] of [
        [`${STACK}/moving`, 'latest'],
        [`${STACK}/probe`, 'stable'],
      ] as const) {
        const r = (await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] })))
          .repositories![0]!;
        expect(r.imageTagMutability, name).toBe('IMMUTABLE_WITH_EXCLUSION');
        expect(r.imageTagMutabilityExclusionFilters, name).toEqual([{ filterType: 'WILDCARD', filter: tag }]);
      }
      ecr.destroy();
      const auth = await apis.ecr.authorization();
      expect(auth.username).toBe('AWS');
      expect(auth.password.length).toBeGreaterThan(0);
      expect(await apis.ecr.imageDigest(`${STACK}/probe`, 'nope')).toBeUndefined();
    } finally {
      apis.destroy();
    }
  });

  it('first apply: pushes, creates the log group and cluster, registers and creates', () => {
    const r = applyToMoto('--json');
    expect(r.code, r.stderr).toBe(0);
    const { applied } = JSON.parse(r.stdout);
    expect(applied.cluster).toEqual({ name: STACK, created: true });
    expect(applied.logGroup.created).toBe(true);
    expect(applied.pushes[0]).toMatchObject({
      service: 'web',
      skipped: false,
      image: expect.stringMatching(new RegExp(`^127\\.0\\.0\\.1:5000/${STACK}/web:[0-9a-f]{12}$`)),
    });
    expect(applied.pushes[0].digest).toMatch(/^sha256:/);
    expect(applied.taskDefinitions).toEqual([
      { family: `${STACK}-web`, arn: expect.stringContaining(`${STACK}-web:1`), registered: true },
    ]);
    expect(applied.services).toEqual([{ name: 'web', action: 'created' }]);
  });

  it('re-apply with nothing changed registers no revision and updates nothing', async () => {
    const r = applyToMoto('--json');
    expect(r.code, r.stderr).toBe(0);
    const { applied } = JSON.parse(r.stdout);
    expect(applied.cluster.created).toBe(false);
    expect(applied.taskDefinitions[0].registered).toBe(false);
    expect(applied.services).toEqual([{ name: 'web', action: 'unchanged' }]);
    const ecs = new ECSClient(clientConfig());
    const defs = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: `${STACK}-web` }));
    expect(defs.taskDefinitionArns).toHaveLength(1);
    ecs.destroy();
  });

  it('a changed setting registers one new revision and updates only that service; --force redeploys', async () => {
    config('bonjour');
    const r = applyToMoto('--json');
    expect(r.code, r.stderr).toBe(0);
    const { applied } = JSON.parse(r.stdout);
    expect(applied.taskDefinitions[0]).toMatchObject({
      registered: true,
      arn: expect.stringContaining(`${STACK}-web:2`),
    });
    expect(applied.services).toEqual([{ name: 'web', action: 'updated' }]);
    const ecs = new ECSClient(clientConfig());
    const svc = (await ecs.send(new DescribeServicesCommand({ cluster: STACK, services: ['web'] })))
      .services![0]!;
    expect(svc.taskDefinition).toContain(`${STACK}-web:2`);
    ecs.destroy();
    const forced = applyToMoto('--force', '--json');
    expect(JSON.parse(forced.stdout).applied.services).toEqual([{ name: 'web', action: 'updated' }]);
  });

  it('an uncommitted one-line source change is built, pushed under its own tag, and rolled out once', async () => {
    execFileSync('git', [
      '-C',
      dir,
      '-c',
      'user.email=t@t',
      '-c',
      'user.name=t',
      'commit',
      '-q',
      '-am',
      'settings',
    ]);
    const apply = () => applyToMoto('--json');
    const clean = apply();
    expect(clean.code, clean.stderr).toBe(0);
    const cleanImage = JSON.parse(clean.stdout).applied.pushes[0].image as string;
    writeFileSync(
      path.join(dir, 'services/web/Dockerfile'),
      `FROM ${LOCAL_PYTHON_IMAGE}\nCMD ["sleep", "3600"]\n`,
    );
    const changed = apply();
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).toMatch(/uncommitted changes: images are tagged [0-9a-f]{12}-dirty-[0-9a-f]{8}/);
    const out = JSON.parse(changed.stdout).applied;
    expect(out.pushes[0].image).toMatch(/-dirty-[0-9a-f]{8}$/);
    expect(out.pushes[0].image).not.toBe(cleanImage);
    expect(out.taskDefinitions[0].registered).toBe(true);
    expect(out.services).toEqual([{ name: 'web', action: 'updated' }]);
    // The new layer is the change itself: the build ran, the local image has the new command.
    expect((await engine!.inspectImage(`${STACK}/web:dev`)).cmd).toEqual(['sleep', '3600']);
    const again = JSON.parse(apply().stdout).applied;
    expect(again.taskDefinitions[0].registered).toBe(false);
    expect(again.services).toEqual([{ name: 'web', action: 'unchanged' }]);
  });

  it('--moving-tag: the deployed image is also pushed as latest; task definitions keep the commit tag', async () => {
    const r = applyToMoto('--moving-tag', 'latest', '--json');
    expect(r.code, r.stderr).toBe(0);
    const { applied } = JSON.parse(r.stdout);
    expect(applied.pushes[0].movingTag).toBe('latest');
    const tags = (await (await fetch(`http://127.0.0.1:5000/v2/${STACK}/web/tags/list`)).json()) as {
      tags: string[];
    };
    expect(tags.tags).toContain('latest');
    const td = JSON.parse(
      readFileSync(path.join(dir, `deploy/ecs/task-definitions/${STACK}-web.json`), 'utf8'),
    );
    expect(td.containerDefinitions[0].image).not.toMatch(/:latest$/);
    const bad = mlship([
      'deploy',
      'ecs',
      '--apply',
      '--moving-tag',
      'not a tag',
      '--endpoint-url',
      moto!.endpoint,
    ]);
    expect(bad.code).toBe(2);
  });

  it('a failure part-way leaves a state the next run converges from', async () => {
    const two = path.join(dir, 'two');
    mkdirSync(two, { recursive: true });
    writeFileSync(
      path.join(two, 'compose.yaml'),
      `services:\n  a:\n    image: ${LOCAL_DEBIAN_IMAGE}\n    ports: ["8080"]\n  b:\n    image: ${LOCAL_DEBIAN_IMAGE}\n    ports: ["8081"]\n`,
    );
    const plan = await planEcs({
      file: path.join(two, 'compose.yaml'),
      region: 'us-east-1',
      accountId: '123456789012',
      imageTag: 'x',
      force: false,
    });
    const apis = await createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
    try {
      let calls = 0;
      const failing = withOverride(apis, 'ecs', {
        createService: async (spec: Parameters<typeof apis.ecs.createService>[0]) => {
          if (++calls === 2) throw new Error('injected: throttled');
          return apis.ecs.createService(spec);
        },
      });
      const deps = { engine: engine!, log: () => undefined };
      await expect(
        applyEcs(plan, { ...deps, aws: failing }, { localImages: {}, force: false, wait: false }),
      ).rejects.toThrow('injected');
      const after = await applyEcs(
        plan,
        { ...deps, aws: apis },
        { localImages: {}, force: false, wait: false },
      );
      expect(after.services).toEqual([
        { name: 'a', action: 'unchanged' },
        { name: 'b', action: 'created' },
      ]);
      expect(after.taskDefinitions.every((t) => !t.registered)).toBe(true);
    } finally {
      apis.destroy();
    }
  });

  it('a failure while the load balancer is being set up: the next run finishes it without duplicates', async () => {
    const conv = path.join(dir, 'conv');
    mkdirSync(conv, { recursive: true });
    writeFileSync(
      path.join(conv, 'compose.yaml'),
      `name: ${STACK}-conv\nservices:\n  web:\n    image: ${LOCAL_DEBIAN_IMAGE}\n    ports: ["8080:8000"]\n`,
    );
    const plan = await planEcs({
      file: path.join(conv, 'compose.yaml'),
      region: 'us-east-1',
      accountId: '123456789012',
      imageTag: 'x',
      force: false,
    });
    const apis = await createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
    try {
      const failing = withOverride(apis, 'elb', {
        ensureListener: async () => {
          throw new Error('injected: listener quota');
        },
      });
      const deps = { engine: engine!, log: () => undefined };
      await expect(
        applyEcs(plan, { ...deps, aws: failing }, { localImages: {}, force: false, wait: false }),
      ).rejects.toThrow('injected');
      const after = await applyEcs(
        plan,
        { ...deps, aws: apis },
        { localImages: {}, force: false, wait: false },
      );
      expect(after.loadBalancer).toMatchObject({
        created: false,
        securityGroup: { created: false },
        listeners: [{ port: 8080, containerPort: 8000, created: true }],
        // The failure came before the tasks' group was opened to the load balancer: now it is.
        ingressAdded: [{ port: 8000 }],
      });
      expect(after.services).toEqual([{ name: 'web', action: 'created' }]);
      const elb = new ElasticLoadBalancingV2Client(clientConfig());
      const lbs = (await elb.send(new DescribeLoadBalancersCommand({}))).LoadBalancers!.filter(
        (l) => l.LoadBalancerName === `${STACK}-conv`,
      );
      expect(lbs).toHaveLength(1);
      elb.destroy();
    } finally {
      apis.destroy();
    }
  });

  it('--wait-timeout: moto never runs tasks, so a changed service is reported as not stable, quickly', () => {
    config('hola');
    const t0 = Date.now();
    const r = mlship([
      'deploy',
      'ecs',
      '--apply',
      '--wait-timeout',
      '1',
      '--endpoint-url',
      moto!.endpoint,
      '--registry',
      '127.0.0.1:5000',
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('1 service(s) not stable within 1s');
    expect(r.stderr).toMatch(
      /service web: not stable after 1s .*log group \/mlship\/dep-\d+, stream prefix web/,
    );
    expect(Date.now() - t0).toBeLessThan(60_000);
  });

  it('a published port: the shared load balancer is created, the service joins it, a re-apply changes nothing', async () => {
    const pub = path.join(dir, 'pub');
    mkdirSync(pub, { recursive: true });
    const compose = (edgePorts: string) =>
      writeFileSync(
        path.join(pub, 'compose.yaml'),
        `name: ${STACK}-pub\nservices:\n  api:\n    image: ${LOCAL_DEBIAN_IMAGE}\n    ports: ["8000"]\n  edge:\n    image: ${LOCAL_DEBIAN_IMAGE}\n    ports: [${edgePorts}]\n    healthcheck:\n      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:80/healthz || cat /proc/1/cmdline"]\n      interval: 10s\n`,
      );
    const apply = () => {
      const r = mlship(stackOnMoto('pub/compose.yaml', '--apply', '--no-wait', '--json'));
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout).applied;
    };
    // First without a published port: no load balancer, the service runs without one.
    compose('"80"');
    const internal = apply();
    expect(internal.loadBalancer).toBeUndefined();
    expect(internal.services).toEqual([
      { name: 'api', action: 'created' },
      { name: 'edge', action: 'created' },
    ]);

    // Publishing the port later creates the load balancer and moves the running service onto it.
    compose('"80:80"');
    const first = apply();
    const name = `${STACK}-pub`;
    expect(first.loadBalancer).toMatchObject({
      name,
      created: true,
      securityGroup: { created: true },
      listeners: [
        {
          port: 80,
          service: 'edge',
          container: 'edge',
          containerPort: 80,
          targetGroup: `${name}-edge-80`,
          created: true,
        },
      ],
    });
    expect(first.services).toEqual([
      { name: 'api', action: 'unchanged' },
      { name: 'edge', action: 'updated' },
    ]);
    const dns = first.loadBalancer.dnsName as string;
    expect(first.endpoints.find((e: { service: string }) => e.service === 'edge').public).toEqual([
      {
        port: 80,
        url: `http://${dns}/`,
        loadBalancerDns: dns,
        note: `http://${dns}/ → edge:80 (a new load balancer's name takes a few minutes to resolve)`,
      },
    ]);
    expect(first.endpoints.find((e: { service: string }) => e.service === 'api').public).toEqual([]);

    // What AWS holds (read back through the SDK, not from mlship's answer).
    const elb = new ElasticLoadBalancingV2Client(clientConfig());
    const ec2 = new EC2Client(clientConfig());
    const ecs = new ECSClient(clientConfig());
    try {
      const lb = (await elb.send(new DescribeLoadBalancersCommand({ Names: [name] }))).LoadBalancers![0]!;
      expect(lb).toMatchObject({ Type: 'application', Scheme: 'internet-facing', DNSName: dns });
      const zones = (lb.AvailabilityZones ?? []).map((z) => z.ZoneName);
      expect(zones.length).toBeGreaterThanOrEqual(2);
      expect(new Set(zones).size).toBe(zones.length);
      const tg = (await elb.send(new DescribeTargetGroupsCommand({ Names: [`${name}-edge-80`] })))
        .TargetGroups![0]!;
      expect(tg).toMatchObject({
        TargetType: 'ip',
        Protocol: 'HTTP',
        Port: 80,
        HealthCheckPath: '/healthz',
        HealthCheckIntervalSeconds: 10,
        Matcher: { HttpCode: '200-399' },
      });
      const attributes = (
        await elb.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: tg.TargetGroupArn }))
      ).Attributes!;
      expect(attributes).toContainEqual({ Key: 'deregistration_delay.timeout_seconds', Value: '30' });
      const listeners = (
        await elb.send(new DescribeListenersCommand({ LoadBalancerArn: lb.LoadBalancerArn }))
      ).Listeners!;
      expect(listeners.map((l) => [l.Port, l.Protocol, l.DefaultActions?.[0]?.TargetGroupArn])).toEqual([
        [80, 'HTTP', tg.TargetGroupArn],
      ]);
      const svc = (await ecs.send(new DescribeServicesCommand({ cluster: name, services: ['edge'] })))
        .services![0]!;
      expect(svc.loadBalancers).toEqual([
        { targetGroupArn: tg.TargetGroupArn, containerName: 'edge', containerPort: 80 },
      ]);
      // The load balancer's group is open on the listener; the tasks' group lets it in on 80.
      const albGroup = lb.SecurityGroups![0]!;
      const groups = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [albGroup] })))
        .SecurityGroups!;
      expect(groups[0]!.GroupName).toBe(`${name}-alb`);
      expect(groups[0]!.IpPermissions).toContainEqual(
        expect.objectContaining({
          FromPort: 80,
          ToPort: 80,
          IpRanges: [expect.objectContaining({ CidrIp: '0.0.0.0/0' })],
        }),
      );
      const taskGroup = svc.networkConfiguration!.awsvpcConfiguration!.securityGroups![0]!;
      const task = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [taskGroup] })))
        .SecurityGroups![0]!;
      const fromAlb = (task.IpPermissions ?? []).filter((p) =>
        (p.UserIdGroupPairs ?? []).some((g) => g.GroupId === albGroup),
      );
      expect(fromAlb.map((p) => [p.FromPort, p.ToPort])).toEqual([[80, 80]]);

      // Nothing changed: nothing is created, modified or updated, and no rule is added twice.
      const again = apply();
      expect(again.loadBalancer).toMatchObject({
        created: false,
        securityGroup: { created: false },
        listeners: [{ created: false, changed: false }],
        ingressAdded: [],
      });
      expect(again.services).toEqual([
        { name: 'api', action: 'unchanged' },
        { name: 'edge', action: 'unchanged' },
      ]);
      expect(
        (await elb.send(new DescribeListenersCommand({ LoadBalancerArn: lb.LoadBalancerArn }))).Listeners,
      ).toHaveLength(1);
    } finally {
      for (const c of [elb, ec2, ecs]) c.destroy();
    }
  });

  it('--certificate-arn: HTTPS on 443 with the certificate, 80 now redirects to it; a certificate pending validation is refused first', async () => {
    // A self-signed certificate imported into ACM (moto), as a user imports or requests theirs.
    const keyDir = mkdtempSync(path.join(os.tmpdir(), 'mlship-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=api.example.com',
        '-days',
        '2',
        '-keyout',
        path.join(keyDir, 'key.pem'),
        '-out',
        path.join(keyDir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const acm = new ACMClient(clientConfig());
    const issued = (
      await acm.send(
        new ImportCertificateCommand({
          Certificate: readFileSync(path.join(keyDir, 'cert.pem')),
          PrivateKey: readFileSync(path.join(keyDir, 'key.pem')),
        }),
      )
    ).CertificateArn!;
    const pending = (await acm.send(new RequestCertificateCommand({ DomainName: 'api.example.com' })))
      .CertificateArn!;
    acm.destroy();
    rmSync(keyDir, { recursive: true, force: true });
    const apply = (cert: string) =>
      mlship(stackOnMoto('pub/compose.yaml', '--apply', '--no-wait', '--certificate-arn', cert, '--json'));
    const refused = apply(pending);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain(
      `certificate ${pending} is PENDING_VALIDATION, and a listener takes only an ISSUED one`,
    );

    const r = apply(issued);
    expect(r.code, r.stderr).toBe(0);
    const { applied } = JSON.parse(r.stdout);
    const name = `${STACK}-pub`;
    expect(applied.loadBalancer.listeners).toEqual([
      { port: 80, protocol: 'HTTP', redirectToHttps: 443, created: false, changed: true },
      {
        port: 443,
        protocol: 'HTTPS',
        service: 'edge',
        container: 'edge',
        containerPort: 80,
        targetGroup: `${name}-edge-80`,
        created: true,
        changed: false,
      },
    ]);
    const dns = applied.loadBalancer.dnsName as string;
    expect(applied.endpoints.find((e: { service: string }) => e.service === 'edge').public[0].url).toBe(
      `https://${dns}/`,
    );
    const elb = new ElasticLoadBalancingV2Client(clientConfig());
    try {
      const lb = (await elb.send(new DescribeLoadBalancersCommand({ Names: [name] }))).LoadBalancers![0]!;
      const listeners = (
        await elb.send(new DescribeListenersCommand({ LoadBalancerArn: lb.LoadBalancerArn }))
      ).Listeners!.sort((a, b) => a.Port! - b.Port!);
      expect(listeners.map((l) => [l.Port, l.Protocol])).toEqual([
        [80, 'HTTP'],
        [443, 'HTTPS'],
      ]);
      expect(listeners[0]!.DefaultActions).toEqual([
        expect.objectContaining({
          Type: 'redirect',
          RedirectConfig: expect.objectContaining({ Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' }),
        }),
      ]);
      expect(listeners[1]!.Certificates).toEqual([{ CertificateArn: issued }]);
      expect(listeners[1]!.SslPolicy).toBe('ELBSecurityPolicy-TLS13-1-2-2021-06');
      const again = JSON.parse(apply(issued).stdout).applied;
      expect(
        again.loadBalancer.listeners.map((l: { created: boolean; changed: boolean }) => [
          l.created,
          l.changed,
        ]),
      ).toEqual([
        [false, false],
        [false, false],
      ]);
      expect(again.services.every((s: { action: string }) => s.action === 'unchanged')).toBe(true);
    } finally {
      elb.destroy();
    }
  });

  it('--destroy: asks for --yes, then removes services, load balancer, its group and rules, revisions and cluster; keeps logs; a second run finds nothing', async () => {
    const args = stackOnMoto('pub/compose.yaml', '--destroy');
    const name = `${STACK}-pub`;
    const unconfirmed = mlship(args);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain(
      `--destroy deletes the services, load balancer, task definitions and cluster of stack ${name} in us-east-1; confirm with --yes`,
    );
    const elb = new ElasticLoadBalancingV2Client(clientConfig());
    const ec2 = new EC2Client(clientConfig());
    const ecs = new ECSClient(clientConfig());
    try {
      const lb = (await elb.send(new DescribeLoadBalancersCommand({ Names: [name] }))).LoadBalancers![0]!;
      const albGroup = lb.SecurityGroups![0]!;
      const svc = (await ecs.send(new DescribeServicesCommand({ cluster: name, services: ['edge'] })))
        .services![0]!;
      const taskGroup = svc.networkConfiguration!.awsvpcConfiguration!.securityGroups![0]!;

      const r = mlship([...args, '--yes', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const { destroyed } = JSON.parse(r.stdout);
      expect(destroyed.remaining).toEqual([]);
      expect(destroyed.removed).toEqual([
        'service api',
        'service edge',
        `load balancer ${name} (2 listener(s), target group(s) ${name}-edge-80)`,
        `1 inbound rule(s) for the load balancer in ${taskGroup}`,
        `security group ${name}-alb (${albGroup})`,
        `task definition ${name}-api (1 revision(s) deregistered)`,
        `task definition ${name}-edge (1 revision(s) deregistered)`,
        `cluster ${name}`,
        `IAM role mlship-${name}-execution`,
      ]);
      expect(destroyed.kept).toEqual([
        `log group /mlship/${name} (remove with: aws logs delete-log-group --log-group-name /mlship/${name})`,
      ]);

      // What AWS holds now, read back through the SDK.
      await expect(elb.send(new DescribeLoadBalancersCommand({ Names: [name] }))).rejects.toMatchObject({
        name: 'LoadBalancerNotFoundException',
      });
      await expect(
        elb.send(new DescribeTargetGroupsCommand({ Names: [`${name}-edge-80`] })),
      ).rejects.toMatchObject({ name: 'TargetGroupNotFoundException' });
      const groups = (
        await ec2.send(
          new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [`${name}-alb`] }] }),
        )
      ).SecurityGroups!;
      expect(groups).toEqual([]);
      const task = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [taskGroup] })))
        .SecurityGroups![0]!;
      expect(
        (task.IpPermissions ?? []).some((p) =>
          (p.UserIdGroupPairs ?? []).some((g) => g.GroupId === albGroup),
        ),
      ).toBe(false);
      for (const family of [`${name}-api`, `${name}-edge`]) {
        const active = await ecs.send(
          new ListTaskDefinitionsCommand({ familyPrefix: family, status: 'ACTIVE' }),
        );
        expect(active.taskDefinitionArns ?? [], family).toEqual([]);
      }
      const clusters = (await ecs.send(new DescribeClustersCommand({ clusters: [name] }))).clusters ?? [];
      expect(clusters.filter((c) => c.status === 'ACTIVE')).toEqual([]);

      const again = mlship([...args, '--yes']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain(`nothing of stack ${name} was left to remove`);
    } finally {
      for (const c of [elb, ec2, ecs]) c.destroy();
    }
  });

  it('a GPU service: capacity from the ECS GPU AMI behind a capacity provider, converging on re-apply, --scale to zero and back, removed by --destroy', async () => {
    const gpuDir = path.join(dir, 'gpu');
    mkdirSync(gpuDir, { recursive: true });
    const name = `${STACK}-gpu`;
    writeFileSync(
      path.join(gpuDir, 'compose.yaml'),
      [
        `name: ${name}`,
        'services:',
        '  llm:',
        `    image: ${LOCAL_DEBIAN_IMAGE}`,
        '    ports: ["8000"]',
        '    deploy:',
        '      resources:',
        '        limits: { memory: 8g }',
        '        reservations:',
        '          devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }]',
        '',
      ].join('\n'),
    );
    const base = stackOnMoto('gpu/compose.yaml', '--json');
    const first = mlship([...base, '--apply', '--no-wait']);
    expect(first.code, first.stderr).toBe(0);
    const applied = JSON.parse(first.stdout).applied;
    const capacity = `mlship-${name}-gpu`;
    expect(applied.gpuCapacity).toMatchObject({
      instanceType: 'g4dn.xlarge',
      capacityProvider: capacity,
      autoScalingGroup: capacity,
      maxInstances: 2,
      created: [
        `instance role and profile mlship-${name}-gpu-instance`,
        `launch template ${capacity}`,
        `Auto Scaling group ${capacity} (0 to 2 × g4dn.xlarge)`,
        `capacity provider ${capacity}`,
      ],
    });

    // What AWS holds, read back through the SDK.
    const cfg = clientConfig();
    const ssm = new SSMClient(cfg);
    const ec2 = new EC2Client(cfg);
    const asg = new AutoScalingClient(cfg);
    const ecs = new ECSClient(cfg);
    const iam = new IAMClient(cfg);
    try {
      const ami = (
        await ssm.send(
          new GetParameterCommand({
            Name: '/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id',
          }),
        )
      ).Parameter!.Value;
      const version = (
        await ec2.send(
          new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: capacity, Versions: ['$Latest'] }),
        )
      ).LaunchTemplateVersions![0]!.LaunchTemplateData!;
      expect(version.ImageId).toBe(ami);
      expect(version.InstanceType).toBe('g4dn.xlarge');
      expect(version.MetadataOptions?.HttpTokens).toBe('required');
      expect(Buffer.from(version.UserData!, 'base64').toString()).toContain(`ECS_CLUSTER=${name}\n`);
      const group = (
        await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [capacity] }))
      ).AutoScalingGroups![0]!;
      expect(group).toMatchObject({ MinSize: 0, MaxSize: 2, DesiredCapacity: 0 });
      expect(group.Tags?.map((t) => t.Key)).toContain('AmazonECSManaged');
      const provider = (
        await ecs.send(new DescribeCapacityProvidersCommand({ capacityProviders: [capacity] }))
      ).capacityProviders![0]!;
      expect(provider.status).toBe('ACTIVE');
      expect(provider.autoScalingGroupProvider?.managedScaling?.status).toBe('ENABLED');
      const cluster = (await ecs.send(new DescribeClustersCommand({ clusters: [name] }))).clusters![0]!;
      expect(cluster.capacityProviders).toContain(capacity);
      // moto 5.2 ignores capacityProviderStrategy (it answers launchType EC2): the request itself
      // is checked against the ECS model in test/unit/deploy/apply-wait.test.ts.
      const svc = (await ecs.send(new DescribeServicesCommand({ cluster: name, services: [`${name}-gpu`] })))
        .services![0]!;
      expect(svc.status).toBe('ACTIVE');
      const profile = (
        await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: `mlship-${name}-gpu-instance` }))
      ).InstanceProfile!;
      expect(profile.Roles?.map((r) => r.RoleName)).toEqual([`mlship-${name}-gpu-instance`]);

      const again = mlship([...base, '--apply', '--no-wait']);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout).applied.gpuCapacity.created).toEqual([]);

      // Scale to zero: the GPU service runs no task (and the capacity provider stops the instances).
      const zero = mlship([...base, '--scale', 'llm=0']);
      expect(zero.code, zero.stderr).toBe(0);
      expect(JSON.parse(zero.stdout).scaled).toEqual([
        { service: `${name}-gpu`, containers: ['llm'], from: 1, to: 0 },
      ]);
      const scaled = async () =>
        (await ecs.send(new DescribeServicesCommand({ cluster: name, services: [`${name}-gpu`] })))
          .services![0]!.desiredCount;
      expect(await scaled()).toBe(0);
      // A re-apply keeps the count the user chose.
      expect(mlship([...base, '--apply', '--no-wait']).code).toBe(0);
      expect(await scaled()).toBe(0);
      const three = mlship([...base, '--scale', 'llm=3']);
      expect(three.code, three.stderr).toBe(0);
      expect(await scaled()).toBe(3);
      const grown = (
        await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [capacity] }))
      ).AutoScalingGroups![0]!;
      expect(grown.MaxSize).toBe(6);
      const unknown = mlship([...base, '--scale', 'nope=1']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain(`--scale: no service nope in stack ${name}`);

      const gone = mlship([...base, '--destroy', '--yes']);
      expect(gone.code, gone.stderr).toBe(0);
      expect(JSON.parse(gone.stdout).destroyed.removed).toEqual(
        expect.arrayContaining([
          `service ${name}-gpu`,
          `capacity provider ${capacity}`,
          `Auto Scaling group ${capacity} (its instances are terminated)`,
          `launch template ${capacity}`,
          `instance profile and role mlship-${name}-gpu-instance`,
          `cluster ${name}`,
        ]),
      );
      expect(
        (await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [capacity] })))
          .AutoScalingGroups,
      ).toEqual([]);
      await expect(
        iam.send(new GetInstanceProfileCommand({ InstanceProfileName: `mlship-${name}-gpu-instance` })),
      ).rejects.toMatchObject({ name: 'NoSuchEntityException' });
    } finally {
      for (const c of [ssm, ec2, asg, ecs, iam]) c.destroy();
    }
  });

  describe('pre-deploy checks: referenced secrets and the roles exist', () => {
    const SEC = `${STACK}-sec`;
    const execRole = `arn:aws:iam::123456789012:role/${SEC}-exec`;
    const taskRole = `arn:aws:iam::123456789012:role/app/${SEC}-task`;
    const smArn = `arn:aws:secretsmanager:us-east-1:123456789012:secret:${SEC}/db`;
    // moto's endpoint is known once it has started (beforeAll).
    let args: string[] = [];
    let plan: EcsPlanResult;
    const withSecretsManager = (p: EcsPlanResult): EcsPlanResult => {
      // mlship writes SSM references; a user's own task definitions may point at Secrets Manager.
      const td = structuredClone(p.translation.taskDefinitions);
      td[0]!.containerDefinitions![0]!.secrets!.push({
        name: 'DB_PASSWORD',
        valueFrom: `${smArn}:password::`,
      });
      return { ...p, translation: { ...p.translation, taskDefinitions: td } };
    };

    beforeAll(async () => {
      args = stackOnMoto(
        'sec/compose.yaml',
        '--apply',
        '--no-wait',
        '--execution-role-arn',
        execRole,
        '--task-role-arn',
        taskRole,
      );
      mkdirSync(path.join(dir, 'sec'), { recursive: true });
      writeFileSync(
        path.join(dir, 'sec', 'compose.yaml'),
        `name: ${SEC}\nservices:\n  app:\n    image: ${LOCAL_DEBIAN_IMAGE}\n    ports: ["8080"]\n    environment:\n      HF_TOKEN: \${HF_TOKEN}\n`,
      );
      plan = await planEcs({
        file: path.join(dir, 'sec', 'compose.yaml'),
        outDir: path.join(dir, 'sec', 'out'),
        region: 'us-east-1',
        accountId: '123456789012',
        executionRoleArn: execRole,
        taskRoleArn: taskRole,
        imageTag: 'x',
        force: true,
      });
    });

    it('missing: all located at once, each with its fix, and nothing is created', async () => {
      const r = mlship(args);
      expect(r.code, r.stderr).toBe(1);
      const valueFrom =
        plan.translation.taskDefinitions[0]!.containerDefinitions![0]!.secrets![0]!.valueFrom!;
      expect(r.stderr).toContain('3 pre-deploy check(s) failed; nothing was created');
      expect(r.stderr).toContain(
        `SSM parameter ${parameterName(valueFrom)} does not exist (used by ${SEC}-app/app HF_TOKEN) (fix: aws ssm put-parameter`,
      );
      expect(r.stderr).toMatch(
        new RegExp(`execution role ${SEC}-exec .*does not exist.*--execution-role-arn`),
      );
      expect(r.stderr).toMatch(new RegExp(`task role ${SEC}-task .*does not exist.*--task-role-arn`));
      const ecs = new ECSClient(clientConfig());
      const clusters = await ecs.send(new ListClustersCommand({}));
      expect(clusters.clusterArns?.some((a) => a.endsWith(`/${SEC}`))).toBe(false);
      const defs = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: `${SEC}-app` }));
      expect(defs.taskDefinitionArns ?? []).toEqual([]);
      ecs.destroy();

      const apis = await createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
      try {
        const err = (await preDeployChecks(
          withSecretsManager(plan),
          { aws: apis, engine: engine!, log: () => undefined },
          { localImages: {}, force: false, wait: false },
        ).catch((e: unknown) => e)) as OperationFailedError;
        expect(err).toBeInstanceOf(OperationFailedError);
        expect(err.details).toContainEqual(
          expect.stringMatching(
            new RegExp(
              `^Secrets Manager secret ${SEC}/db does not exist \\(used by ${SEC}-app/app DB_PASSWORD\\) \\(fix: aws secretsmanager create-secret`,
            ),
          ),
        );
      } finally {
        apis.destroy();
      }
    });

    it('present (created through the SDK): the checks pass and the stack deploys', async () => {
      const valueFrom =
        plan.translation.taskDefinitions[0]!.containerDefinitions![0]!.secrets![0]!.valueFrom!;
      const ssm = new SSMClient(clientConfig());
      await ssm.send(
        new PutParameterCommand({
          Name: parameterName(valueFrom),
          Type: 'SecureString',
          Value: SECRET_VALUES[0],
        }),
      );
      ssm.destroy();
      const sm = new SecretsManagerClient(clientConfig());
      await sm.send(
        new CreateSecretCommand({
          Name: `${SEC}/db`,
          SecretString: JSON.stringify({ password: SECRET_VALUES[1] }),
        }),
      );
      sm.destroy();
      const iam = new IAMClient(clientConfig());
      const trust = JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'ecs-tasks.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      });
      await iam.send(new CreateRoleCommand({ RoleName: `${SEC}-exec`, AssumeRolePolicyDocument: trust }));
      await iam.send(
        new CreateRoleCommand({ RoleName: `${SEC}-task`, Path: '/app/', AssumeRolePolicyDocument: trust }),
      );
      iam.destroy();

      const apis = await createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
      try {
        await expect(
          preDeployChecks(
            withSecretsManager(plan),
            { aws: apis, engine: engine!, log: () => undefined },
            { localImages: {}, force: false, wait: false },
          ),
        ).resolves.toMatchObject({ subnets: expect.arrayContaining([expect.stringMatching(/^subnet-/)]) });
      } finally {
        apis.destroy();
      }
      const r = mlship([...args, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).applied.services).toEqual([{ name: 'app', action: 'created' }]);
    });
  });

  it('no access key, secret, session token or registry password in any output or written file', async () => {
    const apis = await createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
    const registryPassword = (await apis.ecr.authorization()).password;
    apis.destroy();
    const files: string[] = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = path.join(d, n);
        if (n === '.git') continue;
        if (statSync(p).isDirectory()) walk(p);
        else files.push(readFileSync(p, 'utf8'));
      }
    };
    walk(dir);
    const haystack = [...outputs, ...files].join('\n');
    expect(outputs.length).toBeGreaterThan(4);
    for (const secret of [
      FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
      FAKE_CREDENTIALS.AWS_SESSION_TOKEN,
      FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID,
      registryPassword,
      ...SECRET_VALUES,
    ]) {
      expect(haystack.includes(secret), 'a credential leaked').toBe(false);
    }
  });
});
