"""The local control plane itself: API access, kubectl, CRDs, ServiceAccount
tokens with RBAC, apiserver restart and etcd compaction (410 Gone)."""

import json
import threading

import requests

from harness.cluster import KUBECTL, ClusterError

OUR_KINDS = [
    ("keda.sh/v1alpha1", "scaledobjects"), ("http.keda.sh/v1alpha1", "httpscaledobjects"),
    ("http.keda.sh/v1beta1", "interceptorroutes"), ("gateway.networking.k8s.io/v1", "httproutes"),
    ("gateway.networking.k8s.io/v1beta1", "httproutes"), ("gateway.networking.k8s.io/v1", "grpcroutes"),
    ("gateway.networking.k8s.io/v1beta1", "referencegrants"), ("networking.istio.io/v1alpha3", "virtualservices"),
    ("networking.istio.io/v1beta1", "virtualservices"), ("networking.istio.io/v1", "destinationrules"),
    ("gateway.solo.io/v1", "virtualservices"), ("gateway.solo.io/v1", "routetables"),
    ("gloo.solo.io/v1", "upstreams"), ("networking.gloo.solo.io/v2", "routetables"),
    ("networking.gloo.solo.io/v2", "virtualdestinations"), ("networking.gloo.solo.io/v2", "externalservices"),
]


def test_server_and_kubeconfig(cluster):
    assert cluster.server.startswith("https://127.0.0.1:")
    v = cluster.api("GET", "/version")
    assert v["gitVersion"] == "v1.20.2"
    r = cluster.kubectl("get", "namespace", "default", "-o", "json")
    assert json.loads(r.stdout)["metadata"]["name"] == "default"
    r = cluster.kubectl("get", "namespace", "does-not-exist", check=False)
    assert r.returncode != 0 and "not found" in r.stderr


def test_our_crds_served(cluster):
    for gv, plural in OUR_KINDS:
        lst = cluster.api("GET", "/apis/%s/namespaces/default/%s" % (gv, plural))
        assert lst["items"] == [], (gv, plural)
    assert "discovery.k8s.io/v1beta1" in cluster.kubectl("api-versions").stdout


def test_apply_text_and_scale(cluster):
    ns = cluster.create_namespace("apply")
    cluster.apply("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example/web}]}
""" % ns)
    cluster.api("PATCH", "/apis/apps/v1/namespaces/%s/deployments/web/scale" % ns, {"spec": {"replicas": 3}},
                content_type="application/merge-patch+json")
    d = cluster.api("GET", "/apis/apps/v1/namespaces/%s/deployments/web" % ns)
    assert d["spec"]["replicas"] == 3
    # A ScaledObject with an external-push trigger is accepted as written.
    cluster.apply("""
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: web, namespace: %s}
spec:
  scaleTargetRef: {name: web}
  triggers: [{type: external-push, metadata: {scalerAddress: "127.0.0.1:9090", hosts: a.example}}]
""" % ns)
    so = cluster.api("GET", "/apis/keda.sh/v1alpha1/namespaces/%s/scaledobjects/web" % ns)
    assert so["spec"]["triggers"][0]["metadata"]["hosts"] == "a.example"
    cluster.delete_namespace(ns)
    try:
        cluster.api("GET", "/api/v1/namespaces/" + ns)
        raise AssertionError("namespace still present")
    except ClusterError as e:
        assert e.status == 404
    # Its objects are gone too (cluster-wide lists do not show them).
    deps = cluster.api("GET", "/apis/apps/v1/deployments")["items"]
    sos = cluster.api("GET", "/apis/keda.sh/v1alpha1/scaledobjects")["items"]
    assert not [o for o in deps + sos if o["metadata"]["namespace"] == ns]


def test_sa_token_rbac(cluster):
    ns = cluster.create_namespace("rbac")
    tok = cluster.sa_token(ns, "reader")
    path = "/api/v1/namespaces/%s/configmaps" % ns
    try:
        cluster.api("GET", path, token=tok)
        raise AssertionError("an unbound ServiceAccount could list configmaps")
    except ClusterError as e:
        assert e.status == 403 and "system:serviceaccount:%s:reader" % ns in str(e)
    cluster.kubectl("-n", ns, "create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps")
    cluster.kubectl("-n", ns, "create", "rolebinding", "cm-reader", "--role=cm-reader",
                    "--serviceaccount=%s:reader" % ns)
    assert cluster.api("GET", path, token=tok)["items"] == []
    unpriv = cluster.tokens["unprivileged"]
    assert cluster.api("GET", path, token=unpriv, check=False) is not None
    try:
        cluster.api("GET", path, token=unpriv)
        raise AssertionError("unprivileged token could list")
    except ClusterError as e:
        assert e.status == 403


def _cm(cluster, ns, name):
    return cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                       {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})


def test_compaction_forces_410(cluster):
    ns = cluster.create_namespace("compact")
    old_rv = _cm(cluster, ns, "a")["metadata"]["resourceVersion"]
    _cm(cluster, ns, "b")
    _cm(cluster, ns, "c")
    rev = cluster.compact_etcd()
    assert rev >= int(old_rv)
    s = cluster.new_session()
    r = s.get(cluster.server + "/api/v1/namespaces/%s/configmaps" % ns,
              params={"watch": "1", "resourceVersion": old_rv, "timeoutSeconds": "5"}, stream=True, timeout=15)
    first = json.loads(next(r.iter_lines()))
    r.close()
    s.close()
    assert first["type"] == "ERROR" and first["object"]["code"] == 410, first


def test_restart_apiserver_ends_watch_and_keeps_data(cluster):
    ns = cluster.create_namespace("restart")
    _cm(cluster, ns, "before")
    port = cluster.server
    s = cluster.new_session()
    r = s.get(cluster.server + "/api/v1/namespaces/%s/configmaps" % ns,
              params={"watch": "1", "timeoutSeconds": "60"}, stream=True, timeout=90)
    ended = threading.Event()

    def drain():
        try:
            for _ in r.iter_lines():
                pass
        except requests.RequestException:
            pass
        ended.set()
    t = threading.Thread(target=drain, daemon=True)
    t.start()
    cluster.restart_apiserver()
    assert ended.wait(20), "watch survived an apiserver restart"
    s.close()
    assert cluster.server == port
    names = [c["metadata"]["name"] for c in cluster.api("GET", "/api/v1/namespaces/%s/configmaps" % ns)["items"]]
    assert names == ["before"]
    cluster.kubectl("get", "ns", ns)


def test_cluster_up_down_scripts(tmp_path):
    """make cluster-up / cluster-down: own ports and directory, kubeconfig
    works, everything is gone afterwards."""
    import os
    import subprocess

    from harness.util import REPO
    env = dict(os.environ)
    env.pop("ZW_CLUSTER_DIR", None)
    up = subprocess.run([os.path.join(REPO, "e2e", "cluster-up.sh")], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True, timeout=300, env=env)
    assert up.returncode == 0, up.stderr
    exports = dict(line[len("export "):].split("=", 1) for line in up.stdout.splitlines()
                   if line.startswith("export "))
    d = exports["ZW_CLUSTER_DIR"]
    try:
        with open(os.path.join(d, "state.json")) as f:
            pids = [v for k, v in json.load(f).items() if k.endswith("_pid")]
        r = subprocess.run([KUBECTL, "--kubeconfig", exports["KUBECONFIG"], "get", "crd",
                            "httproutes.gateway.networking.k8s.io", "-o", "name"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode == 0 and "httproutes" in r.stdout, r.stderr
    finally:
        down = subprocess.run([os.path.join(REPO, "e2e", "cluster-down.sh"), d], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert down.returncode == 0, down.stderr
    assert not os.path.exists(d)
    for pid in pids:
        assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"
