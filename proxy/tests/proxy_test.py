"""Black-box tests of zerowire-proxy's data path on loopback (static mode:
targets and EndpointSlices from files, SIGHUP to reload).

Run by `make integration` against build/san/bin/zerowire-proxy (override with
ZW_PROXY_BIN). Backends are Python threads in this process on 127.0.0.N."""
import json
import os
import signal
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import (Backend, Proxy, scaledobject, wait_for, free_port, recv_count,  # noqa: E402
                     recv_head, upload, ws_echo_roundtrip)

APP = "default/app"
KEY = "default/app/0"


@pytest.fixture
def backend():
    b = Backend("127.0.0.1", name="b1")
    yield b
    b.stop()


@pytest.fixture
def warm(tmp_path, backend):
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [(backend.ip, backend.port)]})
    yield p, backend
    assert p.stop() == 0


def test_warm_request_headers(warm):
    p, b = warm
    r, body = p.get("/headers?x=1", headers={
        "Connection": "keep-alive, X-Hop",
        "X-Hop": "must-go",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "secret",
        "TE": "trailers",
        "X-Forwarded-For": "10.1.1.1",
        "X-Keep": "yes",
    })
    assert r.status == 200
    assert r.getheader("X-Zerowire-Cold-Start") == "false"
    seen = {k.lower(): v for k, v in json.loads(body)["headers"]}
    assert json.loads(body)["path"] == "/headers?x=1"
    assert seen["host"] == "app.test"
    assert seen["x-keep"] == "yes"
    assert seen["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "app.test"
    for hop in ("x-hop", "keep-alive", "proxy-authorization", "te"):
        assert hop not in seen, hop
    assert "connection" not in seen or seen["connection"].lower() == "keep-alive"


def test_keepalive_and_pipelining(warm):
    p, b = warm
    c = p.conn()
    for i in range(5):
        c.request("GET", "/n%d" % i, headers={"Host": "app.test"})
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"hello from b1"
    c.close()
    # Two pipelined requests in one write: two answers in order.
    out = p.raw(b"GET /a HTTP/1.1\r\nHost: app.test\r\n\r\nGET /headers HTTP/1.1\r\nHost: app.test\r\n"
                b"Connection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 2, out
    assert out.index(b"hello from b1") < out.index(b'"path": "/headers"')


def test_no_route_404(warm):
    p, _ = warm
    r, body = p.get("/some/path", host="other.test:8080")
    assert r.status == 404
    assert b"other.test" in body and b"/some/path" in body


def test_probe_and_healthcheck_do_not_count(tmp_path):
    # No endpoint: a counted request would be held (and wake the target).
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", healthcheckPath="/healthz")])
    try:
        r, body = p.get("/anything", headers={"User-Agent": "kube-probe/1.29"})
        assert r.status == 200 and body == b"ok\n"
        r, body = p.get("/healthz")
        assert r.status == 200
        q = p.queue()
        assert q.get(KEY, {}).get("requestCount", 0) == 0, q
        assert q.get(KEY, {}).get("held", 0) == 0
    finally:
        assert p.stop() == 0


def test_path_embedded_host_probes(tmp_path):
    """Load balancer probes that send a pod IP as Host and the host in the
    path (healthcheckPathPrefix, Kedify's pathEmbeddedHost) are answered by
    the proxy for that target without waking or counting it; other paths,
    unknown hosts and targets without the prefix are not probes."""
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test", healthcheckPathPrefix="/kedify-proxy"),
                         scaledobject("other", "other", 80, hosts="other.test")])
    try:
        for path in ("/kedify-proxy/app.test/healthz", "/kedify-proxy/APP.test", "/kedify-proxy/app.test?x=1"):
            r, body = p.get(path, host="10.1.2.3:8080")
            assert r.status == 200 and body == b"ok\n", (path, r.status, body)
        assert p.metric("zerowire_healthchecks_total", target="app/0") == 3
        for path, host in (("/kedify-proxy/other.test/healthz", "10.1.2.3"),   # other has no prefix
                           ("/kedify-proxy/nope.test/healthz", "10.1.2.3"),    # no such host
                           ("/kedify-proxy/", "10.1.2.3"), ("/kedify-proxyx/app.test", "10.1.2.3")):
            r, _ = p.get(path, host=host)
            assert r.status == 404, (path, r.status)
        q = p.queue()
        for key in ("default/app/0", "default/other/0"):
            assert q.get(key, {}).get("requestCount", 0) == 0 and q.get(key, {}).get("held", 0) == 0, q
    finally:
        assert p.stop() == 0


def test_chunked_both_ways_and_head(warm):
    p, _ = warm
    r, body = p.get("/chunked")
    assert r.status == 200 and body == b"alpha-beta-gamma"
    assert r.getheader("Transfer-Encoding") == "chunked"
    c = p.conn()
    c.putrequest("POST", "/upload", skip_host=True)
    c.putheader("Host", "app.test")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for part in (b"12345", b"678", b"9" * 10000):
        c.send(b"%x\r\n%s\r\n" % (len(part), part))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["received"] == 10008
    c.request("HEAD", "/", headers={"Host": "app.test"})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == "13" and r.read() == b""
    c.request("GET", "/", headers={"Host": "app.test"})
    assert c.getresponse().read() == b"hello from b1"
    c.close()


def test_expect_100_continue(warm):
    p, _ = warm
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    first = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 100"), first
    s.sendall(b"hello")
    rest = b""
    while b'"received": 5' not in rest:
        got = s.recv(4096)
        assert got, rest
        rest += got
    assert b"HTTP/1.1 200" in rest
    s.close()


def test_malformed_requests_rejected(warm):
    p, b = warm
    cases = [
        b"GET / HTTP/1.1\nHost: app.test\n\n",
        b"GET / HTTP/1.1\r\nHost: app.test\r\nX: a\r\n b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test\r\nHost: other\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test\r\nBad Name: x\r\n\r\n",
    ]
    before = b.hits
    for raw in cases:
        out = p.raw(raw)
        assert out.startswith(b"HTTP/1.1 400"), (raw, out)
        assert b"Connection: close" in out
    # A body with an invalid chunk after a valid one: 400, and nothing after
    # it is taken as a request (no smuggling).
    out = p.raw(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\nXYZ\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out
    assert out.count(b"HTTP/1.1") == 1, out
    # Malformed bodies that arrive with their head never reach a backend.
    assert b.hits == before
    # Split across reads, the head may already be upstream: the client
    # still gets 400, the upstream connection is dropped, and the rest of
    # the bytes are never parsed as a request.
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    time.sleep(0.3)
    s.sendall(b"XYZ\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n")
    out = b""
    while True:
        got = s.recv(4096)
        if not got:
            break
        out += got
    s.close()
    assert out.startswith(b"HTTP/1.1 400") and out.count(b"HTTP/1.1") == 1, out
    time.sleep(0.2)
    assert all("smuggled" not in json.dumps(h) for h in b.headers)


def test_limits(tmp_path, backend):
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [(backend.ip, backend.port)]},
              args=["--max-header-bytes", "2048", "--max-headers", "10", "--max-request-line", "100",
                    "--header-timeout", "500ms"])
    try:
        out = p.raw(b"GET / HTTP/1.1\r\nHost: app.test\r\nX: " + b"a" * 3000 + b"\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 431"), out
        out = p.raw(b"GET / HTTP/1.1\r\nHost: app.test\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(11)) + b"\r\n")
        assert out.startswith(b"HTTP/1.1 431"), out
        out = p.raw(b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 414"), out
        # Slowloris: a head that never completes gets 408 and is closed.
        t0 = time.monotonic()
        out = p.raw(b"GET / HTTP/1.1\r\nHost: app.test\r\n", timeout=5)
        assert out.startswith(b"HTTP/1.1 408"), out
        assert time.monotonic() - t0 < 3
        # A silent connection is closed after the header timeout too.
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        t0 = time.monotonic()
        assert s.recv(10) == b""
        assert time.monotonic() - t0 < 3
        s.close()
    finally:
        assert p.stop() == 0


def test_max_connections(tmp_path, backend):
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [(backend.ip, backend.port)]}, args=["--max-connections", "3"])
    try:
        socks = [socket.create_connection(("127.0.0.1", p.port), timeout=5) for _ in range(3)]
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        extra.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        try:
            assert extra.recv(100) == b""
        except ConnectionResetError:
            pass
        for s in socks:
            s.close()
        time.sleep(0.2)
        r, _ = p.get("/")
        assert r.status == 200
    finally:
        assert p.stop() == 0


def test_upstream_refused_502_and_header_timeout_504(tmp_path, backend):
    dead = free_port()
    p = Proxy(tmp_path, [scaledobject("app", "app", dead, hosts="app.test"),
                         scaledobject("slow", "slow", 80, hosts="slow.test")],
              {APP: [("127.0.0.1", dead)], "default/slow": [(backend.ip, backend.port)]},
              args=["--connect-retry-budget", "300ms", "--response-header-timeout", "400ms"])
    try:
        t0 = time.monotonic()
        r, body = p.get("/")
        assert r.status == 502 and b"refused" in body, body
        assert time.monotonic() - t0 < 3
        r, body = p.get("/slow?ms=1500", host="slow.test")
        assert r.status == 504 and b"response header timeout" in body, body
        assert p.metric("zerowire_upstream_errors_total", target="app/0") >= 1
        assert p.metric("zerowire_upstream_timeouts_total", target="slow/0") >= 1
    finally:
        assert p.stop() == 0


def test_connect_retry_while_endpoint_settles(tmp_path):
    port = free_port()
    p = Proxy(tmp_path, [scaledobject("app", "app", port, hosts="app.test")],
              {APP: [("127.0.0.1", port)]})
    box = {}
    try:
        def later():
            time.sleep(0.4)
            box["b"] = Backend("127.0.0.1", port, name="late")
        t = threading.Thread(target=later)
        t.start()
        r, body = p.get("/")
        t.join()
        assert r.status == 200 and body == b"hello from late"
    finally:
        assert p.stop() == 0
        if "b" in box:
            box["b"].stop()


def test_websocket_echo(warm):
    p, _ = warm
    ws_echo_roundtrip(socket.create_connection(("127.0.0.1", p.port), timeout=5))


def test_sse_flushed_as_they_come(warm):
    p, _ = warm
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    t0 = time.monotonic()
    s.sendall(b"GET /sse HTTP/1.1\r\nHost: app.test\r\n\r\n")
    buf = b""
    times = []
    while len(times) < 3:
        b = s.recv(4096)
        assert b, buf
        buf += b
        while buf.count(b"data: event") > len(times):
            times.append(time.monotonic() - t0)
    s.close()
    assert times[0] < 0.4, times
    assert times[1] - times[0] > 0.3, times


def test_large_upload_and_download_bounded_memory(tmp_path, backend):
    """1 GiB each way streams through with bounded proxy memory. Under ASan
    the quarantine is limited to 16 MiB so RSS reflects live memory; the
    bound is RSS growth <= 96 MiB (without backpressure the whole body
    would be buffered)."""
    size = 1 << 30
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [(backend.ip, backend.port)]},
              env={"ASAN_OPTIONS": "quarantine_size_mb=16:detect_leaks=1"})
    try:
        p.get("/")
        base = p.rss_kib()
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], p.rss_kib())
                time.sleep(0.05)
        th = threading.Thread(target=sample)
        th.start()
        try:
            # Download, read slowly at first (slow client: upstream must wait).
            s = socket.create_connection(("127.0.0.1", p.port), timeout=60)
            s.sendall(b"GET /download?n=%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % size)
            assert recv_head(s).startswith(b"HTTP/1.1 200")
            time.sleep(1.0)
            assert recv_count(s, size) == size
            # Upload.
            assert upload(s, size) == size
            s.close()
        finally:
            stop.set()
            th.join()
        growth_mib = (peak[0] - base) / 1024
        print("proxy RSS base %d KiB, peak %d KiB" % (base, peak[0]))
        assert growth_mib <= 96, "proxy RSS grew by %.1f MiB" % growth_mib
    finally:
        assert p.stop() == 0


def test_aborts_mid_stream_leave_proxy_healthy(warm):
    """Clients that vanish mid-download / mid-upload / while waiting, and
    garbage, must not disturb the proxy (ASan/valgrind check the rest)."""
    p, b = warm
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(b"GET /download?n=%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % (64 << 20))
        s.recv(65536)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100000000\r\n\r\n" + b"z" * 300000)
        s.close()
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(b"GET /slow?ms=300 HTTP/1.1\r\nHost: app.test\r\n\r\n")
        s.close()
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(os.urandom(3000))
        s.close()
    time.sleep(0.5)
    for _ in range(5):
        r, body = p.get("/")
        assert r.status == 200 and body == b"hello from b1"
    wait_for(lambda: p.queue()["default/app/0"]["concurrency"] == 0, timeout=5, what="nothing in flight")


def test_backend_dies_mid_response(tmp_path):
    """A backend that closes mid-body: the client sees a truncated response
    (connection closed, never a clean end), and the proxy keeps serving."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]

    def serve():
        for _ in range(2):
            c, _ = srv.accept()
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10)
            time.sleep(0.1)
            c.close()
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    p = Proxy(tmp_path, [scaledobject("app", "app", port, hosts="app.test")], {APP: [("127.0.0.1", port)]})
    try:
        for _ in range(2):
            out = p.raw(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"a" * 10), out
        assert p.metric("zerowire_upstream_errors_total", target="app/0") == 2
    finally:
        assert p.stop() == 0
        srv.close()


def test_http10_client_gets_no_chunked_body(warm):
    p, _ = warm
    out = p.raw(b"GET /chunked HTTP/1.0\r\nHost: app.test\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], out
    assert b"Transfer-Encoding" not in head
    assert body == b"alpha-beta-gamma"


def test_upstream_keepalive_pool_reused(warm):
    p, _ = warm
    peers = set()
    for i in range(5):
        r, body = p.get("/headers")  # a new client connection each time
        assert r.status == 200
        peers.add(json.loads(body)["peer"])
    # Two workers: at most one pooled upstream connection each.
    assert len(peers) <= 2, peers


def test_idle_keepalive_timeout(tmp_path, backend):
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [(backend.ip, backend.port)]}, args=["--idle-timeout", "300ms"])
    try:
        s = socket.create_connection(("127.0.0.1", p.port), timeout=15)
        t0 = time.monotonic()  # the idle timer cannot start before the request is sent
        s.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        got = b""
        while b"hello from b1" not in got:
            got += s.recv(4096)
        assert s.recv(10) == b""  # closed by the proxy
        # at least the idle timeout after the request; the upper bound only
        # catches a timer that never fires (valgrind on a loaded machine is slow)
        assert 0.3 <= time.monotonic() - t0 < 10
        s.close()
    finally:
        assert p.stop() == 0


def test_admin_endpoints(warm):
    p, _ = warm
    p.get("/")
    assert p.admin_get("/healthz") == (200, b"ok\n")
    assert p.admin_get("/readyz") == (200, b"ok\n")
    q = p.queue()["default/app/0"]
    assert q["requestCount"] == 1 and q["concurrency"] == 0 and q["held"] == 0 and q["rate"] > 0
    m = p.metrics()
    for name in ("zerowire_requests_total", "zerowire_request_duration_seconds_bucket",
                 "zerowire_held_requests", "zerowire_cold_starts_total", "zerowire_readiness_timeouts_total",
                 "zerowire_overflow_rejections_total", "zerowire_upstream_errors_total",
                 "zerowire_upstream_timeouts_total", "zerowire_connections"):
        assert name in m, name
    assert p.metric("zerowire_requests_total", target="app/0", code="200") == 1
    check_exposition(m)
    st, html = p.admin_get("/status")
    assert st == 200 and b"default/app/0" in html and b"127.0.0.1" in html
    assert p.admin_get("/nope")[0] == 404


def check_exposition(text):
    """Prometheus text format: one TYPE per family, every sample of a family
    right after its TYPE line (histograms: _bucket/_sum/_count), values parse."""
    import re
    typed = {}
    current = None
    seen_done = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in typed, "second TYPE for " + name
            if current:
                seen_done.add(current)
            typed[name] = kind
            current = name
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$', line)
        assert m, "bad sample line: " + line
        float(m.group(3))
        name = m.group(1)
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in typed:
                fam = name[: -len(suffix)]
        assert fam == current, "sample %s outside its family block (current %s)" % (name, current)
        assert fam not in seen_done


def test_bodies_avoid_stale_pooled_connections(tmp_path, backend):
    """A request with a body (which cannot be replayed) reuses a pooled
    upstream connection only if it was used within the last second; a
    bodyless one reuses any (and is retried on a fresh one if it was closed)."""
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [(backend.ip, backend.port)]}, args=["--workers", "1"])
    try:
        a = json.loads(p.get("/headers")[1])["peer"]
        b = json.loads(p.get("/headers")[1])["peer"]
        assert a == b  # pooled
        r, body = p.get("/upload", method="POST", body=b"x" * 10)
        assert json.loads(body)["peer"] == a  # fresh enough: reused
        time.sleep(1.3)
        r, body = p.get("/upload", method="POST", body=b"x" * 10)
        fresh = json.loads(body)["peer"]
        assert r.status == 200 and fresh != a
        time.sleep(1.3)
        assert json.loads(p.get("/headers")[1])["peer"] in (a, fresh)  # GET reuses old ones
    finally:
        assert p.stop() == 0


def test_split_header_picks_the_service_and_is_not_forwarded(tmp_path):
    """Two targets for the same host (a canary split the gateway makes):
    X-Zerowire-Service picks the target of that Service, the header does
    not reach the backend, and without it the usual tie-break applies."""
    v1 = Backend("127.0.0.1", name="v1")
    v2 = Backend("127.0.0.2", port=v1.port, name="v2")
    p = Proxy(tmp_path, [scaledobject("stable", "app-v1", 80, hosts="shop.test"),
                         scaledobject("canary", "app-v2", 80, hosts="shop.test")],
              {"default/app-v1": [(v1.ip, v1.port)], "default/app-v2": [(v2.ip, v2.port)]})
    try:
        for svc, want in (("default/app-v1", "v1"), ("default/app-v2", "v2")):
            for _ in range(3):
                r, body = p.get("/headers", host="shop.test", headers={"X-Zerowire-Service": svc})
                assert r.status == 200
                seen = json.loads(body)
                assert seen["server"] == want, (svc, seen)
                assert not [h for h in seen["headers"] if h[0].lower() == "x-zerowire-service"], seen
        # Without the header (or naming another Service) one target takes all.
        servers = {json.loads(p.get("/headers", host="shop.test", headers=h)[1])["server"]
                   for h in ({}, {"X-Zerowire-Service": "default/nope"}) for _ in range(3)}
        assert len(servers) == 1, servers
        # A request is counted when its exchange ends, which may be just
        # after the client has read the response.
        wait_for(lambda: sorted(p.metric("zerowire_requests_total", target=t)
                                for t in ("canary/0", "stable/0")) == [3, 9],
                 what="requests counted per target: [3, 9]")
    finally:
        assert p.stop() == 0
        v1.stop()
        v2.stop()
