"""The node stand-in against the real kube-apiserver: Deployment replicas
become backend processes on loopback addresses, EndpointSlices and the
Deployment status follow; plus the backend's own endpoints."""

import base64
import os
import socket
import struct
import time

import pytest
import requests

from harness.node import NodeStandin

APP = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  annotations: {{zerowire.test/startup-delay-ms: "{delay}"}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: example/web
        ports: [{{name: http, containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
  - {{name: alt, port: 81, targetPort: 8080}}
"""


def slice_of(cluster, ns, svc):
    lst = cluster.api("GET", "/apis/discovery.k8s.io/v1beta1/namespaces/%s/endpointslices" % ns,
                      params={"labelSelector": "kubernetes.io/service-name=" + svc})["items"]
    assert len(lst) <= 1
    return lst[0] if lst else None


def ready_ips(sl):
    return sorted(e["addresses"][0] for e in (sl or {}).get("endpoints") or [] if e["conditions"].get("ready"))


def scale(cluster, ns, name, n):
    cluster.api("PATCH", "/apis/apps/v1/namespaces/%s/deployments/%s/scale" % (ns, name), {"spec": {"replicas": n}},
                content_type="application/merge-patch+json")


@pytest.fixture
def ns(cluster):
    name = cluster.create_namespace("node")
    yield name
    cluster.delete_namespace(name)


def test_scale_up_down(cluster, ns):
    with NodeStandin(cluster, namespaces=[ns]) as node:
        cluster.apply(APP.format(ns=ns, replicas=0, delay=300))
        time.sleep(0.5)
        assert node.pods(ns, "web") == []
        t0 = time.monotonic()
        scale(cluster, ns, "web", 2)
        pods = node.wait_ready(ns, "web", 2, timeout=20)
        assert time.monotonic() - t0 >= 0.3, "pods became ready before their start-up delay"
        ips = sorted(p.ip for p in pods)
        assert len(set(ips)) == 2 and all(ip.startswith("127.") for ip in ips)
        seen = set()
        for p in pods:
            r = requests.get("http://%s:8080/hello" % p.ip, timeout=5)
            assert r.status_code == 200 and ("pod=%s" % p.name) in r.text
            assert r.headers["X-Backend-IP"] == p.ip
            seen.add(r.headers["X-Backend-Pod"])
        assert len(seen) == 2
        sl = cluster.wait_for(lambda: (lambda s: s if ready_ips(s) == ips else None)(slice_of(cluster, ns, "web")),
                              15, what="EndpointSlice with 2 ready endpoints")
        assert sl["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
        assert sorted((p["name"], p["port"]) for p in sl["ports"]) == [("alt", 8080), ("http", 8080)]
        assert {e["targetRef"]["name"] for e in sl["endpoints"]} == {p.name for p in pods}

        def status_is(n):
            st = cluster.api("GET", "/apis/apps/v1/namespaces/%s/deployments/web" % ns)["status"]
            return st.get("readyReplicas", 0) == n and st.get("availableReplicas", 0) == n \
                and st.get("replicas", 0) == n and st.get("observedGeneration", 0) >= 1
        cluster.wait_for(lambda: status_is(2), 15, what="Deployment status 2 ready")

        scale(cluster, ns, "web", 0)
        node.wait_ready(ns, "web", 0, timeout=20)
        cluster.wait_for(lambda: ready_ips(slice_of(cluster, ns, "web")) == [] and
                         not slice_of(cluster, ns, "web")["endpoints"], 15, what="empty EndpointSlice")
        cluster.wait_for(lambda: status_is(0), 15, what="Deployment status 0")
        for ip in ips:
            cluster.wait_for(lambda: not _connects(ip, 8080), 10, what="pod %s to stop listening" % ip)


def _connects(ip, port):
    try:
        socket.create_connection((ip, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_not_ready_endpoint_then_ready_and_crash_replaced(cluster, ns):
    with NodeStandin(cluster, namespaces=[ns]) as node:
        cluster.apply(APP.format(ns=ns, replicas=1, delay=1500))
        # While starting, the endpoint is listed but not ready.
        sl = cluster.wait_for(lambda: (lambda s: s if s and s["endpoints"] else None)(slice_of(cluster, ns, "web")),
                              10, what="EndpointSlice with a starting endpoint")
        assert [e["conditions"]["ready"] for e in sl["endpoints"]] == [False]
        (pod,) = node.wait_ready(ns, "web", 1, timeout=20)
        cluster.wait_for(lambda: ready_ips(slice_of(cluster, ns, "web")) == [pod.ip], 10, what="ready endpoint")
        node.kill_pod(pod)
        (new,) = cluster.wait_for(lambda: [p for p in node.ready_pods(ns, "web") if p.name != pod.name] or None,
                                  20, what="replacement pod")
        assert new.ip != pod.ip
        cluster.wait_for(lambda: ready_ips(slice_of(cluster, ns, "web")) == [new.ip], 10, what="slice update")
        # Deleting the Service removes its EndpointSlice.
        cluster.kubectl("-n", ns, "delete", "service", "web")
        cluster.wait_for(lambda: slice_of(cluster, ns, "web") is None, 10, what="slice deletion")
        assert [e for e in node.events if e[1] == "spawn"], "no spawn event recorded"


def test_backend_endpoints(cluster, ns):
    with NodeStandin(cluster, namespaces=[ns], startup_delay_ms=0) as node:
        cluster.apply(APP.format(ns=ns, replicas=1, delay=0))
        (pod,) = node.wait_ready(ns, "web", 1, timeout=20)
        base = "http://%s:8080" % pod.ip
        h = requests.get(base + "/headers", headers={"X-Test": "yes"}, timeout=5).json()
        assert ["X-Test", "yes"] in h["headers"] and h["pod"] == pod.name
        assert requests.get(base + "/status/503", timeout=5).status_code == 503
        t = time.monotonic()
        assert requests.get(base + "/sleep?ms=300", timeout=5).status_code == 200
        assert time.monotonic() - t >= 0.3
        r = requests.get(base + "/bytes?n=3000000", stream=True, timeout=10)
        assert sum(len(c) for c in r.iter_content(65536)) == 3000000
        up = requests.post(base + "/upload", data=(b"x" * 100000 for _ in range(30)), timeout=10).json()
        assert up["bytes"] == 3000000  # chunked request body
        up = requests.post(base + "/upload", data=b"y" * 12345, timeout=10).json()
        assert up["bytes"] == 12345
        # SSE: events arrive spread over time, not all at the end.
        r = requests.get(base + "/sse?n=3&interval_ms=300", stream=True, timeout=10)
        assert r.headers["Content-Type"] == "text/event-stream"
        times = []
        for line in r.iter_lines():
            if line.startswith(b"data:"):
                times.append(time.monotonic())
        assert len(times) == 3 and times[2] - times[0] >= 0.5
        _websocket_echo(pod.ip, 8080)


def _websocket_echo(ip, port):
    s = socket.create_connection((ip, port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    f = s.makefile("rb")
    assert f.readline().startswith(b"HTTP/1.1 101")
    while f.readline() not in (b"\r\n", b""):
        pass
    for payload in (b"hello", b"b" * 70000):
        mask = os.urandom(4)
        n = len(payload)
        head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBQ", 0x82, 0x80 | 127, n)
        s.sendall(head + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload)))
        b0, b1 = f.read(2)
        ln = b1 & 0x7F
        if ln == 126:
            ln = struct.unpack("!H", f.read(2))[0]
        elif ln == 127:
            ln = struct.unpack("!Q", f.read(8))[0]
        assert f.read(ln) == payload
    s.close()
