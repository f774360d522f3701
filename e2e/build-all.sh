#!/usr/bin/env bash
# Builds every one-time artifact the tests and the demo use, in one go, with
# progress lines and a summary of the time each took (wall and CPU seconds):
#   kube-apiserver 1.20.2      e2e/build-apiserver.sh (Debian's source, Go 1.19)
#   Kubernetes, KEDA, Traefik  e2e/build-peers.sh (their Go modules)
#   Go tools                   e2e/peers/build-go-tool.sh --list (promtool, otelcol, helm-docs, h2spec)
# and with --bench also what only `make bench` uses:
#   KEDA HTTP add-on           e2e/build-addon.sh
#   Go tools                   e2e/peers/build-go-tool.sh --list-bench
# Usage: e2e/build-all.sh [--bench]
# Each is cached under ${ZW_CACHE_DIR:-~/.cache/zerowire} and skipped in
# seconds when it is there already; an empty ZW_CACHE_DIR measures a fresh
# machine (modules downloaded, everything compiled). `make check` and
# `make demo` run it first. The summary also goes to $CACHE/build-all.times.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE="${ZW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zerowire}"
mkdir -p "$CACHE"
log() { echo "build-all: $*" >&2; }

BENCH=0
if [ "${1:-}" = --bench ]; then BENCH=1; fi

steps=("apiserver-1.20:e2e/build-apiserver.sh"
	"kubernetes:e2e/build-peers.sh kubernetes"
	"keda:e2e/build-peers.sh keda"
	"traefik:e2e/build-peers.sh traefik")
for t in $("$REPO/e2e/peers/build-go-tool.sh" --list); do
	steps+=("$t:e2e/peers/build-go-tool.sh $t")
done
if [ "$BENCH" = 1 ]; then
	steps+=("http-add-on:e2e/build-addon.sh")
	for t in $("$REPO/e2e/peers/build-go-tool.sh" --list-bench); do
		steps+=("$t:e2e/peers/build-go-tool.sh $t")
	done
fi

summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
start=$(date +%s)
failed=""
for s in "${steps[@]}"; do
	name=${s%%:*} cmd=${s#*:}
	log "[$name] $cmd"
	t0=$(date +%s)
	# CPU seconds of the step and everything it ran (user + sys of children).
	read -r u0 s0 < <(awk '{print $16, $17}' /proc/$$/stat)
	if (cd "$REPO" && $cmd >/dev/null); then rc=ok; else rc=FAILED; failed="$failed $name"; fi
	read -r u1 s1 < <(awk '{print $16, $17}' /proc/$$/stat)
	tck=$(getconf CLK_TCK)
	cpu=$(( (u1 + s1 - u0 - s0) / tck ))
	printf '%-16s %6ds wall %7d CPU-s  %s\n' "$name" $(($(date +%s) - t0)) "$cpu" "$rc" >>"$summary"
	log "[$name] $rc after $(($(date +%s) - t0)) s"
done
printf '%-16s %6ds wall  (%s, %s cores, load %s)\n' total $(($(date +%s) - start)) \
	"$(date -u +%FT%TZ)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$summary"
cp "$summary" "$CACHE/build-all.times"
log "summary (also in $CACHE/build-all.times):"
sed 's/^/build-all:   /' "$summary" >&2
[ -z "$failed" ] || { log "failed:$failed"; exit 1; }
