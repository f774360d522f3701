"""Seed 003, the KEDA HTTP add-on's "Configure Ingress" page, end to end
(e2e/seeds/003-keda-http-ingress).

zerowire's chart is installed with its proxy Service named
keda-add-ons-http-interceptor-proxy and its scaler Service named
keda-add-ons-http-external-scaler, both in keda, so the page's routes (an
HTTPRoute with its ReferenceGrant, an Ingress and an Istio VirtualService,
all wired by hand to the interceptor proxy) and the add-on's InterceptorRoute
+ ScaledObject work unchanged: the routes are left exactly as applied, the
ScaledObject's scalerAddress names a Service the chart created, and traffic
with the route's Host header wakes the app from zero, scales it out and it
returns to zero after the cooldown. Deleting the ScaledObject (and the
InterceptorRoute) leaves every route as applied.
"""

import json
import os
import time

import pytest

from harness import util
from harness.stack import ORIGINAL, module_stack

SEED = os.path.join(util.REPO, "e2e", "seeds", "003-keda-http-ingress")
NS = "myapp"
HOST = "myapp.example.com"
PROXY_SVC, PROXY_NS = "keda-add-ons-http-interceptor-proxy", "keda"
SCALER_SVC = "keda-add-ons-http-external-scaler"

# Implied: the app the page's routes lead to (<your-app> in <your-namespace>,
# port 8080 as the InterceptorRoute says).
APP = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: myapp
  namespace: myapp
spec:
  replicas: 0
  selector:
    matchLabels: {app: myapp}
  template:
    metadata:
      labels: {app: myapp}
    spec:
      containers:
        - name: myapp
          image: example/myapp
          ports:
            - {containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: myapp
  namespace: myapp
spec:
  selector: {app: myapp}
  ports:
    - {name: http, port: 8080, targetPort: 8080}
"""
ROUTES = ("01-httproute.yaml", "02-referencegrant.yaml", "03-ingress.yaml", "04-virtualservice.yaml")


def seed(name):
    return os.path.join(SEED, name)


@pytest.fixture(scope="module")
def stack(cluster):
    cluster.ensure_namespace(NS)
    yield from module_stack(cluster, app_namespaces=[NS], proxy_service=PROXY_SVC, proxy_namespace=PROXY_NS,
                            values=["proxy.service.scalerName=" + SCALER_SVC])


@pytest.fixture
def cleanup(stack):
    yield
    for src in [seed("05-interceptorroute-scaledobject.yaml")] + [seed(r) for r in ROUTES] + [APP]:
        stack.delete(src)


def test_seed_003_keda_http_ingress(stack, cleanup, capsys):
    st = stack
    # The names the page uses exist: the interceptor proxy Service (8080) and
    # the scaler Service the ScaledObject's scalerAddress names (9090).
    assert st.get("services", PROXY_NS, PROXY_SVC)["spec"]["ports"][0]["port"] == 8080
    assert st.get("services", PROXY_NS, SCALER_SVC)["spec"]["ports"][0]["port"] == 9090
    assert st.scaler_address == "%s.%s:9090" % (SCALER_SVC, PROXY_NS)
    assert st.scaler_service()["metadata"]["name"] == SCALER_SVC

    st.apply(APP)
    applied = {}
    for r in ROUTES:
        applied.update(st.as_applied(seed(r)))
        st.apply(seed(r))
    st.apply(seed("05-interceptorroute-scaledobject.yaml"))
    so = st.get("scaledobjects.keda.sh", NS, "myapp")
    assert so["spec"]["triggers"][0] == {"type": "external-push", "metadata": {
        "scalerAddress": "keda-add-ons-http-external-scaler.keda:9090", "interceptorRoute": "myapp"}}

    # Routes already wired to the interceptor proxy are the proxy: left alone,
    # now and after a reconciler pass with the target known.
    time.sleep(st.resync + 1)
    for (res, ns, name), text in applied.items():
        o = st.get(res, ns, name)
        assert json.dumps(o["spec"]) == text, (res, name)
        assert ORIGINAL not in (o["metadata"].get("annotations") or {}), (res, name)

    # Traffic as the gateway sends it: to the proxy with the route's Host.
    # The InterceptorRoute leaves the request-rate window at the add-on's
    # default (1 minute); then the ScaledObject's cooldownPeriod (10 s).
    m = st.exercise(NS, "myapp", "myapp", HOST, load_seconds=10, down_timeout=120)
    assert m["cold_header"] == "true" and 2 <= m["peak_replicas"] <= 10
    assert st.scaler_addresses == {"keda-add-ons-http-external-scaler.keda:9090"}
    with capsys.disabled():
        print("\nseed 003: cold %.2fs (stream true %.1f ms), %d req in 10 s -> %d replicas, zero after %.0fs"
              % (m["cold_seconds"], m["stream_true_ms"], m["wrk"]["requests"], m["peak_replicas"],
                 m["down_seconds"]))

    # Deleting the ScaledObject and the InterceptorRoute: every route as applied.
    st.delete(seed("05-interceptorroute-scaledobject.yaml"))
    time.sleep(st.resync + 1)
    st.wait_restored(applied)
    r = st.request(HOST)
    assert r.status == 404, r  # no target any more: the proxy says so
