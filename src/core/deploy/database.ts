// The stack's database on AWS: "the first thing we don't want to manage". A PostgreSQL,
// MySQL or MariaDB service with a data volume (mlship.yaml `database:`, or such a compose
// service) is not run as a task whose volume dies with it: it becomes Aurora Serverless v2
// (pausing when idle) or one RDS instance. Here the stack is rewritten for that: the
// database service leaves the task definitions, and what its clients read (host, user,
// password, database, a connection URL) comes from the stack's database secret in Secrets
// Manager, key by key. The apply creates the database and fills the secret.

import { imageBaseName, tagMajor } from '../../config/image-ref.js';
import type { Project } from '../../config/schema.js';
import type { Stack, StackService, StackWarning } from '../../config/stack-model.js';
import { serviceWarning } from '../../config/stack-model.js';
import { awsName } from './names.js';

export type DbEngine = 'postgres' | 'mysql' | 'mariadb';

export interface DatabaseSettings {
  kind: 'aurora' | 'rds';
  minCapacity: number;
  maxCapacity: number;
  secondsUntilAutoPause: number;
  instanceClass: string;
  backupRetentionDays: number;
}

/** One database of the stack, as it will be created on AWS. */
export interface ManagedDatabase {
  /** The stack service it replaces. */
  service: string;
  engine: DbEngine;
  image: string;
  /** Major version named by the local image's tag (postgres:16 → 16); undefined: not named. */
  localMajor?: number;
  /** RDS engine: aurora-postgresql, aurora-mysql, postgres, mysql or mariadb. */
  awsEngine: string;
  settings: DatabaseSettings;
  /** Cluster identifier (Aurora) or instance identifier (RDS). */
  identifier: string;
  subnetGroup: string;
  securityGroup: string;
  database: string;
  username: string;
  port: number;
  /** Secrets Manager secret (JSON) every client reads its values from. */
  secretName: string;
  /** Secret keys holding a connection URL, with the form of the URL the client used locally. */
  urls: Record<string, string>;
  /** The local data volume (compose), for migrations. */
  volume?: string;
}

const DATA_DIRS: Record<DbEngine, string> = {
  postgres: '/var/lib/postgresql/data',
  mysql: '/var/lib/mysql',
  mariadb: '/var/lib/mysql',
};
const PORTS: Record<DbEngine, number> = { postgres: 5432, mysql: 3306, mariadb: 3306 };

function engineOf(image: string | undefined): DbEngine | undefined {
  const base = image ? imageBaseName(image) : undefined;
  if (base === 'postgres' || base === 'postgis') return 'postgres';
  if (base === 'mysql') return 'mysql';
  if (base === 'mariadb') return 'mariadb';
  return undefined;
}

const DEFAULT_SETTINGS: DatabaseSettings = {
  kind: 'aurora',
  minCapacity: 0,
  maxCapacity: 2,
  secondsUntilAutoPause: 300,
  instanceClass: 'db.t4g.micro',
  backupRetentionDays: 7,
};

/** The settings of a service: mlship.yaml `database.aws`, a compose `x-mlship.aws`, else the defaults. */
function settingsOf(svc: StackService, project: Project | undefined): DatabaseSettings | 'container' {
  const raw = (project?.database?.aws ?? svc.extensions?.aws) as Record<string, unknown> | undefined;
  const kind = (raw?.kind as string | undefined) ?? 'aurora';
  if (kind === 'container') return 'container';
  const num = (k: string, fallback: number) => (typeof raw?.[k] === 'number' ? (raw[k] as number) : fallback);
  return {
    kind: kind === 'rds' ? 'rds' : 'aurora',
    minCapacity: num('min_capacity', DEFAULT_SETTINGS.minCapacity),
    maxCapacity: num('max_capacity', DEFAULT_SETTINGS.maxCapacity),
    secondsUntilAutoPause: num('seconds_until_auto_pause', DEFAULT_SETTINGS.secondsUntilAutoPause),
    instanceClass:
      typeof raw?.instance_class === 'string' ? raw.instance_class : DEFAULT_SETTINGS.instanceClass,
    backupRetentionDays: num('backup_retention_days', DEFAULT_SETTINGS.backupRetentionDays),
  };
}

const first = (env: Record<string, string>, keys: string[]) => keys.map((k) => env[k]).find((v) => v);

/** The database's name and user, as the local container was told them. */
function identity(svc: StackService, engine: DbEngine, project: Project | undefined) {
  if (project?.database && svc.role === 'database') {
    return { database: project.database.database, username: project.database.user };
  }
  const env = svc.environment;
  return engine === 'postgres'
    ? {
        database: first(env, ['POSTGRES_DB']) ?? 'postgres',
        username: first(env, ['POSTGRES_USER']) ?? 'postgres',
      }
    : {
        database: first(env, ['MYSQL_DATABASE', 'MARIADB_DATABASE']) ?? 'app',
        username: first(env, ['MYSQL_USER', 'MARIADB_USER']) ?? 'admin',
      };
}

/** Aurora speaks PostgreSQL or MySQL: MariaDB goes to aurora-mysql (MySQL 8.0 compatible), RDS keeps it. */
function awsEngineOf(engine: DbEngine, kind: 'aurora' | 'rds'): string {
  if (kind === 'rds') return engine;
  return engine === 'postgres' ? 'aurora-postgresql' : 'aurora-mysql';
}

export function databaseNames(stack: string) {
  return {
    identifier: awsName(`mlship-${stack}-db`, 63).toLowerCase(),
    subnetGroup: awsName(`mlship-${stack}-db`, 255).toLowerCase(),
    securityGroup: `${stack}-db`,
    secretName: `${stack}/database`,
  };
}

/** Whether a service is a database with data to keep: a known engine with its data directory on a volume. */
export function isManagedCandidate(svc: StackService): DbEngine | undefined {
  const engine = engineOf(svc.image);
  if (!engine) return undefined;
  const volume = svc.volumes.find(
    (v) => v.type === 'volume' && v.source && v.target.replace(/\/$/, '') === DATA_DIRS[engine],
  );
  return volume ? engine : undefined;
}

export interface ManagedStack {
  stack: Stack;
  databases: ManagedDatabase[];
  warnings: StackWarning[];
}

/**
 * The stack with its databases managed: each database service removed, each of its clients'
 * settings that name it (its host, a URL, its password) read from the database secret.
 */
export function manageDatabases(
  stack: Stack,
  project: Project | undefined,
  options: { region: string; accountId: string; keepContainers: boolean },
): ManagedStack {
  if (options.keepContainers) return { stack, databases: [], warnings: [] };
  const databases: ManagedDatabase[] = [];
  const warnings: StackWarning[] = [];
  let services = stack.services;
  for (const svc of stack.services) {
    const engine = isManagedCandidate(svc);
    if (!engine) continue;
    const settings = settingsOf(svc, project);
    if (settings === 'container') continue;
    if (databases.length) {
      warnings.push(
        serviceWarning(
          stack,
          svc,
          'image',
          'a second database service stays a task: mlship manages one database per stack',
          'point it at the first one, or deploy it separately',
        ),
      );
      continue;
    }
    const names = databaseNames(stack.name);
    const { database, username } = identity(svc, engine, project);
    const localMajor = tagMajor(svc.image!);
    if (engine === 'mariadb' && settings.kind === 'aurora') {
      warnings.push(
        serviceWarning(
          stack,
          svc,
          'image',
          'MariaDB becomes Aurora MySQL (MySQL 8.0 compatible): check your SQL and migrate with mysqldump',
          'x-mlship: { aws: { kind: rds } } keeps MariaDB on RDS',
        ),
      );
    }
    const db: ManagedDatabase = {
      service: svc.name,
      engine,
      image: svc.image!,
      ...(localMajor !== undefined ? { localMajor } : {}),
      awsEngine: awsEngineOf(engine, settings.kind),
      settings,
      ...names,
      database,
      username,
      port: PORTS[engine],
      urls: {},
      ...(svc.volumes.find((v) => v.type === 'volume')?.source
        ? { volume: svc.volumes.find((v) => v.type === 'volume')!.source! }
        : {}),
    };
    databases.push(db);
    services = services.filter((s) => s !== svc).map((s) => rewriteClient(s, db, project, options));
  }
  return { stack: { ...stack, services }, databases, warnings };
}

const secretRef = (db: ManagedDatabase, key: string, options: { region: string; accountId: string }) =>
  `arn:aws:secretsmanager:${options.region}:${options.accountId}:secret:${db.secretName}:${key}::`;

/** A URL naming the database host: its form kept, with the cloud's host and credentials filled in. */
function urlTemplate(value: string, db: ManagedDatabase): string | undefined {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^@/]*@)?([^:/?#]+)(?::\d+)?(\/[^?#]*)?(.*)$/i.exec(value);
  if (!m || m[2] !== db.service) return undefined;
  return `${m[1]}{username}:{password}@{host}:{port}${m[3] ?? `/{dbname}`}${m[4] ?? ''}`;
}

function rewriteClient(
  s: StackService,
  db: ManagedDatabase,
  project: Project | undefined,
  options: { region: string; accountId: string },
): StackService {
  const environment = { ...s.environment };
  const secretFrom = { ...(s.secretFrom ?? {}) };
  let secretEnv = [...s.secretEnv];
  const fromSecret = (variable: string, key: string) => {
    delete environment[variable];
    secretEnv = secretEnv.filter((v) => v !== variable);
    secretFrom[variable] = secretRef(db, key, options);
  };
  for (const [k, v] of Object.entries(s.environment)) {
    if (v === db.service) fromSecret(k, 'host');
    const url = urlTemplate(v, db);
    if (url) {
      db.urls[`${s.name}.${k}`] = url;
      fromSecret(k, `${s.name}.${k}`);
    }
  }
  const usesDb = s.dependsOn.some((d) => d.service === db.service) || Object.keys(secretFrom).length > 0;
  for (const k of s.secretEnv) {
    if (project?.database && k === 'DATABASE_URL') {
      // mlship's own convention (compose-stack.ts): postgresql://user:${POSTGRES_PASSWORD}@database:5432/db.
      db.urls[`${s.name}.${k}`] = 'postgresql://{username}:{password}@{host}:{port}/{dbname}';
      fromSecret(k, `${s.name}.${k}`);
    } else if (usesDb && /PASS(WORD|WD)?$/i.test(k)) {
      fromSecret(k, 'password');
    }
  }
  return {
    ...s,
    environment,
    secretEnv,
    ...(Object.keys(secretFrom).length ? { secretFrom } : {}),
    // The database is no task: nothing to wait for, its availability is the apply's.
    dependsOn: s.dependsOn.filter((d) => d.service !== db.service),
  };
}

/** The secret's value for a database: the standard keys and each client's URL. */
export function secretValue(
  db: ManagedDatabase,
  values: { password: string; host: string },
): Record<string, string> {
  const base = {
    engine: db.engine,
    username: db.username,
    password: values.password,
    host: values.host,
    port: String(db.port),
    dbname: db.database,
  };
  const fill = (t: string) =>
    t
      .replace('{username}', encodeURIComponent(base.username))
      .replace('{password}', encodeURIComponent(base.password))
      .replace('{host}', base.host)
      .replace('{port}', base.port)
      .replace('{dbname}', base.dbname);
  return { ...base, ...Object.fromEntries(Object.entries(db.urls).map(([k, t]) => [k, fill(t)])) };
}
