#!/usr/bin/env bash
# Builds the real peers (issue #17) from their Go modules, once, through the
# wrapper modules under e2e/peers/ (go.mod/go.sum pin every version), and
# caches the binaries outside the work tree:
#   kubernetes  kube-apiserver, kube-controller-manager, kube-scheduler
#   keda        keda-operator, keda-adapter (the metrics API server)
#   traefik     traefik
# Usage: e2e/build-peers.sh [--cached] [kubernetes|keda|traefik ...]   (default: all)
#   --cached: build nothing; exit 3 when a requested binary is not built yet.
# Prints the path of every requested binary on stdout, one a line; progress
# goes to stderr every 15 s. Modules and build cache are shared under the cache
# directory (gomod/, gocache/) so a CI machine that keeps it reuses them.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE="${ZW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zerowire}"
GO="${ZW_GO:-go}"
CACHED_ONLY=0
if [ "${1:-}" = --cached ]; then CACHED_ONLY=1; shift; fi
PEERS=("$@")
[ ${#PEERS[@]} -gt 0 ] || PEERS=(kubernetes keda traefik)

log() { echo "build-peers: $*" >&2; }
# shellcheck source=e2e/peers/gobuild.sh
. "$REPO/e2e/peers/gobuild.sh"

# name -> "output-name=package ..." (packages relative to the wrapper module)
targets() {
	case "$1" in
	kubernetes) echo "kube-apiserver=./kube-apiserver kube-controller-manager=./kube-controller-manager kube-scheduler=./kube-scheduler" ;;
	keda) echo "keda-operator=github.com/kedacore/keda/v2/cmd/operator keda-adapter=github.com/kedacore/keda/v2/cmd/adapter" ;;
	traefik) echo "traefik=github.com/traefik/traefik/v3/cmd/traefik" ;;
	*) log "unknown peer '$1' (kubernetes, keda, traefik)"; exit 2 ;;
	esac
}

upstream() {
	case "$1" in
	kubernetes) echo k8s.io/kubernetes ;;
	keda) echo github.com/kedacore/keda/v2 ;;
	traefik) echo github.com/traefik/traefik/v3 ;;
	esac
}

# The version pinned in the wrapper's go.mod.
pinned() { awk -v m="$(upstream "$1")" '$1 == m && $2 ~ /^v/ {print $2; exit}' "$REPO/e2e/peers/$1/go.mod"; }

# Link-time version stamps, as each project's own Makefile sets them.
ldflags() {
	local v=$2 f="-s -w" p
	case "$1" in
	kubernetes)
		local minor; minor=$(echo "$v" | cut -d. -f2)
		for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
			f="$f -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
		done ;;
	keda) f="$f -X github.com/kedacore/keda/v2/version.Version=$v" ;;
	traefik) f="$f -X github.com/traefik/traefik/v3/pkg/version.Version=$v -X github.com/traefik/traefik/v3/pkg/version.Codename=zerowire-e2e" ;;
	esac
	echo "$f"
}

# Directory for one peer's binaries: version plus a hash of the wrapper, so a
# changed go.mod/go.sum/main.go gets a fresh build.
outdir() { echo "$CACHE/peers/$1-$(pinned "$1")-$(zw_wrapper_hash "$REPO/e2e/peers/$1")"; }

all_built() {
	local dir=$1 t
	for t in $2; do [ -x "$dir/${t%%=*}" ] || return 1; done
}

print_paths() {
	local t
	for t in $2; do echo "$1/${t%%=*}"; done
}

build_one() {
	local name=$1 dir=$2 tlist=$3 ver t out
	ver=$(pinned "$name")
	[ -n "$ver" ] || { log "$name: no version of $(upstream "$name") in e2e/peers/$name/go.mod"; exit 1; }
	mkdir -p "$dir"
	for t in $tlist; do
		out=${t%%=*}
		[ -x "$dir/$out" ] && continue
		zw_go_build "$name $ver" "$REPO/e2e/peers/$name" "$dir" "$out" "${t#*=}" \
			-ldflags "$(ldflags "$name" "$ver")" || exit 1
	done
}

mkdir -p "$CACHE/peers"
export GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gocache" GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0

# Fast path without the lock.
missing=()
for p in "${PEERS[@]}"; do
	t=$(targets "$p")
	all_built "$(outdir "$p")" "$t" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ $CACHED_ONLY = 1 ]; then
	log "not built yet: ${missing[*]} (run e2e/build-peers.sh ${missing[*]})"
	exit 3
fi
if [ ${#missing[@]} -gt 0 ]; then
	zw_require_go "$GO" 26 || exit 1
	exec 9>"$CACHE/peers.lock"
	flock 9
	total=$(date +%s)
	for p in "${missing[@]}"; do
		d=$(outdir "$p"); t=$(targets "$p")
		all_built "$d" "$t" || build_one "$p" "$d" "$t"
	done
	log "done in $(( $(date +%s) - total ))s"
fi
for p in "${PEERS[@]}"; do print_paths "$(outdir "$p")" "$(targets "$p")"; done
