#!/usr/bin/env bash
# make demo: zerowire scale-from-zero on this machine, explained step by step.
# Builds what is missing (binaries; kube-apiserver on first use, ~7 minutes,
# with a progress line), starts a local control plane, installs zerowire from
# its chart, deploys a sample app at zero replicas behind an Ingress and an
# HTTPRoute, sends one request (held, then answered), a burst (replicas grow),
# and waits for the return to zero. Leaves nothing running, also on Ctrl-C.
# (`make demo` runs scripts/setup.sh first; run setup.sh yourself otherwise.)
set -euo pipefail
cd "$(dirname "$0")/.."

pid=""
cleanup() {
	# The Python side stops everything it started (its children also die with
	# it: PR_SET_PDEATHSIG); here we only make sure it is gone.
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

echo "zerowire demo: HTTP scale-to-zero for Kubernetes, driven by KEDA"
echo
echo "Preparing: building zerowire (make -j2), quietly"
if ! make -j2 all >build-demo.log 2>&1; then
	tail -30 build-demo.log; echo "demo: build failed (full log: build-demo.log)"; exit 1
fi
rm -f build-demo.log
echo "Preparing: kube-apiserver 1.20 (built from Debian's sources on first use, about 7 minutes)"
e2e/build-apiserver.sh >/dev/null

# In the background so that Ctrl-C reaches the trap above, which stops it
# with SIGTERM (it then cleans up). Every wait inside is bounded.
cd e2e
/usr/bin/python3 -m harness.demo "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=""
exit "$rc"
