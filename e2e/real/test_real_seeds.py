"""Seeds 002 and 003 end to end on the real stack: client -> Traefik ->
zerowire-proxy -> app, for an HTTPRoute and an Ingress each, with
kube-apiserver/controller-manager/scheduler 1.37, the kubelet stand-in, the
real KEDA operator and metrics server, Traefik v3.6 and the chart's
zerowire-webhook in url mode (e2e/real/realstack.py).

  002 (e2e/seeds/002-gateway-api): the slides' HTTPRoute and Ingress to
      `app`, rewritten by the webhook to the proxy Service (ReferenceGrant
      and alias Service made by the webhook); Traefik follows the rewritten
      backends; the first request wakes `app` from zero through the real
      KEDA, and KEDA takes it back to zero after the cooldown.
  003 (e2e/seeds/003-keda-http-ingress): the page's HTTPRoute (+ its
      ReferenceGrant) and Ingress, wired by hand to
      keda-add-ons-http-interceptor-proxy, which is zerowire's proxy here;
      the InterceptorRoute + ScaledObject of the page scale `myapp` through
      keda-add-ons-http-external-scaler.keda:9090.

Implied by the documents and made here: the workloads, the Gateways the
routes name (Traefik's GatewayClass, listener on Traefik's entry point) and
an IngressClass `nginx` served by Traefik (seed 002's Ingress names it).
  001 (e2e/seeds/001-istio): Istio has no data plane here (no Envoy), so its
      VirtualService is checked at the API level (rewired by the webhook to
      the proxy when the HTTPScaledObject appears, restored exactly when it
      goes) and the traffic is sent straight to the proxy as Istio's gateway
      would: the ScaledObject zerowire generates from the HTTPScaledObject is
      read by the real KEDA, which wakes podinfo from zero."""

import os
import sys
import time

import pytest

from harness import util
from harness.stack import ORIGINAL
from realstack import module_realstack

sys.path.insert(0, os.path.join(util.REPO, "e2e", "tests"))
from test_seed_002_gateway_api import target  # noqa: E402  (the 1.20 suites' workloads of the seeds)
from test_seed_001_istio import PODINFO  # noqa: E402
from test_seed_003_keda_http_ingress import APP as APP_003  # noqa: E402

SEEDS = os.path.join(util.REPO, "e2e", "seeds")
HR = "httproutes.gateway.networking.k8s.io"
ING = "ingresses.networking.k8s.io"

INGRESS_CLASS = """
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: traefik.io/ingress-controller}
"""

GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: traefik-real}
spec: {controllerName: traefik.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: %(name)s, namespace: %(ns)s}
spec:
  gatewayClassName: traefik-real
  listeners:
  - name: web
    port: %(port)d
    protocol: HTTP
    allowedRoutes: {namespaces: {from: All}}
"""

def seed(d, name):
    return os.path.join(SEEDS, d, name)


def log(msg):
    print("[real-seeds %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def condition(conds, typ):
    return any(c["type"] == typ and c["status"] == "True" for c in conds or [])


def route_accepted(st, ns, name):
    parents = (st.get(HR, ns, name) or {}).get("status", {}).get("parents", [])
    return any(condition(p.get("conditions"), "Accepted") and condition(p.get("conditions"), "ResolvedRefs")
               for p in parents)


def through_traefik(st, traefik, host, path, ns, app, cold):
    """One GET via Traefik (None: straight to the proxy); asserts it reached a
    Pod of app through the proxy (X-Zerowire-Cold-Start as cold says) and
    returns (response, seconds)."""
    t0 = time.monotonic()
    r = st.request_via(traefik, host, path, timeout=60)
    took = time.monotonic() - t0
    pods = {p["metadata"]["name"] for p in st.cluster.api("GET", "/api/v1/namespaces/%s/pods" % ns)["items"]}
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.headers.get("X-Backend-Pod") in pods and r.headers["X-Backend-Pod"].startswith(app + "-"), \
        (r.headers, pods)
    assert r.headers.get("X-Zerowire-Cold-Start") == ("true" if cold else "false"), r.headers
    return r, took


def wait_routed(st, traefik, host, provider, what, want=None):
    """Until Traefik has built a router for host from provider
    ("kubernetes": Ingress, "kubernetesgateway": HTTPRoute) whose servers
    are the proxy (want: its URL, default the HTTP listener), asking
    Traefik's API: a probe request would wake the target."""
    want = want or "http://%s:%d" % (st.host, st.proxy_port)

    def ok():
        found = [r for r in traefik.routers() if r.get("provider") == provider and host in r.get("rule", "")
                 and r.get("status") == "enabled"]
        servers = [traefik.servers(r) for r in found]
        if found and all(s == [want] for s in servers):
            return True
        raise AssertionError("routers %s -> servers %s" % ([r["name"] for r in found], servers))
    util.wait_for(ok, 60, 0.5, what)


def wait_zero(st, ns, app, kubelet, timeout=90):
    t0 = time.monotonic()
    st.wait_for(lambda: st.replicas(ns, app) == 0, timeout, "KEDA scales %s back to 0" % app, interval=0.5)
    kubelet.wait_running(ns, 0, 60)
    return time.monotonic() - t0


@pytest.fixture
def stack002(realc, kubelet, keda, traefik):
    yield from module_realstack(realc, kubelet, keda, app_namespaces=["default"])


def test_seed_002_httproute_and_ingress_through_traefik(realc, kubelet, traefik, stack002):
    st = stack002
    realc.apply(INGRESS_CLASS)
    realc.apply(GATEWAY % {"name": "my-nginx-gateway", "ns": "default", "port": traefik.web_port})
    app = target("app", "example.com", "/foo", st.scaler_address)
    realc.apply(app)
    st.wait_for(lambda: st.proxy_service in st.kubectl(
        "apply", "--dry-run=server", "-o", "json", "-f", seed("002-gateway-api", "01-httproute.yaml")).stdout,
        30, "target app known to the webhook")

    # HTTPRoute: rewritten, accepted by Traefik with the webhook's ReferenceGrant.
    st.apply(seed("002-gateway-api", "01-httproute.yaml"), validate=True)
    hr = st.get(HR, "default", "example-httproute")
    assert hr["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": st.proxy_service, "namespace": st.proxy_namespace,
         "port": 8080, "weight": 1}], hr["spec"]
    assert ORIGINAL in hr["metadata"]["annotations"]
    st.wait_for(lambda: route_accepted(st, "default", "example-httproute"), 60,
                "Traefik accepts the rewritten HTTPRoute (ReferenceGrant resolved)")
    wait_routed(st, traefik, "example.com", "kubernetesgateway", "Traefik routes the HTTPRoute to the proxy")
    assert st.replicas("default", "app") == 0
    _, cold = through_traefik(st, traefik, "example.com", "/foo/cold", "default", "app", cold=True)
    through_traefik(st, traefik, "example.com", "/foo/warm", "default", "app", cold=False)
    log("002 HTTPRoute: cold request through Traefik answered in %.2fs" % cold)
    down = wait_zero(st, "default", "app", kubelet)
    log("002 HTTPRoute: back to 0 %.1fs after the last request" % down)
    st.delete(seed("002-gateway-api", "01-httproute.yaml"))

    # Ingress (class nginx, served by Traefik here): to the alias Service in
    # default, whose EndpointSlice the webhook mirrors from the proxy Service's.
    st.apply(seed("002-gateway-api", "02-ingress.yaml"), validate=True)
    ing = st.get(ING, "default", "example-ingress")
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": st.proxy_service, "port": {"number": 8080}}
    st.wait_for(lambda: st.get("endpointslices.discovery.k8s.io", "default", st.proxy_service + "-zw-ipv4"), 30,
                "alias EndpointSlice mirrored by the webhook")
    wait_routed(st, traefik, "example.com", "kubernetes", "Traefik routes the Ingress")
    _, cold = through_traefik(st, traefik, "example.com", "/foo/cold", "default", "app", cold=True)
    log("002 Ingress: cold request through Traefik answered in %.2fs" % cold)
    down = wait_zero(st, "default", "app", kubelet)
    log("002 Ingress: back to 0 %.1fs after the last request" % down)
    st.delete(seed("002-gateway-api", "02-ingress.yaml"))
    st.delete(app)


@pytest.fixture
def stack003(realc, kubelet, keda, traefik):
    realc.ensure_namespace("myapp")
    realc.ensure_namespace("gateway-system")
    realc.apply(os.path.join(util.REPO, "e2e", "crds", "keda-http.yaml"))
    yield from module_realstack(realc, kubelet, keda, app_namespaces=["myapp"],
                                proxy_service="keda-add-ons-http-interceptor-proxy", proxy_namespace="keda",
                                values=["proxy.service.scalerName=keda-add-ons-http-external-scaler"])


def test_seed_003_routes_to_the_interceptor_names_through_traefik(realc, kubelet, traefik, stack003):
    st = stack003
    assert st.scaler_address == "keda-add-ons-http-external-scaler.keda:9090"
    realc.apply(GATEWAY % {"name": "gateway", "ns": "gateway-system", "port": traefik.web_port})
    realc.apply(APP_003)
    st.apply(seed("003-keda-http-ingress", "05-interceptorroute-scaledobject.yaml"), validate=True)
    st.wait_for(lambda: b"myapp/myapp" in st.admin_get("/queue")[1], 30, "the proxy knows the InterceptorRoute")

    # HTTPRoute + ReferenceGrant as the page writes them: left as applied.
    for f in ("01-httproute.yaml", "02-referencegrant.yaml"):
        st.apply(seed("003-keda-http-ingress", f), validate=True)
    hr = st.get(HR, "myapp", "myapp")
    assert hr["spec"]["rules"][0]["backendRefs"][0]["name"] == "keda-add-ons-http-interceptor-proxy"
    assert ORIGINAL not in (hr["metadata"].get("annotations") or {})
    st.wait_for(lambda: route_accepted(st, "myapp", "myapp"), 60, "Traefik accepts the page's HTTPRoute")
    wait_routed(st, traefik, "myapp.example.com", "kubernetesgateway", "Traefik routes the page's HTTPRoute")
    assert st.replicas("myapp", "myapp") == 0
    _, cold = through_traefik(st, traefik, "myapp.example.com", "/", "myapp", "myapp", cold=True)
    log("003 HTTPRoute: cold request through Traefik answered in %.2fs" % cold)
    for f in ("01-httproute.yaml", "02-referencegrant.yaml"):
        st.delete(seed("003-keda-http-ingress", f))

    # The Ingress in the interceptor's namespace.
    st.apply(seed("003-keda-http-ingress", "03-ingress.yaml"), validate=True)
    wait_routed(st, traefik, "myapp.example.com", "kubernetes", "Traefik routes the page's Ingress")
    through_traefik(st, traefik, "myapp.example.com", "/ingress", "myapp", "myapp", cold=False)
    st.delete(seed("003-keda-http-ingress", "03-ingress.yaml"))
    st.delete(seed("003-keda-http-ingress", "05-interceptorroute-scaledobject.yaml"))


@pytest.fixture
def stack001(realc, kubelet, keda):
    for crds in ("istio.yaml", "keda-http.yaml"):
        realc.install_crd_dir(os.path.join(util.REPO, "e2e", "crds", crds))
    realc.ensure_namespace("keda")
    yield from module_realstack(realc, kubelet, keda, app_namespaces=["default"],
                                proxy_service="keda-add-ons-http-interceptor-proxy", proxy_namespace="keda")


def test_seed_001_httpscaledobject_wakes_podinfo_through_real_keda(realc, kubelet, stack001):
    st = stack001
    vs_kind = "virtualservices.networking.istio.io"
    fqdn = "keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local"

    def destination():
        return st.get(vs_kind, "default", "podinfo")["spec"]["http"][0]["route"][0]["destination"]
    st.apply(PODINFO)
    applied = st.as_applied(seed("001-istio", "02-istio.yaml"))
    st.apply(seed("001-istio", "02-istio.yaml"))
    st.apply(seed("001-istio", "03-httpscaledobject.yaml"), validate=True)
    so = st.wait_for(lambda: st.get("scaledobjects.keda.sh", "default", "podinfo"), 30, "generated ScaledObject")
    assert so["spec"]["triggers"][0]["metadata"]["scalerAddress"] == st.scaler_address
    st.wait_for(lambda: destination() == {"host": fqdn, "port": {"number": 8080}}, 30,
                "VirtualService rewired to the proxy")
    # The real KEDA reads the ScaledObject zerowire generated.
    st.wait_for(lambda: st.get("horizontalpodautoscalers.autoscaling", "default", "keda-hpa-podinfo"), 120,
                "KEDA's HPA for the generated ScaledObject", interval=0.5)
    st.wait_for(lambda: st.admin_get("/metrics")[1].count(b"zerowire_scaler_streams 0") == 0, 60,
                "KEDA's StreamIsActive open", interval=0.5)
    assert st.replicas("default", "podinfo") == 0

    _, cold = through_traefik(st, None, "www.podinfo.com", "/cold", "default", "podinfo", cold=True)
    log("001 HTTPScaledObject: cold request answered in %.2fs" % cold)

    # Deleting the HTTPScaledObject restores the VirtualService exactly.
    st.kubectl("delete", "httpscaledobject", "podinfo", "-n", "default")
    st.wait_restored(applied)
    st.wait_for(lambda: st.get("scaledobjects.keda.sh", "default", "podinfo") is None, 30,
                "owned ScaledObject removed")
    for src in (seed("001-istio", "02-istio.yaml"), PODINFO):
        st.delete(src)
