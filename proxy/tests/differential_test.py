"""Differential HTTP/1 framing suite for zerowire-proxy (issue #10).

A raw backend records the exact bytes it receives through the proxy (static
mode) and re-parses them with the small strict RFC 9112 parser below (not
llhttp). For every corpus entry, sent in one write and split at every byte
boundary:

requests   either the proxy rejected the message (4xx, or 501 for CONNECT) and
           the backend saw no complete message of it (a streamed prefix cut by
           a closed connection is allowed: the proxy cannot buffer bodies), or
           the backend saw exactly one strictly valid message equivalent to
           what the client sent: same method, target (origin-form of an
           absolute-form target, whose authority becomes Host), framing kind,
           body and trailers, and no field the client did not send besides
           the proxy's own (X-Forwarded-*, the re-framed Transfer-Encoding,
           Connection/Upgrade of an upgrade). A message the strict parser
           rejects must be rejected by the proxy.
responses  the backend answers with a corpus response (also split at every
           byte); the client re-parses what the proxy relays strictly: either
           502, or the same status, body and framing with no field the backend
           did not send besides X-Zerowire-Cold-Start / Connection: close, and
           the client connection stays in sync (a second request on it gets
           its own response).
"""
import os
import re
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Proxy, scaledobject, free_port  # noqa: E402

# ---- a strict RFC 9112 parser -----------------------------------------------

TCHAR = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/1\.([01])")
STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3}) ([\t\x20-\x7e\x80-\xff]*)")
CHUNK_EXT = re.compile(rb"(;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(=([!#$%&'*+\-.^_`|~0-9A-Za-z]+|\"[^\"\\\x00-\x08\x0a-\x1f\x7f]*\"))?)*")


class Bad(Exception):
    pass


def _line(buf, pos):
    """(line, next) for the CRLF-terminated line at pos; None if incomplete."""
    i = buf.find(b"\n", pos)
    j = buf.find(b"\r", pos)
    if j >= 0 and (i < 0 or j < i - 1) and j + 1 < len(buf):
        raise Bad("bare CR")
    if i < 0:
        return None
    if i == pos or buf[i - 1] != 0x0D:
        raise Bad("bare LF")
    return buf[pos:i - 1], i + 1


def _field(line):
    if line[:1] in (b" ", b"\t"):
        raise Bad("obs-fold")
    name, sep, value = line.partition(b":")
    if not sep or not name or any(c not in TCHAR for c in name):
        raise Bad("field name %r" % name)
    value = value.strip(b" \t")
    if any((c < 0x20 and c != 9) or c == 0x7F for c in value):
        raise Bad("field value %r" % value)
    return name.decode().lower(), value


def _fields(buf, pos):
    out = []
    while True:
        r = _line(buf, pos)
        if r is None:
            return None
        line, pos = r
        if line == b"":
            return out, pos
        out.append(_field(line))


def _chunked(buf, pos):
    body = b""
    while True:
        r = _line(buf, pos)
        if r is None:
            return None
        line, pos = r
        size, _, ext = line.partition(b";")
        if not re.fullmatch(rb"[0-9a-fA-F]{1,15}", size):
            raise Bad("chunk size %r" % size)
        if ext and not CHUNK_EXT.fullmatch(b";" + ext):
            raise Bad("chunk extension %r" % ext)
        n = int(size, 16)
        if n == 0:
            break
        if len(buf) < pos + n + 2:
            return None
        body += buf[pos:pos + n]
        pos += n
        if buf[pos:pos + 2] != b"\r\n":
            raise Bad("chunk data not followed by CRLF")
        pos += 2
    r = _fields(buf, pos)
    if r is None:
        return None
    trailers, pos = r
    return body, trailers, pos


def vals(fields, name):
    return [v for n, v in fields if n == name]


def parse_message(buf, request, head_request=False, eof=False):
    """Parses one message at the start of buf. Returns (msg, consumed), None
    when incomplete, raises Bad when the bytes are not RFC 9112."""
    r = _line(buf, 0)
    if r is None:
        return None
    line, pos = r
    msg = {"trailers": [], "body": b""}
    m = (REQUEST_LINE if request else STATUS_LINE).fullmatch(line)
    if not m:
        raise Bad("start line %r" % line)
    if request:
        msg.update(method=m.group(1).decode(), target=m.group(2).decode(), minor=int(m.group(3)))
    else:
        msg.update(minor=int(m.group(1)), status=int(m.group(2)), reason=m.group(3))
    r = _fields(buf, pos)
    if r is None:
        return None
    fields, pos = r
    msg["fields"] = fields
    te, cl = vals(fields, "transfer-encoding"), vals(fields, "content-length")
    if te and cl:
        raise Bad("Content-Length with Transfer-Encoding")
    if len(cl) > 1 or (cl and not re.fullmatch(rb"[0-9]{1,15}", cl[0])):
        raise Bad("Content-Length %r" % cl)
    if request and len(vals(fields, "host")) > 1:
        raise Bad("more than one Host")
    st = msg.get("status", 200)
    if not request and (head_request or st < 200 or st in (204, 304)):
        msg["framing"] = "none"
        return msg, pos
    if te:
        if msg["minor"] == 0:
            raise Bad("Transfer-Encoding in HTTP/1.0")
        # Empty list elements are allowed and ignored (RFC 9110 5.6.1.2).
        codings = [c.strip(b" \t").lower() for c in b",".join(te).split(b",")]
        codings = [c for c in codings if c]
        if not codings or any(any(x not in TCHAR for x in c) for c in codings):
            raise Bad("codings %r" % te)
        if codings[-1] == b"chunked" and b"chunked" not in codings[:-1]:
            r = _chunked(buf, pos)
            if r is None:
                return None
            msg["body"], msg["trailers"], pos = r
            msg["framing"] = "chunked"
            return msg, pos
        if request or b"chunked" in codings:
            raise Bad("chunked not final")
        msg["framing"] = "eof"
    elif cl:
        n = int(cl[0])
        if len(buf) < pos + n:
            return None
        msg["body"], msg["framing"] = buf[pos:pos + n], "cl"
        return msg, pos + n
    else:
        msg["framing"] = "none" if request else "eof"
    if msg["framing"] == "none":
        return msg, pos
    if not eof:
        return None
    msg["body"] = buf[pos:]
    return msg, len(buf)


# ---- the recording backend -----------------------------------------------------

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class RecordingBackend:
    """Accepts upstream connections, parses what arrives strictly and answers
    each request: /resp with self.response (split in two writes at
    self.split, closing after it when self.close), anything else with OK."""

    def __init__(self, ip):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.msgs, self.invalid = [], []
        self.response, self.split, self.close = OK, 0, False
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self):
        with self.lock:
            self.msgs, self.invalid = [], []

    def _accept(self):
        while not self.stopped:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                try:
                    r = parse_message(buf, True)
                except Bad as e:
                    with self.lock:
                        self.invalid.append((str(e), buf))
                    return
                if r is None:
                    got = s.recv(65536)
                    if not got:
                        return  # a truncated prefix (if any) is not a message
                    buf += got
                    continue
                msg, n = r
                buf = buf[n:]
                with self.lock:
                    self.msgs.append(msg)
                    resp, split, close = self.response, self.split, self.close
                if msg["target"] != "/resp":
                    s.sendall(OK)
                    continue
                if split > 0:
                    s.sendall(resp[:split])
                    time.sleep(0.002)
                s.sendall(resp[split:])
                if close:
                    return
        except OSError:
            return
        finally:
            s.close()


# ---- client side ----------------------------------------------------------------

REJECT = set(range(400, 500)) | {501, 505}


def read_responses(s, n, head_request=False, timeout=5.0):
    """Reads up to n final responses (interim ones are collected with them)
    from s, parsing strictly; stops early at EOF. Returns (list, rest)."""
    s.settimeout(timeout)
    buf, out, eof = b"", [], False
    while len([m for m in out if m["status"] >= 200]) < n:
        r = parse_message(buf, False, head_request=head_request, eof=eof)
        if r is not None:
            msg, k = r
            buf = buf[k:]
            out.append(msg)
            if msg["status"] >= 200 and msg["framing"] == "eof":
                break
            if msg["status"] >= 200 and any(b"close" in v.lower() for v in vals(msg["fields"], "connection")):
                n = min(n, len([m for m in out if m["status"] >= 200]))
            continue
        if eof:
            break
        try:
            got = s.recv(65536)
        except socket.timeout:
            raise AssertionError("timed out waiting for a response; have %r, buffer %r" % (out, buf))
        except ConnectionResetError:
            got = b""
        if not got:
            eof = True
        buf += got
    return out, buf


def send_split(port, data, split):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if split > 0:
        s.sendall(data[:split])
        time.sleep(0.002)
    s.sendall(data[split:])
    return s


def client_messages(data):
    """The client's messages as the strict parser reads them, and whether
    something invalid follows the last one."""
    msgs, pos = [], 0
    while pos < len(data):
        try:
            r = parse_message(data[pos:], True)
        except Bad:
            return msgs, True
        if r is None:
            return msgs, True
        msgs.append(r[0])
        pos += r[1]
    return msgs, False


PROXY_OWN = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}


def origin_form(target):
    m = re.fullmatch(r"(?i)https?://([^/?]+)(.*)", target)
    if not m:
        return target, None
    rest = m.group(2)
    return (rest if rest.startswith("/") else "/" + rest), m.group(1).encode()


def check_request(sent, got, what):
    target, authority = origin_form(sent["target"])
    assert got["method"] == sent["method"], what
    assert got["target"] == target, what
    assert got["minor"] == sent["minor"], what
    assert got["framing"] == sent["framing"], what
    assert got["body"] == sent["body"], what
    assert got["trailers"] == sent["trailers"], what
    host = [authority] if authority else vals(sent["fields"], "host")
    assert vals(got["fields"], "host") == host, what + ": Host"
    assert vals(got["fields"], "content-length") == vals(sent["fields"], "content-length"), what
    upgrade = bool(vals(sent["fields"], "upgrade")) and any(
        b"upgrade" in v.lower() for v in vals(sent["fields"], "connection"))
    pool = list(sent["fields"])
    for name, value in got["fields"]:
        if name in PROXY_OWN or (name == "host" and authority):
            continue
        if name == "transfer-encoding" and sent["framing"] == "chunked":
            # Re-framed by the proxy: a clean list, no empty elements.
            assert all(c.strip(b" \t") for c in value.split(b",")), "%s: TE %r" % (what, value)
            continue
        if name in ("connection", "upgrade") and upgrade:
            continue
        assert (name, value) in pool, "%s: backend got %s: %r the client never sent" % (what, name, value)
        pool.remove((name, value))


def run_request_entry(p, b, name, data, split):
    what = "%s split %d" % (name, split)
    sent, trailing_bad = client_messages(data)
    b.reset()
    s = send_split(p.port, data, split)
    try:
        resps, _ = read_responses(s, len(sent) + (1 if trailing_bad else 0))
    finally:
        s.close()
    time.sleep(0.001)
    with b.lock:
        got, invalid = list(b.msgs), list(b.invalid)
    assert not invalid, "%s: backend got bytes a strict parser rejects: %r" % (what, invalid)
    finals = [r for r in resps if r["status"] >= 200]
    assert finals, "%s: no response" % what
    forwarded = 0
    for i, r in enumerate(finals):
        if r["status"] in REJECT:
            # Nothing of this message or after it may have reached the backend.
            assert len(got) == forwarded, "%s: rejected (%d) but the backend got %r" % (what, r["status"], got)
            return
        assert r["status"] == 200, "%s: status %d" % (what, r["status"])
        assert i < len(sent), "%s: the proxy accepted what a strict parser rejects: %r" % (what, got)
        assert forwarded < len(got), "%s: 200 without a backend message" % what
        check_request(sent[i], got[forwarded], what)
        forwarded += 1
    assert len(got) == forwarded, "%s: backend got %d messages for %d accepted" % (what, len(got), forwarded)


# ---- corpus: requests -------------------------------------------------------------

H = b"Host: app.test\r\n"


def req(head, body=b"", line=b"POST /p HTTP/1.1"):
    return line + b"\r\n" + head + b"\r\n" + body


CHUNKED = b"Transfer-Encoding: chunked\r\n"
REQUESTS = {
    "get": req(H, line=b"GET /a?b=c HTTP/1.1"),
    "cl": req(H + b"Content-Length: 5\r\n", b"hello"),
    "cl0": req(H + b"Content-Length: 0\r\n"),
    "cl-dup-same": req(H + b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
    "cl-list": req(H + b"Content-Length: 5, 5\r\n", b"hello"),
    "cl-sign": req(H + b"Content-Length: +5\r\n", b"hello"),
    "cl-te": req(H + b"Content-Length: 5\r\n" + CHUNKED, b"0\r\n\r\n"),
    "te-cl": req(H + CHUNKED + b"Content-Length: 5\r\n", b"0\r\n\r\n"),
    "chunked": req(H + CHUNKED, b"5\r\nhello\r\n0\r\n\r\n"),
    "chunked-ext": req(H + CHUNKED, b"5;a=b;c=\"d e\"\r\nhello\r\n0;z\r\n\r\n"),
    "chunked-ext-bare-cr": req(H + CHUNKED, b"5;a\rb\r\nhello\r\n0\r\n\r\n"),
    "chunked-trailers": req(H + CHUNKED, b"5\r\nhello\r\n0\r\nX-T: 1\r\nContent-Length: 9\r\n\r\n"),
    "chunked-trailer-fold": req(H + CHUNKED, b"0\r\nX-T: 1\r\n folded\r\n\r\n"),
    "chunked-trailer-empty-name": req(H + CHUNKED, b"0\r\n: x\r\n\r\n"),
    "chunked-gzip": req(H + b"Transfer-Encoding: gzip, chunked\r\n", b"1\r\nz\r\n0\r\n\r\n"),
    "chunked-twice": req(H + b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"),
    "te-not-final": req(H + b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"),
    "te-empty": req(H + b"Transfer-Encoding: \r\n"),
    "te-xchunked": req(H + b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
    "te-http10": req(H + CHUNKED, b"0\r\n\r\n", line=b"POST /p HTTP/1.0"),
    "chunk-size-bad": req(H + CHUNKED, b"5 \r\nhello\r\n0\r\n\r\n"),
    "chunk-lf-only": req(H + CHUNKED, b"5\nhello\r\n0\r\n\r\n"),
    "chunk-data-long": req(H + CHUNKED, b"2\r\nhello\r\n0\r\n\r\n"),
    "obs-fold": req(H + b"X-A: 1\r\n b\r\n"),
    "bare-lf-field": req(H + b"X-A: 1\nX-B: 2\r\n"),
    "bare-cr-field": req(H + b"X-A: 1\rX-B: 2\r\n"),
    "nul-value": req(H + b"X-A: a\x00b\r\n"),
    "cr-in-value": req(H + b"X-A: a\rb\r\n"),
    "empty-name": req(H + b": x\r\n"),
    "space-before-colon": req(H + b"X-A : 1\r\n"),
    "http20": req(H, line=b"GET / HTTP/2.0"),
    "http12": req(H, line=b"GET / HTTP/1.2"),
    "http09": req(H, line=b"GET / HTTP/0.9"),
    "http10": req(H, line=b"GET / HTTP/1.0"),
    "http10-nohost": req(b"X: 1\r\n", line=b"GET / HTTP/1.0"),
    "nohost": req(b"X: 1\r\n", line=b"GET / HTTP/1.1"),
    "two-hosts": req(H + H, line=b"GET / HTTP/1.1"),
    "double-space": req(H, line=b"GET  / HTTP/1.1"),
    "tab-target": req(H, line=b"GET /\t HTTP/1.1"),
    "fragment": req(H, line=b"GET /a#b HTTP/1.1"),
    "absolute": req(b"Host: other.example\r\n", line=b"GET http://app.test/x?y HTTP/1.1"),
    "absolute-no-path": req(H, line=b"GET http://app.test?y=1 HTTP/1.1"),
    "absolute-other": req(H, line=b"GET http://other.example/ HTTP/1.1"),
    "absolute-userinfo": req(H, line=b"GET http://u@app.test/ HTTP/1.1"),
    "absolute-ftp": req(H, line=b"GET ftp://app.test/ HTTP/1.1"),
    "asterisk": req(H, line=b"OPTIONS * HTTP/1.1"),
    "connect": req(H, line=b"CONNECT app.test:443 HTTP/1.1"),
    "pipelined": req(H + b"Content-Length: 2\r\n", b"ab") + req(H, line=b"GET /second HTTP/1.1"),
    "pipelined-chunked": req(H + CHUNKED, b"1\r\na\r\n0\r\n\r\n") + req(H, line=b"GET /2 HTTP/1.1"),
    "expect-100": req(H + b"Expect: 100-continue\r\nContent-Length: 3\r\n", b"abc"),
    "upgrade": req(H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n", line=b"GET /ws HTTP/1.1"),
    "upgrade-body": req(H + b"Connection: upgrade\r\nUpgrade: x\r\nContent-Length: 2\r\n", b"ab"),
    "smuggle-cl-in-chunk-trailer": req(H + CHUNKED, b"0\r\nTransfer-Encoding: chunked\r\n\r\n"),
    # Bare LFs llhttp 8 takes: after the request line, ending the head, and
    # ending a chunked body (forwarded verbatim); obs-fold after an empty
    # value; codings with empty list elements (re-framed as a clean list).
    "request-line-bare-lf": b"GET / HTTP/1.1\nHost: app.test\r\n\r\n",
    "head-end-bare-lf": req(H + b"Content-Length: 2\r\n", b"ab").replace(b"\r\n\r\n", b"\r\n\n"),
    "chunked-end-bare-lf": req(H + CHUNKED, b"5\r\nhello\r\n0\r\n\n") + req(H, line=b"GET /2 HTTP/1.1"),
    "chunked-trailer-end-bare-lf": req(H + CHUNKED, b"0\r\nX-T: 1\r\n\n"),
    "obs-fold-empty-value": req(H + b"X-A:\r\n b\r\n"),
    "chunked-trailer-fold-empty": req(H + CHUNKED, b"0\r\nX-T:\r\n\tb\r\n\r\n"),
    "te-empty-elements": req(H + b"Transfer-Encoding: ,gzip, ,\r\nTransfer-Encoding: , chunked\r\n",
                             b"1\r\nz\r\n0\r\n\r\n"),
    "chunk-size-leading-zeros": req(H + CHUNKED, b"0005\r\nhello\r\n000\r\n\r\n"),
}
# Connection nominating each request field, with each framing.
for field in (b"Content-Length", b"Transfer-Encoding", b"Host", b"X-A", b"Keep-Alive", b"TE", b"Trailer",
              b"Upgrade", b"Expect", b"X-Forwarded-For", b"Connection", b"User-Agent"):
    nm = field.decode().lower()
    REQUESTS["conn-%s-cl" % nm] = req(H + b"Connection: keep-alive, " + field + b"\r\nX-A: 1\r\nUser-Agent: t\r\n"
                                      b"Content-Length: 5\r\n", b"hello")
    REQUESTS["conn-%s-chunked" % nm] = req(H + b"Connection: " + field + b"\r\nX-A: 1\r\n" + CHUNKED,
                                           b"5\r\nhello\r\n0\r\n\r\n")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diff")
    b = RecordingBackend("127.0.0.2")
    p = Proxy(tmp, [scaledobject("app", "app", b.port, hosts="app.test")],
              endpoints={"default/app": [("127.0.0.2", b.port)]})
    yield p, b
    b.stopped = True
    b.sock.close()
    assert p.stop() == 0


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request(setup, name):
    p, b = setup
    data = REQUESTS[name]
    for split in range(len(data)):
        run_request_entry(p, b, name, data, split)


# ---- corpus: responses -------------------------------------------------------------

RESPONSES = {
    "cl": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello", False),
    "chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", False),
    "chunked-trailers": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                         b"Content-Length: 3\r\nX-T: 1\r\n\r\n", False),
    "chunked-ext": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=\"y\"\r\nhello\r\n0\r\n\r\n", False),
    "eof": (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil close", True),
    "http10-eof": (b"HTTP/1.0 200 OK\r\n\r\nuntil close", True),
    "te-gzip-eof": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw", True),
    "cl-te": (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", True),
    "conn-cl": (b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello", False),
    "conn-te": (b"HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\n\r\n", False),
    "conn-x": (b"HTTP/1.1 200 OK\r\nConnection: X-A\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nhi", False),
    "http20": (b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", True),
    "http09": (b"HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\nhi", True),
    "te-http10": (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", True),
    "bare-cr-reason": (b"HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nhi", True),
    "ctl-reason": (b"HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nhi", True),
    "bare-lf": (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", True),
    "bare-cr-field": (b"HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 2\r\n\r\nhi", True),
    "nul-field": (b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nhi", True),
    "obs-fold": (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n b\r\nContent-Length: 2\r\n\r\nhi", True),
    "empty-name": (b"HTTP/1.1 200 OK\r\n: b\r\nContent-Length: 2\r\n\r\nhi", True),
    "304-cl": (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", False),
    "204-chunked": (b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", False),
    "100-then-200": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", False),
    "103-then-200": (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
                     False),
    "101-unasked": (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nHTTP/1.1 200 OK\r\n"
                    b"Content-Length: 2\r\n\r\nhi", True),
    "cl-dup": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", True),
    "cl-bad": (b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nhi", True),
}
RESP_OWN = {"x-zerowire-cold-start"}


def check_response(sent, got, what):
    assert got["status"] == sent["status"], what
    assert got["reason"] == sent["reason"], what
    assert got["body"] == sent["body"], what
    assert got["trailers"] == sent["trailers"], what
    if sent["status"] >= 200 and sent["status"] not in (204, 304):
        assert got["framing"] == sent["framing"] or (sent["framing"] != "chunked" and got["framing"] == "eof"), what
    assert vals(got["fields"], "content-length") == vals(sent["fields"], "content-length"), what
    pool = list(sent["fields"])
    for name, value in got["fields"]:
        if name in RESP_OWN or (name == "connection" and value == b"close"):
            continue
        if name == "transfer-encoding" and sent["framing"] == "chunked":
            continue
        assert (name, value) in pool, "%s: client got %s: %r the backend never sent" % (what, name, value)
        pool.remove((name, value))


def backend_messages(data, head_request, close):
    msgs, pos = [], 0
    while pos < len(data):
        try:
            r = parse_message(data[pos:], False, head_request=head_request, eof=close)
        except Bad:
            return msgs, True
        if r is None:
            return msgs, True
        msgs.append(r[0])
        pos += r[1]
        if r[0]["status"] >= 200:
            break  # bytes after a final response are the backend's excess
    return msgs, False


def run_response_entry(p, b, name, data, close, split, method=b"GET"):
    what = "response %s %s split %d" % (name, method.decode(), split)
    head = method == b"HEAD"
    sent, bad = backend_messages(data, head, close)
    with b.lock:
        b.response, b.split, b.close = data, split, close
    s = send_split(p.port, method + b" /resp HTTP/1.1\r\nHost: app.test\r\n\r\n", 0)
    try:
        resps, rest = read_responses(s, 1, head_request=head)
        final = resps[-1]
        if final["status"] == 502:
            return  # rejected (interim responses before it were parsed strictly)
        assert not bad or (len(resps) < len(sent)), "%s: relayed what a strict parser rejects: %r" % (what, resps)
        assert len(resps) == len(sent), "%s: got %r for %r" % (what, resps, sent)
        for g, w in zip(resps, sent):
            check_response(w, g, what)
        closing = final["framing"] == "eof" or any(b"close" in v.lower() for v in vals(final["fields"], "connection"))
        if closing:
            return
        # The connection must still be in sync: the next exchange is its own.
        assert rest == b"", "%s: bytes after the response: %r" % (what, rest)
        s.sendall(b"GET /next HTTP/1.1\r\nHost: app.test\r\n\r\n")
        again, rest = read_responses(s, 1)
        assert [(r["status"], r["body"]) for r in again] == [(200, b"ok")] and rest == b"", what
    finally:
        s.close()


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_response(setup, name):
    p, b = setup
    data, close = RESPONSES[name]
    for split in range(len(data)):
        run_response_entry(p, b, name, data, close, split)
    run_response_entry(p, b, name, data, close, 0, method=b"HEAD")
