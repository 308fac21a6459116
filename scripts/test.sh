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
if ! node -e "require('net').connect(5432,'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))"; then
  echo "Postgres does not answer on 127.0.0.1:5432; the tests need it (set TEST_POSTGRES_ADMIN_URL for another server)." >&2
  exit 1
fi
export NODE_OPTIONS="${NODE_OPTIONS:-} --no-deprecation"
exec node_modules/.bin/jest "$@"
