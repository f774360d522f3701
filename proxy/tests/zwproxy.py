"""Helpers for the zerowire-proxy black-box suites: a proxy process in static
mode (targets and EndpointSlices from files, reloaded on SIGHUP), simple
threaded Python backends on 127.0.0.N (cleartext or TLS), raw-socket HTTP
and WebSocket helpers, and the TLS pieces the TLS suites share: certificates
made with openssl, client and server contexts.

Everything binds to loopback with ports chosen by the kernel; every wait is
bounded."""
import calendar
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import base64
import hashlib
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

ROOT = os.environ.get("ZW_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("ZW_PROXY_BIN") or os.path.join(ROOT, "build", "san", "bin", "zerowire-proxy")
# Optional command prefix for the proxy, e.g. valgrind (make valgrind): its
# --error-exitcode turns memory errors and leaks into a non-zero exit status,
# which every test checks through Proxy.stop().
WRAP = os.environ.get("ZW_PROXY_WRAP", "").split()


_handed_out = []  # ports free_port returned lately (most recent last)


def free_port(host="127.0.0.1"):
    """A port free on host now and not returned by an earlier call in this
    process lately: the kernel may hand the port of a closed socket out
    again at once, and a proxy given the same port for --listen and
    --admin-listen fails to start ("address already in use")."""
    for _ in range(64):
        s = socket.socket()
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _handed_out:
            break
    _handed_out.append(port)
    del _handed_out[:-4096]
    return port


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


# ---- backends --------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _count(self):
        with self.server.lock:
            self.server.hits += 1
            self.server.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
            self.server.seen_raw_headers.append(list(self.headers.items()))
            self.server.paths.append(self.path)

    def _reply(self, status, body, ctype="text/plain", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    got = self.rfile.read(min(left, 1 << 20))
                    if not got:
                        raise ConnectionError("short chunk")
                    left -= len(got)
                    n += len(got)
                self.rfile.readline()
            return n
        left = int(self.headers.get("Content-Length", "0"))
        while left:
            got = self.rfile.read(min(left, 1 << 20))
            if not got:
                raise ConnectionError("short body")
            left -= len(got)
            n += len(got)
        return n

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._count()
        u = urlparse(self.path)
        q = parse_qs(u.query)
        name = self.server.name.encode()
        if u.path == "/headers":
            body = json.dumps({"server": self.server.name, "headers": self.server.seen_raw_headers[-1],
                               "path": self.path, "peer": self.client_address[1]}).encode()
            self._reply(200, body, "application/json")
        elif u.path == "/slow":
            with self.server.lock:
                self.server.active += 1
                self.server.max_active = max(self.server.max_active, self.server.active)
            time.sleep(int(q.get("ms", ["1000"])[0]) / 1000.0)
            with self.server.lock:
                self.server.active -= 1
            self._reply(200, b"slow " + name)
        elif u.path == "/download":
            n = int(q["n"][0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * (1 << 20)
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
        elif u.path == "/chunked" and self.request_version == "HTTP/1.0":
            # A compliant server never chunks for an HTTP/1.0 request.
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"alpha-beta-gamma")
            self.close_connection = True
        elif u.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"alpha-", b"beta-", b"gamma"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif u.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(3):
                self.wfile.write(b"data: event %d\n\n" % i)
                self.wfile.flush()
                time.sleep(0.5)
            self.close_connection = True
        elif u.path == "/ws":
            key = self.headers.get("Sec-WebSocket-Key", "")
            acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", acc.decode())
            self.end_headers()
            self.wfile.flush()
            ws_echo(self.rfile, self.wfile)
            self.close_connection = True
        else:
            self._reply(200, b"hello from " + name)

    def do_POST(self):
        self._count()
        if self.headers.get("Expect", "").lower() == "100-continue":
            # BaseHTTPRequestHandler sends 100 Continue itself (handle_expect_100).
            pass
        n = self._read_body()
        self._reply(200, json.dumps({"server": self.server.name, "received": n,
                                     "peer": self.client_address[1]}).encode(), "application/json")

    do_PUT = do_POST


def ws_echo(rfile, wfile):
    """Echoes WebSocket frames (text/binary) until a close frame."""
    while True:
        hdr = rfile.read(2)
        if len(hdr) < 2:
            return
        op = hdr[0] & 0x0F
        ln = hdr[1] & 0x7F
        if ln == 126:
            ln = int.from_bytes(rfile.read(2), "big")
        elif ln == 127:
            ln = int.from_bytes(rfile.read(8), "big")
        mask = rfile.read(4) if hdr[1] & 0x80 else b"\0\0\0\0"
        data = bytearray(rfile.read(ln))
        for i in range(len(data)):
            data[i] ^= mask[i % 4]
        if op == 8:
            wfile.write(b"\x88\x00")
            wfile.flush()
            return
        wfile.write(ws_frame(bytes(data), op, masked=False))
        wfile.flush()


def recv_head(s):
    """Reads a response head from socket s byte by byte (nothing of the body)."""
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        assert b, head
        head += b
    return head


def recv_count(s, n):
    """Reads exactly n bytes from socket s and drops them; fails on an early end."""
    got = 0
    while got < n:
        chunk = s.recv(min(n - got, 1 << 20))
        assert chunk, "connection ended after %d of %d bytes" % (got, n)
        got += len(chunk)
    return got


def upload(s, size):
    """POSTs `size` bytes to the test backend's /upload over socket s (in
    1 MiB writes) and returns the byte count the backend reports."""
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\n" % size)
    block = b"u" * (1 << 20)
    for _ in range(size >> 20):
        s.sendall(block)
    if size & ((1 << 20) - 1):
        s.sendall(block[:size & ((1 << 20) - 1)])
    resp = b""
    while not resp.endswith(b"}"):
        chunk = s.recv(65536)
        assert chunk, resp
        resp += chunk
    return json.loads(resp.split(b"\r\n\r\n", 1)[1])["received"]


def ws_echo_roundtrip(s):
    """Upgrades s (a connection to the proxy, cleartext or TLS) to a WebSocket
    on the test backend's /ws, checks the 101 and its accept key, that a 5
    and a 70,000-byte message come back whole and that the close frame is
    answered; closes s. Returns the 101 response head."""
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    head = recv_head(s)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head, head
    for msg in (b"hello", b"x" * 70000):
        s.sendall(ws_frame(msg))
        want = ws_frame(msg, masked=False)
        got = b""
        while len(got) < len(want):
            chunk = s.recv(65536)
            assert chunk
            got += chunk
        assert got == want
    s.sendall(ws_frame(b"", op=8))
    assert s.recv(2) == b"\x88\x00"
    s.close()
    return head


def ws_frame(data, op=1, masked=True):
    b0 = 0x80 | op
    ln = len(data)
    mbit = 0x80 if masked else 0
    if ln < 126:
        hdr = bytes([b0, mbit | ln])
    elif ln < 65536:
        hdr = bytes([b0, mbit | 126]) + ln.to_bytes(2, "big")
    else:
        hdr = bytes([b0, mbit | 127]) + ln.to_bytes(8, "big")
    if not masked:
        return hdr + data
    mask = os.urandom(4)
    return hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(data))


class Backend:
    """A threaded HTTP/1.1 server on ip:port in this process; with
    tls=(certificate file, key file) it speaks TLS (no ALPN)."""

    def __init__(self, ip="127.0.0.1", port=0, name=None, tls=None):
        self.srv = ThreadingHTTPServer((ip, port), _Handler)
        if tls:
            self.srv.socket = tls_server_context(*tls).wrap_socket(self.srv.socket, server_side=True)
        self.srv.daemon_threads = True
        self.srv.lock = threading.Lock()
        self.srv.hits = 0
        self.srv.seen_headers = []
        self.srv.seen_raw_headers = []
        self.srv.paths = []
        self.srv.active = 0
        self.srv.max_active = 0
        self.ip = ip
        self.port = self.srv.server_address[1]
        self.srv.name = name or "%s:%d" % (ip, self.port)
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def hits(self):
        return self.srv.hits

    @property
    def headers(self):
        return self.srv.seen_headers

    @property
    def paths(self):
        with self.srv.lock:
            return list(self.srv.paths)

    @property
    def max_active(self):
        return self.srv.max_active

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


# ---- TLS: certificates, clients, servers -------------------------------------

def _openssl(*args):
    return subprocess.run(["openssl"] + list(args), check=True, capture_output=True, text=True,
                          timeout=60).stdout


def make_cert(d, name, days, *dns, ca=None):
    """A P-256 certificate for the names `dns` (the first is also its CN) in
    d/<name>.crt and its key in d/<name>.key: self-signed (usable as a CA),
    or with ca="<name>" signed by d/<name>.crt (server use). Returns (cert
    PEM, key PEM, notAfter epoch)."""
    d = str(d)
    crt, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    san = "subjectAltName=" + ",".join("DNS:" + n for n in dns)
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
              "-subj", "/CN=" + dns[0]]
    if ca is None:
        _openssl("req", "-x509", *newkey, "-out", crt, "-days", str(days), "-addext", san)
    else:
        csr, ext = os.path.join(d, name + ".csr"), os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            f.write(san + "\nextendedKeyUsage=serverAuth\n")
        _openssl("req", *newkey, "-out", csr)
        _openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, ca + ".crt"),
                 "-CAkey", os.path.join(d, ca + ".key"), "-CAcreateserial", "-out", crt,
                 "-days", str(days), "-extfile", ext)
    end = _openssl("x509", "-noout", "-enddate", "-in", crt).strip().split("=", 1)[1]
    epoch = calendar.timegm(time.strptime(end, "%b %d %H:%M:%S %Y GMT"))
    with open(crt) as c, open(key) as k:
        return c.read(), k.read(), epoch


def tls_client_context(alpn=None):
    """A client context that verifies nothing (the tests' certificates are
    their own), offering the ALPN protocols `alpn` (a list) if given."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_connect(port, host="app.test", timeout=10, alpn=None, **wrap):
    """A TLS connection to 127.0.0.1:port with SNI `host`, verifying nothing;
    `wrap` goes to SSLContext.wrap_socket (e.g. suppress_ragged_eofs)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return tls_client_context(alpn).wrap_socket(raw, server_hostname=host, **wrap)


def tls_server_context(crt, key):
    """A server context serving the certificate file crt with its key file."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    return ctx


# ---- the proxy -------------------------------------------------------------

def scaledobject(name, service, port, ns="default", hosts="", paths="", **meta):
    md = {"service": service, "port": str(port)}
    if hosts:
        md["hosts"] = hosts
    if paths:
        md["pathPrefixes"] = paths
    md.update({k: str(v) for k, v in meta.items()})
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"scaleTargetRef": {"name": name},
                 "triggers": [{"type": "external-push", "metadata": md}]},
    }


def slices(services, app_protocol=None):
    """services: {"ns/svc": [(ip, port), ...]} -> EndpointSlice objects (one per Service);
    app_protocol: the ports' appProtocol (e.g. "kubernetes.io/h2c"), none by default."""
    out = []
    for key, eps in services.items():
        ns, svc = key.split("/")
        ports = sorted({p for _, p in eps})
        assert len(ports) <= 1, "endpoints of one Service must share the port (use 127.0.0.N)"
        out.append({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": svc + "-zw", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [dict({"name": "", "port": ports[0], "protocol": "TCP"},
                           **({"appProtocol": app_protocol} if app_protocol else {}))] if ports else [],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip, _ in eps],
        })
    return out


class Proxy:
    def __init__(self, tmp, targets=None, endpoints=None, args=(), env=None, ready=True,
                 kubeconfig=None, namespaces=()):
        """Static mode (targets / endpoints files) unless kubeconfig is given:
        then the proxy watches the API server in `namespaces`."""
        self.tmp = str(tmp)
        self.targets_file = os.path.join(self.tmp, "targets.json")
        self.endpoints_file = os.path.join(self.tmp, "endpoints.json")
        if kubeconfig:
            sources = ["--kubeconfig", kubeconfig] + [a for ns in namespaces for a in ("--namespace", ns)]
        else:
            self.write_targets(targets or [])
            self._write_endpoints(endpoints or {})
            sources = ["--targets-file", self.targets_file, "--endpoints-file", self.endpoints_file]
        self.port = free_port()
        self.admin_port = free_port()
        self.scaler_port = free_port()
        self.log_path = os.path.join(self.tmp, "proxy-%d.log" % self.port)
        self.log = open(self.log_path, "wb")
        cmd = WRAP + [BIN, "--listen", "127.0.0.1:%d" % self.port,
               "--admin-listen", "127.0.0.1:%d" % self.admin_port,
               "--scaler-listen", "127.0.0.1:%d" % self.scaler_port,
               "--workers", "2"] + sources + ["--shutdown-delay", "0s",
               "--drain-timeout", "5s", "--log-level", "debug"] + list(args)
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        e.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=e)
        if ready:
            wait_for(lambda: self.admin_get("/readyz")[0] == 200 or self.proc.poll() is not None,
                     timeout=60 if WRAP else 15, what="proxy /readyz")
            assert self.proc.poll() is None, "proxy exited: " + self.output()

    def write_targets(self, targets):
        tmp = self.targets_file + ".tmp"
        with open(tmp, "w") as f:
            # One JSON document per line is not YAML; write a JSON List instead.
            json.dump({"apiVersion": "v1", "kind": "List", "items": targets}, f)
        os.replace(tmp, self.targets_file)

    def _write_endpoints(self, endpoints, app_protocol=None):
        tmp = self.endpoints_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": slices(endpoints, app_protocol)}, f)
        os.replace(tmp, self.endpoints_file)

    def set_endpoints(self, endpoints, app_protocol=None):
        """Replaces the ready endpoints and tells the proxy (SIGHUP)."""
        self._write_endpoints(endpoints, app_protocol)
        self.proc.send_signal(signal.SIGHUP)

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def admin_get(self, path):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            c.close()
            return r.status, body
        except OSError:
            return 0, b""

    def queue(self):
        st, body = self.admin_get("/queue")
        assert st == 200, body
        return json.loads(body)

    def metrics(self):
        st, body = self.admin_get("/metrics")
        assert st == 200
        return body.decode()

    def metric(self, name, **labels):
        """Sums the samples of metric `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            if head != name and not head.startswith(name + "{"):
                continue
            if all('%s="%s"' % (k, v) in head for k, v in labels.items()):
                total += float(value)
        return total

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path, host="app.test", headers=None, timeout=10, method="GET", body=None):
        c = self.conn(timeout)
        h = {"Host": host}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def raw(self, data, timeout=5, read_all=True):
        """Sends raw bytes, returns what the proxy answers until it closes (or timeout)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.sendall(data)
        out = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
                if not read_all:
                    break
        except socket.timeout:
            pass
        s.close()
        return out

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, sig=signal.SIGTERM, timeout=60 if WRAP else 20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("proxy did not exit within %ss:\n%s" % (timeout, self.output()[-4000:]))
        out = self.output()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ERROR SUMMARY: [1-9]"):
            assert bad not in out, "sanitizer report:\n" + out[-6000:]
        return self.proc.returncode


# ---- fault suites: load loops and scripted TCP servers --------------------------

class LoadLoop:
    """`threads` client loops on threads until finish(): each iteration calls
    one(conn, i, n) with the thread's connection (None: open one with
    connect()); one() returns True to keep the connection for the next
    iteration, raises on a failed request. Counts successes and failures."""

    def __init__(self, threads=4):
        self.ok = 0
        self.failed = []
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        for t in self.threads:
            t.start()

    def connect(self, i):
        raise NotImplementedError

    def one(self, conn, i, n):
        raise NotImplementedError

    def _run(self, i):
        c = None
        n = 0
        while not self.stop_ev.is_set():
            n += 1
            try:
                if c is None:
                    c = self.connect(i)
                keep = self.one(c, i, n)
                with self.lock:
                    self.ok += 1
                if not keep:
                    c.close()
                    c = None
            except Exception as e:  # noqa: BLE001 - recorded for the assertion
                with self.lock:
                    self.failed.append("thread %d request %d: %r" % (i, n, e))
                if c:
                    c.close()
                c = None
                time.sleep(0.01)
        if c:
            c.close()

    def finish(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(15)
        return self.ok, self.failed


class TcpServer:
    """A loopback TCP listener that runs handle(sock) on a thread for every
    connection it accepts."""

    def __init__(self, ip="127.0.0.1"):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((ip, 0))
        self.ls.listen(64)
        self.ip, self.port = ip, self.ls.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        raise NotImplementedError

    def stop(self):
        self.ls.close()
