#!/usr/bin/env bash
# make bench: zerowire-proxy benchmarks side by side with nginx and HAProxy
# (warm path), 10,000 held cold-start requests, endpoint-ready latency,
# idle RSS / 10,000 targets, and bench/keda_push.py. Loopback only; the whole
# run is bounded (BENCH_TIMEOUT seconds, default 570). Prints a Markdown
# report and writes bench/results.md. Arguments go to bench/proxy_bench.py
# (e.g. --only warm --duration 5). `--only h2,grpc` runs the HTTP/2 warm path
# (h2load) and gRPC unary (ghz) side by side with nginx, HAProxy and h2o
# (bench/h2_bench.py) and writes bench/results-h2.md.
#
# `bench/run.sh --only webhook [args]` runs the webhook benchmark instead
# (bench/webhook_bench.py: reviews over TLS, wrk flat out and bench/whload's
# open-loop 1000 reviews/s for 20 s, then `kubectl apply` of 100 HTTPRoutes
# with and without the webhook on the e2e harness's kube-apiserver) and
# writes bench/results-webhook.json; args go to bench/webhook_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--only" ] && [ "${2:-}" = "webhook" ]; then
	shift 2
	for t in wrk go kubectl openssl; do
		command -v "$t" >/dev/null 2>&1 || { echo "bench: $t not found (run scripts/setup.sh)" >&2; exit 1; }
	done
	[ -x bin/zerowire-webhook ] || { echo "bench: bin/zerowire-webhook not built (run make)" >&2; exit 1; }
	export ZW_SHARED="${ZW_SHARED:-$(cd .. && pwd)/shared}"
	exec timeout --kill-after=10 "${BENCH_TIMEOUT:-900}" /usr/bin/python3 bench/webhook_bench.py \
		--json bench/results-webhook.json "$@"
fi

need() {
	command -v "$1" >/dev/null 2>&1 || { echo "bench: $1 not found (run scripts/setup.sh)" >&2; exit 1; }
}
for t in wrk nginx haproxy taskset cc; do need "$t"; done
# --only h2 / grpc (bench/h2_bench.py): h2load and h2o; ghz and the gRPC
# backend are built with Go; those runs take longer than the default limit.
case " $* " in
*" h2"* | *",h2"* | *grpc*)
	for t in h2load h2o go; do need "$t"; done
	BENCH_TIMEOUT="${BENCH_TIMEOUT:-1500}"
	;;
esac
[ -x /usr/bin/python3 ] || { echo "bench: /usr/bin/python3 not found" >&2; exit 1; }
[ -x bin/zerowire-proxy ] || { echo "bench: bin/zerowire-proxy not built (run make)" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
	echo "bench: needs 2 cores (proxy on core 0, load generator on core 1)" >&2
	exit 1
fi

# 10,000 client connections plus the proxy's upstream side: raise the soft
# limit to the hard one (children inherit it).
ulimit -n "$(ulimit -Hn)"

mkdir -p build/bench
cc -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o build/bench/hold_client bench/hold_client.c

export ZW_SHARED="${ZW_SHARED:-$(cd .. && pwd)/shared}"
exec timeout --kill-after=10 "${BENCH_TIMEOUT:-570}" /usr/bin/python3 bench/proxy_bench.py "$@"
