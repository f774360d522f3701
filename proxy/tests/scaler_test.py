"""Protocol tests for zerowire's KEDA external scaler (proxy/scaler.c,
proxy/grpc.c, proxy/peers.c) with the real grpcio client.

The client stubs are generated at test time from the upstream
`../shared/fixtures/proto/keda-externalscaler.proto` (grpc_tools.protoc into
a temporary directory); without it the suite is skipped. The server is
`proxy_tool_scaler` (built by `make SAN=1 tools`; override with
ZW_TOOL_SCALER), the scaler on its own with test controls standing in for
the proxy's data path (see proxy/tests/tool_scaler.c).
"""

import importlib.util
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.environ.get("ZW_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("ZW_SHARED") or os.path.join(ROOT, "..", "shared")
PROTO = os.path.join(SHARED, "fixtures", "proto", "keda-externalscaler.proto")
TOOL = os.environ.get("ZW_TOOL_SCALER") or os.path.join(
    ROOT, "build", "san", "test", "proxy_tool_scaler")

grpc = pytest.importorskip("grpc")

# Generous sanity bounds: these are not latency assertions (see bench/).
PUSH_BOUND_S = 2.0


def _load_stubs():
    if not os.path.exists(PROTO):
        pytest.skip("upstream .proto absent: %s (../shared missing?)" % PROTO)
    try:
        from grpc_tools import protoc
    except ImportError:
        pytest.skip("grpc_tools (python3-grpc-tools) not installed")
    out = tempfile.mkdtemp(prefix="zw-proto-")
    src = os.path.join(out, "keda_externalscaler.proto")
    shutil.copyfile(PROTO, src)
    rc = protoc.main(["protoc", "-I" + out, "--python_out=" + out,
                      "--grpc_python_out=" + out, src])
    assert rc == 0, "grpc_tools.protoc failed on %s" % PROTO
    sys.path.insert(0, out)
    mods = []
    for name in ("keda_externalscaler_pb2", "keda_externalscaler_pb2_grpc"):
        spec = importlib.util.spec_from_file_location(name, os.path.join(out, name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        mods.append(mod)
    return mods


@pytest.fixture(scope="module")
def pb():
    pb2, pb2_grpc = _load_stubs()

    class Stubs:
        pass
    s = Stubs()
    s.pb2 = pb2
    s.grpc = pb2_grpc
    return s


def so(name, meta, ns="demo"):
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"scaleTargetRef": {"name": name},
                     "triggers": [{"type": "external-push",
                                   "metadata": dict({"scalerAddress": "zerowire:9090"}, **meta)}]}}


APP_META = {"service": "app", "port": "8080", "hosts": "app.example.com",
            "scalingMetric": "requestRate", "targetValue": "10", "window": "1m",
            "granularity": "1s"}
CONC_META = {"service": "busy", "port": "8080", "hosts": "busy.example.com",
             "scalingMetric": "concurrency", "targetValue": "5"}

OBJECTS = [
    so("app", APP_META),
    so("busy", CONC_META),
    {"apiVersion": "http.keda.sh/v1beta1", "kind": "InterceptorRoute",
     "metadata": {"name": "web", "namespace": "demo"},
     "spec": {"target": {"service": "web", "port": 8080},
              "rules": [{"hosts": ["web.example.com"]}],
              "scalingMetric": {"concurrency": {"targetValue": 3},
                                "requestRate": {"targetValue": 20, "window": "1m",
                                                "granularity": "1s"}}}},
    so("web-so", {"interceptorRoute": "web"}),
]


PEER_TOKEN = "test-peer-token-0123456789abcdef"


def token_file(tmp, token=PEER_TOKEN, name="peer-token"):
    """Writes (or replaces, atomically like the kubelet) a token file in tmp."""
    path = os.path.join(str(tmp), name)
    with open(path + ".tmp", "w") as f:
        f.write(token + "\n")
    os.replace(path + ".tmp", path)
    return path


class Tool:
    """One tool_scaler process. Unless token_path=False its peer token is the
    file `peer-token` in tmp (created with PEER_TOKEN when missing), shared by
    the tools of a test, and http() sends it."""

    def __init__(self, tmp, objects, extra=(), token_path=None):
        if not os.access(TOOL, os.X_OK):
            pytest.fail("%s not built: run `make SAN=1 tools`" % TOOL)
        if token_path is None:
            token_path = os.path.join(str(tmp), "peer-token")
            if not os.path.exists(token_path):
                token_file(tmp)
        self.token_path = token_path
        if token_path:
            extra = ["--token-file", token_path] + list(extra)
        self.dir = tempfile.mkdtemp(dir=tmp)
        objs = os.path.join(self.dir, "objects.json")
        with open(objs, "w") as f:
            json.dump(objects, f)
        self.ports_file = os.path.join(self.dir, "ports.json")
        self.log = open(os.path.join(self.dir, "stderr.log"), "w+")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen(
            [TOOL, "--objects", objs, "--ports-file", self.ports_file] + list(extra),
            stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        deadline = time.time() + 15
        while not os.path.exists(self.ports_file):
            if self.proc.poll() is not None or time.time() > deadline:
                self.log.seek(0)
                pytest.fail("tool_scaler did not start: " + self.log.read())
            time.sleep(0.02)
        with open(self.ports_file) as f:
            ports = json.load(f)
        self.grpc_port = ports["grpc"]
        self.admin_port = ports["admin"]
        extra = list(extra)
        host = extra[extra.index("--admin-host") + 1] if "--admin-host" in extra else "127.0.0.1"
        self.admin = "%s:%d" % (host, self.admin_port)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.grpc_port)
        self.stopped = False

    def token(self):
        with open(self.token_path) as f:
            return f.read().strip()

    def http(self, method, path, body=None, headers=None):
        """headers None: the peer token is sent (when the tool has one)."""
        if body is None or isinstance(body, str):
            data = None if body is None else body.encode()
        else:
            data = json.dumps(body).encode()
        if headers is None:
            headers = {"Authorization": "Bearer " + self.token()} if self.token_path else {}
        req = urllib.request.Request("http://%s%s" % (self.admin, path), data=data,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post(self, path, body=None):
        status, text = self.http("POST", path, body)
        assert status == 200, (path, status, text)
        return text

    def metric(self, name):
        status, text = self.http("GET", "/metrics")
        assert status == 200
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("metric %s missing:\n%s" % (name, text))

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("tool_scaler did not stop on SIGTERM")
        self.log.seek(0)
        err = self.log.read()
        assert "AddressSanitizer" not in err and "runtime error" not in err, err
        assert self.proc.returncode == 0, err


@pytest.fixture
def tool(tmp_path):
    t = Tool(str(tmp_path), OBJECTS, ["--heartbeat-ms", "1000"])
    yield t
    t.stop()


def wait_metric(t, name, want, what, timeout=5.0):
    deadline = time.time() + timeout
    while t.metric(name) != want:
        assert time.time() < deadline, what
        time.sleep(0.05)


def cancel_twenty(t, open_reader, gauge):
    """Opens 20 streams with open_reader(), reads their first message,
    cancels them all and checks that gauge drops to 0."""
    readers = [open_reader() for _ in range(20)]
    for r in readers:
        r.next()
    assert t.metric(gauge) == 20
    for r in readers:
        r.cancel()
    wait_metric(t, gauge, 0, "cancelled streams not released (%s)" % gauge)
    assert t.metric("zerowire_scaler_grpc_cancelled_total") >= 20


def ref(pb, name, meta=None, ns="demo"):
    return pb.pb2.ScaledObjectRef(name=name, namespace=ns, scalerMetadata=meta or {})


def stub(pb, t):
    return pb.grpc.ExternalScalerStub(t.channel)


class StreamReader:
    """Reads a StreamIsActive stream (or, with conv, any stream) on a thread
    into a queue of (arrival time, conv(message))."""

    def __init__(self, call, conv=lambda m: m.result):
        self.call = call
        self.conv = conv
        self.q = queue.Queue()
        self.error = None
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        try:
            for msg in self.call:
                self.q.put((time.monotonic(), self.conv(msg)))
        except grpc.RpcError as e:
            self.error = e

    def next(self, timeout=PUSH_BOUND_S):
        return self.q.get(timeout=timeout)

    def wait_for(self, value, timeout=PUSH_BOUND_S):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r within %.1fs" % (value, timeout))
            t, v = self.q.get(timeout=left)
            if v == value:
                return t

    def drain(self):
        while not self.q.empty():
            self.q.get_nowait()

    def cancel(self):
        self.call.cancel()
        self.th.join(timeout=5)


# ---- unary methods ----

def test_metric_spec_request_rate(pb, tool):
    resp = stub(pb, tool).GetMetricSpec(ref(pb, "app", APP_META))
    assert [(m.metricName, m.targetSize, m.targetSizeFloat) for m in resp.metricSpecs] == \
        [("demo-app-requestrate", 10, 10.0)]


def test_metric_spec_both_metrics_interceptorroute(pb, tool):
    resp = stub(pb, tool).GetMetricSpec(ref(pb, "web-so", {"interceptorRoute": "web"}))
    got = sorted((m.metricName, m.targetSize, m.targetSizeFloat) for m in resp.metricSpecs)
    assert got == [("demo-web-concurrency", 3, 3.0), ("demo-web-requestrate", 20, 20.0)]


def test_metric_spec_concurrency(pb, tool):
    resp = stub(pb, tool).GetMetricSpec(ref(pb, "busy", CONC_META))
    assert [(m.metricName, m.targetSizeFloat) for m in resp.metricSpecs] == \
        [("demo-busy-concurrency", 5.0)]


def test_is_active_and_get_metrics(pb, tool):
    s = stub(pb, tool)
    r = ref(pb, "web-so", {"interceptorRoute": "web"})
    assert s.IsActive(r).result is False
    vals = {v.metricName: v for v in s.GetMetrics(
        pb.pb2.GetMetricsRequest(scaledObjectRef=r)).metricValues}
    assert vals["demo-web-concurrency"].metricValueFloat == 0
    assert vals["demo-web-requestrate"].metricValueFloat == 0

    tool.post("/test/begin?target=demo/web&n=3")
    assert s.IsActive(r).result is True
    vals = {v.metricName: v for v in s.GetMetrics(
        pb.pb2.GetMetricsRequest(scaledObjectRef=r)).metricValues}
    assert vals["demo-web-concurrency"].metricValueFloat == 3
    assert vals["demo-web-concurrency"].metricValue == 3
    assert vals["demo-web-requestrate"].metricValueFloat > 0
    # KEDA's HPA name carries an "s<N>-" prefix: only that metric comes back.
    only = s.GetMetrics(pb.pb2.GetMetricsRequest(
        scaledObjectRef=r, metricName="s0-demo-web-concurrency")).metricValues
    assert [v.metricName for v in only] == ["demo-web-concurrency"]
    with pytest.raises(grpc.RpcError) as e:
        s.GetMetrics(pb.pb2.GetMetricsRequest(scaledObjectRef=r, metricName="nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND

    tool.post("/test/end?target=demo/web&n=3")
    vals = {v.metricName: v for v in s.GetMetrics(
        pb.pb2.GetMetricsRequest(scaledObjectRef=r)).metricValues}
    assert vals["demo-web-concurrency"].metricValueFloat == 0
    # Finished requests still count in the window: still active.
    assert s.IsActive(r).result is True


def test_small_rate_rounds_up(pb, tool):
    """One request is a tiny rate; the integer field must still read 1."""
    s = stub(pb, tool)
    tool.post("/test/begin?target=demo/app/0")
    tool.post("/test/end?target=demo/app/0")
    time.sleep(1.2)  # let it be sampled into the window, spread over > 1 s
    (v,) = s.GetMetrics(pb.pb2.GetMetricsRequest(
        scaledObjectRef=ref(pb, "app", APP_META))).metricValues
    assert v.metricName == "demo-app-requestrate"
    assert 0 < v.metricValueFloat < 1
    assert v.metricValue == 1
    assert s.IsActive(ref(pb, "app", APP_META)).result is True


def test_unknown_target_not_found(pb, tool):
    s = stub(pb, tool)
    for call in (lambda: s.IsActive(ref(pb, "ghost", {"service": "ghost"})),
                 lambda: s.GetMetricSpec(ref(pb, "x", {"interceptorRoute": "ghost"})),
                 lambda: s.GetMetrics(pb.pb2.GetMetricsRequest(
                     scaledObjectRef=ref(pb, "x", {"httpScaledObject": "ghost"})))):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert "ghost" in e.value.details() or "demo/" in e.value.details()


def test_unknown_method_unimplemented(pb, tool):
    s = stub(pb, tool)
    raw = tool.channel.unary_unary("/externalscaler.ExternalScaler/NoSuchMethod",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        raw(b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # The server keeps serving.
    assert s.IsActive(ref(pb, "app", APP_META)).result in (True, False)


def test_malformed_message(pb, tool):
    raw = tool.channel.unary_unary("/externalscaler.ExternalScaler/IsActive",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
    # Field 1 (string) claiming 127 bytes that are not there.
    with pytest.raises(grpc.RpcError) as e:
        raw(b"\x0a\x7fabc")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    raw_m = tool.channel.unary_unary("/externalscaler.ExternalScaler/GetMetrics",
                                     request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        raw_m(b"\xff\xff\xff\xff")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub(pb, tool).IsActive(ref(pb, "app", APP_META)).result in (True, False)


def test_oversized_message(pb, tool):
    raw = tool.channel.unary_unary("/externalscaler.ExternalScaler/IsActive",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        raw(b"\x0a" + b"\x80\x80\x80\x03" + b"x" * (6 * 1024 * 1024))
    assert e.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED,
                              grpc.StatusCode.INTERNAL)
    assert stub(pb, tool).IsActive(ref(pb, "app", APP_META)).result in (True, False)


# ---- StreamIsActive ----

def test_stream_initial_state_and_cold_push(pb, tool):
    r = StreamReader(stub(pb, tool).StreamIsActive(ref(pb, "app", APP_META)))
    _, first = r.next()
    assert first is False
    r.drain()
    t0 = time.monotonic()
    tool.post("/test/cold?target=demo/app/0")
    t1 = r.wait_for(True)
    print("cold -> true: %.1f ms (includes the admin HTTP call)" % ((t1 - t0) * 1000))
    assert t1 - t0 < PUSH_BOUND_S
    r.cancel()


def test_stream_pushes_on_first_request(pb, tool):
    r = StreamReader(stub(pb, tool).StreamIsActive(ref(pb, "busy", CONC_META)))
    assert r.next()[1] is False
    r.drain()
    t0 = time.monotonic()
    tool.post("/test/begin?target=demo/busy/0")
    assert r.wait_for(True) - t0 < PUSH_BOUND_S
    # The request finishes: concurrency target goes inactive... but the
    # window still holds the request, so the state stays true.
    tool.post("/test/end?target=demo/busy/0")
    r.cancel()


def test_stream_heartbeat(pb, tmp_path):
    t = Tool(str(tmp_path), OBJECTS, ["--heartbeat-ms", "200"])
    try:
        r = StreamReader(stub(pb, t).StreamIsActive(ref(pb, "app", APP_META)))
        msgs = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                msgs.append(r.next(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
        assert len(msgs) >= 4, msgs
        assert all(v is False for _, v in msgs)
        r.cancel()
    finally:
        t.stop()


def test_stream_waits_for_unknown_target(pb, tool):
    meta = {"service": "late", "port": "8080", "hosts": "late.example.com"}
    r = StreamReader(stub(pb, tool).StreamIsActive(ref(pb, "late", meta)))
    with pytest.raises(queue.Empty):
        r.next(timeout=0.7)
    assert r.error is None  # still open, no error
    tool.post("/test/objects", [so("late", meta)])
    _, v = r.next()
    assert v is False
    tool.post("/test/cold?target=demo/late/0")
    r.wait_for(True)
    r.cancel()


def test_stream_for_interceptorroute_linked(pb, tool):
    r = StreamReader(stub(pb, tool).StreamIsActive(ref(pb, "web-so", {"interceptorRoute": "web"})))
    assert r.next()[1] is False
    tool.post("/test/cold?target=demo/web")
    r.wait_for(True)
    r.cancel()


def test_client_cancel(pb, tool):
    s = stub(pb, tool)
    cancel_twenty(tool, lambda: StreamReader(s.StreamIsActive(ref(pb, "app", APP_META))),
                  "zerowire_scaler_streams")
    # A cancelled stream does not disturb the others.
    r = StreamReader(s.StreamIsActive(ref(pb, "app", APP_META)))
    r.next()
    tool.post("/test/cold?target=demo/app/0")
    r.wait_for(True)
    r.cancel()


def test_connection_drop_mid_stream(pb, tool):
    ch = grpc.insecure_channel("127.0.0.1:%d" % tool.grpc_port)
    r = StreamReader(pb.grpc.ExternalScalerStub(ch).StreamIsActive(ref(pb, "app", APP_META)))
    r.next()
    ch.close()
    wait_metric(tool, "zerowire_scaler_streams", 0, "stream of a closed connection not released")


# ---- StreamMetricSpec ----

def specs(resp):
    return [(m.metricName, m.targetSize, m.targetSizeFloat) for m in resp.metricSpecs]


def spec_reader(pb, t, name, meta):
    return StreamReader(stub(pb, t).StreamMetricSpec(ref(pb, name, meta)), conv=specs)


def web_route(rate, conc):
    return {"apiVersion": "http.keda.sh/v1beta1", "kind": "InterceptorRoute",
            "metadata": {"name": "web", "namespace": "demo"},
            "spec": {"target": {"service": "web", "port": 8080},
                     "rules": [{"hosts": ["web.example.com"]}],
                     "scalingMetric": {"concurrency": {"targetValue": conc},
                                       "requestRate": {"targetValue": rate, "window": "1m",
                                                       "granularity": "1s"}}}}


def test_spec_stream_first_message_then_quiet(pb, tmp_path):
    # Heartbeat 200 ms: keepalive is an HTTP/2 PING, never a repeated spec
    # (KEDA reconciles the ScaledObject on every message).
    t = Tool(str(tmp_path), OBJECTS, ["--heartbeat-ms", "200"])
    try:
        start = time.monotonic()
        r = spec_reader(pb, t, "app", APP_META)
        arrived, first = r.next()
        assert arrived - start < PUSH_BOUND_S
        assert first == [("demo-app-requestrate", 10, 10.0)]
        assert first == specs(stub(pb, t).GetMetricSpec(ref(pb, "app", APP_META)))
        with pytest.raises(queue.Empty):
            r.next(timeout=1.0)
        assert r.error is None
        assert t.metric("zerowire_scaler_spec_streams") == 1
        assert t.metric("zerowire_scaler_streams") == 0
        assert t.metric('zerowire_scaler_grpc_requests_total{method="StreamMetricSpec"}') == 1
        assert t.metric("zerowire_scaler_grpc_unimplemented_total") == 0
        r.cancel()
    finally:
        t.stop()


def test_spec_stream_update_on_target_change(pb, tool):
    r = spec_reader(pb, tool, "web-so", {"interceptorRoute": "web"})
    app = spec_reader(pb, tool, "app", APP_META)
    assert r.next()[1] == [("demo-web-requestrate", 20, 20.0), ("demo-web-concurrency", 3, 3.0)]
    app.next()
    # The route goes away: nothing is sent, the last answer stands.
    tool.post("/test/clear")
    with pytest.raises(queue.Empty):
        r.next(timeout=0.7)
    # It comes back with other targets: the new answer is pushed, and
    # GetMetricSpec agrees with it.
    objs = [o for o in OBJECTS if o["metadata"]["name"] != "web"] + [web_route(40, 7)]
    tool.post("/test/objects", objs)
    _, upd = r.next()
    assert upd == [("demo-web-requestrate", 40, 40.0), ("demo-web-concurrency", 7, 7.0)]
    assert upd == specs(stub(pb, tool).GetMetricSpec(ref(pb, "web-so", {"interceptorRoute": "web"})))
    # The ScaledObject "app" came back unchanged: nothing for its stream.
    with pytest.raises(queue.Empty):
        app.next(timeout=0.7)
    # A ScaledObject trigger's targetValue changes (fractional: float form
    # exact, integer form rounded up).
    tool.post("/test/clear")
    tool.post("/test/objects", [so("app", dict(APP_META, targetValue="2.5"))])
    _, upd = app.next()
    assert upd == [("demo-app-requestrate", 3, 2.5)]
    assert tool.metric("zerowire_scaler_spec_pushes_total") == 4
    r.cancel()
    app.cancel()


def test_spec_stream_waits_for_unknown_target(pb, tool):
    meta = {"service": "late", "port": "8080", "hosts": "late.example.com",
            "scalingMetric": "concurrency", "targetValue": "4"}
    r = spec_reader(pb, tool, "late", meta)
    with pytest.raises(queue.Empty):
        r.next(timeout=0.7)
    assert r.error is None  # still open: KEDA keeps its GetMetricSpec answer
    tool.post("/test/objects", [so("late", meta)])
    assert r.next()[1] == [("demo-late-concurrency", 4, 4.0)]
    r.cancel()


def test_spec_stream_limit(pb, tmp_path):
    # The gRPC listener's per-connection stream limit (SETTINGS
    # MAX_CONCURRENT_STREAMS) bounds StreamMetricSpec like StreamIsActive:
    # a fifth stream waits until one of four ends.
    t = Tool(str(tmp_path), OBJECTS, ["--max-streams", "4"])
    try:
        readers = [spec_reader(pb, t, "app", APP_META) for _ in range(4)]
        for r in readers:
            r.next()
        extra = spec_reader(pb, t, "busy", CONC_META)
        with pytest.raises(queue.Empty):
            extra.next(timeout=1.0)
        assert t.metric("zerowire_scaler_spec_streams") == 4
        readers[0].cancel()
        assert extra.next()[1] == [("demo-busy-concurrency", 5, 5.0)]
        for r in readers[1:] + [extra]:
            r.cancel()
    finally:
        t.stop()


def test_spec_stream_cancel(pb, tool):
    s = stub(pb, tool)
    active = StreamReader(s.StreamIsActive(ref(pb, "app", APP_META)))
    active.next()
    cancel_twenty(tool, lambda: spec_reader(pb, tool, "app", APP_META),
                  "zerowire_scaler_spec_streams")
    # The StreamIsActive stream is untouched and a later change still
    # reaches a new spec stream.
    assert tool.metric("zerowire_scaler_streams") == 1
    tool.post("/test/cold?target=demo/app/0")
    active.wait_for(True)
    r = spec_reader(pb, tool, "app", APP_META)
    r.next()
    tool.post("/test/clear")
    tool.post("/test/objects", [so("app", dict(APP_META, targetValue="12"))])
    assert r.next()[1] == [("demo-app-requestrate", 12, 12.0)]
    r.cancel()
    active.cancel()


def test_spec_stream_connection_drop(pb, tool):
    ch = grpc.insecure_channel("127.0.0.1:%d" % tool.grpc_port)
    r = StreamReader(pb.grpc.ExternalScalerStub(ch).StreamMetricSpec(ref(pb, "app", APP_META)),
                     conv=specs)
    r.next()
    ch.close()
    wait_metric(tool, "zerowire_scaler_spec_streams", 0, "spec stream of a closed connection not released")


# ---- admin: metrics-api and /metrics ----

def test_metrics_api_json(pb, tool):
    tool.post("/test/begin?target=demo/web&n=2")
    status, text = tool.http("GET", "/metrics-api/demo/web-so?interceptorRoute=web")
    assert status == 200, text
    doc = json.loads(text)
    assert doc["target"] == "demo/web"
    assert doc["concurrency"] == 2
    assert doc["requestRate"] > 0
    assert doc["active"] is True
    status, text = tool.http("GET", "/metrics-api/demo/app")
    assert status == 200 and json.loads(text)["target"] == "demo/app/0"
    status, text = tool.http("GET", "/metrics-api/demo/ghost")
    assert status == 404 and "ghost" in json.loads(text)["error"]
    status, _ = tool.http("GET", "/metrics-api/onlyone")
    assert status == 400
    status, _ = tool.http("POST", "/metrics-api/demo/app")
    assert status == 405


def test_prometheus_lines(pb, tool):
    tool.post("/test/begin?target=demo/busy/0&n=4")
    stub(pb, tool).IsActive(ref(pb, "busy", CONC_META))
    status, text = tool.http("GET", "/metrics")
    assert status == 200
    assert 'zerowire_scaler_concurrency{namespace="demo",target="busy/0"} 4' in text
    assert 'zerowire_scaler_active{namespace="demo",target="busy/0"} 1' in text
    assert 'zerowire_scaler_grpc_requests_total{method="IsActive"} 1' in text


# ---- several replicas ----

def _two(tmp_path):
    a = Tool(str(tmp_path), OBJECTS, ["--peer-poll-ms", "100"])
    b = Tool(str(tmp_path), OBJECTS, ["--peer-poll-ms", "100"])
    peers = [a.admin, b.admin]  # each list includes the replica itself
    a.post("/test/peers", peers)
    b.post("/test/peers", peers)
    return a, b


def _metrics_api(t, path="/metrics-api/demo/app"):
    status, text = t.http("GET", path)
    assert status == 200, text
    return json.loads(text)


def _eventually(fn, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        last = fn()
        if last:
            return last
        assert time.time() < deadline, "condition not reached"
        time.sleep(0.05)


def test_peers_cold_on_other_replica_pushes(pb, tmp_path):
    a, b = _two(tmp_path)
    try:
        r = StreamReader(stub(pb, a).StreamIsActive(ref(pb, "app", APP_META)))
        assert r.next()[1] is False
        r.drain()
        t0 = time.monotonic()
        b.post("/test/cold?target=demo/app/0")  # the cold request hits replica B
        t1 = r.wait_for(True)
        print("cold on B -> true on A: %.1f ms" % ((t1 - t0) * 1000))
        assert t1 - t0 < PUSH_BOUND_S
        assert _eventually(lambda: a.metric("zerowire_scaler_peer_cold_received_total") >= 1)
        assert b.metric("zerowire_scaler_peer_cold_sent_total") >= 1
        # IsActive on A is true right after the cold signal from B.
        assert stub(pb, a).IsActive(ref(pb, "app", APP_META)).result is True
        r.cancel()
    finally:
        a.stop()
        b.stop()


def test_peers_sum_and_restart(pb, tmp_path):
    a, b = _two(tmp_path)
    b2 = None
    try:
        a.post("/test/begin?target=demo/app/0&n=2")
        b.post("/test/begin?target=demo/app/0&n=4")
        # Any replica reports the sum over live replicas.
        _eventually(lambda: _metrics_api(a)["concurrency"] == 6)
        _eventually(lambda: _metrics_api(b)["concurrency"] == 6)
        _eventually(lambda: _metrics_api(a)["requestsInWindow"] == 6)
        vals = stub(pb, a).GetMetrics(pb.pb2.GetMetricsRequest(
            scaledObjectRef=ref(pb, "app", APP_META))).metricValues
        assert vals[0].metricValueFloat > 0
        assert a.metric("zerowire_scaler_peers") == 1  # itself excluded
        assert a.metric("zerowire_scaler_peers_live") == 1

        # B restarts on the same address: its in-flight requests are gone,
        # its counter starts again; A must not go negative or double count.
        port = b.admin_port
        b.stop()
        _eventually(lambda: _metrics_api(a)["concurrency"] == 2)
        assert _eventually(lambda: a.metric("zerowire_scaler_peer_poll_failures_total") >= 1)
        assert _metrics_api(a)["requestsInWindow"] == 6
        b2 = Tool(str(tmp_path), OBJECTS, ["--peer-poll-ms", "100", "--admin-port", str(port)])
        b2.post("/test/peers", [a.admin, b2.admin])
        b2.post("/test/begin?target=demo/app/0")
        _eventually(lambda: _metrics_api(a)["concurrency"] == 3)
        _eventually(lambda: _metrics_api(a)["requestsInWindow"] == 7)
        time.sleep(0.5)  # several more polls: no double counting
        assert _metrics_api(a)["requestsInWindow"] == 7
        assert _metrics_api(a)["concurrency"] == 3
    finally:
        a.stop()
        b.stop()
        if b2:
            b2.stop()


def _free_port(host):
    import socket
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _slice(ips, port):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "zerowire-peers-abc", "namespace": "zw",
                         "labels": {"kubernetes.io/service-name": "zerowire-peers"}},
            "addressType": "IPv4",
            "ports": [{"name": "admin", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}


def test_peers_from_endpoint_store(pb, tmp_path):
    """Peers found through the EndpointSlices of the proxy's own headless
    Service (as in a cluster: same admin port, one IP per pod)."""
    port = _free_port("127.0.0.2")
    a = Tool(str(tmp_path), OBJECTS,
             ["--peer-poll-ms", "100", "--peer-service", "zw/zerowire-peers",
              "--admin-host", "127.0.0.2", "--admin-port", str(port)])
    b = Tool(str(tmp_path), OBJECTS,
             ["--peer-poll-ms", "100", "--peer-service", "zw/zerowire-peers",
              "--admin-host", "127.0.0.3", "--admin-port", str(port)])
    try:
        for t in (a, b):
            t.post("/test/slice", _slice(["127.0.0.2", "127.0.0.3"], port))
        r = StreamReader(stub(pb, a).StreamIsActive(ref(pb, "app", APP_META)))
        assert r.next()[1] is False
        b.post("/test/cold?target=demo/app/0")
        r.wait_for(True)
        b.post("/test/begin?target=demo/app/0&n=5")
        _eventually(lambda: _metrics_api(a)["concurrency"] == 5)
        assert a.metric("zerowire_scaler_peers") == 1
        # B leaves the Service: A stops counting it at once.
        a.post("/test/slice", _slice(["127.0.0.2"], port))
        _eventually(lambda: _metrics_api(a)["concurrency"] == 0)
        assert a.metric("zerowire_scaler_peers") == 0
        r.cancel()
    finally:
        a.stop()
        b.stop()


# ---- the real zerowire-proxy: data path -> stats -> scaler ----

PROXY = os.environ.get("ZW_PROXY_BIN") or os.path.join(ROOT, "build", "san", "bin",
                                                       "zerowire-proxy")


def _port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_proxy_cold_request_pushes(pb, tmp_path):
    """A request for a target without endpoints, through zerowire-proxy's
    data path, reaches KEDA's stream as `true`; the held request counts as
    concurrency and leaves when the client goes away."""
    import socket
    if not os.access(PROXY, os.X_OK):
        pytest.fail("%s not built: run `make SAN=1`" % PROXY)
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        so("app", APP_META), so("busy", CONC_META)]}))
    http, admin, grpc_port = _port(), _port(), _port()
    log = open(tmp_path / "proxy.log", "w+")
    proc = subprocess.Popen(
        [PROXY, "--targets-file", str(targets), "--workers", "2",
         "--listen", "127.0.0.1:%d" % http, "--admin-listen", "127.0.0.1:%d" % admin,
         "--scaler-listen", "127.0.0.1:%d" % grpc_port,
         "--shutdown-delay", "0s", "--drain-timeout", "2s"],
        stdout=subprocess.DEVNULL, stderr=log)
    ch = None
    try:
        deadline = time.time() + 15
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics-api/demo/busy" % admin,
                                            timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert proc.poll() is None and time.time() < deadline, "proxy did not start"
            time.sleep(0.05)
        ch = grpc.insecure_channel("127.0.0.1:%d" % grpc_port)
        s = pb.grpc.ExternalScalerStub(ch)
        r = StreamReader(s.StreamIsActive(ref(pb, "busy", CONC_META)))
        assert r.next()[1] is False
        r.drain()
        c = socket.create_connection(("127.0.0.1", http))
        t0 = time.monotonic()
        c.sendall(b"GET / HTTP/1.1\r\nHost: busy.example.com\r\n\r\n")
        t1 = r.wait_for(True)
        print("proxy: cold request -> true: %.2f ms" % ((t1 - t0) * 1000))
        assert t1 - t0 < PUSH_BOUND_S
        assert s.IsActive(ref(pb, "busy", CONC_META)).result is True
        (v,) = s.GetMetrics(pb.pb2.GetMetricsRequest(
            scaledObjectRef=ref(pb, "busy", CONC_META))).metricValues
        assert (v.metricName, v.metricValueFloat, v.metricValue) == \
            ("demo-busy-concurrency", 1.0, 1)
        c.close()  # the held request is dropped: concurrency back to 0
        _eventually(lambda: s.GetMetrics(pb.pb2.GetMetricsRequest(
            scaledObjectRef=ref(pb, "busy", CONC_META))).metricValues[0].metricValueFloat == 0)
        r.cancel()
    finally:
        if ch:
            ch.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        err = log.read()
        assert "AddressSanitizer" not in err and "runtime error" not in err, err
        assert proc.returncode == 0, err
