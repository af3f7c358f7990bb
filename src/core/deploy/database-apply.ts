// `deploy ecs --apply` for the stack's database: the engine version the region offers for
// the local major (checked before anything is created), a subnet group over the tasks'
// subnets, a security group that admits only the tasks, the database itself (Aurora
// Serverless v2 or RDS; encrypted, private, backed up, protected from deletion), and the
// secret its clients read. The password is generated once, kept only in Secrets Manager,
// never printed or written; a re-run changes only what differs (capacity, backups).

import { randomBytes } from 'node:crypto';
import { realClock } from '../../io/clock.js';
import { OperationFailedError, UsageError } from '../../io/errors.js';
import type { DbState } from './aws-apis.js';
import { type ManagedDatabase, secretValue } from './database.js';
import { BUNDLED_ENGINE_VERSIONS, ENGINE_VERSIONS_DATE } from './db-versions.js';
import type { ApplyDeps, DeployNetwork } from './deps.js';

export interface DatabaseResult {
  identifier: string;
  kind: 'aurora' | 'rds';
  engine: string;
  engineVersion: string;
  created: boolean;
  changed: string[];
  secret: string;
  endpoint?: string;
}

const tagsOf = (stack: string) => ({ 'mlship:stack': stack, 'mlship:managed': 'true' });

/**
 * The version to create: the newest of the local major the region offers (for Aurora with a
 * minimum of 0, one that pauses). The region's list comes from DescribeDBEngineVersions; an
 * endpoint that cannot answer it (an emulator) gets the bundled, dated table, said in the log.
 */
export async function chooseEngineVersion(db: ManagedDatabase, deps: ApplyDeps): Promise<string> {
  let offered: { version: string; scalesToZero?: boolean }[];
  try {
    offered = await deps.aws.rds.engineVersions(db.awsEngine);
  } catch (e) {
    if (!(e instanceof OperationFailedError)) throw e;
    const why = e.message.split('\n')[0]!.slice(0, 160);
    deps.log(
      `the region's ${db.awsEngine} versions could not be read (${why}); using the table of ${ENGINE_VERSIONS_DATE}`,
    );
    offered = BUNDLED_ENGINE_VERSIONS[db.awsEngine] ?? [];
  }
  const majorOf = (v: string) => Number(v.split('.')[0]);
  const byNewest = [...offered].sort((a, b) =>
    b.version.localeCompare(a.version, undefined, { numeric: true }),
  );
  const majors = [
    ...new Set(
      byNewest.map((v) => majorOf(db.awsEngine === 'aurora-mysql' ? mysqlOf(v.version) : v.version)),
    ),
  ];
  const wanted =
    db.localMajor ?? (db.engine === 'mariadb' && db.awsEngine === 'aurora-mysql' ? 8 : majors[0]);
  const ofMajor = byNewest.filter(
    (v) => majorOf(db.awsEngine === 'aurora-mysql' ? mysqlOf(v.version) : v.version) === wanted,
  );
  const name = `${db.engine} ${wanted}`;
  if (!ofMajor.length) {
    const newer = wanted !== undefined && majors.length && wanted > majors[0]!;
    throw new UsageError(
      `${name} (the local image ${db.image}) is ${newer ? 'newer than' : 'not among'} what the region offers for ${db.awsEngine} (${majors.join(', ') || 'nothing'})`,
      {
        hint: newer
          ? `use ${db.engine}:${majors[0]} locally (dump, recreate the volume, restore), or deploy to a region that offers ${wanted}`
          : `upgrade the local database to ${Math.min(...majors.filter((m) => m > (wanted ?? 0)), majors[0] ?? 0)} first (pg_upgrade, or dump and restore into a new volume), then deploy`,
      },
    );
  }
  if (db.settings.kind === 'aurora' && db.settings.minCapacity === 0) {
    const pausing = ofMajor.find((v) => v.scalesToZero !== false);
    if (!pausing) {
      throw new UsageError(`no ${db.awsEngine} ${wanted} version of the region pauses at 0 capacity`, {
        hint: 'set database.aws.min_capacity: 0.5 (it then never pauses), or use a major whose versions pause',
      });
    }
    return pausing.version;
  }
  return ofMajor[0]!.version;
}

/** Aurora MySQL 3.x is MySQL 8.0, 2.x is 5.7: versions like 8.0.mysql_aurora.3.08.0. */
function mysqlOf(version: string): string {
  return version.includes('mysql_aurora')
    ? version.split('.mysql_aurora')[0]!
    : version.startsWith('3.')
      ? '8.0'
      : '5.7';
}

async function databaseNetwork(db: ManagedDatabase, deps: ApplyDeps, network: DeployNetwork, stack: string) {
  const subnets = await deps.aws.ec2.subnets(network.subnets);
  const zones = new Set(subnets.map((s) => s.zone));
  if (zones.size < 2) {
    throw new UsageError('the database needs subnets in two Availability Zones at least (RDS requires it)', {
      hint: 'pass --subnets with one subnet in another zone',
    });
  }
  const vpcId = subnets[0]!.vpcId;
  await deps.aws.rds.ensureSubnetGroup(db.subnetGroup, network.subnets, tagsOf(stack));
  const sg = await deps.aws.ec2.ensureSecurityGroup({
    vpcId,
    name: db.securityGroup,
    description: `mlship: the database of stack ${stack}, reachable from its tasks only`,
  });
  for (const group of network.securityGroups) {
    await deps.aws.ec2.allowIngress(sg.id, {
      port: db.port,
      fromGroup: group,
      description: `mlship: tasks of stack ${stack}`,
    });
  }
  return sg.id;
}

/** Waits until the database answers (minutes on AWS), with a line per change of status. */
async function waitAvailable(db: ManagedDatabase, deps: ApplyDeps, timeoutSeconds: number): Promise<DbState> {
  const clock = deps.clock ?? realClock;
  const deadline = clock.now() + timeoutSeconds * 1000;
  let last = '';
  for (;;) {
    const state = await deps.aws.rds.describe(db.settings.kind, db.identifier);
    if (state?.status === 'available') return state;
    if (state && state.status !== last) {
      deps.log(`database ${db.identifier}: ${state.status}`);
      last = state.status;
    }
    if (clock.now() > deadline) {
      throw new OperationFailedError(
        'DATABASE_NOT_AVAILABLE',
        `database ${db.identifier} is still ${state?.status ?? 'missing'} after ${timeoutSeconds} s`,
        { hint: 'run --apply again later: it continues from here' },
      );
    }
    await clock.sleep(15_000);
  }
}

function capacityChanges(db: ManagedDatabase, state: DbState): string[] {
  const s = db.settings;
  if (s.kind !== 'aurora' || !state.scaling) return [];
  const out: string[] = [];
  if (state.scaling.minCapacity !== s.minCapacity)
    out.push(`min capacity ${state.scaling.minCapacity} → ${s.minCapacity}`);
  if (state.scaling.maxCapacity !== s.maxCapacity)
    out.push(`max capacity ${state.scaling.maxCapacity} → ${s.maxCapacity}`);
  if (
    s.minCapacity === 0 &&
    state.scaling.secondsUntilAutoPause !== undefined &&
    state.scaling.secondsUntilAutoPause !== s.secondsUntilAutoPause
  )
    out.push(`auto-pause ${state.scaling.secondsUntilAutoPause} s → ${s.secondsUntilAutoPause} s`);
  return out;
}

export async function ensureDatabase(
  db: ManagedDatabase,
  stack: string,
  engineVersion: string,
  deps: ApplyDeps,
  network: DeployNetwork,
  options: { waitTimeoutSeconds?: number },
): Promise<DatabaseResult> {
  const { rds, secrets } = deps.aws;
  const securityGroup = await databaseNetwork(db, deps, network, stack);
  const existingSecret = await secrets.jsonSecret(db.secretName);
  // Generated once; a re-run reads it back. URL-safe, so it needs no quoting in a URL.
  const password = existingSecret?.password ?? randomBytes(24).toString('base64url');
  const s = db.settings;
  let state = await rds.describe(s.kind, db.identifier);
  const changed: string[] = [];
  const created = !state;
  if (state && !state.managed) {
    throw new OperationFailedError(
      'DATABASE_NOT_OURS',
      `database ${db.identifier} exists and was not created by mlship`,
      {
        hint: 'mlship leaves it alone: rename the stack, or delete that database yourself',
      },
    );
  }
  if (!state) {
    // The secret first: a run stopped after the create finds the password it was created with.
    if (!existingSecret)
      await secrets.putJsonSecret(db.secretName, secretValue(db, { password, host: '' }), tagsOf(stack));
    await rds.create({
      identifier: db.identifier,
      kind: s.kind,
      engine: db.awsEngine,
      engineVersion,
      database: db.database,
      username: db.username,
      password,
      port: db.port,
      subnetGroup: db.subnetGroup,
      securityGroups: [securityGroup],
      backupRetentionDays: s.backupRetentionDays,
      ...(s.kind === 'aurora'
        ? {
            scaling: {
              minCapacity: s.minCapacity,
              maxCapacity: s.maxCapacity,
              secondsUntilAutoPause: s.secondsUntilAutoPause,
            },
          }
        : { instanceClass: s.instanceClass }),
      tags: tagsOf(stack),
    });
    deps.log(
      `database ${db.identifier}: creating (${db.awsEngine} ${engineVersion}${s.kind === 'aurora' ? `, ${s.minCapacity}-${s.maxCapacity} ACU` : `, ${s.instanceClass}`})`,
    );
  } else {
    changed.push(...capacityChanges(db, state));
    if (changed.length) {
      await rds.modify(s.kind, db.identifier, {
        scaling: {
          minCapacity: s.minCapacity,
          maxCapacity: s.maxCapacity,
          secondsUntilAutoPause: s.secondsUntilAutoPause,
        },
      });
      deps.log(`database ${db.identifier}: ${changed.join(', ')}`);
    }
  }
  if (s.kind === 'aurora') await rds.ensureWriter(db.identifier, db.awsEngine, tagsOf(stack));
  state = await waitAvailable(db, deps, options.waitTimeoutSeconds ?? 1800);
  const value = secretValue(db, { password, host: state.endpoint ?? '' });
  if (JSON.stringify(value) !== JSON.stringify(existingSecret))
    await secrets.putJsonSecret(db.secretName, value, tagsOf(stack));
  return {
    identifier: db.identifier,
    kind: s.kind,
    engine: db.awsEngine,
    engineVersion: state.engineVersion ?? engineVersion,
    created,
    changed,
    secret: db.secretName,
    ...(state.endpoint ? { endpoint: state.endpoint } : {}),
  };
}
