// The one-off ECS task that restores the stack's database from inside the VPC (the database
// is private: the laptop never reaches it, and `data push` does not open it). Two containers
// share a task volume: `fetch` (the official AWS CLI image) copies the staged dump out of
// the stack's bucket with the task role; `restore` (the official image of the cloud's
// engine major, whose pg_restore/mysql read dumps of that major and older) refuses a target
// that has tables unless --replace, restores in one transaction (a failed or stopped restore
// leaves nothing behind), and prints the verify lines of what it restored. The official
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
export const DEFAULT_FETCH_IMAGE = 'public.ecr.aws/aws-cli/aws-cli:latest';
/** Exit codes of the restore script that mean something to mlship. */
export const RESTORE_EXIT = { notEmpty: 3, unreachable: 4, dumpChecksum: 5 } as const;

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

/** The waiting loop: Aurora resumes from a pause on the first connection (about 15 s). */
const WAIT = (probe: string) => `for i in $(seq 1 24); do ${probe} && break; sleep 5; done
${probe} || { echo "mlship-error the database $DB_HOST_SHOWN does not answer from the task's subnets"; exit ${RESTORE_EXIT.unreachable}; }`;

const CHECK_DUMP = `echo "$MLSHIP_DUMP_SHA256  ${DUMP_PATH}" | sha256sum -c --status || { echo "mlship-error the dump does not match its SHA-256"; exit ${RESTORE_EXIT.dumpChecksum}; }`;

const PG_SCRIPT = `set -euo pipefail
export PGCONNECT_TIMEOUT=30 DB_HOST_SHOWN="$PGHOST:$PGPORT"
${WAIT('pg_isready -q')}
verify() { psql -X -At -v ON_ERROR_STOP=1 -c "$MLSHIP_SETTINGS" -c "$MLSHIP_CHECK_SQL"; }
tables=$(psql -X -At -v ON_ERROR_STOP=1 -c "$MLSHIP_COUNT_SQL")
if [ "$tables" -gt 0 ] && [ "\${MLSHIP_REPLACE:-0}" != 1 ]; then
  verify
  echo "mlship-target-not-empty $tables"
  exit ${RESTORE_EXIT.notEmpty}
fi
${CHECK_DUMP}
clean=""
if [ "\${MLSHIP_REPLACE:-0}" = 1 ]; then clean="--clean --if-exists"; fi
# One transaction: the replaced schemas come back if anything fails.
{ if [ "\${MLSHIP_REPLACE:-0}" = 1 ]; then echo "$MLSHIP_DROP_SQL"; fi
  pg_restore --no-owner --no-acl $clean -f - ${DUMP_PATH}; } | psql -X -q -v ON_ERROR_STOP=1 --single-transaction
verify
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
${CHECK_DUMP}
{ if [ "\${MLSHIP_REPLACE:-0}" = 1 ]; then
    echo "SET FOREIGN_KEY_CHECKS = 0;"
    mysql "\${conn[@]}" -N -B -e "SELECT CONCAT('DROP TABLE IF EXISTS \\\`', table_name, '\\\`;') FROM information_schema.tables WHERE table_schema = DATABASE()"
    echo "SET FOREIGN_KEY_CHECKS = 1;"
  fi
  cat ${DUMP_PATH}; } | mysql "\${conn[@]}"
mlship_verify "\${conn[@]}"
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
  /** Task storage for the dump (Fargate gives 20 GiB; up to 200). */
  dumpBytes: number;
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
  const neededGiB = Math.ceil((spec.dumpBytes * 1.1) / 1024 ** 3) + 2;
  return {
    family: restoreFamily(spec.stack),
    networkMode: 'awsvpc',
    requiresCompatibilities: ['FARGATE'],
    cpu: '1024',
    memory: '2048',
    executionRoleArn: spec.roleArn,
    taskRoleArn: spec.roleArn,
    ...(neededGiB > 20 ? { ephemeralStorage: { sizeInGiB: Math.min(200, neededGiB) } } : {}),
    volumes: [{ name: 'dump' }],
    containerDefinitions: [
      {
        name: 'fetch',
        image: spec.fetchImage,
        essential: false,
        entryPoint: ['sh', '-c'],
        command: [`aws s3 cp --only-show-errors "$MLSHIP_DUMP_URL" ${DUMP_PATH} && echo mlship-fetched`],
        mountPoints: mount,
        logConfiguration: logs,
      },
      {
        name: 'restore',
        image: spec.restoreImage,
        essential: true,
        entryPoint: ['bash', '-c'],
        command: [restoreScript(spec.db.engine)],
        dependsOn: [{ containerName: 'fetch', condition: 'SUCCESS' }],
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
