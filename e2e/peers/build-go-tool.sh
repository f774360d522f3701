#!/usr/bin/env bash
# Builds a Go tool that the tests use (promtool, otelcol, helm-docs, h2spec) from its wrapper
# module e2e/peers/<name>/ (go.mod + go.sum pin the upstream module), once, and
# caches the binary outside the work tree under a name that includes a hash of
# the wrapper's go.sum (a version bump rebuilds it).
# Usage: e2e/peers/build-go-tool.sh promtool|otelcol|helm-docs|h2spec|ghz   -> prints the binary's path.
#        e2e/peers/build-go-tool.sh --list | --list-bench   -> the tools make check / make bench use.
# Progress lines go to stderr; builds run under `nice -n 19`.
set -euo pipefail

# The tools make check uses, and those only make bench uses (e2e/build-all.sh).
TOOLS="promtool otelcol helm-docs h2spec"
BENCH_TOOLS="ghz"
if [ "${1:-}" = --list ]; then echo "$TOOLS"; exit 0; fi
if [ "${1:-}" = --list-bench ]; then echo "$BENCH_TOOLS"; exit 0; fi
name="${1:?usage: build-go-tool.sh <tool> | --list}"
here="$(cd "$(dirname "$0")" && pwd)"
dir="$here/$name"
[ -f "$dir/go.mod" ] || { echo "build-go-tool: no wrapper module $dir" >&2; exit 2; }
# tags: Go build tags. promtool's service-discovery plugins (AWS, Azure, GCE, …;
# the tests only check metrics text and rules) are left out with Prometheus's
# own remove_all_sd tag: about half of its compile.
tags=""
case "$name" in
promtool) pkg=github.com/prometheus/prometheus/cmd/promtool tags=remove_all_sd ;;
otelcol) pkg=. ;;
helm-docs) pkg=github.com/norwoodj/helm-docs/cmd/helm-docs ;;
h2spec) pkg=github.com/summerwind/h2spec/cmd/h2spec ;;
ghz) pkg=github.com/bojand/ghz/cmd/ghz ;;
*) echo "build-go-tool: unknown tool $name" >&2; exit 2 ;;
esac

CACHE="${ZW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zerowire}"
log() { echo "build-go-tool: $*" >&2; }
# shellcheck source=e2e/peers/gobuild.sh
. "$here/gobuild.sh"
sum=$({ cat "$dir/go.mod" "$dir/go.sum" "$dir"/*.go 2>/dev/null; [ -z "$tags" ] || echo "tags=$tags"; } | sha256sum | cut -c1-12)
BIN="$CACHE/bin/$name-$sum"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

GO="${ZW_GO:-$(command -v go || echo /usr/local/go/bin/go)}"
command -v "$GO" >/dev/null || { echo "build-go-tool: no Go toolchain (go not on PATH)" >&2; exit 3; }
mkdir -p "$CACHE/bin"
exec 9>"$CACHE/bin/$name.lock"
echo "build-go-tool: waiting for the $name build lock" >&2
flock 9
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

# The same module and build caches as e2e/build-peers.sh and build-addon.sh:
# the modules the tools share with the peers (client-go, grpc, …) are
# downloaded and compiled once.
export GOMODCACHE="${GOMODCACHE:-$CACHE/gomod}" GOCACHE="${GOCACHE:-$CACHE/gocache}"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
start=$(date +%s)
echo "build-go-tool: $name: downloading modules (GOMODCACHE=$GOMODCACHE)" >&2
(cd "$dir" && nice -n 19 "$GO" mod download 2>&1 | sed 's/^/build-go-tool:   /' >&2)
log "$name: compiling $pkg with $("$GO" version | cut -d' ' -f3) (several minutes on 2 cores)"
zw_go_build "$name" "$dir" "$CACHE/bin" "$(basename "$BIN")" "$pkg" -trimpath -tags="$tags" -ldflags='-s -w' || exit 1
echo "build-go-tool: $name built in $(($(date +%s) - start)) s: $BIN" >&2
echo "$BIN"
