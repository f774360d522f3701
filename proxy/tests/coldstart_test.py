"""Black-box tests of cold-start holding, readiness timeouts, overflow,
client disconnects while held, and SIGTERM draining (static mode, loopback)."""
import concurrent.futures
import http.client
import os
import signal
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Backend, Proxy, scaledobject, wait_for, free_port  # noqa: E402

APP = "default/app"
KEY = "default/app/0"


def held(p, key=KEY):
    return p.queue().get(key, {}).get("held", 0)


def start_request(p, path="/", host="app.test", results=None, idx=0, timeout=30):
    def run():
        try:
            r, body = p.get(path, host=host, timeout=timeout)
            results[idx] = (r.status, body, r.getheader("X-Zerowire-Cold-Start"), r.getheader("Retry-After"))
        except Exception as e:  # noqa: BLE001 - recorded for the assertion
            results[idx] = ("error", repr(e), None, None)
    t = threading.Thread(target=run)
    t.start()
    return t


def test_cold_request_held_then_answered(tmp_path):
    port = free_port("127.0.0.2")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")])
    b = None
    try:
        results = {}
        t = start_request(p, results=results)
        wait_for(lambda: held(p) == 1, what="one held request")
        q = p.queue()[KEY]
        assert q["concurrency"] == 1 and q["active"] is True
        assert p.metric("zerowire_cold_starts_total", target="app/0") == 1
        time.sleep(0.3)
        assert t.is_alive(), "request must be held, not answered"
        b = Backend("127.0.0.2", port, name="new-pod")
        t0 = time.monotonic()
        p.set_endpoints({APP: [("127.0.0.2", port)]})
        t.join(10)
        assert results[0][0] == 200 and results[0][1] == b"hello from new-pod", results
        assert results[0][2] == "true"
        assert time.monotonic() - t0 < 2
        assert held(p) == 0
        # The next one is warm.
        r, _ = p.get("/")
        assert r.status == 200 and r.getheader("X-Zerowire-Cold-Start") == "false"
        wait_for(lambda: p.queue()[KEY]["concurrency"] == 0, what="concurrency back to 0")
    finally:
        assert p.stop() == 0
        if b:
            b.stop()


def test_200_cold_requests_spread_over_4_endpoints(tmp_path):
    port = free_port("127.0.0.1")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], args=["--max-connections", "1000"])
    backends = []
    try:
        n = 200
        results = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
            def one(i):
                c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
                c.request("GET", "/slow?ms=200", headers={"Host": "app.test"})
                r = c.getresponse()
                body = r.read()
                c.close()
                return r.status, body
            futs = [ex.submit(one, i) for i in range(n)]
            wait_for(lambda: held(p) == n, timeout=20, what="200 held requests")
            for i in range(4):
                backends.append(Backend("127.0.0.%d" % (10 + i), port, name="pod%d" % i))
            p.set_endpoints({APP: [(b.ip, port) for b in backends]})
            for i, f in enumerate(futs):
                results[i] = f.result(timeout=30)
        assert all(s == 200 for s, _ in results.values()), [r for r in results.values() if r[0] != 200][:3]
        hits = [b.hits for b in backends]
        assert sum(hits) == n
        # Least-outstanding P2C: every new endpoint takes a fair share.
        assert min(hits) >= n // 4 // 2, hits
    finally:
        assert p.stop() == 0
        for b in backends:
            b.stop()


def test_release_paced_per_endpoint(tmp_path):
    """A concurrency target (targetValue 5): held requests are released at
    most 5 per ready endpoint at a time, so the first pod is not flooded
    and a second pod that turns ready later still gets its share."""
    port = free_port()
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", scalingMetric="concurrency",
                                      targetValue=5)])
    b1 = b2 = None
    try:
        n = 30
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
            futs = [ex.submit(p.get, "/slow?ms=300") for _ in range(n)]
            wait_for(lambda: held(p) == n, what="all held")
            b1 = Backend("127.0.0.21", port, name="first")
            p.set_endpoints({APP: [("127.0.0.21", port)]})
            time.sleep(0.5)
            b2 = Backend("127.0.0.22", port, name="second")
            p.set_endpoints({APP: [("127.0.0.21", port), ("127.0.0.22", port)]})
            res = [f.result(timeout=30) for f in futs]
        assert all(r.status == 200 for r, _ in res)
        assert b1.srv.max_active <= 5, b1.srv.max_active
        assert b2.hits >= 5, (b1.hits, b2.hits)
    finally:
        assert p.stop() == 0
        for b in (b1, b2):
            if b:
                b.stop()


@pytest.mark.parametrize("mode", ["504", "fallback", "placeholder", "fallback+placeholder"])
def test_readiness_timeout(tmp_path, mode):
    fb = None
    meta = {"readinessTimeout": "600ms"}
    endpoints = {}
    if mode == "fallback+placeholder":
        # A placeholder beside a fallback does not answer at once: held,
        # then the fallback at the timeout.
        meta["placeholderBody"] = "<html>starting</html>"
        mode = "fallback"
    if mode == "fallback":
        fb = Backend("127.0.0.1", name="fallback")
        meta["fallbackService"] = "fb"
        meta["fallbackPort"] = "80"
        endpoints = {"default/fb": [(fb.ip, fb.port)]}
    if mode == "placeholder":
        # Held (up to maxPendingRequests, overflow Placeholder), then the
        # placeholder at the readiness timeout.
        meta["placeholderStatusCode"] = "503"
        meta["placeholderBody"] = "<html>starting</html>"
        meta["maxPendingRequests"] = "5"
        meta["overflow"] = "Placeholder"
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", **meta)], endpoints)
    try:
        t0 = time.monotonic()
        r, body = p.get("/")
        dt = time.monotonic() - t0
        assert 0.5 <= dt < 3, dt
        if mode == "504":
            assert r.status == 504 and b"timed out waiting for a ready endpoint" in body
        elif mode == "fallback":
            assert r.status == 200 and body == b"hello from fallback"
        else:
            assert r.status == 503 and body == b"<html>starting</html>"
            assert r.getheader("X-Zerowire-Cold-Start") == "true"
        assert held(p) == 0
        assert p.metric("zerowire_readiness_timeouts_total", target="app/0") == 1
    finally:
        assert p.stop() == 0
        if fb:
            fb.stop()


def test_placeholder_answers_at_once_and_wakes(tmp_path):
    """With a placeholder (and no maxPendingRequests/overflow Placeholder)
    nothing is held, as with the add-on and Kedify's waiting page: the
    request is answered at once, yet counted as a cold start (KEDA is told)."""
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", placeholderBody="<p>soon</p>",
                                      placeholderHeaders="Refresh: 5")])
    try:
        t0 = time.monotonic()
        r, body = p.get("/")
        assert time.monotonic() - t0 < 2
        assert (r.status, body) == (503, b"<p>soon</p>") and r.getheader("Refresh") == "5"
        assert r.getheader("X-Zerowire-Cold-Start") == "true"
        assert p.metric("zerowire_cold_starts_total", target="app/0") == 1
        q = p.queue()[KEY]
        assert q["held"] == 0 and q["requestCount"] == 1, q
    finally:
        assert p.stop() == 0


def test_overflow_503(tmp_path):
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", maxPendingRequests=3)])
    try:
        results = {}
        threads = [start_request(p, results=results, idx=i, timeout=10) for i in range(3)]
        wait_for(lambda: held(p) == 3, what="three held")
        r, body = p.get("/")
        assert r.status == 503 and r.getheader("Retry-After")
        assert b"too many requests" in body
        assert p.metric("zerowire_overflow_rejections_total", target="app/0") == 1
        assert held(p) == 3
        p.stop()  # drain answers nothing for held requests: they end with the process
        for t in threads:
            t.join(10)
    finally:
        p.stop()


def test_client_disconnect_while_held(tmp_path):
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")])
    try:
        socks = []
        for i in range(3):
            s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
            # One with a body the proxy must not read while holding.
            if i == 0:
                s.sendall(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
            else:
                s.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
            socks.append(s)
        wait_for(lambda: held(p) == 3, what="three held")
        assert p.queue()[KEY]["concurrency"] == 3
        socks[0].close()
        socks[1].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        socks[1].close()  # reset
        wait_for(lambda: held(p) == 1, timeout=5, what="disconnected clients dequeued")
        assert p.queue()[KEY]["concurrency"] == 1
        socks[2].close()
        wait_for(lambda: held(p) == 0 and p.queue()[KEY]["concurrency"] == 0, timeout=5, what="all gone")
    finally:
        assert p.stop() == 0


def test_sigterm_drain_loses_nothing(tmp_path):
    b = Backend("127.0.0.1", name="b")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], {APP: [(b.ip, b.port)]},
              args=["--shutdown-delay", "500ms", "--drain-timeout", "10s"])
    try:
        results = {}
        conns = []
        for i in range(5):
            c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
            c.request("GET", "/", headers={"Host": "app.test"})
            c.getresponse().read()
            conns.append(c)
        threads = []
        for i, c in enumerate(conns):
            def run(i=i, c=c):
                c.request("GET", "/slow?ms=1500", headers={"Host": "app.test"})
                r = c.getresponse()
                results[i] = (r.status, r.read(), r.getheader("Connection"))
            threads.append(threading.Thread(target=run))
            threads[-1].start()
        time.sleep(0.2)
        p.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: p.admin_get("/readyz")[0] == 503, timeout=2, what="/readyz failing")
        # Still serving during the delay.
        r, _ = p.get("/")
        assert r.status == 200
        for t in threads:
            t.join(10)
        assert len(results) == 5
        for st, body, conn in results.values():
            assert st == 200 and body == b"slow b" and conn == "close"
        assert p.proc.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", p.port), timeout=1)
    finally:
        assert p.stop() == 0
        b.stop()


def interceptorroute(name, service, port, hosts, static_routes):
    return {
        "apiVersion": "http.keda.sh/v1beta1",
        "kind": "InterceptorRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "target": {"service": service, "port": port},
            "rules": [{"hosts": hosts}],
            "scalingMetric": {"concurrency": {"targetValue": 10}},
            "staticRoutes": static_routes,
        },
    }


def test_static_routes_never_wake(tmp_path):
    ir = interceptorroute("web", "web", 80, ["web.test"], [
        {"rules": [{"hosts": ["web.test"], "paths": [{"value": "/robots.txt"}]}], "responseMode": "Always",
         "response": {"statusCode": 200, "body": "User-agent: *", "headers": {"Content-Type": "text/plain"}}},
        {"rules": [{"hosts": ["web.test"], "paths": [{"value": "/status"}]}],
         "response": {"statusCode": 503, "body": "down for now"}},
    ])
    p = Proxy(tmp_path, [ir])
    b = None
    try:
        r, body = p.get("/robots.txt", host="web.test")
        assert r.status == 200 and body == b"User-agent: *" and r.getheader("Content-Type") == "text/plain"
        r, body = p.get("/status", host="web.test")
        assert r.status == 503 and body == b"down for now"
        key = "default/web"
        assert p.queue().get(key, {}).get("requestCount", 0) == 0
        # WhenUnavailable passes through once an endpoint is ready; Always never does.
        b = Backend("127.0.0.1", name="web")
        p.set_endpoints({"default/web": [(b.ip, b.port)]})
        wait_for(lambda: p.get("/status", host="web.test")[0].status == 200, what="pass-through")
        r, body = p.get("/robots.txt", host="web.test")
        assert body == b"User-agent: *"
        assert p.queue().get(key, {}).get("requestCount", 0) == 0
    finally:
        assert p.stop() == 0
        if b:
            b.stop()


def test_request_timeout_bounds_hold_and_response(tmp_path):
    b = Backend("127.0.0.1", name="b")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", requestTimeout="500ms"),
                         scaledobject("slow", "slow", 80, hosts="slow.test", requestTimeout="500ms")],
              {"default/slow": [(b.ip, b.port)]})
    try:
        t0 = time.monotonic()
        r, body = p.get("/")
        assert r.status == 504 and b"request timeout" in body, body
        assert 0.4 < time.monotonic() - t0 < 3
        t0 = time.monotonic()
        r, body = p.get("/slow?ms=2000", host="slow.test")
        assert r.status == 504 and b"request timeout" in body, body
        assert time.monotonic() - t0 < 1.5
    finally:
        assert p.stop() == 0
        b.stop()


def test_counters_survive_table_changes(tmp_path):
    b = Backend("127.0.0.1", name="b")
    # One worker: its view of the table holds the only reference to the counters.
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], {APP: [(b.ip, b.port)]},
              args=["--workers", "1"])
    try:
        for _ in range(3):
            assert p.get("/")[0].status == 200
        assert p.queue()[KEY]["requestCount"] == 3
        # Another target appears: the table is rebuilt; app's counter stays.
        p.write_targets([scaledobject("app", "app", 80, hosts="app.test"),
                         scaledobject("other", "other", 80, hosts="other.test")])
        p.reload()
        wait_for(lambda: "default/other/0" in p.queue(), what="new table")
        assert p.get("/")[0].status == 200
        assert p.queue()[KEY]["requestCount"] == 4
    finally:
        assert p.stop() == 0
        b.stop()


def test_second_sigterm_stops_at_once(tmp_path):
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              args=["--drain-timeout", "30s"])
    results = {}
    t = start_request(p, results=results, timeout=20)
    try:
        wait_for(lambda: held(p) == 1, what="held")
        p.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert p.proc.poll() is None, "a held request keeps the drain going"
        t0 = time.monotonic()
        p.proc.send_signal(signal.SIGTERM)
        assert p.proc.wait(5) == 0
        assert time.monotonic() - t0 < 3
        t.join(5)
        assert results[0][0] == "error"  # cut: connection closed without an answer
    finally:
        assert p.stop() == 0
