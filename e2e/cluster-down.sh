#!/usr/bin/env bash
# Stops a control plane started by cluster-up.sh and removes its temporary
# directory: the directory given, else $ZW_CLUSTER_DIR, else the most recent
# one recorded in build/cluster-current. Safe to run when nothing is running.
set -euo pipefail
cd "$(dirname "$0")"
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" /usr/bin/python3 -m harness.cli down "$@"
