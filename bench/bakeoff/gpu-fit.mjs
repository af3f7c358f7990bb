#!/usr/bin/env node
// Benchmark for the GPU fit check of `deploy ecs` (not a test): what it adds to a plan, in one
// run, side by side with the plan without it (issue 23 goal: under 1 s, no image pull).
//   a. the GPU image is local: its labels from the engine's inspect;
//   b. the image is only in a registry (the local one at 127.0.0.1:5000): labels from the
//      registry's image config (manifest + config blob), nothing pulled.
// Each round plans the same GPU stack three ways (no fit, a, b), interleaved; medians reported.
// Usage: npm run build && node bench/bakeoff/gpu-fit.mjs [--rounds 15] [--base-image mlship-local/debian:bookworm]
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DockerEngine } from '../../dist/adapters/docker/engine.js';
import { createImageLabels } from '../../dist/adapters/docker/image-labels.js';
import { builtinMatrix } from '../../dist/core/bakeoff/matrix.js';
import { gpuLabels } from '../../dist/core/deploy/gpu-fit.js';
import { planEcs } from '../../dist/core/deploy/plan.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const rounds = Number(arg('--rounds', '15'));
const baseImage = arg('--base-image', process.env.MLSHIP_TEST_DEBIAN_IMAGE ?? 'mlship-local/debian:bookworm');
const id = randomBytes(3).toString('hex');
const LOCAL = `mlship-bench/gpufit:${id}`;
const REMOTE = `127.0.0.1:5000/mlship-bench/gpufit:${id}`;

const engine = await DockerEngine.connect();
const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-gpufit-'));
writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${baseImage}\n`);
const labels = gpuLabels({
  framework: 'torch 2.15.0+cu132',
  cuda: '13.2',
  archs: ['sm_75', 'sm_80', 'sm_86', 'sm_89', 'sm_90', 'compute_90'],
  minDriver: '580.95.05',
  minDriverCompat: '580.65.06',
});
await engine.build({ context: dir, tags: [LOCAL], labels });
await engine.tag(LOCAL, REMOTE.slice(0, REMOTE.lastIndexOf(':')), id);
await engine.push(REMOTE, undefined);
await engine.removeImage(REMOTE);

function stack(image) {
  const d = path.join(dir, image === LOCAL ? 'local' : 'remote', 'pose');
  mkdirSync(d, { recursive: true });
  writeFileSync(
    path.join(d, 'compose.yaml'),
    `services:\n  detector:\n    image: ${image}\n    deploy:\n      resources:\n        limits: { memory: 6g }\n        reservations:\n          devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }]\n`,
  );
  return path.join(d, 'compose.yaml');
}
const files = { local: stack(LOCAL), remote: stack(REMOTE) };
const base = {
  region: 'eu-west-1',
  accountId: '123456789012',
  imageTag: 't',
  force: true,
  writeFiles: false,
  gpuInstanceType: 'g6.xlarge',
};
const matrix = builtinMatrix();

async function timed(fn) {
  const t0 = performance.now();
  const r = await fn();
  return { ms: performance.now() - t0, r };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const times = { none: [], local: [], registry: [] };
for (let i = 0; i < rounds; i++) {
  times.none.push((await timed(() => planEcs({ ...base, file: files.local }))).ms);
  const a = await timed(() =>
    planEcs({
      ...base,
      file: files.local,
      gpuFit: { images: createImageLabels({ engine: async () => engine }), matrix },
    }),
  );
  times.local.push(a.ms);
  const b = await timed(() =>
    planEcs({
      ...base,
      file: files.remote,
      gpuFit: { images: createImageLabels({ engine: async () => engine }), matrix },
    }),
  );
  times.registry.push(b.ms);
  if (i === 0) {
    for (const [k, r] of [
      ['local', a.r],
      ['registry', b.r],
    ])
      if (!r.plan.some((l) => l.includes('fits')))
        throw new Error(`${k}: the fit was not checked: ${r.plan.join('\n')}`);
  }
}
const pulled = await engine.imageExists(REMOTE);
await engine.removeImage(LOCAL, true);
const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
console.log(`GPU fit of a deploy ecs plan, ${rounds} rounds, medians (core planEcs, no files written):`);
console.log(`  plan without the fit check:            ${m.none.toFixed(1)} ms`);
console.log(
  `  + fit, image local (engine inspect):   ${m.local.toFixed(1)} ms  (+${(m.local - m.none).toFixed(1)} ms)`,
);
console.log(
  `  + fit, image in a registry (no pull):  ${m.registry.toFixed(1)} ms  (+${(m.registry - m.none).toFixed(1)} ms)`,
);
console.log(`  image pulled by the check: ${pulled ? 'YES' : 'no'}`);
console.log(
  `goal: the fit adds < 1000 ms: ${Math.max(m.local, m.registry) - m.none < 1000 ? 'met' : 'NOT met'}`,
);
