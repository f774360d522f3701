#!/usr/bin/env bash
# Builds the KEDA HTTP add-on's interceptor and external scaler (issue #14)
# from its Go module, once, through the wrapper module e2e/peers/http-add-on
# (go.mod/go.sum pin every version), and caches the binaries outside the work
# tree (the same layout as the other real peers built from Go modules):
#   interceptor  github.com/kedacore/http-add-on/interceptor
#   scaler       github.com/kedacore/http-add-on/scaler
# Usage: e2e/build-addon.sh [--cached] [interceptor|scaler ...]  (default: both)
#   --cached: build nothing; exit 3 when a requested binary is not built yet.
# Prints the path of every requested binary on stdout, one a line; progress
# goes to stderr every 15 s. Each binary's build time is appended to
# <dir>/build-times.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE="${ZW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zerowire}"
GO="${ZW_GO:-go}"
WRAP="$REPO/e2e/peers/http-add-on"
MODULE=github.com/kedacore/http-add-on
CACHED_ONLY=0
if [ "${1:-}" = --cached ]; then CACHED_ONLY=1; shift; fi
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(interceptor scaler)

log() { echo "build-addon: $*" >&2; }
# shellcheck source=e2e/peers/gobuild.sh
. "$REPO/e2e/peers/gobuild.sh"

for t in "${TARGETS[@]}"; do
	case "$t" in interceptor | scaler) ;; *) log "unknown target '$t' (interceptor, scaler)"; exit 2 ;; esac
done

VERSION=$(awk -v m="$MODULE" '$1 == m && $2 ~ /^v/ {print $2; exit}' "$WRAP/go.mod")
[ -n "$VERSION" ] || VERSION=$(awk -v m="$MODULE" '$1 == "require" && $2 == m {print $3; exit}' "$WRAP/go.mod")
[ -n "$VERSION" ] || { log "no version of $MODULE in $WRAP/go.mod"; exit 1; }

# The release's commit, as the module proxy records it (-X pkg/build.gitCommit).
COMMIT=$(sed -n 's/.*"Hash":"\([0-9a-f]\{12\}\).*/\1/p' "$CACHE/gomod/cache/download/$MODULE/@v/$VERSION.info" 2>/dev/null || true)

# Version plus a hash of the wrapper, so a changed go.mod/go.sum gets a fresh build.
HASH=$(zw_wrapper_hash "$WRAP")
DIR="$CACHE/peers/http-add-on-$VERSION-$HASH"

all_built() {
	local t
	for t in "${TARGETS[@]}"; do [ -x "$DIR/$t" ] || return 1; done
}

build_one() {
	[ -x "$DIR/$1" ] && return 0
	zw_go_build "http-add-on $VERSION" "$WRAP" "$DIR" "$1" "$MODULE/$1" -trimpath \
		-ldflags "-s -w -X $MODULE/pkg/build.version=$VERSION -X $MODULE/pkg/build.gitCommit=$COMMIT" || exit 1
}

# ZW_GOCACHE: another build cache (an empty one measures a cold compile).
export GOMODCACHE="$CACHE/gomod" GOCACHE="${ZW_GOCACHE:-$CACHE/gocache}" GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0

if ! all_built; then
	if [ $CACHED_ONLY = 1 ]; then
		log "not built yet: ${TARGETS[*]} (run e2e/build-addon.sh)"
		exit 3
	fi
	zw_require_go "$GO" 25 || exit 1
	mkdir -p "$DIR"
	exec 9>"$CACHE/peers.lock"
	flock 9
	total=$(date +%s)
	for t in "${TARGETS[@]}"; do build_one "$t"; done
	log "done in $(($(date +%s) - total))s"
fi
for t in "${TARGETS[@]}"; do echo "$DIR/$t"; done
