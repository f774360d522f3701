#!/usr/bin/env bash
# Runs pytest suites with Debian's interpreter (python3-pytest, python3-grpcio
# and python3-jsonpatch belong to /usr/bin/python3, not to another python3 on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$#" -gt 0 ] || { echo "pytest: no suites"; exit 0; }
export ZW_ROOT="$PWD" ZW_SHARED="${ZW_SHARED:-$PWD/../shared}"
exec /usr/bin/python3 -m pytest -p no:cacheprovider -q -rs "$@"
