"""TLS destinations end to end on the real stack through a cold start: a
client -> Traefik v3.6 (HTTPRoute; BackendTLSPolicy on the proxy Service's
https port, so Traefik speaks TLS to the proxy and verifies it) ->
zerowire-proxy's TLS listener -> a TLS backend (e2e/harness/tlsbackend.py,
run by the kubelet stand-in), woken from zero by the real KEDA
(e2e/real/realstack.py).

The workload's Service port says TLS (appProtocol https). The webhook
rewrites the backendRef to the proxy Service's https port (8443) because the
chart made a BackendTLSPolicy for it (proxy.tls.backendTLSPolicy with
caConfigMap: the ConfigMap with the CA that signed the proxy's certificate,
made here). Traefik verifies the proxy's certificate for
zerowire-proxy.<ns>.svc against that CA; the proxy terminates TLS, routes by
Host, holds the request while KEDA scales the Deployment 0 -> 1 and speaks
TLS to the new Pod because its EndpointSlice port says https. A second
route to a backend that a BackendTLSPolicy of its own verifies is left
alone with the warning. Deleting the proxy's BackendTLSPolicy (the gateway
would no longer verify the proxy) restores the HTTPRoute byte for byte."""

import json
import os
import re
import subprocess
import time

import pytest

from harness.stack import binary
from realstack import RealStack, module_realstack
from test_real_seeds import GATEWAY, HR, route_accepted, through_traefik, wait_routed, wait_zero

NS = "tlsapp"
HOST = "tls.example.com"
CA_CONFIGMAP = "zerowire-proxy-e2e-ca"

WORKLOAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %(ns)s}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {zerowire.test/backend: tls, zerowire.test/startup-delay-ms: "500"}
    spec:
      containers:
        - {name: web, image: example/tls-web, ports: [{containerPort: 8443}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %(ns)s}
spec:
  selector: {app: web}
  ports: [{name: https, port: 443, targetPort: 8443, appProtocol: https}]
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: web, namespace: %(ns)s}
spec:
  scaleTargetRef: {name: web}
  minReplicaCount: 0
  maxReplicaCount: 2
  pollingInterval: 1
  cooldownPeriod: 3
  triggers:
    - type: external-push
      metadata:
        scalerAddress: %(addr)s
        service: web
        port: "443"
        hosts: %(host)s
        scalingMetric: requestRate
        targetValue: "5"
"""

ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: %(ns)s}
spec:
  parentRefs: [{name: tls-gw, namespace: %(ns)s}]
  hostnames: [%(host)s]
  rules:
    - backendRefs: [{name: web, port: 443}]
"""

# A second workload like the first whose Service a BackendTLSPolicy of its
# own targets: the gateway verifies it, so it is left alone.
VERIFIED_HOST = "verified.example.com"
VERIFIED = WORKLOAD.replace("web", "verified") + """---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: verified, namespace: %(ns)s}
spec:
  targetRefs: [{group: "", kind: Service, name: verified}]
  validation: {hostname: verified.example.com, wellKnownCACertificates: System}
"""


def log(msg):
    print("[real-tls %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class TLSStack(RealStack):
    """RealStack whose proxy also opens its TLS listener, with a certificate
    for zerowire-proxy.<ns>.svc from zerowire-certs' CA, and whose chart
    gets proxy.tls (the Service port https) and the BackendTLSPolicy."""

    def __init__(self, *a, **kw):
        kw["values"] = ["proxy.tls.enabled=true", "proxy.tls.defaultSecret=unused-here",
                        "proxy.tls.backendTLSPolicy.enabled=true",
                        "proxy.tls.backendTLSPolicy.caConfigMap=" + CA_CONFIGMAP]
        super().__init__(*a, **kw)

    def make_ca(self, d, name):
        """A CA and a certificate it signed for name (and this host's
        address) in d (zerowire-certs); returns the CA's PEM."""
        r = subprocess.run([binary("certs", False), "--out-dir", d, "--dns", name, "--ip", self.host],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(d, "ca.crt")) as f:
            return f.read()

    def set_ca(self, pem):
        """The CA gateways verify the proxy with (the policy's ConfigMap)."""
        self.cluster.apply(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": CA_CONFIGMAP, "namespace": self.proxy_namespace},
                                       "data": {"ca.crt": pem}}))

    def _start_proxy(self):
        d = os.path.join(self.dir, "proxy-pki")
        name = "%s.%s.svc" % (self.proxy_service, self.proxy_namespace)
        self.proxy_ca = self.make_ca(d, name)
        self.set_ca(self.proxy_ca)
        self.tls_port = self._free_host_port()
        self.proxy_port_by_name["https"] = self.tls_port
        self.proxy_extra_args = ["--tls-listen", "%s:%d" % (self.host, self.tls_port),
                                 "--tls-cert-file", os.path.join(d, "tls.crt"),
                                 "--tls-key-file", os.path.join(d, "tls.key")]
        super()._start_proxy()


@pytest.fixture
def tls_stack(realc, kubelet, keda, traefik):
    realc.ensure_namespace(NS)
    yield from module_realstack(realc, kubelet, keda, cls=TLSStack, app_namespaces=[NS])


def metric(text, name):
    """The sum of a metric's samples (all labels) in Prometheus text."""
    return sum(float(v) for v in re.findall(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M))


def test_tls_route_through_traefik_and_the_proxy_wakes_from_zero(realc, kubelet, traefik, tls_stack):
    st = tls_stack
    pol = st.get("backendtlspolicies.gateway.networking.k8s.io", st.proxy_namespace, st.proxy_service)
    assert pol and pol["spec"]["targetRefs"][0]["sectionName"] == "https", pol
    realc.apply(GATEWAY % {"name": "tls-gw", "ns": NS, "port": traefik.web_port})
    realc.apply(WORKLOAD % {"ns": NS, "addr": st.scaler_address, "host": HOST})
    route = ROUTE % {"ns": NS, "host": HOST}
    applied = st.as_applied(route)
    st.wait_for(lambda: '"port": 8443' in st.kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-",
                                                      input=route).stdout, 30,
                "target web and the proxy's BackendTLSPolicy known to the webhook")

    st.apply(route, validate=True)
    hr = st.get(HR, NS, "web")
    assert hr["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": st.proxy_service, "namespace": st.proxy_namespace,
         "port": 8443, "weight": 1}], hr["spec"]
    st.wait_for(lambda: route_accepted(st, NS, "web"), 60, "Traefik accepts the rewritten HTTPRoute")
    wait_routed(st, traefik, HOST, "kubernetesgateway", "Traefik routes the HTTPRoute to the proxy's TLS port",
                want="https://%s:%d" % (st.host, st.tls_port))
    assert st.replicas(NS, "web") == 0

    r, cold = through_traefik(st, traefik, HOST, "/anything", NS, "web", cold=True)
    assert r.headers.get("X-Backend-TLS", "").startswith("TLSv1."), r.headers
    log("HTTP through Traefik -> proxy TLS listener -> TLS backend: cold request answered in %.2fs" % cold)
    r, warm = through_traefik(st, traefik, HOST, "/anything", NS, "web", cold=False)
    log("warm: %.1f ms" % (warm * 1000))
    text = st.admin_get("/metrics")[1].decode()
    # Both TLS legs of the proxy: Traefik's handshake on the listener, the proxy's to the backend.
    assert metric(text, "zerowire_tls_handshakes_total") >= 1, text
    assert metric(text, "zerowire_upstream_tls_handshakes_total") >= 1, text
    assert metric(text, "zerowire_upstream_tls_errors_total") == 0, text

    # Traefik does verify the proxy: with another CA in the policy's ConfigMap it
    # refuses the proxy's certificate (the proxy counts the failed handshakes),
    # with the right one it routes again.
    st.set_ca(st.make_ca(os.path.join(st.dir, "other-pki"), "other.example.com"))
    st.wait_for(lambda: st.request_via(traefik, HOST, "/anything", timeout=10).status_code >= 500, 60,
                "Traefik refuses the proxy's certificate under another CA", interval=0.5)
    failed = metric(st.admin_get("/metrics")[1].decode(), "zerowire_tls_errors_total")
    assert failed >= 1, "no failed handshake counted"
    st.set_ca(st.proxy_ca)
    st.wait_for(lambda: st.request_via(traefik, HOST, "/anything", timeout=10).status_code == 200, 60,
                "Traefik verifies the proxy again with the right CA", interval=0.5)
    log("a wrong CA in the policy's ConfigMap: refused (%d failed handshakes counted); right CA: 200" % failed)

    # A backend verified by a policy of its own is left alone, with the warning.
    verified = VERIFIED % {"ns": NS, "addr": st.scaler_address, "host": VERIFIED_HOST}
    realc.apply(verified)
    other = ROUTE.replace("web", "verified") % {"ns": NS, "host": VERIFIED_HOST}
    st.wait_for(lambda: "verified by BackendTLSPolicy %s/verified" % NS in st.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=other).stderr, 30,
        "the webhook leaves the backend its own BackendTLSPolicy verifies alone, with the warning")

    down = wait_zero(st, NS, "web", kubelet)
    log("back to 0 %.1fs after the last request" % down)
    # The proxy's BackendTLSPolicy gone: the route is put back (no unverified hop).
    realc.kubectl("delete", "backendtlspolicy", st.proxy_service, "-n", st.proxy_namespace)
    st.wait_restored(applied, timeout=60)
    log("restored once the proxy's BackendTLSPolicy is gone")
    st.delete(route)
    for src in (WORKLOAD % {"ns": NS, "addr": st.scaler_address, "host": HOST}, verified):
        st.delete(src)
