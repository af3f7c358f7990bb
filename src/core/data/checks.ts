// What "nothing was lost" means for a database push: per table, its row count and a content
// checksum computed on both sides by the same program (the same SQL text locally and in the
// restore task), printed as `mlship-verify <table> <rows> <checksum>` lines and compared.
// The checksum is the sum of a 60-bit hash of every row's text (hashtextextended), so it
// ignores row order but sees every changed, missing or duplicated row. The session settings that change how
// values print (time zone, date and bytea formats, float digits) are fixed first.

import type { DbEngine } from '../deploy/database.js';

export interface TableCheck {
  table: string;
  rows: number;
  checksum: string;
}

export const VERIFY_PREFIX = 'mlship-verify ';

/** PostgreSQL: the settings that make every value print the same way on both servers. */
export const PG_SETTINGS =
  "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; SET extra_float_digits = 1";

/** The user's tables: not the catalogs', not those an extension created (pgcrypto, citext...). */
const PG_USER_TABLES = `FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

export const PG_COUNT_TABLES_SQL = `SELECT count(*) ${PG_USER_TABLES}`;

/**
 * The row hash: PostgreSQL's own 64-bit text hash (`hashtextextended`, PG 11+, the hash of
 * hash partitioning, which needs it stable across versions; the same on x86 and Graviton,
 * both little-endian), cut to 60 bits so the sum stays positive. It is cheaper than the
 * md5 + hex parsing it replaced (the row's text itself is most of what remains; see
 * docs/benchmarks.md). Not a cryptographic hash: it catches a lost, duplicated or altered
 * row, not a forged one (nobody forges rows in their own dump).
 */
const HASH_60_BITS = '1152921504606846975';

/**
 * One statement for every table (query_to_xml runs the per-table query), so it also runs in
 * the read-only transaction whose snapshot the dump is taken from.
 */
export const PG_CHECK_SQL = `SELECT '${VERIFY_PREFIX}' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' '
  || (xpath('/row/r/text()', x))[1]::text || ' ' || (xpath('/row/s/text()', x))[1]::text
${PG_USER_TABLES.replace(
  'WHERE',
  `CROSS JOIN LATERAL query_to_xml(format(
  'SELECT count(*) AS r, coalesce(sum(hashtextextended(t::text COLLATE "C", 0) & ${HASH_60_BITS}), 0) AS s FROM %I.%I t',
  n.nspname, c.relname), false, true, '') AS x
WHERE`,
)}
ORDER BY 1`;

/**
 * MySQL/MariaDB: a shell function (the mysql client runs one query per table, its columns
 * hexed so every type prints the same way), used by the local dump and the restore task.
 * Expects MYSQL_PWD in the environment and the connection in the function's arguments.
 */
export const MYSQL_VERIFY_FUNCTION = `mlship_verify() {
  for t in $(mysql "$@" -N -B -e "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1"); do
    cols=$(mysql "$@" -N -B -e "SELECT GROUP_CONCAT(CONCAT('COALESCE(HEX(\\\`', column_name, '\\\`), ''-'')') ORDER BY ordinal_position SEPARATOR ',') FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '$t'")
    mysql "$@" -N -B -e "SELECT CONCAT('${VERIFY_PREFIX}', '$t', ' ', COUNT(*), ' ', COALESCE(SUM(CAST(CONV(SUBSTR(MD5(CONCAT_WS('|', $cols)), 1, 15), 16, 10) AS UNSIGNED)), 0)) FROM \\\`$t\\\`"
  done
}`;

/** The verify lines of a log (container output or CloudWatch), by table. */
export function parseChecks(lines: string[]): TableCheck[] {
  const out: TableCheck[] = [];
  for (const line of lines) {
    const m = /^mlship-verify (.+) (\d+) (\d+)\s*$/.exec(line.trim());
    if (m) out.push({ table: m[1]!, rows: Number(m[2]), checksum: m[3]! });
  }
  return out;
}

export interface TableDifference {
  table: string;
  local?: { rows: number; checksum: string };
  cloud?: { rows: number; checksum: string };
  /** rows: different counts; content: same count, other content; missing / extra table. */
  kind: 'rows' | 'content' | 'missing' | 'extra';
}

/** Every difference between the two sides; none means the copy is exact. */
export function compareChecks(local: TableCheck[], cloud: TableCheck[]): TableDifference[] {
  const byTable = new Map(cloud.map((c) => [c.table, c]));
  const diffs: TableDifference[] = [];
  for (const l of local) {
    const c = byTable.get(l.table);
    const side = (x: TableCheck) => ({ rows: x.rows, checksum: x.checksum });
    if (!c) diffs.push({ table: l.table, local: side(l), kind: 'missing' });
    else if (c.rows !== l.rows) diffs.push({ table: l.table, local: side(l), cloud: side(c), kind: 'rows' });
    else if (c.checksum !== l.checksum)
      diffs.push({ table: l.table, local: side(l), cloud: side(c), kind: 'content' });
    byTable.delete(l.table);
  }
  for (const c of byTable.values())
    diffs.push({ table: c.table, cloud: { rows: c.rows, checksum: c.checksum }, kind: 'extra' });
  return diffs;
}

export function describeDifference(d: TableDifference): string {
  switch (d.kind) {
    case 'missing':
      return `table ${d.table}: missing in the cloud (${d.local!.rows} rows locally)`;
    case 'extra':
      return `table ${d.table}: in the cloud only (${d.cloud!.rows} rows)`;
    case 'rows':
      return `table ${d.table}: ${d.local!.rows} rows locally, ${d.cloud!.rows} in the cloud`;
    default:
      return `table ${d.table}: same ${d.local!.rows} rows, different content (checksum ${d.local!.checksum} locally, ${d.cloud!.checksum} in the cloud)`;
  }
}

export const isPostgres = (engine: DbEngine) => engine === 'postgres';
