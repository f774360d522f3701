"""Live tests of proxy/sources.c (with proxy/routes.c and proxy/endpoints.c)
against the real kube-apiserver 1.20 of the session `cluster` fixture, through
the test tool build/san/test/proxy_tool_sources (ASan/UBSan build; every run
must exit cleanly).

The tool prints one JSON object per line: "table" on every publish,
"endpoints" on every ready-set change, "synced" once; and answers "route",
"get" and "dump" commands on stdin."""

import json
import os
import queue
import subprocess
import threading
import time

import pytest

ROOT = os.environ.get("ZW_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "build", "san", "test", "proxy_tool_sources")


class Sources:
    """A running proxy_tool_sources; collects its events."""

    def __init__(self, *args):
        self.argv = [TOOL, *[str(a) for a in args]]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.events = queue.Queue()
        self.all = []
        self.stderr = []
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            self.all.append(ev)
            self.events.put(ev)

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait(self, pred, timeout=20, what="event"):
        """Returns the first (new) event satisfying pred within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s; stderr:\n%s" % (what, "".join(self.stderr[-30:])))
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if pred(ev):
                return ev

    def cmd(self, line, timeout=10):
        """Sends a command; returns its answer (the next event of that kind)."""
        kind = {"route": "route", "get": "get", "dump": "dump"}[line.split()[0]]
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.wait(lambda e: e["event"] == kind, timeout, "answer to " + line)

    def route(self, host, path="/", *headers):
        ans = self.cmd(" ".join(["route", host, path, *headers]))
        return ans.get("key") or "404 " + ans["miss"]

    def get(self, ns, svc, port):
        return sorted(self.cmd("get %s %s %s" % (ns, svc, port))["endpoints"])

    def table_until(self, pred, timeout=20, what="table"):
        """Waits until the latest published table satisfies pred (checking the
        tables seen so far first)."""
        tables = [e for e in self.all if e["event"] == "table"]
        if tables and pred(tables[-1]):
            return tables[-1]
        return self.wait(lambda e: e["event"] == "table" and pred(e), timeout, what)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("tool did not exit on quit")
        time.sleep(0.1)
        err = "".join(self.stderr)
        assert "Sanitizer" not in err and "runtime error" not in err, err
        assert self.proc.returncode == 0, (self.proc.returncode, err[-3000:])


def keys(table):
    return sorted(t["key"] for t in table["targets"])


@pytest.fixture
def ns(cluster):
    name = cluster.create_namespace("src")
    yield name
    cluster.delete_namespace(name)


def slice_obj(ns, name, svc, addrs, port=8080, port_name="http", version="v1beta1"):
    """An EndpointSlice; addrs is a list of (ip, ready) with ready True, False
    or None (condition omitted)."""
    eps = []
    for ip, ready in addrs:
        ep = {"addresses": [ip]}
        if ready is not None:
            ep["conditions"] = {"ready": ready}
        else:
            ep["conditions"] = {}
        eps.append(ep)
    return {
        "apiVersion": "discovery.k8s.io/" + version,
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": eps,
    }


def served_slice_version(cluster):
    try:
        res = cluster.api("GET", "/apis/discovery.k8s.io/v1")
        if any(r["name"] == "endpointslices" for r in res.get("resources", [])):
            return "v1"
    except Exception:
        pass
    return "v1beta1"


def put_slice(cluster, obj):
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    base = "/apis/%s/namespaces/%s/endpointslices" % (obj["apiVersion"], ns)
    try:
        cur = cluster.api("GET", base + "/" + name)
        obj["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        return cluster.api("PUT", base + "/" + name, obj)
    except Exception as e:
        if getattr(e, "status", 0) != 404:
            raise
        return cluster.api("POST", base, obj)


TARGETS = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: shop, namespace: NS}
spec:
  scaleTargetRef: {name: shop}
  triggers:
    - type: external-push
      metadata:
        scalerAddress: zerowire-scaler.zerowire:9090
        hosts: shop.NS.example
        pathPrefixes: /api
        service: shop
        port: "80"
---
apiVersion: http.keda.sh/v1beta1
kind: InterceptorRoute
metadata: {name: blog, namespace: NS}
spec:
  target: {service: blog, portName: http}
  rules:
    - hosts: [blog.NS.example]
      headers: [{name: x-beta}]
  scalingMetric: {concurrency: {targetValue: 5}}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: blog-so, namespace: NS}
spec:
  scaleTargetRef: {name: blog-deploy}
  maxReplicaCount: 3
  triggers:
    - type: external-push
      metadata: {scalerAddress: "zerowire-scaler.zerowire:9090", interceptorRoute: blog}
---
apiVersion: http.keda.sh/v1alpha1
kind: HTTPScaledObject
metadata: {name: blog, namespace: NS}
spec:
  hosts: [shadowed.NS.example]
  scaleTargetRef: {name: blog, service: blog, port: 80}
---
apiVersion: http.keda.sh/v1alpha1
kind: HTTPScaledObject
metadata: {name: docs, namespace: NS}
spec:
  hosts: ["*.docs.NS.example"]
  scaleTargetRef: {name: docs, service: docs, port: 8000}
"""


def test_live_targets_and_endpoints(cluster, ns):
    cluster.apply(TARGETS.replace("NS", ns))
    cluster.apply("""
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: %s}
spec:
  ports: [{name: web, port: 80, targetPort: 8080}]
""" % ns)
    version = served_slice_version(cluster)
    put_slice(cluster, slice_obj(ns, "shop-1", "shop", [("127.0.0.21", False)], port_name="web",
                                 version=version))

    s = Sources("--kubeconfig", cluster.kubeconfig, "--namespace", ns, "--coalesce-ms", 20)
    try:
        s.wait(lambda e: e["event"] == "synced", 30, "synced")
        t = s.table_until(lambda t: len(t["targets"]) == 3, what="3 targets")
        assert keys(t) == sorted(["%s/shop/0" % ns, "%s/blog" % ns, "%s/docs" % ns])
        blog = next(x for x in t["targets"] if x["key"] == ns + "/blog")
        assert blog["scaledObject"] == "blog-so"      # linked from the ScaledObject
        assert blog["scaleName"] == "blog-deploy"
        assert blog["portName"] == "http"

        # routing decisions in the live table
        assert s.route("shop.%s.example:8080" % ns, "/api/v1") == ns + "/shop/0"
        assert s.route("shop.%s.example" % ns, "/apix") == "404 path"
        assert s.route("blog.%s.example" % ns, "/", "X-Beta:1") == ns + "/blog"
        assert s.route("blog.%s.example" % ns, "/") == "404 headers"
        assert s.route("shadowed.%s.example" % ns) == "404 host"   # IR wins over HSO
        assert s.route("a.b.docs.%s.example" % ns, "/x") == ns + "/docs"

        # endpoint not ready yet: empty; Service port 80 maps to the slice port "web"
        assert s.get(ns, "shop", 80) == []
        put_slice(cluster, slice_obj(ns, "shop-1", "shop", [("127.0.0.21", True), ("127.0.0.22", None)],
                                     port_name="web", version=version))
        t0 = time.monotonic()  # the API server has stored the update
        ev = s.wait(lambda e: e["event"] == "endpoints" and e["service"] == ns + "/shop" and e["ready"] == 2,
                    10, "shop endpoints ready")
        print("slice stored -> store notification seen: %.1f ms" % ((time.monotonic() - t0) * 1000))
        assert ev["ready"] == 2
        assert s.get(ns, "shop", 80) == ["127.0.0.21:8080", "127.0.0.22:8080"]
        assert s.get(ns, "shop", "web") == ["127.0.0.21:8080", "127.0.0.22:8080"]

        # a second slice merges; deleting one removes its endpoints
        put_slice(cluster, slice_obj(ns, "shop-2", "shop", [("127.0.0.23", True)], port_name="web",
                                     version=version))
        s.wait(lambda e: e["event"] == "endpoints" and e["service"] == ns + "/shop" and e["ready"] == 3, 10)
        cluster.api("DELETE", "/apis/discovery.k8s.io/%s/namespaces/%s/endpointslices/shop-1" % (version, ns))
        s.wait(lambda e: e["event"] == "endpoints" and e["service"] == ns + "/shop" and e["ready"] == 1, 10)
        assert s.get(ns, "shop", 80) == ["127.0.0.23:8080"]

        # an invalid object is skipped (logged), the others stay routable
        cluster.apply("""
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: broken, namespace: %s}
spec:
  scaleTargetRef: {name: broken}
  triggers:
    - type: external-push
      metadata: {service: broken, port: "nope", hosts: broken.example}
""" % ns)
        deadline = time.monotonic() + 10
        while not any("source_invalid" in l and "broken" in l for l in s.stderr):
            assert time.monotonic() < deadline, "invalid object not logged"
            time.sleep(0.05)
        assert s.route("shop.%s.example" % ns, "/api") == ns + "/shop/0"

        # deleting the InterceptorRoute: the HTTPScaledObject of that name takes over
        cluster.kubectl("delete", "interceptorroute", "blog", "-n", ns)
        s.table_until(lambda t: any(x["key"] == ns + "/blog" and "shadowed.%s.example" % ns in x["hosts"]
                                    for x in t["targets"]), what="HSO blog after IR delete")
        assert s.route("shadowed.%s.example" % ns) == ns + "/blog"
        assert s.route("blog.%s.example" % ns, "/", "X-Beta:1") == "404 host"

        # a ScaledObject update changes the route at once
        cluster.kubectl("patch", "scaledobject", "shop", "-n", ns, "--type=json", "-p",
                        json.dumps([{"op": "replace", "path": "/spec/triggers/0/metadata/pathPrefixes",
                                     "value": "/shop"}]))
        s.table_until(lambda t: any(x["key"] == ns + "/shop/0" and x["paths"] == ["/shop"]
                                    for x in t["targets"]), what="patched paths")
        assert s.route("shop.%s.example" % ns, "/shop/cart") == ns + "/shop/0"
        assert s.route("shop.%s.example" % ns, "/api") == "404 path"
    finally:
        s.close()


def test_live_all_namespaces_sees_existing_state(cluster, ns):
    """A tool started after the objects exist lists them (all namespaces),
    including endpoints, before reporting synced."""
    version = served_slice_version(cluster)
    cluster.apply("""
apiVersion: http.keda.sh/v1beta1
kind: InterceptorRoute
metadata: {name: pre, namespace: %s}
spec:
  target: {service: pre, port: 9000}
  rules: [{hosts: [pre.%s.example]}]
  scalingMetric: {requestRate: {targetValue: 10}}
""" % (ns, ns))
    put_slice(cluster, slice_obj(ns, "pre-1", "pre", [("127.0.0.31", True)], port=9000, port_name="",
                                 version=version))
    s = Sources("--kubeconfig", cluster.kubeconfig)
    try:
        s.wait(lambda e: e["event"] == "synced", 30, "synced")
        # synced implies the initial lists were applied and a table published
        assert s.route("pre.%s.example" % ns) == ns + "/pre"
        assert s.get(ns, "pre", 9000) == ["127.0.0.31:9000"]
        # unknown Service object, single unnamed port: any Service port number resolves
        assert s.get(ns, "pre", 80) == ["127.0.0.31:9000"]
        # delete the target: the route goes away
        cluster.kubectl("delete", "interceptorroute", "pre", "-n", ns)
        s.table_until(lambda t: ns + "/pre" not in keys(t), what="pre removed")
        assert s.route("pre.%s.example" % ns) == "404 host"
    finally:
        s.close()


def test_live_bad_kubeconfig_exits_cleanly(tmp_path):
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    r = subprocess.run([TOOL, "--kubeconfig", str(bad)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 1
    assert "kubeconfig" in r.stderr
    assert "Sanitizer" not in r.stderr
