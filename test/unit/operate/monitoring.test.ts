// Local monitoring and the proxy's protection, as generated: goldens of the operate fixture
// (compose.yaml, nginx.conf, prometheus.yml, Grafana's provisioning and dashboard), the
// compose file against the compose-spec schema, the dashboard against Grafana's own schema
// (@grafana/schema's types, generated from Grafana's CUE kinds: Grafana itself cannot be
// installed on this machine), and every dashboard query pointing at a job Prometheus scrapes.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateCompose, renderComposeYaml } from '../../../src/core/compose/generate.js';
import { stackFromProject } from '../../../src/core/deploy/deploy-stack.js';
import { dashboardQueries, grafanaDashboard } from '../../../src/generators/grafana-dashboard.js';
import { imageVersion } from '../../../src/generators/monitoring-stack.js';
import { contentSecurityPolicy } from '../../../src/generators/proxy-protection.js';
import { CORPUS } from '../../helpers/corpus.js';
import { expectGolden } from '../../helpers/golden.js';
import { requires } from '../../helpers/requires.js';

const FIXTURE = 'fixtures/compose/operate';

const golden = (file: string, actual: string) => expectGolden(path.join(FIXTURE, 'expected', file), actual);

const generated = () => generateCompose({ configFile: `${FIXTURE}/mlship.yaml`, force: false, dryRun: true });

describe('local monitoring and the proxy protection (generated)', () => {
  it('golden: compose.yaml, nginx.conf, prometheus.yml, Grafana provisioning and dashboard', async () => {
    const r = await generated();
    golden('compose.yaml', renderComposeYaml(r.stack));
    for (const f of r.stack.files) {
      if (f.path.endsWith('.html')) continue; // the page is the pipeline fixture's golden
      golden(f.path.replace(/\//g, '__'), f.content);
    }
    expect(r.stack.envVariables).toContain('GRAFANA_PASSWORD');
  });

  it('the compose file validates against the official compose-spec schema', async () => {
    const schemaFile = path.join(CORPUS, 'schema', 'compose-spec.json');
    const has = requires(
      'the compose-spec schema',
      existsSync(schemaFile),
      `${schemaFile}, from ../shared/corpus`,
    );
    if (!has) return expect(has).toBe(false);
    const { $schema: _m, ...schema } = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<
      string,
      unknown
    >;
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const doc = parse(renderComposeYaml((await generated()).stack));
    expect(validate(doc), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it("the dashboard type-checks against Grafana's dashboard schema (@grafana/schema, generated from its CUE kind)", async () => {
    const r = await generated();
    const file = r.stack.files.find((f) => f.path.endsWith('ops-demo.json'))!;
    const types = path.resolve('node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.js');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-grafana-'));
    try {
      // An object literal is checked for unknown members too (excess property checks).
      const check = (json: string) =>
        `import type { Dashboard } from ${JSON.stringify(types)};\nexport const d: Dashboard = ${json};\n`;
      writeFileSync(path.join(dir, 'good.ts'), check(file.content));
      const broken = JSON.parse(file.content);
      broken.panels[1].gridPos = { h: 'eight', w: 12, x: 0, y: 1 };
      broken.panels[1].colour = 'red';
      writeFileSync(path.join(dir, 'bad.ts'), check(JSON.stringify(broken)));
      const tsc = (f: string) =>
        spawnSync(
          process.execPath,
          [
            path.resolve('node_modules/typescript/bin/tsc'),
            '--ignoreConfig',
            '--noEmit',
            '--strict',
            '--skipLibCheck',
            '--target',
            'es2022',
            '--module',
            'nodenext',
            path.join(dir, f),
          ],
          { encoding: 'utf8' },
        );
      const good = tsc('good.ts');
      expect(good.status, good.stdout + good.stderr).toBe(0);
      // The check has teeth: a wrong type and an unknown member are both reported.
      const bad = tsc('bad.ts');
      expect(bad.status).not.toBe(0);
      expect(bad.stdout).toMatch(/'colour' does not exist|string' is not assignable to type 'number'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every dashboard query reads a job Prometheus scrapes; GPU panels only with a GPU service', async () => {
    const r = await generated();
    const prom = parse(r.stack.files.find((f) => f.path.endsWith('prometheus.yml'))!.content) as {
      scrape_configs: {
        job_name: string;
        static_configs: { targets: string[]; labels?: Record<string, string> }[];
      }[];
    };
    const jobs = prom.scrape_configs.map((c) => c.job_name);
    expect(jobs).toEqual(['models', 'proxy', 'containers', 'gpu', 'prometheus']);
    const models = prom.scrape_configs.find((c) => c.job_name === 'models')!;
    expect(models.static_configs).toEqual([
      { targets: ['iris:8080'], labels: { service: 'iris', version: '1.4.0' } },
      { targets: ['llm:9000'], labels: { service: 'llm', version: '0.9' } },
    ]);
    const input = {
      stack: 'ops-demo',
      services: [{ name: 'iris', version: '1.4.0' }],
      proxy: true,
      gpu: true,
    };
    for (const q of dashboardQueries(input)) {
      const job = /job="([^"]+)"/.exec(q.expr)?.[1];
      if (job) expect(jobs, q.panel).toContain(job);
      else expect(q.expr, q.panel).toMatch(/container_label_com_docker_compose_project="ops-demo"/);
    }
    const noGpu = grafanaDashboard({ ...input, gpu: false, proxy: false });
    expect(noGpu.panels.map((p) => p.title)).not.toContain('GPU utilisation');
    expect(noGpu.panels.map((p) => p.title)).not.toContain('Proxy connections');
    // Panels never overlap on Grafana's 24-column grid.
    const cells = new Set<string>();
    for (const p of grafanaDashboard(input).panels)
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
  });

  it('deploy ecs leaves the monitoring services and their volume out, and never carries the API keys folder', async () => {
    const d = await stackFromProject(`${FIXTURE}/mlship.yaml`);
    const names = d.stack.services.map((s) => s.name);
    expect(names).not.toContain('prometheus');
    expect(names).not.toContain('cadvisor');
    expect(names).not.toContain('grafana');
    expect(d.stack.volumes).not.toContain('prometheus-data');
    const proxy = d.stack.services.find((s) => s.name === 'proxy')!;
    expect(proxy.volumes.map((v) => v.target)).toEqual(['/etc/nginx/conf.d/default.conf']);
  });

  it('the client address comes from X-Forwarded-For behind the cloud load balancer only (locally a client could pick its rate-limit key)', async () => {
    const conf = (files: Iterable<[string, string]>) =>
      [...files].find(([p]) => p.endsWith(path.join('proxy', 'nginx.conf')))![1];
    const local = conf((await generated()).stack.files.map((f) => [f.path, f.content] as [string, string]));
    expect(local).toContain('limit_req_zone $binary_remote_addr');
    expect(local).not.toContain('set_real_ip_from');
    expect(local).not.toContain('real_ip_header');
    // The file deploy ecs bakes into the proxy's image (and deploy k8s puts in its ConfigMap).
    const cloud = conf((await stackFromProject(`${FIXTURE}/mlship.yaml`)).generated);
    expect(cloud).toContain('set_real_ip_from 10.0.0.0/8;');
    expect(cloud).toContain('real_ip_header X-Forwarded-For;');
  });

  it("the front end's CSP allows its own inline script and style by hash, nothing else", () => {
    const html = '<style>a{}</style><script>go()</script><script>more()</script>';
    const csp = contentSecurityPolicy(html);
    expect(csp).toMatch(/script-src 'self' 'sha256-[^']+' 'sha256-[^']+';/);
    expect(csp).toMatch(/style-src 'self' 'sha256-[^']+';/);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
  });

  it('the version label is the image tag', () => {
    expect(imageVersion('ops/iris:dev')).toBe('dev');
    expect(imageVersion('127.0.0.1:5000/iris:1.2')).toBe('1.2');
    expect(imageVersion('127.0.0.1:5000/iris')).toBe('latest');
    expect(imageVersion('iris:3@sha256:abc')).toBe('3');
  });
});
