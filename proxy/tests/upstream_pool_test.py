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
                if head.split(b" ")[1] == b"/slow":
                    time.sleep(1.3)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            pass
        finally:
            c.close()


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
