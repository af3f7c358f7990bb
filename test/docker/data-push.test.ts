// `mlship data push` for real, on this engine and moto: a PostgreSQL 15 database with
// 120k rows in several tables (jsonb, bytea, citext and pgcrypto) is dumped from its running
// container (one snapshot for the dump and the verify lines), staged in moto's S3, and
// restored by the restore task's own containers (the AWS CLI fetch, then the postgres
// restore script) run on this engine against a second PostgreSQL container: the target
// reached the way the restore task reaches it, since moto never runs a task. Then the files:
// every object of a local moto object store (the mlship-local/moto image) to moto's S3.
// About 90 s; one source and one target database are shared by every test.

import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployApis } from '../../src/adapters/aws/deploy-apis.js';
import { createObjectStoreApi } from '../../src/adapters/aws/s3.js';
import { PG_CHECK_SQL, PG_SETTINGS, type RowHash, rowHashSetting } from '../../src/core/data/checks.js';
import { localRestoreRunner } from '../../src/core/data/local-restore.js';
import { pushDatabase } from '../../src/core/data/push-database.js';
import { pushFiles } from '../../src/core/data/push-files.js';
import { dumpPrefix } from '../../src/core/data/stage-dump.js';
import type { DbState, S3Api } from '../../src/core/deploy/aws-apis.js';
import type { ManagedDatabase } from '../../src/core/deploy/database.js';
import { MlshipError } from '../../src/io/errors.js';
import { requireEngine, requireImage } from '../helpers/docker.js';
import { type Moto, startMoto } from '../helpers/moto.js';
import { freePort } from '../helpers/net.js';

const engine = await requireEngine();
const PG = 'mlship-local/postgres:15';
const AWS_CLI = 'mlship-local/aws-cli:1';
const MOTO_IMAGE = 'mlship-local/moto:5.2';
const RUN = `dp${process.pid}`;
const STACK = `data-${RUN}`;
const NETWORK = `mlship-${RUN}`;
const SOURCE = `${RUN}-source`;
const TARGET = `${RUN}-target`;
const STORE = `${RUN}-store`;
const BUCKET = `mlship-${STACK}-us-east-1-123456789012`;
let moto: Moto | undefined;
let cacheDir: string;

const db: ManagedDatabase = {
  service: 'database',
  engine: 'postgres',
  image: PG,
  localMajor: 15,
  awsEngine: 'aurora-postgresql',
  settings: {
    kind: 'aurora',
    minCapacity: 0,
    maxCapacity: 2,
    secondsUntilAutoPause: 300,
    instanceClass: 'db.t4g.micro',
    backupRetentionDays: 7,
  },
  identifier: `mlship-${STACK}-db`,
  subnetGroup: 'x',
  securityGroup: 'x',
  database: 'app',
  username: 'app',
  port: 5432,
  secretName: `${STACK}/database`,
  urls: {},
};

const docker = (...args: string[]) =>
  execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
/** psql in a container, each statement its own -c in one session (each one's result printed). */
const psqlIn = (container: string, database: string, ...sql: string[]) =>
  docker(
    'exec',
    container,
    'psql',
    '-X',
    '-At',
    '-v',
    'ON_ERROR_STOP=1',
    '-U',
    'app',
    '-d',
    database,
    ...sql.flatMap((q) => ['-c', q]),
  ).trim();
const psql = (container: string, sql: string) => psqlIn(container, 'app', sql);

async function waitReady(container: string) {
  for (let i = 0; i < 60; i++) {
    try {
      psql(container, 'SELECT 1');
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw new Error(`${container} did not start`);
}

/** Several tables, 120k rows: jsonb, bytea (pgcrypto digests), citext, NULLs, timestamps. */
const FIXTURE = `
CREATE EXTENSION citext; CREATE EXTENSION pgcrypto;
CREATE TABLE users (id bigint PRIMARY KEY, email citext UNIQUE NOT NULL, profile jsonb, created timestamptz NOT NULL);
CREATE TABLE photos (id bigint PRIMARY KEY, user_id bigint REFERENCES users(id), thumb bytea, meta jsonb);
CREATE TABLE events (id bigserial PRIMARY KEY, kind text, payload jsonb, score double precision, at timestamp);
INSERT INTO users SELECT i, 'User' || i || '@Example.com', jsonb_build_object('name', 'n' || i, 'tags', jsonb_build_array(i % 7, 'x')), timestamptz '2024-01-01 00:00+00' + i * interval '1 minute' FROM generate_series(1, 40000) i;
INSERT INTO photos SELECT i, 1 + i % 40000, digest('photo' || i, 'sha256'), CASE WHEN i % 5 = 0 THEN NULL ELSE jsonb_build_object('w', i % 1000, 'h', 'ü' || i) END FROM generate_series(1, 40000) i;
INSERT INTO events (kind, payload, score, at) SELECT 'k' || i % 13, jsonb_build_object('i', i), i / 7.0, timestamp '2024-06-01' + i * interval '1 second' FROM generate_series(1, 40000) i;
`;

let s3: ReturnType<typeof createDeployApis>;
const cloudState = (version: string): DbState => ({
  identifier: db.identifier,
  status: 'available',
  engineVersion: version,
  deletionProtection: true,
  managed: true,
});

/** The first push's dump, at the default compression level (1). */
let levelOneBytes = 0;

function deps(version = '15.4') {
  const runner = localRestoreRunner(engine!, {
    stack: STACK,
    region: 'us-east-1',
    accountId: '123456789012',
    db,
    restoreImage: PG,
    fetchImage: AWS_CLI,
    network: NETWORK,
    // The database secret's keys, as ECS hands them to the restore container.
    secretValue: async (ref) =>
      ({ host: TARGET, port: '5432', username: 'app', password: 'target-pw', dbname: 'app' })[
        ref.split(':').at(-3)!
      ]!,
    awsEnvironment: {
      ...moto!.env,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: moto!.endpoint.replace('127.0.0.1', 'host.docker.internal'),
    },
  });
  return {
    engine: engine!,
    aws: { rds: { describe: async () => cloudState(version) } as never, s3: s3.s3 },
    restore: runner,
    log: () => undefined,
    cacheDir,
  };
}

beforeAll(async () => {
  if (!engine) return;
  for (const image of [PG, AWS_CLI, MOTO_IMAGE]) await requireImage(engine, image);
  moto = await startMoto({ host: '0.0.0.0' });
  Object.assign(process.env, moto!.env);
  cacheDir = mkdtempSync(path.join(os.tmpdir(), 'mlship-data-'));
  s3 = createDeployApis({ region: 'us-east-1', endpointUrl: moto!.endpoint });
  await s3.s3.ensureBucket({ name: BUCKET, region: 'us-east-1', tags: {}, versioning: false });
  docker('network', 'create', '--label', 'dev.mlship.managed=true', NETWORK);
  const pg = (name: string, labels: string[], pw: string) =>
    docker(
      'run',
      '-d',
      '--name',
      name,
      '--network',
      NETWORK,
      '--label',
      'dev.mlship.managed=true',
      ...labels,
      '-e',
      'POSTGRES_USER=app',
      '-e',
      'POSTGRES_DB=app',
      '-e',
      `POSTGRES_PASSWORD=${pw}`,
      PG,
    );
  pg(
    SOURCE,
    ['--label', `com.docker.compose.project=${STACK}`, '--label', 'com.docker.compose.service=database'],
    'source-pw',
  );
  pg(TARGET, [], 'target-pw');
  await waitReady(SOURCE);
  await waitReady(TARGET);
  psql(SOURCE, FIXTURE);
}, 300_000);

afterAll(async () => {
  if (!engine) return;
  for (const c of [SOURCE, TARGET, STORE]) execFileSync('docker', ['rm', '-f', '-v', c], { stdio: 'ignore' });
  execFileSync('docker', ['network', 'rm', NETWORK], { stdio: 'ignore' });
  s3?.destroy();
  await moto?.stop();
});

const tableContent = (c: string) =>
  psql(
    c,
    "SELECT md5(string_agg(md5(t::text), '' ORDER BY t.id)) FROM (SELECT id, email, profile FROM users) t",
  ) +
  psql(
    c,
    "SELECT md5(string_agg(encode(thumb, 'hex') || coalesce(meta::text, '-'), ',' ORDER BY id)) FROM photos",
  );

/** moto's S3 API that fails at the manifest, as a push killed right before it. */
const dyingAtManifest = () =>
  new Proxy(s3.s3, {
    get: (target, name) =>
      name === 'putObject'
        ? (spec: Parameters<S3Api['putObject']>[0]) =>
            spec.key.endsWith('/manifest') ? Promise.reject(new Error('killed')) : target.putObject(spec)
        : Reflect.get(target, name),
  });

describe.runIf(engine)('data push: database (PostgreSQL 15 → PostgreSQL 15 through moto S3)', () => {
  it('restores every table into the empty target, verified on both sides; the staged dump is removed', async () => {
    const r = await pushDatabase(deps(), { stack: STACK, bucket: BUCKET, db, replace: false });
    levelOneBytes = r.dumpBytes;
    expect(r.outcome).toBe('restored');
    expect(r.mismatches).toEqual([]);
    expect(r.tables.map((t) => [t.table, t.rows])).toEqual([
      ['public.events', 40000],
      ['public.photos', 40000],
      ['public.users', 40000],
    ]);
    expect(r.rows).toBe(120000);
    expect(r.localMajor).toBe('15');
    // The task's steps, from its own lines: the whole dump fetched, then verified.
    expect(r.seconds.fetch).toBeGreaterThanOrEqual(0);
    expect(r.seconds.verify).toBeGreaterThan(0);
    expect(r.seconds.fetch! + r.seconds.verify!).toBeLessThan(r.seconds.restore);
    // The target itself, read directly: same rows, same bytes, the extensions' types work.
    expect(tableContent(TARGET)).toBe(tableContent(SOURCE));
    expect(psql(TARGET, "SELECT count(*) FROM users WHERE email = 'user7@example.com'")).toBe('1');
    expect(psql(TARGET, "SELECT encode(digest('x', 'sha1'), 'hex')")).toHaveLength(40);
    expect(await s3.s3.listObjects(BUCKET, 'mlship/data/')).toEqual([]);
  });

  it('a second push finds the same data there: nothing restored, nothing duplicated', async () => {
    // Dumped again, uncompressed this time (data push --dump-compression 0).
    const r = await pushDatabase(deps(), {
      stack: STACK,
      bucket: BUCKET,
      db,
      replace: false,
      dumpCompression: 0,
    });
    expect(r.dumpReused).toBe(false);
    expect(r.dumpBytes).toBeGreaterThan(levelOneBytes * 1.5);
    expect(r.outcome).toBe('already');
    expect(r.mismatches).toEqual([]);
    expect(psql(TARGET, 'SELECT count(*) FROM events')).toBe('40000');
  });

  it('a target with other data is refused without --replace (exit 2, naming the table), replaced with it', async () => {
    psql(SOURCE, "INSERT INTO events (kind) VALUES ('new')");
    const refused = await pushDatabase(deps(), { stack: STACK, bucket: BUCKET, db, replace: false }).catch(
      (e) => e,
    );
    expect(refused).toBeInstanceOf(MlshipError);
    expect((refused as MlshipError).exitCode).toBe(2);
    expect((refused as MlshipError).hint).toMatch(/--replace/);
    expect((refused as MlshipError).details.join('\n')).toMatch(
      /table public\.events: 40001 rows locally, 40000 in the cloud/,
    );
    expect(psql(TARGET, 'SELECT count(*) FROM events')).toBe('40000');
    const r = await pushDatabase(deps(), { stack: STACK, bucket: BUCKET, db, replace: true });
    expect(r.outcome).toBe('restored');
    expect(r.mismatches).toEqual([]);
    expect(psql(TARGET, 'SELECT count(*) FROM events')).toBe('40001');
    expect(tableContent(TARGET)).toBe(tableContent(SOURCE));
  });

  it('a push killed during its dump: its parts, an unfinished upload and an older staged dump are dropped; writes meanwhile are in neither side', async () => {
    // What runs killed half-way through their dump leave: parts without a manifest, an upload
    // never completed (an earlier version's), and a staged dump of other data from a run before.
    await s3.s3.putObject({
      bucket: BUCKET,
      key: `${dumpPrefix(db)}killed-parts.pgdump/part-00001`,
      body: Buffer.from('part'),
      sha256: createHash('sha256').update('part').digest('hex'),
    });
    const sdk = new S3Client({ region: 'us-east-1', endpoint: moto!.endpoint, forcePathStyle: true });
    const { UploadId } = await sdk.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${dumpPrefix(db)}killed.pgdump` }),
    );
    await sdk.send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: `${dumpPrefix(db)}killed.pgdump`,
        UploadId,
        PartNumber: 1,
        Body: Buffer.alloc(5 << 20, 1),
      }),
    );
    sdk.destroy();
    await s3.s3.putObject({
      bucket: BUCKET,
      key: `${dumpPrefix(db)}old.pgdump`,
      body: Buffer.from('old'),
      sha256: 'x',
    });
    // A writer adding rows while the push runs: the snapshot holds none it had not committed.
    const writer = spawn('docker', [
      'exec',
      SOURCE,
      'psql',
      '-X',
      '-q',
      '-U',
      'app',
      '-d',
      'app',
      '-c',
      "DO $$ BEGIN FOR i IN 1..60 LOOP INSERT INTO events (kind) VALUES ('during'); COMMIT; PERFORM pg_sleep(0.1); END LOOP; END $$",
    ]);
    const written = new Promise((resolve) => writer.on('close', resolve));
    const r = await pushDatabase(deps(), { stack: STACK, bucket: BUCKET, db, replace: true });
    await written;
    expect(r.outcome).toBe('restored');
    expect(r.dumpReused).toBe(false);
    expect(r.mismatches).toEqual([]);
    const events = r.tables.find((t) => t.table === 'public.events')!.rows;
    expect(psql(TARGET, 'SELECT count(*) FROM events')).toBe(String(events));
    expect(Number(psql(SOURCE, 'SELECT count(*) FROM events'))).toBe(40001 + 60);
    expect(await s3.s3.listObjects(BUCKET, dumpPrefix(db))).toEqual([]);
    expect(await s3.s3.unfinishedUploads(BUCKET, dumpPrefix(db))).toEqual([]);
  });

  it('a push killed after its dump, before its manifest: the restore already fed all but the last bytes of the dump rolls back; the next one reuses the dump, sends only the manifest, restores once', async () => {
    psql(SOURCE, "INSERT INTO events (kind) VALUES ('after')");
    // Small parts: the restore (started with the first part) reads every part but the last
    // 4 KiB of the newest, which it holds back until the manifest. The S3 API dies at the manifest: the dump is
    // recorded and every part is staged.
    const d = { ...deps(), dumpPartBytes: 1024 * 1024 };
    const dying = dyingAtManifest();
    const before = psql(TARGET, 'SELECT count(*) FROM events');
    const contentBefore = tableContent(TARGET);
    const first = await pushDatabase(
      { ...d, aws: { ...d.aws, s3: dying } },
      { stack: STACK, bucket: BUCKET, db, replace: true },
    ).catch((e) => e);
    expect((first as Error).message).toBe('killed');
    // --replace dropped the tables and all but the dump's last bytes went in, in one transaction that
    // never got its COMMIT: the target is as it was.
    expect(psql(TARGET, 'SELECT count(*) FROM events')).toBe(before);
    expect(tableContent(TARGET)).toBe(contentBefore);
    expect(before).not.toBe(psql(SOURCE, 'SELECT count(*) FROM events'));
    const keys = (await s3.s3.listObjects(BUCKET, dumpPrefix(db))).map((o) => o.key);
    const staged = keys.map((k) => k.split('/').pop()!);
    // Each part's key holds its SHA-256.
    expect(staged.filter((n) => n.startsWith('part-00002.'))).toEqual([
      expect.stringMatching(/^part-00002\.[0-9a-f]{64}$/),
    ]);
    expect(staged).not.toContain('manifest');
    // A stray object under a part's number (another SHA-256): deleted before the restore starts,
    // which would otherwise find the part staged twice.
    const stray = `${keys[0]!.slice(0, keys[0]!.lastIndexOf('/'))}/part-00002.${'0'.repeat(64)}`;
    await s3.s3.putObject({
      bucket: BUCKET,
      key: stray,
      body: Buffer.from('stray'),
      sha256: createHash('sha256').update('stray').digest('hex'),
    });
    const r = await pushDatabase(d, { stack: STACK, bucket: BUCKET, db, replace: true });
    expect(r.dumpReused).toBe(true);
    expect(r.uploadedBytes).toBe(0);
    expect(r.resumedBytes).toBe(r.dumpBytes);
    expect(r.outcome).toBe('restored');
    expect(r.mismatches).toEqual([]);
    expect(tableContent(TARGET)).toBe(tableContent(SOURCE));
    expect(psql(TARGET, 'SELECT count(*) FROM events')).toBe(psql(SOURCE, 'SELECT count(*) FROM events'));
    expect(await s3.s3.listObjects(BUCKET, dumpPrefix(db))).toEqual([]);
    expect(await s3.s3.unfinishedUploads(BUCKET, dumpPrefix(db))).toEqual([]);
  });

  it('into an empty target (pg_restore straight into the server): a manifest that never arrives commits nothing; the next run restores once', async () => {
    psql(SOURCE, "INSERT INTO events (kind) VALUES ('direct')");
    for (const sql of ['DROP DATABASE app WITH (FORCE)', 'CREATE DATABASE app OWNER app'])
      docker('exec', TARGET, 'psql', '-X', '-U', 'app', '-d', 'postgres', '-c', sql);
    // Small parts: the restore reads all but the dump's last 4 KiB (held back until the manifest)
    // inside its one transaction before the push dies.
    const d = { ...deps(), dumpPartBytes: 1024 * 1024 };
    const first = await pushDatabase(
      { ...d, aws: { ...d.aws, s3: dyingAtManifest() } },
      { stack: STACK, bucket: BUCKET, db, replace: false },
    ).catch((e) => e);
    expect((first as Error).message).toBe('killed');
    const staged = (await s3.s3.listObjects(BUCKET, dumpPrefix(db))).map((o) => o.key.split('/').pop());
    expect(staged.filter((n) => n?.startsWith('part-')).length).toBeGreaterThan(1);
    expect(staged).not.toContain('manifest');
    const tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'";
    expect(psql(TARGET, tables)).toBe('0');
    const r = await pushDatabase(d, { stack: STACK, bucket: BUCKET, db, replace: false });
    // The first restore rolled back (the target was empty: not refused), this one restored once.
    expect(r.dumpReused).toBe(true);
    expect(r.outcome).toBe('restored');
    expect(r.mismatches).toEqual([]);
    expect(psql(TARGET, tables)).toBe('3');
    expect(tableContent(TARGET)).toBe(tableContent(SOURCE));
    expect(psql(TARGET, 'SELECT count(*) FROM events')).toBe(psql(SOURCE, 'SELECT count(*) FROM events'));
    expect(await s3.s3.listObjects(BUCKET, dumpPrefix(db))).toEqual([]);
  });

  it('a part whose bytes do not match its SHA-256 is never restored: the push fails, the target is unchanged', async () => {
    psql(SOURCE, "INSERT INTO events (kind) VALUES ('tampered')");
    const raw = new S3Client({ region: 'us-east-1', endpoint: moto!.endpoint, forcePathStyle: true });
    // A part altered in the bucket after it was checked on arrival (its recorded SHA-256 kept).
    const tampering = new Proxy(s3.s3, {
      get: (target, name) =>
        name === 'putObject'
          ? async (spec: Parameters<S3Api['putObject']>[0]) => {
              if (!spec.key.includes('/part-00001.')) return target.putObject(spec);
              const body = Buffer.from(spec.body);
              body[body.length >> 1]! ^= 0xff;
              await raw.send(
                new PutObjectCommand({
                  Bucket: BUCKET,
                  Key: spec.key,
                  Body: body,
                  Metadata: { sha256: spec.sha256 },
                }),
              );
            }
          : Reflect.get(target, name),
    });
    const d = deps();
    const contentBefore = tableContent(TARGET);
    const before = psql(TARGET, 'SELECT count(*) FROM events');
    const failed = await pushDatabase(
      { ...d, aws: { ...d.aws, s3: tampering } },
      { stack: STACK, bucket: BUCKET, db, replace: true },
    ).catch((e) => e);
    raw.destroy();
    expect(failed).toBeInstanceOf(MlshipError);
    expect((failed as MlshipError).code).toBe('DATA_RESTORE_FAILED');
    expect((failed as MlshipError).details.join('\n')).toMatch(
      /part-00001 of the dump does not match its SHA-256/,
    );
    expect(psql(TARGET, 'SELECT count(*) FROM events')).toBe(before);
    expect(tableContent(TARGET)).toBe(contentBefore);
    // The failed restore's parts were dropped: the next push sends the kept dump again.
    const r = await pushDatabase(deps(), { stack: STACK, bucket: BUCKET, db, replace: true });
    expect(r.dumpReused).toBe(true);
    expect(r.uploadedBytes).toBe(r.dumpBytes);
    expect(r.mismatches).toEqual([]);
    expect(psql(TARGET, 'SELECT count(*) FROM events')).toBe(psql(SOURCE, 'SELECT count(*) FROM events'));
    expect(await s3.s3.listObjects(BUCKET, dumpPrefix(db))).toEqual([]);
  });

  it('a restore that loses rows is caught by the verify lines, naming the table; the push after the fix reuses the dump', async () => {
    psql(SOURCE, "INSERT INTO events (kind) VALUES ('lost?')");
    // The target drops every 1000th event it is given (a trigger an event trigger adds to
    // every new events table; pg_catalog survives --replace).
    psql(
      TARGET,
      `CREATE FUNCTION pg_catalog.mlship_test_skip() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NULL; END $f$;
CREATE FUNCTION pg_catalog.mlship_test_lose() RETURNS event_trigger LANGUAGE plpgsql AS $f$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE object_identity = 'public.events') THEN
    CREATE TRIGGER lose BEFORE INSERT ON public.events FOR EACH ROW WHEN (NEW.id % 1000 = 0) EXECUTE FUNCTION pg_catalog.mlship_test_skip();
  END IF; END $f$;
CREATE EVENT TRIGGER mlship_test_lose ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION pg_catalog.mlship_test_lose();`,
    );
    const lost = await pushDatabase(deps(), { stack: STACK, bucket: BUCKET, db, replace: true });
    const source = Number(psql(SOURCE, 'SELECT count(*) FROM events'));
    expect(lost.mismatches).toEqual([
      `table public.events: ${source} rows locally, ${source - Math.floor(source / 1000)} in the cloud`,
    ]);
    psql(
      TARGET,
      'DROP EVENT TRIGGER mlship_test_lose; DROP FUNCTION pg_catalog.mlship_test_lose(); DROP TRIGGER lose ON events; DROP FUNCTION pg_catalog.mlship_test_skip()',
    );
    const r = await pushDatabase(deps(), { stack: STACK, bucket: BUCKET, db, replace: true });
    expect(r.dumpReused).toBe(true);
    expect(r.mismatches).toEqual([]);
    expect(tableContent(TARGET)).toBe(tableContent(SOURCE));
    expect(await s3.s3.listObjects(BUCKET, dumpPrefix(db))).toEqual([]);
  });

  it('a local major newer than the cloud one is refused with the upgrade path; an unreachable database too', async () => {
    const newer = await pushDatabase(deps('14.9'), {
      stack: STACK,
      bucket: BUCKET,
      db,
      replace: false,
    }).catch((e) => e);
    expect((newer as MlshipError).exitCode).toBe(2);
    expect((newer as MlshipError).message).toMatch(
      /PostgreSQL 15 \(PG_VERSION of its data directory\), newer than .* \(PostgreSQL 14\)/,
    );
    expect((newer as MlshipError).hint).toMatch(/postgres:15/);
    const gone = await pushDatabase(deps(), {
      stack: `${STACK}-other`,
      bucket: BUCKET,
      db,
      replace: false,
    }).catch((e) => e);
    expect((gone as MlshipError).code).toBe('DATA_LOCAL_UNREACHABLE');
    expect((gone as MlshipError).hint).toMatch(/compose up/);
  });
});

describe.runIf(engine)('the verify lines on PostgreSQL 15', () => {
  // A database of its own in the source container: one row of every kind of column (one of
  // them named t, as the row's alias in the check SQL: the whole row must still be hashed).
  const hashes = (...sql: string[]) => psqlIn(SOURCE, 'hashes', ...sql);
  const checks = (mode: RowHash, change?: string) =>
    hashes('BEGIN', ...(change ? [change] : []), PG_SETTINGS, rowHashSetting(mode), PG_CHECK_SQL, 'ROLLBACK')
      .split('\n')
      .filter((l) => l.startsWith('mlship-verify'));
  const CHANGES: Record<string, string> = {
    'an int': 'UPDATE k SET i = 3',
    'a bool': 'UPDATE k SET b = false',
    'text, one character': "UPDATE k SET t = 'Hellp'",
    'text, empty instead of NULL': "UPDATE k SET n = ''",
    varchar: "UPDATE k SET v = 'v2'",
    'citext, case only (equal as citext)': "UPDATE k SET c = 'ab'",
    'numeric, scale only (1.0 = 1.00)': 'UPDATE k SET num = 1.00',
    'a float, 0 to -0 (equal as float)': "UPDATE k SET f = '-0'",
    "jsonb, a number's scale": `UPDATE k SET j = '{"a": 1.00}'`,
    'bytea, one byte': "UPDATE k SET bt = '\\x0102ff'",
    'timestamptz, one microsecond': "UPDATE k SET ts = ts + interval '1 microsecond'",
    'a date': "UPDATE k SET d = '2024-01-02'",
    'a uuid': "UPDATE k SET u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'",
    'an interval, same length (1 day = 24 hours)': "UPDATE k SET iv = '24 hours'",
    'an array element': "UPDATE k SET arr = '{1,2,4}'",
    'a duplicated row instead of another': 'UPDATE k2 SET x = 1 WHERE x = 2',
  };

  beforeAll(() => {
    psql(SOURCE, 'CREATE DATABASE hashes');
    hashes(`CREATE EXTENSION citext;
CREATE TABLE k (i int, b bool, t text, n text, v varchar(10), c citext, num numeric, f float8, j jsonb, bt bytea,
  ts timestamptz, d date, u uuid, iv interval, arr int[]);
INSERT INTO k VALUES (2, true, 'Hello', NULL, 'v1', 'Ab', 1.0, 0, '{"a": 1.0}', '\\x0102fe',
  '2024-01-01 00:00:00.5+00', '2024-01-01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day', '{1,2,3}');
CREATE TABLE k2 (x int); INSERT INTO k2 VALUES (1), (2);
CREATE TABLE empty_cols (); INSERT INTO empty_cols DEFAULT VALUES;`);
  });

  it.each(['record', 'text'] as const)(
    "%s: every change of a value's text changes its table's checksum, and only that table's",
    (mode) => {
      const base = checks(mode);
      expect(base.map((l) => l.split(' ').slice(1, 3).join(' '))).toEqual([
        'public.empty_cols 1',
        'public.k 1',
        'public.k2 2',
      ]);
      expect(checks(mode)).toEqual(base); // the same data, the same lines
      for (const [what, change] of Object.entries(CHANGES)) {
        const after = checks(mode, change);
        const table = change.startsWith('UPDATE k2') ? 'public.k2' : 'public.k';
        const changed = after.filter((l, i) => l !== base[i]).map((l) => l.split(' ')[1]);
        expect(changed, what).toEqual([table]);
      }
    },
  );

  it('the two row hashes differ (the restore task must be told which one the source used)', () => {
    expect(checks('record')[1]).not.toBe(checks('text')[1]);
  });
});

describe.runIf(engine)('data push: files (a local moto object store → moto S3)', () => {
  let source: S3Api & { destroy(): void };
  const keys: string[] = [];

  beforeAll(async () => {
    const port = await freePort();
    docker(
      'run',
      '-d',
      '--name',
      STORE,
      '--label',
      'dev.mlship.managed=true',
      '-p',
      `127.0.0.1:${port}:9000`,
      MOTO_IMAGE,
    );
    const endpoint = `http://127.0.0.1:${port}`;
    const client = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'mlship', secretAccessKey: 'local-secret' },
    });
    for (let i = 0; i < 60; i++) {
      try {
        await client.send(new CreateBucketCommand({ Bucket: 'uploads' }));
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    for (let i = 0; i < 150; i++) {
      const key = `photos/${i % 10}/p${i}.jpg`;
      keys.push(key);
      await client.send(
        new PutObjectCommand({ Bucket: 'uploads', Key: key, Body: Buffer.alloc(1000 + i, i) }),
      );
    }
    // Beyond one PUT: a multipart upload.
    keys.push('models/big.bin');
    await client.send(
      new PutObjectCommand({
        Bucket: 'uploads',
        Key: 'models/big.bin',
        Body: Buffer.alloc(20 * 1024 * 1024 + 17, 7),
      }),
    );
    client.destroy();
    source = await createObjectStoreApi({ endpoint, accessKeyId: 'mlship', secretAccessKey: 'local-secret' });
  }, 120_000);

  afterAll(() => source?.destroy());

  const push = () =>
    pushFiles(
      { source, target: s3.s3, log: () => undefined, cacheDir },
      { stack: STACK, sourceBucket: 'uploads', bucket: BUCKET },
    );

  it('copies every object with its SHA-256; a re-run copies nothing; a changed object is copied again', async () => {
    const first = await push();
    expect(first).toMatchObject({ objects: 151, copied: 151, skipped: 0, mismatches: [] });
    const listed = await s3.s3.listObjects(BUCKET);
    expect(listed.map((o) => o.key).sort()).toEqual([...keys].sort());
    const big = await s3.s3.headObject(BUCKET, 'models/big.bin');
    expect(big?.sizeBytes).toBe(20 * 1024 * 1024 + 17);
    expect(big?.sha256).toMatch(/^[0-9a-f]{64}$/);
    const again = await push();
    expect(again).toMatchObject({ copied: 0, skipped: 151, copiedBytes: 0, mismatches: [] });
    // Someone changed an object in the bucket (same size, other bytes): it is copied back.
    await s3.s3.putObject({
      bucket: BUCKET,
      key: keys[3]!,
      body: Buffer.alloc(1003, 9),
      sha256: 'a'.repeat(64),
    });
    const fixed = await push();
    expect(fixed).toMatchObject({ copied: 1, skipped: 150, mismatches: [] });
  });
});
