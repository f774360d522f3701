#!/usr/bin/env bash
# Runs each libFuzzer target built by `make SAN=fuzz fuzzers` for a bounded time,
# starting from its seed corpus (<dir>/fuzz/corpus/<name>/, copied so runs do not grow it).
# Usage: scripts/fuzz.sh <dir>/fuzz/fuzz_x.c ...   Env: ZW_FUZZ_SECONDS (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${ZW_FUZZ_SECONDS:-20}"
[ "$#" -gt 0 ] || { echo "fuzz: no targets"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=""
for src in "$@"; do
	dir=${src%%/*}
	name=$(basename "$src" .c)
	bin="build/fuzz/fuzz/${dir}_${name}"
	corpus="$work/${dir}_${name}"
	mkdir -p "$corpus"
	if [ -d "$dir/fuzz/corpus/$name" ]; then cp -r "$dir/fuzz/corpus/$name/." "$corpus/"; fi
	echo "== fuzz $bin for ${secs}s"
	if ! "$bin" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$work/${dir}_${name}-" "$corpus" \
		>"$work/${dir}_${name}.log" 2>&1; then
		tail -60 "$work/${dir}_${name}.log"
		mkdir -p build/fuzz/crashes
		cp "$work/${dir}_${name}"-* build/fuzz/crashes/ 2>/dev/null || true
		failed="$failed $bin"
	else
		grep -E "stat::number_of_executed_runs|stat::peak_rss_mb" "$work/${dir}_${name}.log" | tr '\n' ' '
		echo
	fi
done
if [ -n "$failed" ]; then echo "fuzz: FAILED:$failed (crash inputs in build/fuzz/crashes/)"; exit 1; fi
echo "fuzz: all targets ran clean"
