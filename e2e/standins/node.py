#!/usr/bin/python3
"""Runs the node stand-in against a cluster started by `make cluster-up`
(or --cluster-dir): Deployments become backend processes on 127.R.x.y,
EndpointSlices and Deployment status follow. Ctrl-C stops and kills the pods.

  e2e/standins/node.py [--namespace NS ...] [--startup-delay-ms 1000]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness.cli import _current  # noqa: E402
from harness.cluster import Cluster  # noqa: E402
from harness.node import NodeStandin  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cluster-dir", help="cluster directory (default: $ZW_CLUSTER_DIR or the last cluster-up)")
    ap.add_argument("--namespace", "-n", action="append", help="namespace to manage (repeatable; default all)")
    ap.add_argument("--startup-delay-ms", type=int, default=1000)
    a = ap.parse_args()
    d = _current(a.cluster_dir)
    if not d:
        ap.error("no running cluster: run `make cluster-up` first or pass --cluster-dir")
    node = NodeStandin(Cluster.attach(d), namespaces=a.namespace, startup_delay_ms=a.startup_delay_ms)
    node.start()
    print("node stand-in running (Ctrl-C stops)", file=sys.stderr)
    seen = 0
    try:
        while True:
            time.sleep(0.5)
            for t, ev, kw in node.events[seen:]:
                print("%s %s %s" % (time.strftime("%H:%M:%S", time.localtime(t)), ev,
                                    " ".join("%s=%s" % kv for kv in kw.items())), flush=True)
            seen = len(node.events)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
