"""KEDA end to end on the real kube-apiserver: zerowire-proxy (sanitizer
build, `--kubeconfig`), the node stand-in (Deployment replicas -> backend
processes, EndpointSlices) and the KEDA stand-in (external-push through the
real gRPC protocol, stubs compiled from ../shared/fixtures/proto).

Per scenario: a Deployment at 0 replicas, its Service and a ScaledObject
whose external-push trigger carries zerowire routing metadata; the
ScaledObject's scalerAddress (a cluster DNS name) is mapped by the KEDA
stand-in to the local proxy's scaler port.
  1. a cold request is held, StreamIsActive says `true` at once, the stand-in
     scales to 1, the backend starts, the request is answered by it with
     X-Zerowire-Cold-Start: true;
  2. a paced load of RATE req/s scales out to min(ceil(RATE / TARGET), MAX);
  3. idle: back to 0 after the request window drains and the cooldown passes.
The same with two proxy replicas (told about each other with --peers): KEDA's
stream on replica A, every request sent to replica B.
Also: a StreamIsActive opened before its ScaledObject exists answers as soon
as the ScaledObject appears.

Tolerance of the scale-out (why the exact count is asserted): the proxy reads
requests over a WINDOW_S window kept in WINDOW_S / GRAN_S buckets; the bucket
being filled is partial and with two replicas the peer counts arrive every
0.5 s, so the rate KEDA reads lies in [(WINDOW_S - GRAN_S - 0.5) / WINDOW_S,
1] x the offered rate = [0.8, 1.0] x 26 = [20.8, 26] req/s once the window is
full of load, and the pacing loop is held within 5 % of 26 (asserted). Every
reading in (20, 30] gives ceil(x / 10) = 3, so the decisions must reach 3 and
never exceed it. The HPA step itself is the stand-in's (no tolerance or
stabilization window), polled every POLL_S.
"""

import itertools
import json
import math
import random
import threading
import time

import pytest

from harness import util
from harness.keda import KedaStandin, ProtoMissing, load_proto
from harness.node import NodeStandin
from harness.proxyproc import ProxyPorts, ProxyProc, peer_ports, peer_service, stop_all

try:
    pb2, pb2_grpc = load_proto()
except ProtoMissing as e:  # the only allowed skip: upstream .proto absent
    pytest.skip(str(e), allow_module_level=True)

import grpc  # noqa: E402

SCALER_ADDR = "zerowire-scaler.zerowire.svc.cluster.local:9090"
HOST = "web.e2e.test"
RATE = 26.0  # offered load, req/s
LOAD_S = 10.0  # load duration
TARGET = 10  # requestRate targetValue
MAX = 5  # maxReplicaCount
WINDOW_S = 5.0
GRAN_S = 0.5
POLL_S = 1  # pollingInterval
COOLDOWN_S = 3  # cooldownPeriod
STARTUP_MS = 800  # pod start-up delay (the held request waits at least this)
EXPECTED = min(math.ceil(RATE / TARGET), MAX)
# Bounds for things that take milliseconds when the machine is idle; generous
# because the proxy is the ASan build on a shared 2-core machine. Latency
# itself is measured by bench/keda_push.py.
PUSH_BOUND_S = 0.5  # cold request -> stream `true`
COLD_BOUND_S = 15.0  # cold request -> answer

APP = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  annotations: {{zerowire.test/startup-delay-ms: "{startup}"}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        image: example/web
        ports: [{{name: http, containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{app: {name}}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
"""

SCALEDOBJECT = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: {name}, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: {name}}}
  pollingInterval: {poll}
  cooldownPeriod: {cooldown}
  minReplicaCount: 0
  maxReplicaCount: {max}
  triggers:
  - type: external-push
    metadata:
      scalerAddress: {addr}
      service: {name}
      port: "80"
      hosts: {host}
      scalingMetric: requestRate
      targetValue: "{target}"
      window: {window}
      granularity: {gran}
"""


def manifests(ns, name="web", host=HOST, scaledobject=True):
    text = APP.format(ns=ns, name=name, startup=STARTUP_MS)
    if scaledobject:
        text += "---\n" + scaledobject_yaml(ns, name, host)
    return text


def scaledobject_yaml(ns, name, host):
    return SCALEDOBJECT.format(ns=ns, name=name, poll=POLL_S, cooldown=COOLDOWN_S, max=MAX, addr=SCALER_ADDR,
                               host=host, target=TARGET, window="%gs" % WINDOW_S, gran="%dms" % (GRAN_S * 1000))


@pytest.fixture
def ns(cluster):
    name = cluster.create_namespace("kedae2e")
    yield name
    cluster.delete_namespace(name)


def log(msg):
    print("[keda-e2e %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---- load -------------------------------------------------------------------------------

def paced_load(proxy, host, rate, duration, workers=8):
    """Sends int(rate * duration) GETs, request i due at t0 + i / rate, over
    `workers` keep-alive connections. Returns (t0, [(sent, status, pod)])."""
    n = int(rate * duration)
    slots = itertools.count()
    results = []
    lock = threading.Lock()
    t0 = time.monotonic() + 0.05

    def worker():
        conn = proxy.connection(timeout=10)
        try:
            while True:
                i = next(slots)
                if i >= n:
                    return
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sent = time.monotonic()
                try:
                    st, hdr, _ = proxy.get("/load?i=%d" % i, host, conn=conn)
                    pod = hdr.get("x-backend-pod")
                except OSError as e:
                    st, pod = 0, repr(e)
                    conn.close()
                    conn = proxy.connection(timeout=10)
                with lock:
                    results.append((sent, st, pod))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, name="load-%d" % k, daemon=True) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 30)
    assert not any(t.is_alive() for t in threads), "load workers did not finish"
    results.sort()
    return t0, results


# ---- one scenario, one or two proxy replicas ----------------------------------------------

def cold_scale_idle(cluster, ns, tmp_path, replicas, peers=None):
    """replicas: 1 (KEDA and traffic on the same proxy) or 2 (KEDA's stream on
    A, traffic on B). peers: "static" (--peers A,B) or "service" (the
    replicas' headless Service and EndpointSlice in the API server,
    --peers-service)."""
    peer_args = []
    if replicas == 1:
        ports = [ProxyPorts.pick()]
    elif peers == "static":
        ports = [ProxyPorts.pick() for _ in range(replicas)]
        peer_args = ["--peers", ",".join(p.admin_addr for p in ports)]
    else:
        ports = peer_ports(replicas)
        peer_args = ["--peers-service", peer_service(cluster, ns, ports)]
    if peer_args:
        # Replicas share the peer token (the chart's Secret, mounted as a file).
        token = tmp_path / "peer-token"
        token.write_text("e2e-peer-token-%d\n" % random.randrange(1 << 60))
        peer_args += ["--peer-token-file", str(token)]
    proxies = [ProxyProc(cluster, tmp_path, p, namespaces=[ns], args=peer_args, name="proxy-%s" % "AB"[i])
               for i, p in enumerate(ports)]
    scaler, front = proxies[0], proxies[-1]
    key = "%s/web/0" % ns
    node = NodeStandin(cluster, namespaces=[ns], startup_delay_ms=STARTUP_MS)
    keda = KedaStandin(cluster, namespaces=[ns], resolve={SCALER_ADDR: scaler.ports.scaler_addr})
    timings = {}
    try:
        for p in proxies:
            p.start()
        node.start()
        keda.start()
        cluster.apply(manifests(ns))

        # Both replicas know the target; KEDA's stream on A answers (the
        # initial state, false: nothing has been asked yet).
        for p in proxies:
            util.wait_for(lambda p=p: key in p.queue(), 20, what="%s knows %s" % (p.name, key))
            if replicas > 1:  # every replica sees the others (itself excluded)
                util.wait_for(lambda p=p: p.metric("zerowire_scaler_peers_live") == replicas - 1, 10,
                              what="%s sees its peers" % p.name)
        first = keda.wait_event(lambda e: e["type"] == "stream", 20, "first StreamIsActive message")
        assert first["value"] is False, first
        assert keda.replicas(ns, "web") == 0

        # 1. Cold request: held on the front replica, stream `true` on A.
        box = {}
        t_send = time.monotonic()
        th = threading.Thread(target=lambda: box.setdefault("r", front.get("/cold", HOST, timeout=COLD_BOUND_S)))
        th.start()
        push = keda.wait_event(lambda e: e["type"] == "stream" and e["value"] and e["mono"] >= t_send,
                               COLD_BOUND_S, "stream true after the cold request")
        timings["push_s"] = push["mono"] - t_send
        assert timings["push_s"] < PUSH_BOUND_S, "stream true %.3fs after the request" % timings["push_s"]
        act = keda.wait_event(lambda e: e["type"] == "scale" and e["frm"] == 0 and e["to"] == 1
                              and e["mono"] >= t_send, 5, "activation to 1 replica")
        assert act["reason"].startswith("activate"), act
        th.join(COLD_BOUND_S + 5)
        assert "r" in box, "cold request not answered within %.0fs" % COLD_BOUND_S
        timings["cold_s"] = time.monotonic() - t_send
        st, hdr, body = box["r"]
        pods = {p.name for p in node.pods(ns, "web")}
        assert st == 200, (st, body[:300])
        assert hdr.get("x-zerowire-cold-start") == "true", hdr
        assert hdr.get("x-backend-pod") in pods and body.startswith(b"pod=%s " % hdr["x-backend-pod"].encode()), \
            (hdr, body[:200], pods)
        assert b"path=/cold" in body, body[:200]
        # It was held: the backend only listens after its start-up delay.
        assert timings["cold_s"] >= STARTUP_MS / 1000.0, timings
        assert front.metric("zerowire_scaler_wakes_total") >= 1
        if replicas > 1:
            assert scaler.metric("zerowire_scaler_peer_cold_received_total") >= 1
            assert front.metric("zerowire_scaler_peer_cold_sent_total") >= 1
            assert scaler.queue()[key]["held"] == 0  # A never held anything itself
        st, hdr, _ = front.get("/warm", HOST)
        assert st == 200 and hdr.get("x-zerowire-cold-start") == "false", (st, hdr)

        # 2. Sustained load: decisions reach EXPECTED, never more.
        # Every replica answers with the sum over replicas (metrics-api JSON,
        # as KEDA's metrics-api trigger reads it), sampled once the window is
        # full of load.
        sampled = {}

        def sample():
            for p in proxies:
                st, body = p.admin_get("/metrics-api/%s/web" % ns)
                sampled[p.name] = json.loads(body)["requestRate"] if st == 200 else (st, body)
        sampler = threading.Timer(WINDOW_S + 2, sample)
        sampler.start()
        t0, res = paced_load(front, HOST, RATE, LOAD_S)
        sampler.join(5)
        t_end = res[-1][0]
        for name, rate in sampled.items():
            assert isinstance(rate, (int, float)) and 0.75 * RATE <= rate <= 1.1 * RATE, \
                "%s metrics-api requestRate %r during %.0f req/s on %s" % (name, rate, RATE, front.name)
        assert len(sampled) == replicas, sampled
        bad = [r for r in res if r[1] != 200]
        assert not bad, "%d of %d load requests failed: %r" % (len(bad), len(res), bad[:5])
        achieved = (len(res) - 1) / (res[-1][0] - res[0][0])
        assert abs(achieved - RATE) <= 0.05 * RATE, "offered %.1f req/s instead of %.1f" % (achieved, RATE)
        # Decisions taken up to one poll after the load (the window is still full).
        util.wait_for(lambda: time.monotonic() >= t_end + POLL_S + 0.5, POLL_S + 2)
        ups = [e for e in keda.events if e["type"] == "scale" and t0 <= e["mono"] <= t_end + POLL_S + 0.5]
        peak = max([e["to"] for e in ups] + [1])
        reached = next((e for e in ups if e["to"] == EXPECTED), None)
        readings = [m["value"] for e in keda.events if e["type"] == "poll" and t0 <= e["mono"] <= t_end
                    for m in e["metrics"]]
        log("%d-replica load: %.1f req/s offered, readings %s, decisions %s" % (
            replicas, achieved, ["%.1f" % v for v in readings], [(round(e["mono"] - t0, 1), e["to"]) for e in ups]))
        assert peak == EXPECTED, "scale-out peaked at %d, expected %d (readings %r)" % (peak, EXPECTED, readings)
        timings["scale_out_s"] = reached["mono"] - t0
        served_by = {r[2] for r in res}
        assert len(served_by) >= 2, "load served by %r only" % served_by

        # 3. Idle: zero after the window drains and the cooldown passes.
        limit = WINDOW_S + COOLDOWN_S + 2 * POLL_S + 10
        zero = keda.wait_event(lambda e: e["type"] == "scale" and e["to"] == 0 and e["mono"] > t_end, limit,
                               "scale to zero after the load")
        timings["to_zero_s"] = zero["mono"] - t_end
        assert zero["reason"].startswith("cooldown"), zero
        # Activity is reported while requests remain in the window (at least
        # WINDOW_S - GRAN_S), then the cooldown runs; one poll of slack.
        floor = WINDOW_S - GRAN_S + COOLDOWN_S - POLL_S
        assert timings["to_zero_s"] >= floor, "zero %.1fs after the load (< %.1fs)" % (timings["to_zero_s"], floor)
        node.wait_ready(ns, "web", 0, timeout=15)
        q = scaler.queue()[key]
        assert q["held"] == 0, q
        log("%d-replica timings: %s" % (replicas, {k: round(v, 3) for k, v in timings.items()}))
        return timings
    finally:
        keda.stop()
        node.stop()
        stop_all(proxies)


def test_one_replica_cold_start_scale_out_and_idle(cluster, ns, tmp_path):
    cold_scale_idle(cluster, ns, tmp_path, 1)


@pytest.mark.parametrize("peers", ["service", "static"])
def test_two_replicas_stream_on_a_traffic_on_b(cluster, ns, tmp_path, peers):
    cold_scale_idle(cluster, ns, tmp_path, 2, peers)


# ---- a stream opened before its ScaledObject exists ---------------------------------------------

def test_stream_opened_before_the_scaledobject(cluster, ns, tmp_path):
    name, host = "late", "late.e2e.test"
    key = "%s/%s/0" % (ns, name)
    proxy = ProxyProc(cluster, tmp_path, namespaces=[ns], name="proxy")
    node = NodeStandin(cluster, namespaces=[ns], startup_delay_ms=STARTUP_MS)
    channel = None
    call = None
    try:
        proxy.start()
        node.start()
        cluster.apply(manifests(ns, name=name, host=host, scaledobject=False))
        channel = grpc.insecure_channel(proxy.ports.scaler_addr)
        stub = pb2_grpc.ExternalScalerStub(channel)
        meta = {"scalerAddress": SCALER_ADDR, "service": name, "port": "80", "hosts": host,
                "scalingMetric": "requestRate", "targetValue": str(TARGET)}
        ref = pb2.ScaledObjectRef(name=name, namespace=ns, scalerMetadata=meta)

        # Unary calls for the unknown target fail; the stream waits.
        with pytest.raises(grpc.RpcError) as ei:
            stub.IsActive(ref, timeout=5)
        assert ei.value.code() == grpc.StatusCode.NOT_FOUND, ei.value

        msgs = []
        cond = threading.Condition()
        call = stub.StreamIsActive(ref)

        def reader():
            try:
                for m in call:
                    with cond:
                        msgs.append((time.monotonic(), bool(m.result)))
                        cond.notify_all()
            except grpc.RpcError as e:
                with cond:
                    msgs.append((time.monotonic(), e.code()))
                    cond.notify_all()

        rt = threading.Thread(target=reader, daemon=True)
        rt.start()

        def wait_msg(pred, timeout, what):
            deadline = time.monotonic() + timeout
            with cond:
                while True:
                    m = next((m for m in msgs if pred(m)), None)
                    if m:
                        return m
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("timed out waiting for %s (stream so far: %r)" % (what, msgs))
                    cond.wait(left)

        time.sleep(2.0)  # two heartbeat periods: nothing may come for an unknown target
        assert msgs == [] and call.is_active(), msgs

        t_apply = time.monotonic()
        cluster.apply(scaledobject_yaml(ns, name, host))
        first = wait_msg(lambda m: True, 15, "first stream message after the ScaledObject appeared")
        assert first[1] is False, first  # idle target: the current state
        log("stream answered %.3fs after the ScaledObject was created" % (first[0] - t_apply))
        util.wait_for(lambda: key in proxy.queue(), 10, what="proxy knows %s" % key)

        # The now-known target wakes through the same stream.
        box = {}
        t_send = time.monotonic()
        th = threading.Thread(target=lambda: box.setdefault("r", proxy.get("/x", host, timeout=COLD_BOUND_S)))
        th.start()
        push = wait_msg(lambda m: m[0] >= t_send and m[1] is True, 5, "stream true after the cold request")
        assert push[0] - t_send < PUSH_BOUND_S, push[0] - t_send
        # As KEDA would on `true`: scale to 1; the held request is answered.
        cluster.api("PATCH", "/apis/apps/v1/namespaces/%s/deployments/%s/scale" % (ns, name),
                    {"spec": {"replicas": 1}}, content_type="application/merge-patch+json")
        th.join(COLD_BOUND_S + 5)
        assert "r" in box, "held request not answered"
        st, hdr, body = box["r"]
        assert st == 200 and hdr.get("x-zerowire-cold-start") == "true" and body.startswith(b"pod="), (st, hdr, body)
        assert call.is_active()
    finally:
        if call is not None:
            call.cancel()
        if channel is not None:
            channel.close()
        node.stop()
        stop_all([proxy])
