#!/usr/bin/python3
"""Where a warm-path request's CPU goes, per proxied request, for
zerowire-proxy builds and nginx side by side (issue #14).

The warm path of bench/proxy_bench.py (the same nginx backend and proxy
configurations, each proxy pinned to core 0, wrk and the backend on core 1),
measured differently: per configuration and round, a warm-up run, then a
measured wrk run during which

  - /proc/PID/stat gives the proxy's user and system CPU time (all threads;
    with tick accounting the system time includes the loopback receive
    processing the kernel runs in the sender's context);
  - `perf stat -p PID` (when perf works) counts task-clock, context
    switches, cpu-migrations and user/kernel cycles and instructions;
  - `ss -ti` per socket, twice inside the run, gives the segments without
    data (pure ACKs) the proxy itself sent per data segment it sent, on the
    client side and on the upstream side;
  - /proc/net/snmp and /proc/net/netstat deltas give TCP segments sent,
    delayed and quick ACKs, pure ACKs received (system-wide: the proxy, wrk
    and the backend together; other loopback traffic on the machine adds to
    them, so they are only meaningful on a quiet machine or as a lower
    bound of the per-request figures);
  - /proc/stat gives how busy core 0 was (the proxy's share against others).

Everything is reported per proxied request. Rounds are interleaved (the order
of the proxies rotates); medians are reported. Several zerowire builds can be
compared in one run with --zw NAME=PATH (repeatable; default: bin/zerowire-proxy),
which is how every change in docs/benchmarks.md's "Warm path per CPU-second"
section was measured.

--record DIR also writes `perf record -g` profiles of each proxy (one extra
run each, 50 connections) and a flat top list of kernel and user symbols.

Usage: bench/warm_profile.py [--zw NAME=PATH]... [--no-nginx] [--haproxy]
       [--conns 50,1000] [--duration S] [--warmup S] [--rounds N]
       [--record DIR] [--json PATH]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy_bench as pb  # noqa: E402

PERF_EVENTS = ["task-clock", "context-switches", "cpu-migrations", "cycles:u", "cycles:k",
               "instructions:u", "instructions:k"]
SNMP_KEYS = ["Tcp:OutSegs", "Tcp:InSegs", "TcpExt:DelayedACKs", "TcpExt:TCPPureAcks",
             "TcpExt:TCPHPAcks", "TcpExt:TCPHPHits", "TcpExt:TCPBacklogCoalesce",
             "TcpExt:TCPAutoCorking", "TcpExt:TCPOrigDataSent",
             "TcpExt:TCPACKSkippedSeq"]


def snmp():
    """Counters of /proc/net/snmp and /proc/net/netstat as {"Group:Name": n}."""
    out = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[0::2], lines[1::2]):
            g, ns = names.split(":", 1)
            _, vs = values.split(":", 1)
            for n, v in zip(ns.split(), vs.split()):
                try:
                    out["%s:%s" % (g, n)] = int(v)
                except ValueError:
                    pass
    return out


def ipis():
    """{"RES1": n, "CAL1": n, ...}: rescheduling and function-call interrupts
    received per core (cross-core wake-ups) from /proc/interrupts."""
    out = {}
    with open("/proc/interrupts") as f:
        for line in f:
            p = line.split()
            if p and p[0] in ("RES:", "CAL:"):
                for i, v in enumerate(p[1:]):
                    if not v.isdigit():
                        break
                    out["%s%d" % (p[0][:3], i)] = int(v)
    return out


def sock_segs(pid, port, backend):
    """Per established TCP socket of process pid: {(local, peer): (side,
    segs_out, data_segs_out)} from `ss -tinp`; side "client" for sockets on
    the proxy's port, "upstream" for those to the backend (host:port)."""
    r = subprocess.run(["ss", "-tinpH", "state", "established"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    out, key = {}, None
    tag = "pid=%d," % pid
    for line in r.stdout.splitlines():
        if not line.startswith((" ", "\t")):
            p = line.split()
            key = (p[2], p[3]) if len(p) >= 4 and tag in line else None
            continue
        if not key:
            continue
        f = dict(x.split(":", 1) for x in line.split() if x.startswith(("segs_out:", "data_segs_out:")))
        side = "client" if key[0].endswith(":%d" % port) else "upstream" if key[1] == backend else None
        if side:
            out[key] = (side, int(f.get("segs_out", 0)), int(f.get("data_segs_out", 0)))
    return out


def seg_delta(a, b):
    """Segments and data segments sent per side between two sock_segs
    snapshots (sockets opened meanwhile counted whole)."""
    d = {}
    for k, (side, so, dso) in b.items():
        _, so0, dso0 = a.get(k, (side, 0, 0))
        x = d.setdefault(side, [0, 0])
        x[0] += so - so0
        x[1] += dso - dso0
    return d


def proc_times(pid):
    """(utime, stime) of all threads of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    return int(parts[11]) / hz, int(parts[12]) / hz


def core_busy(core):
    """(busy, total) jiffies of one core from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%s " % core):
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + v[4]
                return sum(v) - idle, sum(v)
    return 0, 0


def perf_works():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "task-clock", "true"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    return r.returncode == 0


def perf_stat_start(pid, seconds, out):
    return subprocess.Popen(["perf", "stat", "-x,", "-o", out, "-e", ",".join(PERF_EVENTS),
                             "-p", str(pid), "--", "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_stat_read(path):
    """{event: value} from a perf stat -x, file (unsupported events left out)."""
    res = {}
    try:
        with open(path) as f:
            for line in f:
                p = line.strip().split(",")
                if len(p) < 3 or line.startswith("#"):
                    continue
                try:
                    res[p[2]] = float(p[0])
                except ValueError:
                    pass
    except OSError:
        pass
    return res


def measure(name, pid, port, conns, args, tmp, backend_pid, use_perf):
    """One warm-up and one measured run; per-request figures."""
    if args.warmup:
        pb.wrk(port, conns, args.warmup)
    la = pb.loadavg()
    perf_out = os.path.join(tmp, "perf-%s-%d.txt" % (name, conns))
    st = perf_stat_start(pid, args.duration, perf_out) if use_perf else None
    beaddr = "%s:%d" % (pb.BACKEND_IP, args.backend_port)
    i0 = ipis()
    s0, u0, b0, be0, t0 = snmp(), proc_times(pid), core_busy(pb.PROXY_CORE), pb.cpu_seconds(backend_pid), \
        time.monotonic()
    box = {}
    run = threading.Thread(target=lambda: box.update(res=pb.wrk(port, conns, args.duration)))
    run.start()
    # The client connections exist only while wrk runs: the per-socket
    # segment counts are taken inside the run (from 0.25 s after its start
    # to 0.25 s before its end) and related to the data segments sent in
    # that window.
    time.sleep(min(0.25, args.duration / 4))
    g0 = sock_segs(pid, port, beaddr)
    time.sleep(max(args.duration - 0.5 - (time.monotonic() - t0), args.duration / 4))
    g1 = sock_segs(pid, port, beaddr)
    run.join(args.duration + 70)
    if "res" not in box:
        raise RuntimeError("wrk did not finish")
    res = box["res"]
    s1, u1, b1, be1, t1 = snmp(), proc_times(pid), core_busy(pb.PROXY_CORE), pb.cpu_seconds(backend_pid), \
        time.monotonic()
    i1 = ipis()
    if st:
        st.wait(args.duration + 30)
    n = max(res["requests"], 1)
    dt = t1 - t0
    user, system = u1[0] - u0[0], u1[1] - u0[1]
    row = {"proxy": name, "conns": conns, "requests": res["requests"], "rps": res["rps"],
           "p50_us": res["p50_us"], "p99_us": res["p99_us"], "errors": res["errors_total"],
           "cpu": (user + system) / dt, "user_us": user / n * 1e6, "sys_us": system / n * 1e6,
           "cpu_us": (user + system) / n * 1e6, "per_cpu_s": res["requests"] / max(user + system, 1e-9),
           "core0_busy": (b1[0] - b0[0]) / max(b1[1] - b0[1], 1), "backend_cpu": (be1 - be0) / dt,
           "loadavg": la}
    for k in SNMP_KEYS:
        row[k] = (s1.get(k, 0) - s0.get(k, 0)) / n
    for k in i1:
        row["ipi:" + k] = (i1[k] - i0.get(k, 0)) / n
    for side, (so, dso) in seg_delta(g0, g1).items():
        # Segments without data the proxy sent per data segment it sent on
        # that side (one per response to a client, one per request to the
        # backend when each fits a segment, as here).
        row["acks_out:" + side] = (so - dso) / max(dso, 1)
        row["data_segs:" + side] = dso
    if st:
        ps = perf_stat_read(perf_out)
        for ev in PERF_EVENTS:
            if ev in ps:
                row["perf:" + ev] = ps[ev] / n
    return row


def record(name, pid, port, args, outdir):
    """perf record -g of pid during a 50-connection run; a flat symbol list."""
    data = os.path.join(outdir, "%s.perf.data" % name)
    rec = subprocess.Popen(["perf", "record", "-g", "-o", data, "-p", str(pid), "--", "sleep",
                            str(args.duration)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pb.wrk(port, 50, args.duration)
    rec.wait(args.duration + 60)
    txt = os.path.join(outdir, "%s.top.txt" % name)
    with open(txt, "w") as f:
        subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio",
                        "--percent-limit", "0.3"], stdout=f, stderr=subprocess.DEVNULL)
    pb.log("profile of %s in %s" % (name, txt))


def combine(rows):
    out = dict(rows[0])
    for k, v in rows[0].items():
        if isinstance(v, float) or (isinstance(v, int) and k not in ("conns",)):
            out[k] = statistics.median(r[k] for r in rows if k in r)
    out["loadavg"] = "/".join(r["loadavg"] for r in rows)
    out["rounds"] = len(rows)
    return out


def fmt(rows, ref_name):
    out = ["| proxy | conns | req/s | req per proxy CPU-s | vs %s | p99 ms | p99 vs %s | CPU µs/req (user + sys) "
           "| perf task-clock µs/req | cycles u/k per req | ctx sw/req | OutSegs/req | DelayedACKs/req "
           "| PureAcks/req | proxy's non-data segs per data seg, client / upstream | IPIs/req to core 0 / 1 (RES+CAL) | core 0 busy | load |" % (ref_name, ref_name),
           "|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---|---|---:|---|"]
    for r in rows:
        ref = next((x for x in rows if x["proxy"] == ref_name and x["conns"] == r["conns"]), None)
        tc = r.get("perf:task-clock")
        cyc = "%.0fk / %.0fk" % (r["perf:cycles:u"] / 1e3, r["perf:cycles:k"] / 1e3) \
            if "perf:cycles:u" in r and "perf:cycles:k" in r else "-"
        ipi = ["%.2f" % (r.get("ipi:RES%d" % c, 0) + r.get("ipi:CAL%d" % c, 0)) for c in (0, 1)]
        out.append("| %s | %d | %.0f | %.0f | %s | %.2f | %s | %.2f (%.2f + %.2f) | %s | %s | %s | %.2f | %.3f | %.3f "
                   "| %s | %s | %.0f%% | %s |" % (
                       r["proxy"], r["conns"], r["rps"], r["per_cpu_s"],
                       "%.2f×" % (r["per_cpu_s"] / ref["per_cpu_s"]) if ref else "-",
                       r["p99_us"] / 1000, "%.2f×" % (r["p99_us"] / ref["p99_us"]) if ref and ref["p99_us"] else "-",
                       r["cpu_us"], r["user_us"], r["sys_us"],
                       "%.2f" % (tc * 1e3) if tc else "-", cyc,
                       "%.3f" % r["perf:context-switches"] if "perf:context-switches" in r else "-",
                       r["Tcp:OutSegs"], r["TcpExt:DelayedACKs"], r["TcpExt:TCPPureAcks"],
                       "%.3f / %.3f" % (r.get("acks_out:client", 0), r.get("acks_out:upstream", 0)),
                       " / ".join(ipi), r["core0_busy"] * 100, r["loadavg"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zw", action="append", default=[],
                    help="NAME=PATH of a zerowire-proxy build (repeatable; default zerowire-proxy=bin/zerowire-proxy)")
    ap.add_argument("--no-nginx", dest="nginx", action="store_false", help="leave nginx out")
    ap.add_argument("--haproxy", action="store_true", help="add HAProxy")
    ap.add_argument("--conns", default="50,1000")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-perf", dest="perf", action="store_false", help="skip perf stat")
    ap.add_argument("--record", metavar="DIR", help="also perf record -g each proxy into DIR")
    ap.add_argument("--json", help="write the raw rows here")
    args = ap.parse_args()
    conns = [int(x) for x in args.conns.split(",")]
    builds = [z.split("=", 1) for z in args.zw] or [["zerowire-proxy", pb.PROXY]]
    use_perf = args.perf and perf_works()
    if args.perf and not use_perf:
        pb.log("perf stat does not work here: /proc figures only")
    tmp = tempfile.mkdtemp(prefix="zw-warmprof-")
    backend = pb.start_backend(tmp)
    procs, runs = [], []
    try:
        be = "%s:%d" % (pb.BACKEND_IP, backend.port)
        args.backend_port = backend.port
        for name, path in builds:
            zw = pb.Zerowire(tmp, "zw-" + name, [pb.scaledobject(0, pb.HOST, "app")],
                             [pb.endpointslice("app", pb.BACKEND_IP, backend.port)], core=pb.PROXY_CORE,
                             workers=1, args=["--max-idle-per-endpoint", "1024", "--max-connections", "12000"],
                             binary=path)
            procs.append((name, zw.proc, zw.port))
        if args.nginx:
            nport = pb.free_port()
            procs.append(("nginx", pb.Proc("nginx-proxy", pb.nginx_proxy_argv(tmp, be, nport), tmp,
                                           pb.PROXY_CORE), nport))
        if args.haproxy:
            hport = pb.free_port()
            procs.append(("HAProxy", pb.Proc("haproxy", pb.haproxy_conf(tmp, "haproxy", "127.0.0.1:%d" % hport, be),
                                             tmp, pb.PROXY_CORE), hport))
        for name, p, port in procs:
            pb.wait_for(lambda: pb.port_open("127.0.0.1", port) or not p.alive(), 10, what=name)
            st, body = pb.http_get("127.0.0.1", port)
            if st != 200:
                raise RuntimeError("%s answered %d: %r" % (name, st, body[:200]))
        for rnd in range(args.rounds):
            for c in conns:
                order = procs[rnd % len(procs):] + procs[:rnd % len(procs)]
                for name, p, port in order:
                    pb.log("round %d, %s, %d connections" % (rnd + 1, name, c))
                    r = measure(name, p.pid, port, c, args, tmp, backend.pid, use_perf)
                    r["round"] = rnd + 1
                    runs.append(r)
        if args.record:
            os.makedirs(args.record, exist_ok=True)
            for name, p, port in procs:
                record(name, p.pid, port, args, args.record)
    finally:
        for _, p, _ in procs:
            p.stop()
        backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for c in conns:
        for name, _, _ in procs:
            rows.append(combine([r for r in runs if r["proxy"] == name and r["conns"] == c]))
    ref = "nginx" if args.nginx else builds[0][0]
    print("\n".join(fmt(rows, ref)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
