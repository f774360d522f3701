"""The keep-alive pool's idle timeout (--upstream-idle-timeout) as the
backend sees it. The idle timer of a pooled connection is armed once and
not touched per request (proxy/upstream.c on_idle_timeout): these tests
check that this never closes a connection early (reused within the
timeout, or busy with a response slower than the timeout) nor keeps it
longer than the timeout after its last use."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxy_faults_test import RawBackend  # noqa: E402
from zwproxy import Proxy, TcpServer, scaledobject  # noqa: E402

IDLE = 1.0  # --upstream-idle-timeout, seconds


class KeepAliveBackend(TcpServer):
    """HTTP/1.1 keep-alive backend: answers every request "ok" (after 1.3 s
    for /slow) and records the time each connection was closed by the
    proxy."""

    def __init__(self):
        self.closed_at = []
        self.lock = threading.Lock()
        super().__init__()

    def handle(self, c):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    got = c.recv(65536)
                    if not got:
                        with self.lock:
                            self.closed_at.append(time.monotonic())
                        return
                    buf += got
                head, _, buf = buf.partition(b"\r\n\r\n")
                self.answer(c, head)
        except OSError:
            pass
        finally:
            c.close()

    def answer(self, c, head):
        if head.split(b" ")[1] == b"/slow":
            time.sleep(1.3)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def get(p, path="/"):
    r, body = p.get(path)
    assert (r.status, body) == (200, b"ok"), (r.status, body)
    return time.monotonic()


def test_pooled_connection_closes_one_timeout_after_its_last_use(tmp_path):
    """Requests 0.6 s apart reuse one upstream connection although the idle
    timer armed at its first release fires in between; it is closed about
    one timeout after the last response, not before."""
    b = KeepAliveBackend()
    p = Proxy(tmp_path, [scaledobject("app", "app", b.port, hosts="app.test")],
              {"default/app": [("127.0.0.1", b.port)]},
              args=["--workers", "1", "--upstream-idle-timeout", "1s"])
    try:
        for _ in range(4):
            last = get(p)
            time.sleep(0.6)
        assert b.accepted == 1, "reused within the idle timeout: one connection"
        assert not b.closed_at
        deadline = time.monotonic() + 5
        while not b.closed_at and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b.closed_at, "the idle connection was never closed"
        idle = b.closed_at[0] - last
        assert IDLE - 0.1 <= idle <= IDLE + 0.6, "closed %.2f s after its last use" % idle
    finally:
        assert p.stop() == 0
        b.stop()


def test_connection_busy_longer_than_the_timeout_stays_pooled(tmp_path):
    """The idle timer fires while a reused connection waits 1.3 s for its
    response: the response arrives whole and the connection goes back to
    the pool (the next request reuses it)."""
    b = KeepAliveBackend()
    p = Proxy(tmp_path, [scaledobject("app", "app", b.port, hosts="app.test")],
              {"default/app": [("127.0.0.1", b.port)]},
              args=["--workers", "1", "--upstream-idle-timeout", "1s"])
    try:
        get(p)  # dials, then the first release arms the idle timer
        get(p, "/slow")  # reused; the timer fires during it
        get(p)
        assert b.accepted == 1, "one connection for the three requests"
        assert not b.closed_at
    finally:
        assert p.stop() == 0
        b.stop()


def test_pool_still_closes_idle_connections_when_draining(tmp_path):
    """A stop (drain) closes the pooled connection at once, whatever its
    idle timer says."""
    b = KeepAliveBackend()
    p = Proxy(tmp_path, [scaledobject("app", "app", b.port, hosts="app.test")],
              {"default/app": [("127.0.0.1", b.port)]},
              args=["--workers", "1", "--upstream-idle-timeout", "60s"])
    try:
        get(p)
        get(p)
        assert b.accepted == 1
    finally:
        t0 = time.monotonic()
        assert p.stop() == 0
        deadline = time.monotonic() + 5
        while not b.closed_at and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b.closed_at and b.closed_at[0] - t0 < 5
        b.stop()


def dies_after_second(rb, c):
    """RawBackend behaviour: answers the first request of a connection "ok";
    reads the second one whole (head and Content-Length body) and closes
    without an answer, as a backend that took the request and then died.
    Every request line read goes to rb.lines."""
    for n in (1, 2):
        head = rb.read_request(c)
        if not head:
            return
        with rb.lock:
            rb.lines.append(head.split(b"\r\n")[0].decode())
        if n == 1:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_request_taken_by_a_backend_that_then_closed_is_retried_only_if_idempotent(tmp_path):
    """A pooled connection closed by the backend after it read a request:
    the proxy cannot tell a backend that closed an idle connection just as
    it was reused from one that took the request and died, so it sends the
    request again on a fresh connection only when the method is idempotent
    (RFC 9112 9.3.1: a proxy must not retry non-idempotent requests
    automatically). A POST or PATCH without a body reaches the backend once
    and gets 502; GET and DELETE are retried (the backend sees them twice
    and the client gets 200)."""
    b = RawBackend(dies_after_second)
    b.lines, b.lock = [], threading.Lock()
    p = Proxy(tmp_path, [scaledobject("app", "app", b.port, hosts="app.test")],
              {"default/app": [("127.0.0.1", b.port)]}, args=["--workers", "1"])
    try:
        for method, retried in (("GET", True), ("POST", False), ("DELETE", True), ("PATCH", False)):
            with b.lock:
                b.lines.clear()
            get(p)  # a fresh connection (the last one was closed), pooled after this
            r, _ = p.get("/op", method=method, headers={"Content-Length": "0"})
            with b.lock:
                lines = list(b.lines)
            ops = [ln for ln in lines if ln.startswith(method + " /op ")]
            if retried:
                assert r.status == 200 and len(ops) == 2, (method, r.status, lines)
            else:
                assert r.status == 502 and len(ops) == 1, (method, r.status, lines)
    finally:
        assert p.stop() == 0
        b.stop()


class HeadBodyBackend(KeepAliveBackend):
    """A backend with a bug some frameworks have: it answers HEAD with the
    head and then, in a later write, the body a GET would get, here bytes
    that look like a response of their own. Other requests get "ok"."""

    def answer(self, c, head):
        if not head.startswith(b"HEAD "):
            super().answer(c, head)
            return
        evil = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(evil))
        time.sleep(0.3)
        c.sendall(evil)


def test_connection_that_answered_head_is_not_reused(tmp_path):
    """A response to HEAD ends with its head, but a backend may still send
    the body it should not have (later, in another segment): a connection
    that answered a HEAD goes back to the pool no more, so the next client
    never reads those bytes as its own response."""
    b = HeadBodyBackend()
    p = Proxy(tmp_path, [scaledobject("app", "app", b.port, hosts="app.test")],
              {"default/app": [("127.0.0.1", b.port)]}, args=["--workers", "1"])
    try:
        r, body = p.get("/file", method="HEAD")
        assert r.status == 200 and body == b""
        # Another client's request, before the stray body arrives.
        r, body = p.get("/other")
        assert (r.status, body) == (200, b"ok"), (r.status, body)
        assert b.accepted == 2, "the connection that answered HEAD was reused"
    finally:
        assert p.stop() == 0
        b.stop()
