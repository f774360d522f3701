#!/usr/bin/python3
"""zerowire-proxy benchmarks, side by side in one run, loopback only.

  warm      warm path: zerowire-proxy, nginx and HAProxy as reverse proxies to
            the same nginx backend; each proxy pinned to core 0 (taskset), wrk
            and the backend on core 1; requests/s, p50, p99 at 50 and 1000
            keep-alive connections (one warm-up run, then --duration seconds).
  hold      10,000 concurrent held cold-start requests (bench/hold_client):
            proxy RSS once all are held, then time from the endpoint turning
            ready (static-mode reload) to the last response, errors.
  ready     time from an endpoint turning ready to the first held request
            reaching the backend: static mode (file + SIGHUP) and, when the
            kube-apiserver is available, live mode (EndpointSlice patched
            ready through the API server, proxy watching it).
  targets   idle RSS with 1 and with 10,000 targets; warm-path requests/s with
            10,000 targets vs 1.
  keda      bench/keda_push.py (cold request -> StreamIsActive true), when present.
  burst     bench/burst.py: a 0 -> N burst and a warm surge onto pods of fixed
            capacity, without and with the per-endpoint allowance (auto).
  addon     (only with --only) zerowire-proxy and the KEDA HTTP add-on's
            interceptor + scaler (e2e/build-addon.sh) on one kube-apiserver:
            warm path, RSS, held cold requests, cold request -> active, cold
            start end to end (bench/addon_bench.py).
  h2        (only with --only) HTTP/2 warm path: h2load with prior knowledge
            through zerowire-proxy, nginx, HAProxy and h2o to an HTTP/1.1
            backend (bench/h2_bench.py).
  grpc      (only with --only) gRPC unary: ghz to a grpc-go backend, directly
            and through the same proxies (bench/h2_bench.py).

Prints a Markdown report and writes it to bench/results.md (--out). Every
wait is bounded; every process started here is stopped at the end.

Usage: bench/proxy_bench.py [--only warm,hold,ready,targets,keda,addon] [--duration S]
       [--held N] [--ready-samples N] [--out PATH] [--json PATH]
"""

import argparse
import ctypes
import http.client
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PROXY = os.environ.get("ZW_PROXY_BIN") or os.path.join(ROOT, "bin", "zerowire-proxy")
HOLD_CLIENT = os.environ.get("ZW_HOLD_CLIENT") or os.path.join(ROOT, "build", "bench", "hold_client")
WRK_LUA = os.path.join(ROOT, "bench", "wrk_json.lua")
PROXY_CORE = "0"
CLIENT_CORE = "1"
BACKEND_IP = "127.0.0.2"
HOST = "app.test"
ALL = ["warm", "hold", "ready", "targets", "keda", "burst"]
EXTRA = ["addon", "h2", "grpc"]  # run only when asked for (--only addon / h2 / grpc)


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# ---- small helpers ------------------------------------------------------------

def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise RuntimeError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def proc_status(pid, field):
    """A kB value (VmRSS, VmHWM) from /proc/pid/status, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """utime + stime of all threads of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def http_get(host, port, path="/", hdr_host=HOST, timeout=5):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Host": hdr_host})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def _die_with_parent():
    """preexec_fn: SIGKILL the child when this process dies (also when it is
    killed without a chance to clean up, e.g. by run.sh's time limit)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Proc:
    """A child process in its own session, output to a log file."""

    def __init__(self, name, argv, tmp, core=None, env=None):
        self.name = name
        self.log_path = os.path.join(tmp, name + ".log")
        self.logf = open(self.log_path, "ab")
        if core is not None:
            argv = ["taskset", "-c", core] + argv
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
                                  start_new_session=True, env=env, preexec_fn=_die_with_parent)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def tail(self, n=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()
        return self.p.returncode


# ---- configurations -----------------------------------------------------------

def nginx_conf(tmp, name, body):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    temps = "".join("    %s_temp_path %s/%s;\n" % (t, d, t)
                    for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = """daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid %(d)s/nginx.pid;
error_log stderr warn;
events { worker_connections 20000; multi_accept on; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
%(temps)s%(body)s
}
""" % {"d": d, "temps": temps, "body": body}
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return ["nginx", "-p", d, "-e", "stderr", "-c", path]


def haproxy_conf(tmp, name, bind, server):
    """Writes tmp/name.cfg: HAProxy in HTTP mode, 1 thread, keep-alive and
    `http-reuse always`, frontend bind line `bind` (address and options),
    one server line `server` (address and options). Returns the argv that
    runs it in the foreground."""
    cfg = os.path.join(tmp, name + ".cfg")
    with open(cfg, "w") as f:
        f.write("""global
    nbthread 1
    maxconn 8000
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 300s
frontend fe
    bind %s
    default_backend be
backend be
    server s1 %s
""" % (bind, server))
    return ["haproxy", "-db", "-f", cfg]


def start_backend(tmp, core=CLIENT_CORE, name="backend"):
    port = free_port(BACKEND_IP)
    argv = nginx_conf(tmp, name, """    server {
        listen %s:%d backlog=4096;
        location / { default_type text/plain; return 200 "hello from the backend\\n"; }
    }""" % (BACKEND_IP, port))
    p = Proc(name, argv, tmp, core)
    wait_for(lambda: port_open(BACKEND_IP, port) or not p.alive(), 10, what="backend nginx")
    if not p.alive():
        raise RuntimeError("backend nginx exited:\n" + p.tail())
    p.port = port
    return p


def scaledobject(i, host, service, port=80, ns="bench", **meta):
    md = {"service": service, "port": str(port), "hosts": host}
    md.update({k: str(v) for k, v in meta.items()})
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "app%d" % i, "namespace": ns},
            "spec": {"scaleTargetRef": {"name": "app%d" % i},
                     "triggers": [{"type": "external-push", "metadata": md}]}}


def endpointslice(service, ip, port, ready=True, ns="bench", api="discovery.k8s.io/v1"):
    return {"apiVersion": api, "kind": "EndpointSlice",
            "metadata": {"name": service + "-zw", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": "", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}]}


def write_list(path, items):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
    os.replace(tmp, path)


class Zerowire:
    """bin/zerowire-proxy in static mode (or live mode with kubeconfig)."""

    def __init__(self, tmp, name, targets=None, endpoints=None, core=None, workers=1, args=(),
                 kubeconfig=None, namespace=None, ready_timeout=60, binary=None):
        self.targets_file = os.path.join(tmp, name + "-targets.json")
        self.endpoints_file = os.path.join(tmp, name + "-endpoints.json")
        if kubeconfig:
            src = ["--kubeconfig", kubeconfig, "--namespace", namespace]
        else:
            write_list(self.targets_file, targets or [])
            write_list(self.endpoints_file, endpoints or [])
            src = ["--targets-file", self.targets_file, "--endpoints-file", self.endpoints_file]
        self.port = free_port()
        self.admin_port = free_port()
        self.scaler_port = free_port()
        argv = [binary or PROXY, "--listen", "127.0.0.1:%d" % self.port,
                "--admin-listen", "127.0.0.1:%d" % self.admin_port,
                "--scaler-listen", "127.0.0.1:%d" % self.scaler_port,
                "--log-level", "warn", "--shutdown-delay", "0s", "--drain-timeout", "2s"]
        if workers:
            argv += ["--workers", str(workers)]
        argv += src + list(args)
        self.proc = Proc(name, argv, tmp, core)
        self.pid = self.proc.pid
        wait_for(lambda: self.admin("/readyz")[0] == 200 or not self.proc.alive(), ready_timeout,
                 what="zerowire-proxy /readyz")
        if not self.proc.alive():
            raise RuntimeError("zerowire-proxy exited:\n" + self.proc.tail())

    def admin(self, path):
        try:
            return http_get("127.0.0.1", self.admin_port, path, hdr_host="localhost", timeout=10)
        except OSError:
            return 0, b""

    def queue(self):
        st, body = self.admin("/queue")
        return json.loads(body) if st == 200 else {}

    def held(self, key):
        return self.queue().get(key, {}).get("held", 0)

    def set_endpoints(self, items):
        write_list(self.endpoints_file, items)
        self.proc.p.send_signal(signal.SIGHUP)

    def stop(self):
        return self.proc.stop(timeout=15)


# ---- wrk ------------------------------------------------------------------------

def wrk(port, conns, duration, host=HOST):
    argv = ["taskset", "-c", CLIENT_CORE, "wrk", "-t1", "-c%d" % conns, "-d%ds" % duration,
            "--timeout", "5s", "-H", "Host: " + host, "-s", WRK_LUA, "http://127.0.0.1:%d/" % port]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=duration + 60)
    for line in r.stdout.splitlines():
        if line.startswith("ZWJSON "):
            res = json.loads(line[7:])
            res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
            res["errors_total"] = sum(res["errors"].values())
            return res
    raise RuntimeError("wrk failed (exit %d): %s" % (r.returncode, r.stdout[-2000:]))


def measured_wrk(pid, port, conns, duration, warmup, host=HOST, backend_pid=None):
    """One warm-up run, then the measured run with the CPU time used by pid
    (and the backend) during it."""
    if warmup:
        wrk(port, conns, warmup, host)
    la = loadavg()
    c0 = cpu_seconds(pid)
    b0 = cpu_seconds(backend_pid) if backend_pid else 0
    t0 = time.monotonic()
    res = wrk(port, conns, duration, host)
    dt = time.monotonic() - t0
    res["cpu"] = (cpu_seconds(pid) - c0) / dt
    res["backend_cpu"] = (cpu_seconds(backend_pid) - b0) / dt if backend_pid else None
    res["loadavg"] = la
    return res


# ---- 1. warm path ---------------------------------------------------------------

def nginx_proxy_argv(tmp, be, port):
    """The warm path's nginx reverse proxy on 127.0.0.1:port to backend be
    (host:port): HTTP/1.1 upstream with a keep-alive pool of 1024."""
    return nginx_conf(tmp, "nginx-proxy", """    upstream be {
        server %s;
        keepalive 1024;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:%d backlog=4096;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }""" % (be, port))


def bench_warm(tmp, args):
    backend = start_backend(tmp)
    procs = []
    rows = []
    try:
        be = "%s:%d" % (BACKEND_IP, backend.port)
        # zerowire-proxy
        zw = Zerowire(tmp, "zw-warm", [scaledobject(0, HOST, "app")],
                      [endpointslice("app", BACKEND_IP, backend.port)], core=PROXY_CORE, workers=1,
                      args=["--max-idle-per-endpoint", "1024", "--max-connections", "12000"])
        procs.append(("zerowire-proxy", zw.proc, zw.port))
        # nginx as a reverse proxy
        nport = free_port()
        nx = Proc("nginx-proxy", nginx_proxy_argv(tmp, be, nport), tmp, PROXY_CORE)
        procs.append(("nginx", nx, nport))
        # HAProxy
        hport = free_port()
        hx = Proc("haproxy", haproxy_conf(tmp, "haproxy", "127.0.0.1:%d" % hport, be), tmp, PROXY_CORE)
        procs.append(("HAProxy", hx, hport))
        for name, p, port in procs:
            wait_for(lambda: port_open("127.0.0.1", port) or not p.alive(), 10, what=name)
            if not p.alive():
                raise RuntimeError("%s exited:\n%s" % (name, p.tail()))
            st, body = http_get("127.0.0.1", port)
            if st != 200:
                raise RuntimeError("%s answered %d: %r" % (name, st, body[:200]))
        runs = []
        for rnd in range(args.rounds):
            for conns in args.conns:
                order = procs[rnd % len(procs):] + procs[:rnd % len(procs)]
                for name, p, port in order:
                    log("warm path: round %d, %s, %d connections, %ds" % (rnd + 1, name, conns, args.duration))
                    res = measured_wrk(p.pid, port, conns, args.duration, args.warmup, backend_pid=backend.pid)
                    res.update({"proxy": name, "conns": conns, "round": rnd + 1,
                                "rss_kib": proc_status(p.pid, "VmRSS")})
                    runs.append(res)
        for conns in args.conns:
            for name, p, port in procs:
                rows.append(combine([r for r in runs if r["proxy"] == name and r["conns"] == conns]))
        if args.syscalls:
            for name, p, port in procs:
                log("warm path: syscalls per request, %s (strace -c)" % name)
                sc = syscalls_per_request(tmp, p.pid, port)
                for r in rows:
                    if r["proxy"] == name:
                        r["syscalls"] = sc
    finally:
        for _, p, _ in procs:
            p.stop()
        backend.stop()
    return rows


def syscalls_per_request(tmp, pid, port, conns=50, seconds=3):
    """System calls per proxied request (all threads of pid) under a short
    wrk run, counted by strace -c. Returns {syscall: calls per request}, or
    a string when strace is not available."""
    if not any(os.access(os.path.join(d, "strace"), os.X_OK) for d in os.environ.get("PATH", "").split(":")):
        return "strace not installed"
    out = os.path.join(tmp, "strace-%d.txt" % pid)
    st = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(pid)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        res = wrk(port, conns, seconds)
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(20)
    calls = {}
    with open(out) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3]) / max(res["requests"], 1)
    return calls


def combine(runs):
    """Median over rounds of one configuration (errors summed, CPU averaged)."""
    out = dict(runs[-1])
    for k in ("rps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us"):
        out[k] = statistics.median(r[k] for r in runs)
    out["errors_total"] = sum(r["errors_total"] for r in runs)
    out["cpu"] = statistics.mean(r["cpu"] for r in runs)
    if runs[0].get("backend_cpu") is not None:
        out["backend_cpu"] = statistics.mean(r["backend_cpu"] for r in runs)
    out["rounds"] = [{k: r[k] for k in ("rps", "p50_us", "p99_us", "cpu", "loadavg")} for r in runs]
    out["loadavg"] = "/".join(r["loadavg"] for r in runs)
    out["rss_kib"] = max(r.get("rss_kib", 0) for r in runs)
    return out


def fmt_warm(rows):
    out = ["| proxy | conns | req/s | vs nginx | p50 ms | p99 ms | p99 vs nginx | errors | proxy CPU | req per proxy CPU-s | backend CPU | RSS MiB | load |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ref = next((x for x in rows if x["proxy"] == "nginx" and x["conns"] == r["conns"]), None)
        ratio = r["rps"] / ref["rps"] if ref else float("nan")
        p99r = r["p99_us"] / ref["p99_us"] if ref and ref["p99_us"] else float("nan")
        out.append("| %s | %d | %.0f | %.2f× | %.2f | %.2f | %.2f× | %d | %.0f%% | %.0f | %s | %.1f | %s |" % (
            r["proxy"], r["conns"], r["rps"], ratio, r["p50_us"] / 1000, r["p99_us"] / 1000, p99r,
            r["errors_total"], r["cpu"] * 100, r["rps"] / r["cpu"] if r["cpu"] else float("nan"),
            "%.0f%%" % (r["backend_cpu"] * 100) if r.get("backend_cpu") is not None else "-",
            r.get("rss_kib", 0) / 1024, r["loadavg"]))
    seen = []
    for r in rows:
        sc = r.get("syscalls")
        if sc is None or r["proxy"] in seen:
            continue
        seen.append(r["proxy"])
        if not seen[1:]:
            out += ["", "System calls per proxied request (strace -c on the proxy, 50 connections, 3 s; "
                    "strace slows the proxy, the counts per request are what matters):", "",
                    "| proxy | total | largest |", "|---|---:|---|"]
        if isinstance(sc, str):
            out.append("| %s | - | %s |" % (r["proxy"], sc))
            continue
        top = sorted(sc.items(), key=lambda kv: -kv[1])
        out.append("| %s | %.1f | %s |" % (r["proxy"], sum(sc.values()), ", ".join(
            "%s %.2f" % kv for kv in top if kv[1] >= 0.05)))
    return out


# ---- 2. 10,000 held cold-start requests -------------------------------------------

def bench_hold(tmp, args):
    n = args.held
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < n + 1000:
        raise RuntimeError("open-file limit %d is too low for %d held requests (needs at least %d; "
                           "run through bench/run.sh, which raises it to the hard limit)" % (soft, n, n + 1000))
    backend = start_backend(tmp, name="backend-hold")
    zw = None
    res = {"n": n}
    try:
        zw = Zerowire(tmp, "zw-hold", [scaledobject(0, HOST, "app")], [], core=PROXY_CORE, workers=1,
                      args=["--max-connections", str(n + 2000), "--max-held", str(n),
                            "--max-idle-per-endpoint", "1024"])
        res["rss_idle_kib"] = proc_status(zw.pid, "VmRSS")
        key = "bench/app0/0"
        res.update(held_run(zw.port, HOST, n, zw.pid, lambda: zw.held(key),
                            lambda: zw.set_endpoints([endpointslice("app", BACKEND_IP, backend.port)])))
        res["proxy_log_tail"] = zw.proc.tail(8)
    finally:
        if zw:
            zw.stop()
        backend.stop()
    return res


def held_run(port, host, n, pid, held, make_ready):
    """n requests held at once by the proxy pid on port (bench/hold_client),
    held() counting them; RSS once all are held; then make_ready() (time 0)
    and the client's report: first/last response after time 0, errors."""
    res = {}
    client = subprocess.Popen(["taskset", "-c", CLIENT_CORE, HOLD_CLIENT, "--connect", "127.0.0.1:%d" % port,
                               "--host", host, "--n", str(n), "--timeout-ms", "60000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, preexec_fn=_die_with_parent)
    try:
        t_start = time.monotonic()
        line = client.stdout.readline()
        if not line.startswith("sent "):
            raise RuntimeError("hold_client: %r %s" % (line, client.stderr.read()[-2000:]))
        res["sent"] = int(line.split()[1])
        res["connect_s"] = time.monotonic() - t_start
        try:
            wait_for(lambda: held() >= n, 60, interval=0.1, what="%d held requests" % n)
        except RuntimeError as e:
            res["held_error"] = str(e)
        res["held"] = held()
        time.sleep(0.5)
        res["rss_held_kib"] = proc_status(pid, "VmRSS")
        res["hwm_held_kib"] = proc_status(pid, "VmHWM")
        t0 = time.monotonic_ns()
        res["t0_ns"] = t0
        make_ready()
        out, err = client.communicate(timeout=90)
        rep = json.loads(out.strip().splitlines()[-1])
        res["client"] = rep
        res["first_ms"] = (rep["first_ns"] - t0) / 1e6 if rep["first_ns"] else None
        res["last_ms"] = (rep["last_ns"] - t0) / 1e6 if rep["last_ns"] else None
        res["errors"] = n - rep["ok"]
        res["rss_after_kib"] = proc_status(pid, "VmRSS")
        res["hwm_after_kib"] = proc_status(pid, "VmHWM")
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    return res


def fmt_hold(r):
    c = r.get("client", {})
    errs = ", ".join("%s %d" % (k, v) for k, v in c.get("errors", {}).items() if v) or "none"
    st = ", ".join("%s: %d" % kv for kv in sorted(c.get("status", {}).items())) or "-"
    ms = lambda v: "%.0f ms" % v if v is not None else "-"  # noqa: E731
    return [
        "| measure | value | target |", "|---|---:|---|",
        "| requests sent / held at once | %d / %d | %d |" % (r.get("sent", 0), r.get("held", 0), r["n"]),
        "| proxy RSS idle (before) | %.1f MiB | |" % (r.get("rss_idle_kib", 0) / 1024),
        "| proxy RSS with all held | %.1f MiB | ≤ 64 MiB |" % (r.get("rss_held_kib", 0) / 1024),
        "| proxy peak RSS (VmHWM) after release | %.1f MiB | |" % (r.get("hwm_after_kib", 0) / 1024),
        "| ready → first response | %s | |" % ms(r.get("first_ms")),
        "| ready → last response | %s | ≤ 1 s |" % ms(r.get("last_ms")),
        "| responses 200 | %d | %d |" % (c.get("ok", 0), r["n"]),
        "| errors (client side) | %d (%s) | 0 |" % (r.get("errors", r["n"]), errs),
        "| status codes | %s | |" % st,
    ]


# ---- 3. ready -> first held request at the backend ---------------------------------

class StampBackend:
    """Raw HTTP/1.1 backend on ip: timestamps (CLOCK_MONOTONIC ns) the first
    bytes of every request it receives and answers 200."""

    def __init__(self, ip="127.0.0.3"):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, 0))
        self.sock.listen(128)
        self.ip = ip
        self.port = self.sock.getsockname()[1]
        self.arrivals = []
        self.cv = threading.Condition()
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                if not buf:
                    t = time.monotonic_ns()
                    with self.cv:
                        self.arrivals.append(t)
                        self.cv.notify_all()
                buf += d
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n")
        except OSError:
            return
        finally:
            c.close()

    def wait_arrival(self, after_count, timeout):
        with self.cv:
            if not self.cv.wait_for(lambda: len(self.arrivals) > after_count, timeout):
                return None
            return self.arrivals[after_count]

    def close(self):
        self.closing = True
        self.sock.close()


def one_held_request(port, host, box):
    try:
        st, body = http_get("127.0.0.1", port, "/", hdr_host=host, timeout=20)
        box["status"] = st
    except Exception as e:  # noqa: BLE001 - reported
        box["status"] = repr(e)


def ready_samples(zw, key, host, be, make_unready, make_ready, samples, ref=None):
    """Per sample: endpoint unready, one request held, then make_ready().
    Returns {"start": [ms], "ack": [ms], "ref": [ms], "errors": [...]}: the
    first arrival at the backend minus the moment before make_ready(), after
    it returned, and (with ref) minus ref(), the time a reference watcher saw
    the endpoint turn ready."""
    out = {"start": [], "ack": [], "ref": [], "errors": []}
    for i in range(samples):
        make_unready()
        time.sleep(0.25)
        box = {}
        before = len(be.arrivals)
        t = threading.Thread(target=one_held_request, args=(zw.port, host, box), daemon=True)
        t.start()
        try:
            wait_for(lambda: zw.held(key) == 1 or len(be.arrivals) > before, 5, what="one held request")
        except RuntimeError as e:
            out["errors"].append("sample %d: %s" % (i, e))
            continue
        if len(be.arrivals) > before:
            # The proxy still had the endpoint: not a cold request.
            t.join(5)
            out["errors"].append("sample %d: request was not held (endpoint still ready)" % i)
            continue
        t0 = time.monotonic_ns()
        make_ready()
        t_ack = time.monotonic_ns()
        t1 = be.wait_arrival(before, 10)
        t_ref = ref() if ref else None
        t.join(10)
        if t1 is None or box.get("status") != 200:
            out["errors"].append("sample %d: no arrival or status %r" % (i, box.get("status")))
            continue
        out["start"].append((t1 - t0) / 1e6)
        out["ack"].append((t1 - t_ack) / 1e6)
        if t_ref is not None:
            out["ref"].append((t1 - t_ref) / 1e6)
    return out


def bench_ready_static(tmp, args):
    be = StampBackend()
    zw = None
    try:
        zw = Zerowire(tmp, "zw-ready-static", [scaledobject(0, "lat.test", "lat")], [], workers=1)
        res = ready_samples(zw, "bench/app0/0", "lat.test", be,
                            lambda: zw.set_endpoints([]),
                            lambda: zw.set_endpoints([endpointslice("lat", be.ip, be.port)]),
                            args.ready_samples)
        res["labels"] = {"start": "before the file is rewritten", "ack": "after SIGHUP was sent"}
        return res
    finally:
        if zw:
            zw.stop()
        be.close()


class RefWatch:
    """A reference watcher on one EndpointSlice (its own HTTPS connection to
    the API server): timestamps every event as it arrives and records whether
    the endpoint is ready."""

    def __init__(self, cluster, path, name):
        import ssl
        from urllib.parse import urlencode, urlparse
        self.events = []
        self.cv = threading.Condition()
        rv = cluster.api("GET", path)["metadata"]["resourceVersion"]
        ctx = ssl.create_default_context(cafile=cluster.ca_file)
        ctx.load_cert_chain(os.path.join(cluster.pki, "admin.crt"), os.path.join(cluster.pki, "admin.key"))
        u = urlparse(cluster.server)
        self.conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=900)
        self.conn.request("GET", path + "?" + urlencode({
            "watch": "1", "resourceVersion": rv, "fieldSelector": "metadata.name=" + name}))
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError("watch %s: %d %r" % (path, self.resp.status, self.resp.read()[:300]))
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        buf = b""
        try:
            while True:
                chunk = self.resp.read1(65536)
                if not chunk:
                    return
                t = time.monotonic_ns()
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    ev = json.loads(line)
                    eps = ev.get("object", {}).get("endpoints") or []
                    ready = bool(eps) and all(e.get("conditions", {}).get("ready") for e in eps)
                    with self.cv:
                        self.events.append((t, ready))
                        self.cv.notify_all()
        except Exception:  # noqa: BLE001 - the watch ends when closed
            return

    def mark(self):
        with self.cv:
            return len(self.events)

    def ready_after(self, mark, timeout=10):
        """Time of the first ready event after event index mark, or None."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for t, ready in self.events[mark:]:
                    if ready:
                        return t
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader
        except OSError:
            pass
        self.conn.close()


def use_cached_apiserver():
    """Points the e2e harness at a cached kube-apiserver (ZW_KUBE_APISERVER);
    never starts the 7-minute build from a benchmark. Returns None, or the
    reason to skip."""
    sys.path.insert(0, os.path.join(ROOT, "e2e"))
    from harness.cluster import cache_dir  # noqa: E402
    if not os.environ.get("ZW_KUBE_APISERVER"):
        d = cache_dir()
        found = sorted((os.path.join(d, f) for f in (os.listdir(d) if os.path.isdir(d) else [])
                        if f.startswith("kube-apiserver-") and os.access(os.path.join(d, f), os.X_OK)),
                       key=os.path.getmtime)
        if not found:
            return "skipped: kube-apiserver not built (run e2e/build-apiserver.sh once, about 7 minutes)"
        os.environ["ZW_KUBE_APISERVER"] = found[-1]
    return None


def bench_ready_live(tmp, args):
    missing = use_cached_apiserver()
    if missing:
        return missing
    from harness.cluster import Cluster  # noqa: E402
    be = StampBackend("127.0.0.4")
    cluster = None
    zw = None
    watch = None
    try:
        log("ready (live): starting etcd + kube-apiserver")
        t = time.monotonic()
        cluster = Cluster(tmpdir=os.path.join(tmp, "cluster")).start()
        log("ready (live): control plane up in %.0f s" % (time.monotonic() - t))
        ns = cluster.create_namespace("bench")
        served = cluster.api("GET", "/apis/discovery.k8s.io")["versions"]
        api = "discovery.k8s.io/v1" if any(v["version"] == "v1" for v in served) else "discovery.k8s.io/v1beta1"
        cluster.api("POST", "/api/v1/namespaces/%s/services" % ns, {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "lat", "namespace": ns},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": be.port}]}})
        es = endpointslice("lat", be.ip, be.port, ready=False, ns=ns, api=api)
        es["ports"][0]["name"] = "http"
        group_path = "/apis/%s/namespaces/%s/endpointslices" % (api, ns)
        cluster.api("POST", group_path, es)
        so = scaledobject(0, "lat.test", "lat", ns=ns)
        cluster.api("POST", "/apis/keda.sh/v1alpha1/namespaces/%s/scaledobjects" % ns, so)
        zw = Zerowire(tmp, "zw-ready-live", workers=1, kubeconfig=cluster.kubeconfig, namespace=ns)
        key = "%s/app0/0" % ns
        wait_for(lambda: key in zw.queue(), 20, what="target from the ScaledObject")
        watch = RefWatch(cluster, group_path, "lat-zw")
        marks = []

        def patch(ready):
            if ready:
                marks.append(watch.mark())
            cluster.api("PATCH", "%s/lat-zw" % group_path,
                        {"endpoints": [{"addresses": [be.ip], "conditions": {"ready": ready}}]},
                        content_type="application/merge-patch+json")
        res = ready_samples(zw, key, "lat.test", be, lambda: patch(False), lambda: patch(True),
                            args.ready_samples, ref=lambda: watch.ready_after(marks[-1]))
        res["api"] = api
        res["labels"] = {"ref": "a reference watch receives the ready event",
                         "start": "before the PATCH is sent", "ack": "the PATCH response arrived"}
        return res
    finally:
        if watch:
            watch.close()
        if zw:
            zw.stop()
        if cluster:
            cluster.stop()
        be.close()


def fmt_ready(results):
    out = ["| endpoint made ready through | time 0 | samples | median ms | max ms | target | failed samples |",
           "|---|---|---:|---:|---:|---|---|"]
    for name, r in results:
        if isinstance(r, str):
            out.append("| %s | - | 0 | - | - | ≤ 20 ms | %s |" % (name, r.replace("|", "/")))
            continue
        errs = "; ".join(r["errors"])[:300] or "none"
        shown = False
        for k in ("ref", "start", "ack"):
            label = r.get("labels", {}).get(k, k)
            v = r.get(k) or []
            if not v:
                continue
            shown = True
            out.append("| %s | %s | %d | %.1f | %.1f | ≤ 20 ms | %s |" % (
                name, label, len(v), statistics.median(v), max(v), errs))
        if not shown:
            out.append("| %s | - | 0 | - | - | ≤ 20 ms | %s |" % (name, errs))
    return out


# ---- 4. targets: idle RSS, warm path with 10,000 targets -----------------------------

def bench_targets(tmp, args):
    backend = start_backend(tmp, name="backend-targets")
    res = {"rows": [], "rss": []}
    warm = {}
    try:
        for n in (1, args.many_targets):
            targets = [scaledobject(i, "app%d.bench.test" % i, "app%d" % i) for i in range(n)]
            eps = [endpointslice("app%d" % i, BACKEND_IP, backend.port) for i in range(n)]
            for workers in (None, 1):
                t0 = time.monotonic()
                zw = Zerowire(tmp, "zw-targets-%d-%s" % (n, workers or "default"), targets, eps,
                              core=PROXY_CORE if workers == 1 else None, workers=workers,
                              args=["--max-idle-per-endpoint", "1024"], ready_timeout=120)
                load_s = time.monotonic() - t0
                time.sleep(1.0)
                rss = proc_status(zw.pid, "VmRSS")
                threads = len(os.listdir("/proc/%d/task" % zw.pid))
                res["rss"].append({"targets": n, "workers": "1 (%d threads)" % threads if workers else
                                   "default (%d threads)" % threads, "rss_kib": rss, "load_s": load_s})
                if workers == 1:
                    warm[n] = zw  # kept for the warm-path runs below
                else:
                    zw.stop()
        runs = []
        for rnd in range(args.rounds):
            for n in (1, args.many_targets) if rnd % 2 == 0 else (args.many_targets, 1):
                zw = warm[n]
                host = "app%d.bench.test" % (n // 2)
                st, body = http_get("127.0.0.1", zw.port, hdr_host=host)
                if st != 200:
                    raise RuntimeError("%d targets: %s answered %d %r" % (n, host, st, body[:200]))
                log("targets: round %d, %d targets, warm path 50 connections" % (rnd + 1, n))
                r = measured_wrk(zw.pid, zw.port, 50, args.duration, args.warmup, host=host,
                                 backend_pid=backend.pid)
                r.update({"targets": n, "host": host, "rss_after_kib": proc_status(zw.pid, "VmRSS")})
                runs.append(r)
        for n in (1, args.many_targets):
            row = combine([r for r in runs if r["targets"] == n])
            row["rss_after_kib"] = max(r["rss_after_kib"] for r in runs if r["targets"] == n)
            res["rows"].append(row)
    finally:
        for zw in warm.values():
            zw.stop()
        backend.stop()
    return res


def fmt_targets(r):
    out = ["| targets | workers | idle RSS MiB | load+publish s | target |", "|---:|---|---:|---:|---|"]
    for x in r["rss"]:
        out.append("| %d | %s | %.1f | %.2f | %s |" % (
            x["targets"], x["workers"], x["rss_kib"] / 1024, x["load_s"],
            "≤ 8 MiB" if x["targets"] == 1 else ""))
    out += ["", "| targets | req/s (50 conns) | vs 1 target | p50 ms | p99 ms | errors | proxy CPU | "
            "req per proxy CPU-s | vs 1 target | RSS after MiB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    one = next((x for x in r["rows"] if x["targets"] == 1), None)

    def eff(x):
        return x["rps"] / x["cpu"] if x["cpu"] else float("nan")
    for x in r["rows"]:
        out.append("| %d | %.0f | %.2f× | %.2f | %.2f | %d | %.0f%% | %.0f | %.2f× | %.1f |" % (
            x["targets"], x["rps"], x["rps"] / one["rps"] if one else float("nan"),
            x["p50_us"] / 1000, x["p99_us"] / 1000, x["errors_total"], x["cpu"] * 100,
            eff(x), eff(x) / eff(one) if one else float("nan"), x["rss_after_kib"] / 1024))
    return out


# ---- 5. KEDA push (bench/keda_push.py, another helper's) -------------------------------

def bench_keda(tmp, args):
    script = os.path.join(ROOT, "bench", "keda_push.py")
    if not os.path.exists(script):
        return "bench/keda_push.py absent"
    tool = os.path.join(ROOT, "build", "san", "test", "proxy_tool_scaler")
    mode = "both" if os.access(tool, os.X_OK) else "proxy"
    r = subprocess.run(["/usr/bin/python3", script, "--mode", mode, "--samples", str(args.keda_samples),
                        "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=240)
    if r.returncode != 0:
        return "keda_push.py failed (exit %d): %s" % (r.returncode, (r.stderr or r.stdout)[-600:])
    return json.loads(r.stdout)


def fmt_keda(r):
    if isinstance(r, str):
        return [r]
    out = ["| case | samples | p50 ms | p90 ms | max ms | target |", "|---|---:|---:|---:|---:|---|"]
    for x in r:
        if "note" in x:
            out.append("| %s | - | - | - | - | ≤ 10 ms (%s) |" % (x["case"], x["note"]))
        else:
            out.append("| %s | %d | %.2f | %.2f | %.2f | ≤ 10 ms |" % (
                x["case"], x["samples"], x["p50_ms"], x["p90_ms"], x["max_ms"]))
    return out


# ---- report -------------------------------------------------------------------------

def bench_burst(tmp, args):
    out = os.path.join(tmp, "burst.json")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "burst.py"), "--proxy", PROXY, "--json", out],
                   check=True, timeout=180, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def fmt_burst(rows):
    out = ["| allowance | requests | errors (503 from an overloaded pod) | p50 | p99 | max | highest pod concurrency | last response |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| %s | %d | %d | %.0f ms | %.0f ms | %.0f ms | %d | %.1f s |" % (
            r["allowance"], r["requests"], r["errors"], r["p50_ms"], r["p99_ms"], r["max_ms"],
            r["pod_max_concurrency"], r["last_response_s"]))
    return out


def environment():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def ver(argv):
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
            return r.stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"
    commit = ver(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    return ["- date: %s UTC, commit %s" % (time.strftime("%Y-%m-%d %H:%M", time.gmtime()), commit),
            "- CPU: %s, %d cores, kernel %s" % (cpu, os.cpu_count(), platform.release()),
            "- %s; %s; %s; %s" % (ver([PROXY, "--version"]), ver(["nginx", "-v"]),
                                  ver(["haproxy", "-v"]), ver(["wrk", "-v"])),
            "- load average at start: %s (the machine is shared; figures move with it)" % loadavg()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(ALL), help="comma list of: " + ",".join(ALL + EXTRA))
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of the warm-up run (default 2)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="measured runs per configuration, interleaved; medians reported (default 3)")
    ap.add_argument("--no-syscalls", dest="syscalls", action="store_false",
                    help="skip the strace count of system calls per request")
    ap.add_argument("--conns", default="50,1000", help="wrk connection counts (default 50,1000)")
    ap.add_argument("--held", type=int, default=10000, help="held cold-start requests (default 10000)")
    ap.add_argument("--many-targets", type=int, default=10000, help="targets in the large table (default 10000)")
    ap.add_argument("--ready-samples", type=int, default=10, help="samples per ready-latency mode (default 10)")
    ap.add_argument("--keda-samples", type=int, default=20, help="samples for keda_push.py (default 20)")
    ap.add_argument("--addon-samples", type=int, default=10,
                    help="cold request -> active samples per product in addon (default 10)")
    ap.add_argument("--h2-shapes", default="8x8,100x10",
                    help="h2: connections x streams per connection (default 8x8,100x10)")
    ap.add_argument("--grpc-shapes", default="8x8,100x10",
                    help="grpc: connections x concurrent calls per connection (default 8x8,100x10)")
    ap.add_argument("--h2-proxies", default="",
                    help="h2/grpc: comma list of the proxies to run, e.g. zerowire-proxy,nginx (default: all)")
    ap.add_argument("--out", help="report path (default bench/results.md; bench/results-h2.md when only "
                    "h2/grpc run)")
    ap.add_argument("--json", help="also write the raw results as JSON here")
    args = ap.parse_args()
    # run.sh's time limit sends SIGTERM: unwind so every finally stops its processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated (time limit)"))
    args.conns = [int(x) for x in args.conns.split(",")]
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    bad = [x for x in only if x not in ALL + EXTRA]
    if bad:
        ap.error("unknown benchmark(s): %s" % ", ".join(bad))
    if not os.access(PROXY, os.X_OK):
        sys.exit("bench: %s not built (run make)" % PROXY)
    if not args.out:
        h2only = set(only) <= {"h2", "grpc"}
        args.out = os.path.join(ROOT, "bench", "results-h2.md" if h2only else "results.md")
    raw = {}
    failed = []
    report = ["# zerowire-proxy benchmarks", ""] + environment()
    tmp = tempfile.mkdtemp(prefix="zw-bench-")
    log("work directory %s" % tmp)
    t_all = time.monotonic()

    def section(title, fn, fmt, notes=()):
        log("== %s" % title)
        t = time.monotonic()
        try:
            r = fn()
            raw[title] = r
            body = fmt(r)
        except Exception as e:  # noqa: BLE001 - a failed benchmark is reported, the others still run
            raw[title] = {"error": repr(e)}
            failed.append(title)
            body = ["**failed:** `%s`" % str(e).replace("\n", " ")[:1500]]
        report.extend(["", "## " + title, ""] + list(notes) + body +
                       ["", "_(%.0f s)_" % (time.monotonic() - t)])

    if "warm" in only:
        section("Warm path (proxy on core 0, wrk + nginx backend on core 1)",
                lambda: bench_warm(tmp, args), fmt_warm,
                ["Median of %d interleaved rounds; %d s per run after a %d s warm-up; 1 worker/thread each; upstream keep-alive pools of "
                 "1024 idle connections (nginx `keepalive 1024`, HAProxy `http-reuse always`, "
                 "zerowire `--max-idle-per-endpoint 1024`). Target: zerowire ≥ 1.2× nginx req/s, "
                 "p99 ≤ nginx's. CPU columns: share of one core used during the run; load: 1-min load "
                 "average before each round." % (args.rounds, args.duration, args.warmup), ""])
    if "hold" in only:
        section("%d concurrent held cold-start requests" % args.held, lambda: bench_hold(tmp, args), fmt_hold,
                ["bench/hold_client opens %d connections (one GET each) to a target without endpoints; "
                 "once /queue shows them all held, the EndpointSlice file is rewritten and SIGHUP sent "
                 "(time 0); the client timestamps every complete response. Proxy: 1 worker on core 0, "
                 "`--max-held %d`; backend nginx and client on core 1." % (args.held, args.held), ""])
    if "ready" in only:
        def ready():
            res = [("static mode (file + SIGHUP)", bench_ready_static(tmp, args))]
            try:
                res.append(("kube-apiserver (EndpointSlice PATCH ready, proxy watching)",
                            bench_ready_live(tmp, args)))
            except Exception as e:  # noqa: BLE001 - reported in the table
                res.append(("kube-apiserver", "failed: %s" % str(e).replace("\n", " ")[:600]))
            return res
        section("Endpoint ready → first held request at the backend", ready, fmt_ready,
                ["One request held per sample (the endpoint is made unready first and the request "
                 "seen held in /queue); the backend timestamps the first bytes of the request "
                 "(CLOCK_MONOTONIC, same clock as time 0). Live mode: kube-apiserver %s with etcd; "
                 "the reference watch is a separate watch on the same EndpointSlice, so its row is "
                 "the proxy's own delay from the API server's event to the request at the backend." %
                 "1.20.2", ""])
    if "targets" in only:
        section("Idle RSS and warm path with %d targets" % args.many_targets, lambda: bench_targets(tmp, args),
                fmt_targets,
                ["Static mode, one EndpointSlice per target; RSS read 1 s after /readyz. wrk hits the "
                 "middle target's host at 50 connections, proxy (1 worker) on core 0; median of "
                 "%d interleaved rounds." % args.rounds + " Targets: idle "
                 "RSS ≤ 8 MiB with 1 target; req/s with %d targets ≥ 0.9× with 1." % args.many_targets, ""])
    if "keda" in only:
        section("Cold request → KEDA StreamIsActive true (bench/keda_push.py)", lambda: bench_keda(tmp, args),
                fmt_keda)
    if "burst" in only:
        section("0 → N burst and a warm surge, without and with the per-endpoint allowance", lambda: bench_burst(tmp, args),
                fmt_burst,
                ["bench/burst.py: three pods of capacity 8 (40 ms requests; a 9th concurrent request gets 503 "
                 "from the pod) turn ready at 0.2/0.6/1.0 s under an open-loop load of 500/s for 1 s, 100/s "
                 "for 1.5 s, then 1500/s for 0.4 s; the target scales on concurrency with targetValue 8. "
                 "`off`: FIFO queue and release pacing only; `auto`: `endpointConcurrency: auto` (8 per pod).", ""])
    if "addon" in only:
        import addon_bench
        section("zerowire-proxy and the KEDA HTTP add-on side by side", lambda: addon_bench.bench_addon(tmp, args),
                addon_bench.fmt_addon,
                ["One kube-apiserver %s for both; each proxy pinned to core 0 (zerowire 1 worker; the "
                 "interceptor's Go runtime sees 1 CPU), wrk and the nginx backend on core 1; upstream idle pools "
                 "of 1024 (zerowire `--max-idle-per-endpoint 1024`, add-on `KEDA_HTTP_MAX_IDLE_CONNS[_PER_HOST]"
                 "=1024`). Warm path: median of %d interleaved rounds, %d s per run after a %d s warm-up. "
                 "Every endpoint change is an EndpointSlice PATCH through the API server; the add-on reads "
                 "EndpointSlices as discovery.k8s.io/v1 through a loopback relay (bench/addon_bench.py says why)."
                 % ("1.20.2", args.rounds, args.duration, args.warmup), ""])
    if "h2" in only or "grpc" in only:
        import h2_bench
        for key, title, fn, fmt, notes in h2_bench.sections(tmp, args):
            if key in only:
                section(title, fn, fmt, notes)
    report += ["", "Total time: %.0f s. Reproduce: `make bench` (or `bench/run.sh --only warm,...`)." % (
        time.monotonic() - t_all)]
    text = "\n".join(report) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1, default=str)
    subprocess.run(["rm", "-rf", tmp])
    if failed:
        sys.exit("bench: failed to run: %s (see the report)" % "; ".join(failed))


if __name__ == "__main__":
    main()
