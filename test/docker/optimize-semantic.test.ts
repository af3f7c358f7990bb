// The rewrite's promise, checked on a real engine: for every buildable fixture,
// the original and the rewritten Dockerfile build images with the same files
// (path, size, mode; caches aside, and aside from exactly the files the rewrite
// says it excluded) and the same config. With --slim-base, and when a CUDA devel
// stage is split onto the runtime image, the base differs, so what each
// Dockerfile adds to its own base is compared. A fixture whose original cannot
// build (pip on a base without Python) must build after the rewrite. Also `--layers`.

import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DockerEngine } from '../../src/adapters/docker/engine.js';
import { measureImage } from '../../src/core/optimize/layers.js';
import { lintDockerfile } from '../../src/core/optimize/lint.js';
import { planRewrite, type RewritePlan } from '../../src/core/optimize/optimize.js';
import { parseDockerfile } from '../../src/core/optimize/parse.js';
import { LDD_CHECK } from '../../src/core/optimize/rewrite.js';
import { LOCAL_DEBIAN_IMAGE, LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { fixtures, fsDeps } from '../unit/optimize/helpers.js';

const RUN = `optimize-${process.pid}-${Date.now()}`;
const LABELS = { 'dev.mlship.test': 'optimize', 'dev.mlship.run': RUN };
const engine = await requireEngine();
const tmp: string[] = [];
const images: string[] = [];
const buildable = fixtures().filter((f) => f.build);

// dpkg-query's own ${Package} syntax, kept out of a JS string literal that looks like a template.
const PACKAGE_FORMAT = ['-f=$', '{Package}\\n'].join('');

/** Paths that are caches or per-container: they may differ without the image behaving differently. */
const CACHES = [
  /^\/root\/\.cache(\/|$)/,
  /(^|\/)__pycache__(\/|$)/,
  /\.pyc$/,
  /^\/var\/lib\/apt\/lists(\/|$)/,
  /^\/var\/cache(\/|$)/,
  /^\/var\/log(\/|$)/,
  /^\/tmp(\/|$)/,
  /^\/etc\/(hostname|hosts|resolv\.conf|mtab)$/,
  /^\/\.dockerenv$/,
];

interface Entry {
  size: number;
  mode: string;
  type: string;
  link: string;
}

async function lines(e: DockerEngine, image: string, cmd: string[]): Promise<string[]> {
  const out: string[] = [];
  const r = await e.run({
    image,
    entrypoint: [],
    cmd,
    user: '0',
    labels: LABELS,
    tailLines: 5,
    timeoutMs: 60_000,
    onLog: (l, s) => s === 'stdout' && out.push(l),
  });
  if (r.exitCode !== 0)
    throw new Error(`${cmd.join(' ')} in ${image} exited ${r.exitCode}: ${r.stderrTail.join('\n')}`);
  return out;
}

/**
 * Files of the Debian packages the rewrite moved out of the final image (the
 * build tools and what they pulled in): dpkg's own list of them, their
 * alternatives links, and dpkg's database.
 */
async function removedPackageFiles(
  e: DockerEngine,
  orig: string,
  rewritten: string,
): Promise<{ packages: string[]; paths: string[] }> {
  const q = ['dpkg-query', '-W', PACKAGE_FORMAT];
  const after = new Set(await lines(e, rewritten, q));
  const packages = (await lines(e, orig, q)).filter((p) => !after.has(p));
  if (!packages.length) return { packages, paths: [] };
  const files = (await lines(e, orig, ['dpkg', '-L', ...packages])).filter((l) => l.startsWith('/'));
  return { packages, paths: files };
}

async function filesystem(e: DockerEngine, image: string): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  const r = await e.run({
    image,
    entrypoint: ['find'],
    cmd: ['/', '-xdev', '-printf', '%p\\t%s\\t%m\\t%y\\t%l\\n'],
    user: '0',
    labels: LABELS,
    tailLines: 5,
    timeoutMs: 120_000,
    onLog: (line, stream) => {
      if (stream !== 'stdout') return;
      const [p, size, mode, type, link] = line.split('\t');
      if (p && size && mode && type)
        out.set(p, { size: type === 'd' ? 0 : Number(size), mode, type, link: link ?? '' });
    },
  });
  if (r.exitCode !== 0) throw new Error(`find in ${image} exited ${r.exitCode}: ${r.stderrTail.join('\n')}`);
  return out;
}

/** The stand-in base images are scanned once for all the fixtures built on them. */
const baseScans = new Map<string, Promise<Map<string, Entry>>>();
function baseFilesystem(e: DockerEngine, image: string): Promise<Map<string, Entry>> {
  const id = image === DEVEL_IMAGE ? FULL_IMAGE : image === RUNTIME_IMAGE ? SLIM_IMAGE : image;
  if (!baseScans.has(id)) baseScans.set(id, filesystem(e, id));
  return baseScans.get(id)!;
}

function comparable(fs: Map<string, Entry>, excluded: string[]): Map<string, Entry> {
  return new Map(
    [...fs].filter(
      ([p]) => !CACHES.some((re) => re.test(p)) && !excluded.some((x) => p === x || p.startsWith(`${x}/`)),
    ),
  );
}

/**
 * Stand-ins for the `--slim-base` fixtures, which start from the full image:
 * the "full" one is the local slim image plus gcc and Python's headers (what
 * makes the point: a toolchain the slim variant lacks), the slim one is the
 * local slim image itself under the name the rewrite derives.
 */
const FULL_IMAGE = 'mlship-test/python:3.11';
const SLIM_IMAGE = 'mlship-test/python:3.11-slim';
/**
 * The CUDA fixtures' images, as tags of the same stand-ins: pytorch/pytorch's devel
 * and runtime flavours (Python with and without the compilers and headers), and a
 * CUDA base image, which ships no Python (the local debian image).
 */
const DEVEL_IMAGE = 'mlship-test/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-devel';
const RUNTIME_IMAGE = 'mlship-test/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime';
const CUDA_BASE_IMAGE = 'mlship-test/cuda:12.4.1-base-ubuntu22.04';
const standIns: string[] = [];

async function tagAs(e: DockerEngine, source: string, ref: string): Promise<void> {
  const colon = ref.lastIndexOf(':');
  await e.tag(source, ref.slice(0, colon), ref.slice(colon + 1));
}

async function createStandIns(e: DockerEngine): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-opt-full-'));
  tmp.push(dir);
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    [
      `FROM ${LOCAL_PYTHON_IMAGE}`,
      // Python's headers too: the full python image has them, and a C extension needs them.
      'RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev libpython3.11-dev && rm -rf /var/lib/apt/lists/*',
      '',
    ].join('\n'),
  );
  standIns.push(FULL_IMAGE, SLIM_IMAGE, DEVEL_IMAGE, RUNTIME_IMAGE, CUDA_BASE_IMAGE);
  await e.build({ context: dir, tags: [FULL_IMAGE], labels: LABELS });
  await tagAs(e, LOCAL_PYTHON_IMAGE, SLIM_IMAGE);
  await tagAs(e, FULL_IMAGE, DEVEL_IMAGE);
  await tagAs(e, LOCAL_PYTHON_IMAGE, RUNTIME_IMAGE);
  await tagAs(e, LOCAL_DEBIAN_IMAGE, CUDA_BASE_IMAGE);
}

beforeAll(async () => {
  if (!engine) return;
  await requireImage(engine, LOCAL_PYTHON_IMAGE);
  await requireImage(engine, LOCAL_DEBIAN_IMAGE);
  await createStandIns(engine);
});

afterAll(async () => {
  if (engine) {
    await engine.removeByLabel('dev.mlship.run', RUN);
    for (const i of images) await engine.removeImage(i, true);
    // Last: the fixture images are built on them. Their tags go; the local images they name stay.
    for (const i of standIns) await engine.removeImage(i, true);
  }
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

/** Entries of `fs` that its base image does not have, or has otherwise (what the Dockerfile added or changed). */
/** Paths only in a, only in b, and in both with another size, mode, type or link target. */
function differences(a: Map<string, Entry>, b: Map<string, Entry>) {
  return {
    onlyA: [...a.keys()].filter((p) => !b.has(p)),
    onlyB: [...b.keys()].filter((p) => !a.has(p)),
    changed: [...a]
      .filter(([p, x]) => b.has(p) && JSON.stringify(b.get(p)) !== JSON.stringify(x))
      .map(([p]) => p),
  };
}

function addedTo(fs: Map<string, Entry>, base: Map<string, Entry>): Map<string, Entry> {
  return new Map([...fs].filter(([p, x]) => JSON.stringify(base.get(p)) !== JSON.stringify(x)));
}

/** Paths of the base image that the image no longer has. */
function removedFrom(fs: Map<string, Entry>, base: Map<string, Entry>): string[] {
  return [...base.keys()].filter((p) => !fs.has(p) && !CACHES.some((re) => re.test(p)));
}

describe.skipIf(!engine)('optimize rewrite keeps the image (real engine)', () => {
  it('has buildable fixtures', () => {
    expect(buildable.map((f) => f.name)).toEqual(
      expect.arrayContaining(['naive-python', 'apt-tools', 'multistage', 'slim-base', 'cuda-extension']),
    );
  });

  const built = new Map<string, { orig: string; rewritten: string; plan: RewritePlan }>();

  it.each(buildable)('$name: same files, sizes, modes and config after the rewrite', async (f) => {
    const e = engine!;
    const origDir = mkdtempSync(path.join(os.tmpdir(), `mlship-opt-orig-${f.name}-`));
    const newDir = mkdtempSync(path.join(os.tmpdir(), `mlship-opt-new-${f.name}-`));
    tmp.push(origDir, newDir);
    cpSync(f.context, origDir, { recursive: true });
    cpSync(f.context, newDir, { recursive: true });
    const plan = await planRewrite(
      {
        dockerfile: 'Dockerfile',
        dockerfileAbs: path.join(newDir, 'Dockerfile'),
        contextDir: newDir,
        cwd: newDir,
        ...(f.largeFileBytes ? { largeFileBytes: f.largeFileBytes } : {}),
        ...(f.slimBase ? { slimBase: true } : {}),
      },
      fsDeps,
    );
    expect(plan.changed).toBe(true);
    writeFileSync(path.join(newDir, 'Dockerfile'), plan.dockerfile);
    if (plan.dockerignore !== undefined) writeFileSync(path.join(newDir, '.dockerignore'), plan.dockerignore);

    const orig = `mlship-test-optimize/${f.name}:orig-${RUN}`;
    const rewritten = `mlship-test-optimize/${f.name}:rewritten-${RUN}`;
    images.push(orig, rewritten);
    await e.build({ context: origDir, tags: [orig], labels: LABELS });
    await e.build({ context: newDir, tags: [rewritten], labels: LABELS });
    // Builder stages stay behind as untagged images; tagging them (from the cache) lets afterAll remove them.
    for (const [dir, text, kind] of [
      [origDir, readFileSync(path.join(f.context, 'Dockerfile'), 'utf8'), 'orig'],
      [newDir, plan.dockerfile, 'rewritten'],
    ] as const) {
      const stages = parseDockerfile(text).stages;
      for (const st of stages.slice(0, -1).filter((x) => x.name)) {
        const tag = `mlship-test-optimize/${f.name}-${st.name}:${kind}-${RUN}`;
        images.push(tag);
        await e.build({ context: dir, tags: [tag], target: st.name!, labels: LABELS });
      }
    }
    built.set(f.name, { orig, rewritten, plan });

    const [a, b] = [await e.inspectImage(orig), await e.inspectImage(rewritten)];
    const config = (i: typeof a) => ({
      cmd: i.cmd,
      entrypoint: i.entrypoint,
      env: i.env,
      workdir: i.workdir,
      user: i.user,
      exposedPorts: [...i.exposedPorts].sort(),
    });
    expect(config(b)).toEqual(config(a));

    const excluded = plan.excluded.map((x) => x.dest);
    const fsA = await filesystem(e, orig);
    const fsB = await filesystem(e, rewritten);
    if (f.slimBase || f.cudaSplit) {
      // The base legitimately differs: compare what each Dockerfile adds to (and removes from) its own base.
      const [from, to, rule, built] = f.slimBase
        ? [
            FULL_IMAGE,
            SLIM_IMAGE,
            'base-not-slim',
            [/\/markupsafe\/_speedups\.[^/]*\.so$/, /^\/app\/libhello\.so$/],
          ]
        : [
            DEVEL_IMAGE,
            RUNTIME_IMAGE,
            'cuda-devel-runtime',
            [/\/fastsum\.cpython-[^/]*\.so$/, /^\/app\/ext\/build$/],
          ];
      expect(plan.changes.map((c) => c.rule)).toContain(rule);
      const [full, slim] = [await baseFilesystem(e, from), await baseFilesystem(e, to)];
      expect(full.has('/usr/bin/gcc') && fsA.has('/usr/bin/gcc')).toBe(true);
      expect(fsB.has('/usr/bin/gcc'), 'gcc in the rebased image').toBe(false);
      const [addedA, addedB] = [addedTo(fsA, full), addedTo(fsB, slim)];
      const [ca, cb] = [comparable(addedA, excluded), comparable(addedB, excluded)];
      expect(differences(ca, cb)).toEqual({ onlyA: [], onlyB: [], changed: [] });
      expect(removedFrom(fsB, slim)).toEqual(removedFrom(fsA, full));
      // What was built from source in the builder arrived (C extensions, compiled files, the
      // build directory pip leaves in a local project), as in the original.
      for (const re of built)
        expect(
          [...ca.keys()].some((p) => re.test(p)),
          String(re),
        ).toBe(true);
      const q = ['dpkg-query', '-W', PACKAGE_FORMAT];
      const [pa, pb] = [await lines(e, orig, q), await lines(e, rewritten, q)];
      const [pf, ps] = [new Set(await lines(e, from, q)), new Set(await lines(e, to, q))];
      expect(pb.filter((p) => !ps.has(p))).toEqual(pa.filter((p) => !pf.has(p)));
      // Both run the same, and nothing in the rebased image links against a library it lacks.
      const out = async (image: string) => (await lines(e, image, ['python', '/app/main.py'])).join('\n');
      expect(await out(rewritten)).toBe(await out(orig));
      const ldd = await lines(e, rewritten, ['sh', '-c', `${LDD_CHECK} || true`]);
      expect(ldd).toEqual([]);
      expect(ca.size).toBeGreaterThan(5);
      return;
    }
    if (plan.changes.some((c) => c.rule === 'build-tools-in-final')) {
      // The one intended difference: the toolchain packages are gone, and nothing else.
      const removed = await removedPackageFiles(e, orig, rewritten);
      expect(removed.packages).toEqual(expect.arrayContaining(['gcc']));
      // Exactly the packages' paths that are gone (a directory they share with others stays compared),
      // plus dpkg's and apt's own records of them and the alternatives links they registered.
      const gone = new Set(removed.paths.filter((p) => !fsB.has(p)));
      for (const [p, x] of fsA) if (x.link.startsWith('/etc/alternatives/') && !fsB.has(p)) gone.add(p);
      for (const p of gone) fsA.delete(p);
      excluded.push('/var/lib/dpkg', '/var/lib/apt/extended_states', '/etc/alternatives', '/etc/ld.so.cache');
    } else {
      expect(await lines(e, rewritten, ['dpkg-query', '-W', PACKAGE_FORMAT])).toEqual(
        await lines(e, orig, ['dpkg-query', '-W', PACKAGE_FORMAT]),
      );
    }
    // What the rewrite excluded was really in the original image, and is really gone.
    for (const x of plan.excluded.filter((x) => x.why === 'weights' || x.bytes > 0)) {
      expect(fsA.has(x.dest), `${x.dest} in the original`).toBe(true);
      expect(fsB.has(x.dest), `${x.dest} in the rewrite`).toBe(false);
    }
    const ca = comparable(fsA, excluded);
    const cb = comparable(fsB, excluded);
    expect(differences(ca, cb)).toEqual({ onlyA: [], onlyB: [], changed: [] });
    expect(ca.size).toBeGreaterThan(1000);
  });

  it('python-missing: the original build stops at pip, the rewrite installs Python and builds an image that runs', async () => {
    const e = engine!;
    const f = fixtures().find((x) => x.name === 'python-missing')!;
    expect(f.failsBefore).toBe(true);
    const [origDir, newDir] = ['orig', 'new'].map((k) => {
      const d = mkdtempSync(path.join(os.tmpdir(), `mlship-opt-${k}-${f.name}-`));
      tmp.push(d);
      cpSync(f.context, d, { recursive: true });
      return d;
    }) as [string, string];
    const orig = `mlship-test-optimize/${f.name}:orig-${RUN}`;
    const rewritten = `mlship-test-optimize/${f.name}:rewritten-${RUN}`;
    images.push(orig, rewritten);
    const failure = await e.build({ context: origDir, tags: [orig], labels: LABELS }).then(
      () => undefined,
      (err: Error & { details?: string[] }) => `${err.message}\n${(err.details ?? []).join('\n')}`,
    );
    expect(failure, 'the original must not build').toMatch(/pip: (command )?not found/);

    const plan = await planRewrite(
      {
        dockerfile: 'Dockerfile',
        dockerfileAbs: path.join(newDir, 'Dockerfile'),
        contextDir: newDir,
        cwd: newDir,
      },
      fsDeps,
    );
    expect(plan.changes.map((c) => c.rule)).toContain('python-missing');
    writeFileSync(path.join(newDir, 'Dockerfile'), plan.dockerfile);
    await e.build({ context: newDir, tags: [rewritten], labels: LABELS });
    expect((await lines(e, rewritten, ['python', '/app/main.py'])).join('\n')).toMatch(
      /^python 3\.\d+ six 1\.16\.0$/,
    );
    // The config keeps what the original said (WORKDIR, USER, CMD); PATH now starts with the venv.
    const cfg = await e.inspectImage(rewritten);
    expect([cfg.workdir, cfg.user, cfg.cmd]).toEqual(['/app', '65534', ['python', 'main.py']]);
    expect(cfg.env.find((v) => v.startsWith('PATH='))).toMatch(/^PATH=\/opt\/venv\/bin:/);
    // And the lint no longer finds Python missing.
    const again = lintDockerfile(parseDockerfile(plan.dockerfile), {}).findings.map((x) => x.rule);
    expect(again).not.toContain('python-missing');
  });

  it('--layers measures the fixture images: wasted bytes with their cause, and the comparison', async () => {
    const apt = built.get('apt-tools');
    expect(apt, 'apt-tools was built above').toBeDefined();
    // Every wasted file, not only the largest, to find the small one this fixture deletes.
    const report = await measureImage(apt!.orig, engine!, 100_000);
    // `RUN rm -rf /srv/app/tmp` deletes what `COPY . .` added: wasted, and attributed to that layer.
    const scratch = report.wasted.find((w) => w.path === 'srv/app/tmp/scratch.txt');
    expect(scratch).toMatchObject({ bytes: 8, how: 'deleted' });
    expect(report.layers[scratch!.wastedBy]!.createdBy).toContain('rm -rf /srv/app/tmp');
    expect(report.layers[scratch!.addedIn]!.createdBy).toMatch(/COPY/);
    const sum = report.layers.reduce((n, l) => n + l.sizeBytes, 0);
    expect(report.totalBytes).toBe(sum);

    const cli = spawnSync(
      process.execPath,
      [
        path.resolve('bin/mlship.js'),
        '--json',
        'optimize',
        '--layers',
        apt!.rewritten,
        '--compare',
        apt!.orig,
      ],
      { encoding: 'utf8', env: { ...process.env, CI: 'true' }, timeout: 120_000 },
    );
    expect(cli.status, cli.stderr).toBe(0);
    const c = JSON.parse(cli.stdout) as {
      before: { image: string; totalBytes: number };
      after: { totalBytes: number };
      sharedLayers: number;
    };
    expect(c.before.image).toBe(apt!.orig);
    // The rewrite drops the apt lists from the image: it is smaller, and shares the base layers.
    expect(c.after.totalBytes).toBeLessThan(c.before.totalBytes);
    expect(c.sharedLayers).toBeGreaterThanOrEqual(1);
  });

  it('left no containers behind', async () => {
    expect((await engine!.listByLabel('dev.mlship.run', RUN)).length).toBe(0);
  });
});
