"""The proxy's namespace outside --watch-namespaces, against the real
kube-apiserver: what each program reads of the proxy's own objects there is
watched whatever the namespace list says.

- zerowire-webhook with --watch-namespaces <app ns> and --proxy-namespace
  another one: an HTTPRoute to a TLS backend (Service port appProtocol https)
  is rewritten to the proxy Service's `https` port once a BackendTLSPolicy
  targets that port, without the "no port https" / "no BackendTLSPolicy"
  warnings; when the policy is deleted the route is left alone with the
  BackendTLSPolicy warning (the deletion was seen too).
- zerowire-proxy, two replicas with --watch-namespaces <app ns> and
  --peers-service in another namespace: each finds the other through the
  headless Service's EndpointSlice (zerowire_scaler_peers_live 1).

Reviews are posted straight to the webhook's /mutate (no
MutatingWebhookConfiguration: the module webhook of test_webhook_e2e.py keeps
the chart's), with --leader-elect=false and a proxy namespace of its own, so
its reconciler touches nothing another test made. The BackendTLSPolicy CRD
comes from ../shared/fixtures (Gateway API v1.6.1); the test skips without
it."""

import base64
import json
import os
import random
import re
import ssl
import urllib.request

import jsonpatch
import pytest

from harness import util
from harness.proxyproc import ProxyProc, peer_ports, peer_service
import test_webhook_e2e as wmod

BTLS_CRD = os.path.join(util.shared_dir(), "fixtures", "crds",
                        "gateway-api-v1.6.1-standard-backendtlspolicies.yaml")
HOST = "tls.watchns.test"

PROXY_OBJECTS = """
apiVersion: v1
kind: Service
metadata: {name: zerowire-proxy, namespace: %(pns)s}
spec:
  ports:
    - {name: http, port: 8080}
    - {name: h2c, port: 8081, appProtocol: kubernetes.io/h2c}
    - {name: https, port: 8443, appProtocol: https}
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: zerowire-proxy, namespace: %(pns)s}
spec:
  targetRefs:
    - {group: "", kind: Service, name: zerowire-proxy, sectionName: https}
  validation:
    hostname: zerowire-proxy.%(pns)s.svc
    caCertificateRefs:
      - {group: "", kind: ConfigMap, name: zerowire-proxy-ca}
"""

WORKLOAD = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %(ns)s}
spec:
  ports: [{name: https, port: 443, targetPort: 8443, appProtocol: https}]
"""

ROUTE = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "web", "namespace": None},
         "spec": {"parentRefs": [{"name": "gw"}], "hostnames": [HOST],
                  "rules": [{"backendRefs": [{"name": "web", "port": 443}]}]}}


@pytest.fixture(scope="module")
def btls_crd(cluster):
    if not os.path.exists(BTLS_CRD):
        pytest.skip("BackendTLSPolicy CRD absent: %s (../shared not present)" % BTLS_CRD)
    had = cluster.kubectl("get", "crd", "backendtlspolicies.gateway.networking.k8s.io", check=False)
    cluster.install_crd_dir(BTLS_CRD, validate=False)  # CEL rules: unknown to a 1.20 kubectl
    yield
    if had.returncode != 0:
        cluster.kubectl("delete", "-f", BTLS_CRD, "--ignore-not-found", "--wait=false", check=False)


def review(webhook, obj):
    """Posts an AdmissionReview of obj (CREATE) to the webhook's /mutate;
    returns (obj as admission leaves it, warnings)."""
    group, _, version = obj["apiVersion"].rpartition("/")
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-%d" % random.randrange(1 << 30),
                        "kind": {"group": group, "version": version, "kind": obj["kind"]},
                        "resource": {"group": group, "version": version, "resource": "httproutes"},
                        "namespace": obj["metadata"]["namespace"], "name": obj["metadata"]["name"],
                        "operation": "CREATE", "object": obj}}
    ctx = ssl.create_default_context(cafile=webhook.ca)
    req = urllib.request.Request("https://127.0.0.1:%d/mutate" % webhook.port, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        resp = json.loads(r.read())["response"]
    out = obj
    if "patch" in resp:
        out = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(resp["patch"])))
    return out, resp.get("warnings", [])


def test_webhook_tls_rewrite_with_proxy_namespace_unwatched(cluster, btls_crd, tmp_path):
    ns = cluster.create_namespace("wnapp")
    pns = cluster.create_namespace("wnproxy")
    cluster.apply(PROXY_OBJECTS % {"pns": pns}, validate=False)
    cluster.apply(WORKLOAD % {"ns": ns})
    cluster.apply(wmod.scaled_object(ns, "web", port=443, hosts=HOST))
    route = json.loads(json.dumps(ROUTE))
    route["metadata"]["namespace"] = ns
    w = wmod.WebhookProc(cluster, str(tmp_path), args=[
        "--watch-namespaces", ns, "--proxy-namespace", pns, "--leader-elect=false"])
    w.start()
    try:
        ctx = ssl.create_default_context(cafile=w.ca)

        def ready():  # every watch listed: the registry knows the Services
            with urllib.request.urlopen("https://127.0.0.1:%d/readyz" % w.port, timeout=5, context=ctx) as r:
                return r.status == 200
        util.wait_for(ready, 30, 0.1, "webhook ready")
        seen = {}

        def rewritten():
            seen["obj"], seen["warnings"] = review(w, route)
            return seen["obj"]["spec"]["rules"][0]["backendRefs"][0]["name"] == "zerowire-proxy"
        try:
            util.wait_for(rewritten, 30, 0.25, "HTTPRoute to the TLS backend rewritten")
        except TimeoutError:
            pytest.fail("HTTPRoute to the TLS backend not rewritten within 30 s; warnings: %s"
                        % seen.get("warnings"))
        assert seen["obj"]["spec"]["rules"][0]["backendRefs"] == [
            {"name": "zerowire-proxy", "namespace": pns, "port": 8443}], seen
        tls_warnings = [x for x in seen["warnings"] if "BackendTLSPolicy" in x or "no port https" in x]
        assert not tls_warnings, tls_warnings
        log = w.logs()
        for kind in ("services", "backendtlspolicies"):
            assert re.search(r"event=source_synced resource=%s\.\S* namespace=%s\b" % (kind, pns), log), \
                log[-3000:]

        # The policy goes: the gateway would no longer verify the proxy, the
        # route is left alone and the warning names the policy, not the port.
        cluster.kubectl("delete", "backendtlspolicy", "zerowire-proxy", "-n", pns)

        def left_alone():
            seen["obj"], seen["warnings"] = review(w, route)
            return seen["obj"] == route
        util.wait_for(left_alone, 30, 0.25, "HTTPRoute left alone once the BackendTLSPolicy is gone")
        assert any("no BackendTLSPolicy targets the proxy Service %s/zerowire-proxy" % pns in x
                   for x in seen["warnings"]), seen["warnings"]
        assert not any("no port https" in x for x in seen["warnings"]), seen["warnings"]
    finally:
        rc = w.stop()
        logs = w.logs()
        assert "AddressSanitizer" not in logs and "runtime error" not in logs, logs[-5000:]
        assert rc == 0, logs[-3000:]


def test_proxy_peers_service_namespace_unwatched(cluster, tmp_path):
    ns = cluster.create_namespace("wnapp")
    pns = cluster.create_namespace("wnproxy")
    ports = peer_ports(2)
    token = tmp_path / "peer-token"
    token.write_text("watchns-peer-token-%d\n" % random.randrange(1 << 60))
    args = ["--peers-service", peer_service(cluster, pns, ports), "--peer-token-file", str(token)]
    proxies = [ProxyProc(cluster, tmp_path, p, namespaces=[ns], args=args, name="proxy-%s" % "AB"[i])
               for i, p in enumerate(ports)]
    try:
        for p in proxies:
            p.start()
        for p in proxies:
            util.wait_for(lambda p=p: p.metric("zerowire_scaler_peers_live") == 1, 15,
                          what="%s sees its peer through %s/zerowire-peers" % (p.name, pns))
    finally:
        for p in proxies:
            p.stop()
