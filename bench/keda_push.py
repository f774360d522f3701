#!/usr/bin/python3
"""Time from a cold request reaching zerowire to KEDA's StreamIsActive
receiving `true`, with one and with two proxy replicas.

KEDA's side is played by the real grpcio client (stubs generated at run time
from ../shared/fixtures/proto/keda-externalscaler.proto). Each sample uses a
fresh target (ScaledObject app<i>): open StreamIsActive, wait for the
initial `false`, send the cold trigger, take the time until `true` arrives.

Modes:
  proxy  bin/zerowire-proxy in static mode (targets file, no endpoints): the
         trigger is a real HTTP request for a target with no ready endpoint;
         t0 is just before the request bytes are written to the socket.
         Two replicas are started with `--peers A,B` (each replica's admin
         address); a proxy without that flag gets the row "not available".
  tool   build/san/test/proxy_tool_scaler (the scaler alone, ASan build): the
         trigger is POST /test/cold on the replica's admin port; the time
         includes that HTTP exchange. Two replicas: the stream is held by A,
         the cold signal hits B, which tells A over the peer protocol.

Usage: bench/keda_push.py [--mode proxy|tool|both] [--samples N] [--json]
"""

import argparse
import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SHARED = os.environ.get("ZW_SHARED") or os.path.join(ROOT, "..", "shared")
PROTO = os.path.join(SHARED, "fixtures", "proto", "keda-externalscaler.proto")
PROXY = os.path.join(ROOT, "bin", "zerowire-proxy")
TOOL = os.environ.get("ZW_TOOL_SCALER") or os.path.join(
    ROOT, "build", "san", "test", "proxy_tool_scaler")


def load_stubs(tmp):
    import grpc  # noqa: F401  (fail early with a clear error)
    from grpc_tools import protoc
    if not os.path.exists(PROTO):
        sys.exit("upstream .proto absent: %s" % PROTO)
    src = os.path.join(tmp, "keda_externalscaler.proto")
    shutil.copyfile(PROTO, src)
    if protoc.main(["protoc", "-I" + tmp, "--python_out=" + tmp,
                    "--grpc_python_out=" + tmp, src]) != 0:
        sys.exit("grpc_tools.protoc failed")
    sys.path.insert(0, tmp)
    mods = []
    for name in ("keda_externalscaler_pb2", "keda_externalscaler_pb2_grpc"):
        spec = importlib.util.spec_from_file_location(name, os.path.join(tmp, name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        mods.append(mod)
    return mods


def meta(i):
    return {"scalerAddress": "zerowire:9090", "service": "app%d" % i, "port": "8080",
            "hosts": "app%d.example.com" % i, "scalingMetric": "requestRate",
            "targetValue": "10"}


def objects(n):
    return {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
         "metadata": {"name": "app%d" % i, "namespace": "bench"},
         "spec": {"scaleTargetRef": {"name": "app%d" % i},
                  "triggers": [{"type": "external-push", "metadata": meta(i)}]}}
        for i in range(n)]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not listening" % port)


class Replica:
    def __init__(self, mode, tmp, objs_path, name, admin_port=None, extra=()):
        self.mode = mode
        self.log = open(os.path.join(tmp, name + ".log"), "w")
        if mode == "proxy":
            self.http_port, self.grpc_port = free_port(), free_port()
            self.admin_port = admin_port or free_port()
            self.proc = subprocess.Popen(
                [PROXY, "--targets-file", objs_path, "--workers", "1",
                 "--listen", "127.0.0.1:%d" % self.http_port,
                 "--admin-listen", "127.0.0.1:%d" % self.admin_port,
                 "--scaler-listen", "127.0.0.1:%d" % self.grpc_port,
                 "--shutdown-delay", "0s", "--drain-timeout", "1s"] + list(extra),
                stdout=subprocess.DEVNULL, stderr=self.log)
            wait_port(self.grpc_port, self.proc)
            wait_port(self.http_port, self.proc)
        else:
            ports = os.path.join(tmp, name + ".ports")
            self.proc = subprocess.Popen(
                [TOOL, "--objects", objs_path, "--ports-file", ports, "--peer-poll-ms", "500",
                 "--admin-port", str(admin_port or 0)],
                stdout=subprocess.DEVNULL, stderr=self.log)
            deadline = time.time() + 15
            while not os.path.exists(ports):
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("tool did not start")
                time.sleep(0.02)
            with open(ports) as f:
                p = json.load(f)
            self.grpc_port, self.admin_port = p["grpc"], p["admin"]
        self.socks = []

    def cold(self, i):
        """Sends the cold trigger for target i; returns t0."""
        if self.mode == "proxy":
            s = socket.create_connection(("127.0.0.1", self.http_port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            req = ("GET / HTTP/1.1\r\nHost: app%d.example.com\r\n\r\n" % i).encode()
            t0 = time.monotonic()
            s.sendall(req)
            self.socks.append(s)  # held by the proxy; closed at the end
            return t0
        t0 = time.monotonic()
        urllib.request.urlopen(urllib.request.Request(
            "http://127.0.0.1:%d/test/cold?target=bench/app%d/0" % (self.admin_port, i),
            method="POST"), timeout=5).read()
        return t0

    def stop(self):
        for s in self.socks:
            s.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure(pb2, pb2_grpc, stream_at, cold_at, n):
    import grpc
    ch = grpc.insecure_channel("127.0.0.1:%d" % stream_at.grpc_port)
    stub = pb2_grpc.ExternalScalerStub(ch)
    out = []
    for i in range(n):
        q = queue.Queue()
        call = stub.StreamIsActive(pb2.ScaledObjectRef(
            name="app%d" % i, namespace="bench", scalerMetadata=meta(i)))

        def reader(call=call, q=q):
            try:
                for m in call:
                    q.put((time.monotonic(), m.result))
            except grpc.RpcError:
                pass
        th = threading.Thread(target=reader, daemon=True)
        th.start()
        _, first = q.get(timeout=10)
        if first is not False:
            raise RuntimeError("app%d: initial state %r" % (i, first))
        t0 = cold_at.cold(i)
        while True:
            t1, v = q.get(timeout=10)
            if v is True:
                break
        out.append((t1 - t0) * 1000.0)
        call.cancel()
        th.join(timeout=5)
    ch.close()
    return out


def summary(label, ms):
    ms = sorted(ms)
    return {"case": label, "samples": len(ms), "p50_ms": round(statistics.median(ms), 3),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 3),
            "max_ms": round(ms[-1], 3), "mean_ms": round(statistics.mean(ms), 3)}


def run_mode(mode, n, pb2, pb2_grpc, tmp):
    objs = os.path.join(tmp, "objects-%s.json" % mode)
    with open(objs, "w") as f:
        json.dump(objects(n), f)
    rows = []
    a = Replica(mode, tmp, objs, mode + "-a")
    try:
        rows.append(summary("%s, 1 replica" % mode, measure(pb2, pb2_grpc, a, a, n)))
    finally:
        a.stop()
    if mode == "proxy":
        helptext = subprocess.run([PROXY, "--help"], capture_output=True, text=True).stdout
        if "--peers" not in helptext:
            rows.append({"case": "proxy, 2 replicas", "note": "not available: zerowire-proxy "
                         "has no --peers flag yet (see the tool rows)"})
            return rows
    pa, pb = free_port(), free_port()
    peers = ["127.0.0.1:%d" % pa, "127.0.0.1:%d" % pb]
    extra = ["--peers", ",".join(peers)] if mode == "proxy" else []
    a = Replica(mode, tmp, objs, mode + "-a2", pa, extra)
    b = Replica(mode, tmp, objs, mode + "-b2", pb, extra)
    try:
        if mode == "tool":
            for r in (a, b):
                urllib.request.urlopen(urllib.request.Request(
                    "http://127.0.0.1:%d/test/peers" % r.admin_port,
                    data=json.dumps(peers).encode(), method="POST"), timeout=5).read()
        time.sleep(1.0)  # a few polls so each replica knows which peer is itself
        rows.append(summary("%s, 2 replicas (stream on A, cold on B)" % mode,
                            measure(pb2, pb2_grpc, a, b, n)))
    finally:
        a.stop()
        b.stop()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["proxy", "tool", "both"], default="both")
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="zw-keda-push-")
    pb2, pb2_grpc = load_stubs(tmp)
    rows = []
    modes = ["proxy", "tool"] if args.mode == "both" else [args.mode]
    for m in modes:
        binary = PROXY if m == "proxy" else TOOL
        if not os.access(binary, os.X_OK):
            rows.append({"case": m, "note": "%s not built" % binary})
            continue
        rows.extend(run_mode(m, args.samples, pb2, pb2_grpc, tmp))
    shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print("cold request -> StreamIsActive true (ms)")
    print("%-45s %7s %8s %8s %8s" % ("case", "samples", "p50", "p90", "max"))
    for r in rows:
        if "note" in r:
            print("%-45s %s" % (r["case"], r["note"]))
        else:
            print("%-45s %7d %8.3f %8.3f %8.3f" % (r["case"], r["samples"], r["p50_ms"],
                                                  r["p90_ms"], r["max_ms"]))


if __name__ == "__main__":
    main()
