"""zerowire-proxy against the real kube-apiserver (the session `cluster`
fixture) with the node stand-in turning Deployment replicas into backend
processes and keeping EndpointSlices true: a cold request is held until a
pod becomes ready, and a burst of held requests spreads over the new pods.
Scaling is done by the test (KEDA is exercised by the e2e suites)."""
import concurrent.futures
import http.client
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Proxy, wait_for  # noqa: E402

from harness.node import NodeStandin  # noqa: E402  (top-level conftest puts e2e/ on sys.path)

APP = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  annotations: {{zerowire.test/startup-delay-ms: "400"}}
spec:
  replicas: 0
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
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: web, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: web}}
  minReplicaCount: 0
  triggers:
  - type: external-push
    metadata:
      scalerAddress: zerowire-proxy.zerowire:9090
      service: web
      port: "80"
      hosts: web.test
      scalingMetric: concurrency
      targetValue: "10"
"""


def scale(cluster, ns, n):
    cluster.api("PATCH", "/apis/apps/v1/namespaces/%s/deployments/web/scale" % ns, {"spec": {"replicas": n}},
                content_type="application/merge-patch+json")


@pytest.fixture
def ns(cluster):
    name = cluster.create_namespace("proxy")
    yield name
    cluster.delete_namespace(name)


def get(p, path, timeout=30, host="web.test", header="X-Backend-Pod"):
    """(status, body, X-Zerowire-Cold-Start, the `header` response header)."""
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=timeout)
    c.request("GET", path, headers={"Host": host})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body, r.getheader("X-Zerowire-Cold-Start"), r.getheader(header)


def test_cold_start_through_the_api_server(cluster, ns, tmp_path):
    with NodeStandin(cluster, namespaces=[ns]) as node:
        cluster.apply(APP.format(ns=ns))
        p = Proxy(tmp_path, kubeconfig=cluster.kubeconfig, namespaces=[ns])
        try:
            key = "%s/web/0" % ns
            wait_for(lambda: key in p.queue(), timeout=20, what="target from the ScaledObject")
            # Cold: held until a pod is ready.
            box = {}
            t = threading.Thread(target=lambda: box.setdefault("r", get(p, "/anything")))
            t.start()
            wait_for(lambda: p.queue()[key]["held"] == 1, timeout=10, what="held request")
            time.sleep(0.3)
            assert t.is_alive()
            scale(cluster, ns, 1)
            t.join(30)
            st, body, cold, pod = box["r"]
            assert st == 200 and b"path=/anything" in body, body
            assert cold == "true" and pod
            st, _, cold, _ = get(p, "/again")
            assert st == 200 and cold == "false"

            # Back to zero, then a burst of 40 held requests released onto 4 new pods.
            scale(cluster, ns, 0)
            node.wait_ready(ns, "web", 0, timeout=20)
            n = 40
            with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
                wait_for(lambda: not node.ready_pods(ns, "web"), timeout=20, what="no ready pod")
                # The proxy must have seen the endpoints go away before the burst.
                wait_for(lambda: _no_endpoints(p, ns), timeout=20, what="proxy sees no endpoint")
                futs = [ex.submit(get, p, "/sleep?ms=300") for _ in range(n)]
                wait_for(lambda: p.queue()[key]["held"] == n, timeout=20, what="burst held")
                scale(cluster, ns, 4)
                res = [f.result(timeout=60) for f in futs]
            assert all(r[0] == 200 and r[2] == "true" for r in res), res[:3]
            pods = {}
            for r in res:
                pods[r[3]] = pods.get(r[3], 0) + 1
            # Released as pods turn ready: at least two pods share the burst,
            # none takes everything.
            assert len(pods) >= 2 and max(pods.values()) < n, pods
        finally:
            assert p.stop() == 0


def _no_endpoints(p, ns):
    st, body = p.admin_get("/status")
    return st == 200 and b"127." not in body


WAITING = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: wait, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: wait}}
  minReplicaCount: 0
  triggers:
  - type: kedify-http
    metadata:
      service: wait
      port: "80"
      hosts: wait.test
      scalingMetric: requestRate
      targetValue: "10"
      coldStartWaitingPageEnabled: "true"
      coldStartWaitingPageConfigMapRef: wait-page
"""


def waiting_page(p):
    st, body, _, retry_after = get(p, "/", timeout=10, host="wait.test", header="Retry-After")
    return st, body, retry_after


def test_waiting_page_configmap_followed_live(cluster, ns, tmp_path):
    """The proxy watches the ConfigMap a waiting page names (by name, only
    while a target names it): created, changed and deleted under a running
    proxy, the page follows."""
    cluster.apply(WAITING.format(ns=ns))
    p = Proxy(tmp_path, kubeconfig=cluster.kubeconfig, namespaces=[ns])
    try:
        wait_for(lambda: "%s/wait/0" % ns in p.queue(), timeout=20, what="target")
        assert waiting_page(p) == (503, b"Service is starting, try again later.", "10")
        cm = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: wait-page, namespace: %s}\n"
              "data: {coldStartWaitingPageBody: '<h1>v1</h1>', coldStartWaitingPageStatusCode: '200',"
              " coldStartWaitingPageRetryAfter: '2'}\n" % ns)
        cluster.apply(cm)
        wait_for(lambda: waiting_page(p) == (200, b"<h1>v1</h1>", "2"), timeout=20, what="page from the ConfigMap")
        cluster.apply(cm.replace("<h1>v1</h1>", "<h1>v2</h1>"))
        wait_for(lambda: waiting_page(p)[1] == b"<h1>v2</h1>", timeout=20, what="changed page")
        cluster.kubectl("delete", "configmap", "wait-page", "-n", ns)
        wait_for(lambda: waiting_page(p) == (503, b"Service is starting, try again later.", "10"),
                 timeout=20, what="default page again")
        # A ConfigMap nobody names is not watched.
        assert "configmap_watch" in p.output() and "configmap=%s/other" % ns not in p.output()
    finally:
        assert p.stop() == 0
