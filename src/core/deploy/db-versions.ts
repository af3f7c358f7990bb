// The engine versions RDS offers, as a bundled and dated table: used only when the
// region's own list (DescribeDBEngineVersions) cannot be read, e.g. from an emulator that
// does not implement it. `scalesToZero`: Aurora Serverless v2 pauses at 0 ACU from
// PostgreSQL 13.15, 14.12, 15.7, 16.3 and Aurora MySQL 3.08.0 (AWS release notes).

export const ENGINE_VERSIONS_DATE = '2025-11-01';

type Versions = { version: string; scalesToZero?: boolean }[];

const pg = (versions: string[], zeroFrom: Record<number, number>): Versions =>
  versions.map((v) => {
    const [major, minor] = v.split('.').map(Number);
    const from = zeroFrom[major!];
    return { version: v, scalesToZero: from !== undefined && (minor ?? 0) >= from };
  });

export const BUNDLED_ENGINE_VERSIONS: Record<string, Versions> = {
  'aurora-postgresql': pg(
    ['13.15', '13.20', '14.12', '14.17', '15.7', '15.12', '16.3', '16.6', '16.8', '17.4'],
    { 13: 15, 14: 12, 15: 7, 16: 3, 17: 0 },
  ),
  'aurora-mysql': [
    { version: '8.0.mysql_aurora.3.07.1', scalesToZero: false },
    { version: '8.0.mysql_aurora.3.08.0', scalesToZero: true },
    { version: '8.0.mysql_aurora.3.09.0', scalesToZero: true },
  ],
  postgres: ['13.20', '14.17', '15.12', '16.8', '17.4'].map((version) => ({ version })),
  mysql: ['8.0.41', '8.4.4'].map((version) => ({ version })),
  mariadb: ['10.6.21', '10.11.11', '11.4.5'].map((version) => ({ version })),
};
