"""Ingress alias wiring against the real kube-apiserver (1.20): in the default
--alias-mode=endpointslice the reconciler makes a selectorless alias Service
with the proxy Service's ports and an EndpointSlice mirroring the ready
endpoints of the proxy Service's EndpointSlices (made here: no controller
runs), follows their changes, converts the alias when the mode changes
(externalname and back) and removes both with the last Ingress that needs
them. The real gateway routing through either kind of alias is
test_alias_traefik.py."""

import json
import os
import subprocess

import pytest

from test_webhook_e2e import BIN, INGRESS, PROXY_NS, get, running_webhook, scaled_object, wait_for

SLICES = "endpointslices.v1beta1.discovery.k8s.io"  # 1.20 serves v1beta1 only

PROXY_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: zerowire-proxy, namespace: %s}
spec:
  selector: {app.kubernetes.io/name: zerowire-proxy}
  ports:
    - {name: http, port: 8080, targetPort: 18080}
    - {name: scaler, port: 9090, targetPort: 9090}
""" % PROXY_NS

def proxy_slice(ready):
    """The proxy Service's EndpointSlice: 10.1.0.1 ready, 10.1.0.2 as given."""
    return json.dumps({
        "apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
        "metadata": {"name": "zerowire-proxy-abc", "namespace": PROXY_NS,
                     "labels": {"kubernetes.io/service-name": "zerowire-proxy"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": True}},
                      {"addresses": ["10.1.0.2"], "conditions": {"ready": ready}}],
        "ports": [{"name": "http", "port": 18080, "protocol": "TCP"},
                  {"name": "scaler", "port": 9090, "protocol": "TCP"}]})


def alias_slice(cluster, ns):
    return get(cluster, SLICES, ns, "zerowire-proxy-zw-ipv4")


def addresses(sl):
    return sorted(a for e in sl.get("endpoints") or [] for a in e["addresses"])


@pytest.fixture
def webhook(cluster, tmp_path):
    yield from running_webhook(cluster, str(tmp_path))


def restart(w, *args):
    assert w.stop() == 0, w.logs()[-3000:]
    w.args = list(args)
    w.start()


def test_endpointslice_alias_mirrors_and_converts(cluster, webhook):
    cluster.apply(PROXY_SERVICE)
    cluster.apply(proxy_slice(False))
    ns = cluster.create_namespace("alias")
    cluster.apply(scaled_object(ns, "app"))
    manifest = INGRESS % {"ns": ns, "host": "app.example.com"}
    wait_for(cluster, lambda: "zerowire-proxy" in cluster.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-", input=manifest).stdout, "target known")
    cluster.apply(manifest)

    # A selectorless alias with the proxy Service's ports, and its slice with
    # the ready proxy endpoint only, owned by the alias.
    svc = wait_for(cluster, lambda: get(cluster, "service", ns, "zerowire-proxy"), "alias Service")
    assert svc["spec"]["type"] == "ClusterIP" and "selector" not in svc["spec"], svc["spec"]
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http", 8080), ("scaler", 9090)]
    sl = wait_for(cluster, lambda: alias_slice(cluster, ns), "alias EndpointSlice")
    assert addresses(sl) == ["10.1.0.1"]
    assert sorted((p["name"], p["port"]) for p in sl["ports"]) == [("http", 18080), ("scaler", 9090)]
    labels = sl["metadata"]["labels"]
    assert labels["kubernetes.io/service-name"] == "zerowire-proxy"
    assert labels["endpointslice.kubernetes.io/managed-by"] == "webhook.zerowire.io"
    assert labels["app.kubernetes.io/managed-by"] == "zerowire"
    assert sl["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]

    # A second proxy pod becomes ready: the alias follows.
    cluster.apply(proxy_slice(True))
    wait_for(cluster, lambda: addresses(alias_slice(cluster, ns) or {}) == ["10.1.0.1", "10.1.0.2"],
             "alias EndpointSlice with both proxy pods")
    # Someone edits the alias slice: the reconciler puts it back.
    cluster.kubectl("patch", SLICES, "zerowire-proxy-zw-ipv4", "-n", ns, "--type=merge",
                    "-p", json.dumps({"endpoints": [{"addresses": ["10.9.9.9"]}]}))
    wait_for(cluster, lambda: addresses(alias_slice(cluster, ns) or {}) == ["10.1.0.1", "10.1.0.2"],
             "alias EndpointSlice repaired")

    # Switching to externalname converts the alias in place and drops the slice.
    restart(webhook, "--alias-mode", "externalname")
    wait_for(cluster, lambda: (get(cluster, "service", ns, "zerowire-proxy") or {}).get("spec", {}).get("type")
             == "ExternalName", "alias converted to ExternalName")
    svc = get(cluster, "service", ns, "zerowire-proxy")
    assert svc["spec"]["externalName"] == "zerowire-proxy.zerowire.svc.cluster.local"
    assert "clusterIP" not in svc["spec"]
    wait_for(cluster, lambda: alias_slice(cluster, ns) is None, "alias EndpointSlice removed")

    # And back.
    restart(webhook)
    wait_for(cluster, lambda: (get(cluster, "service", ns, "zerowire-proxy") or {}).get("spec", {}).get("type")
             == "ClusterIP", "alias converted back to a selectorless Service")
    wait_for(cluster, lambda: addresses(alias_slice(cluster, ns) or {}) == ["10.1.0.1", "10.1.0.2"],
             "alias EndpointSlice again")

    # The last Ingress needing it goes: alias and slice go too.
    cluster.kubectl("delete", "ingress", "app", "-n", ns)
    wait_for(cluster, lambda: get(cluster, "service", ns, "zerowire-proxy") is None, "alias Service removed")
    wait_for(cluster, lambda: alias_slice(cluster, ns) is None, "alias EndpointSlice removed")
    cluster.kubectl("delete", "scaledobject", "app", "-n", ns)
    cluster.kubectl("delete", SLICES, "zerowire-proxy-abc", "-n", PROXY_NS)
    cluster.kubectl("delete", "service", "zerowire-proxy", "-n", PROXY_NS)


def test_alias_mode_flag_rejects_unknown():
    r = subprocess.run([BIN, "--alias-mode", "ExternalName", "--no-kube", "--tls-cert-file", os.devnull,
                        "--tls-key-file", os.devnull], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--alias-mode" in r.stderr, r.stderr
