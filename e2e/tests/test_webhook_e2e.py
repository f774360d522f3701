"""zerowire-webhook against the real kube-apiserver: a MutatingWebhookConfiguration
with clientConfig.url reaches the webhook on 127.0.0.1; `kubectl apply` of every
route kind is rewritten, kubectl shows warnings, `kubectl diff` and re-apply are
clean, the reconciler rewrites routes that predate their target and restores
them exactly when it goes away, creates and removes ReferenceGrants and alias
Services, owns ScaledObjects of HTTPScaledObjects, and survives an API server
restart."""

import base64
import json
import os
import re
import signal
import subprocess
import time

import pytest
import yaml

from harness import util

ROOT = util.REPO
BIN = os.path.join(ROOT, "build", "san", "bin", "zerowire-webhook")
if not os.path.exists(BIN):
    BIN = os.path.join(ROOT, "bin", "zerowire-webhook")
PROXY_NS = "zerowire"
CONVERGE = 30  # seconds: the reconciler's promise
RELEASE = "zerowire-e2e"
MWC = "zerowire-e2e-zerowire"  # the chart's name for release zerowire-e2e


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A CA and a serving certificate for 127.0.0.1 signed by it."""
    os.makedirs(d, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=zerowire-e2e-ca", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=zerowire-webhook", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "tls.crt", "-days", "1", "-extfile", "ext.cnf", cwd=d)
    return os.path.join(d, "ca.crt"), os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")


def mwc_manifest(port, ca_file):
    """The chart's own MutatingWebhookConfiguration (charts/zerowire, url mode), so the
    rules tested here are the ones a user installs."""
    with open(ca_file, "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    helm = os.environ.get("ZW_HELM") or os.path.join(ROOT, "tools", "bin", "helm")
    assert os.path.exists(helm), "helm missing at %s: run scripts/install-helm.sh (make setup does)" % helm
    r = subprocess.run([helm, "template", RELEASE, os.path.join(ROOT, "charts", "zerowire"), "-n", PROXY_NS,
                        "--set", "webhook.url=https://127.0.0.1:%d/mutate" % port, "--set", "webhook.caBundle=" + ca,
                        "--show-only", "templates/mutatingwebhook.yaml"],
                       capture_output=True, text=True, timeout=60, check=True)
    mwc = yaml.safe_load(r.stdout)
    assert mwc["metadata"]["name"] == MWC
    return mwc


class WebhookProc:
    def __init__(self, cluster, tmp, args=()):
        self.cluster = cluster
        self.args = list(args)
        self.ca, self.cert, self.key = make_pki(os.path.join(tmp, "pki"))
        self.port = util.free_port()
        self.log_path = os.path.join(tmp, "webhook.log")
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [BIN, "--kubeconfig", self.cluster.kubeconfig, "--listen", "127.0.0.1:%d" % self.port,
             "--tls-cert-file", self.cert, "--tls-key-file", self.key, "--resync", "5"] + self.args,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        util.wait_for(lambda: "event=listening" in open(self.log_path).read() or self.proc.poll() is not None,
                      30, 0.05, "webhook listening")
        assert self.proc.poll() is None, self.logs()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def logs(self):
        with open(self.log_path) as f:
            return f.read()


@pytest.fixture(scope="module")
def webhook(cluster, tmp_path_factory):
    yield from running_webhook(cluster, str(tmp_path_factory.mktemp("webhook")))


def running_webhook(cluster, tmp):
    """A fixture body: the webhook started, the chart's MutatingWebhookConfiguration
    applied; on the way out both removed and the logs checked."""
    cluster.ensure_namespace(PROXY_NS)
    w = WebhookProc(cluster, tmp)
    w.start()
    cluster.apply(json.dumps(mwc_manifest(w.port, w.ca)))
    yield w
    cluster.kubectl("delete", "mutatingwebhookconfiguration", MWC, "--ignore-not-found", check=False)
    rc = w.stop()
    logs = w.logs()
    assert "AddressSanitizer" not in logs and "runtime error" not in logs, logs[-5000:]
    assert rc == 0, logs[-3000:]


def get(cluster, resource, ns, name):
    r = cluster.kubectl("get", resource, name, "-n", ns, "-o", "json", check=False)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def scaled_object(ns, service, port=80, hosts="app.example.com", name=None, extra=""):
    return """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: %s, namespace: %s}
spec:
  scaleTargetRef: {name: %s}
  minReplicaCount: 0
  triggers:
    - type: external-push
      metadata:
        scalerAddress: zerowire-proxy.zerowire:9090
        service: %s
        port: "%d"
        hosts: %s
%s""" % (name or service, ns, service, service, port, hosts, extra)


def wait_for(cluster, pred, what, timeout=CONVERGE):
    return cluster.wait_for(pred, timeout=timeout, interval=0.25, what=what)


def points_at_proxy(obj):
    return obj is not None and "zerowire-proxy" in json.dumps(obj["spec"]) and \
        "zerowire.io/original" in obj["metadata"].get("annotations", {})


def wait_target(cluster, manifest):
    """Server-side dry-runs of a route until the webhook rewrites it: its
    target is in the webhook's registry then."""
    def ok():
        r = cluster.kubectl("apply", "--validate=false", "--dry-run=server", "-o", "json", "-f", "-",
                            input=manifest, check=False)
        return r.returncode == 0 and "zerowire-proxy" in r.stdout
    return wait_for(cluster, ok, "target registered")


INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: %(ns)s}
spec:
  rules:
    - host: %(host)s
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service: {name: app, port: {number: 80}}
          - path: /static
            pathType: Prefix
            backend:
              service: {name: static, port: {number: 80}}
"""


def test_ingress_apply_warnings_diff_reapply_restore(cluster, webhook):
    ns = cluster.create_namespace("ing")
    cluster.apply(scaled_object(ns, "app"))
    manifest = INGRESS % {"ns": ns, "host": "app.example.com"}
    wait_target(cluster, manifest)

    r = cluster.apply(manifest)
    assert "created" in r.stdout
    # The alias Service did not exist at admission: kubectl prints the warning.
    assert "Warning:" in r.stderr and "alias" in r.stderr, r.stderr
    ing = get(cluster, "ingress", ns, "app")
    paths = ing["spec"]["rules"][0]["http"]["paths"]
    assert paths[0]["backend"]["service"] == {"name": "zerowire-proxy", "port": {"number": 8080}}
    assert paths[1]["backend"]["service"] == {"name": "static", "port": {"number": 80}}
    record = json.loads(ing["metadata"]["annotations"]["zerowire.io/original"])
    assert record

    # The reconciler creates the alias Service in the Ingress's namespace
    # (selectorless, by default; test_alias_e2e.py covers its EndpointSlices).
    alias = wait_for(cluster, lambda: get(cluster, "service", ns, "zerowire-proxy"), "alias Service")
    assert alias["spec"]["type"] == "ClusterIP" and "selector" not in alias["spec"]
    assert alias["spec"]["ports"][0]["port"] == 8080
    assert alias["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "zerowire"

    # kubectl diff shows nothing; re-apply is a no-op.
    d = cluster.kubectl("diff", "-f", "-", input=manifest, check=False)
    assert d.returncode == 0, d.stdout + d.stderr
    # Client-side apply sends the manifest's backend again (it differs from
    # the live one), admission rewrites it to the same object, and the API
    # server stores nothing: same resourceVersion and generation.
    ing = get(cluster, "ingress", ns, "app")
    r = cluster.apply(manifest)
    again = get(cluster, "ingress", ns, "app")
    assert again["metadata"]["resourceVersion"] == ing["metadata"]["resourceVersion"], r.stdout
    assert again["metadata"]["generation"] == ing["metadata"]["generation"]

    # A host the target does not cover is warned about.
    r = cluster.apply(INGRESS.replace("name: app, namespace", "name: other, namespace")
                      % {"ns": ns, "host": "elsewhere.example.org"})
    assert "Warning:" in r.stderr and "elsewhere.example.org" in r.stderr, r.stderr

    # Deleting the ScaledObject restores the Ingress exactly and removes the alias.
    # What the API server stores for the manifest without zerowire: a
    # server-side dry run in a namespace without targets.
    plain_ns = cluster.create_namespace("plain")
    before_spec = json.loads(cluster.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-",
                                             input=manifest.replace(ns, plain_ns)).stdout)["spec"]
    cluster.kubectl("delete", "scaledobject", "app", "-n", ns)

    def restored():
        obj = get(cluster, "ingress", ns, "app")
        return obj if "zerowire.io/original" not in obj["metadata"].get("annotations", {}) else None
    ing = wait_for(cluster, restored, "Ingress restored")
    assert json.dumps(ing["spec"]) == json.dumps(before_spec)  # byte-exact, key order included
    wait_for(cluster, lambda: get(cluster, "service", ns, "zerowire-proxy") is None, "alias Service removed")
    d = cluster.kubectl("diff", "-f", "-", input=manifest, check=False)
    assert d.returncode == 0, d.stdout


HTTPROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: %(ns)s}
spec:
  parentRefs: [{name: gw, namespace: gateways}]
  hostnames: [app.example.com]
  rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs:
        - {name: app, port: 80, weight: 90}
        - {name: canary, port: 80, weight: 10}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc, namespace: %(ns)s}
spec:
  parentRefs: [{name: gw, namespace: gateways}]
  hostnames: [app.example.com]
  rules:
    - backendRefs: [{name: app, port: 80}]
"""


def test_routes_before_target_reconciled_grants_and_exact_restore(cluster, webhook):
    """Routes applied before their target are rewritten by the reconciler
    (the HTTPRoute to the proxy's HTTP port, the GRPCRoute to its h2c port),
    get a ReferenceGrant for the kinds rewritten, and are restored exactly
    when the target goes."""
    ns = cluster.create_namespace("gw")
    manifest = HTTPROUTE % {"ns": ns}
    cluster.apply(manifest, validate=False)
    orig = {k: get(cluster, k, ns, n) for k, n in (("httproute", "app"), ("grpcroute", "grpc"))}
    # Byte-exact: json.loads keeps the API server's key order.
    orig_specs = {k: json.dumps(v["spec"]) for k, v in orig.items()}
    assert all("zerowire-proxy" not in s for s in orig_specs.values())

    # The target appears after the routes: the reconciler sends them through admission.
    cluster.apply(scaled_object(ns, "app"))
    hr = wait_for(cluster, lambda: (lambda o: o if points_at_proxy(o) else None)(get(cluster, "httproute", ns, "app")),
                  "HTTPRoute rewritten by the reconciler")
    refs = hr["spec"]["rules"][0]["backendRefs"]
    assert refs[0]["name"] == "zerowire-proxy" and refs[0]["namespace"] == PROXY_NS
    assert refs[0]["port"] == 8080 and refs[0]["weight"] == 90
    assert refs[1] == {"name": "canary", "port": 80, "weight": 10}
    assert hr["spec"]["parentRefs"] == orig["httproute"]["spec"]["parentRefs"]
    # gRPC is HTTP/2: the GRPCRoute goes to the proxy's h2c port (the chart's
    # --proxy-h2c-port), its parentRefs and hostnames untouched.
    gr = wait_for(cluster, lambda: (lambda o: o if points_at_proxy(o) else None)(get(cluster, "grpcroute", ns, "grpc")),
                  "GRPCRoute rewritten by the reconciler")
    assert gr["spec"]["rules"][0]["backendRefs"] == [{"name": "zerowire-proxy", "namespace": PROXY_NS, "port": 8081}]
    assert gr["spec"]["hostnames"] == orig["grpcroute"]["spec"]["hostnames"]
    assert json.loads(gr["metadata"]["annotations"]["zerowire.io/original"]) == [
        {"path": "/spec/rules/0/backendRefs/0", "original": {"name": "app", "port": 80},
         "written": {"name": "zerowire-proxy", "namespace": PROXY_NS, "port": 8081}}]

    grant = wait_for(cluster, lambda: (lambda g: g if g and len(g["spec"]["from"]) == 2 else None)(
        get(cluster, "referencegrant", PROXY_NS, "zerowire-" + ns)), "ReferenceGrant for both kinds")
    kinds = sorted(f["kind"] for f in grant["spec"]["from"])
    assert kinds == ["GRPCRoute", "HTTPRoute"] and all(f["namespace"] == ns for f in grant["spec"]["from"])
    assert grant["spec"]["to"] == [{"group": "", "kind": "Service", "name": "zerowire-proxy"}]
    assert grant["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "zerowire"

    d = cluster.kubectl("diff", "-f", "-", input=manifest, check=False)
    assert d.returncode == 0, d.stdout + d.stderr

    # trafficAutowire off -> restored, like a deleted target.
    cluster.apply(scaled_object(ns, "app", extra="        trafficAutowire: ingress\n"))
    wait_for(cluster, lambda: json.dumps(get(cluster, "httproute", ns, "app")["spec"])
             == orig_specs["httproute"], "HTTPRoute restored when trafficAutowire excludes it")
    cluster.apply(scaled_object(ns, "app"))
    wait_for(cluster, lambda: points_at_proxy(get(cluster, "httproute", ns, "app")), "HTTPRoute rewritten again")

    cluster.kubectl("delete", "scaledobject", "app", "-n", ns)
    for kind, name in (("httproute", "app"), ("grpcroute", "grpc")):
        wait_for(cluster, lambda: json.dumps(get(cluster, kind, ns, name)["spec"])
                 == orig_specs[kind], "%s restored exactly" % kind)
        obj = get(cluster, kind, ns, name)
        assert "zerowire.io/original" not in obj["metadata"].get("annotations", {})
    wait_for(cluster, lambda: get(cluster, "referencegrant", PROXY_NS, "zerowire-" + ns) is None,
             "ReferenceGrant removed")


CROSS_NS_ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %(name)s, namespace: %(ns)s}
spec:
  parentRefs: [{name: gw, namespace: gateways}]
  hostnames: [app.example.com]
  rules:
    - backendRefs: [{name: app, namespace: %(backend_ns)s, port: 80}]
"""

GRANT = """
apiVersion: gateway.networking.k8s.io/%(version)s
kind: ReferenceGrant
metadata: {name: routes, namespace: %(backend_ns)s}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: %(ns)s}]
  to: [{group: "", kind: Service%(to_name)s}]
"""


def test_cross_namespace_backendref_follows_referencegrant(cluster, webhook):
    """An HTTPRoute naming a Service of another namespace is left alone (with a
    warning) while no ReferenceGrant there allows it (the gateway refuses it:
    zerowire must not make it work through the proxy); a grant for another
    Service changes nothing; a grant for it (v1beta1, or v1 for every Service)
    gets it rewritten by the reconciler, and the grant's deletion restores it
    exactly."""
    backend_ns = cluster.create_namespace("xb")
    ns = cluster.create_namespace("xr")
    cluster.apply(scaled_object(backend_ns, "app"))
    # The target is known once a same-namespace route to it is rewritten.
    wait_target(cluster, CROSS_NS_ROUTE % {"name": "probe", "ns": backend_ns, "backend_ns": backend_ns})

    manifest = CROSS_NS_ROUTE % {"name": "app", "ns": ns, "backend_ns": backend_ns}
    r = cluster.apply(manifest, validate=False)
    assert "Warning:" in r.stderr and "no ReferenceGrant in %s allows HTTPRoutes of namespace %s" % (
        backend_ns, ns) in r.stderr, r.stderr
    orig = json.dumps(get(cluster, "httproute", ns, "app")["spec"])
    assert "zerowire-proxy" not in orig

    def rewritten():
        o = get(cluster, "httproute", ns, "app")
        return o if points_at_proxy(o) else None

    # A grant for another Service: still left alone, past a reconcile pass
    # (--resync 5).
    cluster.apply(GRANT % {"version": "v1beta1", "backend_ns": backend_ns, "ns": ns,
                           "to_name": ", name: other"}, validate=False)
    time.sleep(7)
    assert rewritten() is None
    assert get(cluster, "referencegrant", PROXY_NS, "zerowire-" + ns) is None

    for version, to_name in (("v1beta1", ", name: app"), ("v1", "")):
        cluster.apply(GRANT % {"version": version, "backend_ns": backend_ns, "ns": ns, "to_name": to_name},
                      validate=False)
        route = wait_for(cluster, rewritten, "HTTPRoute rewritten once %s grant allows it" % version)
        assert route["spec"]["rules"][0]["backendRefs"] == [
            {"name": "zerowire-proxy", "namespace": PROXY_NS, "port": 8080}]
        wait_for(cluster, lambda: get(cluster, "referencegrant", PROXY_NS, "zerowire-" + ns),
                 "the proxy's ReferenceGrant for the route's namespace")
        cluster.kubectl("delete", "referencegrant", "routes", "-n", backend_ns)
        wait_for(cluster, lambda: json.dumps(get(cluster, "httproute", ns, "app")["spec"]) == orig,
                 "HTTPRoute restored exactly when the grant goes")
        wait_for(cluster, lambda: get(cluster, "referencegrant", PROXY_NS, "zerowire-" + ns) is None,
                 "the proxy's ReferenceGrant removed")


ISTIO_GLOO = """
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: app, namespace: %(ns)s}
spec:
  hosts: [app.example.com]
  gateways: [istio-ingress/gateway]
  http:
    - route:
        - destination: {host: app, port: {number: 80}, subset: v1}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: app-edge, namespace: %(ns)s}
spec:
  virtualHost:
    domains: [app.example.com]
    routes:
      - matchers: [{prefix: /}]
        routeAction:
          single:
            kube:
              ref: {name: app, namespace: %(ns)s}
              port: 80
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: app-a3, namespace: %(ns)s}
spec:
  hosts: [app.example.com]
  gateways: [istio-ingress/gateway]
  http:
    - match: [{uri: {prefix: /a3}}]
      route:
        - destination: {host: app.%(ns)s.svc.cluster.local, port: {number: 80}}
---
apiVersion: gateway.solo.io/v1
kind: RouteTable
metadata: {name: app-rt, namespace: %(ns)s}
spec:
  routes:
    - matchers: [{prefix: /up}]
      routeAction:
        single:
          upstream: {name: app-80, namespace: %(ns)s}
    - matchers: [{prefix: /multi}]
      routeAction:
        multi:
          destinations:
            - destination: {kube: {ref: {name: app, namespace: %(ns)s}, port: 80}}
              weight: 1
---
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata: {name: app-platform, namespace: %(ns)s}
spec:
  hosts: [app.example.com]
  virtualGateways: [{name: north-south-gw, namespace: gloo-mesh-gateways}]
  http:
    - name: app
      forwardTo:
        destinations:
          - ref: {name: app, namespace: %(ns)s}
            port: {number: 80}
            kind: SERVICE
"""


MESH_OBJS = (("virtualservices.networking.istio.io", "app"), ("virtualservices.networking.istio.io", "app-a3"),
             ("virtualservices.gateway.solo.io", "app-edge"), ("routetables.gateway.solo.io", "app-rt"),
             ("routetables.networking.gloo.solo.io", "app-platform"))

UPSTREAM = """
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: app-80, namespace: %(ns)s}
spec:
  kube: {serviceName: app, serviceNamespace: %(ns)s, servicePort: 80}
"""

RT_UPSTREAM_ONLY = """
apiVersion: gateway.solo.io/v1
kind: RouteTable
metadata: {name: probe, namespace: %(ns)s}
spec:
  routes:
    - matchers: [{prefix: /up}]
      routeAction: {single: {upstream: {name: app-80, namespace: %(ns)s}}}
"""


def test_istio_and_gloo_rewritten_and_restored(cluster, webhook):
    ns = cluster.create_namespace("mesh")
    cluster.apply(scaled_object(ns, "app"))
    manifest = ISTIO_GLOO % {"ns": ns}
    first = manifest.split("---")[0]
    wait_target(cluster, first)
    # The kube Upstream of the scaled Service is known too (a route naming it
    # is rewritten in a dry run).
    cluster.apply(UPSTREAM % {"ns": ns}, validate=False)
    wait_target(cluster, RT_UPSTREAM_ONLY % {"ns": ns})
    r = cluster.apply(manifest, validate=False)
    assert r.returncode == 0
    vs = get(cluster, "virtualservices.networking.istio.io", ns, "app")
    dest = vs["spec"]["http"][0]["route"][0]["destination"]
    assert dest == {"host": "zerowire-proxy.zerowire.svc.cluster.local", "port": {"number": 8080}}
    edge = get(cluster, "virtualservices.gateway.solo.io", ns, "app-edge")
    kube = edge["spec"]["virtualHost"]["routes"][0]["routeAction"]["single"]["kube"]
    assert kube["ref"] == {"name": "zerowire-proxy", "namespace": PROXY_NS} and kube["port"] == 8080
    a3 = get(cluster, "virtualservices.v1alpha3.networking.istio.io", ns, "app-a3")
    assert a3["apiVersion"] == "networking.istio.io/v1alpha3"
    assert a3["spec"]["http"][0]["route"][0]["destination"]["host"] == "zerowire-proxy.zerowire.svc.cluster.local"
    edge_rt = get(cluster, "routetables.gateway.solo.io", ns, "app-rt")
    for route in edge_rt["spec"]["routes"]:
        assert "zerowire-proxy" in json.dumps(route["routeAction"]), route
    assert "app-80" not in json.dumps(edge_rt["spec"])
    rt = get(cluster, "routetables.networking.gloo.solo.io", ns, "app-platform")
    d0 = rt["spec"]["http"][0]["forwardTo"]["destinations"][0]
    assert d0["ref"]["name"] == "zerowire-proxy" and d0["kind"] == "SERVICE"
    d = cluster.kubectl("diff", "-f", "-", input=manifest, check=False)
    assert d.returncode == 0, d.stdout + d.stderr
    rvs = [get(cluster, k, ns, n)["metadata"]["resourceVersion"] for k, n in MESH_OBJS]
    cluster.apply(manifest, validate=False)
    assert [get(cluster, k, ns, n)["metadata"]["resourceVersion"] for k, n in MESH_OBJS] == rvs

    cluster.kubectl("delete", "scaledobject", "app", "-n", ns)
    wait_for(cluster, lambda: get(cluster, "virtualservices.networking.istio.io", ns, "app")
             ["spec"]["http"][0]["route"][0]["destination"] == {"host": "app", "port": {"number": 80}, "subset": "v1"},
             "Istio VirtualService restored with its subset")
    wait_for(cluster, lambda: "zerowire-proxy" not in json.dumps(
        get(cluster, "virtualservices.gateway.solo.io", ns, "app-edge")["spec"]), "Gloo VirtualService restored")
    wait_for(cluster, lambda: "zerowire-proxy" not in json.dumps(
        get(cluster, "routetables.networking.gloo.solo.io", ns, "app-platform")["spec"]), "RouteTable restored")
    wait_for(cluster, lambda: get(cluster, "routetables.gateway.solo.io", ns, "app-rt")["spec"]["routes"][0]
             ["routeAction"] == {"single": {"upstream": {"name": "app-80", "namespace": ns}}},
             "Gloo RouteTable upstream destination restored")
    wait_for(cluster, lambda: "zerowire-proxy" not in json.dumps(
        get(cluster, "virtualservices.networking.istio.io", ns, "app-a3")["spec"]), "v1alpha3 VirtualService restored")
    d = cluster.kubectl("diff", "-f", "-", input=manifest, check=False)
    assert d.returncode == 0, d.stdout + d.stderr


def test_kedify_http_becomes_external_push(cluster, webhook):
    ns = cluster.create_namespace("kedify")
    so = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: blue, namespace: %s}
spec:
  scaleTargetRef: {name: blue}
  triggers:
    - type: kedify-http
      metadata:
        hosts: blue.example.com
        service: blue
        port: "8080"
        scalingMetric: requestRate
        targetValue: "10"
""" % ns
    cluster.apply(so)
    obj = get(cluster, "scaledobject", ns, "blue")
    trig = obj["spec"]["triggers"][0]
    assert trig["type"] == "external-push"
    assert trig["metadata"]["scalerAddress"] == "zerowire-proxy.zerowire:9090"
    assert trig["metadata"]["hosts"] == "blue.example.com" and trig["metadata"]["targetValue"] == "10"
    cluster.apply(so)
    assert get(cluster, "scaledobject", ns, "blue")["metadata"]["resourceVersion"] == \
        obj["metadata"]["resourceVersion"]
    # A kedify-http ScaledObject written while the webhook was not registered
    # is converted by the reconciler once it is.
    cluster.kubectl("delete", "mutatingwebhookconfiguration", MWC)
    early = so.replace("name: blue, ", "name: early, ").replace("blue.example.com", "early.example.com")
    try:
        cluster.apply(early)
        assert get(cluster, "scaledobject", ns, "early")["spec"]["triggers"][0]["type"] == "kedify-http"
    finally:
        cluster.apply(json.dumps(mwc_manifest(webhook.port, webhook.ca)))
    wait_for(cluster, lambda: get(cluster, "scaledobject", ns, "early")["spec"]["triggers"][0]["type"]
             == "external-push", "early kedify-http ScaledObject converted by the reconciler")
    # Invalid routing metadata is refused with a message naming the field.
    bad = so.replace('port: "8080"', 'port: "eighty"').replace("name: blue, ", "name: bad, ")
    r = cluster.apply(bad, check=False)
    assert r.returncode != 0 and "port" in r.stderr, r.stderr


HSO = """
apiVersion: http.keda.sh/v1alpha1
kind: HTTPScaledObject
metadata: {name: web, namespace: %(ns)s%(annotations)s}
spec:
  hosts: [web.example.com]
  scaleTargetRef: {name: web, kind: Deployment, apiVersion: apps/v1, service: web, port: 80}
  replicas: {min: 0, max: 7}
  scaledownPeriod: 120
"""


def test_httpscaledobject_owns_scaledobject(cluster, webhook):
    ns = cluster.create_namespace("hso")
    cluster.apply(HSO % {"ns": ns, "annotations": ""}, validate=False)
    so = wait_for(cluster, lambda: get(cluster, "scaledobject", ns, "web"), "generated ScaledObject")
    hso = get(cluster, "httpscaledobject", ns, "web")
    owner = so["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "HTTPScaledObject" and owner["uid"] == hso["metadata"]["uid"] and owner["controller"]
    assert so["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "zerowire"
    trig = so["spec"]["triggers"][0]
    assert trig == {"type": "external-push", "metadata": {
        "scalerAddress": "zerowire-proxy.zerowire:9090", "httpScaledObject": "web"}}
    assert so["spec"]["maxReplicaCount"] == 7 and so["spec"]["minReplicaCount"] == 0
    assert so["spec"]["cooldownPeriod"] == 120
    assert so["spec"]["scaleTargetRef"] == {"name": "web", "kind": "Deployment", "apiVersion": "apps/v1"}
    # Spec changes follow.
    cluster.apply((HSO % {"ns": ns, "annotations": ""}).replace("max: 7", "max: 9"), validate=False)
    wait_for(cluster, lambda: get(cluster, "scaledobject", ns, "web")["spec"]["maxReplicaCount"] == 9,
             "ScaledObject updated")
    # The opt-out annotation deletes it; so does deleting the HTTPScaledObject.
    cluster.apply(HSO % {"ns": ns, "annotations": ", annotations: {httpscaledobject.keda.sh/skip-scaledobject-creation: 'true'}"},
                  validate=False)
    wait_for(cluster, lambda: get(cluster, "scaledobject", ns, "web") is None, "ScaledObject deleted on opt-out")
    cluster.apply(HSO % {"ns": ns, "annotations": ", annotations: {httpscaledobject.keda.sh/skip-scaledobject-creation: 'false'}"},
                  validate=False)
    wait_for(cluster, lambda: get(cluster, "scaledobject", ns, "web"), "ScaledObject back")
    cluster.kubectl("delete", "httpscaledobject", "web", "-n", ns)
    wait_for(cluster, lambda: get(cluster, "scaledobject", ns, "web") is None, "ScaledObject deleted with its owner")


def test_lease_and_metrics(cluster, webhook):
    wait_for(cluster, lambda: metric_value(webhook, webhook.port, "zerowire_webhook_synced") == 1, "synced")
    lease = wait_for(cluster, lambda: get(cluster, "lease", PROXY_NS, "zerowire-webhook"), "Lease")
    assert lease["spec"]["holderIdentity"]
    assert lease["spec"]["leaseDurationSeconds"] == 15
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=webhook.ca)
    text = urllib.request.urlopen("https://127.0.0.1:%d/metrics" % webhook.port, context=ctx, timeout=10).read().decode()
    assert re.search(r"^zerowire_webhook_leader 1$", text, re.M)
    ready = urllib.request.urlopen("https://127.0.0.1:%d/readyz" % webhook.port, context=ctx, timeout=10)
    assert ready.status == 200
    text = urllib.request.urlopen("https://127.0.0.1:%d/metrics" % webhook.port, context=ctx, timeout=10).read().decode()
    assert re.search(r"^zerowire_webhook_synced 1$", text, re.M)
    for family in ("zerowire_webhook_reviews_total", "zerowire_webhook_review_duration_seconds",
                   "zerowire_webhook_reconcile_touches_total", "zerowire_webhook_targets"):
        assert "# TYPE %s " % family in text


def test_every_watch_once_on_one_loop(cluster, webhook):
    """The sources and the reconciler subscribe on one watch loop: a resource
    both read (ScaledObjects, HTTPScaledObjects, Services) is watched once, no
    watch twice, and the watches add no thread (one loop thread for all)."""
    wait_for(cluster, lambda: metric_value(webhook, webhook.port, "zerowire_webhook_synced") == 1, "synced")
    run = webhook.logs().rsplit("event=listening", 1)[-1]  # this process's lines
    started = re.findall(r'event=watch_started resource=(\S+) ns=(\S+) selector="([^"]*)"', run)
    assert started, webhook.logs()[-3000:]
    assert len(started) == len(set(started)), started
    for res in ("scaledobjects.keda.sh/v1alpha1", "httpscaledobjects.http.keda.sh/v1alpha1", "services./v1"):
        assert [w for w in started if w[0] == res] == [(res, "*", "")], (res, started)
    threads = len(os.listdir("/proc/%d/task" % webhook.proc.pid))
    # main, 2 MHD workers (+ their listener), cert poll, reconciler, watch loop,
    # and what the libraries start (curl's resolver, ASan): not one per watch
    assert threads < len(started), (threads, len(started), started)


def test_survives_apiserver_restart(cluster, webhook):
    ns = cluster.create_namespace("restart")
    manifest = INGRESS % {"ns": ns, "host": "app.example.com"}
    cluster.apply(manifest)
    cluster.restart_apiserver()
    # After the restart the watches resume: a new target is seen and the
    # existing Ingress is rewritten by the reconciler.
    cluster.apply(scaled_object(ns, "app"))
    wait_for(cluster, lambda: points_at_proxy(get(cluster, "ingress", ns, "app")),
             "Ingress rewritten after an API server restart")
    wait_for(cluster, lambda: get(cluster, "service", ns, "zerowire-proxy"), "alias Service after restart")
    assert webhook.proc.poll() is None


def metric_value(webhook, port, name):
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=webhook.ca)
    text = urllib.request.urlopen("https://127.0.0.1:%d/metrics" % port, context=ctx, timeout=5).read().decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def test_reconciler_evaluates_only_what_changed(cluster, webhook):
    """Resync passes (every 5 s here) re-evaluate a route only when the
    route or a target changed since its last evaluation."""
    ns = cluster.create_namespace("evalcache")
    cluster.apply(INGRESS % {"ns": ns, "host": "cache.example.com"})
    cluster.apply(scaled_object(ns, "app", hosts="cache.example.com"))
    wait_for(cluster, lambda: points_at_proxy(get(cluster, "ingress", ns, "app")), "Ingress rewritten")
    name = "zerowire_webhook_reconcile_evaluations_total"

    def quiet_count():
        # Settled: two values 6 s apart (more than one resync) are equal.
        a = metric_value(webhook, webhook.port, name)
        time.sleep(6)
        b = metric_value(webhook, webhook.port, name)
        return b if a == b else None

    before = wait_for(cluster, quiet_count, "no evaluations while nothing changes", timeout=90)
    assert before and before > 0
    # A change to the route alone: evaluated again (a few times at most:
    # the reconciler sees its own touch come back too).
    cluster.kubectl("annotate", "ingress", "app", "-n", ns, "example.com/note=1")
    wait_for(cluster, lambda: metric_value(webhook, webhook.port, name) > before, "route re-evaluated")
    after = wait_for(cluster, quiet_count, "settled again", timeout=90)
    assert after - before <= 5, (before, after)


def test_leader_failover_and_webhook_restart(cluster, webhook, tmp_path):
    ns = cluster.create_namespace("failover")
    manifest = HTTPROUTE.split("---")[0] % {"ns": ns}
    cluster.apply(manifest, validate=False)
    orig_spec = json.dumps(get(cluster, "httproute", ns, "app")["spec"])
    cluster.apply(scaled_object(ns, "app"))
    wait_for(cluster, lambda: points_at_proxy(get(cluster, "httproute", ns, "app")), "HTTPRoute rewritten")

    # A second replica (same certificate, not registered) follows the Lease.
    second = WebhookProc(cluster, str(tmp_path))
    second.ca, second.cert, second.key = webhook.ca, webhook.cert, webhook.key
    second.start()
    try:
        wait_for(cluster, lambda: metric_value(webhook, second.port, "zerowire_webhook_synced") == 1,
                 "second replica synced")
        time.sleep(3)
        assert metric_value(webhook, second.port, "zerowire_webhook_leader") == 0
        assert metric_value(webhook, webhook.port, "zerowire_webhook_leader") == 1

        # The leader stops (and releases the Lease): the second takes over.
        assert webhook.stop() == 0
        wait_for(cluster, lambda: metric_value(webhook, second.port, "zerowire_webhook_leader") == 1,
                 "second replica leads", timeout=20)
        lease = get(cluster, "lease", PROXY_NS, "zerowire-webhook")
        assert lease["spec"]["holderIdentity"].endswith("_%d" % second.proc.pid)

        # The first webhook restarts (same address) as a follower; a target
        # deleted now is restored through it, driven by the new leader.
        webhook.start()
        wait_for(cluster, lambda: metric_value(webhook, webhook.port, "zerowire_webhook_synced") == 1,
                 "restarted webhook synced")
        assert metric_value(webhook, webhook.port, "zerowire_webhook_leader") == 0
        cluster.kubectl("delete", "scaledobject", "app", "-n", ns)
        wait_for(cluster, lambda: json.dumps(get(cluster, "httproute", ns, "app")["spec"]) == orig_spec,
                 "HTTPRoute restored by the new leader")
    finally:
        assert second.stop() == 0
        logs = second.logs()
        assert "AddressSanitizer" not in logs and "runtime error" not in logs, logs[-3000:]
    wait_for(cluster, lambda: metric_value(webhook, webhook.port, "zerowire_webhook_leader") == 1,
             "first webhook leads again", timeout=20)


IR = """
apiVersion: http.keda.sh/v1beta1
kind: InterceptorRoute
metadata: {name: shop, namespace: %(ns)s}
spec:
  target: {service: shop, port: 8080}
  rules:
    - hosts: [shop.example.com]
  scalingMetric:
    requestRate: {targetValue: 10}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: shop, namespace: %(ns)s}
spec:
  scaleTargetRef: {name: shop}
  minReplicaCount: 0
  triggers:
    - type: external-push
      metadata:
        scalerAddress: zerowire-proxy.zerowire:9090
        interceptorRoute: shop
"""

SHOP_ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: %(ns)s}
spec:
  parentRefs: [{name: gw, namespace: gateways}]
  hostnames: [shop.example.com]
  rules:
    - backendRefs: [{name: shop, port: 8080}]
"""


def test_interceptorroute_target(cluster, webhook):
    ns = cluster.create_namespace("ir")
    cluster.apply(SHOP_ROUTE % {"ns": ns}, validate=False)
    orig = json.dumps(get(cluster, "httproute", ns, "shop")["spec"])
    cluster.apply(IR % {"ns": ns}, validate=False)
    route = wait_for(cluster, lambda: (lambda o: o if points_at_proxy(o) else None)(get(cluster, "httproute", ns, "shop")),
                     "HTTPRoute of an InterceptorRoute target rewritten")
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == "zerowire-proxy"
    wait_for(cluster, lambda: get(cluster, "referencegrant", PROXY_NS, "zerowire-" + ns), "ReferenceGrant")
    cluster.kubectl("delete", "interceptorroute", "shop", "-n", ns)
    wait_for(cluster, lambda: json.dumps(get(cluster, "httproute", ns, "shop")["spec"]) == orig,
             "HTTPRoute restored when the InterceptorRoute goes away")
