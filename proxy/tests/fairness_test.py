"""Black-box tests of cold-start fairness and per-endpoint allowances
(static mode, loopback): new requests never overtake waiting ones, a pod
never has more than its allowance in flight, new pods ramp up (slow start),
full queues overflow, and a pod that dies with requests in flight gives
its slots back."""
import concurrent.futures
import http.client
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Backend, Proxy, scaledobject, wait_for, free_port  # noqa: E402

APP = "default/app"
KEY = "default/app/0"


def held(p, key=KEY):
    return p.queue().get(key, {}).get("held", 0)


def get(p, path, host="app.test", timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read(), r.getheader("X-Zerowire-Cold-Start")
    except (OSError, http.client.HTTPException) as e:
        return "error", repr(e).encode(), None
    finally:
        c.close()


def order_of(backend):
    """The i= query values of the requests the backend received, in order."""
    out = []
    for path in backend.paths:
        for part in path.split("?", 1)[-1].split("&"):
            if part.startswith("i="):
                out.append(int(part[2:]))
    return out


def test_new_requests_never_overtake_held_ones(tmp_path):
    """10 requests wait for a cold target (concurrency targetValue 2); the pod
    turns ready while 20 more keep arriving. Old behaviour: the new ones went
    straight to the pod, jumping the queue and taking its room. Checked: the
    pod received the 30 requests in arrival order (at most 2 places apart:
    two workers dial in parallel), never more than 2 at once, all got 200,
    and queued requests counted as concurrency for KEDA meanwhile."""
    port = free_port("127.0.0.31")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", scalingMetric="concurrency",
                                      targetValue=2, readinessTimeout="20s")])
    b = None
    try:
        results = {}
        threads = []

        def send(i):
            results[i] = get(p, "/slow?ms=150&i=%d" % i)

        for i in range(10):
            t = threading.Thread(target=send, args=(i,))
            t.start()
            threads.append(t)
            wait_for(lambda: held(p) == i + 1, what="request %d held" % i)
        b = Backend("127.0.0.31", port, name="pod")
        p.set_endpoints({APP: [("127.0.0.31", port)]})
        saw_pending = 0
        for i in range(10, 30):
            t = threading.Thread(target=send, args=(i,))
            t.start()
            threads.append(t)
            time.sleep(0.04)
            q = p.queue()[KEY]
            if q["held"] > 0:
                # Waiting requests are pending concurrency for KEDA.
                assert q["concurrency"] >= q["held"], q
                saw_pending += 1
        for t in threads:
            t.join(30)
        assert all(r[0] == 200 for r in results.values()), results
        assert saw_pending > 0
        seq = order_of(b)
        assert sorted(seq) == list(range(30)), seq
        worst = max(abs(pos - i) for pos, i in enumerate(seq))
        assert worst <= 2, "arrival order at the pod: %s" % seq
        assert b.max_active <= 2, b.max_active
        assert [results[i][2] for i in range(10)] == ["true"] * 10
    finally:
        assert p.stop() == 0
        if b:
            b.stop()


def test_warm_allowance_caps_each_pod(tmp_path):
    """endpointConcurrency 3 on a warm target with one pod: 12 concurrent slow
    requests → never more than 3 at the pod, the rest wait and all get 200."""
    port = free_port("127.0.0.32")
    b = Backend("127.0.0.32", port, name="pod")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", endpointConcurrency=3)],
              endpoints={APP: [("127.0.0.32", port)]})
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as ex:
            res = list(ex.map(lambda i: get(p, "/slow?ms=300&i=%d" % i), range(12)))
        assert [r[0] for r in res] == [200] * 12, res
        assert b.max_active == 3, b.max_active
        assert all(r[2] == "false" for r in res)
        wait_for(lambda: p.queue()[KEY]["concurrency"] == 0, what="concurrency back to 0")
    finally:
        assert p.stop() == 0
        b.stop()


def test_auto_allowance_follows_concurrency_target(tmp_path):
    """--endpoint-concurrency auto: a target scaling on concurrency (targetValue
    2) gets 2 per pod; a request-rate target in the same proxy is not limited."""
    port = free_port("127.0.0.33")
    b1 = Backend("127.0.0.33", port, name="conc")
    b2 = Backend("127.0.0.34", port, name="rate")
    p = Proxy(tmp_path, [scaledobject("conc", "conc", 80, hosts="conc.test", scalingMetric="concurrency",
                                      targetValue=2),
                         scaledobject("rate", "rate", 80, hosts="rate.test")],
              endpoints={"default/conc": [("127.0.0.33", port)], "default/rate": [("127.0.0.34", port)]},
              args=["--endpoint-concurrency", "auto"])
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as ex:
            fa = [ex.submit(get, p, "/slow?ms=300", "conc.test") for _ in range(6)]
            fb = [ex.submit(get, p, "/slow?ms=300", "rate.test") for _ in range(6)]
            res = [f.result() for f in fa + fb]
        assert [r[0] for r in res] == [200] * 12, res
        assert b1.max_active == 2, b1.max_active
        assert b2.max_active > 2, b2.max_active
    finally:
        assert p.stop() == 0
        b1.stop()
        b2.stop()


def test_full_queue_overflows(tmp_path):
    """endpointConcurrency 1 and maxPendingRequests 2: of 6 simultaneous
    requests one is in flight, two wait, three get 503 with Retry-After."""
    port = free_port("127.0.0.35")
    b = Backend("127.0.0.35", port, name="pod")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", endpointConcurrency=1,
                                      maxPendingRequests=2)],
              endpoints={APP: [("127.0.0.35", port)]})
    try:
        first = concurrent.futures.ThreadPoolExecutor(max_workers=6)
        f0 = first.submit(get, p, "/slow?ms=1500")
        wait_for(lambda: b.srv.active == 1, what="first request at the pod")
        futs = [first.submit(get, p, "/slow?ms=100") for _ in range(5)]
        res = [f.result() for f in futs] + [f0.result()]
        first.shutdown()
        codes = sorted(r[0] for r in res)
        assert codes == [200, 200, 200, 503, 503, 503], res
        assert b.max_active == 1
        assert p.metric("zerowire_overflows_total") == 3 or "overflow" in p.metrics()
    finally:
        assert p.stop() == 0
        b.stop()


def test_queued_request_times_out_like_a_hold(tmp_path):
    """A request waiting for room (allowance 1, the pod busy) follows the
    readiness timeout: 504 after it, while the busy request completes."""
    port = free_port("127.0.0.36")
    b = Backend("127.0.0.36", port, name="pod")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", endpointConcurrency=1,
                                      readinessTimeout="1s")],
              endpoints={APP: [("127.0.0.36", port)]})
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
            f0 = ex.submit(get, p, "/slow?ms=2500")
            wait_for(lambda: b.srv.active == 1, what="first request at the pod")
            t0 = time.monotonic()
            r1 = ex.submit(get, p, "/").result()
            waited = time.monotonic() - t0
            r0 = f0.result()
        assert r1[0] == 504, r1
        assert 0.8 < waited < 2.0, waited
        assert r0[0] == 200
    finally:
        assert p.stop() == 0
        b.stop()


def test_slow_start_ramps_a_new_pod(tmp_path):
    """endpointConcurrency 8 with slowStart 3s: right after the pod turns
    ready it takes at most a small share (8 requests never all at once);
    after the window all 8 run together."""
    port = free_port("127.0.0.37")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", endpointConcurrency=8,
                                      slowStart="3s")])
    b = Backend("127.0.0.37", port, name="pod")
    try:
        p.set_endpoints({APP: [("127.0.0.37", port)]})
        wait_for(lambda: get(p, "/")[0] == 200, what="pod routed")
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            res = list(ex.map(lambda i: get(p, "/slow?ms=300"), range(8)))
        assert [r[0] for r in res] == [200] * 8, res
        assert b.max_active <= 4, b.max_active
        time.sleep(3.2)
        b.srv.max_active = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            res = list(ex.map(lambda i: get(p, "/slow?ms=600"), range(8)))
        assert [r[0] for r in res] == [200] * 8, res
        assert b.max_active == 8, b.max_active
    finally:
        assert p.stop() == 0
        b.stop()


POD_SCRIPT = r"""
import os, signal, sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        time.sleep(1.5)
        body = b"doomed"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
s = ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H)
def crash(*a):
    s.socket.close()  # no new connections: they are refused from now on
    os._exit(1)       # requests in flight die with the process
signal.signal(signal.SIGTERM, crash)
print("ready", flush=True)
s.serve_forever()
"""


def test_pod_dying_with_requests_in_flight(tmp_path):
    """Two pods with allowance 2 each; 6 requests (2 on each pod, 2 waiting).
    The pod's process crashes (connections refused from then on, requests
    in flight cut): its 2 requests get 502; the waiting ones, granted the
    dead pod's freed slots while it is still listed, meet a refused
    connection and are retried on the survivor within its allowance once
    it has room; the dead pod's slots are given back (a later burst still
    gets exactly 2 at a time on the survivor)."""
    port = free_port("127.0.0.38")
    doomed = subprocess.Popen([sys.executable, "-c", POD_SCRIPT, "127.0.0.39", str(port)],
                              stdout=subprocess.PIPE)
    assert doomed.stdout.readline().strip() == b"ready"
    b = Backend("127.0.0.38", port, name="survivor")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", endpointConcurrency=2)],
              endpoints={APP: [("127.0.0.38", port), ("127.0.0.39", port)]})
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
            futs = [ex.submit(get, p, "/slow?ms=1200") for _ in range(6)]
            wait_for(lambda: b.srv.active == 2, what="2 requests on the survivor")
            wait_for(lambda: held(p) == 2, what="2 waiting")
            doomed.send_signal(signal.SIGTERM)
            doomed.wait()
            p.set_endpoints({APP: [("127.0.0.38", port)]})
            res = [f.result() for f in futs]
        codes = sorted(r[0] for r in res)
        assert codes == [200, 200, 200, 200, 502, 502], res
        assert b.max_active == 2
        wait_for(lambda: p.queue()[KEY]["concurrency"] == 0, what="concurrency back to 0")
        b.srv.max_active = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
            res = list(ex.map(lambda i: get(p, "/slow?ms=300"), range(4)))
        assert [r[0] for r in res] == [200] * 4
        assert b.max_active == 2
    finally:
        if doomed.poll() is None:
            doomed.kill()
        assert p.stop() == 0
        b.stop()
