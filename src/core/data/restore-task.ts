// The one-off ECS task that restores the stack's database from inside the VPC (the database
// is private: the laptop never reaches it, and `data push` does not open it). Two containers
// share a task volume and run side by side: `fetch` (the official AWS CLI image) copies the
// staged dump's parts out of the stack's bucket with the task role as they appear, each
// checked against its SHA-256; `restore` (the official image of the cloud's engine major,
// whose pg_restore/mysql read dumps of that major and older) refuses a target that has
// tables unless --replace, restores the parts while they arrive in one transaction that
// commits only once the manifest closed the dump (a bad part, a failed dump or a stopped
// restore leaves nothing behind), and prints the verify lines of what it restored. The official
// database images have no S3 client or CA bundle, hence the second container. Every image is
// overridable (--fetch-image, --restore-image): nothing can be pulled in some places.

import type { ContainerDefinition, RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import type { PolicyDocument, ServiceRoleSpec } from '../deploy/aws-apis.js';
import type { DbEngine, ManagedDatabase } from '../deploy/database.js';
import { awsName } from '../deploy/names.js';
import { TASK_EXECUTION_POLICY } from '../deploy/roles.js';
import { MYSQL_VERIFY_FUNCTION, PG_CHECK_SQL, PG_COUNT_TABLES_SQL, PG_SETTINGS } from './checks.js';

export const DATA_PREFIX = 'mlship/data';
export const DUMP_PATH = '/mlship-data/dump';
const DIR = '/mlship-data';
/**
 * Objects of a staged dump, under its key: parts in order, each named with its number and its
 * SHA-256 (the fetch learns both from one listing), then the manifest (or the failure marker).
 */
export const partName = (n: number) => `part-${String(n).padStart(5, '0')}`;
/** A part's object name under the dump's key: its number and its SHA-256. */
export const partObject = (n: number, sha256: string) => `${partName(n)}.${sha256}`;
export const partKey = (key: string, n: number, sha256: string) => `${key}/${partObject(n, sha256)}`;
export const manifestKey = (key: string) => `${key}/manifest`;
export const failedKey = (key: string) => `${key}/failed`;
/** How long the fetch and the restore wait for the next part before they give up (seconds). */
export const PART_WAIT_SECONDS = 600;
export const DEFAULT_FETCH_IMAGE = 'public.ecr.aws/aws-cli/aws-cli:latest';
/** Exit codes of the restore script that mean something to mlship. */
export const RESTORE_EXIT = { notEmpty: 3, unreachable: 4, dumpChecksum: 5 } as const;

/** Seconds between two looks at the staged dump while the fetch waits for its next part. */
export const FETCH_POLL_SECONDS = 5;
/** Parts the fetch keeps waiting on the task's volume, at most (the task's disk stays small). */
const FETCH_SLOTS = 4;

/**
 * The fetch container: downloads the parts in order as they appear, checks each against the
 * SHA-256 in its name, and hands it on as part-NNNNN on the shared volume (at most
 * FETCH_SLOTS waiting); the manifest, compared with the parts it got, ends it with `end`. A
 * bad part, the failure marker, or no new part within the wait: `failed` (also on any other
 * exit before `end`). Every AWS CLI call is a process of its own that costs most of a
 * CPU-second (the interpreter and the SDK's models load each time), so each look is ONE call:
 * `aws s3 cp --recursive` of the next parts the volume has room for, the manifest and the
 * failure marker (it lists the dump's objects and downloads the matching ones in the same
 * process: 4 parts of 16 MiB cost 1.1 CPU-s, against 3.4 for a get-object each). The part's
 * SHA-256 is in its key, so no call is needed to learn it. When the look brought every part
 * it asked for, the next comes at once; otherwise FETCH_POLL_SECONDS later. Waiting for a
 * free slot costs no process but sleep.
 */
const FETCH_SCRIPT = `set -u
D=${DIR}; I=${DIR}/.in; R=\${MLSHIP_DUMP_URL#s3://}; B=\${R%%/*}; K=\${R#*/}
trap '[ -f $D/end ] || touch $D/failed' EXIT
fail() { echo "mlship-error $1"; exit ${RESTORE_EXIT.dumpChecksum}; }
waiting() { set -- $D/part-*; if [ -e "$1" ]; then w=$#; else w=0; fi; }
i=1; idle=0; errors=0; : > $D/.seen
while :; do
  waiting; while [ $w -ge ${FETCH_SLOTS} ]; do sleep 0.5; waiting; done
  want=$((${FETCH_SLOTS} - w)); j=$i
  set -- --exclude '*' --include manifest --include failed
  while [ $j -lt $((i + want)) ]; do set -- "$@" --include "part-$(printf %05d $j).*"; j=$((j + 1)); done
  rm -rf $I; mkdir -p $I
  if ! aws s3 cp "s3://$B/$K/" $I/ --recursive --only-show-errors "$@"; then
    errors=$((errors + 1)); [ $errors -lt 3 ] || fail "the staged dump could not be read"
    sleep ${FETCH_POLL_SECONDS}; continue
  fi
  errors=0; got=0
  while n=part-$(printf %05d $i); set -- $I/$n.*; [ -f "$1" ]; do
    [ $# = 1 ] || fail "$n of the dump is staged twice: $*"
    sha=\${1##*/$n.}
    echo "$sha  $1" | sha256sum -c --status || fail "$n of the dump does not match its SHA-256"
    echo "$n $sha $(wc -c < "$1")" >> $D/.seen
    mv "$1" $D/$n; i=$((i + 1)); got=$((got + 1)); idle=0
  done
  [ ! -f $I/failed ] || fail "the dump failed while it was staged"
  if [ -f $I/manifest ]; then
    if [ $((i - 1)) -ge $(grep -c '^part-' $I/manifest) ]; then
      grep '^part-' $I/manifest | cmp -s - $D/.seen || fail "the parts fetched are not the ones the manifest lists"
      echo $((i - 1)) > $D/.end; mv $D/.end $D/end; echo "mlship-step fetched $(date +%s.%N)"; exit 0
    fi
    [ $got -gt 0 ] || fail "part-$(printf %05d $i) of the dump is listed by the manifest but not staged"
    continue
  fi
  [ $got -lt $want ] || continue
  if [ $got = 0 ]; then
    [ $idle -le ${PART_WAIT_SECONDS} ] || fail "no new part of the dump for ${PART_WAIT_SECONDS} s"
    idle=$((idle + ${FETCH_POLL_SECONDS}))
  fi
  sleep ${FETCH_POLL_SECONDS}
done`;

/** Bytes of the newest part the feed holds back until the dump is known to go on or be whole. */
export const HOLD_BACK_BYTES = 4096;

/**
 * Bash, in the restore container: the parts on the shared volume, in order, to stdout (each
 * removed once read); fails when the fetch failed or no part came within the wait. The newest
 * part is handed on at once but for its last HOLD_BACK_BYTES, which follow when the next part
 * or the fetch's `end` (the manifest checked) is there: the dump's last bytes reach the restore
 * only once the manifest closed the dump, so a restore that commits when it reads them
 * (pg_restore --single-transaction) cannot commit before. (A custom-format archive ends with
 * the end of its last table's data, which a pg_restore reading a stream must read, in file
 * order, before it is done.) So at most 4 KiB of the dump waits for the manifest (it used to
 * be the whole newest part, up to 16 MiB; bench/data measured the two alike: what follows the
 * dump there is the target's own work). `dir` is the shared volume (another directory in the
 * unit test). The names are made with bash's printf -v: waiting costs one `sleep` process per
 * 0.2 s, no more.
 */
export const feedFunction = (dir = DIR) => `feed() { local i=1 idle=0 sent=0 size n next
  while :; do printf -v n '%s/part-%05d' ${dir} $i; printf -v next '%s/part-%05d' ${dir} $((i + 1))
    if [ -f "$n" ] && { [ -f "$next" ] || [ -f ${dir}/end ]; }; then tail -c +$((sent + 1)) "$n"; rm -f "$n"; i=$((i + 1)); sent=0; idle=0
    elif [ -f "$n" ] && [ $sent = 0 ] && size=$(stat -c %s "$n") && [ $size -gt ${HOLD_BACK_BYTES} ]; then
      head -c $((size - ${HOLD_BACK_BYTES})) "$n"; sent=$((size - ${HOLD_BACK_BYTES})); idle=0
    elif [ -f ${dir}/end ]; then [ -f "$n" ] && continue
      [ "$(cat ${dir}/end)" = $((i - 1)) ] || { echo "mlship-error parts of the dump are missing" >&2; return ${RESTORE_EXIT.dumpChecksum}; }
      return 0
    elif [ -f ${dir}/failed ]; then echo "mlship-error the dump did not arrive whole (see the fetch's lines)" >&2; return ${RESTORE_EXIT.dumpChecksum}
    else idle=$((idle + 1)); [ $idle -le $((${PART_WAIT_SECONDS} * 5 + 300)) ] || { echo "mlship-error no part of the dump arrived" >&2; return ${RESTORE_EXIT.dumpChecksum}; }
      sleep 0.2; fi
  done; }`;

/** The official image of the cloud's major (postgres:16, mysql:8.0, mariadb:10.11). */
export function defaultRestoreImage(engine: DbEngine, cloudMajor: string): string {
  return `${engine}:${cloudMajor}`;
}

export const restoreFamily = (stack: string) => awsName(`${stack}-data-restore`, 255);
export const dataRoleName = (stack: string) => awsName(`mlship-${stack}-data`, 64);

/** Drops what a --replace restore replaces: every schema the database's owner owns (public too). */
const PG_DROP_SQL = `DO $mlship$ DECLARE s record; BEGIN
FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
  AND pg_has_role(current_user, nspowner, 'USAGE') LOOP
  EXECUTE format('DROP SCHEMA %I CASCADE', s.nspname);
END LOOP;
CREATE SCHEMA IF NOT EXISTS public;
END $mlship$;`;

/**
 * A step's end and its time (epoch seconds, the task's clock): the push reports how long the
 * restore took after the dump arrived, and the verify lines (`mlship-step <name> <time>`).
 */
const STEP = (name: string) => `echo "mlship-step ${name} $(date +%s.%N)"`;

/** The steps of a restore task's lines, by name: epoch milliseconds. */
export function parseSteps(lines: string[]): Record<string, number> {
  const steps: Record<string, number> = {};
  for (const line of lines) {
    const m = /^mlship-step (\w+) (\d+(?:\.\d+)?)\s*$/.exec(line.trim());
    if (m) steps[m[1]!] = Number(m[2]) * 1000;
  }
  return steps;
}

/** The waiting loop: Aurora resumes from a pause on the first connection (about 15 s). */
const WAIT = (probe: string) => `for i in $(seq 1 24); do ${probe} && break; sleep 5; done
${probe} || { echo "mlship-error the database $DB_HOST_SHOWN does not answer from the task's subnets"; exit ${RESTORE_EXIT.unreachable}; }`;

const PG_SCRIPT = `set -euo pipefail
export PGCONNECT_TIMEOUT=30 DB_HOST_SHOWN="$PGHOST:$PGPORT"
${WAIT('pg_isready -q')}
case "\${MLSHIP_ROW_HASH:-text}" in record) ;; *) MLSHIP_ROW_HASH=text ;; esac
verify() { psql -X -At -v ON_ERROR_STOP=1 -c "$MLSHIP_SETTINGS" -c "SET mlship.row_hash = '$MLSHIP_ROW_HASH'" -c "$MLSHIP_CHECK_SQL"; }
tables=$(psql -X -At -v ON_ERROR_STOP=1 -c "$MLSHIP_COUNT_SQL")
if [ "$tables" -gt 0 ] && [ "\${MLSHIP_REPLACE:-0}" != 1 ]; then
  verify
  echo "mlship-target-not-empty $tables"
  exit ${RESTORE_EXIT.notEmpty}
fi
${feedFunction()}
# One transaction, restored while the parts arrive. Into an empty target pg_restore writes
# straight into the server (no text round trip through psql): --single-transaction commits
# only once it read the dump to its end, whose last bytes the feed hands on only after the
# manifest; a bad part, a failed dump or no manifest end its input early, it stops on the
# error and the server rolls everything back. --replace drops the owner's schemas first, in
# the same transaction: that needs psql, which gets COMMIT only once pg_restore read the
# dump to its end (psql's input ending without it rolls everything back).
if [ "\${MLSHIP_REPLACE:-0}" = 1 ]; then
  { echo "BEGIN;"; echo "$MLSHIP_DROP_SQL"
    feed | pg_restore --no-owner --no-acl --clean --if-exists -f - && echo "COMMIT;"; } | psql -X -q -v ON_ERROR_STOP=1
else
  feed | pg_restore --no-owner --no-acl --single-transaction -d "$PGDATABASE"
fi
${STEP('restored')}
verify
${STEP('verified')}
echo mlship-restored`;

const MYSQL_SCRIPT = `set -euo pipefail
export DB_HOST_SHOWN="$DB_HOST:$DB_PORT"
conn=(-h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" "$DB_NAME")
${MYSQL_VERIFY_FUNCTION}
${WAIT('mysqladmin -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" --connect-timeout=10 ping >/dev/null 2>&1')}
tables=$(mysql "\${conn[@]}" -N -B -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")
if [ "$tables" -gt 0 ] && [ "\${MLSHIP_REPLACE:-0}" != 1 ]; then
  mlship_verify "\${conn[@]}"
  echo "mlship-target-not-empty $tables"
  exit ${RESTORE_EXIT.notEmpty}
fi
${feedFunction()}
# Every part first (plain SQL is not one transaction): nothing runs unless the dump came whole.
feed > ${DUMP_PATH}
{ if [ "\${MLSHIP_REPLACE:-0}" = 1 ]; then
    echo "SET FOREIGN_KEY_CHECKS = 0;"
    mysql "\${conn[@]}" -N -B -e "SELECT CONCAT('DROP TABLE IF EXISTS \\\`', table_name, '\\\`;') FROM information_schema.tables WHERE table_schema = DATABASE()"
    echo "SET FOREIGN_KEY_CHECKS = 1;"
  fi
  cat ${DUMP_PATH}; } | mysql "\${conn[@]}"
${STEP('restored')}
mlship_verify "\${conn[@]}"
${STEP('verified')}
echo mlship-restored`;

export function restoreScript(engine: DbEngine): string {
  return engine === 'postgres' ? PG_SCRIPT : MYSQL_SCRIPT;
}

/** Environment names of the restore container, each read from a key of the database secret. */
function secretEnvironment(engine: DbEngine): Record<string, string> {
  return engine === 'postgres'
    ? { PGHOST: 'host', PGPORT: 'port', PGUSER: 'username', PGPASSWORD: 'password', PGDATABASE: 'dbname' }
    : { DB_HOST: 'host', DB_PORT: 'port', DB_USER: 'username', MYSQL_PWD: 'password', DB_NAME: 'dbname' };
}

export interface RestoreTaskSpec {
  stack: string;
  region: string;
  accountId: string;
  db: ManagedDatabase;
  logGroup: string;
  roleArn: string;
  restoreImage: string;
  fetchImage: string;
}

export const secretArn = (s: { region: string; accountId: string; db: ManagedDatabase }) =>
  `arn:aws:secretsmanager:${s.region}:${s.accountId}:secret:${s.db.secretName}`;

export function restoreTaskDefinition(spec: RestoreTaskSpec): RegisterTaskDefinitionCommandInput {
  const logs: ContainerDefinition['logConfiguration'] = {
    logDriver: 'awslogs',
    options: {
      'awslogs-group': spec.logGroup,
      'awslogs-region': spec.region,
      'awslogs-stream-prefix': 'data',
    },
  };
  const mount = [{ sourceVolume: 'dump', containerPath: '/mlship-data' }];
  const pg = spec.db.engine === 'postgres';
  const environment = pg
    ? {
        MLSHIP_SETTINGS: PG_SETTINGS,
        MLSHIP_CHECK_SQL: PG_CHECK_SQL,
        MLSHIP_COUNT_SQL: PG_COUNT_TABLES_SQL,
        MLSHIP_DROP_SQL: PG_DROP_SQL,
      }
    : {};
  return {
    family: restoreFamily(spec.stack),
    networkMode: 'awsvpc',
    requiresCompatibilities: ['FARGATE'],
    cpu: '1024',
    memory: '2048',
    executionRoleArn: spec.roleArn,
    taskRoleArn: spec.roleArn,
    volumes: [{ name: 'dump' }],
    containerDefinitions: [
      {
        name: 'fetch',
        image: spec.fetchImage,
        essential: false,
        entryPoint: ['sh', '-c'],
        command: [FETCH_SCRIPT],
        mountPoints: mount,
        logConfiguration: logs,
      },
      {
        name: 'restore',
        image: spec.restoreImage,
        essential: true,
        entryPoint: ['bash', '-c'],
        command: [restoreScript(spec.db.engine)],
        // Alongside the fetch: the restore reads the parts as they arrive.
        dependsOn: [{ containerName: 'fetch', condition: 'START' }],
        mountPoints: mount,
        environment: Object.entries(environment).map(([name, value]) => ({ name, value })),
        secrets: Object.entries(secretEnvironment(spec.db.engine)).map(([name, key]) => ({
          name,
          valueFrom: `${secretArn(spec)}:${key}::`,
        })),
        logConfiguration: logs,
      },
    ],
    tags: [
      { key: 'mlship:stack', value: spec.stack },
      { key: 'mlship:managed', value: 'true' },
    ],
  };
}

/**
 * The role of the restore task (execution and task role at once): pull the images, write its
 * logs, read the database secret and the staged dumps; nothing else.
 */
export function dataRoleSpec(s: {
  stack: string;
  region: string;
  accountId: string;
  db: ManagedDatabase;
  bucket: string;
  kmsKeyId?: string;
}): ServiceRoleSpec {
  const statements: PolicyDocument['Statement'] = [
    {
      Sid: 'ReadDatabaseSecret',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: `${secretArn(s)}-??????`,
    },
    {
      Sid: 'ReadStagedDumps',
      Effect: 'Allow',
      Action: 's3:GetObject',
      Resource: `arn:aws:s3:::${s.bucket}/${DATA_PREFIX}/*`,
    },
    {
      // The fetch lists the staged dump's parts as they appear.
      Sid: 'ListStagedDumps',
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: `arn:aws:s3:::${s.bucket}`,
      Condition: { StringLike: { 's3:prefix': `${DATA_PREFIX}/*` } },
    },
  ];
  if (s.kmsKeyId) {
    const key = s.kmsKeyId.startsWith('arn:')
      ? s.kmsKeyId
      : `arn:aws:kms:${s.region}:${s.accountId}:${s.kmsKeyId.startsWith('alias/') ? s.kmsKeyId : `key/${s.kmsKeyId}`}`;
    statements.push({ Sid: 'DecryptStagedDumps', Effect: 'Allow', Action: 'kms:Decrypt', Resource: key });
  }
  return {
    name: dataRoleName(s.stack),
    service: 'ecs-tasks.amazonaws.com',
    description: `mlship: restores the database of stack ${s.stack} from its staged dump (data push)`,
    managedPolicies: [TASK_EXECUTION_POLICY],
    inlinePolicies: { 'mlship-data-push': { Version: '2012-10-17', Statement: statements } },
    tags: { 'mlship:stack': s.stack, 'mlship:managed': 'true' },
  };
}
