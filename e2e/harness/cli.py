"""Command line for the local control plane (used by e2e/cluster-up.sh and
e2e/cluster-down.sh):

  python3 -m harness.cli up [--foreground] [--no-crds]
  python3 -m harness.cli down [DIR]
  python3 -m harness.cli token NAMESPACE NAME     (mint a ServiceAccount token)

`up` starts etcd and the kube-apiserver in a fresh temporary directory,
prints the kubeconfig path and `export` lines, and records the directory in
build/cluster-current (one line per running cluster) so `down` finds it;
`down` without arguments stops the most recent one. With --foreground it stays up until
interrupted and then cleans up."""

import argparse
import os
import signal
import sys
import time

from . import util
from .cluster import Cluster

POINTER = os.path.join(util.REPO, "build", "cluster-current")


def _recorded():
    """Cluster directories recorded by `up` (oldest first) that still exist."""
    try:
        with open(POINTER) as f:
            return [d for d in f.read().split() if os.path.exists(os.path.join(d, "state.json"))]
    except OSError:
        return []


def _current(arg):
    d = arg or os.environ.get("ZW_CLUSTER_DIR")
    if not d:
        dirs = _recorded()
        d = dirs[-1] if dirs else None
    return d


def cmd_up(a):
    c = Cluster(install_crds=not a.no_crds, detach=not a.foreground)
    stop = {"flag": False}

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        c.start()
    except KeyboardInterrupt:
        print("cluster-up: interrupted, cleaned up", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001
        print("cluster-up: failed: %s" % e, file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(POINTER), exist_ok=True)
    dirs = _recorded() + [c.tmpdir]
    with open(POINTER, "w") as f:
        f.write("\n".join(dirs) + "\n")
    print("cluster-up: kube-apiserver %s ready, etcd %s" % (c.server, c.etcd_endpoint), file=sys.stderr)
    print("cluster-up: kubeconfig %s" % c.kubeconfig, file=sys.stderr)
    print("export KUBECONFIG=%s" % c.kubeconfig)
    print("export ZW_CLUSTER_DIR=%s" % c.tmpdir)
    print("export ZW_ETCD_ENDPOINT=%s" % c.etcd_endpoint)
    if not a.foreground:
        print("cluster-up: running in the background; stop with `make cluster-down`", file=sys.stderr)
        return 0
    print("cluster-up: running in the foreground; Ctrl-C stops and cleans up", file=sys.stderr)
    try:
        while not stop["flag"]:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()
        _clear_pointer(c.tmpdir)
        print("cluster-up: stopped and cleaned up", file=sys.stderr)
    return 0


def _clear_pointer(d):
    dirs = [x for x in _recorded() if x != d]
    try:
        if dirs:
            with open(POINTER, "w") as f:
                f.write("\n".join(dirs) + "\n")
        elif os.path.exists(POINTER):
            os.unlink(POINTER)
    except OSError:
        pass


def cmd_down(a):
    d = _current(a.dir)
    if not d or not os.path.exists(os.path.join(d, "state.json")):
        print("cluster-down: no running cluster found (%s)" % (d or "no build/cluster-current"), file=sys.stderr)
        if d:
            _clear_pointer(d)
        return 0
    c = Cluster.attach(d)
    c.stop()
    _clear_pointer(d)
    print("cluster-down: stopped the cluster in %s and removed it" % d, file=sys.stderr)
    return 0


def cmd_token(a):
    d = _current(a.dir)
    if not d:
        print("token: no running cluster", file=sys.stderr)
        return 1
    print(Cluster.attach(d).sa_token(a.namespace, a.name, a.expiration))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="cluster")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--foreground", action="store_true")
    up.add_argument("--no-crds", action="store_true")
    down = sub.add_parser("down")
    down.add_argument("dir", nargs="?")
    tok = sub.add_parser("token")
    tok.add_argument("namespace")
    tok.add_argument("name")
    tok.add_argument("--expiration", type=int, default=3600)
    tok.add_argument("--dir")
    a = p.parse_args(argv)
    return {"up": cmd_up, "down": cmd_down, "token": cmd_token}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
