// A rollout in the generated stack: the candidate as a second service with the stable
// one's settings, and NGINX routing to it (goldens a human reviews; the docker tier runs
// them in a real NGINX). Update goldens with UPDATE_GOLDEN=1.

import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type Rollout, RolloutSchema } from '../../../src/config/rollout-schema.js';
import { generateCompose, renderComposeYaml } from '../../../src/core/compose/generate.js';
import { stackFromProject } from '../../../src/core/deploy/deploy-stack.js';
import { ROLLOUTS_FILE, writeRollouts } from '../../../src/core/rollout/state.js';
import {
  DEFAULT_CPU_SHARES,
  type ProxyRouting,
  SHADOW_CPU_SHARES,
} from '../../../src/generators/compose-rollout.js';
import { composeValidator } from '../../helpers/compose-spec.js';
import { expectGolden } from '../../helpers/golden.js';
import { rollout } from '../../helpers/rollout.js';

const FIXTURE = 'fixtures/compose/pipeline/mlship.yaml';
const GOLDEN = 'test/golden/rollout';

const golden = (file: string, actual: string) => expectGolden(path.join(GOLDEN, file), actual);

const validate = composeValidator();

async function generate(rollouts: Rollout[], proxyRouting: ProxyRouting = 'reload') {
  return generateCompose({ configFile: FIXTURE, force: false, dryRun: true, rollouts, proxyRouting });
}

const file = (r: Awaited<ReturnType<typeof generate>>, name: string) =>
  r.stack.files.find((f) => f.path === name)!.content;
const nginx = (r: Awaited<ReturnType<typeof generate>>) => file(r, 'proxy/nginx.conf');
const routing = (r: Awaited<ReturnType<typeof generate>>) => file(r, 'proxy/routing/state.json');

/** A 10 % canary of pose-2d, sticky on a header, the rest mirrored (the canary goldens). */
const canaryRollout = () =>
  rollout({
    service: 'pose-2d',
    mode: 'canary',
    weight: 10,
    mirror: true,
    sticky: { header: 'X-User-Id' },
    candidate: { path: 'services/pose-3d', env: { BATCH_MAX_SIZE: '4' }, recordInputs: true },
  });

describe('a rollout in the generated stack', () => {
  it('a running local rollout shapes the local stack, never what deploy ecs/k8s carries to the cloud', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-rollout-deploy-'));
    try {
      cpSync(path.dirname(FIXTURE), dir, { recursive: true });
      const r = rollout({
        service: 'pose-2d',
        mode: 'canary',
        weight: 10,
        candidate: { path: 'services/pose-3d', env: {}, recordInputs: false },
      });
      await writeRollouts(path.join(dir, 'deploy/compose', ROLLOUTS_FILE), {
        version: 1,
        rollouts: { 'pose-2d': r },
      });
      const config = path.join(dir, 'mlship.yaml');
      const local = await generateCompose({ configFile: config, force: true, dryRun: true });
      expect(Object.keys(local.stack.compose.services)).toContain('pose-2d-candidate');
      expect(nginx(local)).toContain('pose-2d-candidate');
      const cloud = await stackFromProject(config);
      expect(cloud.stack.services.map((s) => s.name)).not.toContain('pose-2d-candidate');
      const conf = [...cloud.generated].find(([p]) => p.endsWith('nginx.conf'))![1];
      expect(conf).not.toContain('candidate');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('canary 10 %, sticky on a header, the stable share mirrored: golden nginx.conf and compose.yaml', async () => {
    const r = await generate([canaryRollout()]);
    golden('canary-nginx.conf', nginx(r));
    golden('canary-compose.yaml', renderComposeYaml(r.stack));
  });

  it.skipIf(!validate)(
    'the stack with a candidate validates against the official compose-spec JSON schema',
    async () => {
      const r = await generate([
        rollout({
          service: 'pose-2d',
          mode: 'ab',
          weight: 50,
          candidate: { path: 'services/pose-3d', env: {}, recordInputs: false },
        }),
      ]);
      const doc = parse(renderComposeYaml(r.stack));
      expect(validate!(doc), JSON.stringify(validate!.errors, null, 2)).toBe(true);
    },
  );

  it('shadow: golden nginx.conf (every request mirrored, the stand-in for a stopped shadow)', async () => {
    const r = await generate([
      rollout({
        service: 'pose-3d',
        mode: 'shadow',
        recordSample: 1,
        candidate: { image: 'acme/pose-3d:v2', env: {}, recordInputs: false },
      }),
    ]);
    golden('shadow-nginx.conf', nginx(r));
  });

  it('behind API keys, a rate limit and security headers, the rollout route keeps all three (nginx.conf with the share, as a reload and the cloud proxy have it)', async () => {
    const canary = rollout({
      service: 'iris',
      mode: 'canary',
      weight: 10,
      mirror: true,
      sticky: { header: 'X-User-Id' },
      candidate: { image: 'acme/iris:v2', env: {}, recordInputs: false },
    });
    for (const target of [undefined, 'cloud'] as const) {
      const r = await generateCompose({
        configFile: 'fixtures/compose/operate/mlship.yaml',
        force: false,
        dryRun: true,
        rollouts: [canary],
        proxyRouting: 'reload',
        ...(target ? { target } : {}),
      });
      const conf = nginx(r);
      const block = (start: string) => {
        const from = conf.indexOf(start);
        expect(from, `${start} in nginx.conf`).toBeGreaterThan(-1);
        return conf.slice(from, conf.indexOf('\n    }\n', from));
      };
      const route = block('    location /api/iris/ {');
      expect(route).toContain('if ($mlship_key_id = "") {\n            return 401;');
      expect(route).toContain('limit_req zone=mlship_per_client burst=10 nodelay;');
      expect(route).toContain('mirror /_mlship/shadow/iris;');
      // add_header in a location hides the server's: each of the server's is repeated there.
      const serverHeaders = conf
        .split('\n')
        .filter((l) => /^ {4}add_header /.test(l))
        .map((l) => l.trim());
      expect(serverHeaders.length).toBeGreaterThan(0);
      for (const h of serverHeaders) expect(route).toContain(`        ${h}`);
      // The route without a rollout asks for the same key.
      expect(block('    location /api/llm/ {')).toContain('if ($mlship_key_id = "") {');
    }
  });

  it('with the routing state (njs): nginx.conf is ready for a rollout of every service, the same whatever runs; state.json says what does', async () => {
    const canary = canaryRollout();
    const r = await generate([canary], 'state');
    golden('canary-state-nginx.conf', nginx(r));
    golden('canary-state.json', routing(r));
    expect(JSON.parse(routing(r))).toEqual({
      'pose-2d': { weight: 10, mirror: true, record: 0.1, sticky: { header: 'X-User-Id' } },
    });
    // Every step of a rollout (promote --to N, watch, promote), a mirror stopped or a shadow:
    // the same file, another state.
    for (const next of [
      ...[50, 100, 0].map((weight) => ({ ...canary, weight })),
      { ...canary, mirror: false },
      { ...canary, mode: 'shadow' as const, sticky: undefined },
    ]) {
      const g = await generate([next], 'state');
      expect(nginx(g)).toBe(nginx(r));
      expect(routing(g)).not.toBe(routing(r));
    }
    expect(
      JSON.parse(routing(await generate([{ ...canary, mode: 'shadow', sticky: undefined }], 'state'))),
    ).toEqual({
      'pose-2d': { weight: 0, mirror: true, record: 0.1 },
    });
    // No rollout: the same nginx.conf as with one whose candidate listens on the stable port with
    // the default shadow timeout, so `rollout start` reloads nothing. This candidate is a Node
    // service on 9000: only its address differs.
    const over = await generate([], 'state');
    const onStablePort = await generate(
      [{ ...canary, candidate: { image: 'acme/pose-2d:v2', env: {}, recordInputs: false } }],
      'state',
    );
    expect(nginx(onStablePort)).toBe(nginx(over));
    const lines = new Set(nginx(over).split('\n'));
    expect(
      nginx(r)
        .split('\n')
        .filter((l) => !lines.has(l)),
    ).toEqual([
      '    ~^candidate pose-2d-candidate:9000;',
      '        set $mlship_candidate pose-2d-candidate:9000;',
    ]);
    expect(nginx(await generate([{ ...canary, shadowTimeoutMs: 500 }], 'state'))).not.toBe(nginx(r));
    // Every model service is ready: its route variable, the candidate resolved per request.
    for (const id of ['pose_2d', 'pose_3d', 'detector'])
      if (nginx(over).includes(`${id}_upstream {`))
        expect(nginx(over)).toContain(`js_set $${id}_route mlship_route.route;`);
    expect(nginx(over)).toContain('js_import mlship_route from /etc/nginx/mlship-routing/route.js;');
    expect(nginx(over)).toContain('resolver 127.0.0.11 valid=1s ipv6=off;');
    expect(nginx(over)).not.toContain('split_clients');
    // Over: no entry (route.js sends everything to stable, unlabelled); the proxy mounts the folder.
    expect(JSON.parse(routing(over))).toEqual({});
    expect(file(over, 'proxy/routing/route.js')).toContain(
      "const STATE = '/etc/nginx/mlship-routing/state.json';",
    );
    const proxy = over.stack.compose.services['proxy-cpu'] ?? over.stack.compose.services.proxy!;
    expect(proxy.volumes).toContainEqual({
      type: 'bind',
      source: './proxy/routing',
      target: '/etc/nginx/mlship-routing',
      read_only: true,
    });
  });

  it('shadow with the routing state: golden nginx.conf', async () => {
    const r = await generate(
      [
        rollout({
          service: 'pose-3d',
          mode: 'shadow',
          recordSample: 1,
          candidate: { image: 'acme/pose-3d:v2', env: {}, recordInputs: false },
        }),
      ],
      'state',
    );
    golden('shadow-state-nginx.conf', nginx(r));
  });

  it('a shadow runs at the lowest CPU weight in its idle cgroup parent, capped by --shadow-cpus: golden candidate service; a canary keeps normal priority', async () => {
    // The detector has a GPU and limits (memory 4Gi, 2 CPUs): the cap replaces only its CPUs.
    const shadow = rollout({
      service: 'detector',
      mode: 'shadow',
      shadowCpus: 0.5,
      shadowCgroup: '/mlship-shadow',
      candidate: { image: 'acme/detector:v2', env: {}, recordInputs: false },
    });
    const r = await generate([shadow]);
    const s = r.stack.compose.services;
    const candidates = Object.fromEntries(Object.entries(s).filter(([name]) => name.includes('-candidate')));
    expect(Object.keys(candidates).sort()).toEqual(['detector-candidate', 'detector-candidate-cpu']);
    golden('shadow-candidate-compose.yaml', stringify(candidates, { aliasDuplicateObjects: false }));
    for (const c of Object.values(candidates)) {
      expect(c.cpu_shares).toBe(SHADOW_CPU_SHARES);
      expect(c.cgroup_parent).toBe('/mlship-shadow');
      expect(c.deploy?.resources.limits).toEqual({ cpus: '0.5', memory: '4096m' });
    }
    // Every other service keeps docker's default weight (1024), and the stable its own limits.
    for (const [name, svc] of Object.entries(s))
      if (!name.includes('-candidate'))
        expect([svc.cpu_shares, svc.cgroup_parent], name).toEqual([undefined, undefined]);
    expect(s.detector!.deploy?.resources.limits).toEqual({ cpus: '2', memory: '4096m' });
    expect(s.detector!.deploy?.resources.reservations).toEqual(
      s['detector-candidate']!.deploy?.resources.reservations,
    );
    // Without a cap: the low weight, the stable's limits as they are.
    const uncapped = (await generate([{ ...shadow, shadowCpus: undefined, shadowCgroup: undefined }])).stack
      .compose.services;
    expect(uncapped['detector-candidate']!.cpu_shares).toBe(SHADOW_CPU_SHARES);
    // No idle parent (start could not make one): the engine's own.
    expect(uncapped['detector-candidate']!.cgroup_parent).toBeUndefined();
    expect(uncapped['detector-candidate']!.deploy).toEqual(s.detector!.deploy);
    // Under the systemd cgroup driver the idle parent is a slice; anything else is refused.
    const sliced = { ...shadow, shadowCgroup: 'mlship_shadow.slice' };
    expect(RolloutSchema.safeParse(sliced).success).toBe(true);
    expect(RolloutSchema.safeParse({ ...shadow, shadowCgroup: 'mlship-shadow' }).success).toBe(false);
    expect((await generate([sliced])).stack.compose.services['detector-candidate']!.cgroup_parent).toBe(
      'mlship_shadow.slice',
    );
    // A canary (or a shadow promoted to one) answers clients: normal weight, the stable's limits.
    const canary = (await generate([{ ...shadow, mode: 'canary', weight: 10, shadowCpus: undefined }])).stack
      .compose.services['detector-candidate']!;
    expect(canary.cpu_shares ?? DEFAULT_CPU_SHARES).toBe(DEFAULT_CPU_SHARES);
    expect(canary.cgroup_parent).toBeUndefined();
    expect(canary.deploy).toEqual(s.detector!.deploy);
    if (validate)
      expect(validate(parse(renderComposeYaml(r.stack))), JSON.stringify(validate.errors)).toBe(true);
  });

  it('the candidate has the stable settings, its own build, port, weights and version label', async () => {
    const r = await generate([
      rollout({
        service: 'pose-2d',
        mode: 'ab',
        weight: 50,
        candidate: { path: 'services/pose-3d', env: { X: '1' }, recordInputs: false },
      }),
    ]);
    const s = r.stack.compose.services;
    const stable = s['pose-2d-cpu'] ?? s['pose-2d']!;
    const candidate = s['pose-2d-candidate-cpu'] ?? s['pose-2d-candidate']!;
    expect(candidate.build).toEqual({ context: '../../services/pose-3d' });
    expect(candidate.image).toBe('pose-pipeline/pose-2d-candidate:dev');
    // The candidate is a Node service on 9000 (its mlship-wrap.json); the stable one Python on 8080.
    expect(candidate.environment).toEqual({
      ...stable.environment,
      PORT: '9000',
      MLSHIP_MODEL_VERSION: 'candidate',
      X: '1',
    });
    expect(candidate.healthcheck.test.join(' ')).toContain('http://127.0.0.1:9000/readyz');
    expect(candidate.depends_on).toEqual(stable.depends_on);
    expect(candidate.labels['dev.mlship.rollout']).toBe('candidate');
    // The proxy waits for it too: NGINX resolves the candidate's name when it starts.
    const proxy = s['proxy-cpu'] ?? s.proxy!;
    expect(Object.keys(proxy.depends_on ?? {})).toContain(
      s['pose-2d-candidate-cpu'] ? 'pose-2d-candidate-cpu' : 'pose-2d-candidate',
    );
    expect(nginx(r)).toMatch(
      /split_clients "\$\{request_id\}" \$pose_2d_split \{\n {4}50% candidate;\n {4}\* stable;\n\}/,
    );
  });

  it('a rollout that is over shapes nothing: the stack is the one without it', async () => {
    // The fixture's proxy is the official image (no njs): nginx.conf without the routing state.
    const base = await generateCompose({ configFile: FIXTURE, force: false, dryRun: true });
    for (const routing of ['state', 'reload'] as const) {
      const done = await generate([], routing);
      expect(renderComposeYaml(done.stack)).toBe(renderComposeYaml(base.stack));
    }
    expect(nginx(await generate([], 'reload'))).toBe(nginx(base));
    expect(nginx(base)).toBe(readFileSync('fixtures/compose/pipeline/expected/nginx.conf', 'utf8'));
    expect(nginx(base)).not.toContain('js_import');
  });
});
