"""The KEDA stand-in against a tiny fake external-push scaler (Python grpc):
activation from the stream, HPA arithmetic from GetMetrics, clamping,
cooldown to zero, stream reconnect."""

import queue
import threading
import time
from concurrent import futures

import pytest

from harness.keda import KedaStandin, ProtoMissing, load_proto

try:
    pb2, pb2_grpc = load_proto()
except ProtoMissing as e:  # the only allowed skip: upstream .proto absent
    pytest.skip(str(e), allow_module_level=True)

import grpc  # noqa: E402


class FakeScaler(pb2_grpc.ExternalScalerServicer):
    """State set by the test; StreamIsActive pushes whatever push() queues."""

    def __init__(self):
        self.active = False
        self.value = 0.0
        self.target = 1.0
        self.refs = []
        self.streams = 0
        self.queues = []
        self.lock = threading.Lock()

    def push(self, v):
        with self.lock:
            for q in self.queues:
                q.put(v)

    def IsActive(self, req, ctx):
        self.refs.append(("IsActive", req.name, req.namespace, dict(req.scalerMetadata)))
        return pb2.IsActiveResponse(result=self.active)

    def StreamIsActive(self, req, ctx):
        self.refs.append(("StreamIsActive", req.name, req.namespace, dict(req.scalerMetadata)))
        q = queue.Queue()
        with self.lock:
            self.streams += 1
            self.queues.append(q)
        try:
            while ctx.is_active():
                try:
                    v = q.get(timeout=0.2)
                except queue.Empty:
                    continue
                yield pb2.IsActiveResponse(result=v)
        finally:
            with self.lock:
                self.queues.remove(q)

    def GetMetricSpec(self, req, ctx):
        return pb2.GetMetricSpecResponse(metricSpecs=[pb2.MetricSpec(
            metricName="http-requests", targetSize=int(self.target), targetSizeFloat=self.target)])

    def GetMetrics(self, req, ctx):
        assert req.metricName == "http-requests"
        return pb2.GetMetricsResponse(metricValues=[pb2.MetricValue(
            metricName="http-requests", metricValue=int(self.value), metricValueFloat=self.value)])


def serve(fake, port=0):
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb2_grpc.add_ExternalScalerServicer_to_server(fake, srv)
    port = srv.add_insecure_port("127.0.0.1:%d" % port)
    srv.start()
    return srv, port


APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: example/web}}]}}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: web-so, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: web}}
  pollingInterval: 1
  cooldownPeriod: 3
  minReplicaCount: 0
  maxReplicaCount: 5
  triggers:
  - type: external-push
    metadata:
      scalerAddress: zerowire-scaler.zerowire.svc.cluster.local:9090
      hosts: web.example.com
      targetValue: "2"
"""


@pytest.fixture
def ns(cluster):
    name = cluster.create_namespace("keda")
    yield name
    cluster.delete_namespace(name)


def test_activation_hpa_cooldown_reconnect(cluster, ns):
    fake = FakeScaler()
    fake.target = 2.0
    srv, port = serve(fake)
    addr = "127.0.0.1:%d" % port
    keda = KedaStandin(cluster, namespaces=[ns], resolve={"zerowire-scaler.zerowire.svc.cluster.local:9090": addr})
    try:
        keda.start()
        cluster.apply(APP.format(ns=ns))
        keda.wait_event(lambda e: e["type"] == "stream-open", 10, "stream opened")
        want = ("StreamIsActive", "web-so", ns,
                {"scalerAddress": "zerowire-scaler.zerowire.svc.cluster.local:9090", "hosts": "web.example.com",
                 "targetValue": "2"})
        cluster.wait_for(lambda: want in fake.refs, 5, what="StreamIsActive with the trigger's ScaledObjectRef")
        time.sleep(1.5)
        assert keda.replicas(ns, "web-so") == 0  # inactive: stays at zero

        # A streamed `true` at zero activates to max(min, 1) at once.
        fake.active = True
        fake.value = 1.0
        fake.push(True)
        ev = keda.wait_event(lambda e: e["type"] == "scale" and e["to"] == 1, 5, "activation")
        st = keda.wait_event(lambda e: e["type"] == "stream" and e["value"], 1)
        assert ev["mono"] - st["mono"] < 0.5 and "stream" in ev["reason"]
        assert keda.replicas(ns, "web-so") == 1

        # HPA: ceil(7 / 2) = 4; then clamp at maxReplicaCount 5.
        fake.value = 7.0
        keda.wait_replicas(ns, "web-so", 4, timeout=5)
        fake.value = 100.0
        keda.wait_replicas(ns, "web-so", 5, timeout=5)
        polls = [e for e in keda.events if e["type"] == "poll"]
        assert polls and polls[-1]["metrics"][0]["target"] == 2.0

        # Idle: the HPA goes to max(min, 1) = 1, then zero after the 3 s cooldown.
        fake.active = False
        fake.value = 0.0
        t0 = time.monotonic()
        keda.wait_replicas(ns, "web-so", 1, timeout=5)
        keda.wait_replicas(ns, "web-so", 0, timeout=10)
        assert time.monotonic() - t0 >= 2.0, "scaled to zero before the cooldown"

        # Scaler restart: the stream reconnects and a new `true` activates again.
        srv.stop(0).wait()
        keda.wait_event(lambda e: e["type"] == "stream-error", 10, "stream error after scaler stop")
        srv, _ = serve(fake, port)
        cluster.wait_for(lambda: fake.streams >= 2 and fake.queues, 15, what="stream reconnect")
        fake.active = True
        fake.value = 1.0
        fake.push(True)
        keda.wait_replicas(ns, "web-so", 1, timeout=5)
    finally:
        keda.stop()
        srv.stop(0)


def test_never_active_scales_down_and_other_triggers_ignored(cluster, ns):
    fake = FakeScaler()
    srv, port = serve(fake)
    keda = KedaStandin(cluster, namespaces=[ns], resolve=lambda a: "127.0.0.1:%d" % port)
    try:
        keda.start()
        cluster.apply(APP.format(ns=ns).replace("replicas: 0", "replicas: 2"))
        # KEDA scales a target never seen active down right away.
        keda.wait_replicas(ns, "web-so", 0, timeout=5)
        cluster.apply("""
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: cpu, namespace: %s}
spec:
  scaleTargetRef: {name: web}
  triggers: [{type: cpu, metadata: {value: "50"}}]
""" % ns)
        keda.wait_event(lambda e: e["so"] == ns + "/cpu" and e["type"] == "watch" and e["triggers"] == 0, 5)
    finally:
        keda.stop()
        srv.stop(0)


def test_scale_down_stabilization_window(cluster, ns):
    fake = FakeScaler()
    fake.target = 1.0
    srv, port = serve(fake)
    keda = KedaStandin(cluster, namespaces=[ns], resolve=lambda a: "127.0.0.1:%d" % port)
    try:
        keda.start()
        cluster.apply(APP.format(ns=ns).replace("cooldownPeriod: 3", """cooldownPeriod: 60
  advanced:
    horizontalPodAutoscalerConfig:
      behavior: {scaleDown: {stabilizationWindowSeconds: 3}}"""))
        fake.active, fake.value = True, 4.0
        fake.push(True)
        keda.wait_replicas(ns, "web-so", 4, timeout=5)
        t0 = time.monotonic()
        fake.value = 2.0
        keda.wait_replicas(ns, "web-so", 2, timeout=8)
        assert time.monotonic() - t0 >= 2.0, "scaled down inside the stabilization window"
        # Scaling up is immediate.
        fake.value = 5.0
        t0 = time.monotonic()
        keda.wait_replicas(ns, "web-so", 5, timeout=3)
        assert time.monotonic() - t0 < 2.5
    finally:
        keda.stop()
        srv.stop(0)


def test_standins_survive_apiserver_restart(cluster, ns):
    """Node and KEDA stand-ins keep working across a kube-apiserver restart:
    after it, a streamed `true` still scales the Deployment and a pod starts."""
    from harness.node import NodeStandin
    fake = FakeScaler()
    srv, port = serve(fake)
    node = NodeStandin(cluster, namespaces=[ns], startup_delay_ms=100)
    keda = KedaStandin(cluster, namespaces=[ns], resolve=lambda a: "127.0.0.1:%d" % port)
    try:
        node.start()
        keda.start()
        cluster.apply(APP.format(ns=ns))
        cluster.wait_for(lambda: fake.queues, 10, what="stream open")
        cluster.restart_apiserver()
        fake.active, fake.value = True, 1.0
        fake.push(True)
        keda.wait_replicas(ns, "web-so", 1, timeout=20)
        node.wait_ready(ns, "web", 1, timeout=20)
    finally:
        keda.stop()
        node.stop()
        srv.stop(0)
