#!/usr/bin/python3
"""A 0 -> N burst: the same open-loop burst against zerowire-proxy with and
without a per-endpoint allowance, loopback only, bounded in time.

Three pods (asyncio HTTP servers in one child process on 127.0.0.41-43) each
serve 40 ms requests and can take CAPACITY at once: beyond that a pod answers
503 at once, as an app with a full worker pool does. The target scales on
concurrency with targetValue CAPACITY. At time 0 no pod is ready and the
client starts an open-loop load (one connection per request); pods
turn ready at 0.2 s, 0.6 s and 1.0 s (endpoints file + SIGHUP). The default
load: 500/s for 1 s (the cold burst; three pods serve 600/s), 100/s for
1.5 s (the queue drains: warm traffic), then a surge of 1500/s for 0.4 s. Reported per
mode: status counts, errors, p50/p99/max latency, the highest concurrency any
pod saw, and the time to the last response.

Usage: bench/burst.py [--proxy PATH] [--phases RATE:S,...] [--json PATH]
"""
import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CAPACITY = 8
SERVICE_MS = 40
PODS = ["127.0.0.41", "127.0.0.42", "127.0.0.43"]
READY_AT = [0.2, 0.6, 1.0]

POD_SERVER = r"""
import asyncio, json, sys
cap, ms, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
stats = {}
async def serve(ip):
    st = stats[ip] = {"active": 0, "max": 0, "ok": 0, "rejected": 0}
    async def handle(r, w):
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                if head.startswith(b"GET /stats"):
                    body = json.dumps(stats).encode()
                elif st["active"] >= cap:
                    st["rejected"] += 1
                    w.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10\r\n\r\noverloaded")
                    await w.drain()
                    continue
                else:
                    st["active"] += 1
                    st["max"] = max(st["max"], st["active"])
                    await asyncio.sleep(ms / 1000)
                    st["active"] -= 1
                    st["ok"] += 1
                    body = b"ok"
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()
    await asyncio.start_server(handle, ip, port, backlog=4096)
async def main():
    for ip in sys.argv[4:]:
        await serve(ip)
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def free_port(host):
    s = socket.socket()
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write_list(path, items):
    with open(path + ".tmp", "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
    os.replace(path + ".tmp", path)


def slice_of(ips, port):
    return [{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": "app-zw", "namespace": "bench",
                          "labels": {"kubernetes.io/service-name": "app"}},
             "addressType": "IPv4", "ports": [{"name": "", "port": port, "protocol": "TCP"}],
             "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}]


async def one(port, lat, codes):
    t0 = time.monotonic()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        w.write(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 60)
        w.close()
        code = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else "bad"
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        code = "error"
    codes[code] = codes.get(code, 0) + 1
    lat.append(time.monotonic() - t0)


def schedule(phases):
    """Send times (seconds from 0) of an open-loop load in phases [(rate, seconds)]."""
    out, t0 = [], 0.0
    for rate, seconds in phases:
        out += [t0 + i / rate for i in range(int(rate * seconds))]
        t0 += seconds
    return out


async def burst(port, phases, on_time):
    lat, codes, tasks = [], {}, []
    t0 = time.monotonic()
    pending = sorted(on_time, key=lambda x: x[0])
    for at in schedule(phases):
        while pending and time.monotonic() - t0 >= pending[0][0]:
            pending.pop(0)[1]()
        delay = t0 + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(port, lat, codes)))
    while pending:
        await asyncio.sleep(max(0, pending[0][0] - (time.monotonic() - t0)))
        pending.pop(0)[1]()
    await asyncio.gather(*tasks)
    return lat, codes, time.monotonic() - t0


def run_mode(tmp, proxy, allowance, phases):
    pod_port = free_port(PODS[0])
    pods = subprocess.Popen([sys.executable, "-c", POD_SERVER, str(CAPACITY), str(SERVICE_MS), str(pod_port)] + PODS,
                            stdout=subprocess.PIPE, start_new_session=True)
    assert pods.stdout.readline().strip() == b"ready"
    tg = os.path.join(tmp, "targets.json")
    ep = os.path.join(tmp, "endpoints.json")
    md = {"service": "app", "port": "80", "hosts": "app.test", "scalingMetric": "concurrency",
          "targetValue": str(CAPACITY), "endpointConcurrency": allowance}
    write_list(tg, [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                     "metadata": {"name": "app", "namespace": "bench"},
                     "spec": {"scaleTargetRef": {"name": "app"},
                              "triggers": [{"type": "external-push", "metadata": md}]}}])
    write_list(ep, [])
    port, admin = free_port("127.0.0.1"), free_port("127.0.0.1")
    log = open(os.path.join(tmp, "proxy-%s.log" % allowance), "wb")
    zw = subprocess.Popen(["taskset", "-c", "0", proxy, "--listen", "127.0.0.1:%d" % port,
                           "--admin-listen", "127.0.0.1:%d" % admin,
                           "--scaler-listen", "127.0.0.1:%d" % free_port("127.0.0.1"),
                           "--workers", "1", "--targets-file", tg, "--endpoints-file", ep,
                           "--max-connections", "20000", "--max-held", "20000", "--log-level", "warn",
                           "--shutdown-delay", "0s"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", admin), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        steps = [(t, (lambda k=k: (write_list(ep, slice_of(PODS[:k + 1], pod_port)), zw.send_signal(signal.SIGHUP))))
                 for k, t in enumerate(READY_AT)]
        lat, codes, total = asyncio.run(burst(port, phases, steps))
        import urllib.request
        stats = json.loads(urllib.request.urlopen("http://%s:%d/stats" % (PODS[0], pod_port), timeout=5).read())
    finally:
        zw.send_signal(signal.SIGTERM)
        zw.wait(15)
        os.killpg(pods.pid, signal.SIGKILL)
        pods.wait()
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    return {"allowance": allowance, "requests": len(lat), "codes": {str(k): v for k, v in codes.items()},
            "errors": sum(v for k, v in codes.items() if k != 200),
            "p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": lat[-1] * 1000,
            "pod_max_concurrency": max(s["max"] for s in stats.values()),
            "pod_rejections": sum(s["rejected"] for s in stats.values()), "last_response_s": total}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", default=os.environ.get("ZW_PROXY_BIN") or os.path.join(ROOT, "bin", "zerowire-proxy"))
    ap.add_argument("--phases", default="500:1.0,100:1.5,1500:0.4",
                    help="open-loop load as rate:seconds,... (default: a cold burst, a calm, a warm surge)")
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="zw-burst-")
    phases = [(float(r), float(d)) for r, d in (p.split(":") for p in args.phases.split(","))]
    res = [run_mode(tmp, args.proxy, mode, phases) for mode in ("off", "auto")]
    out = json.dumps(res)
    if args.json:
        with open(args.json, "w") as f:
            f.write(out)
    print(out)
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
