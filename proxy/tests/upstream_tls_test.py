"""Black-box tests of TLS towards backends (issue #11) through zerowire-proxy,
with real servers: nginx (Debian's nginx, `ssl` and `http2` listeners, the
DAV module for uploads) behind an EndpointSlice port whose appProtocol says
TLS, and a grpcio server with TLS credentials. Certificates are made by the
test with openssl (zwproxy.make_cert): a CA, a server certificate for
app.default.svc signed by it, and a second CA that signed nothing of the
server's.

Covers: warm and through a cold start, keep-alive reuse of one TLS
connection (nginx's $connection/$connection_requests), 8 MiB bodies both
ways, SNI = <svc>.<ns>.svc, verification with the right CA (passes), a
wrong one and a wrong name (502, log line, metric), h2 over TLS (ALPN h2),
gRPC over TLS (cold and warm; UNAVAILABLE when it does not verify), a
WebSocket over TLS, and handshakes that time out or meet an EOF.

Run by `make integration` against build/san/bin/zerowire-proxy."""
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import (Backend, Proxy, scaledobject, wait_for, free_port, make_cert,  # noqa: E402
                     tls_server_context, ws_echo_roundtrip)

KEY = "default/app/0"
APP = "default/app"
NAME = "app.default.svc"
BIG = 8 << 20

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(not NGINX or not OPENSSL,
                                reason="nginx or openssl (Debian packages) not installed")


def make_pki(d):
    """CA (ca.crt), server cert for NAME signed by it (srv.crt, srv.key), and
    an unrelated CA (otherca.crt)."""
    make_cert(d, "ca", 2, "ca.zerowire.test")
    make_cert(d, "otherca", 2, "otherca.zerowire.test")
    make_cert(d, "srv", 2, NAME, ca="ca")
    return d


class Nginx:
    """nginx serving TLS on ip:port (h2: ALPN h2 too) from its own prefix;
    /f/* static files, PUT /up/* stored by the DAV module, /info echoes the
    TLS parameters and the connection's request count."""

    def __init__(self, tmp, pki, ip, h2=False):
        self.dir = tmp / ("nginx-%s" % ip)
        self.dir.mkdir()
        self.root = self.dir / "www"
        (self.root / "f").mkdir(parents=True)
        (self.root / "up").mkdir()
        self.ip = ip
        self.port = free_port(ip)
        user = "user root;\n" if os.geteuid() == 0 else ""
        d = self.dir
        conf = user + """
daemon off;
master_process off;
worker_processes 1;
error_log %(d)s/error.log info;
pid %(d)s/nginx.pid;
events { worker_connections 256; }
http {
    log_format zw '$request_method $uri $status $connection $connection_requests $ssl_protocol $ssl_server_name $server_protocol';
    access_log %(d)s/access.log zw;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    server {
        listen %(ip)s:%(port)d ssl%(h2)s;
        ssl_certificate %(pki)s/srv.crt;
        ssl_certificate_key %(pki)s/srv.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root %(root)s;
        client_max_body_size 64m;
        location /up/ { dav_methods PUT; create_full_put_path on; }
        location = /info {
            default_type text/plain;
            return 200 "$ssl_protocol $ssl_server_name $connection $connection_requests $server_protocol\\n";
        }
    }
}
""" % {"d": d, "ip": ip, "port": self.port, "h2": " http2" if h2 else "", "pki": pki,
       "root": self.root}
        (d / "nginx.conf").write_text(conf)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr", "wb"))

        def listening():
            assert self.proc.poll() is None, (self.dir / "error.log").read_text()
            try:
                socket.create_connection((self.ip, self.port), 1).close()
                return True
            except OSError:
                return False
        wait_for(listening, timeout=15, what="nginx listening")

    def access(self):
        p = self.dir / "access.log"
        return p.read_text().splitlines() if p.exists() else []

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def pki(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    return make_pki(d)


def start_proxy(tmp_path, args=(), endpoints=None, app_protocol="https"):
    p = Proxy(tmp_path, [scaledobject("app", "app", 443, hosts="app.test")], args=list(args))
    if endpoints:
        p.set_endpoints(endpoints, app_protocol=app_protocol)
    return p


def test_https_backend_cold_then_warm_keepalive_and_big_bodies(tmp_path, pki):
    """appProtocol https: the request held through a cold start goes over TLS
    (SNI app.default.svc, TLS 1.3) once nginx is up; later requests reuse the
    pooled TLS connection; 8 MiB up (DAV PUT) and down arrive intact."""
    ng = Nginx(tmp_path, pki, "127.0.0.21")
    blob = os.urandom(BIG)
    (ng.root / "f" / "blob").write_bytes(blob)
    (ng.root / "f" / "small").write_bytes(b"small\n")
    p = start_proxy(tmp_path, args=["--workers", "1"])
    try:
        got = {}

        def cold():
            got["r"] = p.get("/info", timeout=30)
        t = threading.Thread(target=cold)
        t.start()
        wait_for(lambda: p.queue().get(KEY, {}).get("held", 0) >= 1, what="request held")
        ng.start()
        p.set_endpoints({APP: [(ng.ip, ng.port)]}, app_protocol="https")
        t.join(30)
        r, body = got["r"]
        assert r.status == 200, body
        assert r.getheader("x-zerowire-cold-start") == "true"
        proto, sni, conn, nreq, sproto = body.decode().split()
        assert (proto, sni, sproto) == ("TLSv1.3", NAME, "HTTP/1.1")
        # keep-alive: the next requests ride the same TLS connection
        for i in range(5):
            r, body = p.get("/info")
            assert r.status == 200
            f = body.decode().split()
            assert f[2] == conn and int(f[3]) == int(nreq) + i + 1, (conn, nreq, f)
        # big bodies both ways
        r, body = p.get("/f/blob", timeout=60)
        assert r.status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(blob).digest()
        r, body = p.get("/up/put.bin", method="PUT", body=blob, timeout=60,
                        headers={"Content-Type": "application/octet-stream"})
        assert r.status in (201, 204), body
        assert (ng.root / "up" / "put.bin").read_bytes() == blob
        r, body = p.get("/f/small")
        assert r.status == 200 and body == b"small\n"
        conns = {line.split()[3] for line in ng.access()}
        assert len(conns) == 1, ng.access()
        assert p.metric("zerowire_upstream_tls_handshakes_total", version="1.3", alpn="http/1.1") == 1
        assert p.metric("zerowire_upstream_tls_errors_total") == 0
    finally:
        assert p.stop() == 0
        ng.stop()


def test_verification_right_ca_passes_wrong_ca_fails(tmp_path, pki):
    """--upstream-ca-file with the CA that signed nginx's certificate for
    app.default.svc: 200. With another CA: 502 at once (no retries), a
    upstream_tls_error log line and zerowire_upstream_tls_errors_total
    {reason="verify_failed"}."""
    ng = Nginx(tmp_path, pki, "127.0.0.22")
    (ng.root / "f" / "x").write_bytes(b"verified\n")
    ng.start()
    eps = {APP: [(ng.ip, ng.port)]}
    try:
        good = tmp_path / "good"
        good.mkdir()
        p = start_proxy(good, ["--upstream-ca-file", str(pki / "ca.crt")], eps)
        try:
            wait_for(lambda: p.get("/f/x")[0].status == 200, what="verified backend")
            assert p.get("/f/x")[1] == b"verified\n"
            assert p.metric("zerowire_upstream_tls_errors_total") == 0
        finally:
            assert p.stop() == 0
        bad = tmp_path / "bad"
        bad.mkdir()
        p = start_proxy(bad, ["--upstream-ca-file", str(pki / "otherca.crt")], eps)
        try:
            wait_for(lambda: p.get("/f/x")[0].status != 503, what="endpoint published")
            t0 = time.monotonic()
            r, body = p.get("/f/x")
            assert r.status == 502, body
            assert time.monotonic() - t0 < 2  # not retried for the connect budget
            assert b"upstream TLS handshake failed" in body and b"certificate" in body, body
            assert p.metric("zerowire_upstream_tls_errors_total", reason="verify_failed") >= 2
            assert p.metric("zerowire_upstream_tls_handshakes_total") == 0
            assert b"event=upstream_tls_error" in p.output().encode()
            assert "server_name=%s" % NAME in p.output()
        finally:
            assert p.stop() == 0
        # the name is checked too: the right CA, a name the certificate lacks
        other = tmp_path / "other"
        other.mkdir()
        p = Proxy(other, [scaledobject("other", "other", 443, hosts="app.test")],
                  args=["--upstream-ca-file", str(pki / "ca.crt")])
        try:
            p.set_endpoints({"default/other": [(ng.ip, ng.port)]}, app_protocol="kubernetes.io/tls")
            wait_for(lambda: p.get("/f/x")[0].status != 503, what="endpoint published")
            r, body = p.get("/f/x")
            assert r.status == 502 and b"certificate" in body, body
        finally:
            assert p.stop() == 0
    finally:
        ng.stop()


def test_h2_over_tls_backend(tmp_path, pki):
    """appProtocol h2: the proxy offers ALPN h2 and speaks HTTP/2 to nginx
    over TLS (nginx logs HTTP/2.0); an HTTP/1.1 client gets the file."""
    ng = Nginx(tmp_path, pki, "127.0.0.23", h2=True)
    blob = os.urandom(1 << 20)
    (ng.root / "f" / "blob").write_bytes(blob)
    ng.start()
    p = start_proxy(tmp_path, ["--workers", "1"], {APP: [(ng.ip, ng.port)]}, app_protocol="h2")
    try:
        wait_for(lambda: p.get("/info")[0].status == 200, what="endpoint published")
        for _ in range(5):
            r, body = p.get("/f/blob", timeout=30)
            assert r.status == 200 and body == blob
        r, body = p.get("/info")
        assert body.decode().split()[-1] == "HTTP/2.0", body
        assert p.metric("zerowire_upstream_tls_handshakes_total", alpn="h2") == 1
    finally:
        assert p.stop() == 0
        ng.stop()


def test_idle_tls_connection_closes_with_close_notify(tmp_path, pki):
    """A pooled TLS connection closed by --upstream-idle-timeout ends with
    close_notify: the backend (Python's ssl over memory BIOs on a raw
    socket) gets one more TLS record (the alert) before the TCP end, and a
    clean end of data from it."""
    import ssl
    ctx = tls_server_context(pki / "srv.crt", pki / "srv.key")
    lsock = socket.socket()
    lsock.bind(("127.0.0.29", 0))
    lsock.listen(4)
    seen = {}

    def serve():
        c, _ = lsock.accept()
        c.settimeout(15)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        t = ctx.wrap_bio(inc, out, server_side=True)

        def pump_read():
            while True:
                try:
                    return t.read(65536)
                except ssl.SSLWantReadError:
                    c.sendall(out.read())
                    data = c.recv(65536)
                    seen["raw"] = seen.get("raw", b"") + data
                    if not data:
                        inc.write_eof()
                    else:
                        inc.write(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += pump_read()
        t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        c.sendall(out.read())
        seen["raw"] = b""
        try:
            seen["end"] = pump_read()
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLError) as ex:
            seen["end"] = ex
        c.close()
    th = threading.Thread(target=serve)
    th.start()
    p = start_proxy(tmp_path, ["--workers", "1", "--upstream-idle-timeout", "1s"],
                    {APP: [("127.0.0.29", lsock.getsockname()[1])]})
    try:
        wait_for(lambda: p.get("/")[0].status == 200, what="endpoint published")
        th.join(20)
        assert not th.is_alive()
        assert isinstance(seen["end"], ssl.SSLZeroReturnError) or seen["end"] == b"", seen
        # one record of the application-data type (TLS 1.3 hides the alert in it)
        raw = seen["raw"]
        assert len(raw) >= 22 and raw[0] in (21, 23) and int.from_bytes(raw[3:5], "big") == len(raw) - 5, raw
    finally:
        assert p.stop() == 0
        lsock.close()


def test_unreadable_ca_file_stops_the_start(tmp_path):
    """--upstream-ca-file that cannot be read (or holds no certificate)
    stops the proxy at start with an upstream_tls_failed line."""
    (tmp_path / "empty.pem").write_text("no certificate here\n")
    for i, path in enumerate((str(tmp_path / "missing.pem"), str(tmp_path / "empty.pem"))):
        d = tmp_path / ("p%d" % i)
        d.mkdir()
        p = Proxy(d, [], args=["--upstream-ca-file", path], ready=False)
        assert p.proc.wait(30) != 0
        out = p.output()
        assert "event=upstream_tls_failed" in out and path in out, out
        p.log.close()


def test_tls_backend_down_is_502_after_retries(tmp_path, pki):
    """A TLS endpoint that refuses connections is retried within the
    connect budget like a cleartext one, then 502."""
    port = free_port("127.0.0.24")
    p = start_proxy(tmp_path, ["--connect-retry-budget", "300ms"], {APP: [("127.0.0.24", port)]})
    try:
        wait_for(lambda: p.get("/x")[0].status == 502, what="502")
        r, body = p.get("/x")
        assert b"upstream connection failed" in body, body
        assert p.metric("zerowire_upstream_tls_errors_total") == 0
    finally:
        assert p.stop() == 0


def test_handshake_timeout_and_eof(tmp_path):
    """A TLS endpoint that accepts but never answers the ClientHello: the
    handshake runs into --connect-timeout on every attempt of the retry
    budget, then 504. One that closes during the handshake (a backend still
    starting) is retried like a refused connect, then 502."""
    import socket as so
    silent = so.socket()
    silent.bind(("127.0.0.26", 0))
    silent.listen(64)
    closing = so.socket()
    closing.bind(("127.0.0.27", 0))
    closing.listen(64)
    stop = threading.Event()
    accepted = []

    def serve():
        held = []
        closing.settimeout(0.05)
        silent.settimeout(0.05)
        while not stop.is_set():
            for s, keep in ((silent, True), (closing, False)):
                try:
                    c, _ = s.accept()
                except OSError:
                    continue
                accepted.append(keep)
                if keep:
                    held.append(c)
                else:
                    c.recv(4096)
                    c.close()
        for c in held:
            c.close()
    th = threading.Thread(target=serve)
    th.start()
    p = Proxy(tmp_path, [scaledobject("app", "app", 443, hosts="app.test"),
                         scaledobject("b", "b", 443, hosts="b.test")],
              args=["--connect-timeout", "200ms", "--connect-retry-budget", "700ms"])
    try:
        p.set_endpoints({APP: [("127.0.0.26", silent.getsockname()[1])],
                         "default/b": [("127.0.0.27", closing.getsockname()[1])]}, app_protocol="https")
        wait_for(lambda: p.get("/", host="b.test")[0].status == 502, what="endpoints published")
        t0 = time.monotonic()
        r, body = p.get("/")
        took = time.monotonic() - t0
        assert r.status == 504 and b"upstream connect timeout" in body, body
        assert 0.6 < took < 3, took
        assert accepted.count(True) >= 2  # retried, each attempt timed out in the handshake
        n = accepted.count(False)
        r, body = p.get("/", host="b.test")
        assert r.status == 502 and b"upstream connection failed" in body, body
        assert accepted.count(False) - n >= 2  # retried
        assert p.metric("zerowire_upstream_tls_errors_total") == 0
    finally:
        assert p.stop() == 0
        stop.set()
        th.join()
        silent.close()
        closing.close()


def test_websocket_over_tls_backend(tmp_path, pki):
    """appProtocol kubernetes.io/wss: the upgrade goes over TLS (ALPN
    http/1.1) to a TLS WebSocket echo server (Python's ssl around the test
    backend), verified against the test CA; frames of 5 and 70,000 bytes
    come back whole, and the close frame is answered."""
    b = Backend("127.0.0.28", tls=(pki / "srv.crt", pki / "srv.key"))
    p = start_proxy(tmp_path, ["--upstream-ca-file", str(pki / "ca.crt")], {APP: [(b.ip, b.port)]},
                    app_protocol="kubernetes.io/wss")
    try:
        wait_for(lambda: p.get("/")[0].status == 200, what="endpoint published")
        ws_echo_roundtrip(socket.create_connection(("127.0.0.1", p.port), timeout=10))
        # the server sets no ALPN: counted as "none", spoken to in HTTP/1.1
        assert p.metric("zerowire_upstream_tls_handshakes_total", alpn="none") >= 1
    finally:
        assert p.stop() == 0
        b.stop()


grpc = None
try:
    import grpc  # noqa: F811
    from grpc_tools import protoc
except ImportError:
    grpc = None

PROTO = """
syntax = "proto3";
package zwtls;
message Msg { bytes data = 1; int32 n = 2; }
service Echo { rpc Unary(Msg) returns (Msg); rpc Stream(Msg) returns (stream Msg); }
"""

SERVER = r"""
import sys
from concurrent import futures
sys.path.insert(0, sys.argv[3])
import grpc, tlsecho_pb2, tlsecho_pb2_grpc

class Echo(tlsecho_pb2_grpc.EchoServicer):
    def Unary(self, req, ctx):
        ctx.set_trailing_metadata((("x-tls", "yes"),))
        return tlsecho_pb2.Msg(data=req.data, n=len(req.data))
    def Stream(self, req, ctx):
        for i in range(req.n):
            yield tlsecho_pb2.Msg(n=i)

pki = sys.argv[4]
creds = grpc.ssl_server_credentials([(open(pki + "/srv.key", "rb").read(),
                                      open(pki + "/srv.crt", "rb").read())])
s = grpc.server(futures.ThreadPoolExecutor(8), options=[("grpc.max_receive_message_length", 16 << 20)])
tlsecho_pb2_grpc.add_EchoServicer_to_server(Echo(), s)
s.add_secure_port("%s:%s" % (sys.argv[1], sys.argv[2]), creds)
s.start()
print("ready", flush=True)
s.wait_for_termination()
"""


@pytest.mark.skipif(grpc is None, reason="python3-grpcio / python3-grpc-tools not installed")
def test_grpc_over_tls_backend(tmp_path, pki):
    """A grpcio server with TLS credentials behind appProtocol grpcs: an h2c
    gRPC client through the proxy is held through a cold start (the server
    starts only once the call waits) and answered over TLS, then warm: unary
    (1 MiB, trailers intact) and server streaming, verified against the
    test CA; verified against another CA the call ends UNAVAILABLE (14)."""
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "tlsecho.proto").write_text(PROTO)
    assert protoc.main(["protoc", "-I%s" % gen, "--python_out=%s" % gen, "--grpc_python_out=%s" % gen,
                        str(gen / "tlsecho.proto")]) == 0
    sys.path.insert(0, str(gen))
    import tlsecho_pb2
    import tlsecho_pb2_grpc
    ip = "127.0.0.25"
    port = free_port(ip)
    (tmp_path / "server.py").write_text(SERVER)
    srv = None
    p = start_proxy(tmp_path, ["--upstream-ca-file", str(pki / "ca.crt")])
    ch = grpc.insecure_channel("127.0.0.1:%d" % p.port, options=[
        ("grpc.default_authority", "app.test"), ("grpc.max_receive_message_length", 16 << 20)])
    stub = tlsecho_pb2_grpc.EchoStub(ch)
    data = os.urandom(1 << 20)
    try:
        got = {}

        def cold():
            try:
                got["r"] = stub.Unary.with_call(tlsecho_pb2.Msg(data=b"cold"), timeout=30)
            except Exception as ex:  # noqa: BLE001 - checked below
                got["r"] = ex
        t = threading.Thread(target=cold)
        t.start()
        wait_for(lambda: p.queue().get(KEY, {}).get("held", 0) >= 1, what="call held")
        srv = subprocess.Popen([sys.executable, str(tmp_path / "server.py"), ip, str(port), str(gen), str(pki)],
                               stdout=subprocess.PIPE, stderr=open(tmp_path / "server.err", "wb"))
        assert srv.stdout.readline().strip() == b"ready", (tmp_path / "server.err").read_text()
        p.set_endpoints({APP: [(ip, port)]}, app_protocol="grpcs")
        t.join(30)
        resp, call = got["r"]
        assert resp.data == b"cold" and dict(call.initial_metadata()).get("x-zerowire-cold-start") == "true"
        for _ in range(3):
            resp, call = stub.Unary.with_call(tlsecho_pb2.Msg(data=data), timeout=30)
            assert resp.data == data and resp.n == len(data)
            assert dict(call.trailing_metadata()).get("x-tls") == "yes"
            assert dict(call.initial_metadata()).get("x-zerowire-cold-start") == "false"
        assert [m.n for m in stub.Stream(tlsecho_pb2.Msg(n=20), timeout=30)] == list(range(20))
        assert p.metric("zerowire_upstream_tls_handshakes_total", alpn="h2") >= 1
        assert p.metric("zerowire_upstream_tls_errors_total") == 0
        # the same backend verified against a CA that did not sign it: UNAVAILABLE
        bad = tmp_path / "bad"
        bad.mkdir()
        p2 = start_proxy(bad, ["--upstream-ca-file", str(pki / "otherca.crt")], {APP: [(ip, port)]},
                         app_protocol="grpcs")
        try:
            ch2 = grpc.insecure_channel("127.0.0.1:%d" % p2.port, options=[("grpc.default_authority", "app.test")])
            with pytest.raises(grpc.RpcError) as ei:
                tlsecho_pb2_grpc.EchoStub(ch2).Unary(tlsecho_pb2.Msg(data=b"x"), timeout=30)
            ch2.close()
            assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "upstream TLS handshake failed" in ei.value.details()
            assert p2.metric("zerowire_upstream_tls_errors_total", reason="verify_failed") == 1
        finally:
            assert p2.stop() == 0
    finally:
        ch.close()
        assert p.stop() == 0
        if srv:
            srv.terminate()
            srv.wait(10)
