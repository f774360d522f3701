"""Hostile HTTP/2 clients and backends against the proxy (the HTTP/2 review):
each test is a defect found by hand first, shown failing, then fixed
(docs/http2.md, "Limits"; docs/security.md). Raw frames where a real client
would not misbehave, python3-h2 where a well-formed peer is enough.

Run by `make integration` against build/san/bin/zerowire-proxy."""
import os
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import WRAP, Backend, Proxy, TcpServer, scaledobject  # noqa: E402
from zwproxy import tls_client_context  # noqa: E402
from h2c_test import h2_frame, hpack_literal, read_frames, curl  # noqa: E402
from tls_listener_test import tls_proxy  # noqa: E402

APP = "default/app"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def head_block(path="/x", method="GET", authority="app.test", extra=()):
    return b"".join(hpack_literal(k, v) for k, v in (
        (":method", method), (":scheme", "http"), (":path", path),
        (":authority", authority)) + tuple(extra))


def flood_streams(s, block, first_sid, limit=600000):
    """Sends HEADERS with END_STREAM on new streams from first_sid on, 2000
    per write, until limit streams went or a write blocks for 3 s; returns
    (streams sent, whether the proxy stopped reading)."""
    sent, sid = 0, first_sid
    s.settimeout(3)
    while sent < limit:
        try:
            s.sendall(b"".join(h2_frame(1, 5, sid + 2 * i, block) for i in range(2000)))
        except socket.timeout:
            return sent, True
        sid += 4000
        sent += 2000
    return sent, False


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_refused_streams_from_a_client_that_never_reads_stay_bounded(tmp_path, tls):
    """A client fills its 100 streams with held requests, never reads, and
    keeps opening streams: each is refused (RST_STREAM REFUSED_STREAM), and
    those frames once queued in nghttp2 without bound (1.6 million streams:
    200 MiB). The proxy stops reading such a client while its output waits
    in the socket, so the client's own send blocks and memory stays flat;
    the same over the TLS listener (ALPN h2)."""
    # ASan's quarantine would keep what the proxy freed: not the point here.
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:quarantine_size_mb=1"}
    targets = [scaledobject("app", "app", 80, hosts="app.test")]
    if tls:
        p, tport = tls_proxy(tmp_path, targets, {APP: []}, env=env)
    else:
        p = Proxy(tmp_path, targets, {APP: []}, env=env)
    try:
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", tport if tls else p.port))
        s = tls_client_context(["h2"]).wrap_socket(raw, server_hostname="app.test") if tls else raw
        s.sendall(PREFACE + h2_frame(4, 0, 0))
        block = head_block()
        rss0 = p.rss_kib()
        sent, blocked = flood_streams(s, block, 1)
        grown = p.rss_kib() - rss0
        # (under valgrind its own allocator's overhead is what grows)
        assert WRAP or grown < 32 * 1024, "proxy grew %d KiB for %d refused streams" % (grown, sent)
        assert blocked, "the proxy read %d streams' frames from a client that reads nothing" % sent
        assert p.queue()[APP + "/0"]["held"] == 100
        s.close()
    finally:
        assert p.stop() == 0


def test_absolute_form_path_does_not_override_the_authority(tmp_path):
    """RFC 9113 8.3.1: an http(s) request's :path is origin-form (or "*" for
    OPTIONS). Through the HTTP/1.1 text an absolute-form :path would replace
    Host (http1.c, RFC 9112 3.2.2): `:authority: app.test` with `:path:
    http://other.test/x` would reach other.test's backend. This holds
    because nghttp2 refuses such a :path (stream error, nothing forwarded);
    the test keeps it so."""
    a, b = Backend("127.0.0.1", name="a"), Backend("127.0.0.1", name="b")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test"),
                         scaledobject("other", "other", 80, hosts="other.test")],
              {APP: [(a.ip, a.port)], "default/other": [(b.ip, b.port)]})
    try:
        s = socket.create_connection(("127.0.0.1", p.port))
        frames = [PREFACE, h2_frame(4, 0, 0)]
        paths = ("http://other.test/x", "https://other.test/x", "other.test/x", "*")
        for i, path in enumerate(paths):
            frames.append(h2_frame(1, 5, 1 + 2 * i, head_block(path=path)))
        s.sendall(b"".join(frames))
        got = read_frames(s, lambda fr: sum(1 for f in fr if f[0] in (1, 3)) >= len(paths))
        s.close()
        heads = {f[2]: f[3] for f in got if f[0] == 1}
        resets = {f[2] for f in got if f[0] == 3}
        for i in range(len(paths)):
            sid = 1 + 2 * i
            # :status 400 is HPACK static index 12 (0x8c)
            assert sid in resets or heads.get(sid, b"")[:1] == b"\x8c", (paths[i], got)
        assert b.hits == 0 and a.hits == 0
        # origin-form still works, and OPTIONS * is a request of its own
        assert curl(p, "/ok")[1] == 200 and a.hits == 1
    finally:
        assert p.stop() == 0
        a.stop()
        b.stop()


class _RawBackend(TcpServer):
    """Answers every request head with `answer` (bytes), then closes."""

    def __init__(self, answer):
        self.answer = answer
        super().__init__()

    def handle(self, c):
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            c.sendall(self.answer)
            time.sleep(0.2)
        finally:
            c.close()


@pytest.mark.parametrize("answer,status,body", [
    (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204, b""),
    (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nContent-Length: 7\r\n\r\n"
     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 103, b"ok"),  # curl -D: first head
], ids=["204", "103"])
def test_content_length_of_a_bodyless_status_is_not_relayed_to_http2(tmp_path, answer, status, body):
    """An HTTP/1.1 backend's 204 (or 1xx) with a Content-Length (RFC 9110 8.6
    forbids it; http1.c already frames such a response without a body) was
    relayed to the HTTP/2 client with the field: nghttp2 clients (curl) take
    a non-zero content-length on a 204 as a malformed response and reset the
    stream (curl: exit 92, PROTOCOL_ERROR). The field is dropped now."""
    b = _RawBackend(answer)
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], {APP: [(b.ip, b.port)]})
    try:
        got = curl(p, "/")
        assert got[0] == "2" and got[1] == status and got[3].endswith(body)
        assert status != 204 or "content-length" not in got[2]
    finally:
        assert p.stop() == 0
        b.stop()


def test_scaler_port_refused_streams_from_a_client_that_never_reads_stay_bounded(tmp_path):
    """The KEDA external-push port (grpc.c, h2c) had the same hole: 1000
    streams held open (no END_STREAM), then a flood of streams, each refused,
    from a client that reads nothing: 1.2 million streams grew the proxy by
    218 MiB. It now stops reading a connection whose output waits (1 MiB)."""
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], {APP: []},
              env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:quarantine_size_mb=1"})
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", p.scaler_port))
        block = head_block(path="/externalscaler.ExternalScaler/IsActive", method="POST",
                           extra=(("content-type", "application/grpc"),))
        s.sendall(PREFACE + h2_frame(4, 0, 0) +
                  b"".join(h2_frame(1, 4, 1 + 2 * i, block) for i in range(1000)))
        rss0 = p.rss_kib()
        sent, blocked = flood_streams(s, block, 2001)
        grown = p.rss_kib() - rss0
        # (under valgrind its own allocator's overhead is what grows)
        assert WRAP or grown < 32 * 1024, "proxy grew %d KiB for %d refused streams" % (grown, sent)
        assert blocked, "the scaler port read %d streams' frames from a client that reads nothing" % sent
        s.close()
        # the port still serves others
        c = socket.create_connection(("127.0.0.1", p.scaler_port))
        c.sendall(PREFACE + h2_frame(4, 0, 0) + h2_frame(6, 0, 0, b"12345678"))
        assert any(f[0] == 6 and f[1] == 1 for f in read_frames(c, lambda fr: any(f[0] == 6 for f in fr)))
        c.close()
    finally:
        assert p.stop() == 0


def test_a_held_request_body_does_not_stop_its_siblings_bodies(tmp_path):
    """docs/http2.md: a held or slow request stops its own stream, never the
    connection. The connection's receive window stayed at 65,535 bytes while
    each stream's body gives its window back only once it went upstream: one
    request held through a cold start with a full window of body took the
    whole connection's window, and a POST to a warm target on the same
    connection could send no byte (a flow-control-abiding client waits
    forever; this one is sent anyway and got GOAWAY FLOW_CONTROL_ERROR). The
    connection window is now the concurrent streams times a stream's."""
    warm_b = Backend("127.0.0.1", name="warm")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test"),
                         scaledobject("warm", "warm", 80, hosts="warm.test")],
              {APP: [], "default/warm": [(warm_b.ip, warm_b.port)]})
    try:
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(PREFACE + h2_frame(4, 0, 0))
        # stream 1: a POST held cold, its body filling its 65,535-byte window
        out = [h2_frame(1, 4, 1, head_block(path="/", method="POST"))]
        left = 65535
        while left:
            n = min(left, 16384)
            out.append(h2_frame(0, 0, 1, b"a" * n))
            left -= n
        s.sendall(b"".join(out))
        assert wait_held(p, 1)
        # stream 3: a POST to the warm target, which must be answered now
        s.sendall(h2_frame(1, 4, 3, head_block(path="/headers", method="POST", authority="warm.test",
                                               extra=(("content-length", "10"),))) +
                  h2_frame(0, 1, 3, b"b" * 10))
        got = read_frames(s, lambda fr: any(f[2] == 3 and f[0] == 0 and f[1] & 1 for f in fr)
                          or any(f[0] == 7 for f in fr), timeout=5)
        assert not any(f[0] == 7 for f in got), "GOAWAY: %r" % [f for f in got if f[0] == 7]
        assert any(f[2] == 3 and f[0] == 1 and f[3][:1] == b"\x88" for f in got), got  # :status 200
        assert p.queue()[APP + "/0"]["held"] == 1
        s.close()
    finally:
        assert p.stop() == 0
        warm_b.stop()


def wait_held(p, n, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.queue().get(APP + "/0", {}).get("held", 0) >= n:
            return True
        time.sleep(0.05)
    return False


class _ScriptedH2Backend(TcpServer):
    """An h2c backend on python3-h2 whose answer depends on the path (and on
    how often that path came): GOAWAYs and resets at each point, frames for
    streams not asked, PUSH_PROMISE, an oversized head. attempts counts the
    requests it received per path."""

    def __init__(self):
        import h2.config
        import h2.connection
        import h2.errors
        import h2.events
        self.h2c, self.h2e, self.h2err, self.h2cfg = h2.connection, h2.events, h2.errors, h2.config
        self.attempts = {}
        self.lock = threading.Lock()
        super().__init__()

    def handle(self, sock):
        conn = self.h2c.H2Connection(config=self.h2cfg.H2Configuration(client_side=False,
                                                                         header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        paths = {}
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, self.h2e.RequestReceived):
                        paths[ev.stream_id] = dict(ev.headers)[":path"]
                    elif isinstance(ev, self.h2e.DataReceived):
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, self.h2e.StreamEnded):
                        if self.answer(sock, conn, ev.stream_id, paths[ev.stream_id]):
                            return
                sock.sendall(conn.data_to_send())
        except OSError:
            pass
        finally:
            sock.close()

    def answer(self, sock, conn, sid, path):
        """Answers stream sid; returns True when the connection is over."""
        with self.lock:
            n = self.attempts[path] = self.attempts.get(path, 0) + 1
        if path == "/goaway-after" or (path == "/goaway-before" and n == 1):
            # last-stream-id: this stream was processed, or none was
            conn.close_connection(last_stream_id=sid if path == "/goaway-after" else 0)
            sock.sendall(conn.data_to_send())
            return True
        if path in ("/refused", "/refused-post") and n == 1:
            conn.reset_stream(sid, self.h2err.ErrorCodes.REFUSED_STREAM)
        elif path == "/unasked":
            sock.sendall(conn.data_to_send() + h2_frame(1, 5, sid + 2, b"\x88"))
        elif path == "/push":
            promise = (sid + 1).to_bytes(4, "big") + b"\x82\x86\x84\x41\x08app.test"
            sock.sendall(conn.data_to_send() + h2_frame(5, 4, sid, promise))
        elif path == "/big-head":
            conn.send_headers(sid, [(":status", "200")] + [("x-h%d" % i, "v" * 1000) for i in range(100)],
                              end_stream=True)
        else:
            conn.send_headers(sid, [(":status", "200"), ("content-length", "2")])
            conn.send_data(sid, b"ok", end_stream=True)
        return False


def test_h2c_backend_goaway_and_resets_replay_only_unprocessed_requests(tmp_path):
    """RFC 9113 8.1.4: only a stream the backend did not process (above a
    GOAWAY's last-stream-id, or REFUSED_STREAM) may go again. Held: a POST
    the backend took before its GOAWAY is answered 502 and not replayed; a
    GET refused or above the last-stream-id goes again once; a POST refused
    after its body is not replayed (the body is not kept); a frame for a
    stream not asked, a PUSH_PROMISE and a 100 KB head end in 502, and the
    backend is used again afterwards."""
    pytest.importorskip("h2.connection", reason="python3-h2 not installed (scripts/setup.sh)")
    b = _ScriptedH2Backend()
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], {})
    try:
        p.set_endpoints({APP: [(b.ip, b.port)]}, app_protocol="kubernetes.io/h2c")
        cases = (("/goaway-after", "POST", b"x" * 10, 502, 1), ("/goaway-before", "GET", None, 200, 2),
                 ("/refused", "GET", None, 200, 2), ("/refused-post", "POST", b"y" * 10, 502, 1),
                 ("/unasked", "GET", None, 502, 1), ("/push", "GET", None, 502, 1),
                 ("/big-head", "GET", None, 502, 1), ("/ok", "GET", None, 200, 1))
        for path, method, body, status, attempts in cases:
            r, _ = p.get(path, method=method, body=body)
            assert (r.status, b.attempts.get(path)) == (status, attempts), path
    finally:
        assert p.stop() == 0
        b.stop()


class EndlessBackend(TcpServer):
    """Answers every request with a 64 MiB body and writes it until the
    socket blocks; `closed` is set when the proxy closes the connection."""

    def __init__(self):
        super().__init__()
        self.closed = threading.Event()

    def handle(self, c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            got = c.recv(65536)
            if not got:
                return
            buf += got
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
            chunk = b"z" * 65536
            for _ in range(1024):
                c.sendall(chunk)
        except OSError:
            pass
        finally:
            self.closed.set()
            c.close()


def test_zero_window_client_stream_is_ended_by_the_stream_idle_timeout(tmp_path):
    """A client that announces SETTINGS_INITIAL_WINDOW_SIZE 0 and never
    gives window back holds its stream, the backend connection and what the
    proxy buffered for it; once neither side moves a byte for
    --stream-idle-timeout (5m by default, 2s here) the stream is reset and
    the backend connection closed, so the wait is bounded."""
    b = EndlessBackend()
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], {APP: [(b.ip, b.port)]},
              args=["--stream-idle-timeout", "2s"])
    try:
        s = socket.create_connection(("127.0.0.1", p.port))
        zero_window = (4).to_bytes(2, "big") + (0).to_bytes(4, "big")
        s.sendall(PREFACE + h2_frame(4, 0, 0, zero_window) + h2_frame(1, 5, 1, head_block()))
        t0 = time.monotonic()
        frames = read_frames(s, lambda fs: any(f[0] == 3 and f[2] == 1 for f in fs), timeout=30)
        took = time.monotonic() - t0
        kinds = [(f[0], f[2]) for f in frames]
        assert (1, 1) in kinds, "no response head for the stream: %r" % kinds
        assert not any(f[0] == 0 and f[2] == 1 and f[3] for f in frames), "DATA sent into a zero window"
        assert (3, 1) in kinds, "the stalled stream was not reset within 30 s: %r" % kinds
        assert took >= 1.5, "reset after %.1f s, before the idle timeout" % took
        assert b.closed.wait(10), "the backend connection of the stalled stream stayed open"
        s.close()
    finally:
        assert p.stop() == 0
        b.stop()
