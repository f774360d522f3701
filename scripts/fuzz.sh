#!/usr/bin/env bash
# Runs each libFuzzer target built by `make SAN=fuzz fuzzers` for a bounded time,
# starting from its seed corpus (<dir>/fuzz/corpus/<name>/, copied so runs do not grow it).
# Usage: scripts/fuzz.sh <dir>/fuzz/fuzz_x.c ...
# Env: ZW_FUZZ_SECONDS (default 20) per target; ZW_FUZZ_JOBS targets at once
# (default: the number of cores; each target is one process on one core).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${ZW_FUZZ_SECONDS:-20}"
jobs="${ZW_FUZZ_JOBS:-$(nproc)}"
[ "$#" -gt 0 ] || { echo "fuzz: no targets"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run_one SRC: runs one target; its report goes to $work/<name>.out, and
# $work/<name>.failed exists when it found something.
run_one() {
	local src=$1 dir name bin corpus
	dir=${src%%/*}
	name=$(basename "$src" .c)
	bin="build/fuzz/fuzz/${dir}_${name}"
	corpus="$work/${dir}_${name}"
	mkdir -p "$corpus"
	if [ -d "$dir/fuzz/corpus/$name" ]; then cp -r "$dir/fuzz/corpus/$name/." "$corpus/"; fi
	{
		echo "== fuzz $bin for ${secs}s"
		if ! "$bin" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
			-print_final_stats=1 -artifact_prefix="$work/${dir}_${name}-" "$corpus" \
			>"$work/${dir}_${name}.log" 2>&1; then
			tail -60 "$work/${dir}_${name}.log"
			mkdir -p build/fuzz/crashes
			cp "$work/${dir}_${name}"-* build/fuzz/crashes/ 2>/dev/null || true
			touch "$work/${dir}_${name}.failed"
		else
			grep -E "stat::number_of_executed_runs|stat::peak_rss_mb" "$work/${dir}_${name}.log" | tr '\n' ' '
			echo
		fi
	} >"$work/${dir}_${name}.out"
}

running=0
for src in "$@"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	run_one "$src" &
	running=$((running + 1))
done
wait
failed=""
for src in "$@"; do
	dir=${src%%/*} name=$(basename "$src" .c)
	cat "$work/${dir}_${name}.out"
	[ ! -e "$work/${dir}_${name}.failed" ] || failed="$failed build/fuzz/fuzz/${dir}_${name}"
done
if [ -n "$failed" ]; then echo "fuzz: FAILED:$failed (crash inputs in build/fuzz/crashes/)"; exit 1; fi
echo "fuzz: all targets ran clean"
