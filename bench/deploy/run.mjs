#!/usr/bin/env node
// bench/deploy: time and bytes of `mlship deploy ecs --apply` for a first deploy and
// for a re-deploy after a one-line source change, against moto (ECS, EC2, Logs) and
// the local registry (images). The stack: `api` and `worker` built from Dockerfiles
// with a dependency layer under a source layer, and `cache` from a public image.
// Layers: what mlship's push reported (pushed / already there), sizes from the
// registry's manifest (compressed bytes); task definitions: revisions before/after.
// Usage: npm run build && node bench/deploy/run.mjs
// Needs .venv/bin/moto_server, a registry on 127.0.0.1:5000, mlship-local/python:3.11-slim.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ECSClient, ListTaskDefinitionsCommand } from '@aws-sdk/client-ecs';
import { startMoto } from './moto.mjs';

const REGISTRY = '127.0.0.1:5000';
const root = path.resolve('bench/.work/deploy');
const bin = path.resolve('bin/mlship.js');
// A new stack name per run, so the first deploy is a first deploy for the registry too.
const stack = `bench-deploy-${Date.now().toString(36)}`;
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });

const { moto, endpoint, env } = await startMoto();

const git = (...args) =>
  execFileSync('git', ['-C', root, '-c', 'user.email=b@b', '-c', 'user.name=b', ...args], { stdio: 'pipe' });
const dockerfile = [
  'FROM mlship-local/python:3.11-slim',
  // Dependencies first: a venv with pip (~20 MB), cached and pushed once.
  // The run's name in it, so this run's layers are new to the registry (a real first push).
  `RUN python -m venv /opt/venv && /opt/venv/bin/python -m compileall -q /opt/venv && echo ${stack} > /opt/venv/bench-run`,
  'WORKDIR /app',
  // The source last, so a source change rebuilds and pushes only this layer.
  'COPY app.py /app/app.py',
  'CMD ["/opt/venv/bin/python", "/app/app.py"]',
  '',
].join('\n');
for (const s of ['api', 'worker']) {
  mkdirSync(path.join(root, s), { recursive: true });
  writeFileSync(path.join(root, s, 'Dockerfile'), dockerfile);
  writeFileSync(path.join(root, s, 'app.py'), `print("${s} v1 (${stack})")\n`);
}
writeFileSync(
  path.join(root, 'compose.yaml'),
  [
    `name: ${stack}`,
    'services:',
    '  api:',
    '    build: ./api',
    // Published: the first deploy also creates the shared load balancer.
    '    ports: ["80:8000"]',
    '  worker:',
    '    build: ./worker',
    '  cache:',
    '    image: mlship-local/debian:bookworm',
    '    ports: ["6379"]',
    '',
  ].join('\n'),
);
execFileSync('git', ['init', '-q', root]);

function build() {
  const t0 = performance.now();
  for (const s of ['api', 'worker'])
    execFileSync('docker', ['build', '-q', '-t', `${stack}-${s}:latest`, path.join(root, s)], {
      stdio: 'pipe',
    });
  return (performance.now() - t0) / 1000;
}

async function revisions() {
  const ecs = new ECSClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  });
  const out = {};
  for (const s of ['api', 'worker', 'cache']) {
    const r = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: `${stack}-${s}` }));
    out[s] = (r.taskDefinitionArns ?? []).length;
  }
  ecs.destroy();
  return out;
}

/** Layers of repo:tag in the registry: compressed digest and size, keyed by the short diff id docker push prints. */
async function layersOf(repo, tag) {
  const accept = 'application/vnd.docker.distribution.manifest.v2+json';
  const manifest = await (
    await fetch(`http://${REGISTRY}/v2/${repo}/manifests/${tag}`, { headers: { accept } })
  ).json();
  const config = await (await fetch(`http://${REGISTRY}/v2/${repo}/blobs/${manifest.config.digest}`)).json();
  return manifest.layers.map((l, i) => ({
    short: config.rootfs.diff_ids[i].slice('sha256:'.length, 'sha256:'.length + 12),
    size: l.size,
  }));
}

async function deploy(label) {
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    [
      bin,
      'deploy',
      'ecs',
      '-f',
      'compose.yaml',
      '--apply',
      '--no-wait',
      '--json',
      '--registry',
      REGISTRY,
      '--endpoint-url',
      endpoint,
      '--region',
      'us-east-1',
      '--account-id',
      '123456789012',
    ],
    { cwd: root, env, encoding: 'utf8' },
  );
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${label}: mlship failed:\n${r.stderr}`);
  const { applied } = JSON.parse(r.stdout);
  const pushedShort = new Set(
    [...r.stderr.matchAll(/^(\S+): layer (\w{12}) pushed$/gm)].map((m) => `${m[1]}/${m[2]}`),
  );
  let layers = 0;
  let moved = 0;
  let bytes = 0;
  let total = 0;
  const perService = {};
  for (const p of applied.pushes) {
    const [repo, tag] = p.image.slice(REGISTRY.length + 1).split(':');
    const ls = await layersOf(repo, tag);
    const movedHere = ls.filter((l) => pushedShort.has(`${p.service}/${l.short}`));
    perService[p.service] = {
      layers: ls.length,
      moved: movedHere.length,
      top: movedHere.every((l) => l === ls.at(-1)),
    };
    layers += ls.length;
    moved += movedHere.length;
    bytes += movedHere.reduce((n, l) => n + l.size, 0);
    total += ls.reduce((n, l) => n + l.size, 0);
  }
  return {
    label,
    seconds,
    layers,
    moved,
    layersPushedByMlship: applied.pushes.reduce((n, p) => n + (p.layersPushed ?? 0), 0),
    bytes,
    total,
    perService,
    registered: applied.taskDefinitions
      .filter((t) => t.registered)
      .map((t) => t.family.slice(stack.length + 1)),
    services: applied.services.map((s) => `${s.name} ${s.action}`),
    loadBalancer: applied.loadBalancer
      ? `${applied.loadBalancer.created ? 'created' : 'unchanged'}, listener${applied.loadBalancer.listeners
          .map((l) => ` :${l.port} ${l.created ? 'created' : l.changed ? 'updated' : 'unchanged'}`)
          .join(',')}`
      : 'none',
  };
}

try {
  git('commit', '-q', '--allow-empty', '-m', 'empty');
  git('add', '.');
  git('commit', '-q', '-m', 'v1');
  const build1 = build();
  const first = await deploy('first deploy');
  const rev1 = await revisions();
  // The one-line source change, committed (images are tagged with the commit).
  writeFileSync(path.join(root, 'api', 'app.py'), `print("api v2 (${stack})")\n`);
  git('commit', '-q', '-am', 'v2: one line');
  const build2 = build();
  const second = await deploy('re-deploy after a one-line change in api');
  const rev2 = await revisions();
  const mb = (n) => (n < 100_000 ? `${n} B` : `${(n / 1e6).toFixed(1)} MB`);
  const rows = [
    ['', 'first deploy', 're-deploy (one line in api/app.py)'],
    ['docker build (not part of mlship)', `${build1.toFixed(1)} s`, `${build2.toFixed(1)} s`],
    [
      '`mlship deploy ecs --apply --no-wait`',
      `${first.seconds.toFixed(1)} s`,
      `${second.seconds.toFixed(1)} s`,
    ],
    [
      'layers pushed / already in the registry / in the images',
      `${first.moved} / ${first.layers - first.moved} / ${first.layers}`,
      `${second.moved} / ${second.layers - second.moved} / ${second.layers}`,
    ],
    [
      'layers pushed as counted by mlship (`layersPushed`)',
      `${first.layersPushedByMlship}`,
      `${second.layersPushedByMlship}`,
    ],
    [
      'bytes pushed (compressed) / image total',
      `${mb(first.bytes)} / ${mb(first.total)}`,
      `${mb(second.bytes)} / ${mb(second.total)}`,
    ],
    [
      'only the top layer moved, per image',
      '-',
      Object.entries(second.perService)
        .map(
          ([s, v]) =>
            `${s}: ${v.moved === 0 ? 'nothing' : v.moved === 1 && v.top ? 'top only' : `${v.moved} layers`}`,
        )
        .join(', '),
    ],
    ['task definitions registered', first.registered.join(', '), second.registered.join(', ') || 'none'],
    [
      'revisions api / worker / cache',
      `${rev1.api} / ${rev1.worker} / ${rev1.cache}`,
      `${rev2.api} / ${rev2.worker} / ${rev2.cache}`,
    ],
    ['services', first.services.join(', '), second.services.join(', ')],
    ['shared load balancer (api publishes 80)', first.loadBalancer, second.loadBalancer],
  ];
  const table = [
    `| ${rows[0].join(' | ')} |`,
    `|${rows[0].map(() => '---').join('|')}|`,
    ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
  console.log(table);
  console.log(JSON.stringify({ first, second, rev1, rev2, build1, build2 }, null, 2));
  writeFileSync(path.join(root, 'result.md'), `${table}\n`);
} finally {
  moto.kill('SIGTERM');
  for (const s of ['api', 'worker'])
    spawnSync('docker', ['rmi', '-f', `${stack}-${s}:latest`], { stdio: 'ignore' });
  // The tags mlship gave the images for the pushes.
  const tags = spawnSync('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((t) => t.includes(`/${stack}/`));
  for (const t of tags) spawnSync('docker', ['rmi', '-f', t], { stdio: 'ignore' });
}
