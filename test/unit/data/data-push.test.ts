// data push without an engine: the restore task definition and its RunTask request checked
// against botocore's ECS model, the ECS runner driven by recorded DescribeTasks answers
// (moto never runs a task) with a fake clock, the restore scripts parsed by bash, the
// MySQL commands' construction, and the verify lines' comparison.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DescribeTasksResponse } from '@aws-sdk/client-ecs';
import { describe, expect, it } from 'vitest';
import { runTaskInput } from '../../../src/adapters/aws/run-task-input.js';
import { render } from '../../../src/cli/commands/data.js';
import {
  compareChecks,
  describeDifference,
  PG_CHECK_SQL,
  parseChecks,
  rowHashFor,
  rowHashSetting,
} from '../../../src/core/data/checks.js';
import { ecsRestoreRunner, startedBy } from '../../../src/core/data/ecs-restore.js';
import { localCommands } from '../../../src/core/data/local-database.js';
import {
  dataRoleSpec,
  defaultRestoreImage,
  feedFunction,
  HOLD_BACK_BYTES,
  parseSteps,
  restoreScript,
  restoreTaskDefinition,
} from '../../../src/core/data/restore-task.js';
import type { RunTaskSpec } from '../../../src/core/deploy/aws-apis.js';
import type { ManagedDatabase } from '../../../src/core/deploy/database.js';
import type { Clock } from '../../../src/io/clock.js';
import { strictAws } from '../../helpers/aws-fake.js';
import { loadServiceModel, validateShape } from '../../helpers/aws-model.js';

const model = loadServiceModel('ecs');

function database(engine: 'postgres' | 'mysql'): ManagedDatabase {
  return {
    service: 'db',
    engine,
    image: engine === 'postgres' ? 'postgres:16' : 'mysql:8.0',
    awsEngine: engine === 'postgres' ? 'aurora-postgresql' : 'aurora-mysql',
    settings: {
      kind: 'aurora',
      minCapacity: 0,
      maxCapacity: 2,
      secondsUntilAutoPause: 300,
      instanceClass: 'db.t4g.micro',
      backupRetentionDays: 7,
    },
    identifier: 'mlship-shop-db',
    subnetGroup: 'mlship-shop-db',
    securityGroup: 'shop-db',
    database: 'shop',
    username: 'shop',
    port: engine === 'postgres' ? 5432 : 3306,
    secretName: 'shop/database',
    urls: {},
  };
}

const spec = (engine: 'postgres' | 'mysql') => ({
  stack: 'shop',
  region: 'eu-west-1',
  accountId: '123456789012',
  db: database(engine),
  logGroup: '/mlship/shop',
  roleArn: 'arn:aws:iam::123456789012:role/mlship-shop-data',
  restoreImage: defaultRestoreImage(engine, engine === 'postgres' ? '16' : '8.0'),
  fetchImage: 'public.ecr.aws/aws-cli/aws-cli:latest',
});

describe('the restore task', () => {
  it.skipIf(!model)(
    'is a valid RegisterTaskDefinition request: fetch and restore side by side, secrets from the database secret',
    () => {
      for (const engine of ['postgres', 'mysql'] as const) {
        const td = restoreTaskDefinition(spec(engine));
        expect(validateShape(model!, 'RegisterTaskDefinitionRequest', td)).toEqual([]);
        const [fetch, restore] = td.containerDefinitions!;
        expect(fetch!.command![0]).toMatch(/aws s3 cp "s3:\/\/\$B\/\$K\/" \$I\/ --recursive/);
        expect(restore!.image).toBe(engine === 'postgres' ? 'postgres:16' : 'mysql:8.0');
        expect(restore!.dependsOn).toEqual([{ containerName: 'fetch', condition: 'START' }]);
        expect(
          restore!.secrets!.every((s) =>
            /^arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop\/database:\w+::$/.test(s.valueFrom!),
          ),
        ).toBe(true);
        // At most 4 parts wait on the task's disk, whatever the dump's size.
        expect(td.ephemeralStorage).toBeUndefined();
      }
    },
  );

  it.skipIf(!model)("is started by a valid RunTask request in the services' network", () => {
    const run: RunTaskSpec = {
      cluster: 'shop',
      taskDefinition: 'arn:aws:ecs:eu-west-1:123456789012:task-definition/shop-data-restore:3',
      subnets: ['subnet-a', 'subnet-b'],
      securityGroups: ['sg-tasks'],
      assignPublicIp: true,
      startedBy: startedBy('shop'),
      environment: {
        fetch: { MLSHIP_DUMP_URL: 's3://b/mlship/data/x.pgdump' },
        restore: { MLSHIP_REPLACE: '0', MLSHIP_ROW_HASH: 'record' },
      },
      tags: { 'mlship:stack': 'shop' },
    };
    const input = runTaskInput(run);
    expect(validateShape(model!, 'RunTaskRequest', input)).toEqual([]);
    expect(input.networkConfiguration?.awsvpcConfiguration).toEqual({
      subnets: ['subnet-a', 'subnet-b'],
      securityGroups: ['sg-tasks'],
      assignPublicIp: 'ENABLED',
    });
  });

  it('scripts are valid bash; PostgreSQL restores the parts as they come, without owners and ACLs, committing only at their end; MySQL with its client', () => {
    for (const engine of ['postgres', 'mysql'] as const)
      execFileSync('bash', ['-n', '-c', restoreScript(engine)]);
    execFileSync('sh', [
      '-n',
      '-c',
      restoreTaskDefinition(spec('postgres')).containerDefinitions![0]!.command![0]!,
    ]);
    // Into an empty target: straight into the server, one transaction; --replace: the drop
    // and the restore in one transaction through psql, COMMIT only at the dump's end.
    expect(restoreScript('postgres')).toMatch(
      /\n {2}feed \| pg_restore --no-owner --no-acl --single-transaction -d "\$PGDATABASE"\n/,
    );
    expect(restoreScript('postgres')).toMatch(
      /\{ echo "BEGIN;"; echo "\$MLSHIP_DROP_SQL"\n {4}feed \| pg_restore --no-owner --no-acl --clean --if-exists -f - && echo "COMMIT;"; } \| psql /,
    );
    expect(restoreScript('mysql')).toMatch(/cat \/mlship-data\/dump; } \| mysql "\$\{conn\[@\]\}"/);
    for (const engine of ['postgres', 'mysql'] as const)
      expect(restoreScript(engine)).toMatch(/mlship-target-not-empty/);
  });

  it('the restore verifies with the row hash it is told (anything but record is text) and prints its steps with their times', () => {
    const pg = restoreScript('postgres');
    expect(pg).toContain(`case "\${MLSHIP_ROW_HASH:-text}" in record) ;; *) MLSHIP_ROW_HASH=text ;; esac`);
    expect(pg).toContain(
      `-c "$MLSHIP_SETTINGS" -c "SET mlship.row_hash = '$MLSHIP_ROW_HASH'" -c "$MLSHIP_CHECK_SQL"`,
    );
    // The steps, in order: restored, then verify, then verified; run by bash as the script does.
    for (const engine of ['postgres', 'mysql'] as const) {
      const s = restoreScript(engine);
      expect(s.indexOf('mlship-step restored')).toBeLessThan(
        s.lastIndexOf(engine === 'postgres' ? '\nverify\n' : '\nmlship_verify'),
      );
      expect(s.indexOf('mlship-step verified')).toBeGreaterThan(
        s.lastIndexOf(engine === 'postgres' ? '\nverify\n' : '\nmlship_verify'),
      );
    }
    const line = execFileSync('bash', ['-c', /echo "mlship-step restored [^\n]*/.exec(pg)![0]], {
      encoding: 'utf8',
    });
    const steps = parseSteps(['mlship-verify public.a 3 99', line, 'mlship-step verified 1796284801.5']);
    expect(Math.abs(steps.restored! - Date.now())).toBeLessThan(5_000);
    expect(steps.verified).toBe(1_796_284_801_500);
    expect(parseSteps(['mlship-step broken', 'mlship-stepx 1'])).toEqual({});
  });

  it('the feed hands the newest part on but for its tail, which waits for the next part or the manifest: the dump ends only after it; a failed dump never hands its last bytes on', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-feed-'));
    // As the fetch writes them: complete, then renamed into place.
    const put = (name: string, body: string) => {
      writeFileSync(path.join(dir, '.tmp'), body);
      renameSync(path.join(dir, '.tmp'), path.join(dir, name));
    };
    const run = () => {
      const p = spawn('bash', ['-c', `${feedFunction(dir)}\nfeed; echo " rc=$?"`]);
      const r = { out: '', ended: new Promise<void>((done) => p.on('close', () => done())) };
      p.stdout.on('data', (d) => {
        r.out += d;
      });
      return r;
    };
    const until = async (f: () => boolean) => {
      for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(f()).toBe(true);
    };
    try {
      put('part-00001', 'first ');
      const ok = run();
      await new Promise((r) => setTimeout(r, 1500));
      expect(ok.out).toBe('');
      put('part-00002', 'last');
      await until(() => ok.out === 'first ');
      await new Promise((r) => setTimeout(r, 1000));
      expect(ok.out).toBe('first ');
      put('end', '2\n');
      await ok.ended;
      expect(ok.out).toBe('first last rc=0\n');

      // A part larger than the held-back tail: all but its last HOLD_BACK_BYTES go on at once.
      rmSync(path.join(dir, 'end'));
      const big = 'x'.repeat(HOLD_BACK_BYTES + 1000);
      put('part-00001', big);
      const early = run();
      await until(() => early.out.length === 1000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(early.out).toBe('x'.repeat(1000));
      put('part-00002', 'y');
      await until(() => early.out === big);
      put('end', '2\n');
      await early.ended;
      expect(early.out).toBe(`${big}y rc=0\n`);

      rmSync(path.join(dir, 'end'));
      put('part-00001', 'only part');
      const failed = run();
      await new Promise((r) => setTimeout(r, 1000));
      put('failed', '');
      await failed.ended;
      expect(failed.out).toBe(' rc=5\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);

  it('the fetch makes one AWS CLI call per look (parts, manifest and failure marker at once), checks each part against the SHA-256 in its key, and ends on the manifest', () => {
    // A stand-in for the AWS CLI on PATH (its S3: files of a directory) that records every
    // call and copies the objects `s3 cp --recursive` would (its --include patterns, after
    // --exclude '*'): the script's control flow, not S3 (the docker test runs it against moto).
    // A consumer beside it takes the parts as the restore's feed would.
    const root = mkdtempSync(path.join(os.tmpdir(), 'mlship-fetch-'));
    const fetch = restoreTaskDefinition(spec('postgres')).containerDefinitions![0]!.command![0]!;
    const fake = `#!/bin/sh
set -f; src=$3; dst=$4; shift 4; inc=""; prev=""
for a in "$@"; do [ "$prev" = --include ] && inc="$inc $a"; prev=$a; done
echo "$1 $2$inc" | sed 's/^--recursive --only-show-errors/cp/' >> ${root}/calls
dir=${root}/s3/\${src#s3://}
for f in $(ls "$dir"); do for p in $inc; do case "$f" in $p) cp "$dir/$f" "$dst/$f" ;; esac; done; done`;
    const sha = (body: string) => execFileSync('sha256sum', { input: body }).toString().split(' ')[0]!;
    const run = (parts: string[], o: { tamper?: number; manifestExtra?: string; failed?: boolean } = {}) => {
      rmSync(root, { recursive: true, force: true });
      for (const d of ['bin', 'dir', 's3/b/d/k']) execFileSync('mkdir', ['-p', path.join(root, d)]);
      writeFileSync(path.join(root, 'bin/aws'), fake, { mode: 0o755 });
      const manifest = parts.map((body, i) => {
        const name = `part-${String(i + 1).padStart(5, '0')}`;
        const staged = i + 1 === o.tamper ? `${body}!` : body;
        writeFileSync(path.join(root, 's3/b/d/k', `${name}.${sha(body)}`), staged);
        return `${name} ${sha(body)} ${body.length}\n`;
      });
      if (o.failed) writeFileSync(path.join(root, 's3/b/d/k/failed'), 'failed\n');
      else
        writeFileSync(
          path.join(root, 's3/b/d/k/manifest'),
          `${manifest.join('')}${o.manifestExtra ?? ''}total x 0\n`,
        );
      const dir = path.join(root, 'dir');
      const script = fetch.replaceAll('/mlship-data', dir);
      const take = `for f in ${dir}/part-*; do [ -f "$f" ] && cat "$f" >> ${root}/consumed && rm "$f"; done`;
      const consumer = `while [ ! -f ${dir}/end ] && [ ! -f ${dir}/failed ]; do ${take}; sleep 0.05; done; [ -f ${dir}/failed ] || ${take}`;
      const env = { PATH: `${path.join(root, 'bin')}:${process.env.PATH}`, MLSHIP_DUMP_URL: 's3://b/d/k' };
      let code = 0;
      let out = '';
      try {
        out = execFileSync('bash', ['-c', `(${consumer}) & sh -c "$0"; rc=$?; wait; exit $rc`, script], {
          env,
        }).toString();
      } catch (e) {
        code = (e as { status: number }).status;
        out = String((e as { stdout: Buffer }).stdout);
      }
      const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
      return {
        code,
        out,
        calls: read('calls').trim().split('\n'),
        consumed: execFileSync('sh', ['-c', `cat ${root}/consumed 2>/dev/null; true`]).toString(),
        left: execFileSync('ls', [dir]).toString().split('\n').filter(Boolean),
      };
    };
    try {
      const ok = run(['one ', 'two ', 'three']);
      expect(ok.code).toBe(0);
      expect(ok.out).toMatch(/^mlship-step fetched \d+\.\d+$/m);
      // One call fetched the three parts and the manifest that closes the dump.
      expect(ok.calls).toEqual(['cp manifest failed part-00001.* part-00002.* part-00003.* part-00004.*']);
      expect(ok.consumed).toBe('one two three');
      expect(ok.left).toEqual(['end']);

      // More parts than the volume holds: each look asks for the next free slots' parts only.
      const many = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
      const big = run(many);
      expect(big.code).toBe(0);
      expect(big.consumed).toBe(many.join(''));
      expect(big.calls[0]).toBe('cp manifest failed part-00001.* part-00002.* part-00003.* part-00004.*');
      expect(big.calls.length).toBeLessThanOrEqual(4);
      for (const call of big.calls.slice(1)) expect(call).toMatch(/^cp manifest failed part-0000[5-7]\.\*/);

      const bad = run(['one ', 'two ', 'three'], { tamper: 2 });
      expect(bad.code).toBe(5);
      expect(bad.out).toMatch(/part-00002 of the dump does not match its SHA-256/);
      // Part 1 was handed on (the feed may or may not have read it before the failure); part 2 never.
      expect(['', 'one ']).toContain(bad.consumed);
      expect(bad.left.filter((f) => f !== 'part-00001')).toEqual(['failed']);

      const missing = run(['one ', 'two '], { manifestExtra: `part-00003 ${sha('x')} 1\n` });
      expect(missing.code).toBe(5);
      expect(missing.out).toMatch(/part-00003 of the dump is listed by the manifest but not staged/);
      expect(missing.left).toContain('failed');
      expect(missing.left).not.toContain('end');

      const failed = run(['one '], { failed: true });
      expect(failed.code).toBe(5);
      expect(failed.out).toMatch(/the dump failed while it was staged/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 30_000);

  it('the role reads the database secret and the staged dumps only (listing them under their prefix)', () => {
    const role = dataRoleSpec({ ...spec('postgres'), bucket: 'mlship-shop-b', kmsKeyId: '1234abcd' });
    const statements = role.inlinePolicies['mlship-data-push']!.Statement;
    expect(statements.map((s) => [s.Action, s.Resource])).toEqual([
      [
        'secretsmanager:GetSecretValue',
        'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/database-??????',
      ],
      ['s3:GetObject', 'arn:aws:s3:::mlship-shop-b/mlship/data/*'],
      ['s3:ListBucket', 'arn:aws:s3:::mlship-shop-b'],
      ['kms:Decrypt', 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd'],
    ]);
  });
});

describe('the row hash', () => {
  it('is record from PostgreSQL 14 (hash_record_extended), text before; the setting takes no other value', () => {
    expect(['10', '11', '13'].map(rowHashFor)).toEqual(['text', 'text', 'text']);
    expect(['14', '15', '16', '17'].map(rowHashFor)).toEqual(['record', 'record', 'record', 'record']);
    expect(rowHashSetting('record')).toBe("SET mlship.row_hash = 'record'");
    expect(rowHashSetting("x'; DROP TABLE t; --" as never)).toBe("SET mlship.row_hash = 'text'");
  });
});

describe('the local commands', () => {
  it('PostgreSQL: the snapshot is exported, checked and dumped with pg_dump -Fc -Z 1 --snapshot', () => {
    const c = localCommands(database('postgres'), '00000003-00000002-1');
    expect(c.dump).toEqual([
      'pg_dump',
      '-Fc',
      '-Z',
      '1',
      '-U',
      'shop',
      '-d',
      'shop',
      '--snapshot',
      '00000003-00000002-1',
    ]);
    // The level asked for (data push --dump-compression).
    expect(localCommands(database('postgres'), undefined, 'text', 6).dump.slice(0, 4)).toEqual([
      'pg_dump',
      '-Fc',
      '-Z',
      '6',
    ]);
    expect(c.holder).toContain('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // The row hash is set before the check SQL, which reads it (text unless told).
    expect(c.holder.indexOf("SET mlship.row_hash = 'text'")).toBe(c.holder.indexOf(PG_CHECK_SQL) - 2);
    const record = localCommands(database('postgres'), undefined, 'record').holder;
    expect(record.indexOf("SET mlship.row_hash = 'record'")).toBe(record.indexOf(PG_CHECK_SQL) - 2);
    expect(c.release('42').at(-1)).toBe('SELECT pg_terminate_backend(42)');
  });

  it("MySQL: mysqldump --single-transaction with the container's own user and password", () => {
    const c = localCommands(database('mysql'));
    expect(c.dump[0]).toBe('bash');
    expect(c.dump[2]).toMatch(
      /mysqldump --single-transaction --routines --triggers --events --no-tablespaces/,
    );
    expect(c.dump[2]).toMatch(/MYSQL_PWD="\$\(mlship_pw\)"/);
    execFileSync('bash', ['-n', '-c', c.dump[2]!]);
    execFileSync('bash', ['-n', '-c', c.holder[2]!]);
  });
});

describe('verify lines', () => {
  it('are compared table by table, naming what differs', () => {
    const local = parseChecks([
      'mlship-verify public.a 3 99',
      'mlship-verify public."b c" 2 7',
      'noise',
      'mlship-verify public.d 1 5',
    ]);
    const cloud = parseChecks([
      'mlship-verify public.a 3 98',
      'mlship-verify public."b c" 1 7',
      'mlship-verify public.e 4 4',
    ]);
    expect(compareChecks(local, local)).toEqual([]);
    expect(compareChecks(local, cloud).map(describeDifference)).toEqual([
      'table public.a: same 3 rows, different content (checksum 99 locally, 98 in the cloud)',
      'table public."b c": 2 rows locally, 1 in the cloud',
      'table public.d: missing in the cloud (1 rows locally)',
      'table public.e: in the cloud only (4 rows)',
    ]);
  });
});

describe('the ECS runner', () => {
  const recording = JSON.parse(
    readFileSync(path.resolve('fixtures/data/recorded/restore-task-stopped.json'), 'utf8'),
  ) as { answers: DescribeTasksResponse[] };

  it.skipIf(!model)("recorded answers are ECS's shapes", () => {
    for (const a of recording.answers) expect(validateShape(model!, 'DescribeTasksResponse', a)).toEqual([]);
  });

  it("registers once, runs in the services' network, waits until stopped and reads both containers' logs", async () => {
    let t = 0;
    const clock: Clock = {
      now: () => t,
      monotonic: () => t,
      sleep: async (ms) => {
        t += ms;
      },
    };
    const calls: string[] = [];
    let polls = 0;
    const aws = strictAws({
      iam: {
        ensureServiceRole: async (s) => ({
          arn: `arn:aws:iam::123456789012:role/${s.name}`,
          created: false,
          changed: [],
          managed: true,
        }),
      },
      ecs: {
        latestTaskDefinition: async () => undefined,
        registerTaskDefinition: async (td) => {
          calls.push(`register ${td.family}`);
          return {
            arn: 'arn:aws:ecs:eu-west-1:123456789012:task-definition/shop-data-restore:1',
            revision: 1,
          };
        },
        runTask: async (s) => {
          calls.push(
            `run ${s.startedBy} ${s.subnets.join(',')} ${s.environment?.restore?.MLSHIP_REPLACE} ${s.environment?.restore?.MLSHIP_ROW_HASH}`,
          );
          return recording.answers[0]!.tasks![0]!.taskArn!;
        },
        describeTasks: async () => recording.answers[Math.min(polls++, 2)]!.tasks!,
      },
      logs: {
        streamMessages: async (group, stream) => {
          calls.push(`logs ${group} ${stream}`);
          return stream.startsWith('data/restore/')
            ? ['mlship-verify public.a 3 99', 'mlship-target-not-empty 1']
            : ['mlship-step fetched 1796284800.250'];
        },
      },
    });
    const runner = ecsRestoreRunner(
      aws,
      {
        ...spec('postgres'),
        cluster: 'shop',
        bucket: 'b',
        subnets: ['subnet-a'],
        securityGroups: ['sg-1'],
        assignPublicIp: true,
      },
      () => undefined,
      clock,
    );
    const id = await runner.start({ dumpUrl: 's3://b/k', replace: false, rowHash: 'record' });
    const outcome = await runner.wait(id);
    expect(outcome.exitCode).toBe(3);
    expect(outcome.lines).toEqual([
      'mlship-step fetched 1796284800.250',
      'mlship-verify public.a 3 99',
      'mlship-target-not-empty 1',
    ]);
    expect(calls).toEqual([
      'register shop-data-restore',
      'run mlship-data-shop subnet-a 0 record',
      'logs /mlship/shop data/fetch/0f5e2a1b7c3d4e5f8a9b0c1d2e3f4a5b',
      'logs /mlship/shop data/restore/0f5e2a1b7c3d4e5f8a9b0c1d2e3f4a5b',
    ]);
    expect(t).toBe(12_000); // two polls of 6 s
  });
});

describe('the summary', () => {
  it('names each table and says where the time went, from the restore task steps when it printed them', () => {
    const database = {
      identifier: 'mlship-shop-db',
      engine: 'postgres',
      localMajor: '15',
      cloudMajor: '16',
      tables: [{ table: 'public.items', rows: 3, checksum: '99' }],
      rows: 3,
      dumpBytes: 2 << 20,
      dumpReused: false,
      uploadedBytes: 2 << 20,
      resumedBytes: 0,
      outcome: 'restored' as const,
      mismatches: [],
      seconds: { dump: 64.51, upload: 0.23, restore: 18.37, fetch: 8.02, verify: 4.89 },
    };
    const text = render({ ok: true, stack: 'shop', database, mismatches: [] });
    expect(text).toContain('  public.items: 3 row(s), checksum 99');
    expect(text).toContain(
      '  time: dump 64.5 s (uploaded and restored alongside), rest of the upload 0.2 s, restore after it 18.4 s (the task had the whole dump after 8.0 s; verify lines 4.9 s)',
    );
    expect(text.split('\n').at(-1)).toBe('verified: every table and object matches');
    // A task that printed no steps (an older image's script): the push's own clock only.
    const older = render({
      ok: true,
      stack: 'shop',
      database: { ...database, seconds: { dump: 1, upload: 0, restore: 2 } },
      mismatches: [],
    });
    expect(older).toContain('restore after it 2.0 s\n');
  });
});
