#!/usr/bin/env bash
# Provisions the binaries the project needs that npm does not ship, into a cache outside git.
# A binary already on PATH is used as it is.
# Usage: provision-binaries.sh [temporal] [versitygw] [toxiproxy-server] [temporal-server] [temporal-sql-tool]
#   [temporal-ui-server] [jaeger]
# With no names it provisions what `npm test` needs; `cluster` adds what the production engine needs.
set -euo pipefail

TOOLS_DIR="${MEDIA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/media-generation/bin}"
mkdir -p "$TOOLS_DIR"

module_for() {
  case "$1" in
    temporal) echo "github.com/temporalio/cli/cmd/temporal@v1.5.1" ;;
    versitygw) echo "github.com/versity/versitygw/cmd/versitygw@v1.7.0" ;;
    toxiproxy-server) echo "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0" ;;
    # The server release the CLI's dev server embeds (CLI v1.5.1 → server 1.29.1).
    temporal-server) echo "go.temporal.io/server/cmd/server@v1.29.1" ;;
    temporal-sql-tool) echo "go.temporal.io/server/cmd/tools/sql@v1.29.1" ;;
    # The Web UI server of the release the CLI embeds (its Web UI is not served apart from the dev server).
    temporal-ui-server) echo "github.com/temporalio/ui-server/v2/cmd/server@v2.42.1" ;;
    jaeger) echo "github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0" ;;
    *) echo "unknown binary: $1" >&2; return 1 ;;
  esac
}

# go install names the binary after the package folder; toxiproxy's is plain "server".
installed_name_for() {
  case "$1" in
    toxiproxy-server | temporal-server | temporal-ui-server) echo "server" ;;
    temporal-sql-tool) echo "sql" ;;
    *) echo "$1" ;;
  esac
}

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  if [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go; return; fi
  return 1
}

provision() {
  local name="$1"
  if command -v "$name" >/dev/null 2>&1; then
    echo "$name: using $(command -v "$name")"
    return
  fi
  if [ -x "$TOOLS_DIR/$name" ]; then
    echo "$name: cached at $TOOLS_DIR/$name"
    return
  fi
  local go
  if ! go="$(find_go)"; then
    cat >&2 <<MSG
$name is not installed and Go is not available to build it.
Either install Go (https://go.dev/dl/) and run this again, put a '$name' binary on PATH,
or run the stack with Docker instead: docker compose up
MSG
    exit 1
  fi
  local module build_dir
  module="$(module_for "$name")"
  build_dir="$(mktemp -d)"
  echo "$name: building $module (first time only; the Temporal CLI takes a few minutes)"
  if [ "$name" = jaeger ]; then
    # Jaeger's module has replace directives, which `go install pkg@version` refuses: it builds as
    # a tool of a scratch module instead.
    (cd "$build_dir" && "$go" mod init jaeger-tool >/dev/null 2>&1 && "$go" get -tool "$module" &&
      GOBIN="$build_dir" GOFLAGS="${GOFLAGS:-} -trimpath" "$go" install tool)
  else
    GOBIN="$build_dir" GOFLAGS="${GOFLAGS:-} -trimpath" "$go" install "$module"
  fi
  mv "$build_dir/$(installed_name_for "$name")" "$TOOLS_DIR/$name"
  rm -rf "$build_dir"
  echo "$name: built into $TOOLS_DIR/$name"
}

if [ "$#" -eq 0 ]; then set -- temporal versitygw toxiproxy-server; fi
names=()
for name in "$@"; do
  if [ "$name" = cluster ]; then names+=(temporal-server temporal-sql-tool temporal-ui-server jaeger); else names+=("$name"); fi
done
for name in "${names[@]}"; do provision "$name"; done
