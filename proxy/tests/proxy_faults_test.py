"""Fault suite of zerowire-proxy's data path and scaler (issue #10), static
mode on loopback, run against the ASan binary: every Proxy.stop() fails the
test on a sanitizer report (leaks included) or a non-zero exit.

Faults: a backend that resets, half-closes or stalls before or in the middle
of its response; a client that stalls, half-closes or resets in the middle of
its request body; a backend that closes its idle keep-alive connections;
SIGTERM under load; KEDA's StreamIsActive connection cut and reopened; a peer
replica killed and restarted. While the faults run, a load loop on a healthy
target checks that other connections are unaffected (0 failures)."""
import http.client
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Backend, LoadLoop, Proxy, TcpServer, free_port, scaledobject, wait_for  # noqa: E402

BODY_LEN = 100000  # announced Content-Length of the truncated responses
SENT = 1000  # bytes of it the faulty backend really sends


# ---- helpers -----------------------------------------------------------------

class RawBackend(TcpServer):
    """A loopback TCP server that runs `behaviour(self, sock)` for every
    connection it accepts (scripted faults)."""

    def __init__(self, behaviour, ip="127.0.0.1"):
        self.behaviour = behaviour
        self.received = []  # bytes received per connection (filled by read_request)
        super().__init__(ip)

    def handle(self, c):
        try:
            self.behaviour(self, c)
        except OSError:
            pass
        finally:
            c.close()

    def read_request(self, c, timeout=10):
        """Reads a request head and its Content-Length body (or until EOF /
        timeout); records how many body bytes came."""
        c.settimeout(timeout)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
            head, _, body = buf.partition(b"\r\n\r\n")
            want = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    want = int(v)
            while len(body) < want:
                d = c.recv(65536)
                if not d:
                    break
                body += d
        except socket.timeout:
            head, _, body = buf.partition(b"\r\n\r\n")
        self.received.append(len(body))
        return head


def rst(c):
    """Closes with a TCP reset (SO_LINGER 0)."""
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


def partial_head():
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BODY_LEN + b"x" * SENT


def exchange(port, data, timeout=10, shut_wr=False, reset_after=None):
    """Sends raw bytes to the proxy; returns (bytes until the proxy closed,
    seconds it took, how it ended: "eof", "reset" or "timeout")."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t0 = time.monotonic()
    s.sendall(data)
    if shut_wr:
        s.shutdown(socket.SHUT_WR)
    if reset_after is not None:
        time.sleep(reset_after)
        rst(s)
        return b"", time.monotonic() - t0, "reset-by-client"
    out, how = b"", "eof"
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        how = "timeout"
    except ConnectionResetError:
        how = "reset"
    s.close()
    return out, time.monotonic() - t0, how


def split(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, head, body


class Load(LoadLoop):
    """Background load on a healthy target: `threads` loops of GET over
    keep-alive connections (a new connection only after the proxy closes one
    with `Connection: close`)."""

    def __init__(self, port, host="good.test", threads=4, path="/"):
        self.port, self.host, self.path = port, host, path
        super().__init__(threads)

    def connect(self, i):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def one(self, c, i, n):
        c.request("GET", self.path, headers={"Host": self.host})
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or not body.startswith(b"hello from") and not body.startswith(b"slow"):
            raise AssertionError("status %d body %r" % (r.status, body[:80]))
        return (r.getheader("Connection") or "").lower() != "close"


def faulty_proxy(tmp_path, behaviours, args=()):
    """A proxy with one target per scripted backend (host <name>.test) and a
    healthy target good.test."""
    raws = {name: RawBackend(fn) for name, fn in behaviours.items()}
    good = Backend(name="good")
    targets = [scaledobject(n, n, b.port, hosts=n + ".test") for n, b in raws.items()]
    targets.append(scaledobject("good", "good", good.port, hosts="good.test"))
    eps = {"default/" + n: [("127.0.0.1", b.port)] for n, b in raws.items()}
    eps["default/good"] = [("127.0.0.1", good.port)]
    p = Proxy(tmp_path, targets, eps, args=list(args))
    return p, raws, good


def stop_faulty(p, raws, good):
    """Stops what faulty_proxy() started; the proxy must exit 0, sanitizer-clean."""
    try:
        assert p.stop() == 0
    finally:
        good.stop()
        for b in raws.values():
            b.stop()


def get_req(host, extra=b""):
    return b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + extra + b"\r\n"


def settle_connections(p):
    """zerowire_connections back to 0 once every client has gone: nothing leaked."""
    wait_for(lambda: p.metric("zerowire_connections") == 0, timeout=5, what="zerowire_connections 0")


# ---- backend faults ------------------------------------------------------------

def b_reset_before_head(rb, c):
    rb.read_request(c)
    rst(c)


def b_reset_mid_body(rb, c):
    rb.read_request(c)
    c.sendall(partial_head())
    time.sleep(0.2)
    rst(c)


def b_halfclose_before_head(rb, c):
    rb.read_request(c)
    c.shutdown(socket.SHUT_WR)
    time.sleep(3)  # still reading: only the write side is closed


def b_halfclose_mid_body(rb, c):
    rb.read_request(c)
    c.sendall(partial_head())
    time.sleep(0.2)
    c.shutdown(socket.SHUT_WR)
    time.sleep(3)


def b_stall_before_head(rb, c):
    rb.read_request(c)
    time.sleep(4)


def b_stall_mid_body(rb, c):
    rb.read_request(c)
    c.sendall(partial_head())
    time.sleep(4)


def test_backend_reset_halfclose_stall(tmp_path):
    """Backend faults, each on its own target, with a 4-thread load loop on a
    healthy target running throughout. Checks: reset before the response head
    -> 502 naming the reset; half-close (FIN, still reading) before the head ->
    502 naming the close; stall before the head -> 504 after
    --response-header-timeout (1 s); after a 200 head and 1000 of 100000 body
    bytes, reset / half-close / stall -> the client gets exactly those 1000
    bytes and then the connection closes (at once for reset and half-close,
    after --stream-idle-timeout 1 s for the stall), never a hang or a second
    response; upstream_errors 4, upstream_timeouts 1, stream_idle_timeouts 1;
    the healthy target had 0 failed requests; the proxy is still healthy, no
    client connection is left open, and it exits 0 without a sanitizer report."""
    behaviours = {"reset-head": b_reset_before_head, "reset-body": b_reset_mid_body,
                  "fin-head": b_halfclose_before_head, "fin-body": b_halfclose_mid_body,
                  "stall-head": b_stall_before_head, "stall-body": b_stall_mid_body}
    p, raws, good = faulty_proxy(tmp_path, behaviours,
                                 ["--response-header-timeout", "1s", "--stream-idle-timeout", "1s"])
    load = Load(p.port)
    try:
        res = {}
        for name in behaviours:
            res[name] = exchange(p.port, get_req(name + ".test"))
        for name, (out, secs, how) in res.items():
            print("%-10s %.2fs %-7s %r" % (name, secs, how, out[:90]))

        st, head, body = split(res["reset-head"][0])
        assert st == 502 and b"reset before a response" in body, res["reset-head"]
        st, head, body = split(res["fin-head"][0])
        assert st == 502 and b"closed the connection before a response" in body, res["fin-head"]
        assert res["fin-head"][1] < 1.0, "502 must not wait for the backend's full close"
        st, head, body = split(res["stall-head"][0])
        assert st == 504 and b"timeout" in body, res["stall-head"]
        assert 0.9 <= res["stall-head"][1] < 3.0, res["stall-head"][1]
        for name, max_secs in (("reset-body", 1.5), ("fin-body", 1.5), ("stall-body", 3.0)):
            out, secs, how = res[name]
            st, head, body = split(out)
            assert st == 200 and b"Content-Length: %d" % BODY_LEN in head, (name, out[:200])
            assert len(body) == SENT, (name, len(body))  # truncated, nothing appended
            assert how == "eof" or how == "reset", (name, how)
            assert secs < max_secs, (name, secs)
        assert res["stall-body"][1] >= 0.9  # closed by the stream idle timeout, not earlier

        # Each faulty backend saw exactly one connection (no retry of a
        # request whose response had started, no duplicate).
        assert {n: b.accepted for n, b in raws.items()} == {n: 1 for n in raws}
        assert p.metric("zerowire_upstream_errors_total") == 4
        assert p.metric("zerowire_upstream_timeouts_total") == 1
        assert p.metric("zerowire_stream_idle_timeouts_total", target="stall-body/0") == 1
        assert p.admin_get("/healthz")[0] == 200 and p.admin_get("/readyz")[0] == 200
        r, data = p.get("/", host="good.test")
        assert r.status == 200
        ok, failed = load.finish()
        assert failed == [] and ok > 20, (ok, failed[:5])
        settle_connections(p)
    finally:
        load.finish()
        stop_faulty(p, raws, good)


def b_count_body(rb, c):
    head = rb.read_request(c, timeout=5)
    if head:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_client_stall_halfclose_reset_mid_body(tmp_path):
    """Request-direction faults: a client announces a 10000-byte body and
    sends 100 bytes, then (a) stalls -> 504 after --response-header-timeout
    (1 s; the backend saw 100 bytes, never a completed request); (b)
    half-closes -> the proxy closes the connection at once without a response
    (within 1 s); (c) resets -> nothing to answer. A client that half-closes
    after a complete request still gets the full 200 response. Throughout, a
    load loop on another target has 0 failures; afterwards no client
    connection is left and the proxy answers normally."""
    p, raws, good = faulty_proxy(tmp_path, {"sink": b_count_body},
                                 ["--response-header-timeout", "1s"])
    load = Load(p.port)
    partial = b"POST / HTTP/1.1\r\nHost: sink.test\r\nContent-Length: 10000\r\n\r\n" + b"a" * 100
    try:
        out, secs, how = exchange(p.port, partial)
        st, _, body = split(out)
        assert st == 504 and 0.9 <= secs < 3.0, (out[:120], secs)

        out, secs, how = exchange(p.port, partial, shut_wr=True)
        assert out == b"" and how == "eof" and secs < 1.0, (out[:120], secs, how)

        exchange(p.port, partial, reset_after=0.2)

        out, secs, how = exchange(p.port, get_req("sink.test"), shut_wr=True)
        st, _, body = split(out)
        assert st == 200 and body == b"ok", out[:200]

        wait_for(lambda: len(raws["sink"].received) == raws["sink"].accepted, timeout=10,
                 what="backend connections finished")
        # No truncated upload reached the backend as a complete request (at
        # most its 100 bytes; the reset one may be cut before its body).
        assert len(raws["sink"].received) == 4 and max(raws["sink"].received) == 100, \
            raws["sink"].received
        ok, failed = load.finish()
        assert failed == [] and ok > 20, (ok, failed[:5])
        settle_connections(p)
        r, _ = p.get("/", host="good.test")
        assert r.status == 200
    finally:
        load.finish()
        stop_faulty(p, raws, good)


def test_backend_closes_idle_keepalive(tmp_path):
    """A backend that closes every keep-alive connection 0.2 s after its
    response (FIN on one target, RST on another), while the proxy keeps them
    pooled for 60 s: 20 sequential requests spaced 0.3 s apart all get 200 -
    the proxy notices the dead pooled connection instead of sending a
    request into it and answering 502."""
    def closer(mode):
        def run(rb, c):
            rb.read_request(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            time.sleep(0.2)
            if mode == "rst":
                rst(c)
        return run
    p, raws, good = faulty_proxy(tmp_path, {"fin": closer("fin"), "rst": closer("rst")})
    try:
        statuses = {"fin": [], "rst": []}
        for i in range(10):
            for name in statuses:
                r, body = p.get("/", host=name + ".test")
                statuses[name].append(r.status)
            time.sleep(0.3)
        assert statuses == {"fin": [200] * 10, "rst": [200] * 10}, statuses
        assert p.metric("zerowire_upstream_errors_total") == 0
    finally:
        stop_faulty(p, raws, good)


# ---- SIGTERM under load ----------------------------------------------------------

def test_sigterm_under_load_zero_failures(tmp_path):
    """SIGTERM while 6 client threads send requests (4 fast keep-alive loops,
    2 loops of 300 ms requests) with --shutdown-delay 2s --drain-timeout 5s.
    Checks: /readyz fails within 0.5 s while requests keep being served; the
    load runs on for 1 s after SIGTERM (a load balancer taking the pod out)
    and then stops issuing new requests; a 2.5 s request started 0.3 s before
    the listener closes still completes with 200 (drain); after the delay new
    connections are refused; the proxy exits 0 within delay + drain, and in
    total 0 requests failed (over 100 succeeded)."""
    good = Backend(name="good")
    p = Proxy(tmp_path, [scaledobject("good", "good", good.port, hosts="good.test")],
              {"default/good": [("127.0.0.1", good.port)]},
              args=["--shutdown-delay", "2s", "--drain-timeout", "5s"])
    fast = Load(p.port, threads=4)
    slow = Load(p.port, threads=2, path="/slow?ms=300")
    late = {}
    try:
        time.sleep(1.0)
        assert fast.ok > 10 and slow.ok > 2
        t0 = time.monotonic()
        p.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: p.admin_get("/readyz")[0] != 200, timeout=0.5, what="/readyz failing")
        served_before = fast.ok
        time.sleep(1.0)
        assert fast.ok > served_before, "requests must still be served during --shutdown-delay"
        fast_ok, fast_failed = fast.finish()
        slow_ok, slow_failed = slow.finish()

        def long_request():
            try:
                r, body = p.get("/slow?ms=2500", host="good.test", timeout=10)
                late["r"] = (r.status, body, r.getheader("Connection"))
            except Exception as e:  # noqa: BLE001 - recorded for the assertion
                late["r"] = ("error", repr(e), None)
        time.sleep(max(0.0, 1.7 - (time.monotonic() - t0)))
        th = threading.Thread(target=long_request)
        th.start()
        # Once the delay is over the listener is gone.
        wait_for(lambda: _refused(p.port), timeout=3, what="listener closed after the delay")
        assert time.monotonic() - t0 >= 1.9
        assert p.proc.poll() is None, "must drain the in-flight request before exiting"
        th.join(10)
        assert late["r"][0] == 200 and late["r"][1] == b"slow good", late
        assert (late["r"][2] or "").lower() == "close"
        rc = p.proc.wait(10)
        elapsed = time.monotonic() - t0
        print("SIGTERM: %d + %d requests, 0 failed expected (%d + %d); exit %s after %.2fs"
              % (fast_ok, slow_ok, len(fast_failed), len(slow_failed), rc, elapsed))
        assert rc == 0 and elapsed < 2 + 5 + 1, (rc, elapsed)
        assert fast_failed == [] and slow_failed == [], (fast_failed[:3], slow_failed[:3])
        assert fast_ok + slow_ok > 100, (fast_ok, slow_ok)
    finally:
        fast.finish()
        slow.finish()
        assert p.stop() == 0
        good.stop()


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


# ---- KEDA's stream cut and reopened ------------------------------------------------

class Relay(TcpServer):
    """A loopback TCP relay to 127.0.0.1:port; cut() resets every relayed
    connection on both sides (a network cut), new connections still pass."""

    def __init__(self, port):
        self.to = port
        self.pairs = []
        self.cutting = False
        self.lock = threading.Lock()
        super().__init__()

    def handle(self, a):
        try:
            b = socket.create_connection(("127.0.0.1", self.to), timeout=5)
            b.settimeout(None)
        except OSError:
            a.close()
            return
        with self.lock:
            self.pairs.append((a, b))
        for x, y in ((a, b), (b, a)):
            threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    if not self.cutting:
                        dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(d)
        except OSError:
            pass

    def cut(self):
        """Resets both sides of every relayed connection. (A close() while
        another thread sits in recv() on the socket is deferred by the
        kernel: wake the pumps with shutdown(SHUT_RD) first, then close with
        SO_LINGER 0.)"""
        with self.lock:
            pairs, self.pairs = self.pairs, []
            self.cutting = True
            socks = [s for pair in pairs for s in pair]
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                try:
                    s.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
            time.sleep(0.1)  # the pumps return
            for s in socks:
                s.close()
            self.cutting = False
        return len(pairs)

    def stop(self):
        self.cut()
        super().stop()


@pytest.fixture(scope="module")
def pb():
    import scaler_test
    pb2, pb2_grpc = scaler_test._load_stubs()

    class Stubs:
        pass
    s = Stubs()
    s.pb2, s.grpc, s.mod = pb2, pb2_grpc, scaler_test
    return s


COLD_META = {"scalingMetric": "concurrency", "targetValue": "1", "window": "2s", "granularity": "1s"}


def test_keda_stream_cut_and_reopened(pb, tmp_path):
    """KEDA's StreamIsActive through a TCP relay that is cut (RST both ways)
    and reopened. Checks: the first stream answers false; after the cut the
    proxy releases it (zerowire_scaler_streams 0) and keeps serving; a cold
    request arrives while KEDA is disconnected; the reopened stream's first
    message is the current state, true; when the held client leaves and the
    2 s window passes, the stream pushes false; a new cold request pushes
    true again within 2 s; a second cut + reopen while idle gives false."""
    grpc = pytest.importorskip("grpc")
    p = Proxy(tmp_path, [scaledobject("busy", "busy", 80, hosts="busy.test", **COLD_META)])
    relay = Relay(p.scaler_port)
    ch = grpc.insecure_channel("127.0.0.1:%d" % relay.port)
    stub = pb.grpc.ExternalScalerStub(ch)
    ref = pb.pb2.ScaledObjectRef(name="busy", namespace="default", scalerMetadata={})
    held = []
    try:
        r1 = pb.mod.StreamReader(stub.StreamIsActive(ref))
        assert r1.next()[1] is False
        assert p.metric("zerowire_scaler_streams") == 1
        assert relay.cut() == 1
        wait_for(lambda: r1.error is not None, timeout=5, what="the cut stream ends on the client")
        wait_for(lambda: p.metric("zerowire_scaler_streams") == 0, timeout=5,
                 what="the proxy releases the cut stream")

        # While KEDA is away: a request for the target at zero is held.
        c = socket.create_connection(("127.0.0.1", p.port))
        c.sendall(b"GET / HTTP/1.1\r\nHost: busy.test\r\n\r\n")
        held.append(c)
        wait_for(lambda: p.queue()["default/busy/0"]["held"] == 1, what="held request")

        # KEDA reopens: the current state first.
        r2 = pb.mod.StreamReader(stub.StreamIsActive(ref))
        assert r2.next(timeout=5)[1] is True
        assert p.metric("zerowire_scaler_streams") == 1
        # The client goes away; once the window is empty the stream says false.
        held.pop().close()
        wait_for(lambda: p.queue()["default/busy/0"]["concurrency"] == 0, what="held request gone")
        t_quiet = time.monotonic()
        t_false = r2.wait_for(False, timeout=6)
        assert t_false - t_quiet < 5, t_false - t_quiet
        r2.drain()
        c = socket.create_connection(("127.0.0.1", p.port))
        held.append(c)
        t0 = time.monotonic()
        c.sendall(b"GET / HTTP/1.1\r\nHost: busy.test\r\n\r\n")
        assert r2.wait_for(True, timeout=2) - t0 < 2
        held.pop().close()
        r2.wait_for(False, timeout=6)

        # A second cut while idle: the reopened stream starts from false.
        assert relay.cut() == 1
        wait_for(lambda: r2.error is not None, timeout=5, what="second cut seen by the client")
        r3 = pb.mod.StreamReader(stub.StreamIsActive(ref))
        assert r3.next(timeout=5)[1] is False
        r3.cancel()
        wait_for(lambda: p.metric("zerowire_scaler_streams") == 0, timeout=5, what="streams 0")
        r, _ = p.get("/", host="nothing.test")
        assert r.status == 404  # the data path is unaffected
    finally:
        for c in held:
            c.close()
        ch.close()
        relay.stop()
        assert p.stop() == 0


# ---- a peer replica killed -----------------------------------------------------------

def _replica(tmp_path, name, admin_port, peers, good_port):
    """A proxy replica with a fixed admin port and --peers; targets busy.test
    (no endpoints: requests are held) and good.test (a running backend)."""
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    token = tmp_path / "peer-token"  # the replicas share it, as the chart's Secret
    if not token.exists():
        token.write_text("fault-suite-peer-token-0123456789\n")
    p = Proxy(d, [scaledobject("busy", "busy", 80, hosts="busy.test", scalingMetric="concurrency",
                               targetValue="1"),
                  scaledobject("other", "other", 80, hosts="other.test", **COLD_META),
                  scaledobject("good", "good", good_port, hosts="good.test")],
              {"default/good": [("127.0.0.1", good_port)]},
              args=["--admin-listen", "127.0.0.1:%d" % admin_port,
                    "--peers", ",".join("127.0.0.1:%d" % x for x in peers),
                    "--peer-token-file", str(token)], ready=False)
    p.admin_port = admin_port
    wait_for(lambda: p.admin_get("/readyz")[0] == 200 or p.proc.poll() is not None, timeout=15,
             what="replica /readyz")
    assert p.proc.poll() is None, p.output()
    return p


def _api(p, target="busy"):
    st, body = p.admin_get("/metrics-api/default/" + target)
    assert st == 200, body
    return json.loads(body)


def _hold(p, host, n):
    socks = []
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", p.port))
        c.sendall(b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
        socks.append(c)
    return socks


def test_peer_replica_killed_and_restarted(pb, tmp_path):
    """Two replicas A and B with --peers (each list includes itself). Holds 2
    requests on A and 3 on B: both report concurrency 5. B is SIGKILLed:
    A's load loop on a running backend has 0 failures through the kill, A
    stays ready, counts the failed polls, reports 0 live peers and
    concurrency 2 (B's held requests gone, not frozen), its request count in
    the window keeps B's 3 past requests (5, no loss). B restarts on the
    same admin port with 1 held request: A reports concurrency 3 and 6
    requests in the window, still 6 after several more polls (the restarted
    replica is not counted twice); a cold request at the restarted B makes
    A's StreamIsActive push true (cold fan-out re-established)."""
    grpc = pytest.importorskip("grpc")
    good = Backend(name="good")
    pa, pb_port = free_port(), free_port()
    peers = [pa, pb_port]
    a = _replica(tmp_path, "a", pa, peers, good.port)
    b = _replica(tmp_path, "b", pb_port, peers, good.port)
    b2 = None
    socks = []
    load = None
    ch = grpc.insecure_channel("127.0.0.1:%d" % a.scaler_port)
    try:
        socks += _hold(a, "busy.test", 2) + _hold(b, "busy.test", 3)
        wait_for(lambda: _api(a)["concurrency"] == 5 and _api(b)["concurrency"] == 5, timeout=5,
                 what="sum over both replicas")
        assert a.metric("zerowire_scaler_peers_live") == 1
        load = Load(a.port)
        time.sleep(0.3)
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(5)
        wait_for(lambda: _api(a)["concurrency"] == 2, timeout=5, what="A drops the killed peer")
        assert a.metric("zerowire_scaler_peers_live") == 0
        wait_for(lambda: a.metric("zerowire_scaler_peer_poll_failures_total") >= 1, timeout=5,
                 what="failed polls counted")
        assert _api(a)["requestsInWindow"] == 5
        assert a.admin_get("/readyz")[0] == 200
        time.sleep(0.5)
        ok, failed = load.finish()
        assert failed == [] and ok > 20, (ok, failed[:5])

        r = pb.mod.StreamReader(pb.grpc.ExternalScalerStub(ch).StreamIsActive(
            pb.pb2.ScaledObjectRef(name="other", namespace="default", scalerMetadata={})))
        assert r.next()[1] is False
        b2 = _replica(tmp_path, "b2", pb_port, peers, good.port)
        socks += _hold(b2, "busy.test", 1)
        wait_for(lambda: _api(a)["concurrency"] == 3, timeout=5, what="A counts the restarted B")
        wait_for(lambda: _api(a)["requestsInWindow"] == 6, timeout=5, what="6 requests in the window")
        assert a.metric("zerowire_scaler_peers_live") == 1
        time.sleep(1.5)  # three more polls: nothing counted twice
        assert _api(a)["requestsInWindow"] == 6 and _api(a)["concurrency"] == 3
        assert _api(b2)["concurrency"] == 3
        r.drain()
        t0 = time.monotonic()
        socks += _hold(b2, "other.test", 1)
        assert r.wait_for(True, timeout=3) - t0 < 2
        r.cancel()
    finally:
        if load:
            load.finish()
        for c in socks:
            c.close()
        ch.close()
        assert a.stop() == 0
        if b2:
            assert b2.stop() == 0
        if b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait()
        good.stop()
