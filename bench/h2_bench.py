#!/usr/bin/python3
"""HTTP/2 warm path and gRPC unary, side by side, for bench/proxy_bench.py.

  h2    h2load (nghttp2-client) with prior knowledge (h2c) against
        zerowire-proxy (its HTTP port tells h2c from HTTP/1.1 by the preface),
        nginx (`listen ... http2`), HAProxy (`bind ... proto h2`) and h2o, each
        proxying to the same HTTP/1.1 nginx backend; per connections x streams
        shape: req/s, p50/p99 (from h2load's per-request log), requests per
        proxy CPU-second.
  grpc  ghz (built from its Go module by e2e/peers/build-go-tool.sh) calling
        grpc.health.v1.Health/Check on bench/grpcbe (grpc-go, h2c), directly and
        through nginx (grpc_pass), HAProxy (h2 to the server), h2o and
        zerowire-proxy; a proxy that cannot carry gRPC gets a row that says so
        with what a probe call saw.

Same method as the HTTP/1.1 warm path: each proxy pinned to core 0 (one
worker/thread), the load generator and the backend on core 1, one warm-up run
before every measured run, interleaved rounds, medians; CPU is utime+stime of
the proxy process during the measured run. Imported by proxy_bench.py
(`--only h2,grpc`); reuses its helpers (Proc, Zerowire, nginx_conf, ...).
"""

import json
import os
import statistics
import subprocess
import time

import proxy_bench as pb

GHZ_BUILD = os.path.join(pb.ROOT, "e2e", "peers", "build-go-tool.sh")
GRPCBE_SRC = os.path.join(pb.ROOT, "bench", "grpcbe")
GRPCBE = os.path.join(pb.ROOT, "build", "bench", "grpcbe")
GRPC_CALL = "grpc.health.v1.Health.Check"
GRPC_PROTO = os.path.join(GRPCBE_SRC, "health.proto")


def parse_shapes(text):
    """"8x8,100x10" -> [(8, 8), (100, 10)] (connections, streams per connection)."""
    out = []
    for part in text.split(","):
        c, _, m = part.strip().partition("x")
        out.append((int(c), int(m)))
    return out


# ---- the proxies --------------------------------------------------------------

def nginx_h2(tmp, name, upstream, grpc):
    """nginx (1 worker) with a cleartext http2 listener proxying to upstream:
    HTTP/1.1 keep-alive (proxy_pass) or gRPC (grpc_pass)."""
    port = pb.free_port()
    if grpc:
        loc = "grpc_pass grpc://be;"
    else:
        loc = 'proxy_pass http://be;\n            proxy_http_version 1.1;\n            proxy_set_header Connection "";'
    argv = pb.nginx_conf(tmp, name, """    http2_max_concurrent_streams 1000;
    upstream be {
        server %s;
        keepalive 1024;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:%d http2 backlog=4096;
        location / {
            %s
        }
    }""" % (upstream, port, loc))
    return pb.Proc(name, argv, tmp, pb.PROXY_CORE), port


def haproxy_h2(tmp, name, upstream, grpc):
    """HAProxy (1 thread) with an h2 (prior knowledge) bind; HTTP/1.1 to the
    backend, or h2 for gRPC."""
    port = pb.free_port()
    argv = pb.haproxy_conf(tmp, name, "127.0.0.1:%d proto h2" % port, upstream + (" proto h2" if grpc else ""))
    return pb.Proc(name, argv, tmp, pb.PROXY_CORE), port


def h2o_h2(tmp, name, upstream, grpc):
    """h2o (1 thread), cleartext listener (h2c by prior knowledge), reverse
    proxy to upstream. h2o 2.2 speaks only HTTP/1.1 to backends, also for
    grpc (the gRPC row shows what that gives)."""
    del grpc  # same configuration: h2o 2.2 has no h2 upstream
    port = pb.free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    cfg = os.path.join(d, "h2o.conf")
    with open(cfg, "w") as f:
        f.write("""user: %(user)s
num-threads: 1
pid-file: %(d)s/h2o.pid
error-log: %(d)s/error.log
http2-max-concurrent-requests-per-connection: 1000
listen:
  host: 127.0.0.1
  port: %(port)d
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://%(up)s/
        proxy.preserve-host: ON
        proxy.timeout.keepalive: 300000
""" % {"user": "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody"), "d": d, "port": port,
           "up": upstream})
    return pb.Proc(name, ["h2o", "-c", cfg], tmp, pb.PROXY_CORE), port


def zerowire_h2(tmp, name, upstream, grpc):
    """zerowire-proxy (1 worker) in static mode, one target on pb.HOST whose
    EndpointSlice port says h2c (appProtocol kubernetes.io/h2c) for gRPC."""
    ip, port = upstream.rsplit(":", 1)
    eps = pb.endpointslice("app", ip, int(port))
    if grpc:
        eps["ports"][0]["appProtocol"] = "kubernetes.io/h2c"
    zw = pb.Zerowire(tmp, name, [pb.scaledobject(0, pb.HOST, "app")], [eps], core=pb.PROXY_CORE, workers=1,
                     args=["--max-idle-per-endpoint", "1024", "--max-connections", "12000"])
    return zw.proc, zw.port


PROXIES = [("zerowire-proxy", zerowire_h2), ("nginx", nginx_h2), ("HAProxy", haproxy_h2), ("h2o", h2o_h2)]


class Peer:
    """One row source: a proxy of PROXIES (started here, restarted when it
    exits) or, with start None, the backend itself (gRPC's direct row).
    target is what the load generator dials; exits lists how the proxy
    ended each time it went away during a run."""

    def __init__(self, name, start=None, target=None, address=lambda port: port):
        self.name, self.start, self.target, self.address = name, start, target, address
        self.proc = None
        self.exits = []
        if start:
            self.restart()

    def restart(self):
        if self.proc:
            self.proc.stop()
        self.proc, port = self.start()
        pb.wait_for(lambda: pb.port_open("127.0.0.1", port) or not self.proc.alive(), 10, what=self.name)
        if not self.proc.alive():
            raise RuntimeError("%s exited:\n%s" % (self.name, self.proc.tail()))
        self.target = self.address(port)

    def died(self):
        """True (and the exit recorded) when the proxy is no longer running."""
        if not self.proc or self.proc.alive():
            return False
        rc = self.proc.p.returncode
        last = self.proc.tail(1).strip()
        self.exits.append(("killed by signal %d" % -rc if rc < 0 else "exit %d" % rc) +
                          (" (%s)" % last[:200] if last else ""))
        return True

    def stop(self):
        if self.proc:
            self.proc.stop()


def start_proxies(tmp, kind, upstream, grpc, address=lambda port: port, only=""):
    """A Peer per proxy of PROXIES (only those named by --h2-proxies, when
    given), each listening (a failed start stops the others and raises with
    the log's tail)."""
    peers = []
    wanted = [x.strip() for x in only.split(",") if x.strip()]
    try:
        for name, start in PROXIES:
            if wanted and name not in wanted:
                continue
            tag = "%s-%s" % (kind, name.split("-")[0].lower())
            peers.append(Peer(name, lambda s=start, t=tag: s(tmp, t, upstream, grpc), address=address))
    except Exception:
        for peer in peers:
            peer.stop()
        raise
    return peers


# ---- h2load ---------------------------------------------------------------------

def h2load(tmp, port, conns, streams, duration, log_file=None):
    """One h2load run (prior knowledge, 1 thread, on the client core) for
    duration seconds; returns requests, errors, req/s and, with log_file, the
    per-request latencies' p50/p99 in microseconds."""
    argv = ["taskset", "-c", pb.CLIENT_CORE, "h2load", "-t1", "-c%d" % conns, "-m%d" % streams,
            "-D%d" % duration, "-H", ":authority: " + pb.HOST]
    if log_file:
        argv += ["--log-file", log_file]
    argv.append("http://127.0.0.1:%d/" % port)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=duration + 60)
    res = {}
    for line in r.stdout.splitlines():
        w = line.split()
        if line.startswith("finished in"):
            res["rps"] = float(w[3])
        elif line.startswith("requests:"):
            res["requests"] = int(w[1])
            res["succeeded"] = int(w[7])
            res["errors_total"] = int(w[1]) - int(w[7])
        elif line.startswith("status codes:"):
            res["non2xx"] = sum(int(w[i]) for i in (4, 6, 8))
    if r.returncode != 0 or "rps" not in res or "requests" not in res:
        raise RuntimeError("h2load failed (exit %d): %s" % (r.returncode, r.stdout[-2000:]))
    res["errors_total"] += res.get("non2xx", 0)
    if log_file:
        lat = []
        with open(log_file) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]))
        os.unlink(log_file)
        lat.sort()
        if not lat:
            raise RuntimeError("h2load logged no request: %s" % r.stdout[-1500:])
        res["p50_us"] = lat[len(lat) // 2]
        res["p99_us"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return res


def measured(pid, run, warmup, backend_pid=None):
    """run(seconds, False) once for warmup seconds (if any), then run(None,
    True), the measured run: adds the proxy's and the backend's CPU shares
    and the load average before it."""
    if warmup:
        run(warmup, False)
    la = pb.loadavg()
    c0 = pb.cpu_seconds(pid) if pid else 0
    b0 = pb.cpu_seconds(backend_pid) if backend_pid else 0
    t0 = time.monotonic()
    res = run(None, True)
    dt = time.monotonic() - t0
    res["cpu"] = (pb.cpu_seconds(pid) - c0) / dt if pid else None
    res["backend_cpu"] = (pb.cpu_seconds(backend_pid) - b0) / dt if backend_pid else None
    res["loadavg"] = la
    return res


def combine(runs, failed):
    """Median over the completed rounds of one configuration (errors summed,
    CPU averaged); failed: the reasons of the runs that did not complete."""
    if not runs:
        return {"failed": failed}
    out = dict(runs[-1])
    for k in ("rps", "p50_us", "p99_us"):
        out[k] = statistics.median(r[k] for r in runs)
    out["errors_total"] = sum(r["errors_total"] for r in runs)
    for k in ("cpu", "backend_cpu"):
        out[k] = statistics.mean(r[k] for r in runs) if runs[0].get(k) is not None else None
    out["eff"] = out["rps"] / out["cpu"] if out["cpu"] else None
    out["loadavg"] = "/".join(r["loadavg"] for r in runs)
    out["rss_kib"] = max(r.get("rss_kib", 0) for r in runs)
    out["rounds"] = [{k: r.get(k) for k in ("rps", "p50_us", "p99_us", "cpu", "loadavg")} for r in runs]
    out["failed"] = failed
    return out


def run_rounds(peers, shapes, args, one_run, backend_pid, what):
    """Interleaved rounds over peers x shapes; one_run(target, conns,
    streams, seconds, measured) -> result. A run during which the proxy
    exits, or whose load generator fails, is not counted: it is recorded
    (the proxy restarted) and the rounds go on. Returns one combined row per
    (proxy, shape)."""
    runs, failed = [], []
    for rnd in range(args.rounds):
        for conns, streams in shapes:
            order = peers[rnd % len(peers):] + peers[:rnd % len(peers)]
            for peer in order:
                pb.log("%s: round %d, %s, %dx%d, %ds" % (what, rnd + 1, peer.name, conns, streams, args.duration))
                try:
                    res = measured(peer.proc.pid if peer.proc else None,
                                   lambda d, m: one_run(peer.target, conns, streams, d or args.duration, m),
                                   args.warmup, backend_pid)
                    res["rss_kib"] = pb.proc_status(peer.proc.pid, "VmRSS") if peer.proc else 0
                    why = None
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    why = str(e).replace("\n", " ")[:300]
                if peer.died():
                    why = "%s %s" % (peer.name, peer.exits[-1])
                    pb.log("%s: %s; restarted" % (what, why))
                    peer.restart()
                key = {"proxy": peer.name, "conns": conns, "streams": streams}
                if why:
                    failed.append(dict(key, why=why))
                else:
                    runs.append(dict(res, **key))
    rows = []
    for conns, streams in shapes:
        for peer in peers:
            key = {"proxy": peer.name, "conns": conns, "streams": streams}
            rows.append(dict(combine([r for r in runs if all(r[k] == v for k, v in key.items())],
                                     [f["why"] for f in failed if all(f[k] == v for k, v in key.items())]), **key))
    return rows


def fmt_rows(rows, skipped=()):
    """Markdown table of combined rows; ratios against nginx's row of the same
    shape; skipped: [(proxy, reason)] rows for proxies not measured."""
    out = ["| proxy | conns × streams | req/s | vs nginx | p50 ms | p99 ms | p99 vs nginx | errors | proxy CPU | "
           "req per proxy CPU-s | per CPU-s vs nginx | backend CPU | RSS MiB | load |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    nan = float("nan")
    notes = []
    for r in rows:
        if r["failed"]:
            notes.append("- %s, %d × %d: %d run(s) not counted: %s" % (
                r["proxy"], r["conns"], r["streams"], len(r["failed"]), "; ".join(sorted(set(r["failed"])))))
        if "rps" not in r:
            out.append("| %s | %d × %d | no run completed |  |  |  |  |  |  |  |  |  |  |  |" % (
                r["proxy"], r["conns"], r["streams"]))
            continue
        ref = next((x for x in rows if x["proxy"] == "nginx" and (x["conns"], x["streams"]) ==
                    (r["conns"], r["streams"]) and "rps" in x), None)
        eff_r = r["eff"] / ref["eff"] if ref and ref.get("eff") and r.get("eff") else nan
        out.append("| %s | %d × %d | %.0f | %.2f× | %.2f | %.2f | %.2f× | %d | %s | %s | %s | %s | %s | %s |" % (
            r["proxy"], r["conns"], r["streams"], r["rps"], r["rps"] / ref["rps"] if ref else nan,
            r["p50_us"] / 1000, r["p99_us"] / 1000, r["p99_us"] / ref["p99_us"] if ref and ref["p99_us"] else nan,
            r["errors_total"], "%.0f%%" % (r["cpu"] * 100) if r["cpu"] is not None else "-",
            "%.0f" % r["eff"] if r.get("eff") else "-", "%.2f×" % eff_r if eff_r == eff_r else "-",
            "%.0f%%" % (r["backend_cpu"] * 100) if r.get("backend_cpu") is not None else "-",
            "%.1f" % (r["rss_kib"] / 1024) if r["rss_kib"] else "-", r["loadavg"]))
    for name, why in skipped:
        out.append("| %s | - | not carried: %s |  |  |  |  |  |  |  |  |  |  |  |" % (name, why))
    if notes:
        out += ["", "Runs that did not complete (the proxy was restarted and the rounds went on):", ""] + notes
    return out


# ---- 1. HTTP/2 warm path ------------------------------------------------------------

def bench_h2(tmp, args):
    backend = pb.start_backend(tmp, name="backend-h2")
    peers = []
    try:
        peers = start_proxies(tmp, "h2", "%s:%d" % (pb.BACKEND_IP, backend.port), grpc=False,
                              only=args.h2_proxies)
        for peer in peers:
            res = h2load(tmp, peer.target, 1, 1, 1)
            if res["succeeded"] < 1 or res["errors_total"]:
                raise RuntimeError("%s: h2c probe failed: %r" % (peer.name, res))
        log_file = os.path.join(tmp, "h2load.log")
        return run_rounds(peers, parse_shapes(args.h2_shapes), args,
                          lambda port, c, m, d, meas: h2load(tmp, port, c, m, d, log_file if meas else None),
                          backend.pid, "h2")
    finally:
        for peer in peers:
            peer.stop()
        backend.stop()


# ---- 2. gRPC unary ----------------------------------------------------------------

def build_grpc_tools():
    """ghz (cached build from e2e/peers/ghz) and bench/grpcbe (built into
    build/bench when missing or older than its source). Returns ghz's path."""
    r = subprocess.run([GHZ_BUILD, "ghz"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=1200)
    if r.returncode != 0:
        raise RuntimeError("building ghz failed: %s" % r.stderr[-1500:])
    ghz = r.stdout.strip().splitlines()[-1]
    newest = max(os.path.getmtime(os.path.join(GRPCBE_SRC, f)) for f in os.listdir(GRPCBE_SRC))
    if not os.path.exists(GRPCBE) or os.path.getmtime(GRPCBE) < newest:
        cache = os.environ.get("ZW_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "zerowire")
        env = dict(os.environ, GOMODCACHE=os.path.join(cache, "gomod"), GOCACHE=os.path.join(cache, "gocache"),
                   GOTOOLCHAIN="local", GOFLAGS="-mod=mod", CGO_ENABLED="0")
        os.makedirs(os.path.dirname(GRPCBE), exist_ok=True)
        pb.log("grpc: building bench/grpcbe (nice -n 19)")
        subprocess.run(["nice", "-n", "19", os.environ.get("ZW_GO", "go"), "build", "-trimpath", "-o", GRPCBE, "."],
                       cwd=GRPCBE_SRC, env=env, check=True, timeout=1200)
    return ghz


def start_grpcbe(tmp):
    """bench/grpcbe on pb.BACKEND_IP, pinned to the client core with
    GOMAXPROCS=1; returns the Proc with .port."""
    port = pb.free_port(pb.BACKEND_IP)
    p = pb.Proc("grpcbe", [GRPCBE, "-listen", "%s:%d" % (pb.BACKEND_IP, port)], tmp, pb.CLIENT_CORE,
                env=dict(os.environ, GOMAXPROCS="1"))
    pb.wait_for(lambda: pb.port_open(pb.BACKEND_IP, port) or not p.alive(), 10, what="grpcbe")
    if not p.alive():
        raise RuntimeError("grpcbe exited:\n" + p.tail())
    p.port = port
    return p


def ghz(ghz_bin, tmp, target, conns, streams, duration=None, total=None):
    """One ghz run on the client core (GOMAXPROCS 1): conns connections,
    conns*streams concurrent calls of GRPC_CALL (described by GRPC_PROTO) to
    target ("ip:port"), for duration seconds or total calls. Returns
    requests, errors, req/s, p50/p99 in microseconds and the error
    distribution."""
    out = os.path.join(tmp, "ghz.json")
    argv = ["taskset", "-c", pb.CLIENT_CORE, ghz_bin, "--insecure", "--proto", GRPC_PROTO, "--call", GRPC_CALL, "--cpus", "1",
            "--connections", str(conns), "-c", str(conns * streams), "--authority", pb.HOST,
            "--connect-timeout", "5s", "--timeout", "10s", "-O", "json", "-o", out]
    # Calls still in flight when the duration ends are left out of the tally
    # (ghz would count them as cancelled errors otherwise).
    argv += ["-z", "%ds" % duration, "--duration-stop", "ignore"] if duration else ["-n", str(total)]
    argv.append(target)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=(duration or 30) + 60)
    try:
        with open(out) as f:
            d = json.load(f)
        os.unlink(out)
    except (OSError, ValueError):
        raise RuntimeError("ghz failed (exit %d): %s" % (r.returncode, r.stdout[-1500:])) from None
    lat = {x["percentage"]: x["latency"] / 1000 for x in d.get("latencyDistribution") or []}
    ok = d.get("statusCodeDistribution", {}).get("OK", 0)
    return {"rps": d["rps"], "requests": d["count"], "succeeded": ok, "errors_total": d["count"] - ok,
            "error_kinds": d.get("errorDistribution") or {}, "p50_us": lat.get(50, 0), "p99_us": lat.get(99, 0)}


def short_error(text):
    """The part of a gRPC client error worth a table cell: 'rpc error: code =
    Unavailable desc = unexpected HTTP status code ...: 502 (Bad Gateway);
    transport: ...' -> 'Unavailable: unexpected HTTP status code ...: 502 (Bad
    Gateway)'."""
    code = text.split("code = ", 1)[1].split()[0] if "code = " in text else ""
    desc = text.split("desc = ", 1)[1] if "desc = " in text else text
    desc = desc.split(";", 1)[0].strip()
    return "%s: %s" % (code, desc) if code else desc


def bench_grpc(tmp, args):
    ghz_bin = build_grpc_tools()
    backend = start_grpcbe(tmp)
    peers = []
    try:
        peers = start_proxies(tmp, "grpc", "%s:%d" % (pb.BACKEND_IP, backend.port), grpc=True,
                              address=lambda port: "127.0.0.1:%d" % port, only=args.h2_proxies)
        carried = [Peer("direct (no proxy)", target="%s:%d" % (pb.BACKEND_IP, backend.port))]
        skipped = []
        for peer in peers:
            try:
                res = ghz(ghz_bin, tmp, peer.target, 1, 1, total=20)
            except RuntimeError as e:
                res = {"succeeded": 0, "error_kinds": {str(e).replace("\n", " ")[:300]: 20}}
            if res["succeeded"] == 20:
                carried.append(peer)
                continue
            why = "; ".join("%s ×%d" % (short_error(k), v) for k, v in res["error_kinds"].items()) or \
                "%d of 20 calls OK" % res["succeeded"]
            skipped.append((peer.name, "20-call probe: %s" % why[:300]))
        rows = run_rounds(carried, parse_shapes(args.grpc_shapes), args,
                          lambda t, c, m, d, meas: ghz(ghz_bin, tmp, t, c, m, duration=d), backend.pid, "grpc")
        return {"rows": rows, "skipped": skipped}
    finally:
        for peer in peers:
            peer.stop()
        backend.stop()


def fmt_grpc(r):
    return fmt_rows(r["rows"], r["skipped"])


def versions():
    """Versions of the HTTP/2 tools and h2o, for the report's notes."""
    out = []
    for argv in (["h2load", "--version"], ["h2o", "--version"]):
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
            out.append(r.stdout.strip().splitlines()[0])
        except (OSError, IndexError, subprocess.SubprocessError):
            out.append("%s: ?" % argv[0])
    return out


def sections(tmp, args):
    """The report sections this module adds: [(--only key, title, run,
    format, notes)] for proxy_bench.main's section()."""
    tools = "; ".join(versions())
    method = "Median of %d interleaved rounds; %d s per run after a %d s warm-up" % (
        args.rounds, args.duration, args.warmup)
    return [
        ("h2", "HTTP/2 warm path (h2c by prior knowledge; proxy on core 0, h2load + nginx backend on core 1)",
         lambda: bench_h2(tmp, args), fmt_rows,
         ["h2load (1 thread) with prior knowledge against each proxy's cleartext HTTP/2 listener; every "
          "proxy (1 worker/thread) forwards over HTTP/1.1 keep-alive to the same nginx backend (17-byte "
          "body). %s; p50/p99 from h2load's per-request log (--log-file). conns × streams: h2load -c × -m. "
          "Aim: zerowire ahead of nginx in requests per proxy CPU-second. %s." % (method, tools), ""]),
        ("grpc", "gRPC unary (ghz; proxy on core 0, ghz + grpc-go backend on core 1)",
         lambda: bench_grpc(tmp, args), fmt_grpc,
         ["ghz (GOMAXPROCS 1) calls grpc.health.v1.Health/Check on bench/grpcbe (grpc-go, h2c, "
          "GOMAXPROCS 1), directly and through each proxy (nginx `grpc_pass` with `keepalive 1024`, "
          "HAProxy `proto h2` to the server); conns × streams: ghz --connections × calls in flight per "
          "connection. %s; p50/p99 from ghz's latency distribution. A proxy whose 20-call probe fails "
          "is not measured and says what the probe saw. %s." % (method, tools), ""]),
    ]
