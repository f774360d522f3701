#!/usr/bin/env bash
# Stops the control plane started by cluster-up.sh (the one recorded in
# build/cluster-current, or the directory given / $ZW_CLUSTER_DIR) and removes
# its temporary directory. Safe to run when nothing is running.
set -euo pipefail
cd "$(dirname "$0")"
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" /usr/bin/python3 -m harness.cli down "$@"
