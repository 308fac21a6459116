#!/usr/bin/env bash
# npm test: both tiers in one jest run (jest.config.js): the unit tier of pure code (*.unit.test.ts) first,
# then the suites against real servers (Temporal dev server, versitygw, Postgres) that global-setup starts.
# `npm run test:unit` runs the unit tier alone, with no server; `npm run test:cluster` the production engine tier.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
bash scripts/provision-binaries.sh >/dev/null
# The cluster tier (`npm run test:cluster`) also needs the production engine's binaries.
if [[ " $* " == *" jest.cluster.config.js "* ]]; then bash scripts/provision-binaries.sh cluster >/dev/null; fi
# The Postgres server the tests make their database on (TEST_POSTGRES_ADMIN_URL, default 127.0.0.1:5432).
postgres_address=$(node -e "const u = new URL(process.env.TEST_POSTGRES_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres'); console.log((u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1') + ' ' + (u.port || 5432))")
if ! node -e "const [h, p] = process.argv.slice(1); require('net').connect(Number(p), h).on('connect', () => process.exit(0)).on('error', () => process.exit(1))" $postgres_address; then
  echo "Postgres does not answer on ${postgres_address/ /:}; the tests need it (set TEST_POSTGRES_ADMIN_URL for another server)." >&2
  exit 1
fi
export NODE_OPTIONS="${NODE_OPTIONS:-} --no-deprecation"
exec node_modules/.bin/jest "$@"
