#!/usr/bin/env bash
# Starts a local control plane (etcd + kube-apiserver 1.20.2 on loopback, free
# ports, a fresh temporary directory, self-generated certificates) and installs
# the test CRDs from e2e/crds. Builds and caches kube-apiserver on first use.
# stdout: `export KUBECONFIG=...` lines (use: eval "$(./e2e/cluster-up.sh)").
# --foreground: stay up until Ctrl-C, then clean up. Stop with cluster-down.sh.
set -euo pipefail
cd "$(dirname "$0")"
# Show build progress on first use (the build prints to stderr).
./build-apiserver.sh >/dev/null
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" /usr/bin/python3 -m harness.cli up "$@"
