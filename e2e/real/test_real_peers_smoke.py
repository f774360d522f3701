"""Smoke test of the real peers (issue #17, in progress): the current
Kubernetes control plane built from k8s.io/kubernetes by e2e/build-peers.sh
runs on loopback, and its real controllers turn a Deployment into a ReplicaSet
and Pods (Pending: no kubelet yet); the real KEDA operator reconciles a
ScaledObject into an HPA and its metrics server joins the aggregation layer;
Traefik routes an Ingress and an HTTPRoute. Each part is skipped while its
binaries are not built, so `make check` neither builds nor waits for them;
build them once with `e2e/build-peers.sh` (docs/real-peers.md has the times)."""

import os
import sys
import threading
import time

import pytest

from harness import util
from harness.fixtures import running
from harness.realcluster import RealCluster, peer_binaries, pinned_version

BINS = peer_binaries("kubernetes")
if BINS is None:
    pytest.skip("real peers not built: run e2e/build-peers.sh kubernetes once (docs/real-peers.md)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def real():
    yield from running(RealCluster(BINS, name="zw-real"))


def owned_by(obj, kind, name):
    return any(r["kind"] == kind and r["name"] == name and r.get("controller")
               for r in obj["metadata"].get("ownerReferences", []))


def test_version_is_the_pinned_one(real):
    v = real.api("GET", "/version")
    assert v["gitVersion"] == pinned_version("kubernetes")
    assert "apps/v1" in real.kubectl("api-versions").stdout
    assert "discovery.k8s.io/v1" in real.kubectl("api-versions").stdout


def test_deployment_gets_replicaset_and_pods(real):
    ns = real.create_namespace("smoke")
    real.wait_for(lambda: real.api("GET", "/api/v1/namespaces/%s/serviceaccounts/default" % ns,
                                   check=False).get("kind") == "ServiceAccount", 60, 0.2, "default SA in " + ns)
    real.apply("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example/web}]}
""" % ns)

    def replicasets():
        return [rs for rs in real.api("GET", "/apis/apps/v1/namespaces/%s/replicasets" % ns)["items"]
                if owned_by(rs, "Deployment", "web")]
    rss = real.wait_for(replicasets, 60, 0.2, "ReplicaSet of Deployment web")
    assert len(rss) == 1
    rs = rss[0]["metadata"]["name"]

    def pods():
        items = [p for p in real.api("GET", "/api/v1/namespaces/%s/pods" % ns)["items"]
                 if owned_by(p, "ReplicaSet", rs)]
        return items if len(items) == 2 else None
    got = real.wait_for(pods, 60, 0.2, "2 Pods of ReplicaSet " + rs)
    for p in got:
        assert p["status"]["phase"] == "Pending"
        # The ServiceAccount admission plugin ran (the 1.20 harness disables it).
        assert p["spec"]["serviceAccountName"] == "default"

    # Scale to zero through the /scale subresource, as KEDA does.
    real.api("PATCH", "/apis/apps/v1/namespaces/%s/deployments/web/scale" % ns, {"spec": {"replicas": 0}},
             content_type="application/merge-patch+json")
    real.wait_for(lambda: not real.api("GET", "/api/v1/namespaces/%s/pods" % ns)["items"], 60, 0.2,
                  "Pods gone after scaling to 0")
    d = real.wait_for(lambda: (lambda d: d if d.get("status", {}).get("observedGeneration") == d["metadata"]["generation"]
                                          else None)(real.api("GET", "/apis/apps/v1/namespaces/%s/deployments/web" % ns)),
                      60, 0.2, "Deployment status observed")
    assert d["status"].get("replicas", 0) == 0

    # The real garbage collector removes the ReplicaSet with its Deployment.
    real.api("DELETE", "/apis/apps/v1/namespaces/%s/deployments/web" % ns)
    real.wait_for(lambda: not replicasets(), 60, 0.2, "ReplicaSet collected")


def test_scheduler_reports_unschedulable(real):
    """No Node exists, so the real scheduler marks a Pod unschedulable."""
    ns = real.create_namespace("sched")
    real.wait_for(lambda: real.api("GET", "/api/v1/namespaces/%s/serviceaccounts/default" % ns,
                                   check=False).get("kind") == "ServiceAccount", 60, 0.2, "default SA in " + ns)
    real.api("POST", "/api/v1/namespaces/%s/pods" % ns, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "example/c"}]}})

    def unschedulable():
        p = real.api("GET", "/api/v1/namespaces/%s/pods/p" % ns)
        return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
                   for c in p["status"].get("conditions", []))
    real.wait_for(unschedulable, 60, 0.2, "PodScheduled=False Unschedulable")


def built(peer):
    bins = peer_binaries(peer)
    if bins is None:
        pytest.skip("%s not built: run e2e/build-peers.sh %s once (docs/real-peers.md)" % (peer, peer))
    return bins


@pytest.fixture(scope="module")
def keda(real):
    from harness.realkeda import RealKeda
    return RealKeda(real, built("keda")).start()


class FakeScaler:
    """A KEDA external scaler on loopback for the smoke (zerowire-proxy takes
    this place in the real suites): StreamIsActive pushes `true` while
    active is set, GetMetrics answers `value`."""

    def __init__(self):
        import grpc
        from concurrent.futures import ThreadPoolExecutor
        from harness.keda import ProtoMissing, load_proto
        try:
            pb2, pb2_grpc = load_proto()
        except ProtoMissing as e:
            pytest.skip(str(e))
        self.active = threading.Event()
        self.value = 0
        self.calls = []
        outer = self

        class Servicer(pb2_grpc.ExternalScalerServicer):
            def IsActive(self, ref, ctx):
                outer.calls.append("IsActive")
                return pb2.IsActiveResponse(result=outer.active.is_set())

            def StreamIsActive(self, ref, ctx):
                outer.calls.append("StreamIsActive")
                sent = None
                while ctx.is_active():
                    now = outer.active.is_set()
                    if now != sent:
                        sent = now
                        yield pb2.IsActiveResponse(result=now)
                    time.sleep(0.2)

            def GetMetricSpec(self, ref, ctx):
                outer.calls.append("GetMetricSpec")
                return pb2.GetMetricSpecResponse(metricSpecs=[pb2.MetricSpec(metricName="requests", targetSize=1)])

            def GetMetrics(self, req, ctx):
                outer.calls.append("GetMetrics")
                return pb2.GetMetricsResponse(metricValues=[pb2.MetricValue(metricName=req.metricName,
                                                                            metricValue=outer.value)])

        self.server = grpc.server(ThreadPoolExecutor(max_workers=8))
        pb2_grpc.add_ExternalScalerServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(grace=None)


def test_keda_scales_through_external_push_and_real_hpa(real, keda):
    """The real KEDA reads the ScaledObject, creates its HPA, opens the
    external-push stream, activates 0 -> 1, the real HPA takes it to 3 with
    GetMetrics through the aggregation layer, and KEDA scales back to 0."""
    ns = real.create_namespace("keda")
    scaler = FakeScaler()
    try:
        real.apply("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: %(ns)s}
spec:
  replicas: 0
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec: {containers: [{name: app, image: example/app}]}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: app, namespace: %(ns)s}
spec:
  scaleTargetRef: {name: app}
  minReplicaCount: 0
  maxReplicaCount: 5
  pollingInterval: 5
  cooldownPeriod: 5
  triggers:
  - type: external-push
    metadata: {scalerAddress: "127.0.0.1:%(port)d"}
""" % {"ns": ns, "port": scaler.port})

        def hpa():
            h = real.api("GET", "/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/keda-hpa-app" % ns,
                         check=False)
            return h if h.get("kind") == "HorizontalPodAutoscaler" else None
        h = real.wait_for(hpa, 120, 0.5, "HPA keda-hpa-app created by the KEDA operator")
        assert h["spec"]["scaleTargetRef"]["name"] == "app"
        assert h["spec"]["metrics"][0]["type"] == "External"
        real.wait_for(lambda: "StreamIsActive" in scaler.calls, 60, 0.2, "KEDA opens StreamIsActive")

        def replicas():
            return real.api("GET", "/apis/apps/v1/namespaces/%s/deployments/app" % ns)["spec"].get("replicas")
        scaler.value = 3
        scaler.active.set()
        real.wait_for(lambda: (replicas() or 0) >= 1, 60, 0.2, "KEDA activates app 0 -> 1")
        real.wait_for(lambda: replicas() == 3, 120, 0.5, "the real HPA scales app to 3 (GetMetrics = 3, target 1)")
        assert "GetMetrics" in scaler.calls
        scaler.value = 0
        scaler.active.clear()
        real.wait_for(lambda: replicas() == 0, 120, 0.5, "KEDA scales app back to 0 after cooldown")
    finally:
        scaler.stop()


@pytest.fixture(scope="module")
def traefik(real):
    from harness.realtraefik import RealTraefik
    bins = built("traefik")
    crds = util.shared_dir() + "/fixtures/crds/gateway-api-v1.6.1-standard-"
    if not os.path.exists(crds + "httproutes.yaml"):
        pytest.skip("Gateway API CRDs absent: %s* (../shared not present)" % crds)
    for kind in ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants",
                 "backendtlspolicies"):
        real.install_crd_dir(crds + kind + ".yaml")
    return RealTraefik(real, bins["traefik"]).start()


def test_traefik_routes_ingress_and_programs_gateway(real, traefik):
    """Ingress: routed to a local backend. Since 1.3x EndpointSlices refuse
    loopback addresses, so the Ingress's Service is an ExternalName
    "localhost". Traefik's Gateway API provider refuses ExternalName
    backends, so the HTTPRoute's Service selects no Pod (the real
    EndpointSlice controller gives it an empty slice): Traefik programs the
    Gateway, accepts the route (status written back), and answers 503 for
    the route's host (no server) instead of 404."""
    ns = real.create_namespace("gw")
    port = util.free_port()
    env = dict(os.environ, PYTHONPATH=os.path.join(util.REPO, "e2e"))
    real.spawn("backend-" + ns, [sys.executable, "-m", "harness.backend", "--name", "web-1",
                                 "--ip", "127.0.0.1", "--ports", str(port)], env=env)
    util.wait_port("127.0.0.1", port, 20)
    real.apply("""
apiVersion: v1
kind: Service
metadata: {name: web-local, namespace: %(ns)s}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{name: http, port: %(port)d}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: %(ns)s}
spec:
  rules:
  - host: ingress.smoke
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web-local, port: {number: %(port)d}}}}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %(ns)s}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: traefik-%(ns)s}
spec: {controllerName: traefik.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: %(ns)s}
spec:
  gatewayClassName: traefik-%(ns)s
  listeners: [{name: web, port: %(web)d, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: %(ns)s}
spec:
  parentRefs: [{name: gw}]
  hostnames: [gateway.smoke]
  rules: [{backendRefs: [{name: web, port: 80}]}]
""" % {"ns": ns, "port": port, "web": traefik.web_port})

    def answers(host, code):
        def ok():
            try:
                r = traefik.get(host, "/anything")
            except Exception:
                return None
            return [r] if r.status_code == code else None  # a 503 Response is falsy
        return ok
    r, = real.wait_for(answers("ingress.smoke", 200), 60, 0.5, "traefik routes ingress.smoke to the backend")
    assert "pod=web-1" in r.text

    def condition(conditions, typ):
        return any(c["type"] == typ and c["status"] == "True" for c in conditions)
    gw = "/apis/gateway.networking.k8s.io/v1/namespaces/%s/" % ns
    real.wait_for(lambda: condition(real.api("GET", gw + "gateways/gw").get("status", {}).get("conditions", []),
                                    "Programmed"), 60, 0.5,
                  "Gateway gw Programmed by traefik")
    def route_accepted():
        parents = real.api("GET", gw + "httproutes/web").get("status", {}).get("parents", [])
        if any(condition(p.get("conditions", []), "Accepted") for p in parents):
            return True
        raise AssertionError(parents)  # shown on timeout
    real.wait_for(route_accepted, 60, 0.5, "HTTPRoute web Accepted by traefik")
    real.wait_for(answers("gateway.smoke", 503), 60, 0.5, "traefik has a route for gateway.smoke (503: no endpoints)")
    assert traefik.get("unknown.smoke", "/anything").status_code == 404
