import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { Stack } from '../../../src/config/stack-model.js';
import { deployK8s, renderManifests } from '../../../src/core/deploy/k8s.js';
import { importCompose } from '../../../src/core/stack/compose-import.js';
import {
  cpuQuantity,
  type Deployment,
  type K8sManifest,
  k8sName,
  memoryQuantity,
  type Service,
  translateToK8s,
} from '../../../src/generators/k8s-manifests.js';
import { FileExistsError } from '../../../src/io/errors.js';
import { corpusFiles } from '../../helpers/corpus.js';
import { loadK8sValidator } from '../../helpers/k8s-schema.js';

const GPU_FIXTURE = 'fixtures/deploy/gpu-pipeline/compose.yaml';
const PIPELINE = 'fixtures/compose/pipeline';
const EXPECTED = 'fixtures/deploy/k8s-expected';
const validate = loadK8sValidator();

function composeStack(file: string, name?: string): Stack {
  return importCompose(file, readFileSync(file, 'utf8'), name);
}

function inlineStack(text: string): Stack {
  return importCompose('/project/compose.yaml', text, 'inline');
}

function checkGolden(text: string, golden: string): void {
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(path.dirname(golden), { recursive: true });
    writeFileSync(golden, text);
  }
  expect(text, `${golden} (regenerate with UPDATE_GOLDEN=1)`).toBe(readFileSync(golden, 'utf8'));
}

/**
 * Every manifest valid for the Kubernetes schemas. Without .venv's schemas this part of a test is
 * left out (loadK8sValidator printed why; on CI it threw instead): the rest of the test still runs.
 */
function expectValid(manifests: unknown[], where: string): void {
  if (!validate) return;
  for (const m of manifests as K8sManifest[]) {
    expect(validate(m), `${where}: ${m.kind} ${m.metadata.name}`).toEqual([]);
  }
}

const deployments = (ms: K8sManifest[]) => ms.filter((m): m is Deployment => m.kind === 'Deployment');
const services = (ms: K8sManifest[]) => ms.filter((m): m is Service => m.kind === 'Service');
const deployment = (ms: K8sManifest[], name: string) =>
  deployments(ms).find((d) => d.metadata.name === name)!;
const containerOf = (ms: K8sManifest[], name: string) =>
  deployment(ms, name).spec.template.spec.containers[0]!;

/** The pipeline project in a temporary folder (so that written files stay out of the fixture). */
function pipelineCopy(withoutProxy = false): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-k8s-'));
  cpSync(PIPELINE, dir, { recursive: true });
  const cfg = path.join(dir, 'mlship.yaml');
  if (withoutProxy) writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(/^proxy:.*\n.*\n/m, ''));
  return cfg;
}

describe('Kubernetes translation', () => {
  it('golden: the GPU pipeline compose file', () => {
    const t = translateToK8s(composeStack(GPU_FIXTURE, 'pose'));
    checkGolden(renderManifests(t), path.join(EXPECTED, 'gpu-pipeline/manifests.yaml'));
    expect(renderManifests(translateToK8s(composeStack(GPU_FIXTURE, 'pose')))).toBe(renderManifests(t));
  });

  it('golden: the pipeline mlship.yaml, written to manifests.yaml with the Namespace first', async () => {
    const r = await deployK8s({
      file: pipelineCopy(),
      imageTag: '3f2a1c9',
      registry: 'registry.example.com/acme',
      force: false,
    });
    expect(r.written.map((f) => path.basename(f))).toEqual(['manifests.yaml']);
    const text = readFileSync(r.written[0]!, 'utf8');
    checkGolden(text, path.join(EXPECTED, 'pipeline/manifests.yaml'));
    const docs = parseAllDocuments(text).map((d) => d.toJS() as K8sManifest);
    expect(docs[0]).toMatchObject({ kind: 'Namespace', metadata: { name: 'pose-pipeline' } });
    expect(docs).toEqual(r.translation.manifests);
    expectValid(docs, 'pipeline');
  });

  it.skipIf(!validate)('the schema check is strict: an unknown field or a wrong type is rejected', () => {
    const t = translateToK8s(composeStack(GPU_FIXTURE, 'pose'));
    const d = structuredClone(deployment(t.manifests, 'detector'));
    (d.spec.template.spec.containers[0] as unknown as Record<string, unknown>).gpus = 1;
    expect(validate!(d).join('\n')).toMatch(/additional properties \(gpus\)/);
    const s = structuredClone(services(t.manifests)[0]!) as unknown as { spec: { ports: unknown } };
    s.spec.ports = 'http';
    expect(validate!(s as unknown as K8sManifest)).not.toEqual([]);
  });

  it.skipIf(!validate)(
    'every manifest of both fixtures is valid for Kubernetes 1.31 (strict schemas)',
    async () => {
      expectValid(translateToK8s(composeStack(GPU_FIXTURE, 'pose')).manifests, 'gpu-pipeline');
      const r = await deployK8s({ file: pipelineCopy(), imageTag: 't', force: false });
      expectValid(r.translation.manifests, 'pipeline');
    },
  );

  it("sysctls: Kubernetes' safe ones in the pod's securityContext, the others a warning at their line; mlship's own proxy setting left out without one", async () => {
    const t = translateToK8s(
      inlineStack(
        [
          'services:',
          '  web:',
          '    image: nginx:1.27',
          '    sysctls:',
          '      net.ipv4.tcp_keepalive_time: 600',
          '      net.core.somaxconn: 4096',
          '',
        ].join('\n'),
      ),
    );
    expect(deployment(t.manifests, 'web').spec.template.spec.securityContext).toEqual({
      sysctls: [{ name: 'net.ipv4.tcp_keepalive_time', value: '600' }],
    });
    expect(t.warnings.filter((w) => w.path === 'services.web.sysctls')).toMatchObject([
      {
        line: 4,
        message: expect.stringMatching(/^sysctl net\.core\.somaxconn is not one of Kubernetes' safe sysctls/),
      },
    ]);
    expectValid(t.manifests, 'sysctls');
    const r = await deployK8s({ file: pipelineCopy(), imageTag: 't', force: false });
    expect(r.translation.warnings.filter((w) => w.path.endsWith('.sysctls'))).toEqual([]);
    expect(deployment(r.translation.manifests, 'proxy').spec.template.spec.securityContext).toBeUndefined();
  });

  it('GPU services: nvidia.com/gpu limits and a toleration; no autoscaler, with the reason in the plan', () => {
    const t = translateToK8s(composeStack(GPU_FIXTURE, 'pose'));
    for (const name of ['detector', 'pose-2d']) {
      const d = deployment(t.manifests, name);
      expect(d.spec.template.spec.containers[0]?.resources.limits?.['nvidia.com/gpu']).toBe('1');
      expect(d.spec.template.spec.tolerations).toEqual([
        { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
      ]);
      expect(t.plan.some((p) => p.startsWith(`no autoscaler for ${name}: it holds a GPU`))).toBe(true);
    }
    expect(t.manifests.filter((m) => m.kind === 'HorizontalPodAutoscaler')).toEqual([]);
    expect(deployment(t.manifests, 'pose-3d').spec.template.spec.tolerations).toBeUndefined();
    expect(containerOf(t.manifests, 'pose-3d').resources).toEqual({
      requests: { cpu: '300m', memory: '700Mi' },
      limits: { cpu: '300m', memory: '700Mi' },
    });
  });

  it('CPU model services get an autoscaler (autoscaling/v2, CPU 70%, 1-3); mlship-built images run as non-root', async () => {
    const r = await deployK8s({ file: pipelineCopy(), imageTag: 't', force: false });
    const hpas = r.translation.manifests.filter((m) => m.kind === 'HorizontalPodAutoscaler');
    expect(hpas.map((h) => h.metadata.name).sort()).toEqual(['pose-2d', 'pose-3d']);
    expect(hpas[0]).toMatchObject({
      apiVersion: 'autoscaling/v2',
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: hpas[0]!.metadata.name },
        minReplicas: 1,
        maxReplicas: 3,
        metrics: [{ resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
      },
    });
    // The HPA's utilisation is relative to the request: every scaled container has one.
    for (const h of hpas)
      expect(containerOf(r.translation.manifests, h.metadata.name).resources.requests?.cpu).toBeTruthy();
    expect(containerOf(r.translation.manifests, 'detector').securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 10001, // templates/wrap/python/Dockerfile.eta
      allowPrivilegeEscalation: false,
    });
    expect(containerOf(r.translation.manifests, 'pose-3d').securityContext?.runAsUser).toBe(1000); // node
    expect(containerOf(r.translation.manifests, 'proxy').securityContext).toBeUndefined();
    expect(containerOf(r.translation.manifests, 'detector').image).toBe('pose-pipeline/detector:t');
    expect(r.plan.some((p) => p.includes('are local names'))).toBe(true);
  });

  it('model probes: readiness on /readyz, liveness on /healthz, a startup probe that outlasts the grace', async () => {
    const t = translateToK8s(composeStack(GPU_FIXTURE, 'pose'));
    const det = containerOf(t.manifests, 'detector');
    expect(det.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 8080 });
    expect(det.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 8080 });
    const s = det.startupProbe!;
    expect(s.failureThreshold * s.periodSeconds).toBeGreaterThanOrEqual(600); // start_period: 600s
    const p2 = containerOf(t.manifests, 'pose-2d').startupProbe!;
    expect(p2.failureThreshold * p2.periodSeconds).toBeGreaterThanOrEqual(120);
    // mlship.yaml's startup_grace_seconds wins over the health check's start period.
    const grace = translateToK8s(composeStack(GPU_FIXTURE, 'pose'), { startupGrace: { detector: 900 } });
    const g = containerOf(grace.manifests, 'detector').startupProbe!;
    expect(g.failureThreshold * g.periodSeconds).toBeGreaterThanOrEqual(900);
    const r = await deployK8s({ file: pipelineCopy(), imageTag: 't', force: false });
    const d = containerOf(r.translation.manifests, 'detector').startupProbe!;
    expect(d.failureThreshold * d.periodSeconds).toBeGreaterThanOrEqual(60); // startup_grace_seconds default
  });

  it('other health checks become exec probes: CMD as argv, CMD-SHELL through sh -c', () => {
    const t = translateToK8s(composeStack(GPU_FIXTURE, 'pose'));
    const db = containerOf(t.manifests, 'db');
    expect(db.readinessProbe).toMatchObject({ exec: { command: ['pg_isready'] }, periodSeconds: 10 });
    expect(db.livenessProbe?.exec?.command).toEqual(['pg_isready']);
    expect(containerOf(t.manifests, 'pose-3d').readinessProbe).toBeUndefined(); // no health check
    const shell = translateToK8s(
      inlineStack(`services:
  cache:
    image: redis:7
    healthcheck:
      test: ["CMD-SHELL", "redis-cli ping | grep PONG"]
      interval: 5s
      retries: 4
      start_period: 30s
`),
    );
    const c = containerOf(shell.manifests, 'cache');
    expect(c.readinessProbe).toMatchObject({
      exec: { command: ['sh', '-c', 'redis-cli ping | grep PONG'] },
      periodSeconds: 5,
      failureThreshold: 4,
    });
    expect(c.startupProbe!.failureThreshold * c.startupProbe!.periodSeconds).toBeGreaterThanOrEqual(30);
    // No port declared: redis's standard port makes it reachable by name.
    expect(services(shell.manifests)[0]?.spec.ports).toEqual([
      { name: 'tcp-6379', port: 6379, targetPort: 'tcp-6379', protocol: 'TCP' },
    ]);
    expectValid(shell.manifests, 'inline');
  });

  it('secrets are references to one Secret whose keys are listed; no secret value in any manifest', async () => {
    const t = translateToK8s(composeStack(GPU_FIXTURE, 'pose'));
    expect(renderManifests(t)).not.toContain('example'); // POSTGRES_PASSWORD's plain-text value
    expect(t.manifests.some((m) => m.kind === ('Secret' as string))).toBe(false);
    expect(t.secretName).toBe('pose-secrets');
    expect(t.requiredSecretKeys).toEqual(['HF_TOKEN', 'POSTGRES_PASSWORD']);
    expect(containerOf(t.manifests, 'db').env).toEqual([
      { name: 'POSTGRES_DB', value: 'app' },
      {
        name: 'POSTGRES_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'pose-secrets', key: 'POSTGRES_PASSWORD' } },
      },
    ]);
    expect(t.plan.find((p) => p.startsWith('secret pose-secrets'))).toContain('HF_TOKEN, POSTGRES_PASSWORD');
    // From mlship.yaml: values that interpolate a generated password are references too.
    const r = await deployK8s({ file: pipelineCopy(), imageTag: 't', force: false });
    // No compose interpolation left in any environment (a ConfigMap's page may hold JS templates).
    const env = JSON.stringify(r.translation.manifests.filter((m) => m.kind !== 'ConfigMap'));
    expect(env).not.toMatch(/\$\{/);
    expect(r.requiredSecretKeys).toContain('DATABASE_URL');
    // File secrets are the Secret's keys mounted where compose mounted them.
    const files = translateToK8s(
      inlineStack(`services:
  api:
    image: example/api:1
    secrets: [db_password]
secrets:
  db_password: { file: ./db_password.txt }
`),
    );
    expect(containerOf(files.manifests, 'api').volumeMounts).toEqual([
      { name: 'secret-0', mountPath: '/run/secrets/db_password', subPath: 'db_password', readOnly: true },
    ]);
    expect(files.requiredSecretKeys).toEqual(['db_password']);
    expectValid(files.manifests, 'file secrets');
  });

  it('a LoadBalancer only for ports published to the outside; loopback-published ports stay internal', async () => {
    const t = translateToK8s(composeStack(GPU_FIXTURE, 'pose'));
    const lbs = services(t.manifests).filter((s) => s.spec.type === 'LoadBalancer');
    expect(lbs.map((s) => [s.metadata.name, s.spec.ports])).toEqual([
      ['proxy-public', [{ name: 'tcp-80', port: 80, targetPort: 80, protocol: 'TCP' }]],
    ]);
    const loopback = translateToK8s(
      inlineStack(`services:
  api:
    image: example/api:1
    ports: ["127.0.0.1:8080:8080", "9000"]
`),
    );
    expect(services(loopback.manifests).map((s) => s.spec.type)).toEqual(['ClusterIP']);
    const r = await deployK8s({ file: pipelineCopy(true), imageTag: 't', force: false });
    expect(services(r.translation.manifests).filter((s) => s.spec.type !== 'ClusterIP')).toEqual([]);
    expect(r.translation.manifests.some((m) => (m.kind as string) === 'Ingress')).toBe(false);
  });

  it('what cannot be carried over is a warning at the line of its field', () => {
    const t = translateToK8s(composeStack(GPU_FIXTURE, 'pose'));
    const brief = t.warnings.map((w) => `${w.line} ${w.path}`);
    expect(brief).toEqual(
      expect.arrayContaining([
        '43 services.proxy.volumes', // bind mount of nginx.conf
        '50 services.db.volumes', // named volume without a PVC
        '21 services.pose-2d.depends_on',
        '36 services.pose-3d.depends_on',
      ]),
    );
    for (const w of t.warnings) expect(w.file).toBe(GPU_FIXTURE);
  });

  it('compose names become valid Kubernetes names without collisions; quantities in Kubernetes units', () => {
    expect(k8sName('Web_API.v2')).toBe('web-api-v2');
    expect(k8sName('2fa')).toBe('fa');
    const t = translateToK8s(
      inlineStack(`services:
  web_1:
    image: example/web:1
    ports: ["8080"]
  web-1:
    image: example/web:1
    ports: ["8080"]
`),
    );
    expect(deployments(t.manifests).map((d) => d.metadata.name)).toEqual(['web-1', 'web-1-2']);
    expect(services(t.manifests).map((s) => s.spec.selector['app.kubernetes.io/name'])).toEqual([
      'web-1',
      'web-1-2',
    ]);
    expectValid(t.manifests, 'names');
    expect([cpuQuantity(2), cpuQuantity(0.25), cpuQuantity(1.5)]).toEqual(['2', '250m', '1500m']);
    expect([memoryQuantity(6 * 1024 ** 3), memoryQuantity(700 * 1024 ** 2), memoryQuantity(1000)]).toEqual([
      '6Gi',
      '700Mi',
      '1000',
    ]);
  });

  it('never writes into a folder it did not create, without --force; its own folder is rewritten', async () => {
    const cfg = pipelineCopy();
    const out = path.join(path.dirname(cfg), 'mine');
    mkdirSync(out);
    writeFileSync(path.join(out, 'notes.txt'), 'mine');
    await expect(deployK8s({ file: cfg, imageTag: 't', force: false, outDir: out })).rejects.toBeInstanceOf(
      FileExistsError,
    );
    await deployK8s({ file: cfg, imageTag: 't', force: true, outDir: out });
    await deployK8s({ file: cfg, imageTag: 't', force: false, outDir: out });
    expect(readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it.each(corpusFiles('compose', /\.ya?ml$/).map((f) => [path.basename(f), f]))(
    'corpus %s translates without a crash into valid manifests',
    (_n, file) => {
      const stack = composeStack(file);
      const t = translateToK8s(stack);
      expect(deployments(t.manifests).length).toBe(stack.services.length);
      expectValid(t.manifests, path.basename(file));
      const names = t.manifests.map((m) => `${m.kind}/${m.metadata.name}`);
      expect(new Set(names).size).toBe(names.length);
    },
  );
});
