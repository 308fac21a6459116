#!/usr/bin/env bash
# npm run dev: installs what is missing, provisions the binaries, then runs the whole stack.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm packages..."
  npm ci --no-audit --no-fund
fi
if [[ " $* " == *" --cluster "* ]]; then
  bash scripts/provision-binaries.sh temporal versitygw cluster
else
  bash scripts/provision-binaries.sh temporal versitygw
fi
exec node_modules/.bin/tsx scripts/dev.ts "$@"
