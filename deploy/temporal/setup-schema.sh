#!/bin/sh
# Create or upgrade Temporal's two PostgreSQL databases (safe to run on every start).
set -eu
: "${POSTGRES_SEEDS:?set POSTGRES_SEEDS}" "${POSTGRES_USER:?set POSTGRES_USER}"
PORT="${DB_PORT:-5432}"
SCHEMA=/etc/temporal/schema/postgresql/v12

for attempt in $(seq 1 30); do
  nc -z -w 5 "$POSTGRES_SEEDS" "$PORT" && break
  echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$PORT ($attempt/30)"
  sleep 2
done

tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$PORT" "$@"; }
for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}"
  dir="${pair##*:}"
  tool --db "$db" create 2>/dev/null || echo "database $db exists"
  tool --db "$db" setup-schema -v 0.0
  tool --db "$db" update-schema -d "$SCHEMA/$dir/versioned"
done
echo "Temporal schema is up to date"
