#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d): the
# Workspace service's own role and database. Temporal's databases are created by
# deploy/temporal/setup-schema.sh. The password comes from $WORKSPACE_DB_PASSWORD, the one
# WORKSPACE_DATABASE_URL in docker-compose.yml carries; psql quotes it (:'password').
# Changing it later: ALTER ROLE workspace PASSWORD '...' (this script does not run again).
set -e
password="${WORKSPACE_DB_PASSWORD:?set WORKSPACE_DB_PASSWORD (docs/operations.md)}"
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v password="$password" <<'SQL'
CREATE ROLE workspace LOGIN PASSWORD :'password';
CREATE DATABASE workspace OWNER workspace;
SQL
