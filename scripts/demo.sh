#!/usr/bin/env bash
# make demo: zerowire scale-from-zero on this machine, explained step by step.
# Builds what is missing (binaries; the real peers on first use, with progress
# lines), starts a local control plane with KEDA and Traefik (the real stack,
# harness/realdemo.py; ZW_DEMO_STACK=1.20, or automatically without root or
# network namespaces: kube-apiserver 1.20 with stand-ins, harness/demo.py),
# installs zerowire from its
# chart, deploys a sample app at zero replicas behind an Ingress and an
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
# The real stack (Kubernetes, KEDA, Traefik) needs root and network namespaces
# for its kubelet stand-in; ZW_DEMO_STACK=1.20 asks for the older stand-in demo
# (kube-apiserver 1.20 with stand-ins for the kubelet and KEDA).
stack="${ZW_DEMO_STACK:-real}"
if [ "$stack" = real ]; then
	why=""
	if [ "$(id -u)" != 0 ]; then why="not running as root"
	elif ! ip netns list >/dev/null 2>&1; then why="'ip netns' is unavailable (iproute2)"; fi
	if [ -n "$why" ]; then
		echo "demo: the real-stack demo needs root and network namespaces ($why);"
		echo "demo: showing the kube-apiserver 1.20 demo with stand-ins for the kubelet and KEDA instead."
		stack=1.20
	fi
fi
case "$stack" in
real | 1.20) ;;
*) echo "demo: ZW_DEMO_STACK must be 'real' or '1.20', not '$stack'"; exit 2 ;;
esac
echo "Preparing: building zerowire (make -j2), quietly"
if ! make -j2 all >build-demo.log 2>&1; then
	tail -30 build-demo.log; echo "demo: build failed (full log: build-demo.log)"; exit 1
fi
rm -f build-demo.log
case "$stack" in
real)
	module=harness.realdemo
	echo "Preparing: Kubernetes, KEDA and Traefik from their Go modules (e2e/build-peers.sh;"
	echo "           cached in ~/.cache/zerowire/peers, a cold build takes long and prints progress)"
	e2e/build-peers.sh >/dev/null ;;
1.20)
	module=harness.demo
	echo "Preparing: kube-apiserver 1.20 (built from Debian's sources on first use, about 7 minutes)"
	e2e/build-apiserver.sh >/dev/null ;;
esac

# In the background so that Ctrl-C reaches the trap above, which stops it
# with SIGTERM (it then cleans up). Every wait inside is bounded.
cd e2e
/usr/bin/python3 -m "$module" "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=""
exit "$rc"
