#!/bin/sh
# Minimal version of the official image's entrypoint: initialise once, then run.
set -eu
if [ "${1:-}" != "postgres" ]; then exec "$@"; fi
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
USER_NAME=${POSTGRES_USER:-postgres}
DB_NAME=${POSTGRES_DB:-$USER_NAME}
mkdir -p "$PGDATA" && chown -R postgres "$PGDATA" && chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp) && echo "$POSTGRES_PASSWORD" > "$pwfile" && chown postgres "$pwfile"
  su postgres -c "initdb -D $PGDATA --username=$USER_NAME --pwfile=$pwfile --auth-host=scram-sha-256 --auth-local=trust" >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  su postgres -c "pg_ctl -D $PGDATA -o '-c listen_addresses=' -w start" >/dev/null
  if [ "$DB_NAME" != "postgres" ]; then
    su postgres -c "psql -v ON_ERROR_STOP=1 --username=$USER_NAME --dbname=postgres -c 'CREATE DATABASE \"$DB_NAME\"'" >/dev/null
  fi
  su postgres -c "pg_ctl -D $PGDATA -m fast -w stop" >/dev/null
fi
exec su postgres -c "exec postgres -D $PGDATA -c listen_addresses=*"
