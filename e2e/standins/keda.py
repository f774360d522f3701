#!/usr/bin/python3
"""Runs the KEDA stand-in against a cluster started by `make cluster-up` (or
--cluster-dir): ScaledObjects with external / external-push triggers are
scaled through the real gRPC protocol. Ctrl-C stops.

  e2e/standins/keda.py [-n NS ...] [--map ADDR=HOSTPORT ...] [--polling-interval S] [--cooldown-period S]

--map rewrites a trigger's scalerAddress (e.g. the chart's in-cluster scaler
Service) to where the local zerowire-proxy listens.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness.cli import _current  # noqa: E402
from harness.cluster import Cluster  # noqa: E402
from harness.keda import KedaStandin, ProtoMissing  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cluster-dir")
    ap.add_argument("--namespace", "-n", action="append")
    ap.add_argument("--map", action="append", default=[], metavar="ADDR=HOSTPORT")
    ap.add_argument("--polling-interval", type=float)
    ap.add_argument("--cooldown-period", type=float)
    a = ap.parse_args()
    d = _current(a.cluster_dir)
    if not d:
        ap.error("no running cluster: run `make cluster-up` first or pass --cluster-dir")
    try:
        mapping = dict(m.split("=", 1) for m in a.map)
    except ValueError:
        ap.error("--map wants ADDR=HOSTPORT")
    try:
        keda = KedaStandin(Cluster.attach(d), namespaces=a.namespace, resolve=mapping,
                           polling_interval=a.polling_interval, cooldown_period=a.cooldown_period)
    except ProtoMissing as e:
        print("keda stand-in: %s" % e, file=sys.stderr)
        return 1
    keda.start()
    print("KEDA stand-in running (Ctrl-C stops)", file=sys.stderr)
    seen = 0
    try:
        while True:
            time.sleep(0.5)
            for e in keda.events[seen:]:
                print(json.dumps(e, default=str), flush=True)
            seen = len(keda.events)
    except KeyboardInterrupt:
        pass
    finally:
        keda.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
