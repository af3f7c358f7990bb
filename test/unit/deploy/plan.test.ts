import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { awsName, loadBalancerNames, planEcs } from '../../../src/core/deploy/plan.js';
import { FileExistsError } from '../../../src/io/errors.js';
import { loadServiceModel, validateShape } from '../../helpers/aws-model.js';
import { expectGolden } from '../../helpers/golden.js';

const ecsModel = loadServiceModel('ecs');
const base = { region: 'eu-west-1', accountId: '123456789012', imageTag: '3f2a1c9', force: false };

describe('deploy ecs (files and plan)', () => {
  it('from a compose file: task definitions written, valid for the ECS API, plan and itemised cost', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-deploy-'));
    cpSync('fixtures/deploy/gpu-pipeline/compose.yaml', path.join(dir, 'compose.yaml'));
    const r = await planEcs({ ...base, file: path.join(dir, 'compose.yaml') });
    // The database (postgres with a data volume) is no task: it becomes Aurora Serverless v2.
    expect(readdirSync(path.join(dir, 'deploy/ecs/task-definitions')).sort()).toEqual([
      `${r.stack}-gpu.json`,
      `${r.stack}-pose-3d.json`,
      `${r.stack}-proxy.json`,
    ]);
    for (const f of readdirSync(path.join(dir, 'deploy/ecs/task-definitions'))) {
      const td = JSON.parse(readFileSync(path.join(dir, 'deploy/ecs/task-definitions', f), 'utf8'));
      if (ecsModel) expect(validateShape(ecsModel, 'RegisterTaskDefinitionRequest', td), f).toEqual([]);
    }
    const items = r.cost.lines.map((l) => l.item);
    expect(items).toEqual([
      `GPU instance for ${r.stack}-gpu`,
      'Fargate pose-3d',
      'Fargate proxy',
      'Application Load Balancer (shared)',
      'Public IPv4 addresses',
      'CloudWatch Logs',
      'CloudWatch dashboard, alarms, metrics',
      `Aurora Serverless v2 mlship-${r.stack}-db`,
    ]);
    // The worst case: both GPU instances of the Auto Scaling maximum and the database at 2 ACU, all month.
    const gpu = r.cost.lines[0]!.monthlyUsd;
    const db = r.cost.lines.at(-1)!.monthlyUsd;
    expect(r.cost.worstCase?.totalMonthlyUsd).toBeCloseTo(r.cost.totalMonthlyUsd + gpu + (175.7 - db), 1);
    expect(r.cost.worstCase?.detail).toMatch(
      /2 GPU instance\(s\) \(the Auto Scaling maximum\).*at its maximum capacity/,
    );
    // Paused when idle: what a month costs is its storage and its secret.
    expect(r.cost.lines.at(-1)).toMatchObject({
      monthlyUsd: 0.5,
      detail: expect.stringMatching(/^paused when idle/),
    });
    expect(r.cost.note).toMatch(/the database at its maximum 2 ACU all month: \$175\.70/);
    expect(r.databases).toMatchObject([
      { service: 'db', engine: 'postgres', localMajor: 16, awsEngine: 'aurora-postgresql', database: 'app' },
    ]);
    // Two GPU services share one task: 2 GPUs, so the cheapest type that holds it is g4dn.12xlarge.
    expect(r.gpuInstanceType).toBe('g4dn.12xlarge');
    expect(r.cost.lines[0]?.monthlyUsd).toBe(2855.76); // 3.912 $/h × 730 h
    expect(r.cost.lines[1]?.monthlyUsd).toBe(18.02); // 0.5 vCPU + 1 GB on Fargate
    expect(r.cost.totalMonthlyUsd).toBeCloseTo(
      r.cost.lines.reduce((n, l) => n + l.monthlyUsd, 0),
      2,
    );
    expect(r.cost.pricesDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(r.plan.filter((p) => p.includes('shared load balancer'))).toEqual([
      'service proxy: 1 × FARGATE, Service Connect, public port 80 via the shared load balancer',
    ]);
    expect(r.plan.filter((p) => /^(load balancer|security group) /.test(p))).toEqual([
      `load balancer ${r.stack} (Application Load Balancer, internet-facing, shared): HTTP :80 → proxy:80 (health /)`,
      `security group ${r.stack}-alb (the load balancer's: tcp 80 from anywhere); the tasks' security groups let it reach port(s) 80`,
    ]);
    // The secret value of the compose file is nowhere in what was written.
    for (const f of r.written) expect(readFileSync(f, 'utf8'), f).not.toContain('example');
  });

  it('from mlship.yaml: images go to ECR under <stack>/<service>:<tag>; no public port, no load balancer', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-deploy-'));
    cpSync('fixtures/compose/pipeline', dir, { recursive: true });
    const cfg = path.join(dir, 'mlship.yaml');
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(/^proxy:.*\n.*\n/m, ''));
    const r = await planEcs({ ...base, file: cfg });
    const gpu = JSON.parse(
      readFileSync(path.join(r.outDir, 'task-definitions/pose-pipeline-gpu.json'), 'utf8'),
    );
    expect(gpu.containerDefinitions[0].image).toBe(
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/pose-pipeline/detector:3f2a1c9',
    );
    expect(gpu.containerDefinitions[0].healthCheck.startPeriod).toBe(60);
    const p2 = JSON.parse(
      readFileSync(path.join(r.outDir, 'task-definitions/pose-pipeline-pose-2d.json'), 'utf8'),
    );
    // DATABASE_URL interpolates the generated password: a secret reference on ECS, never a value.
    expect(p2.containerDefinitions[0].secrets.map((s: { name: string }) => s.name)).toContain('DATABASE_URL');
    expect(r.cost.lines.map((l) => l.item)).not.toContain('Application Load Balancer (shared)');
    if (ecsModel) {
      for (const td of r.translation.taskDefinitions) {
        expect(validateShape(ecsModel, 'RegisterTaskDefinitionRequest', td), td.family).toEqual([]);
      }
    }
  });

  it("from mlship.yaml with a proxy: the proxy's task reuses TIME_WAIT ports (systemControls net.ipv4.tcp_tw_reuse=1), no other task sets any; golden, valid for the ECS API", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-deploy-'));
    cpSync('fixtures/compose/pipeline', dir, { recursive: true });
    const r = await planEcs({ ...base, file: path.join(dir, 'mlship.yaml') });
    const file = path.join(r.outDir, 'task-definitions/pose-pipeline-proxy.json');
    expectGolden('test/golden/deploy/pipeline-proxy-task-definition.json', readFileSync(file, 'utf8'));
    const controls = r.translation.taskDefinitions.flatMap((td) =>
      (td.containerDefinitions ?? []).flatMap((c) =>
        (c.systemControls ?? []).map((s) => ({ c: c.name, ...s })),
      ),
    );
    expect(controls).toEqual([{ c: 'proxy', namespace: 'net.ipv4.tcp_tw_reuse', value: '1' }]);
    if (ecsModel)
      for (const td of r.translation.taskDefinitions)
        expect(validateShape(ecsModel, 'RegisterTaskDefinitionRequest', td), td.family).toEqual([]);
  });

  it('never writes into a folder it did not create, without --force', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-deploy-'));
    cpSync('fixtures/deploy/gpu-pipeline/compose.yaml', path.join(dir, 'compose.yaml'));
    const out = path.join(dir, 'mine');
    cpSync('fixtures/deploy/gpu-pipeline', out, { recursive: true });
    await expect(
      planEcs({ ...base, file: path.join(dir, 'compose.yaml'), outDir: out }),
    ).rejects.toBeInstanceOf(FileExistsError);
    const r = await planEcs({ ...base, file: path.join(dir, 'compose.yaml'), outDir: out, force: true });
    expect(r.written.length).toBe(7); // 3 task definitions (the database is managed), services, cluster, load balancer, plan
    // Its own folder is rewritten freely on the next run.
    await planEcs({ ...base, file: path.join(dir, 'compose.yaml'), outDir: out });
  });

  it('a missing region or account is a usage error with the fix', async () => {
    await expect(
      planEcs({
        ...base,
        region: undefined,
        file: 'fixtures/deploy/gpu-pipeline/compose.yaml',
        outDir: '/tmp/x',
      }),
    ).rejects.toMatchObject({
      code: 'USAGE',
      hint: expect.stringMatching(/--region/),
    });
  });
});

describe('warnings about an mlship.yaml stack', () => {
  it("name the line of the service's key, or of the field behind the compose field, or of the section", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-deploy-lines-'));
    cpSync('fixtures/compose/pipeline', dir, { recursive: true });
    const file = path.join(dir, 'mlship.yaml');
    const r = await planEcs({ ...base, file, writeFiles: false });
    const at = (p: string) =>
      r.translation.warnings
        .filter((w) => w.path === p)
        .map((w) => `${path.basename(w.file)}:${w.line}:${w.column}`);
    const lines = readFileSync(file, 'utf8').split('\n');
    const lineOf = (text: string) => lines.indexOf(text) + 1;
    expect(at('services.pose-2d.depends_on')[0]).toBe(
      `mlship.yaml:${lineOf('    depends_on: [detector]')}:5`,
    );
    // The detector's weights go to the stack's bucket, the proxy's nginx.conf into its image:
    // neither is a mount on ECS any more.
    expect(at('services.detector.volumes')).toEqual([]);
    expect(at('services.proxy.volumes')).toEqual([]);
    expect(r.translation.refusals).toEqual([]);
    // The database is Aurora (no task, no volume); the model services read DATABASE_URL from its secret.
    expect(at('services.database.volumes')).toEqual([]);
    expect(r.databases.map((d) => d.service)).toEqual(['database']);
    const detector = r.translation.taskDefinitions.find((t) => t.family === `${r.stack}-gpu`)!
      .containerDefinitions![0]!;
    expect(detector.secrets).toContainEqual({
      name: 'DATABASE_URL',
      valueFrom: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${r.stack}/database:detector.DATABASE_URL::`,
    });
    expect(r.translation.warnings.some((w) => w.line === 1)).toBe(false);
  });
});

describe('the shared load balancer with a certificate', () => {
  it('serves HTTPS: port 80 becomes 443 with a redirect from 80, other ports HTTPS on their own port', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-deploy-tls-'));
    writeFileSync(
      path.join(dir, 'compose.yaml'),
      'name: shop\nservices:\n  web:\n    image: web:1\n    ports: ["80:3000"]\n  admin:\n    image: admin:1\n    ports: ["8443:9000"]\n',
    );
    const cert = 'arn:aws:acm:eu-west-1:123456789012:certificate/0c9b1f2e';
    const r = await planEcs({ ...base, file: path.join(dir, 'compose.yaml'), certificateArn: cert });
    const lb = r.loadBalancer!;
    expect(lb.certificateArn).toBe(cert);
    expect(
      lb.listeners.map((l) => [l.port, l.protocol, l.forward?.container ?? `→ ${l.redirectToHttps}`]),
    ).toEqual([
      [80, 'HTTP', '→ 443'],
      [443, 'HTTPS', 'web'],
      [8443, 'HTTPS', 'admin'],
    ]);
    expect(r.plan).toContain(
      `load balancer shop (Application Load Balancer, internet-facing, shared): HTTP :80 redirects to HTTPS :443, HTTPS :443 → web:3000 (health /), HTTPS :8443 → admin:9000 (health /); certificate ${cert}`,
    );
    expect(JSON.parse(readFileSync(path.join(r.outDir, 'load-balancer.json'), 'utf8'))).toEqual(lb);
    // Without a certificate: HTTP on the published ports.
    const plain = await planEcs({ ...base, file: path.join(dir, 'compose.yaml') });
    expect(plain.loadBalancer!.listeners.map((l) => [l.port, l.protocol])).toEqual([
      [80, 'HTTP'],
      [8443, 'HTTP'],
    ]);
  });
});

describe('names of the shared load balancer', () => {
  it('fit ELB rules: [A-Za-z0-9-], at most 32, no hyphen at the ends, never internal-; long names stay apart', () => {
    expect(loadBalancerNames('shop')).toMatchObject({ loadBalancer: 'shop', securityGroup: 'shop-alb' });
    expect(loadBalancerNames('shop').targetGroup('api', 8000)).toBe('shop-api-8000');
    expect(awsName('my_stack.v2', 32)).toBe('my-stack-v2');
    expect(awsName('-x--y-', 32)).toBe('x-y');
    expect(awsName('internal-tools', 32)).toBe('lb-internal-tools');
    const a = loadBalancerNames('a-very-long-stack-name-for-pose').targetGroup('detector-service', 8080);
    const b = loadBalancerNames('a-very-long-stack-name-for-pose').targetGroup('detector-service', 8081);
    for (const n of [a, b]) {
      expect(n.length).toBeLessThanOrEqual(32);
      expect(n).toMatch(/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/);
    }
    expect(a).not.toBe(b);
  });
});
