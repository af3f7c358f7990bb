// The local side of a database push: the running database container of the stack (found by
// its compose labels), the major version of its data directory, and a logical dump taken
// through the engine (`docker exec`), never over a published port. For PostgreSQL the
// verify lines and the dump come from ONE snapshot: a read-only transaction exports it and
// computes the checksums while pg_dump, started with that snapshot, writes the dump (the two
// overlap; the transaction stays open until both are done), so writes made during the push
// can never show up as a mismatch. MySQL's dump is --single-transaction;
// its checksums come from a second pass (stop writers to the database while pushing).

import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { OperationFailedError } from '../../io/errors.js';
import type { ManagedDatabase } from '../deploy/database.js';
import {
  MYSQL_VERIFY_FUNCTION,
  PG_CHECK_SQL,
  PG_SETTINGS,
  parseChecks,
  type RowHash,
  rowHashSetting,
  type TableCheck,
} from './checks.js';
import type { DataEngine, DataProgress } from './deps.js';

const PROJECT_LABEL = 'com.docker.compose.project';
const SERVICE_LABEL = 'com.docker.compose.service';

export interface LocalDatabase {
  containerId: string;
  name: string;
}

/** The running container of the stack's database service (or the one named by --local-container). */
export async function findLocalDatabase(
  engine: DataEngine,
  stack: string,
  db: ManagedDatabase,
  containerName?: string,
): Promise<LocalDatabase> {
  const all = await engine.listByLabel(SERVICE_LABEL);
  const found = containerName
    ? all.find((c) => c.name === containerName || c.id.startsWith(containerName))
    : all.find((c) => c.labels[SERVICE_LABEL] === db.service && c.labels[PROJECT_LABEL] === stack);
  const start = containerName
    ? `docker start ${containerName}`
    : `mlship compose up (or: docker compose up -d ${db.service})`;
  if (found?.state !== 'running') {
    throw new OperationFailedError(
      'DATA_LOCAL_UNREACHABLE',
      found
        ? `the local database ${found.name} is ${found.state}: its data can only be read while it runs`
        : `no container of the database service ${db.service} of stack ${stack} is running here`,
      {
        hint: found
          ? `start it (${start}), then run mlship data push again`
          : `start the stack (${start}); a database started another way: --local-container <name>`,
      },
    );
  }
  return { containerId: found.id, name: found.name };
}

/** Runs a command in the container, collecting its output (small outputs only). */
async function output(
  engine: DataEngine,
  id: string,
  cmd: string[],
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const { exitCode } = await engine.exec(id, {
    cmd,
    onStdout: (c) => {
      out += c.toString('utf8');
    },
    onStderr: (c) => {
      err += c.toString('utf8');
    },
  });
  return { code: exitCode, out, err };
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell default, expanded in the container
const PG_VERSION_CMD = 'cat "${PGDATA:-/var/lib/postgresql/data}/PG_VERSION"';

/** PostgreSQL: the major of the data directory (its PG_VERSION file); MySQL: the server's (8.0). */
export async function localMajor(
  engine: DataEngine,
  local: LocalDatabase,
  db: ManagedDatabase,
): Promise<string> {
  const r =
    db.engine === 'postgres'
      ? await output(engine, local.containerId, ['sh', '-c', PG_VERSION_CMD])
      : await output(engine, local.containerId, [
          'sh',
          '-c',
          `${mysqlShim}; export MYSQL_PWD="$(mlship_pw)"; mysql -u "$(mlship_user)" -N -B -e 'SELECT VERSION()'`,
        ]);
  const version = r.out.trim();
  if (r.code !== 0 || !/^\d+/.test(version)) {
    throw new OperationFailedError(
      'DATA_LOCAL_UNREACHABLE',
      `the local database ${local.name} does not answer`,
      {
        details: r.err.trim().split('\n').slice(-5),
        hint: 'check it is healthy (mlship compose ps), then run mlship data push again',
      },
    );
  }
  return db.engine === 'postgres' ? version : version.split('.').slice(0, 2).join('.');
}

/**
 * MySQL and MariaDB images name their client, user and password differently: the shell
 * helpers the local commands share (the container's own environment has the values).
 */
const mysqlShim = `command -v mysql >/dev/null 2>&1 || mysql() { mariadb "$@"; }
command -v mysqldump >/dev/null 2>&1 || mysqldump() { mariadb-dump "$@"; }
mlship_user() { if [ -n "\${MYSQL_USER:-\${MARIADB_USER:-}}" ]; then echo "\${MYSQL_USER:-$MARIADB_USER}"; else echo root; fi; }
mlship_pw() { if [ -n "\${MYSQL_USER:-\${MARIADB_USER:-}}" ]; then echo "\${MYSQL_PASSWORD:-\${MARIADB_PASSWORD:-}}"; else echo "\${MYSQL_ROOT_PASSWORD:-\${MARIADB_ROOT_PASSWORD:-}}"; fi; }`;

/**
 * pg_dump's compression level for the push. A dump that is sent and restored at once is a
 * transfer, not an archive: on the benchmark's 941 MB database, level 1 wrote 8.3 s and 247 MB
 * against the default level 6's 23.0 s and 229 MB (one core each; the dump is a single process).
 * A slow uplink may prefer more (`data push --dump-compression 6`).
 */
export const DEFAULT_DUMP_COMPRESSION = 1;

/**
 * The local commands, as argv: for tests of their construction and for the dump below.
 * `rowHash`: how the verify lines hash a row (PostgreSQL; the restore task is told the same).
 * `compression`: pg_dump's level, 0-9 (mysqldump's SQL text is not compressed).
 */
export function localCommands(
  db: ManagedDatabase,
  snapshot?: string,
  rowHash: RowHash = 'text',
  compression = DEFAULT_DUMP_COMPRESSION,
) {
  if (db.engine === 'postgres') {
    const psql = ['psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-U', db.username, '-d', db.database];
    return {
      holder: [
        ...psql,
        '-c',
        'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
        '-c',
        "SELECT 'mlship-snapshot ' || pg_backend_pid() || ' ' || pg_export_snapshot()",
        '-c',
        PG_SETTINGS,
        '-c',
        rowHashSetting(rowHash),
        '-c',
        PG_CHECK_SQL,
        '-c',
        "SELECT 'mlship-checked'",
        // Holds the snapshot until pg_dump has it; ended by mlship, or by itself after an hour.
        '-c',
        'SELECT pg_sleep(3600)',
      ],
      dump: [
        'pg_dump',
        '-Fc',
        '-Z',
        String(compression),
        '-U',
        db.username,
        '-d',
        db.database,
        ...(snapshot ? ['--snapshot', snapshot] : []),
      ],
      release: (pid: string) => [...psql, '-c', `SELECT pg_terminate_backend(${Number(pid)})`],
    };
  }
  const dbName = db.database.replace(/'/g, '');
  return {
    holder: [
      'bash',
      '-c',
      `${mysqlShim}\n${MYSQL_VERIFY_FUNCTION}\nexport MYSQL_PWD="$(mlship_pw)"; mlship_verify -u "$(mlship_user)" '${dbName}'; echo mlship-checked`,
    ],
    dump: [
      'bash',
      '-c',
      `${mysqlShim}\nexport MYSQL_PWD="$(mlship_pw)"; mysqldump --single-transaction --routines --triggers --events --no-tablespaces --set-gtid-purged=OFF -u "$(mlship_user)" '${dbName}' 2>/dev/null || mysqldump --single-transaction --routines --triggers --events --no-tablespaces -u "$(mlship_user)" '${dbName}'`,
    ],
    release: (_pid: string) => ['true'],
  };
}

/** Lines of a stream of chunks, as they complete. */
function lineSplitter(onLine: (line: string) => void) {
  let rest = '';
  return (chunk: Buffer) => {
    rest += chunk.toString('utf8');
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  };
}

export interface LocalSnapshot {
  /**
   * The snapshot's verify lines. PostgreSQL computes them in the exporting transaction while
   * pg_dump reads the same snapshot (they describe exactly the dumped data); MySQL's are
   * computed before the dump starts.
   */
  checks: Promise<TableCheck[]>;
  /**
   * Dumps the snapshot's data into `file` (only while the snapshot is held), handing every
   * chunk to `onChunk` too (the upload); then releases it.
   */
  dump(file: string, sink: DumpSink): Promise<{ sha256: string; bytes: number }>;
  /** Releases the snapshot without a dump (the dump of an earlier run is still good). */
  release(): Promise<void>;
}

export interface DumpSink {
  progress?: DataProgress | undefined;
  /** Every chunk of the dump as it is written; a promise holds the dump back until it resolves. */
  onChunk?: ((chunk: Buffer) => Promise<void> | undefined) | undefined;
}

function checksFailed(local: LocalDatabase, db: ManagedDatabase, code: number | undefined, stderr: string) {
  return new OperationFailedError(
    'DATA_LOCAL_DUMP_FAILED',
    `reading the local database ${local.name} failed (exit ${code})`,
    {
      details: stderr.trim().split('\n').slice(-8),
      hint: `check the database user ${db.username} and database ${db.database} exist in it`,
    },
  );
}

/** The holder's session: it exports the snapshot, then prints the verify lines. */
function startHolder(engine: DataEngine, local: LocalDatabase, db: ManagedDatabase, rowHash: RowHash) {
  const lines: string[] = [];
  let stderr = '';
  let pid: string | undefined;
  let snapshot: string | undefined;
  let onSnapshot: (v: { pid?: string; snapshot?: string }) => void = () => undefined;
  let onChecked: (ok: boolean) => void = () => undefined;
  const exported = new Promise<{ pid?: string; snapshot?: string }>((r) => {
    onSnapshot = r;
  });
  const checked = new Promise<boolean>((r) => {
    onChecked = r;
  });
  const done = engine
    .exec(local.containerId, {
      cmd: localCommands(db, undefined, rowHash).holder,
      onStdout: lineSplitter((l) => {
        const m = /^mlship-snapshot (\d+) (\S+)/.exec(l);
        if (m) {
          [pid, snapshot] = [m[1], m[2]];
          onSnapshot({ pid: m[1]!, snapshot: m[2]! });
        } else if (l === 'mlship-checked') onChecked(true);
        else lines.push(l);
      }),
      onStderr: (c) => {
        stderr += c.toString('utf8');
      },
    })
    .then((r) => {
      onSnapshot({ ...(pid ? { pid } : {}), ...(snapshot ? { snapshot } : {}) });
      onChecked(false);
      return r;
    });
  const checks = checked.then(async (ok) => {
    if (!ok) throw checksFailed(local, db, (await done).exitCode, stderr);
    return parseChecks(lines);
  });
  // Awaited by the caller, or by release; never an unhandled rejection in between.
  checks.catch(() => undefined);
  return { exported, checked, checks, done, stderr: () => stderr };
}

/**
 * Opens the snapshot (PostgreSQL: resolved once it is exported, its verify lines still being
 * computed; MySQL: once they are). The caller then dumps it, or releases it when the dump
 * kept from an interrupted run holds the same data.
 */
export async function openSnapshot(
  engine: DataEngine,
  local: LocalDatabase,
  db: ManagedDatabase,
  rowHash: RowHash,
  compression?: number,
): Promise<LocalSnapshot> {
  const holder = startHolder(engine, local, db, rowHash);
  const held = await holder.exported;
  if (db.engine === 'postgres' && !held.snapshot) {
    throw checksFailed(local, db, (await holder.done).exitCode, holder.stderr());
  }
  if (db.engine !== 'postgres') await holder.checked;
  const release = async () => {
    // The verify lines need the snapshot until they are complete.
    await holder.checked;
    if (held.pid) await engine.exec(local.containerId, { cmd: localCommands(db).release(held.pid) });
    await holder.done;
  };
  return {
    checks: holder.checks,
    release,
    async dump(file, sink) {
      try {
        return await dumpTo(
          engine,
          local,
          localCommands(db, held.snapshot, rowHash, compression).dump,
          file,
          sink,
        );
      } finally {
        await release();
      }
    },
  };
}

/** Streams the dump into `file` (written beside it, renamed when complete), hashing it on the way. */
async function dumpTo(
  engine: DataEngine,
  local: LocalDatabase,
  cmd: string[],
  file: string,
  sink: DumpSink,
): Promise<{ sha256: string; bytes: number }> {
  await mkdir(path.dirname(file), { recursive: true });
  const partial = `${file}.partial`;
  const out = createWriteStream(partial);
  const hash = createHash('sha256');
  let bytes = 0;
  let stderr = '';
  const closed = () =>
    new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  let exitCode: number;
  try {
    ({ exitCode } = await engine.exec(local.containerId, {
      cmd,
      onStdout: async (chunk) => {
        hash.update(chunk);
        bytes += chunk.length;
        sink.progress?.('dump', bytes);
        const sent = sink.onChunk?.(chunk);
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        await sent;
      },
      onStderr: (c) => {
        stderr += c.toString('utf8');
      },
    }));
  } finally {
    await closed();
  }
  if (exitCode !== 0) {
    throw new OperationFailedError(
      'DATA_LOCAL_DUMP_FAILED',
      `the dump of the local database ${local.name} failed (exit ${exitCode})`,
      {
        details: stderr.trim().split('\n').slice(-8),
        hint: "the lines above are the dump tool's own; fix what they name and run mlship data push again",
      },
    );
  }
  await rename(partial, file);
  return { sha256: hash.digest('hex'), bytes };
}
