"""Seed 000, "HTTP Scaling with Gloo Gateway", end to end (e2e/seeds/000-gloo).

zerowire is installed from the chart (webhook in url mode) and the document's
manifests are applied with `kubectl apply`, in its order, through the real
kube-apiserver. Every Gloo destination that names the scaled Service ends up
at the zerowire proxy, whether the route was applied before the ScaledObject
(the reconciler sends it through admission again: no manual "touch" step) or
after it; the ExternalService destination and the Upstream are untouched; the
kedify-http ScaledObject is stored as external-push. Traffic with the
route's Host header wakes the workload from zero, scales it out under load
and it returns to zero after the document's cooldown; deleting the
ScaledObject restores every route exactly as applied.
"""

import json
import os

import pytest

from harness import util
from harness.stack import ORIGINAL, module_stack

SEED = os.path.join(util.REPO, "e2e", "seeds", "000-gloo")
NS = "default"
HOST = "gloo-http.keda"  # the VirtualService's domain and the trigger's hosts


def seed(name):
    return os.path.join(SEED, name)


# Implied by the document, which describes these without showing them: the
# VirtualService that delegates to the RouteTable of 03-routetable.yaml, and a
# route whose destination is the Upstream of 04-upstream.yaml. (In a real Gloo
# install one picks one of these alternatives for a domain.)
IMPLIED_DELEGATING_VS = """
# implied by seed 000 Step 2 ("VirtualService routes that delegate to a RouteTable")
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: http-server-delegating
  namespace: default
spec:
  virtualHost:
    domains:
      - gloo-http.keda
    routes:
      - matchers:
          - prefix: /
        delegateAction:
          ref:
            name: http-server-routes
            namespace: default
"""
IMPLIED_UPSTREAM_VS = """
# implied by seed 000 Step 2 ("routes that point to a Gloo Upstream")
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: http-server-via-upstream
  namespace: default
spec:
  virtualHost:
    domains:
      - gloo-http.keda
    routes:
      - matchers:
          - prefix: /
        routeAction:
          single:
            upstream:
              name: http-server-upstream
              namespace: default
"""
# implied by "ExternalService destinations are intentionally not rewritten ...
# They can still exist in the same Gloo configuration": a v2 RouteTable whose
# destination is an EXTERNAL_SERVICE (named like the scaled Service on purpose).
IMPLIED_EXTERNAL_RT = """
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata:
  name: http-server-external
  namespace: default
spec:
  hosts:
    - external.gloo-http.keda
  virtualGateways:
    - name: ingress
      namespace: global
  http:
    - name: external
      forwardTo:
        destinations:
          - kind: EXTERNAL_SERVICE
            ref:
              name: http-server
              namespace: default
            port:
              number: 443
"""

GLOO_VS = "virtualservices.gateway.solo.io"
GLOO_RT = "routetables.gateway.solo.io"
V2_RT = "routetables.networking.gloo.solo.io"


@pytest.fixture(scope="module")
def stack(cluster):
    yield from module_stack(cluster, app_namespaces=[NS])


def routes_before(st):
    """The routes of Step 2 (plus the implied ones), in the document's order."""
    return [seed("02-virtualservice.yaml"), seed("03-routetable.yaml"), IMPLIED_DELEGATING_VS,
            seed("04-upstream.yaml"), IMPLIED_UPSTREAM_VS, seed("05-platform-routetable-service.yaml"),
            IMPLIED_EXTERNAL_RT]


def kube_at_proxy(st, kube):
    return kube == {"ref": {"name": st.proxy_service, "namespace": st.proxy_namespace}, "port": 8080} or \
        kube == {"port": 8080, "ref": {"name": st.proxy_service, "namespace": st.proxy_namespace}}


def v2_dest_at_proxy(st, d):
    return d.get("kind") == "SERVICE" and d.get("ref") == {"name": st.proxy_service,
                                                             "namespace": st.proxy_namespace} \
        and d.get("port") == {"number": 8080}


def destinations(st):
    """(description, is-at-proxy) for every destination that names the scaled Service."""
    out = []
    vs = st.get(GLOO_VS, NS, "http-server")
    out.append(("VirtualService http-server (direct kube)",
                kube_at_proxy(st, vs["spec"]["virtualHost"]["routes"][0]["routeAction"]["single"].get("kube"))))
    rt = st.get(GLOO_RT, NS, "http-server-routes")
    out.append(("RouteTable http-server-routes (delegated)",
                kube_at_proxy(st, rt["spec"]["routes"][0]["routeAction"]["single"].get("kube"))))
    up = st.get(GLOO_VS, NS, "http-server-via-upstream")
    single = up["spec"]["virtualHost"]["routes"][0]["routeAction"]["single"]
    out.append(("VirtualService http-server-via-upstream (Upstream)",
                "upstream" not in single and kube_at_proxy(st, single.get("kube"))))
    v2 = st.get(V2_RT, NS, "http-server")
    out.append(("v2 RouteTable http-server", v2_dest_at_proxy(st, v2["spec"]["http"][0]["forwardTo"]["destinations"][0])))
    return out


def all_at_proxy(st):
    d = destinations(st)
    return all(ok for _, ok in d) and d


@pytest.fixture
def cleanup(stack):
    yield
    for src in routes_before(stack) + [seed("06-platform-virtualdestination.yaml"), seed("07-scaledobject.yaml"),
                                       seed("01-app.yaml")]:
        stack.delete(src)


def test_seed_000_gloo(stack, cleanup, capsys):
    st = stack
    # Step 1: the application, at zero replicas.
    st.apply(seed("01-app.yaml"))

    # Step 2 before Step 3: routes exist before the ScaledObject.
    applied = {}
    for src in routes_before(st):
        applied.update(st.as_applied(src))
        st.apply(src)
    for (res, ns, name), text in applied.items():
        assert st.spec_text(res, ns, name) == text, "%s %s changed without a target" % (res, name)
    untouched = {k: st.get(k[0], k[1], k[2])["metadata"]["resourceVersion"]
                 for k in applied if k[0] in ("upstreams.gloo.solo.io",) or k[2] in (
                     "http-server-delegating", "http-server-external")}

    # Step 3: the kedify-http ScaledObject, stored as external-push.
    st.apply(seed("07-scaledobject.yaml"))
    so = st.get("scaledobjects.keda.sh", NS, "http-server")
    trig = so["spec"]["triggers"][0]
    assert trig["type"] == "external-push", trig
    assert trig["metadata"]["scalerAddress"] == st.scaler_address
    assert st.scaler_service() is not None, "no Service for %s" % st.scaler_address
    for k, v in {"hosts": HOST, "pathPrefixes": "/", "port": "8080", "scalingMetric": "requestRate",
                 "service": "http-server", "targetValue": "1", "trafficAutowire": "gloo", "window": "15s"}.items():
        assert trig["metadata"][k] == v, (k, trig["metadata"])
    assert trig["metricType"] == "AverageValue"

    # Existing routes are rewired by the reconciler: no "touch" step.
    st.wait_for(lambda: all_at_proxy(st), 30, "every Gloo destination at the proxy")
    for k, rv in untouched.items():
        o = st.get(*k)
        assert o["metadata"]["resourceVersion"] == rv and json.dumps(o["spec"]) == applied[k], \
            "%s %s must not be modified" % (k[0], k[2])
        assert ORIGINAL not in (o["metadata"].get("annotations") or {})

    # Traffic: cold start, scale-out, back to zero (cooldownPeriod 5 s after the
    # 15 s request-rate window empties).
    m = st.exercise(NS, "http-server", "http-server", HOST, load_seconds=10, down_timeout=60)
    assert m["cold_header"] == "true"
    assert 2 <= m["peak_replicas"] <= 5
    with capsys.disabled():
        print("\nseed 000: cold %.2fs (stream true %.1f ms), %d req in 10 s -> %d replicas, zero after %.0fs"
              % (m["cold_seconds"], m["stream_true_ms"], m["wrk"]["requests"], m["peak_replicas"],
                 m["down_seconds"]))

    # Deleting the ScaledObject restores every route exactly as applied.
    st.kubectl("delete", "scaledobject", "http-server", "-n", NS)
    st.wait_restored(applied)

    # Step 2 after Step 3: the ScaledObject first, then the routes again (and
    # the VIRTUAL_DESTINATION form of the v2 RouteTable): rewritten when applied.
    for src in routes_before(st)[::-1]:
        if src != seed("04-upstream.yaml"):
            st.delete(src)
    st.apply(seed("07-scaledobject.yaml"))
    applied = {}
    for src in [s for s in routes_before(st) if s != seed("04-upstream.yaml")]:
        if src.endswith("05-platform-routetable-service.yaml"):
            src = seed("06-platform-virtualdestination.yaml")
        applied.update(st.as_applied(src))
        st.apply(src)
    st.wait_for(lambda: all_at_proxy(st), 30, "every Gloo destination at the proxy (routes after target)")
    ext = st.get(V2_RT, NS, "http-server-external")
    assert json.dumps(ext["spec"]) == applied[(V2_RT, NS, "http-server-external")]
    vd = st.get("virtualdestinations.networking.gloo.solo.io", NS, "http-server")
    assert json.dumps(vd["spec"]) == applied[("virtualdestinations.networking.gloo.solo.io", NS, "http-server")]
    r = st.request(HOST)
    assert r.status == 200 and r.headers.get("x-backend-pod"), r

    st.kubectl("delete", "scaledobject", "http-server", "-n", NS)
    st.wait_restored(applied)
