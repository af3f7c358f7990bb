#!/usr/bin/env node
// bench/deploy/weights: a model service with ~1 GB of weights, from local file to a task
// that starts on the deployed task definition. The model is the iris classifier with 1 GiB
// of random bytes attached (so nothing compresses it), wrapped, deployed with
// `deploy ecs --apply` to moto (its S3 is the object store) and the local registry, then
// started with `--local` (the task definition as deployed, its weights downloaded from
// moto). Reports: the upload (bytes and seconds), a redeploy's upload (bytes: 0 is the
// goal), and the task's start-up: container start → model ready, with the weights
// download's share (the service's own "weights ready" log line) and the model load.
// Usage: npm run build && node bench/deploy/weights.mjs [--gib 1] [--grace SECONDS]
// Needs .venv (moto_server, scikit-learn), a registry on 127.0.0.1:5000, mlship-local images.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseDocument } from 'yaml';
import { startMoto } from './moto.mjs';

const arg = (name) =>
  process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : undefined;
const gib = arg('--gib') || 1;
// The service's start-up grace (mlship.yaml): an emulated S3 slower than S3 may need more than 60 s.
const grace = arg('--grace');
const root = path.resolve('bench/.work/weights');
const bin = path.resolve('bin/mlship.js');
const stack = `bench-weights-${Date.now().toString(36)}`;
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });

// On every interface: the containers --local starts reach it through host.docker.internal.
const { moto, endpoint, env: motoEnv } = await startMoto('0.0.0.0');
const env = { ...motoEnv, XDG_CACHE_HOME: path.join(root, '.cache') };
const run = (args, opts = {}) => {
  const t0 = performance.now();
  const out = execFileSync(process.execPath, [bin, ...args], { cwd: root, env, encoding: 'utf8', ...opts });
  return { out, seconds: (performance.now() - t0) / 1000 };
};
const onMoto = (...extra) => [
  'deploy',
  'ecs',
  '--region',
  'us-east-1',
  '--endpoint-url',
  endpoint,
  '--registry',
  '127.0.0.1:5000',
  ...extra,
];

try {
  // 1. A model with 1 GiB of weights that do not compress.
  execFileSync(path.resolve('.venv/bin/python'), [
    '-c',
    [
      'import joblib, numpy as np, sys',
      'm = joblib.load(sys.argv[1])',
      'm.mlship_bench_padding_ = np.frombuffer(np.random.default_rng(0).bytes(int(float(sys.argv[3]) * 2**30)), dtype=np.uint8)',
      'joblib.dump(m, sys.argv[2])',
    ].join('\n'),
    path.resolve('fixtures/wrap/iris/model.joblib'),
    path.join(root, 'model.joblib'),
    String(gib),
  ]);
  copyFileSync(path.resolve('fixtures/wrap/iris/example.json'), path.join(root, 'example.json'));
  const size = statSync(path.join(root, 'model.joblib')).size;
  execFileSync('git', ['init', '-q', root]);
  run(['init', '--yes', '--name', stack, '--service', 'iris']);
  run(['wrap', 'model.joblib', '--out', 'services/iris', '--base-image', 'mlship-local/python:3.11-slim']);
  if (grace) {
    const config = parseDocument(readFileSync(path.join(root, 'mlship.yaml'), 'utf8'));
    config.setIn(['services', 'iris', 'startup_grace_seconds'], grace);
    writeFileSync(path.join(root, 'mlship.yaml'), config.toString());
  }
  writeFileSync(path.join(root, '.gitignore'), 'model.joblib\n.cache/\n');
  execFileSync('git', ['-C', root, '-c', 'user.email=b@b', '-c', 'user.name=b', 'add', '-A']);
  execFileSync('git', ['-C', root, '-c', 'user.email=b@b', '-c', 'user.name=b', 'commit', '-qm', 'bench']);

  // 2. The first apply uploads the weights; a second one uploads nothing.
  const first = run(onMoto('--apply', '--no-wait', '--json'));
  const upload = JSON.parse(first.out).applied.weights[0];
  const second = run(onMoto('--apply', '--no-wait', '--json'));
  const again = JSON.parse(second.out).applied.weights[0];

  // 3. The deployed task definition, started here: its weights come from moto's S3.
  const local = run(onMoto('--local', '--json'));
  const report = JSON.parse(local.out);
  const name = `${stack}-local-iris`;
  const startedAt = Date.parse(
    execFileSync('docker', ['inspect', '-f', '{{.State.StartedAt}}', name], { encoding: 'utf8' }).trim(),
  );
  const logs = execFileSync('docker', ['logs', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
  const weights = logs.find((l) => l.msg === 'weights ready');
  const ready = logs.filter((l) => l.msg === 'model ready');
  const firstReady = Math.min(...ready.map((l) => l.ts * 1000));
  const startup = (firstReady - startedAt) / 1000;
  const rows = [
    ['weights', `${(size / 2 ** 30).toFixed(2)} GiB (${size} bytes)`],
    ['start-up grace (mlship.yaml)', grace ? `${grace} s` : 'default'],
    ['first --apply', `${first.seconds.toFixed(1)} s, ${upload.uploadedBytes} bytes uploaded`],
    [
      'second --apply (unchanged)',
      `${second.seconds.toFixed(1)} s, ${again.uploadedBytes} bytes uploaded (skipped: ${again.skipped})`,
    ],
    ['--local', `${local.seconds.toFixed(1)} s until every container healthy (ok: ${report.ok})`],
    ['task start-up (container start → first worker ready)', `${startup.toFixed(1)} s`],
    [
      'weights download (in the start-up)',
      `${(weights.download_ms / 1000).toFixed(1)} s, ${((weights.download_ms / 1000 / startup) * 100).toFixed(0)}% of the start-up, ${((size / 2 ** 20 / weights.download_ms) * 1000).toFixed(0)} MiB/s`,
    ],
    ['model load + warm-up (each worker)', ready.map((l) => `${l.load_ms + l.warmup_ms} ms`).join(', ')],
  ];
  console.log(
    `bench/deploy/weights, ${new Date().toISOString()}, load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
  run(onMoto('--local', '--down'));
} finally {
  moto.kill('SIGTERM');
  // What --local started (also when it failed), then the images.
  execFileSync(
    'sh',
    [
      '-c',
      `docker ps -aq --filter name=${stack} | xargs -r docker rm -f; docker network ls -q --filter name=${stack} | xargs -r docker network rm`,
    ],
    { stdio: 'ignore' },
  );
  execFileSync(
    'sh',
    ['-c', `docker images --format '{{.Repository}}:{{.Tag}}' | grep ${stack} | xargs -r docker rmi -f`],
    { stdio: 'ignore' },
  );
  rmSync(root, { recursive: true, force: true });
}
