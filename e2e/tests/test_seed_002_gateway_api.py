"""Seed 002, the "KEDA meets GatewayAPI" talk, end to end
(e2e/seeds/002-gateway-api).

The slides show routes, not the workloads behind them: the test makes the
targets (Deployment, Service and an external-push ScaledObject for app,
app1-a and app1-b; the namespace xyz of the ReferenceGrant example), then
applies the slides' manifests in order through the chart's webhook: the
HTTPRoute and the Ingress to `app` (rewritten to the proxy, traffic from zero,
scale-out and back to zero). The weighted and the per-backend filters slides
name app1-a and app1-b without a port, which Gateway API requires for a
Service backendRef (the real schema rejects both, e2e/real/test_real_crds.py):
zerowire leaves each one stored exactly as applied, with a kubectl warning
saying why, rather than make it valid with the proxy's port (restore could
never put the port-less original back). The weighted route with the ports the
schema asks for is rewritten (weights kept, and each backendRef sets
X-Zerowire-Service so that the proxy serves the backend the gateway chose
although app1-a and app1-b share their host). The ReferenceGrant and the
ExternalName Service are not zerowire's to change. Deleting the ScaledObjects
restores every route exactly as applied.
"""

import os

import pytest

from harness import util
from harness.stack import ORIGINAL, module_stack

SEED = os.path.join(util.REPO, "e2e", "seeds", "002-gateway-api")
NS = "default"
HR = "httproutes.gateway.networking.k8s.io"
ING = "ingresses.networking.k8s.io"


def seed(name):
    return os.path.join(SEED, name)


def target(name, hosts, paths, addr):
    """Deployment + Service (port 80) + ScaledObject for one workload the slides route to."""
    return """
apiVersion: apps/v1
kind: Deployment
metadata: {name: %(n)s, namespace: default}
spec:
  replicas: 0
  selector: {matchLabels: {app: %(n)s}}
  template:
    metadata: {labels: {app: %(n)s}}
    spec:
      containers:
        - {name: app, image: example/%(n)s, ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: %(n)s, namespace: default}
spec:
  selector: {app: %(n)s}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: %(n)s, namespace: default}
spec:
  scaleTargetRef: {name: %(n)s}
  minReplicaCount: 0
  maxReplicaCount: 4
  pollingInterval: 1
  cooldownPeriod: 3
  triggers:
    - type: external-push
      metadata:
        scalerAddress: %(addr)s
        service: %(n)s
        port: "80"
        hosts: %(hosts)s
        pathPrefixes: %(paths)s
        scalingMetric: requestRate
        targetValue: "2"
        window: 5s
""" % {"n": name, "hosts": hosts, "paths": paths, "addr": addr}


TARGETS = {"app": ("example.com", "/foo"), "app1-a": ("app1.example.com", "/"),
           "app1-b": ("app1.example.com", "/")}
IMPLIED_XYZ = "apiVersion: v1\nkind: Namespace\nmetadata: {name: xyz}\n"


@pytest.fixture(scope="module")
def stack(cluster):
    yield from module_stack(cluster, app_namespaces=[NS])


@pytest.fixture
def cleanup(stack):
    yield
    for name in TARGETS:
        stack.delete(target(name, *TARGETS[name], stack.scaler_address))
    for f in ("01-httproute.yaml", "02-ingress.yaml", "05-referencegrant.yaml", "06-externalname.yaml"):
        stack.delete(seed(f))


NO_PORT = "destination default/%s has no port (Gateway API requires a port for a Service backendRef): left unchanged"

# The weighted slide with the port Gateway API requires on a Service backendRef.
WEIGHTED_WITH_PORTS = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: example-httproute}
spec:
  rules:
    - backendRefs:
        - {name: app1-a, port: 80, weight: 10}
        - {name: app1-b, port: 80, weight: 90}
"""


def backend_refs(st):
    return st.get(HR, NS, "example-httproute")["spec"]["rules"][0]["backendRefs"]


def at_proxy(st, ref):
    return ref.get("name") == st.proxy_service and ref.get("namespace") == st.proxy_namespace \
        and ref.get("port") == 8080


def split_header(ref):
    """The X-Zerowire-Service value a backendRef's RequestHeaderModifier sets."""
    for f in ref.get("filters") or []:
        if f.get("type") == "RequestHeaderModifier":
            for h in f["requestHeaderModifier"].get("set") or []:
                if h["name"].lower() == "x-zerowire-service":
                    return h["value"]
    return None


def left_alone(st, applied, src):
    """Applies a slide whose backendRefs name no port: kubectl shows the
    webhook's warning for app1-a and app1-b, and the route is stored exactly
    as applied, with no zerowire.io/original record."""
    as_applied = st.as_applied(src)
    applied.update(as_applied)
    r = st.apply(src)
    for name in ("app1-a", "app1-b"):
        assert NO_PORT % name in r.stderr, r.stderr
    st.wait_restored(as_applied, timeout=5)


def test_seed_002_gateway_api(stack, cleanup, capsys):
    st = stack
    for name, (hosts, paths) in TARGETS.items():
        st.apply(target(name, hosts, paths, st.scaler_address))
    # The webhook learns targets from its watch: wait until a dry-run of the
    # slide's HTTPRoute comes back rewritten.
    st.wait_for(lambda: st.proxy_service in st.kubectl(
        "apply", "--dry-run=server", "--validate=false", "-o", "json", "-f", seed("01-httproute.yaml")).stdout,
        30, "targets known to the webhook")

    # The HTTPRoute and the Ingress slide: both lead to the proxy.
    applied = {}
    for f in ("01-httproute.yaml", "02-ingress.yaml"):
        applied.update(st.as_applied(seed(f)))
        st.apply(seed(f))
    hr = st.get(HR, NS, "example-httproute")
    assert hr["spec"]["rules"][0]["backendRefs"] == [
        {"name": st.proxy_service, "namespace": st.proxy_namespace, "port": 8080}], hr["spec"]
    assert hr["spec"]["parentRefs"] == [{"name": "my-nginx-gateway"}]
    ing = st.get(ING, NS, "example-ingress")
    svc = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert svc == {"name": st.proxy_service, "port": {"number": 8080}}, svc
    # Ingress backends cannot leave their namespace: the reconciler creates the
    # alias Service in default that leads to the proxy Service.
    alias = st.wait_for(lambda: st.get("services", NS, st.proxy_service), 30, "alias Service")
    assert alias["spec"]["type"] == "ClusterIP" and "selector" not in alias["spec"], alias["spec"]
    grant = st.wait_for(lambda: st.get("referencegrants.gateway.networking.k8s.io", st.proxy_namespace,
                                       "zerowire-" + NS), 30, "ReferenceGrant for the HTTPRoute")
    assert {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": NS} in grant["spec"]["from"]

    m = st.exercise(NS, "app", "app", "example.com", path="/foo", load_seconds=10, down_timeout=60)
    assert m["cold_header"] == "true" and 2 <= m["peak_replicas"] <= 4
    with capsys.disabled():
        print("\nseed 002: cold %.2fs (stream true %.1f ms), %d req in 10 s -> %d replicas, zero after %.0fs"
              % (m["cold_seconds"], m["stream_true_ms"], m["wrk"]["requests"], m["peak_replicas"],
                 m["down_seconds"]))

    # Weighted backendRefs as the slide writes them (replaces the HTTPRoute of
    # the first slide): no port, so left alone with a warning and stored
    # exactly as applied (no record), although both Services are targets.
    left_alone(st, applied, seed("03-httproute-weighted.yaml"))
    refs = backend_refs(st)
    assert refs == [{"name": "app1-a", "weight": 10}, {"name": "app1-b", "weight": 90}], refs
    assert "parentRefs" not in st.get(HR, NS, "example-httproute")["spec"]

    # The same split with the ports the schema requires: rewritten, weights kept.
    applied.update(st.as_applied(WEIGHTED_WITH_PORTS))
    r = st.apply(WEIGHTED_WITH_PORTS)
    assert "has no port" not in r.stderr, r.stderr
    refs = backend_refs(st)
    assert [r.get("weight") for r in refs] == [10, 90] and all(at_proxy(st, r) for r in refs), refs
    assert [split_header(r) for r in refs] == ["default/app1-a", "default/app1-b"], refs
    # The gateway sends each request with its chosen backendRef's header:
    # the same host reaches either workload, each woken from zero.
    for name, ref in zip(("app1-a", "app1-b"), refs):
        r = st.request(TARGETS[name][0], headers={"X-Zerowire-Service": split_header(ref)})
        assert r.status == 200 and r.headers["x-backend-pod"].startswith(name + "-"), r
        assert r.headers.get("x-zerowire-cold-start") == "true", r

    # Per-backend filters, again without a port: replaces the rewritten split,
    # left alone with a warning, stored exactly as applied.
    left_alone(st, applied, seed("04-httproute-filters.yaml"))
    refs = backend_refs(st)
    assert refs == [{"name": "app1-a", "filters": [{"urlRewrite": "blue"}]},
                    {"name": "app1-b", "filters": [{"urlRewrite": "green"}]}], refs

    # The ReferenceGrant and ExternalName examples: applied, not zerowire's to change.
    st.apply(IMPLIED_XYZ)
    for f in ("05-referencegrant.yaml", "06-externalname.yaml"):
        applied.update(st.as_applied(seed(f)))
        st.apply(seed(f))

    # Deleting the ScaledObjects restores every route exactly as last applied.
    for name in TARGETS:
        st.kubectl("delete", "scaledobject", name, "-n", NS)
    st.wait_restored(applied)  # example-httproute: as the last slide (filters) applied it
    st.wait_for(lambda: st.get("services", NS, st.proxy_service) is None, 30, "alias Service removed")
    o = st.get(HR, NS, "example-httproute")
    assert ORIGINAL not in (o["metadata"].get("annotations") or {})
