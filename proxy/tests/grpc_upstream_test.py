"""Black-box tests of gRPC and h2c towards backends through zerowire-proxy,
with real peers: grpcio clients and a grpcio server (Debian's python3-grpcio;
stubs generated at test time by grpc_tools into a temp dir), curl
--http2-prior-knowledge and nghttpd (Debian's nghttp2-server) as an h2c
backend that is not gRPC.

Every gRPC case runs first through a cold start (the backend process is
started only once the proxy holds the call) and then warm: unary, server
streaming, client streaming, bidi, 4 MiB messages both ways, trailers and a
non-OK status with its message intact, grpc-timeout while held, a cancel
from the client, and the backend killed mid-stream (UNAVAILABLE).

Run by `make integration` against build/san/bin/zerowire-proxy."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Proxy, scaledobject, wait_for, free_port  # noqa: E402

grpc = pytest.importorskip("grpc", reason="python3-grpcio not installed")
protoc = pytest.importorskip("grpc_tools.protoc", reason="python3-grpc-tools not installed")

KEY = "default/app/0"
APP = "default/app"
BIG = 4 << 20
MSG_OPTS = [("grpc.max_send_message_length", 16 << 20), ("grpc.max_receive_message_length", 16 << 20)]

PROTO = """
syntax = "proto3";
package zwtest;
message Msg { bytes data = 1; int32 n = 2; string note = 3; }
service Echo {
  rpc Unary(Msg) returns (Msg);
  rpc ServerStream(Msg) returns (stream Msg);
  rpc ClientStream(stream Msg) returns (Msg);
  rpc Bidi(stream Msg) returns (stream Msg);
}
"""

# The backend: a grpcio server in its own process (so it can be killed),
# counting the calls its clients cancelled.
SERVER = r"""
import sys, threading, time
from concurrent import futures
sys.path.insert(0, sys.argv[3])
import grpc, echo_pb2, echo_pb2_grpc

cancelled = [0]
lock = threading.Lock()

class Echo(echo_pb2_grpc.EchoServicer):
    def Unary(self, req, ctx):
        if req.note == "fail":
            ctx.set_trailing_metadata((("x-why", "asked"),))
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing: caf\u00e9 100% gone")
        if req.note == "stats":
            with lock:
                return echo_pb2.Msg(n=cancelled[0])
        if req.note == "slow":
            time.sleep(req.n / 1000.0)
        ctx.set_trailing_metadata((("x-trailer", "yes"),))
        if req.note == "many":
            return echo_pb2.Msg(n=req.n)
        size = req.n if req.note == "big" else len(req.data)
        return echo_pb2.Msg(data=b"r" * size if req.note == "big" else req.data, n=len(req.data))

    def ServerStream(self, req, ctx):
        done = []

        def ended():
            if not done:  # ended before the last message: cancelled
                with lock:
                    cancelled[0] += 1
        ctx.add_callback(ended)
        for i in range(req.n):
            yield echo_pb2.Msg(n=i, data=req.data)
            if req.note == "paced":
                time.sleep(0.05)
        done.append(1)
        ctx.set_trailing_metadata((("x-end", "done"),))

    def ClientStream(self, it, ctx):
        total = count = 0
        for m in it:
            if m.note == "stop":  # answers before the client has ended its stream
                return echo_pb2.Msg(n=count)
            if m.note == "slow" and count == 0:
                time.sleep(1.5)  # a slow reader: the proxy must not buffer for it
            total += len(m.data)
            count += 1
        return echo_pb2.Msg(n=count, data=str(total).encode())

    def Bidi(self, it, ctx):
        for m in it:
            yield echo_pb2.Msg(n=m.n * 2, data=m.data)

opts = [("grpc.max_send_message_length", 16 << 20), ("grpc.max_receive_message_length", 16 << 20)]
server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=opts)
echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
server.add_insecure_port("%s:%s" % (sys.argv[1], sys.argv[2]))
server.start()
print("ready", flush=True)
server.wait_for_termination()
"""


@pytest.fixture(scope="module")
def stubs():
    d = tempfile.mkdtemp(prefix="zw-grpc-")
    with open(os.path.join(d, "echo.proto"), "w") as f:
        f.write(PROTO)
    rc = protoc.main(["protoc", "-I" + d, "--python_out=" + d, "--grpc_python_out=" + d,
                      os.path.join(d, "echo.proto")])
    assert rc == 0, "grpc_tools.protoc failed"
    with open(os.path.join(d, "server.py"), "w") as f:
        f.write(SERVER)
    sys.path.insert(0, d)
    import echo_pb2  # noqa: E402
    import echo_pb2_grpc  # noqa: E402
    yield d, echo_pb2, echo_pb2_grpc
    sys.path.remove(d)
    shutil.rmtree(d, ignore_errors=True)


class GrpcBackend:
    """The grpcio server process on ip:port."""

    def __init__(self, stubdir, ip, port):
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(stubdir, "server.py"), ip, str(port),
                                      stubdir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        line = self.proc.stdout.readline()
        assert line.strip() == b"ready", line

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stdout.close()


class Env:
    """A proxy with target app (hosts app.test) and no endpoint yet; the
    backend starts when `wake` is called (the cold start), on 127.0.0.2."""

    def __init__(self, tmp, stubs, extra_targets=(), endpoints=None):
        self.dir, self.pb, self.pbg = stubs
        self.p = Proxy(tmp, [scaledobject("app", "app", 80, hosts="app.test")] + list(extra_targets),
                       endpoints=endpoints or {})
        self.port = free_port("127.0.0.2")
        self.backend = None
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.p.port,
                                             options=[("grpc.default_authority", "app.test")] + MSG_OPTS)
        self.stub = self.pbg.EchoStub(self.channel)
        self.extra = dict(endpoints or {})

    def held(self):
        return self.p.queue().get(KEY, {}).get("held", 0)

    def wake(self):
        """Waits for a held call, then starts the backend and publishes it."""
        wait_for(lambda: self.held() >= 1, what="a held gRPC call")
        # what the scaler reports to KEDA while the call waits
        self.held_queue = dict(self.p.queue()[KEY])
        self.backend = GrpcBackend(self.dir, "127.0.0.2", self.port)
        eps = dict(self.extra)
        eps[APP] = [("127.0.0.2", self.port)]
        self.p.set_endpoints(eps)

    def close(self):
        self.channel.close()
        rc = self.p.stop()
        if self.backend:
            self.backend.kill()
        assert rc == 0, self.p.output()[-3000:]


@pytest.fixture
def env(tmp_path, stubs):
    e = Env(tmp_path, stubs)
    yield e
    e.close()


def cold_then_warm(env, call):
    """Runs call() (returns a grpc future or a thread-run result) through a
    cold start, then again warm; returns both results."""
    results = {}

    def run(key):
        try:
            results[key] = call()
        except Exception as ex:  # noqa: BLE001 - checked by the caller
            results[key] = ex
    t = threading.Thread(target=run, args=("cold",))
    t.start()
    env.wake()
    t.join(30)
    assert not t.is_alive()
    run("warm")
    return results["cold"], results["warm"]


def test_unary_cold_then_warm_with_trailers(env):
    pb = env.pb

    def call():
        resp, c = env.stub.Unary.with_call(pb.Msg(data=b"hello"), timeout=30)
        return resp, dict(c.initial_metadata()), dict(c.trailing_metadata())
    cold, warm = cold_then_warm(env, call)
    for (resp, init, trail), was_cold in ((cold, "true"), (warm, "false")):
        assert resp.data == b"hello" and resp.n == 5
        assert init.get("x-zerowire-cold-start") == was_cold
        assert trail.get("x-trailer") == "yes"
    assert env.held_queue["concurrency"] == 1 and env.held_queue["active"] is True
    assert env.p.metric("zerowire_cold_starts_total", target="app/0") == 1
    wait_for(lambda: env.p.metric("zerowire_requests_total", target="app/0", code="200") == 2,
             what="both calls counted")
    wait_for(lambda: env.p.queue()[KEY]["concurrency"] == 0, what="concurrency back to 0")


def test_server_client_and_bidi_streaming(env):
    pb = env.pb

    def call():
        got = [m.n for m in env.stub.ServerStream(pb.Msg(n=50, data=b"x" * 100), timeout=30)]
        cs = env.stub.ClientStream(iter([pb.Msg(data=b"y" * 1000) for _ in range(40)]), timeout=30)
        bidi = [m.n for m in env.stub.Bidi(iter([pb.Msg(n=i, data=b"z") for i in range(30)]), timeout=30)]
        return got, cs, bidi
    for got, cs, bidi in cold_then_warm(env, call):
        assert got == list(range(50))
        assert cs.n == 40 and cs.data == b"40000"
        assert bidi == [2 * i for i in range(30)]


def test_4mib_messages_both_ways(env):
    pb = env.pb

    def call():
        up = env.stub.Unary(pb.Msg(data=os.urandom(BIG)), timeout=60)
        down = env.stub.Unary(pb.Msg(note="big", n=BIG, data=b"q"), timeout=60)
        return up, down
    for up, down in cold_then_warm(env, call):
        assert up.n == BIG and len(up.data) == BIG
        assert len(down.data) == BIG and down.data == b"r" * BIG


def test_error_status_and_message_intact(env):
    pb = env.pb

    def call():
        with pytest.raises(grpc.RpcError) as ei:
            env.stub.Unary(pb.Msg(note="fail"), timeout=30)
        e = ei.value
        return e.code(), e.details(), dict(e.trailing_metadata())
    for code, details, trail in cold_then_warm(env, call):
        assert code == grpc.StatusCode.NOT_FOUND
        assert details == "no such thing: caf\u00e9 100% gone"
        assert trail.get("x-why") == "asked"


def test_grpc_timeout_while_held_is_deadline_exceeded(env):
    """The proxy ends a held call when its grpc-timeout passes: curl sends
    the call (so the client itself has no deadline) and gets grpc-status 4
    from the proxy; a grpcio call gets DEADLINE_EXCEEDED; both counted."""
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl not installed")
    body = b"\x00\x00\x00\x00\x00"
    t0 = time.monotonic()
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-m", "20", "-D", "-", "-o", "/dev/null",
                          "-H", "Host: app.test", "-H", "content-type: application/grpc",
                          "-H", "te: trailers", "-H", "grpc-timeout: 700m", "--data-binary", "@-",
                          "http://127.0.0.1:%d/zwtest.Echo/Unary" % env.p.port],
                         input=body, capture_output=True, timeout=30)
    took = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    head = out.stdout.decode().lower()
    assert "grpc-status: 4" in head, head
    assert 0.6 < took < 5, took
    with pytest.raises(grpc.RpcError) as ei:
        env.stub.Unary(env.pb.Msg(data=b"a"), timeout=0.7)
    assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: env.held() == 0, what="nothing held")
    assert env.p.metric("zerowire_readiness_timeouts_total", target="app/0") >= 1
    assert env.p.metric("zerowire_requests_total", target="app/0", code="504") >= 1
    # Then the backend comes and a call within its deadline is answered.
    cold, warm = cold_then_warm(env, lambda: env.stub.Unary(env.pb.Msg(data=b"ok"), timeout=20))
    assert cold.data == b"ok" and warm.data == b"ok"


def test_cancel_from_the_client(env):
    pb = env.pb
    # Cancelled while held: the hold slot is given back.
    fut = env.stub.Unary.future(pb.Msg(data=b"c"), timeout=30)
    wait_for(lambda: env.held() == 1, what="held call")
    fut.cancel()
    wait_for(lambda: env.held() == 0, what="the cancelled call no longer held")
    # Then cold (held again, backend started) and warm: a long stream
    # cancelled after a few messages reaches the backend as a cancellation.

    def call():
        it = env.stub.ServerStream(pb.Msg(n=100000, note="paced", data=b"s"), timeout=60)
        first = [next(it).n for _ in range(3)]
        it.cancel()
        return first
    cold, warm = cold_then_warm(env, call)
    assert cold == [0, 1, 2] and warm == [0, 1, 2]
    wait_for(lambda: env.stub.Unary(pb.Msg(note="stats"), timeout=10).n == 2, timeout=15,
             what="both cancellations seen by the backend")
    wait_for(lambda: env.p.queue()[KEY]["concurrency"] == 0, what="concurrency back to 0")


def test_backend_killed_mid_stream_is_unavailable(env):
    pb = env.pb

    def call():
        it = env.stub.ServerStream(pb.Msg(n=100000, note="paced", data=b"k"), timeout=60)
        assert next(it).n == 0
        env.backend.kill()
        with pytest.raises(grpc.RpcError) as ei:
            for _ in it:
                pass
        return ei.value.code()
    results = {}
    t = threading.Thread(target=lambda: results.setdefault("cold", call()))
    t.start()
    env.wake()
    t.join(30)
    assert results.get("cold") == grpc.StatusCode.UNAVAILABLE
    # Warm: a fresh backend on the same address, killed again mid-stream.
    env.backend = GrpcBackend(env.dir, "127.0.0.2", env.port)
    code = call()
    assert code == grpc.StatusCode.UNAVAILABLE
    # And with no backend listening, a call is UNAVAILABLE too (not held:
    # the endpoint is still published).
    with pytest.raises(grpc.RpcError) as ei:
        env.stub.Unary(pb.Msg(data=b"x"), timeout=20)
    assert ei.value.code() == grpc.StatusCode.UNAVAILABLE


def test_grpc_over_the_tls_listener(tmp_path, stubs):
    """gRPC from a TLS client (ALPN h2, the proxy's TLS listener) to an h2c
    backend through a cold start, then warm: the same streams as h2c."""
    from zwproxy import make_cert  # noqa: E402
    crt, _, _ = make_cert(str(tmp_path), "default", 5, "default.tls.test", "app.test")
    tport = free_port()
    dirname, pb, pbg = stubs
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              args=["--tls-listen", "127.0.0.1:%d" % tport, "--tls-cert-file", str(tmp_path / "default.crt"),
                    "--tls-key-file", str(tmp_path / "default.key")])
    port = free_port("127.0.0.7")
    b = None
    creds = grpc.ssl_channel_credentials(root_certificates=crt.encode())
    ch = grpc.secure_channel("127.0.0.1:%d" % tport, creds,
                             options=[("grpc.ssl_target_name_override", "app.test"),
                                      ("grpc.default_authority", "app.test")] + MSG_OPTS)
    try:
        stub = pbg.EchoStub(ch)
        fut = stub.Unary.future(pb.Msg(data=b"tls"), timeout=30)
        wait_for(lambda: p.queue().get(KEY, {}).get("held", 0) == 1, what="a held call over TLS")
        b = GrpcBackend(dirname, "127.0.0.7", port)
        p.set_endpoints({APP: [("127.0.0.7", port)]})
        assert fut.result(timeout=20).data == b"tls"
        assert [m.n for m in stub.ServerStream(pb.Msg(n=5), timeout=10)] == list(range(5))
        assert p.metric("zerowire_cold_starts_total", target="app/0") == 1
    finally:
        ch.close()
        assert p.stop() == 0
        if b:
            b.kill()


def test_held_call_does_not_block_other_streams(tmp_path, stubs):
    """A cold gRPC call held on a connection while warm calls on the same
    channel (the same HTTP/2 connection) are answered: Bidi calls route to
    another, warm target by their path prefix."""
    wport = free_port("127.0.0.3")
    warm_backend = GrpcBackend(stubs[0], "127.0.0.3", wport)
    e = Env(tmp_path, stubs,
            extra_targets=[scaledobject("other", "other", 80, hosts="app.test", paths="/zwtest.Echo/Bidi")],
            endpoints={"default/other": [("127.0.0.3", wport)]})
    try:
        fut = e.stub.Unary.future(e.pb.Msg(data=b"held"), timeout=30)
        wait_for(lambda: e.held() == 1, what="held call")
        t0 = time.monotonic()
        for i in range(20):
            got = [m.n for m in e.stub.Bidi(iter([e.pb.Msg(n=i)]), timeout=10)]
            assert got == [2 * i]
        assert time.monotonic() - t0 < 10
        assert not fut.done() and e.held() == 1
        e.wake()
        assert fut.result(timeout=20).data == b"held"
    finally:
        e.close()
        warm_backend.kill()


def test_flow_control_bounds_proxy_memory_both_ways(env):
    """48 MiB through a client that stops reading after the first message,
    then 48 MiB up to a backend that stops reading: the proxy holds at most
    a few windows, not the stream. Its RSS grows by far less than 48 MiB
    (16 MiB allowed: ASan's quarantine keeps freed buffers; the release
    build grew by at most 56 KiB here)."""
    pb = env.pb
    chunk = b"m" * (1 << 20)

    def call():
        it = env.stub.ServerStream(pb.Msg(n=48, data=chunk), timeout=60)
        first = next(it)
        base = env.p.rss_kib()
        time.sleep(1.5)  # the client reads nothing meanwhile
        grown_down = env.p.rss_kib() - base
        rest = sum(1 for _ in it)
        # The trailers came while the body still waited for the client.
        assert dict(it.trailing_metadata()).get("x-end") == "done"
        assert it.code() == grpc.StatusCode.OK
        base = env.p.rss_kib()
        done = {}

        def slow_upload():
            msgs = [pb.Msg(data=chunk, note="slow" if i == 0 else "") for i in range(48)]
            done["r"] = env.stub.ClientStream(iter(msgs), timeout=60)
        t = threading.Thread(target=slow_upload)
        t.start()
        time.sleep(1.0)  # the backend reads nothing meanwhile
        grown_up = env.p.rss_kib() - base
        t.join(60)
        return first.n, rest, grown_down, grown_up, done["r"]
    for first, rest, grown_down, grown_up, up in cold_then_warm(env, call):
        assert first == 0 and rest == 47
        assert up.n == 48 and up.data == str(48 << 20).encode()
        assert grown_down < 16 * 1024, "proxy grew %d KiB while the client did not read" % grown_down
        assert grown_up < 16 * 1024, "proxy grew %d KiB while the backend did not read" % grown_up


def test_http1_client_to_grpc_backend(tmp_path, stubs):
    """An HTTP/1.1 client to a backend whose port says appProtocol grpc:
    its chunked body becomes DATA, and the response comes back chunked
    with grpc-status in the trailer section."""
    _, pb, _ = stubs
    port = free_port("127.0.0.5")
    b = GrpcBackend(stubs[0], "127.0.0.5", port)
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")])
    try:
        p.set_endpoints({APP: [("127.0.0.5", port)]}, app_protocol="grpc")
        wait_for(lambda: p.queue().get(KEY, {}).get("endpoints", 1), what="endpoints")
        msg = pb.Msg(data=b"via-http1").SerializeToString()
        frame = b"\0" + len(msg).to_bytes(4, "big") + msg
        req = (b"POST /zwtest.Echo/Unary HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n"
               b"content-type: application/grpc\r\nte: trailers\r\ntransfer-encoding: chunked\r\n\r\n"
               + b"%x\r\n" % 3 + frame[:3] + b"\r\n" + b"%x\r\n" % (len(frame) - 3) + frame[3:]
               + b"\r\n0\r\n\r\n")
        out = wait_for(lambda: (lambda o: o if b"grpc-status" in o else None)(p.raw(req, timeout=10)),
                       what="a gRPC answer over HTTP/1.1")
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"transfer-encoding: chunked" in head.lower()
        # body: chunks, then "0\r\n" and the trailer section
        data, _, trailers = body.partition(b"\r\n0\r\n")
        assert b"grpc-status: 0" in trailers and b"x-trailer: yes" in trailers, trailers
        size, _, payload = data.partition(b"\r\n")
        reply = pb.Msg()
        reply.ParseFromString(payload[5:5 + int.from_bytes(payload[1:5], "big")])
        assert reply.data == b"via-http1" and int(size, 16) == len(payload)
    finally:
        assert p.stop() == 0
        b.kill()


# ---- h2c backends that are not gRPC ---------------------------------------------------

def test_curl_h2c_to_nghttpd_backend(tmp_path):
    """A backend whose EndpointSlice port says appProtocol kubernetes.io/h2c
    is spoken to over h2c: nghttpd (no TLS) serves a file; curl with
    --http2-prior-knowledge and an HTTP/1.1 client both get it, and
    nghttpd's frame log shows HTTP/2 requests from the proxy."""
    nghttpd = shutil.which("nghttpd")
    curl = shutil.which("curl")
    if not nghttpd or not curl:
        pytest.skip("nghttpd (Debian nghttp2-server) or curl not installed")
    docroot = tmp_path / "www"
    docroot.mkdir()
    payload = os.urandom(300000)
    (docroot / "blob").write_bytes(payload)
    port = free_port("127.0.0.4")
    log = open(tmp_path / "nghttpd.log", "wb")
    srv = subprocess.Popen([nghttpd, "--no-tls", "-v", "-a", "127.0.0.4", "-d", str(docroot), str(port)],
                           stdout=log, stderr=subprocess.STDOUT)
    p = None
    try:
        def listening():
            try:
                socket.create_connection(("127.0.0.4", port), 1).close()
                return True
            except OSError:
                return False
        wait_for(listening, timeout=10, what="nghttpd listening")
        p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")])
        p.set_endpoints({APP: [("127.0.0.4", port)]}, app_protocol="kubernetes.io/h2c")
        wait_for(lambda: p.get("/blob")[0].status == 200, what="published endpoint")
        out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-m", "20", "-H", "Host: app.test",
                              "-o", str(tmp_path / "got"), "-w", "%{http_code} %{http_version}",
                              "http://127.0.0.1:%d/blob" % p.port], capture_output=True, timeout=30)
        assert out.returncode == 0 and out.stdout == b"200 2", out
        assert (tmp_path / "got").read_bytes() == payload
        for _ in range(30):
            r, body = p.get("/blob")
            assert r.status == 200 and body == payload
        r, _ = p.get("/missing")
        assert r.status == 404
        log.flush()
        frames = (tmp_path / "nghttpd.log").read_bytes()
        assert frames.count(b"recv HEADERS frame") >= 33 and b":path: /blob" in frames
        assert b"x-forwarded-for: 127.0.0.1" in frames
        # A finished request is not reset (backends count resets: rapid reset).
        assert b"RST_STREAM" not in frames
    finally:
        if p:
            assert p.stop() == 0
        srv.terminate()
        srv.wait(10)
        log.close()


def test_idle_h2c_connection_closes(tmp_path):
    """One pooled h2c connection carries sequential requests (one with 200
    fields) and closes after --upstream-idle-timeout without streams
    (nghttpd logs the close)."""
    nghttpd = shutil.which("nghttpd")
    if not nghttpd:
        pytest.skip("nghttpd (Debian nghttp2-server) not installed")
    docroot = tmp_path / "www"
    docroot.mkdir()
    (docroot / "f").write_bytes(b"idle test\n")
    port = free_port("127.0.0.8")
    log = open(tmp_path / "nghttpd.log", "wb")
    srv = subprocess.Popen([nghttpd, "--no-tls", "-v", "-a", "127.0.0.8", "-d", str(docroot), str(port)],
                           stdout=log, stderr=subprocess.STDOUT)
    p = None
    try:
        p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
                  args=["--workers", "1", "--upstream-idle-timeout", "1s", "--max-headers", "300"])
        p.set_endpoints({APP: [("127.0.0.8", port)]}, app_protocol="h2c")
        wait_for(lambda: p.get("/f")[0].status == 200, what="published endpoint")
        for _ in range(4):
            assert p.get("/f")[1] == b"idle test\n"
        # a head with more fields than fit on the stack of older code
        many = {"x-field-%d" % i: "v%d" % i for i in range(200)}
        r, body = p.get("/f", headers=many)
        assert r.status == 200 and body == b"idle test\n"
        t0 = time.monotonic()
        closed = re.compile(rb"^\[id=(\d+)\] \[ *[0-9.]+\] closed$", re.M)

        def conns():
            log.flush()
            text = (tmp_path / "nghttpd.log").read_bytes()
            return set(re.findall(rb"^\[id=(\d+)\]", text, re.M)), set(closed.findall(text))
        wait_for(lambda: conns()[1], timeout=10, what="the idle connection closed")
        opened, gone = conns()
        assert len(opened) == 1 and gone == opened  # one connection for all six, then closed
        assert time.monotonic() - t0 > 0.5
    finally:
        if p:
            assert p.stop() == 0
        srv.terminate()
        srv.wait(10)
        log.close()
