"""Stream idle timeout (--stream-idle-timeout, docs/proxy-datapath.md
"Timeouts"): once a response head has been relayed, or a connection has
become a tunnel, the exchange is closed when no byte moves either way for
the configured time; an exchange that keeps moving, however slowly, is
left alone."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Backend, Proxy, scaledobject, ws_frame  # noqa: E402

APP = "default/app"


class StallingBackend:
    """Answers every request with a head and part of a declared body, then
    sends nothing more for `stall` seconds."""

    def __init__(self, stall=20.0):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.stall = stall
        self.closed_by_peer = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        data = b""
        while b"\r\n\r\n" not in data:
            got = c.recv(65536)
            if not got:
                c.close()
                return
            data += got
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"p" * 10)
        c.settimeout(self.stall)
        try:
            if c.recv(1) == b"":
                self.closed_by_peer.set()
        except (socket.timeout, OSError):
            pass
        c.close()

    def stop(self):
        self.srv.close()


def read_until_eof(s, limit):
    """Reads from s until EOF; returns (bytes, seconds waited). Fails after limit seconds."""
    s.settimeout(limit)
    buf = b""
    t0 = time.monotonic()
    while True:
        try:
            got = s.recv(65536)
        except ConnectionResetError:
            got = b""
        if not got:
            return buf, time.monotonic() - t0
        buf += got


def test_stalled_response_body_is_closed_after_the_idle_timeout(tmp_path):
    b = StallingBackend()
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [("127.0.0.1", b.port)]}, args=["--stream-idle-timeout", "300ms"])
    try:
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        buf, waited = read_until_eof(s, 10)
        s.close()
        assert buf.startswith(b"HTTP/1.1 200 OK"), buf
        assert buf.endswith(b"\r\n\r\n" + b"p" * 10), buf  # truncated: 10 of 100 bytes
        assert waited < 8, waited  # the backend itself stalls for 20 s
        assert b.closed_by_peer.wait(5), "the upstream side must be closed too"
        assert p.metric("zerowire_stream_idle_timeouts_total", target="app/0") == 1
        assert "stream_idle_timeout" in p.output()
        # The proxy goes on serving.
        assert p.metric("zerowire_connections") >= 0
    finally:
        assert p.stop() == 0
        b.stop()


def test_slow_but_moving_streams_are_not_cut(tmp_path):
    """SSE events 0.5 s apart under a 1 s idle timeout, and a client that
    reads a large download slowly (the proxy's writes keep completing)."""
    backend = Backend("127.0.0.1", name="b1")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [(backend.ip, backend.port)]}, args=["--stream-idle-timeout", "1s"])
    try:
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(b"GET /sse HTTP/1.1\r\nHost: app.test\r\n\r\n")
        buf, _ = read_until_eof(s, 10)
        s.close()
        assert buf.count(b"data: event") == 3, buf

        size = 24 << 20
        s = socket.create_connection(("127.0.0.1", p.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /download?n=%d HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n" % size)
        s.settimeout(10)
        got = 0
        t0 = time.monotonic()
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
            if time.monotonic() - t0 < 2.5:
                time.sleep(0.05)  # slow reader for the first seconds
        s.close()
        assert got > size, got  # head + the whole body
        assert p.metric("zerowire_stream_idle_timeouts_total") == 0
    finally:
        assert p.stop() == 0
        backend.stop()


def test_idle_tunnel_is_closed_and_busy_tunnel_kept(tmp_path):
    backend = Backend("127.0.0.1", name="b1")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [(backend.ip, backend.port)]}, args=["--stream-idle-timeout", "500ms"])
    upgrade = (b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")

    def open_tunnel():
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(upgrade)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        return s

    try:
        # Busy: an echo every 150 ms for 2 s (four times the timeout).
        s = open_tunnel()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2:
            s.sendall(ws_frame(b"ping"))
            want = ws_frame(b"ping", masked=False)
            got = b""
            while len(got) < len(want):
                chunk = s.recv(4096)
                assert chunk, "busy tunnel closed"
                got += chunk
            assert got == want
            time.sleep(0.15)
        s.close()
        # Idle: nothing sent; the proxy closes it.
        s = open_tunnel()
        buf, waited = read_until_eof(s, 10)
        s.close()
        assert buf == b"" and waited < 8, (buf, waited)
        assert p.metric("zerowire_stream_idle_timeouts_total") == 1
    finally:
        assert p.stop() == 0
        backend.stop()


def test_zero_turns_the_stream_idle_timeout_off(tmp_path):
    b = StallingBackend(stall=3.0)
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [("127.0.0.1", b.port)]}, args=["--stream-idle-timeout", "0"])
    try:
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        s.settimeout(1.5)
        buf = b""
        try:
            while True:
                got = s.recv(65536)
                assert got, "closed although the stream idle timeout is off"
                buf += got
        except socket.timeout:
            pass
        assert buf.endswith(b"p" * 10)
        s.close()
        assert p.metric("zerowire_stream_idle_timeouts_total") == 0
    finally:
        assert p.stop() == 0
        b.stop()


class RecordingBackend:
    """Reads a request head and then whatever body bytes arrive, recording
    them, and answers 200 once Content-Length bytes are in."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.body = b""
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            c, _ = self.srv.accept()
        except OSError:
            return
        data = b""
        while b"\r\n\r\n" not in data:
            got = c.recv(65536)
            if not got:
                return
            data += got
        head, _, self.body = data.partition(b"\r\n\r\n")
        want = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        c.settimeout(30)
        try:
            while len(self.body) < want:
                got = c.recv(65536)
                if not got:
                    self.closed.set()
                    return
                self.body += got
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            self.closed.set()

    def stop(self):
        self.srv.close()


def _upload(p, pieces, gap):
    """Sends a 100-byte POST in `pieces` writes `gap` seconds apart; returns
    the status line (or b"" when the connection closed without one) and the
    time it took."""
    s = socket.create_connection(("127.0.0.1", p.port), timeout=20)
    t0 = time.monotonic()
    s.sendall(b"POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n")
    sent = 0
    try:
        for i in range(pieces):
            n = 100 // pieces if i < pieces - 1 else 100 - sent
            s.sendall(b"b" * n)
            sent += n
            time.sleep(gap)
        data = s.recv(4096)
    except OSError:
        data = b""
    s.close()
    return data.split(b"\r\n", 1)[0], time.monotonic() - t0


def test_stalled_request_body_gets_408_and_frees_the_upstream(tmp_path):
    """--body-timeout 1s (response-header timeout 30s): a client that sends
    10 of 100 body bytes and stops gets 408 after about 1 s, the upstream
    connection is closed (the backend sees it end with the partial body),
    and zerowire_body_timeouts_total counts it. A client that keeps sending
    a byte batch every 0.4 s is never cut."""
    be = RecordingBackend()
    p = Proxy(tmp_path, [scaledobject("app", "app", be.port, hosts="app.test")],
              {APP: [("127.0.0.1", be.port)]},
              args=["--body-timeout", "1s", "--response-header-timeout", "30s"])
    try:
        s = socket.create_connection(("127.0.0.1", p.port), timeout=20)
        t0 = time.monotonic()
        s.sendall(b"POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        resp = s.recv(4096)
        took = time.monotonic() - t0
        s.close()
        assert resp.startswith(b"HTTP/1.1 408 "), resp
        assert b"Connection: close" in resp
        assert 0.8 < took < 5, took
        assert be.closed.wait(5), "upstream connection not closed"
        assert be.body == b"x" * 10
        assert p.metric("zerowire_body_timeouts_total") == 1
    finally:
        assert p.stop() == 0
        be.stop()
    be2 = RecordingBackend()
    p = Proxy(tmp_path, [scaledobject("app", "app", be2.port, hosts="app.test")],
              {APP: [("127.0.0.1", be2.port)]},
              args=["--body-timeout", "1s", "--response-header-timeout", "30s"])
    try:
        status, took = _upload(p, 5, 0.4)
        assert status == b"HTTP/1.1 200 OK", status
        assert took > 1.5  # longer than the body timeout in all
        assert be2.body == b"b" * 100
        assert p.metric("zerowire_body_timeouts_total") == 0
    finally:
        assert p.stop() == 0
        be2.stop()
