"""A test backend ("pod"): a threaded HTTP/1.1 server on one IP and one or
more ports. Started by the node stand-in; prints READY on stdout once it
listens (after --delay-ms, like a container starting up).

  GET  /anything            200 "pod=<name> ip=<ip> port=<port> method=<m> path=<p>"
  GET  /headers             200 JSON: method, path, headers (list of pairs), pod, ip
  GET  /sleep?ms=N          200 after N ms
  GET  /status/<code>       that status code
  GET  /sse?n=N&interval_ms=M   text/event-stream, N events M ms apart (chunked, flushed)
  GET  /ws                  WebSocket echo (RFC 6455: text, binary, ping, close)
  GET  /bytes?n=N           N bytes streamed (Content-Length, 64 KiB writes)
  POST /upload              counts the body (Content-Length or chunked) without buffering: {"bytes": n}
  GET  /healthz             200 "ok"
Every response carries X-Backend-Pod and X-Backend-IP. Request bodies of
other paths are read and discarded so keep-alive stays in step.

  python3 -m harness.backend --name web-1 --ip 127.16.0.1 --ports 8080[,9090] [--delay-ms 1000]
"""

import argparse
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CHUNK = 64 * 1024
MAX_BYTES = 64 << 30  # /bytes and /sse bounds
MAX_WS_FRAME = 16 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "zerowire-test-backend"
    pod = "pod"
    ip = "127.0.0.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    # ---- helpers ----------------------------------------------------------
    def _q(self):
        u = urlsplit(self.path)
        return u.path, {k: v[-1] for k, v in parse_qs(u.query).items()}

    def _common(self):
        self.send_header("X-Backend-Pod", self.pod)
        self.send_header("X-Backend-IP", self.ip)

    def _reply(self, code, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self._common()
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body_chunks(self):
        """Yields the request body in pieces (Content-Length or chunked)."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    return
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    b = self.rfile.read(min(left, CHUNK))
                    if not b:
                        return
                    left -= len(b)
                    yield b
                self.rfile.readline(8)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                b = self.rfile.read(min(left, CHUNK))
                if not b:
                    return
                left -= len(b)
                yield b

    def _drain(self):
        n = 0
        for b in self._body_chunks():
            n += len(b)
        return n

    # ---- dispatch -----------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self):
        path, q = self._q()
        if path == "/upload":
            n = self._drain()
            return self._reply(200, json.dumps({"bytes": n, "pod": self.pod}) + "\n", "application/json")
        if path == "/ws" and (self.headers.get("Upgrade") or "").lower() == "websocket":
            return self._websocket()
        n_body = self._drain()
        if path == "/healthz":
            return self._reply(200, "ok\n")
        if path == "/headers":
            doc = {"method": self.command, "path": self.path, "headers": list(self.headers.items()),
                   "pod": self.pod, "ip": self.ip, "body_bytes": n_body}
            return self._reply(200, json.dumps(doc) + "\n", "application/json")
        if path == "/sleep":
            time.sleep(min(int(q.get("ms", "0")), 600000) / 1000.0)
            return self._reply(200, "slept %s ms pod=%s ip=%s\n" % (q.get("ms", "0"), self.pod, self.ip))
        if path.startswith("/status/"):
            try:
                code = int(path.split("/")[2])
            except ValueError:
                code = 400
            if not 200 <= code <= 599:
                code = 400
            return self._reply(code, "status %d pod=%s ip=%s\n" % (code, self.pod, self.ip))
        if path == "/sse":
            return self._sse(min(int(q.get("n", "5")), 100000), int(q.get("interval_ms", "100")))
        if path == "/bytes":
            return self._bytes(min(int(q.get("n", "0")), MAX_BYTES))
        return self._reply(200, "pod=%s ip=%s port=%d method=%s path=%s\n" % (
            self.pod, self.ip, self.server.server_address[1], self.command, self.path))

    def _sse(self, n, interval_ms):
        self.send_response(200)
        self._common()
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(n):
            ev = ("id: %d\ndata: event %d pod=%s t=%.3f\n\n" % (i, i, self.pod, time.time())).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            self.wfile.flush()
            if i + 1 < n:
                time.sleep(interval_ms / 1000.0)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _bytes(self, n):
        self.send_response(200)
        self._common()
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        block = b"z" * CHUNK
        left = n
        while left > 0:
            k = min(left, CHUNK)
            self.wfile.write(block[:k])
            left -= k
        self.wfile.flush()

    # ---- WebSocket echo (RFC 6455) ----------------------------------------------
    def _websocket(self):
        key = self.headers.get("Sec-WebSocket-Key")
        if not key:
            return self._reply(400, "missing Sec-WebSocket-Key\n")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self._common()
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        r = self.rfile
        while True:
            hdr = r.read(2)
            if len(hdr) < 2:
                return
            fin_op, ml = hdr[0], hdr[1]
            op = fin_op & 0x0F
            n = ml & 0x7F
            if n == 126:
                n = struct.unpack("!H", r.read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", r.read(8))[0]
            if n > MAX_WS_FRAME:
                self._ws_send(0x8, struct.pack("!H", 1009), True)
                return
            mask = r.read(4) if ml & 0x80 else b"\0\0\0\0"
            data = bytearray(r.read(n))
            for i in range(len(data)):
                data[i] ^= mask[i & 3]
            if op == 0x8:  # close: echo the status and stop
                self._ws_send(0x8, bytes(data[:2]), True)
                return
            if op == 0x9:  # ping -> pong
                self._ws_send(0xA, bytes(data), True)
                continue
            if op == 0xA:
                continue
            self._ws_send(op, bytes(data), bool(fin_op & 0x80))

    def _ws_send(self, op, payload, fin):
        n = len(payload)
        b0 = (0x80 if fin else 0) | op
        if n < 126:
            head = struct.pack("!BB", b0, n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, 126, n)
        else:
            head = struct.pack("!BBQ", b0, 127, n)
        self.wfile.write(head + payload)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def serve(name, ip, ports, delay_ms, out=sys.stdout, server=Server, base=Handler):
    """Sleeps delay_ms, binds every port on ip (`server` and `base`: Server
    and Handler or subclasses, such as tlsbackend.py's), prints READY,
    serves until SIGTERM/SIGINT. Returns the exit status."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    if stop.wait(delay_ms / 1000.0):
        return 0
    handler = type("PodHandler", (base,), {"pod": name, "ip": ip})
    servers = []
    try:
        for p in ports:
            servers.append(server((ip, p), handler))
    except OSError as e:
        out.write("ERROR bind %s: %s\n" % (ip, e))
        out.flush()
        return 1
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    out.write("READY %s %s %s\n" % (name, ip, ",".join(str(p) for p in ports)))
    out.flush()
    stop.wait()
    for s in servers:
        s.socket.close()
    return 0


def run(serve_fn, prog, default_ports, argv=None):
    """The command line of a test backend: --name, --ip, --ports,
    --delay-ms, handed to serve_fn(name, ip, ports, delay_ms); exits with
    its status. grpcbackend.py shares it."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--name", required=True)
    ap.add_argument("--ip", default="127.0.0.1")
    ap.add_argument("--ports", default=default_ports, help="comma list of TCP ports")
    ap.add_argument("--delay-ms", type=int, default=0)
    a = ap.parse_args(argv)
    try:
        ports = [int(p) for p in a.ports.split(",") if p]
        socket.inet_aton(a.ip)
    except (ValueError, OSError):
        ap.error("bad --ip or --ports")
    rc = serve_fn(a.name, a.ip, ports, a.delay_ms)
    sys.stdout.flush()
    os._exit(rc)  # do not wait for daemon handler threads


def main(argv=None):
    run(serve, "backend", "8080", argv)


if __name__ == "__main__":
    main()
