#!/usr/bin/python3
"""Instruction-count regression guard (valgrind's callgrind counts
instructions, not seconds: the figures repeat whatever the machine's load).

  proxy    instructions per proxied request: bin/zerowire-proxy (1 worker,
           static mode) under callgrind, one keep-alive client connection
           sending a fixed mix (GET, POST with a Content-Length body, POST
           chunked, GET with 20 header fields) to a loopback backend, run
           twice (SHORT and LONG rounds of the mix); per request =
           (I_long - I_short) / (requests_long - requests_short), so start-up,
           shut-down and idle timers cancel out.
  webhook  instructions per admission review of a 50-rule HTTPRoute whose
           every rule names a scaled Service: the release build of
           webhook_tool_mutate under callgrind with 1 and with 11 reviews,
           counting only inside zw_mutate_review (parse, rewrite, patch).

Compares with bench/icount-baseline.json and fails when a figure is more than
10 % above its baseline. --update writes the baseline instead.

Usage: bench/icount.py [--update] [--only proxy,webhook]
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PROXY = os.path.join(ROOT, "bin", "zerowire-proxy")
MUTATE = os.path.join(ROOT, "build", "rel", "test", "webhook_tool_mutate")
BASELINE = os.path.join(ROOT, "bench", "icount-baseline.json")
TOLERANCE = 1.10
SHORT, LONG = 25, 275  # rounds of the 4-request mix
VALGRIND = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s"]


def callgrind_total(path):
    """Instructions (Ir) summed over every thread's output file."""
    total = 0
    d, base = os.path.split(path)
    for name in os.listdir(d):
        if not name.startswith(base):
            continue
        with open(os.path.join(d, name)) as f:
            for line in f:
                m = re.match(r"^(summary|totals):\s+(\d+)", line)
                if m:
                    total += int(m.group(2))
                    break
    return total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Backend(threading.Thread):
    """Answers every request on a keep-alive connection with a fixed 200."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                length, chunked = 0, False
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b""):
                        break
                    k, _, v = h.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                    if k.strip().lower() == b"transfer-encoding" and b"chunked" in v.lower():
                        chunked = True
                if chunked:
                    while True:
                        size = int(f.readline().split(b";")[0], 16)
                        f.read(size + 2) if size else None
                        if size == 0:
                            while f.readline() not in (b"\r\n", b""):
                                pass
                            break
                elif length:
                    f.read(length)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n")
        except (OSError, ValueError):
            pass
        finally:
            c.close()


MIX = [
    b"GET /small?x=1 HTTP/1.1\r\nHost: app.test\r\nUser-Agent: icount\r\nAccept: */*\r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n"
    + b"x" * 1024,
    b"POST /stream HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"100\r\n" + b"y" * 256 + b"\r\n100\r\n" + b"z" * 256 + b"\r\n0\r\n\r\n",
    b"GET /many HTTP/1.1\r\nHost: app.test\r\n"
    + b"".join(b"X-Header-%02d: value number %d for the count\r\n" % (i, i) for i in range(20)) + b"\r\n",
]


def read_response(f):
    status = f.readline()
    if not status.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("unexpected response %r" % status)
    length = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    f.read(length)


def ready(admin):
    try:
        c = socket.create_connection(("127.0.0.1", admin), 2)
        c.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        ok = c.makefile("rb").readline().startswith(b"HTTP/1.1 200")
        c.close()
        return ok
    except OSError:
        return False


def proxy_run(tmp, rounds, backend):
    tg = os.path.join(tmp, "targets.json")
    ep = os.path.join(tmp, "endpoints.json")
    so = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
          "metadata": {"name": "app", "namespace": "bench"},
          "spec": {"scaleTargetRef": {"name": "app"},
                   "triggers": [{"type": "external-push",
                                 "metadata": {"service": "app", "port": "80", "hosts": "app.test"}}]}}
    sl = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
          "metadata": {"name": "app-zw", "namespace": "bench", "labels": {"kubernetes.io/service-name": "app"}},
          "addressType": "IPv4", "ports": [{"name": "", "port": backend.port, "protocol": "TCP"}],
          "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}
    for path, item in ((tg, so), (ep, sl)):
        with open(path, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": [item]}, f)
    port, admin = free_port(), free_port()
    out = os.path.join(tmp, "proxy-%d.cg" % rounds)
    argv = [a.replace("%s", out) for a in VALGRIND] + [
        PROXY, "--listen", "127.0.0.1:%d" % port, "--admin-listen", "127.0.0.1:%d" % admin,
        "--scaler-listen", "127.0.0.1:%d" % free_port(), "--workers", "1", "--targets-file", tg,
        "--endpoints-file", ep, "--log-level", "error", "--shutdown-delay", "0s", "--drain-timeout", "1s"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ready(admin):
            if time.monotonic() > deadline or p.poll() is not None:
                raise RuntimeError("proxy under callgrind did not become ready")
            time.sleep(0.1)
        c = socket.create_connection(("127.0.0.1", port), 30)
        f = c.makefile("rb")
        # One warm-up request (connection pools, caches) belongs to both runs.
        c.sendall(MIX[0])
        read_response(f)
        for _ in range(rounds):
            for req in MIX:
                c.sendall(req)
                read_response(f)
        c.close()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
    return callgrind_total(out), rounds * len(MIX)


def measure_proxy(tmp):
    backend = Backend()
    i1, n1 = proxy_run(tmp, SHORT, backend)
    i2, n2 = proxy_run(tmp, LONG, backend)
    return (i2 - i1) / (n2 - n1)


def route_review(rules=50):
    obj = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": "big", "namespace": "default"},
           "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["app.example.com"],
                    "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/p%d" % i}}],
                               "backendRefs": [{"name": "app", "port": 8080}]} for i in range(rules)]}}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "icount", "kind": {"group": "gateway.networking.k8s.io", "version": "v1",
                                                  "kind": "HTTPRoute"},
                        "namespace": "default", "operation": "CREATE", "object": obj}}


def measure_webhook(tmp):
    setup = {"config": {}, "registry": [{
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {"scaleTargetRef": {"name": "app"},
                 "triggers": [{"type": "external-push",
                               "metadata": {"scalerAddress": "zerowire-proxy-scaler.zerowire:9090",
                                            "service": "app", "port": "8080", "hosts": "app.example.com"}}]}}]}
    sp = os.path.join(tmp, "setup.json")
    with open(sp, "w") as f:
        json.dump(setup, f)
    line = json.dumps(route_review(), separators=(",", ":")) + "\n"
    counts = []
    for n in (1, 11):
        out = os.path.join(tmp, "mutate-%d.cg" % n)
        # Only what zw_mutate_review executes (the tool's own parsing of its
        # input and printing of the patched object are not counted).
        r = subprocess.run([a.replace("%s", out) for a in VALGRIND] + ["--toggle-collect=zw_mutate_review", MUTATE, sp],
                           input=line * n,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or len(r.stdout.splitlines()) != n or '"patched":null' in r.stdout:
            raise RuntimeError("webhook_tool_mutate failed or did not rewrite: %s" % r.stderr[-500:])
        counts.append(callgrind_total(out))
    return (counts[1] - counts[0]) / 10


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--update", action="store_true", help="write the baseline instead of checking")
    ap.add_argument("--only", default="proxy,webhook")
    args = ap.parse_args()
    for path in (PROXY, MUTATE):
        if not os.access(path, os.X_OK):
            sys.exit("icount: %s not built (make && make build/rel/test/webhook_tool_mutate)" % path)
    tmp = tempfile.mkdtemp(prefix="zw-icount-")
    got = {}
    only = args.only.split(",")
    if "proxy" in only:
        got["proxy_instructions_per_request"] = round(measure_proxy(tmp))
    if "webhook" in only:
        got["webhook_instructions_per_50_rule_review"] = round(measure_webhook(tmp))
    subprocess.run(["rm", "-rf", tmp])
    if args.update:
        base = {}
        if os.path.exists(BASELINE):
            with open(BASELINE) as f:
                base = json.load(f)
        base.update(got)
        with open(BASELINE, "w") as f:
            json.dump(base, f, indent=1, sort_keys=True)
            f.write("\n")
        print("icount: baseline written: %s" % json.dumps(got))
        return
    with open(BASELINE) as f:
        base = json.load(f)
    failed = []
    for k, v in got.items():
        ratio = v / base[k]
        print("icount: %s = %d (baseline %d, %.3fx)" % (k, v, base[k], ratio))
        if ratio > TOLERANCE:
            failed.append(k)
    if failed:
        sys.exit("icount: above the baseline by more than 10%%: %s (if intended, rerun with --update and say "
                 "why in the commit)" % ", ".join(failed))


if __name__ == "__main__":
    main()
