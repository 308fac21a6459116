#!/bin/sh
# Creates the Temporal server's two databases when missing and brings both schemas (the default
# store and visibility) up to the version of the server release, from the schemas built into
# temporal-sql-tool. Run by compose's temporal-admin-tools step and by the local cluster
# (scripts/cluster.ts) alike. Safe to run again: setup-schema keeps a newer version, update-schema
# applies only what is missing.
#
#   TEMPORAL_SQL_TOOL (temporal-sql-tool), TEMPORAL_DB_HOST (127.0.0.1), TEMPORAL_DB_PORT (5432),
#   TEMPORAL_DB_USER (postgres), SQL_PASSWORD (read by the tool itself),
#   TEMPORAL_DB_NAME (temporal), TEMPORAL_VISIBILITY_DB_NAME (temporal_visibility)
set -eu

sql() {
  "${TEMPORAL_SQL_TOOL:-temporal-sql-tool}" --quiet --plugin postgres12 --ep "${TEMPORAL_DB_HOST:-127.0.0.1}" \
    -p "${TEMPORAL_DB_PORT:-5432}" -u "${TEMPORAL_DB_USER:-postgres}" "$@"
}

setup() {
  db="$1" schema="$2"
  sql --db "$db" create-database 2>/dev/null || echo "database $db exists already"
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema --schema-name "$schema"
}

setup "${TEMPORAL_DB_NAME:-temporal}" postgresql/v12/temporal
setup "${TEMPORAL_VISIBILITY_DB_NAME:-temporal_visibility}" postgresql/v12/visibility
echo "Temporal schemas are up to date"
