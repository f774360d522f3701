"""The kubelet stand-in (harness/kubelet.py) on the current control plane:
the real scheduler binds Pods to its Node, the stand-in runs them in network
namespaces with 10.x addresses and reports them Running and Ready, and the
real ReplicaSet and EndpointSlice controllers do the rest. Skipped while the
Kubernetes peers are not built (e2e/build-peers.sh kubernetes) or without
root / iproute2."""

import os
import shutil
import signal
import subprocess
import time

import pytest
import requests

from harness import kubelet as kl
from harness.realcluster import peer_binaries

if peer_binaries("kubernetes") is None:
    pytest.skip("real peers not built: run e2e/build-peers.sh kubernetes once (docs/real-peers.md)",
                allow_module_level=True)
if os.geteuid() != 0 or not shutil.which("ip"):
    pytest.skip("the kubelet stand-in needs root and iproute2 (network namespaces)", allow_module_level=True)

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %(ns)s}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 3
      containers:
      - name: web
        image: example/web
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %(ns)s}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""


def wait_default_sa(realc, ns):
    realc.wait_for(lambda: realc.api("GET", "/api/v1/namespaces/%s/serviceaccounts/default" % ns,
                                   check=False).get("kind") == "ServiceAccount", 60, 0.2, "default SA in " + ns)


def slice_addresses(realc, ns, svc, ready_only=True):
    items = realc.api("GET", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % ns,
                     params={"labelSelector": "kubernetes.io/service-name=" + svc})["items"]
    out = set()
    for s in items:
        assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        for e in s.get("endpoints") or []:
            if not ready_only or e.get("conditions", {}).get("ready"):
                out.update(e["addresses"])
    return out


def test_node_registered_and_ready(realc, kubelet):
    n = realc.api("GET", "/api/v1/nodes/" + kubelet.node)
    assert n["spec"]["podCIDR"] == str(kubelet.cidr)
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    lease = realc.api("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + kubelet.node)
    assert lease["spec"]["holderIdentity"] == kubelet.node
    # The real node lifecycle controller leaves a Node with a fresh Lease untainted.
    assert not [t for t in n["spec"].get("taints", []) if t["key"].startswith("node.kubernetes.io/")]


def test_deployment_runs_published_and_scaled_to_zero(realc, kubelet):
    ns = realc.create_namespace("kl")
    wait_default_sa(realc, ns)
    realc.apply(APP % {"ns": ns})

    def deployment_ready():
        d = realc.api("GET", "/apis/apps/v1/namespaces/%s/deployments/web" % ns)
        return d.get("status", {}).get("readyReplicas") == 2
    realc.wait_for(deployment_ready, 90, 0.3, "Deployment web: 2 ready replicas (real ReplicaSet controller)")
    pods = realc.api("GET", "/api/v1/namespaces/%s/pods" % ns)["items"]
    assert len(pods) == 2
    ips = set()
    for p in pods:
        assert p["spec"]["nodeName"] == kubelet.node  # bound by the real scheduler
        st = p["status"]
        assert st["phase"] == "Running"
        assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"
        assert st["containerStatuses"][0]["ready"] is True
        assert st["podIP"].startswith("10.") and st["podIP"] in [str(h) for h in kubelet.cidr.hosts()]
        ips.add(st["podIP"])

    # The real EndpointSlice controller publishes both addresses with the named targetPort resolved.
    realc.wait_for(lambda: slice_addresses(realc, ns, "web") == ips, 60, 0.3, "EndpointSlice of web lists %s" % ips)
    sl = realc.api("GET", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % ns,
                  params={"labelSelector": "kubernetes.io/service-name=web"})["items"][0]
    assert sl["ports"][0]["port"] == 8080

    # curl from the host reaches each pod in its namespace.
    names = {p["status"]["podIP"]: p["metadata"]["name"] for p in pods}
    for ip in ips:
        r = subprocess.run(["curl", "-sS", "--noproxy", "*", "-m", "5", "http://%s:8080/anything" % ip],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        assert "pod=%s ip=%s" % (names[ip], ip) in r.stdout

    netns = {p.netns for p in kubelet.pods(ns)}
    assert len(netns) == 2 and netns <= set(subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE,
                                                            text=True).stdout.split())

    # Scale to zero through /scale: the ReplicaSet controller deletes the Pods
    # gracefully, the stand-in stops them and removes the Pod objects.
    realc.api("PATCH", "/apis/apps/v1/namespaces/%s/deployments/web/scale" % ns, {"spec": {"replicas": 0}},
             content_type="application/merge-patch+json")
    realc.wait_for(lambda: not realc.api("GET", "/api/v1/namespaces/%s/pods" % ns)["items"], 60, 0.3,
                  "Pods deleted after scale to 0")
    realc.wait_for(lambda: not slice_addresses(realc, ns, "web", ready_only=False), 60, 0.3, "EndpointSlice empty")
    kubelet.wait_running(ns, 0, 30)
    left = set(subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout.split())
    assert not netns & left
    stopped = [e for _, ev, e in kubelet.events if ev == "stopped" and e["namespace"] == ns]
    assert len(stopped) == 2 and all(e["seconds"] < 3 for e in stopped)  # backend exits on SIGTERM
    for ip in ips:
        with pytest.raises(requests.RequestException):
            requests.get("http://%s:8080/" % ip, timeout=1)


def test_sigterm_ignored_is_killed_after_grace(realc, kubelet):
    """A process that ignores SIGTERM is killed once deletionGracePeriodSeconds
    have passed, and the Pod object is removed then, not before."""
    ns = realc.create_namespace("kg")
    wait_default_sa(realc, ns)
    realc.api("POST", "/api/v1/namespaces/%s/pods" % ns, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "c", "image": "example/c"}]}})
    p, = kubelet.wait_running(ns, 1, 60)
    # Make the process ignore SIGTERM (a container slow to stop).
    os.kill(p.proc.pid, signal.SIGSTOP)
    start = time.monotonic()
    realc.api("DELETE", "/api/v1/namespaces/%s/pods/p" % ns)
    realc.wait_for(lambda: realc.api("GET", "/api/v1/namespaces/%s/pods/p" % ns, check=False).get("kind") != "Pod",
                  30, 0.1, "Pod p removed")
    took = time.monotonic() - start
    assert 1.8 <= took < 10, took
    assert any(ev == "sigkill" and e["pod"] == "p" for _, ev, e in kubelet.events)


def test_crashed_process_restarts(realc, kubelet):
    ns = realc.create_namespace("kr")
    wait_default_sa(realc, ns)
    realc.api("POST", "/api/v1/namespaces/%s/pods" % ns, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "example/c", "ports": [{"containerPort": 9090}]}]}})
    p, = kubelet.wait_running(ns, 1, 60)
    os.kill(p.proc.pid, signal.SIGKILL)

    def restarted():
        st = realc.api("GET", "/api/v1/namespaces/%s/pods/p" % ns)["status"]
        cs = st["containerStatuses"][0]
        return cs["restartCount"] == 1 and cs["ready"] and st["podIP"] == p.ip
    try:
        realc.wait_for(restarted, 30, 0.2, "container restarted, Ready again, same address")
    except TimeoutError:
        print(kubelet.events[-10:], realc.api("GET", "/api/v1/namespaces/%s/pods/p" % ns)["status"])
        raise
    assert requests.get("http://%s:9090/healthz" % p.ip, timeout=5).text == "ok\n"
    realc.api("DELETE", "/api/v1/namespaces/%s/pods/p" % ns)
    kubelet.wait_running(ns, 0, 30)


def test_stale_instance_of_a_crashed_run_is_removed(tmp_path):
    """What a killed run leaves (namespace with a process in it, veth, bridge,
    owner file naming a dead process) is removed by cleanup_stale()."""
    ident = "%04x" % ((os.getpid() ^ 0xBEEF) & 0xFFFF)
    bridge, veth, netns = kl.PREFIX + ident, kl.PREFIX + ident + "v2", "%s-%s-2" % (kl.PREFIX, ident)
    os.makedirs(kl.STATE_DIR, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(os.path.join(kl.STATE_DIR, ident), "w") as f:
        f.write("%d 1\n" % dead.pid)
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns], check=True)
    subprocess.run(["ip", "link", "set", veth, "master", bridge], check=True)
    os.makedirs(os.path.join(kl.ETC_NETNS, netns), exist_ok=True)
    orphan = subprocess.Popen(["ip", "netns", "exec", netns, "sleep", "300"], start_new_session=True)
    try:
        time.sleep(0.3)
        assert ident in kl.cleanup_stale()
        orphan.wait(10)  # killed
        links = subprocess.run(["ip", "-o", "link"], stdout=subprocess.PIPE, text=True).stdout
        assert bridge not in links and veth not in links
        assert netns not in subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout
        assert not os.path.exists(os.path.join(kl.STATE_DIR, ident))
        assert not os.path.exists(os.path.join(kl.ETC_NETNS, netns))
    finally:
        if orphan.poll() is None:
            orphan.kill()
        kl.remove_instance(ident, {netns}, {bridge, veth})
