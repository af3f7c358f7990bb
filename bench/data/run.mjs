#!/usr/bin/env node
// bench/data: `mlship data push` against the bare tools doing the same copy, in one run.
// Database: a PostgreSQL 15 database of --db-mb MB (default 1024) in a container, pushed
// (snapshot verify lines alongside pg_dump -Fc, its output staged in moto's S3 as parts while
// it is written, fetched and restored part by part alongside by the restore task's containers
// on this engine, verified) vs
// `pg_dump -Fc | pg_restore` between the same containers, at pg_dump's default compression and
// at the push's (-Z 1: the bare tools with the same setting), --rounds times, the order reversed
// every other round. Files: --objects objects (default 10,000; 1-64 KiB) of a local moto
// object store vs a plain copy loop (GET then PUT, 16 at a time, as data push). Then the
// goal "killed half-way": a push of both into fresh targets is killed with SIGKILL at half
// its measured time (KILL_AT_SECONDS overrides) and run again; reported: mismatches,
// duplicated rows, objects PUT twice (counted by a proxy in front of the target store),
// staged dumps and unfinished uploads left in the bucket.
// Usage: npm run build && node bench/data/run.mjs [--db-mb 1024] [--objects 10000] [--rounds 1]
// [--baseline <dist dir>] (--objects 0: the database only, also in the killed run; --baseline:
// a build of an earlier version, e.g. main's dist copied inside this checkout, pushed too in
// every round, into a target of its own). Each database copy also reports its CPU-seconds
// per process (bench/data/cpu-sampler.mjs): wall time swings with the load, CPU much less.
// Needs .venv (moto_server), the mlship-local postgres, moto and aws-cli images.
import { execFileSync, execSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpuCases, startCpuSampler } from './cpu.mjs';
import { CREDS, pushDb, pushObjects } from './lib.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const dbMb = arg('--db-mb', 1024);
const baselineAt = process.argv.indexOf('--baseline');
const baseline =
  baselineAt < 0 ? undefined : `${new URL(`file://${path.resolve(process.argv[baselineAt + 1])}`).href}/`;
const objects = arg('--objects', 10000);
const run = `bd${Date.now().toString(36)}`;
const net = `mlship-${run}`;
const sh = (cmd) =>
  execSync(cmd, { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1e8 })
    .toString()
    .trim();
const docker = (...a) =>
  execFileSync('docker', a, { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1e8 })
    .toString()
    .trim();
const psql = (c, sql, d = 'app') =>
  docker('exec', c, 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-U', 'app', '-d', d, '-c', sql);
const free = () =>
  new Promise((r) => {
    const s = http.createServer().listen(0, () => {
      const p = s.address().port;
      s.close(() => r(p));
    });
  });
const secs = (t0) => (performance.now() - t0) / 1000;
const cleanup = [];
process.on('exit', () => {
  for (const f of cleanup.reverse())
    try {
      f();
    } catch {}
});

// moto (the cloud's S3), behind a proxy counting complete PUTs per key.
const motoPort = await free();
const moto = spawn(path.resolve('.venv/bin/moto_server'), ['-H', '0.0.0.0', '-p', String(motoPort)], {
  stdio: 'ignore',
});
cleanup.push(() => moto.kill());
const puts = new Map();
const proxyPort = await free();
http
  .createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'PUT' && !url.searchParams.has('partNumber'))
      puts.set(url.pathname, (puts.get(url.pathname) ?? 0) + 1);
    const up = http.request(
      { host: '127.0.0.1', port: motoPort, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      },
    );
    req.pipe(up);
  })
  .listen(proxyPort, '0.0.0.0');
const endpoint = `http://127.0.0.1:${proxyPort}`;
for (let i = 0; i < 100; i++) {
  try {
    if ((await fetch(`http://127.0.0.1:${motoPort}/moto-api/`)).ok) break;
  } catch {}
  await new Promise((r) => setTimeout(r, 200));
}
const { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } = await import(
  '@aws-sdk/client-s3'
);
const s3 = (ep) =>
  new S3Client({
    region: 'us-east-1',
    endpoint: ep,
    forcePathStyle: true,
    credentials: { accessKeyId: CREDS.AWS_ACCESS_KEY_ID, secretAccessKey: CREDS.AWS_SECRET_ACCESS_KEY },
  });
const cloud = s3(endpoint);
for (const b of ['push', 'base', 'resume', 'prev'])
  await cloud.send(new CreateBucketCommand({ Bucket: `${run}-${b}` }));

docker('network', 'create', '--label', 'dev.mlship.managed=true', net);
cleanup.push(() => execFileSync('docker', ['network', 'rm', net], { stdio: 'ignore' }));
// Autovacuum off in every container: a target's background vacuum of a freshly restored 1 GB
// (up to a minute after it, autovacuum_naptime) would otherwise run during whatever is measured
// next, on the same 2 cores; the source is vacuumed once, before anything is measured.
const pg = (name, labels = []) => {
  docker(
    'run',
    '-d',
    '--name',
    name,
    '--network',
    net,
    '--label',
    'dev.mlship.managed=true',
    ...labels,
    '-e',
    'POSTGRES_USER=app',
    '-e',
    'POSTGRES_DB=app',
    '-e',
    'POSTGRES_PASSWORD=pw',
    'mlship-local/postgres:15',
  );
  cleanup.push(() => execFileSync('docker', ['rm', '-f', '-v', name], { stdio: 'ignore' }));
};
const stack = `bench-${run}`;
pg(`${run}-src`, [
  '--label',
  `com.docker.compose.project=${stack}`,
  '--label',
  'com.docker.compose.service=database',
]);
const targets = baseline ? ['base', 'base1', 'push', 'prev'] : ['base', 'base1', 'push'];
for (const t of targets) pg(`${run}-${t}`);
/** Waits until the container's server answers, then turns its autovacuum off (see pg). */
const ready = (name) => {
  for (let i = 0; ; i++) {
    try {
      psql(name, 'SELECT 1');
      break;
    } catch {
      if (i > 120) throw new Error('postgres did not start');
      execSync('sleep 0.5');
    }
  }
  psql(name, 'ALTER SYSTEM SET autovacuum = off', 'postgres');
  psql(name, 'SELECT pg_reload_conf()', 'postgres');
};
for (const c of ['src', ...targets]) ready(`${run}-${c}`);
// ~dbMb of rows: three tables, jsonb and bytea among them.
const rows = Math.round((dbMb * 1024 * 1024) / 260);
const t0 = performance.now();
psql(
  `${run}-src`,
  `CREATE TABLE items (id bigint PRIMARY KEY, name text, body jsonb, blob bytea);
INSERT INTO items SELECT i, md5(i::text), jsonb_build_object('i', i, 'tags', jsonb_build_array(i % 7, md5((i*3)::text))), decode(md5(i::text) || md5((i+1)::text), 'hex') FROM generate_series(1, ${rows}) i;
CREATE TABLE events (id bigint, kind text, at timestamptz); INSERT INTO events SELECT i, 'k' || i % 9, '2024-01-01'::timestamptz + i * interval '1 s' FROM generate_series(1, ${Math.round(rows / 4)}) i;
CREATE INDEX ON events (kind);`,
);
psql(`${run}-src`, 'VACUUM (FREEZE, ANALYZE)');
const size = Number(psql(`${run}-src`, "SELECT pg_database_size('app')"));
console.error(
  `database: ${(size / 1024 ** 2).toFixed(0)} MB on disk (${rows} + ${Math.round(rows / 4)} rows), made in ${secs(t0).toFixed(0)} s`,
);

// Database: bare tools and data push, in --rounds rounds ordered ABBA (bare, push; push,
// bare; ...) so that a load changing during the run falls on both; the targets are emptied
// between rounds.
const rounds = arg('--rounds', 1);
const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-data-'));
const emptyDb = (c) => {
  psql(c, 'DROP DATABASE app WITH (FORCE)', 'postgres');
  psql(c, 'CREATE DATABASE app OWNER app', 'postgres');
};
// The bare pipe at pg_dump's default compression (6), or at `level` into a target of its own.
const bare = (level) => {
  const t = performance.now();
  sh(
    `docker exec ${run}-src pg_dump -Fc${level === undefined ? '' : ` -Z ${level}`} -U app -d app | docker exec -i ${run}-${level === undefined ? 'base' : `base${level}`} pg_restore --no-owner --no-acl -U app -d app`,
  );
  return secs(t);
};
const push = async (which) => {
  const t = performance.now();
  const target = which === 'push' ? 'push' : 'prev';
  const r = await pushDb(
    {
      stack,
      endpoint,
      network: net,
      target: `${run}-${target}`,
      bucket: `${run}-${target}`,
      cacheDir: path.join(cacheDir, target),
    },
    which === 'push' ? undefined : baseline,
  );
  return { seconds: secs(t), r };
};
const cpu = startCpuSampler({ run, stack, moto: moto.pid });
// The machine's CPU ticks (/proc/stat): steal is the time the VM's host gave its other guests,
// which stretches wall time whatever the load average says.
const procStat = () => readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1, 9).map(Number);
const stealPct = (a, b) => {
  const d = b.map((v, i) => v - a[i]);
  return (
    (100 * d[7]) /
    Math.max(
      1,
      d.reduce((x, y) => x + y, 0),
    )
  );
};
const dbRounds = [];
const label = {
  bare: 'pg_dump | pg_restore',
  bare1: 'pg_dump -Z 1 | pg_restore',
  push: 'data push',
  prev: 'data push (baseline)',
};
for (let i = 0; i < rounds; i++) {
  if (i > 0) for (const c of targets) emptyDb(`${run}-${c}`);
  const load = os.loadavg()[0];
  const round = { load1: load, cpu: {}, steal: {} };
  const order = baseline ? ['bare', 'bare1', 'push', 'prev'] : ['bare', 'bare1', 'push'];
  for (const which of i % 2 ? order.reverse() : order) {
    const before = await cpu.snap();
    const stat = procStat();
    if (which === 'bare') round.bare = bare();
    else if (which === 'bare1') round.bare1 = bare(1);
    else round[which] = await push(which);
    round.cpu[which] = cpuCases(before, await cpu.snap());
    round.steal[which] = stealPct(stat, procStat());
  }
  const row = (which) => ({
    seconds: round[which].seconds,
    ratio: round[which].seconds / round.bare,
    ratioZ1: round[which].seconds / round.bare1,
    parts: round[which].r.seconds,
    mismatches: round[which].r.mismatches.length,
    cpuSeconds: round.cpu[which].total,
    cpuRatio: round.cpu[which].total / round.cpu.bare.total,
  });
  dbRounds.push({
    load1: load,
    loadAfter: os.loadavg()[0],
    bareSeconds: round.bare,
    bareCpuSeconds: round.cpu.bare.total,
    bareZ1Seconds: round.bare1,
    bareZ1CpuSeconds: round.cpu.bare1.total,
    push: row('push'),
    ...(baseline ? { baseline: row('prev') } : {}),
    cpu: round.cpu,
    stealPct: round.steal,
  });
  // Of the rest: until the task had the whole dump, and its verify lines (when it said).
  const steps = (s) =>
    s.fetch === undefined
      ? ''
      : ` (of which: whole dump fetched ${s.fetch.toFixed(1)}, verify ${s.verify?.toFixed(1)})`;
  const line = (which) => {
    const { r, seconds } = round[which];
    return `${label[which]} ${seconds.toFixed(1)} s (dump with the upload and the restore alongside ${r.seconds.dump.toFixed(1)}, rest of the upload ${r.seconds.upload.toFixed(1)}, rest of the restore + verify ${r.seconds.restore.toFixed(1)}${steps(r.seconds)}), ratio ${(seconds / round.bare).toFixed(2)} (to -Z 1: ${(seconds / round.bare1).toFixed(2)}), CPU ${round.cpu[which].total.toFixed(1)} s (${(round.cpu[which].total / round.cpu.bare.total).toFixed(2)}x), mismatches ${r.mismatches.length}`;
  };
  console.error(
    `database round ${i + 1} (load ${load.toFixed(1)} → ${os.loadavg()[0].toFixed(1)}): pg_dump | pg_restore ${round.bare.toFixed(1)} s, CPU ${round.cpu.bare.total.toFixed(1)} s; with -Z 1 ${round.bare1.toFixed(1)} s, CPU ${round.cpu.bare1.total.toFixed(1)} s; ${line('push')}${baseline ? `; ${line('prev')}` : ''}`,
  );
  for (const which of order)
    console.error(
      `  CPU-seconds, ${label[which]} (steal ${round.steal[which].toFixed(1)}%): ${round.cpu[which].lines.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`,
    );
}
cpu.stop();
const sum = (f) => dbRounds.reduce((n, x) => n + f(x), 0);
const bareDb = sum((x) => x.bareSeconds);
const bareCpu = sum((x) => x.bareCpuSeconds);
const bareZ1 = sum((x) => x.bareZ1Seconds);
const pushDbSecs = sum((x) => x.push.seconds) / rounds;
const totals = (k) => ({
  seconds: sum((x) => x[k].seconds),
  ratio: sum((x) => x[k].seconds) / bareDb,
  ratioZ1: sum((x) => x[k].seconds) / bareZ1,
  cpuSeconds: sum((x) => x[k].cpuSeconds),
  cpuRatio: sum((x) => x[k].cpuSeconds) / bareCpu,
  mismatches: sum((x) => x[k].mismatches),
});
console.error(
  `database, ${rounds} round(s): pg_dump | pg_restore ${bareDb.toFixed(1)} s, CPU ${bareCpu.toFixed(1)} s; with -Z 1 ${bareZ1.toFixed(1)} s; ${['push', ...(baseline ? ['baseline'] : [])].map((k) => `${k === 'push' ? 'data push' : 'data push (baseline)'} ${totals(k).seconds.toFixed(1)} s (${totals(k).ratio.toFixed(2)}x; to -Z 1: ${totals(k).ratioZ1.toFixed(2)}x), CPU ${totals(k).cpuSeconds.toFixed(1)} s (${totals(k).cpuRatio.toFixed(2)}x)`).join('; ')}`,
);
let t;

// Files: a local moto object store with `objects` objects.
const storePort = await free();
docker(
  'run',
  '-d',
  '--name',
  `${run}-store`,
  '--label',
  'dev.mlship.managed=true',
  '-p',
  `127.0.0.1:${storePort}:9000`,
  'mlship-local/moto:5.2',
);
cleanup.push(() => execFileSync('docker', ['rm', '-f', `${run}-store`], { stdio: 'ignore' }));
const storeEp = `http://127.0.0.1:${storePort}`;
const store = new S3Client({
  region: 'us-east-1',
  endpoint: storeEp,
  forcePathStyle: true,
  credentials: { accessKeyId: 'mlship', secretAccessKey: 'local' },
});
for (let i = 0; ; i++) {
  try {
    await store.send(new CreateBucketCommand({ Bucket: 'uploads' }));
    break;
  } catch {
    if (i > 120) throw new Error('store did not start');
    await new Promise((r) => setTimeout(r, 500));
  }
}
let bytes = 0;
const keys = Array.from({ length: objects }, (_, i) => `u/${i % 100}/o${i}.bin`);
const pool = async (items, n, fn) => {
  const q = [...items];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let x = q.shift(); x !== undefined; x = q.shift()) await fn(x);
    }),
  );
};
await pool(keys, 16, async (k) => {
  const len = 1024 + ((k.length * 7919 + bytes) % (63 * 1024));
  bytes += len;
  await store.send(new PutObjectCommand({ Bucket: 'uploads', Key: k, Body: Buffer.alloc(len, k.length) }));
});
t = performance.now();
await pool(keys, 16, async (k) => {
  const r = await store.send(new GetObjectCommand({ Bucket: 'uploads', Key: k }));
  const body = Buffer.from(await r.Body.transformToByteArray());
  await cloud.send(new PutObjectCommand({ Bucket: `${run}-base`, Key: k, Body: body }));
});
const bareFiles = secs(t);
t = performance.now();
const files = await pushObjects({
  stack,
  endpoint,
  source: storeEp,
  sourceBucket: 'uploads',
  bucket: `${run}-push`,
  cacheDir,
});
const pushFilesSecs = secs(t);
console.error(
  `files: ${objects} objects, ${(bytes / 1024 ** 2).toFixed(0)} MiB: copy loop ${bareFiles.toFixed(1)} s; data push ${pushFilesSecs.toFixed(1)} s; mismatches ${files.mismatches.length}`,
);

// Killed half-way, then run again.
pg(`${run}-resume`);
ready(`${run}-resume`);
const resumeCache = mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-resume-'));
const opts = JSON.stringify({
  stack,
  endpoint,
  network: net,
  target: `${run}-resume`,
  bucket: `${run}-resume`,
  cacheDir: resumeCache,
  source: storeEp,
  sourceBucket: 'uploads',
});
const child = (killAfter) =>
  new Promise((resolve) => {
    const c = spawn(process.execPath, [path.resolve('bench/data/push-child.mjs'), opts], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    c.stdout.on('data', (d) => {
      out += d;
    });
    const timer = killAfter ? setTimeout(() => c.kill('SIGKILL'), killAfter * 1000) : undefined;
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    });
  });
puts.clear();
const half = (pushDbSecs + pushFilesSecs) / 2;
const killAt = Number(process.env.KILL_AT_SECONDS) || half;
const killed = await child(killAt);
console.error(`killed after ${killAt.toFixed(1)} s (${killed.signal ?? `exit ${killed.code}`})`);
const again = await child(0);
const result = JSON.parse(again.out);
const twice = [...puts].filter(([p, n]) => p.startsWith(`/${run}-resume/u/`) && n > 1).length;
// What the killed run left in the bucket: nothing (the staged dump is removed once verified,
// an upload killed half-way is aborted by the next run).
const { ListObjectsV2Command, ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3');
const leftObjects =
  (await cloud.send(new ListObjectsV2Command({ Bucket: `${run}-resume`, Prefix: 'mlship/data/' })))
    .KeyCount ?? 0;
const leftUploads =
  (await cloud.send(new ListMultipartUploadsCommand({ Bucket: `${run}-resume`, Prefix: 'mlship/data/' })))
    .Uploads?.length ?? 0;
const dupRows = Number(psql(`${run}-resume`, 'SELECT count(*) - count(DISTINCT id) FROM items'));
const sameRows =
  psql(`${run}-resume`, 'SELECT count(*) FROM items') === psql(`${run}-src`, 'SELECT count(*) FROM items');
console.error(
  `resumed: mismatches ${result.db.mismatches.length + result.files.mismatches.length}, duplicated rows ${dupRows} (same count: ${sameRows}), objects PUT twice ${twice}, db ${result.db.outcome} (dump reused: ${result.db.dumpReused}), staged objects left ${leftObjects}, unfinished uploads left ${leftUploads}, files copied ${result.files.copied} + skipped ${result.files.skipped}`,
);

console.log(
  JSON.stringify(
    {
      database: {
        mb: Math.round(size / 1024 ** 2),
        rounds: dbRounds,
        bareSeconds: bareDb,
        bareCpuSeconds: bareCpu,
        bareZ1Seconds: bareZ1,
        push: totals('push'),
        ...(baseline ? { baseline: totals('baseline') } : {}),
      },
      files: {
        objects,
        mib: Math.round(bytes / 1024 ** 2),
        bareSeconds: bareFiles,
        pushSeconds: pushFilesSecs,
        ratio: objects ? pushFilesSecs / bareFiles : null,
        mismatches: files.mismatches.length,
      },
      killedHalfWay: {
        killedAtSeconds: killAt,
        mismatches: result.db.mismatches.length + result.files.mismatches.length,
        duplicatedRows: dupRows,
        sameRowCount: sameRows,
        objectsCopiedTwice: twice,
        stagedObjectsLeft: leftObjects,
        unfinishedUploadsLeft: leftUploads,
        second: result,
      },
    },
    null,
    2,
  ),
);
process.exit(0);
