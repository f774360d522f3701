"""Black-box tests of request trailers and interim (1xx) responses through
zerowire-proxy on every combination it translates (issue #11), with real
clients: nghttp (Debian's nghttp2-client: --trailer, --expect-continue and
its -v frame log) and curl --http2-prior-knowledge with Expect:
100-continue, plus raw HTTP/1.1 sockets. Two backends written for what
they record:

- an HTTP/1.1 server on raw sockets: the exact request bytes (the chunked
  trailer section included), 100 Continue on Expect, 103 Early Hints before
  200, a chunked response with a trailer section;
- an HTTP/2 (h2c) server on the h2 package (Debian's python3-h2), behind
  `appProtocol: kubernetes.io/h2c`: request trailers as its TrailersReceived
  event, 100 Continue on Expect, 103 before 200, and no window given back
  for /stall until released (request body backpressure from an HTTP/1.1
  client).

Every case runs first through a cold start (held until the backend's
endpoint appears) and then warm. Run by `make integration` against
build/san/bin/zerowire-proxy."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Proxy, TcpServer, scaledobject, wait_for  # noqa: E402
from h2c_test import h2_frame, hpack_literal, read_frames  # noqa: E402

APP = "default/app"
KEY = "default/app/0"
NGHTTP = shutil.which("nghttp")
CURL = shutil.which("curl")
BODY = b"0123456789" * 1000  # 10,000 bytes: more than one DATA frame


# ---- an HTTP/1.1 backend on raw sockets --------------------------------------------

def _read_until(c, buf, token):
    while token not in buf:
        got = c.recv(65536)
        if not got:
            raise EOFError
        buf += got
    return buf


def _read_n(c, buf, n):
    while len(buf) < n:
        got = c.recv(65536)
        if not got:
            raise EOFError
        buf += got
    return buf


def _lines(block):
    out = []
    for ln in block.split(b"\r\n"):
        if ln:
            k, _, v = ln.decode().partition(":")
            out.append((k.strip().lower(), v.strip()))
    return out


class H1Backend(TcpServer):
    """Records each request (head fields, body, trailer section, raw bytes)
    and answers by path: /early 103 then 200, /early-many twelve 103s then
    200, /trailers a chunked body with a trailer section, else 200 with a
    JSON summary."""

    def __init__(self, ip):
        self.requests = []
        super().__init__(ip)

    def handle(self, c):
        buf = b""
        try:
            while True:
                buf = _read_until(c, buf, b"\r\n\r\n")
                head, _, buf = buf.partition(b"\r\n\r\n")
                line, _, fields = head.partition(b"\r\n")
                method, path, _ = line.decode().split(" ", 2)
                h = _lines(fields)
                hd = dict(h)
                raw = head + b"\r\n\r\n"
                rq = {"method": method, "path": path, "fields": h, "trailers": [], "body": b""}
                if hd.get("expect", "").lower() == "100-continue":
                    c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                if "content-length" in hd:
                    n = int(hd["content-length"])
                    buf = _read_n(c, buf, n)
                    rq["body"], buf = buf[:n], buf[n:]
                    raw += rq["body"]
                elif hd.get("transfer-encoding") == "chunked":
                    while True:
                        buf = _read_until(c, buf, b"\r\n")
                        size_line, _, buf = buf.partition(b"\r\n")
                        raw += size_line + b"\r\n"
                        n = int(size_line.split(b";")[0], 16)
                        if n == 0:
                            break
                        buf = _read_n(c, buf, n + 2)
                        rq["body"] += buf[:n]
                        raw += buf[:n + 2]
                        buf = buf[n + 2:]
                    if buf.startswith(b"\r\n"):
                        buf = buf[2:]
                        raw += b"\r\n"
                    else:
                        buf = _read_until(c, buf, b"\r\n\r\n")
                        tr, _, buf = buf.partition(b"\r\n\r\n")
                        raw += tr + b"\r\n\r\n"
                        rq["trailers"] = _lines(tr)
                rq["raw"] = raw
                self.requests.append(rq)
                c.sendall(self.answer(rq))
        except (EOFError, OSError):
            pass
        finally:
            c.close()

    @staticmethod
    def answer(rq):
        if rq["path"] == "/early":
            return (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        if rq["path"] == "/early-many":
            hints = b"".join(b"HTTP/1.1 103 Early Hints\r\nLink: </%d.css>\r\n\r\n" % i for i in range(12))
            return hints + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        if rq["path"] == "/trailers":
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
                    b"X-Sum: 42\r\nContent-Length: 99\r\n\r\n")
        body = json.dumps({"received": len(rq["body"]), "trailers": rq["trailers"]}).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body), body)


# ---- an HTTP/2 (h2c) backend on the h2 package -------------------------------------

class H2Backend(TcpServer):
    """h2c server: records each request (fields, body, trailers), sends 100
    Continue on Expect and 103 before the 200 of /early. The body of
    /stall is not read (no window given back) until `release` is set."""

    def __init__(self, ip):
        self.h2 = pytest.importorskip("h2.connection", reason="python3-h2 not installed (scripts/setup.sh)")
        import h2.config
        import h2.events
        self.config, self.events = h2.config, h2.events
        self.requests = []
        self.release = threading.Event()
        super().__init__(ip)

    def handle(self, sock):
        ev_mod = self.events
        conn = self.h2.H2Connection(config=self.config.H2Configuration(client_side=False,
                                                                         header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams = {}
        held = []  # (stream id, bytes) of /stall body whose window waits for release
        sock.settimeout(0.1)
        try:
            while True:
                if held and self.release.is_set():
                    for sid, n in held:
                        conn.acknowledge_received_data(n, sid)
                    held = []
                    sock.sendall(conn.data_to_send())
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, ev_mod.RequestReceived):
                        h = dict(ev.headers)
                        streams[ev.stream_id] = {"fields": list(ev.headers), "body": bytearray(), "trailers": [],
                                                 "stall": h.get(":path") == "/stall"}
                        if h.get("expect", "").lower() == "100-continue":
                            conn.send_headers(ev.stream_id, [(":status", "100")])
                        if h.get(":path") == "/early":
                            conn.send_headers(ev.stream_id, [(":status", "103"),
                                                             ("link", "</h2.css>; rel=preload")])
                    elif isinstance(ev, ev_mod.DataReceived):
                        streams[ev.stream_id]["body"] += ev.data
                        if streams[ev.stream_id]["stall"] and not self.release.is_set():
                            held.append((ev.stream_id, ev.flow_controlled_length))
                        else:
                            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, ev_mod.TrailersReceived):
                        streams[ev.stream_id]["trailers"] = list(ev.headers)
                    elif isinstance(ev, ev_mod.StreamEnded):
                        rq = streams.pop(ev.stream_id)
                        self.requests.append(rq)
                        body = json.dumps({"received": len(rq["body"]), "trailers": rq["trailers"]}).encode()
                        conn.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "application/json"),
                                                         ("content-length", str(len(body)))])
                        conn.send_data(ev.stream_id, body, end_stream=True)
                sock.sendall(conn.data_to_send())
        except OSError:
            pass
        finally:
            sock.close()


# ---- clients and the cold-then-warm run --------------------------------------------

def background(cmd, timeout=60):
    """Starts cmd; returns a function that waits for it: (rc, stdout + stderr)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def done():
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out + err
    return done


def nghttp(p, path, *args):
    if not NGHTTP:
        pytest.skip("nghttp not installed (Debian package nghttp2-client)")
    return background([NGHTTP, "-v", "-H", ":authority: app.test"] + list(args) +
                      ["http://127.0.0.1:%d%s" % (p.port, path)])


def statuses(log):
    """The :status values nghttp received (one request), in order."""
    return [int(s) for s in re.findall(r"recv \(stream_id=\d+\) :status: (\d+)", log)]


def received(log, name):
    """The values of field `name` nghttp received (heads and trailers)."""
    return re.findall(r"recv \(stream_id=\d+\) %s: (.*)" % re.escape(name), log)


def h1_exchange(p, request):
    """Sends an HTTP/1.1 request on a raw socket; returns a function that
    reads every response head (1xx and final) and the final body:
    ([(status, fields)], body)."""
    s = socket.create_connection(("127.0.0.1", p.port), timeout=30)
    s.sendall(request)

    def done():
        heads, buf = [], b""
        try:
            while True:
                buf = _read_until(s, buf, b"\r\n\r\n")
                head, _, buf = buf.partition(b"\r\n\r\n")
                line, _, fields = head.partition(b"\r\n")
                status = int(line.split()[1])
                f = _lines(fields)
                heads.append((status, f))
                if status >= 200:
                    n = int(dict(f).get("content-length", "0"))
                    return heads, _read_n(s, buf, n)[:n]
        finally:
            s.close()
    return done


def cold_then_warm(tmp_path, backend, start, app_protocol=None):
    """start(p) begins one exchange and returns a function that waits for
    its result. The first exchange is held through a cold start (the
    backend's endpoint appears once the proxy holds it), the second is warm.
    Returns both results."""
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], {})
    try:
        done = start(p)
        wait_for(lambda: p.queue().get(KEY, {}).get("held", 0) == 1, what="request held")
        t0 = time.monotonic()
        p.set_endpoints({APP: [(backend.ip, backend.port)]}, app_protocol=app_protocol)
        cold = done()
        released_s = time.monotonic() - t0
        warm = start(p)()
        return cold, warm, released_s
    finally:
        assert p.stop() == 0
        backend.stop()


@pytest.fixture
def upload(tmp_path):
    f = tmp_path / "body.bin"
    f.write_bytes(BODY)
    return str(f)


# ---- request trailers ---------------------------------------------------------------

@pytest.mark.parametrize("length", ["with-length", "no-length"])
def test_h2_client_trailers_to_http1_backend(tmp_path, upload, length):
    """nghttp sends a body and a trailer section (x-checksum, and an
    authorization that a trailer must not carry). The HTTP/1.1 backend gets
    the body chunked with the trailer section: x-checksum only. With a
    content-length nghttp also announces the trailers (Trailer), so the
    length is dropped for chunked framing."""
    b = H1Backend("127.0.0.21")
    extra = [] if length == "with-length" else ["--no-content-length"]
    cold, warm, _ = cold_then_warm(tmp_path, b, lambda p: nghttp(
        p, "/up", "-d", upload, "--trailer", "x-checksum: 5d41402a", "--trailer", "authorization: Bearer t0ken",
        *extra))
    for rc, log in (cold, warm):
        assert rc == 0, log
        assert statuses(log) == [200], log
    assert len(b.requests) == 2
    for rq in b.requests:
        f = dict(rq["fields"])
        assert rq["body"] == BODY
        assert f.get("transfer-encoding") == "chunked" and "content-length" not in f, rq["fields"]
        assert rq["trailers"] == [("x-checksum", "5d41402a")], rq["raw"][-200:]
        assert rq["raw"].endswith(b"\r\n0\r\nx-checksum: 5d41402a\r\n\r\n"), rq["raw"][-200:]


def test_h2_client_trailers_to_h2_backend(tmp_path, upload):
    """nghttp → proxy → h2c backend: the trailer section arrives as a
    trailer HEADERS frame (TrailersReceived), forbidden fields dropped."""
    b = H2Backend("127.0.0.22")
    cold, warm, _ = cold_then_warm(tmp_path, b, lambda p: nghttp(
        p, "/up", "-d", upload, "--trailer", "x-checksum: 5d41402a", "--trailer", "host: evil.test"),
        app_protocol="kubernetes.io/h2c")
    for rc, log in (cold, warm):
        assert rc == 0, log
        assert statuses(log) == [200], log
    assert len(b.requests) == 2
    for rq in b.requests:
        assert rq["body"] == BODY
        assert rq["trailers"] == [("x-checksum", "5d41402a")], rq


def raw_h2_sized_upload(p):
    """An HTTP/2 client on a raw socket: a 5-byte body with content-length
    and no Trailer field, then a trailer section (x-sum)."""
    s = socket.create_connection(("127.0.0.1", p.port), timeout=30)
    head = b"".join(hpack_literal(k, v) for k, v in (
        (":method", "POST"), (":scheme", "http"), (":path", "/up"), (":authority", "app.test"),
        ("content-length", "5")))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) + h2_frame(1, 0x4, 1, head) +
              h2_frame(0, 0, 1, b"hello") + h2_frame(1, 0x5, 1, hpack_literal("x-sum", "1")))

    def done():
        frames = read_frames(s, lambda fs: any(f[0] in (0, 1) and f[2] == 1 and f[1] & 1 for f in fs), timeout=30)
        s.close()
        return frames
    return done


def test_h2_client_unannounced_trailers_after_a_sized_body(tmp_path):
    """A body sent with its content-length and trailers the client did not
    announce: HTTP/1.1 cannot carry them after a sized body, so the backend
    gets the body with its length and no trailers, and the request
    succeeds."""
    b = H1Backend("127.0.0.31")
    cold, warm, _ = cold_then_warm(tmp_path, b, raw_h2_sized_upload)
    for frames in (cold, warm):
        assert any(f[0] == 1 and f[2] == 1 for f in frames), frames
        data = b"".join(f[3] for f in frames if f[0] == 0 and f[2] == 1)
        assert json.loads(data) == {"received": 5, "trailers": []}
    for rq in b.requests:
        f = dict(rq["fields"])
        assert f.get("content-length") == "5" and "transfer-encoding" not in f, rq["fields"]
        assert rq["body"] == b"hello" and rq["trailers"] == []


def test_http1_chunked_trailers_to_h2_backend(tmp_path):
    """An HTTP/1.1 client's chunked body with a trailer section reaches an
    h2c backend as DATA and a trailer HEADERS frame, forbidden fields
    (content-length) dropped."""
    b = H2Backend("127.0.0.23")
    req = (b"POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 5eb63bbbe01eeed0\r\nContent-Length: 5\r\n\r\n")
    cold, warm, _ = cold_then_warm(tmp_path, b, lambda p: h1_exchange(p, req), app_protocol="kubernetes.io/h2c")
    for heads, body in (cold, warm):
        assert [s for s, _ in heads] == [200]
        assert json.loads(body) == {"received": 11, "trailers": [["x-checksum", "5eb63bbbe01eeed0"]]}
    assert [rq["body"] for rq in b.requests] == [b"hello world"] * 2


def test_http1_backend_response_trailers_reach_h2_client(tmp_path):
    """An HTTP/1.1 backend's chunked trailer section becomes a trailer
    HEADERS frame for the HTTP/2 client (content-length left out)."""
    b = H1Backend("127.0.0.24")
    cold, warm, _ = cold_then_warm(tmp_path, b, lambda p: nghttp(p, "/trailers"))
    for rc, log in (cold, warm):
        assert rc == 0, log
        assert statuses(log) == [200]
        assert received(log, "x-sum") == ["42"], log
        assert received(log, "content-length") == [], log


# ---- interim responses --------------------------------------------------------------

def test_early_hints_from_http1_backend_to_h2_client(tmp_path):
    """A 103 with its Link field, then the 200, as two HEADERS frames."""
    b = H1Backend("127.0.0.25")
    cold, warm, _ = cold_then_warm(tmp_path, b, lambda p: nghttp(p, "/early"))
    for rc, log in (cold, warm):
        assert rc == 0, log
        assert statuses(log) == [103, 200], log
        assert received(log, "link") == ["</style.css>; rel=preload"], log


def test_interim_responses_are_bounded(tmp_path):
    """Twelve 103s from the backend: the first eight reach the client, then
    the final response."""
    b = H1Backend("127.0.0.26")
    cold, warm, _ = cold_then_warm(tmp_path, b, lambda p: nghttp(p, "/early-many"))
    for rc, log in (cold, warm):
        assert rc == 0, log
        assert statuses(log) == [103] * 8 + [200], log


def test_early_hints_from_h2_backend(tmp_path):
    """An h2c backend's 103 reaches an HTTP/2 client as an interim HEADERS
    frame and an HTTP/1.1 client as an interim head."""
    b = H2Backend("127.0.0.27")
    cold, warm, _ = cold_then_warm(tmp_path, b, lambda p: nghttp(p, "/early"), app_protocol="kubernetes.io/h2c")
    for rc, log in (cold, warm):
        assert rc == 0, log
        assert statuses(log) == [103, 200], log
        assert received(log, "link") == ["</h2.css>; rel=preload"], log
    b = H2Backend("127.0.0.28")
    req = b"GET /early HTTP/1.1\r\nHost: app.test\r\n\r\n"
    cold, warm, _ = cold_then_warm(tmp_path, b, lambda p: h1_exchange(p, req), app_protocol="kubernetes.io/h2c")
    for heads, body in (cold, warm):
        assert [s for s, _ in heads] == [103, 200]
        assert dict(heads[0][1])["link"] == "</h2.css>; rel=preload"
        assert json.loads(body)["received"] == 0


def curl_expect(p, upload):
    """curl over h2c with Expect: 100-continue and a 30 s wait for the 100:
    it sends the body only once the 100 came (or 30 s passed)."""
    if not CURL:
        pytest.skip("curl not installed")
    return background([CURL, "-sS", "-v", "--http2-prior-knowledge", "-m", "60", "--expect100-timeout", "30",
                       "-H", "Expect: 100-continue", "-H", "Host: app.test", "--data-binary", "@" + upload,
                       "http://127.0.0.1:%d/up" % p.port])


@pytest.mark.parametrize("backend", ["http1", "h2c"])
def test_expect_100_continue_from_h2_clients(tmp_path, upload, backend):
    """curl and nghttp (--expect-continue) wait for 100 Continue before the
    body: the proxy forwards Expect (held until the backend is up, as for
    HTTP/1.1) and relays the backend's 100, so the body follows at once."""
    proto = "kubernetes.io/h2c" if backend == "h2c" else None
    mk = H2Backend if backend == "h2c" else H1Backend
    b = mk("127.0.0.29")
    cold, warm, released_s = cold_then_warm(tmp_path, b, lambda p: curl_expect(p, upload), app_protocol=proto)
    for rc, log in (cold, warm):
        assert rc == 0, log
        assert re.search(r"< HTTP/2 100", log), log
        answer, _ = json.JSONDecoder().raw_decode(log, log.index('{"received"'))
        assert answer["received"] == len(BODY)
    assert released_s < 10, "the body waited for curl's 30 s expect timeout"
    b = mk("127.0.0.30")
    cold, warm, released_s = cold_then_warm(tmp_path, b, lambda p: nghttp(p, "/up", "-d", upload,
                                                                             "--expect-continue"),
                                            app_protocol=proto)
    for rc, log in (cold, warm):
        assert rc == 0, log
        assert statuses(log) == [100, 200], log
    assert all(rq["body"] == BODY for rq in b.requests) and len(b.requests) == 2


def h1_expect_upload(p):
    """An HTTP/1.1 client that sends its body only after the 100 Continue."""
    s = socket.create_connection(("127.0.0.1", p.port), timeout=30)
    s.sendall(b"POST /up HTTP/1.1\r\nHost: app.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")

    def done():
        try:
            buf = _read_until(s, b"", b"\r\n\r\n")
            first, _, buf = buf.partition(b"\r\n\r\n")
            assert first.startswith(b"HTTP/1.1 100 "), first
            s.sendall(b"hello")
            buf = _read_until(s, buf, b"\r\n\r\n")
            head, _, buf = buf.partition(b"\r\n\r\n")
            n = int(dict(_lines(head.partition(b"\r\n")[2]))["content-length"])
            return head.split(b"\r\n")[0], _read_n(s, buf, n)[:n]
        finally:
            s.close()
    return done


def test_expect_100_continue_from_http1_client_to_h2_backend(tmp_path):
    """An HTTP/1.1 client's Expect goes to the h2c backend in its HEADERS;
    the backend's 100 comes back as an HTTP/1.1 interim head, then the body
    goes."""
    b = H2Backend("127.0.0.32")
    cold, warm, _ = cold_then_warm(tmp_path, b, h1_expect_upload, app_protocol="kubernetes.io/h2c")
    for line, body in (cold, warm):
        assert line.startswith(b"HTTP/1.1 200 "), line
        assert json.loads(body)["received"] == 5
    assert [dict(rq["fields"]).get("expect") for rq in b.requests] == ["100-continue"] * 2


# ---- request body backpressure -------------------------------------------------------

def test_http1_upload_to_a_stalled_h2_backend_is_not_buffered(tmp_path):
    """An HTTP/1.1 client uploads 32 MiB to an h2c backend that gives no
    window back for a while: the proxy queues at most what one client read
    brings (the backend stream's queue empties before the client is read
    again), so the client stalls and the proxy's RSS grows by far less than
    the body (16 MiB allowed: ASan's quarantine keeps freed buffers). Once
    the backend reads, every byte arrives in order."""
    b = H2Backend("127.0.0.44")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], {})
    total = 32 << 20
    chunk = os.urandom(1 << 16)
    try:
        p.set_endpoints({APP: [(b.ip, b.port)]}, app_protocol="kubernetes.io/h2c")
        wait_for(lambda: p.get("/ready")[0].status == 200, what="published endpoint")
        rss_before = p.rss_kib()
        s = socket.create_connection(("127.0.0.1", p.port), timeout=60)
        s.sendall(b"POST /stall HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\n" % total)
        sent = [0]

        def push():
            for _ in range(total // len(chunk)):
                s.sendall(chunk)
                sent[0] += len(chunk)
        t = threading.Thread(target=push)
        t.start()
        time.sleep(2.0)  # the backend reads nothing meanwhile
        stalled_at = sent[0]
        time.sleep(1.0)
        grown = p.rss_kib() - rss_before
        assert t.is_alive()
        # Loopback socket buffers take some MiB; the proxy adds little.
        assert stalled_at < total // 2, stalled_at
        assert sent[0] - stalled_at <= 1 << 20, (stalled_at, sent[0])
        assert grown < 16 * 1024, "proxy grew %d KiB while the backend did not read" % grown
        b.release.set()
        t.join(60)
        assert not t.is_alive()
        buf = _read_until(s, b"", b"\r\n\r\n")
        head, _, buf = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        n = int(dict(_lines(head.partition(b"\r\n")[2]))["content-length"])
        assert json.loads(_read_n(s, buf, n)[:n])["received"] == total
        s.close()
        assert b.requests[-1]["body"] == chunk * (total // len(chunk))
    finally:
        assert p.stop() == 0
        b.stop()
