"""After gRPC calls end, zerowire-proxy reports the target idle to KEDA
(docs/keda-scaler.md "Time to zero"): requests in flight go back to 0 and
the external-push stream (StreamIsActive, read with the real grpcio client
as KEDA reads it) says false once the request-rate window is empty, whether
the client keeps its HTTP/2 connection open (as Traefik keeps its h2c
connection to the proxy) or closes it; the proxy's own h2c connection to
the backend stays open in its pool and counts nothing.

Every way a call ends is covered: unary, trailers-only error, server stream,
client stream, bidi, a response that ends before the client ended its stream,
RST_STREAM from the client mid-stream, the client's deadline while the backend
is still working, and a call held through a cold start. Each case first shows
the call counted (the stream says true; a long call is seen in flight).

Backend: the grpcio server of grpc_upstream_test.py (stubs generated at test
time). Run by `make integration` against build/san/bin/zerowire-proxy."""
import os
import queue
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Proxy, scaledobject, wait_for, free_port  # noqa: E402
from grpc_upstream_test import GrpcBackend, MSG_OPTS, stubs  # noqa: E402,F401 (stubs: fixture)
from scaler_test import StreamReader, _load_stubs  # noqa: E402

grpc = pytest.importorskip("grpc", reason="python3-grpcio not installed")

KEY = "default/app/0"
APP = "default/app"
WINDOW_S, GRAN_S = 2.0, 0.5
META = {"scalingMetric": "requestRate", "targetValue": "5", "window": "2s", "granularity": "500ms"}
# From the end of the last call to the stream's false: the window, plus up to
# one bucket (a bucket leaves the window whole), plus the scaler's 200 ms
# tick, plus 1.3 s of scheduling slack for an ASan build on a shared machine.
IDLE_BOUND_S = WINDOW_S + GRAN_S + 0.2 + 1.3
IN_FLIGHT_BOUND_S = 2.0  # call ended -> /queue concurrency 0


@pytest.fixture(scope="module")
def keda():
    return _load_stubs()


class Idle:
    """A grpcio backend on 127.0.0.2, a proxy with target app (window 2 s)
    whose endpoint is that backend (none yet when cold), and KEDA's
    StreamIsActive for the ScaledObject open on the scaler port."""

    def __init__(self, tmp, stubs, keda, cold=False):
        self.dir, self.pb, self.pbg = stubs
        port = free_port("127.0.0.2")
        self.backend = GrpcBackend(self.dir, "127.0.0.2", port)
        self.endpoints = {APP: [("127.0.0.2", port)]}
        self.p = Proxy(tmp, [scaledobject("app", "app", 80, hosts="app.test", **META)],
                       endpoints={} if cold else self.endpoints)
        kpb2, kgrpc = keda
        self.kch = grpc.insecure_channel("127.0.0.1:%d" % self.p.scaler_port)
        ref = kpb2.ScaledObjectRef(name="app", namespace="default", scalerMetadata={})
        self.stream = StreamReader(kgrpc.ExternalScalerStub(self.kch).StreamIsActive(ref))

    def channel(self):
        return grpc.insecure_channel("127.0.0.1:%d" % self.p.port,
                                     options=[("grpc.default_authority", "app.test")] + MSG_OPTS)

    def target(self):
        return self.p.queue().get(KEY, {})

    def in_flight(self):
        return self.target().get("concurrency", 0)

    def close(self):
        self.stream.cancel()
        self.kch.close()
        rc = self.p.stop()
        self.backend.kill()
        assert rc == 0, self.p.output()[-3000:]


# ---- the calls: each returns once the client has seen its call end ----

def unary(e, stub):
    assert stub.Unary(e.pb.Msg(data=b"u"), timeout=10).data == b"u"


def error_status(e, stub):
    with pytest.raises(grpc.RpcError) as ei:
        stub.Unary(e.pb.Msg(note="fail"), timeout=10)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND


def server_stream(e, stub):
    got = [m.n for m in stub.ServerStream(e.pb.Msg(n=50, data=b"s"), timeout=10)]
    assert got == list(range(50))


def client_stream(e, stub):
    assert stub.ClientStream(iter([e.pb.Msg(data=b"c")] * 10), timeout=10).n == 10


def bidi(e, stub):
    got = [m.n for m in stub.Bidi(iter([e.pb.Msg(n=i) for i in range(5)]), timeout=10)]
    assert got == [0, 2, 4, 6, 8]


def answered_before_client_end(e, stub):
    """The backend answers (and ends the stream) while the client still
    holds its request stream open."""
    done = threading.Event()

    def requests():
        yield e.pb.Msg(data=b"a")
        yield e.pb.Msg(note="stop")
        done.wait(10)
    try:
        assert stub.ClientStream(requests(), timeout=10).n == 1
    finally:
        done.set()


def cancelled_mid_stream(e, stub):
    """RST_STREAM from the client while the backend streams."""
    it = stub.ServerStream(e.pb.Msg(n=100000, note="paced", data=b"p"), timeout=60)
    assert [next(it).n for _ in range(3)] == [0, 1, 2]
    assert e.in_flight() == 1
    it.cancel()


def deadline(e, stub):
    """The client's deadline passes while the backend still works (4 s)."""
    fut = stub.Unary.future(e.pb.Msg(note="slow", n=4000), timeout=1.0)
    wait_for(lambda: e.in_flight() == 1, timeout=1.0, what="the slow call in flight")
    assert fut.exception(timeout=10).code() == grpc.StatusCode.DEADLINE_EXCEEDED


def held_then_answered(e, stub):
    """Cold the first time: held until the endpoint is published."""
    fut = stub.Unary.future(e.pb.Msg(data=b"h"), timeout=30)
    if e.target().get("held", 0) == 0 and not fut.done():
        wait_for(lambda: e.target().get("held", 0) == 1 or fut.done(), what="the call held")
    e.p.set_endpoints(e.endpoints)
    assert fut.result(timeout=20).data == b"h"


CALLS = {f.__name__: f for f in (unary, error_status, server_stream, client_stream, bidi,
                                 answered_before_client_end, cancelled_mid_stream, deadline,
                                 held_then_answered)}


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_in_flight_and_activity_return_to_idle(kind, tmp_path, stubs, keda):  # noqa: F811
    e = Idle(tmp_path, stubs, keda, cold=kind == "held_then_answered")
    try:
        assert e.stream.next(timeout=5)[1] is False, "idle before any call"
        for keep_open in (True, False):
            ch = e.channel()
            try:
                CALLS[kind](e, e.pbg.EchoStub(ch))
                t_end = time.monotonic()
                if not keep_open:
                    ch.close()
                e.stream.wait_for(True, timeout=1)  # the call was counted
                wait_for(lambda: e.in_flight() == 0, timeout=IN_FLIGHT_BOUND_S,
                         what="no request in flight after the %s call (%s)" % (kind, e.target()))
                t_idle = e.stream.wait_for(False, timeout=IDLE_BOUND_S + 3)
                print("%s (connection %s): false %.2fs after the call ended"
                      % (kind, "kept open" if keep_open else "closed", t_idle - t_end))
                assert t_idle - t_end < IDLE_BOUND_S, (kind, keep_open, t_idle - t_end)
                # ...and stays idle: the heartbeats that follow say false.
                until = time.monotonic() + 1.5
                while time.monotonic() < until:
                    try:
                        _, active = e.stream.next(timeout=until - time.monotonic())
                    except queue.Empty:
                        break
                    assert active is False, (kind, keep_open, e.target())
                t = e.target()
                assert (t["concurrency"], t["held"], t["active"]) == (0, 0, False), t
            finally:
                ch.close()
        assert e.target()["requestCount"] >= 2
    finally:
        e.close()
