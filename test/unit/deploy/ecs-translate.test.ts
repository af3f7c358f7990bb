import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importCompose } from '../../../src/core/stack/compose-import.js';
import { fargateSize, translateToEcs } from '../../../src/generators/ecs-task-definitions.js';
import { loadServiceModel, validateShape } from '../../helpers/aws-model.js';
import { corpusFiles } from '../../helpers/corpus.js';

const OPTS = {
  region: 'eu-west-1',
  accountId: '123456789012',
  executionRoleArn: 'arn:aws:iam::123456789012:role/ecsTaskExecutionRole',
};
const FIXTURE = 'fixtures/deploy/gpu-pipeline';
const ecsModel = loadServiceModel('ecs');

function translateFixture() {
  const file = path.join(FIXTURE, 'compose.yaml');
  return translateToEcs(importCompose(file, readFileSync(file, 'utf8'), 'pose'), OPTS);
}

describe('ECS translation', () => {
  it('golden: task definitions and service plans of the GPU pipeline', () => {
    const t = translateFixture();
    const text = `${JSON.stringify({ taskDefinitions: t.taskDefinitions, services: t.services }, null, 2)}\n`;
    const golden = path.join(FIXTURE, 'expected-ecs.json');
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, text);
    expect(text, `${golden} (regenerate with UPDATE_GOLDEN=1)`).toBe(readFileSync(golden, 'utf8'));
  });

  it.skipIf(!ecsModel)('every task definition is valid for the ECS API model (botocore)', () => {
    for (const td of translateFixture().taskDefinitions) {
      expect(validateShape(ecsModel!, 'RegisterTaskDefinitionRequest', td), td.family).toEqual([]);
    }
  });

  it("a compose file's sysctls (map or list) become systemControls; one a container cannot have is a warning at its line", () => {
    const stack = importCompose(
      '/p/compose.yaml',
      [
        'services:',
        '  web:',
        '    image: nginx:1.27',
        '    sysctls:',
        '      net.core.somaxconn: 4096',
        '      vm.swappiness: 10',
        '  queue:',
        '    image: redis:7',
        '    sysctls:',
        '      - kernel.shmmax=1000000',
        '      - fs.mqueue.msg_max=64',
        '',
      ].join('\n'),
      'sys',
    );
    expect(stack.warnings.filter((w) => w.path.includes('sysctls'))).toMatchObject([
      {
        path: 'services.web.sysctls.vm.swappiness',
        line: 6,
        message: expect.stringMatching(/^sysctl vm\.swappiness is not a namespaced setting/),
      },
    ]);
    const t = translateToEcs(stack, OPTS);
    const controls = (family: string) =>
      t.taskDefinitions.find((d) => d.family === family)!.containerDefinitions![0]!.systemControls;
    expect(controls('sys-web')).toEqual([{ namespace: 'net.core.somaxconn', value: '4096' }]);
    expect(controls('sys-queue')).toEqual([
      { namespace: 'kernel.shmmax', value: '1000000' },
      { namespace: 'fs.mqueue.msg_max', value: '64' },
    ]);
    if (ecsModel)
      for (const td of t.taskDefinitions)
        expect(validateShape(ecsModel, 'RegisterTaskDefinitionRequest', td), td.family).toEqual([]);
    // Two GPU services share one task, so one network namespace: a net.* setting is the task's.
    const gpu = (name: string, sysctl: string) => [
      `  ${name}:`,
      '    image: pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime',
      ...(sysctl ? ['    sysctls:', `      - ${sysctl}`] : []),
      '    deploy:',
      '      resources:',
      '        reservations:',
      '          devices:',
      '            - driver: nvidia',
      '              count: 1',
      '              capabilities: [gpu]',
    ];
    const shared = translateToEcs(
      importCompose(
        '/p/compose.yaml',
        ['services:', ...gpu('a', 'net.core.somaxconn=4096'), ...gpu('b', ''), ''].join('\n'),
        'g',
      ),
      OPTS,
    );
    expect(shared.warnings.filter((w) => w.path.startsWith('services.a.sysctls'))).toMatchObject([
      {
        message:
          'net.core.somaxconn will apply to every container of the GPU task (one network namespace in awsvpc mode)',
      },
    ]);
  });

  it('GPU services share one EC2 task with GPU resource requirements; healthy ordering inside it', () => {
    const t = translateFixture();
    const gpu = t.taskDefinitions.find((d) => d.family === 'pose-gpu')!;
    expect(gpu.requiresCompatibilities).toEqual(['EC2']);
    expect(gpu.networkMode).toBe('awsvpc');
    expect(gpu.containerDefinitions?.map((c) => c.name)).toEqual(['detector', 'pose-2d']);
    for (const c of gpu.containerDefinitions ?? [])
      expect(c.resourceRequirements).toEqual([{ type: 'GPU', value: '1' }]);
    expect(gpu.containerDefinitions?.[1]?.dependsOn).toEqual([
      { containerName: 'detector', condition: 'HEALTHY' },
    ]);
    expect(t.services.find((s) => s.name === 'pose-gpu')).toMatchObject({
      launchType: 'EC2',
      healthCheckGracePeriodSeconds: 600,
    });
  });

  it('CPU services on Fargate, rounded up to a valid size with a warning', () => {
    const t = translateFixture();
    const p3 = t.taskDefinitions.find((d) => d.family === 'pose-pose-3d')!;
    expect(p3).toMatchObject({ requiresCompatibilities: ['FARGATE'], cpu: '512', memory: '1024' });
    expect(t.warnings.find((w) => w.path === 'services.pose-3d.deploy.resources')?.message).toBe(
      'Fargate has no 308 cpu / 700 MiB size; rounded up to 512 cpu / 1024 MiB',
    );
    expect(fargateSize(256, 512)).toEqual({ cpu: 256, memory: 512 });
    expect(fargateSize(1024, 9000)).toEqual({ cpu: 2048, memory: 9216 });
    expect(fargateSize(20000, 1024)).toBeUndefined();
  });

  it('health checks are clamped to ECS ranges, with warnings; the full grace goes to the service', () => {
    const t = translateFixture();
    const det = t.taskDefinitions.find((d) => d.family === 'pose-gpu')!.containerDefinitions![0]!;
    expect(det.healthCheck).toMatchObject({ interval: 5, startPeriod: 300, timeout: 5, retries: 3 });
    const msgs = t.warnings.filter((w) => w.path === 'services.detector.healthcheck').map((w) => w.message);
    expect(msgs).toEqual([
      "health check interval 1 is outside ECS's range 5-300; using 5",
      "health check startPeriod 600 is outside ECS's range 0-300; using 300",
    ]);
  });

  it('secrets become valueFrom references; no secret value anywhere in the output', () => {
    const t = translateFixture();
    const text = JSON.stringify(t);
    expect(text).not.toContain('example'); // POSTGRES_PASSWORD's plain-text value
    const db = t.taskDefinitions.find((d) => d.family === 'pose-db')!.containerDefinitions![0]!;
    expect(db.secrets).toEqual([
      {
        name: 'POSTGRES_PASSWORD',
        valueFrom: 'arn:aws:ssm:eu-west-1:123456789012:parameter/pose/POSTGRES_PASSWORD',
      },
    ]);
    expect(db.environment).toEqual([{ name: 'POSTGRES_DB', value: 'app' }]);
    const p2 = t.taskDefinitions.find((d) => d.family === 'pose-gpu')!.containerDefinitions![1]!;
    expect(p2.secrets?.map((s) => s.name)).toEqual(['HF_TOKEN']);
    const sm = translateToEcs(
      importCompose(`${FIXTURE}/compose.yaml`, readFileSync(`${FIXTURE}/compose.yaml`, 'utf8'), 'pose'),
      {
        ...OPTS,
        secretsStore: 'secretsmanager',
      },
    );
    expect(JSON.stringify(sm)).toContain(
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pose/HF_TOKEN',
    );
  });

  it('port mappings carry names and appProtocol for Service Connect; published ports are listed', () => {
    const t = translateFixture();
    const p3 = t.taskDefinitions.find((d) => d.family === 'pose-pose-3d')!.containerDefinitions![0]!;
    expect(p3.portMappings).toEqual([
      { containerPort: 9000, protocol: 'tcp', name: 'pose-3d-9000', appProtocol: 'http' },
    ]);
    // The proxy's health check requests no path, so the load balancer checks "/".
    expect(t.services.find((s) => s.name === 'proxy')?.publicPorts).toEqual([
      {
        listener: 80,
        container: 'proxy',
        containerPort: 80,
        healthCheckPath: '/',
        healthCheckIntervalSeconds: 30,
      },
    ]);
    expect(t.services.find((s) => s.name === 'pose-3d')?.publicPorts).toEqual([]);
    expect(p3.logConfiguration).toEqual({
      logDriver: 'awslogs',
      options: {
        'awslogs-group': '/mlship/pose',
        'awslogs-region': 'eu-west-1',
        'awslogs-stream-prefix': 'pose-3d',
      },
    });
  });

  it('published ports: one listener each on the shared load balancer; loopback, udp, databases and clashes are not exposed', () => {
    const file = 'pub/compose.yaml';
    const text = [
      'services:',
      '  api:',
      '    image: api:1',
      '    ports: ["8080:8000", "127.0.0.1:9000:9000", "5000:5000/udp"]',
      '    healthcheck:',
      '      test: ["CMD", "curl", "-f", "http://localhost:8000/readyz"]',
      '      interval: 2s',
      '  web:',
      '    image: web:1',
      '    ports: ["80:3000", "8080:3001"]',
      '    healthcheck:',
      '      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:3000/healthz?full=1 || exit 1"]',
      '  db:',
      '    image: postgres:16',
      '    ports: ["5432:5432"]',
      '  gpu:',
      '    image: gpu:1',
      '    ports: ["127.0.0.1:7000:7000", "7001:7001"]',
      '    deploy:',
      '      resources:',
      '        reservations:',
      '          devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }]',
      '',
    ].join('\n');
    const t = translateToEcs(importCompose(file, text, 'pub'), OPTS);
    const ports = Object.fromEntries(t.services.map((s) => [s.name, s.publicPorts]));
    expect(ports.api).toEqual([
      {
        listener: 8080,
        container: 'api',
        containerPort: 8000,
        healthCheckPath: '/readyz',
        healthCheckIntervalSeconds: 5,
      },
    ]);
    expect(ports.web).toEqual([
      {
        listener: 80,
        container: 'web',
        containerPort: 3000,
        healthCheckPath: '/healthz?full=1',
        healthCheckIntervalSeconds: 30,
      },
    ]);
    expect(ports.db).toEqual([]);
    // GPU services share one task; the loopback port stays local.
    expect(ports['pub-gpu']).toEqual([
      {
        listener: 7001,
        container: 'gpu',
        containerPort: 7001,
        healthCheckPath: '/',
        healthCheckIntervalSeconds: 30,
      },
    ]);
    const warned = t.warnings
      .filter((w) => w.path.endsWith('.ports'))
      .map((w) => `${w.line} ${w.path}: ${w.message}`);
    expect(warned).toEqual([
      '4 services.api.ports: udp port 5000 is not reachable through Service Connect',
      '4 services.api.ports: published udp port 5000 is not exposed: an Application Load Balancer carries HTTP only',
      "10 services.web.ports: port 8080 is already published by api; the load balancer's listener 8080 forwards to api only",
      '15 services.db.ports: published port 5432 (PostgreSQL) is not exposed to the internet: an Application Load Balancer carries HTTP only',
    ]);
  });

  it('what cannot be carried over is a warning at the line of its field; what cannot start, a refusal', () => {
    const t = translateFixture();
    const brief = t.warnings.map((w) => `${w.line} ${w.path}`);
    expect(brief).toContain('36 services.pose-3d.depends_on'); // pose-2d runs in another task
    expect(brief).toContain('50 services.db.volumes');
    // The proxy reads nginx.conf from the host: without it there is no proxy at all.
    expect(t.refusals.map((w) => `${w.line} ${w.path}: ${w.fix}`)).toEqual([
      // Both GPU services listen on 8080, in one task: the second could not bind it.
      "17 services.pose-2d.ports: give pose-2d another port (services.pose-2d.port in mlship.yaml, or its server's port)",
      '43 services.proxy.volumes: deploy with --bake-mounts (the file is copied into an image of the stack), or COPY it in the Dockerfile; model weights: weights.url',
    ]);
    // Baked into the proxy's image by the deploy, it is no mount and no refusal.
    const baked = translateToEcs(
      importCompose(
        path.join(FIXTURE, 'compose.yaml'),
        readFileSync(path.join(FIXTURE, 'compose.yaml'), 'utf8'),
        'pose',
      ),
      { ...OPTS, bakedMounts: { proxy: ['/etc/nginx/conf.d/default.conf'] } },
    );
    expect(baked.refusals.map((w) => w.path)).toEqual(['services.pose-2d.ports']);
    expect(baked.warnings.some((w) => w.path === 'services.proxy.volumes')).toBe(false);
  });

  it("weights downloaded at start-up widen the service's grace and its task storage", () => {
    const file = '/p/compose.yaml';
    const text = [
      'services:',
      '  model:',
      '    image: m',
      '    ports: ["8000:8000"]',
      '    healthcheck:',
      '      test: ["CMD", "python", "-c", "print(1)"]',
      '      start_period: 60s',
      '',
    ].join('\n');
    const withWeights = (gib: number) =>
      translateToEcs(importCompose(file, text, 'w'), {
        ...OPTS,
        weights: { model: { url: 's3://b/k', sizeBytes: gib * 2 ** 30 } },
      });
    const none = translateToEcs(importCompose(file, text, 'w'), OPTS);
    const one = withWeights(1);
    const health = (t: typeof one) =>
      t.taskDefinitions[0]!.containerDefinitions![0]!.healthCheck!.startPeriod;
    const grace = (t: typeof one) => t.services[0]!.healthCheckGracePeriodSeconds;
    expect([health(none), grace(none)]).toEqual([60, 60]);
    // 1 GiB at the assumed 20 MiB/s: 51 s more, so the download does not eat the model's grace.
    expect([health(one), grace(one)]).toEqual([111, 111]);
    expect(one.taskDefinitions[0]!.ephemeralStorage).toBeUndefined();
    // 30 GiB: the container check stops at ECS's 300 s; the service keeps the whole grace.
    const big = withWeights(30);
    expect([health(big), grace(big)]).toEqual([300, 60 + 1536]);
    expect(big.taskDefinitions[0]!.ephemeralStorage).toEqual({ sizeInGiB: 40 });
    expect(big.warnings.map((w) => w.message).join('\n')).toMatch(
      /startPeriod 1596 is outside ECS's range 0-300/,
    );
  });

  it.each(corpusFiles('compose', /\.ya?ml$/).map((f) => [path.basename(f), f]))(
    'corpus %s translates without a crash into valid task definitions',
    (_n, file) => {
      const stack = importCompose(file, readFileSync(file, 'utf8'));
      const t = translateToEcs(stack, OPTS);
      expect(t.taskDefinitions.length).toBe(stack.services.length);
      if (ecsModel) {
        for (const td of t.taskDefinitions)
          expect(validateShape(ecsModel, 'RegisterTaskDefinitionRequest', td), td.family).toEqual([]);
      }
    },
  );
});
