// What "nothing was lost" means for a database push: per table, its row count and a content
// checksum computed on both sides by the same program (the same SQL text locally and in the
// restore task), printed as `mlship-verify <table> <rows> <checksum>` lines and compared.
// The checksum is the sum of a 60-bit hash of every row, so it ignores row order but sees
// every changed, missing or duplicated row. The session settings that change how values
// print (time zone, date and bytea formats, float digits) are fixed first.

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
 * How a row is hashed, the same on both sides (the pusher chooses, the restore task is told):
 * - `record` (PostgreSQL 14+ on the source, hence on the target): `hash_record_extended` over
 *   the row's values, each hashed by its type's own 64-bit extended hash where that type's
 *   equality is the identity of the value (integers, bool, dates and times, uuid, bytea, and
 *   text/varchar compared as bytes under "C"), every other column by the hash of its text
 *   (numeric, jsonb, citext, float, arrays...: types whose equality would hide a changed
 *   text, e.g. 1.0 = 1.00, or that have no hash). No value is printed as text unless it must
 *   be: 2.3-2.7x less CPU than `text` on rows of integers, text and timestamps, 1.6x with a
 *   jsonb column (still hashed by its text) beside them (docs/benchmarks.md).
 * - `text`: the hash of the whole row's text (older sources, which lack hash_record_extended).
 * Both use the extended hashes of hash partitioning, which must stay the same across versions
 * and on x86 and Graviton (both little-endian). Not a cryptographic hash: it catches a lost,
 * duplicated or altered row, not a forged one (nobody forges rows in their own dump).
 */
export type RowHash = 'record' | 'text';

/** `record` where the source (and so the target, never older) has hash_record_extended. */
export const rowHashFor = (sourceMajor: string): RowHash => (Number(sourceMajor) >= 14 ? 'record' : 'text');

/** The statement that tells the check SQL which row hash to use (a session setting). */
export const rowHashSetting = (mode: RowHash) =>
  `SET mlship.row_hash = '${mode === 'record' ? 'record' : 'text'}'`;

/** The sum stays positive: each row's hash cut to 60 bits. */
const HASH_60_BITS = '1152921504606846975';

/** Columns hashed as values: equality is identity for these types. */
const VALUE_TYPES = '{bool,int2,int4,int8,oid,date,time,timestamp,timestamptz,uuid,bytea}';
const TEXT_TYPES = '{text,varchar}';

/**
 * The row hash's SQL expression for table `c` (of alias `t`), by the session's row_hash. The
 * whole row is `(t.*)`: a bare `t` would be a column named t where the table has one.
 */
const ROW_HASH_EXPR = `coalesce(CASE current_setting('mlship.row_hash', true) WHEN 'record' THEN (
  SELECT 'hash_record_extended(ROW(' || string_agg(CASE
      WHEN a.atttypid = ANY ('${VALUE_TYPES}'::regtype[]) THEN format('t.%I', a.attname)
      WHEN a.atttypid = ANY ('${TEXT_TYPES}'::regtype[]) THEN format('t.%I COLLATE "C"', a.attname)
      ELSE format('t.%I::text COLLATE "C"', a.attname) END, ', ' ORDER BY a.attnum) || '), 0)'
  FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) END,
  'hashtextextended((t.*)::text COLLATE "C", 0)')`;

/**
 * One statement for every table (query_to_xml runs the per-table query), so it also runs in
 * the read-only transaction whose snapshot the dump is taken from.
 */
export const PG_CHECK_SQL = `SELECT '${VERIFY_PREFIX}' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' '
  || (xpath('/row/r/text()', x))[1]::text || ' ' || (xpath('/row/s/text()', x))[1]::text
${PG_USER_TABLES.replace(
  'WHERE',
  `CROSS JOIN LATERAL query_to_xml(format(
  'SELECT count(*) AS r, coalesce(sum(%s & ${HASH_60_BITS}), 0) AS s FROM %I.%I t',
  ${ROW_HASH_EXPR}, n.nspname, c.relname), false, true, '') AS x
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
