"""`make demo` on the real stack (scripts/demo.sh runs this; the 1.20 stand-in
demo is harness/demo.py): kube-apiserver, kube-controller-manager and
kube-scheduler v1.37, the real KEDA operator and metrics server, Traefik, and
zerowire installed from its chart (e2e/real/realstack.py wires them as the
real-stack suites do). Only the kubelet is a stand-in (harness/kubelet.py:
Pods as processes in network namespaces). The first request goes through
Traefik, is held by zerowire-proxy and answered; a burst grows the replicas
through the real HPA KEDA made; then the app returns to zero. Needs root and
iproute2 (network namespaces). Everything started is stopped when it ends,
fails or is interrupted (SIGINT/SIGTERM).

  python3 -m harness.realdemo [--load-seconds 12] [--connections 8] [--png PATH]

Writes the same picture as harness/demo.py (harness/timeline.py).
"""

import os
import sys
import threading
import time

from . import demo, util
from .demo import APP, ROUTES, SCALEDOBJECT, HOST, NS, say
from .kubelet import Kubelet
from .realcluster import RealCluster, peer_binaries, pinned_version
from .realkeda import RealKeda
from .realtraefik import RealTraefik
from .stack import Stack
from .timeline import Timeline, plot

sys.path.insert(0, os.path.join(util.REPO, "e2e", "real"))
from realstack import RealStack  # noqa: E402
from test_real_seeds import GATEWAY, route_accepted, wait_routed  # noqa: E402

LIMIT = 300  # seconds: the whole demo
TOTAL = 7
GATEWAY_CRDS = ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants",
                "backendtlspolicies")
# The sample app of harness/demo.py; the startup delay goes on the Pod, where
# the kubelet stand-in reads it, and Traefik serves the Ingress (class traefik).
REAL_APP = APP.replace("""    metadata: {labels: {app: hello}}
""", """    metadata:
      labels: {app: hello}
      annotations: {zerowire.test/startup-delay-ms: "1500"}
""")
INGRESS_CLASS = """
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: traefik
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec: {controller: traefik.io/ingress-controller}
"""

T0 = time.monotonic()


def step(n, title):
    say()
    say("[%d/%d] %s  (%.0f s)" % (n, TOTAL, title, time.monotonic() - T0))


def bins(peer):
    b = peer_binaries(peer)
    if b is None:
        raise RuntimeError("%s not built: run e2e/build-peers.sh %s" % (peer, peer))
    return b


def gateway_crds(c):
    """The Gateway API CRDs Traefik's provider watches: upstream's (from
    ../shared/fixtures) when present, else the repository's structural ones."""
    up = util.shared_dir() + "/fixtures/crds/gateway-api-v1.6.1-standard-"
    if not os.path.exists(up + "httproutes.yaml"):
        c.install_crd_dir(os.path.join(util.REPO, "e2e", "crds", "gateway-api.yaml"))
        return "the repository's structural copies (e2e/crds/gateway-api.yaml)"
    for kind in GATEWAY_CRDS:
        c.kubectl("apply", "--server-side", "--force-conflicts", "-f", up + kind + ".yaml", timeout=60)
    c.kubectl("wait", "--for=condition=established", "--timeout=60s",
              *["crd/%s.gateway.networking.k8s.io" % k for k in GATEWAY_CRDS], timeout=90)
    return "upstream v1.6.1 standard channel"


class Via:
    """Stack.request/Stack.wrk aimed at Traefik's web entry point instead of
    the proxy: what a client outside the cluster does."""

    def __init__(self, traefik):
        self.proxy_port = traefik.web_port

    def request(self, host, path, timeout=90):
        return Stack.request(self, host, path, timeout=timeout)

    def wrk(self, host, seconds, connections, path):
        return Stack.wrk(self, host, seconds, connections, path=path)


def hpa_line(st):
    h = st.get("horizontalpodautoscalers.autoscaling", NS, "keda-hpa-hello") or {}
    s = h.get("status", {})
    cur = [m.get("external", {}).get("current", {}) for m in s.get("currentMetrics") or []]
    val = str((cur[0].get("averageValue") or cur[0].get("value")) if cur else "")
    if val.endswith("m"):
        val = "%.1f" % (int(val[:-1]) / 1000.0)
    return "HPA keda-hpa-hello: %s req/s per pod (target 20), desired %s" % (val or "-", s.get("desiredReplicas", "-"))


def run(args):
    k8s, keda_v, traefik_v = pinned_version("kubernetes"), pinned_version("keda"), pinned_version("traefik")
    step(1, "What runs here")
    say("Real, built from their upstream Go modules (e2e/build-peers.sh):", 1)
    say("etcd + kube-apiserver, kube-controller-manager (ReplicaSets, EndpointSlices, the HPA),", 2)
    say("kube-scheduler                                   Kubernetes %s" % k8s, 2)
    say("KEDA operator + metrics API server (aggregated)   KEDA %s" % keda_v, 2)
    say("Traefik, Ingress and Gateway API providers       Traefik %s" % traefik_v, 2)
    say("zerowire-webhook + zerowire-proxy, this checkout, installed with helm from charts/zerowire", 2)
    say("Stand-in: the kubelet. There is no container runtime and no image registry here, so a", 1)
    say("kubelet stand-in (harness/kubelet.py) registers a Node and runs each Pod the scheduler binds", 1)
    say("as a small HTTP server process in a network namespace of its own, reporting it Ready as a", 1)
    say("kubelet would. The chart's own Pods stay Pending: zerowire's two programs run on the host", 1)
    say("with the chart's ServiceAccounts.", 1)
    cluster = RealCluster(bins("kubernetes"), name="zw-demo")
    kubelet = stack = None
    quiet = []  # events that stop the threads printing or probing, set before stopping
    try:
        step(2, "Control plane, kubelet stand-in, KEDA, Traefik")
        cluster.start()
        say("kube-apiserver %s ready at %s, controller-manager and scheduler running" % (k8s, cluster.server), 1)
        kubelet = Kubelet(cluster, skip=lambda pod: (pod["metadata"].get("labels") or {}).get(
            "app.kubernetes.io/name") == "zerowire").start()
        say("Node %s: Pods on bridge %s (%s)" % (kubelet.node, kubelet.bridge, kubelet.cidr), 1)
        keda = RealKeda(cluster, bins("keda"), private_hosts=True).start()
        cluster.wait_for(lambda: [c for c in keda.apiservice_available() if c["status"] == "True"], 90, 0.5,
                         "v1beta1.external.metrics.k8s.io Available")
        say("KEDA operator ready; external.metrics.k8s.io served by KEDA's metrics server", 1)
        crds = gateway_crds(cluster)
        traefik = RealTraefik(cluster, bins("traefik")["traefik"]).start()
        cluster.apply(INGRESS_CLASS)
        cluster.ensure_namespace("gateway-system")
        cluster.apply(GATEWAY % {"name": "gateway", "ns": "gateway-system", "port": traefik.web_port})
        say("Traefik: web entry point 127.0.0.1:%d, Gateway gateway-system/gateway (Gateway API CRDs: %s)" % (
            traefik.web_port, crds), 1)

        step(3, "Install zerowire from its Helm chart")
        cluster.ensure_namespace(NS)
        stack = RealStack(cluster, kubelet, keda, app_namespaces=[NS], sanitized=False, log_level="warn")
        stack.start()
        say("helm install zerowire charts/zerowire: webhook registered by URL (127.0.0.1:%d)" % stack.webhook_port, 1)
        say("zerowire-proxy on %s:%d behind Service %s; KEDA scaler %s" % (
            stack.host, stack.proxy_port, stack.proxy_host, stack.scaler_address), 1)

        step(4, "Deploy a sample app at zero replicas, and its ScaledObject")
        stack.apply(REAL_APP)
        stack.apply(SCALEDOBJECT % stack.scaler_address)
        say("Deployment demo/hello: replicas 0; Service hello:80", 1)
        say("ScaledObject: scale on request rate (20 req/s per replica, 10 s window), 0..5 replicas,", 1)
        say("back to zero 5 s after traffic stops. Its trigger names zerowire's scaler.", 1)
        stack.wait_for(lambda: stack.get("horizontalpodautoscalers.autoscaling", NS, "keda-hpa-hello"), 120,
                       "KEDA's HPA for the ScaledObject", interval=0.5)
        stack.wait_for(lambda: stack.admin_get("/metrics")[1].count(b"zerowire_scaler_streams 0") == 0, 60,
                       "KEDA's StreamIsActive stream to the proxy", interval=0.5)
        say("KEDA made HPA keda-hpa-hello and opened its stream to zerowire's scaler", 1)

        step(5, "Route to it with an Ingress and an HTTPRoute, written as usual")
        stack.wait_for(lambda: stack.proxy_service in stack.kubectl(
            "apply", "--dry-run=server", "-o", "json", "-f", "-", input=ROUTES.split("---")[0]).stdout,
            30, "the webhook to know the ScaledObject")
        for line in stack.apply(ROUTES).stdout.strip().splitlines():
            say("kubectl apply: " + line, 1)
        ing = stack.get("ingresses.networking.k8s.io", NS, "hello")
        hr = stack.get("httproutes.gateway.networking.k8s.io", NS, "hello")
        isvc = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        ref = hr["spec"]["rules"][0]["backendRefs"][0]
        say("Both said Service hello:80. As stored, at admission zerowire pointed them at its proxy:", 1)
        say("Ingress backend   -> %s:%s (an alias of %s)" % (isvc["name"], isvc["port"]["number"],
                                                            stack.proxy_host), 2)
        say("HTTPRoute backend -> %s.%s:%s" % (ref["name"], ref.get("namespace"), ref["port"]), 2)
        stack.wait_for(lambda: route_accepted(stack, NS, "hello"), 60, "Traefik accepts the HTTPRoute")
        wait_routed(stack, traefik, HOST, "kubernetesgateway", "Traefik routes the HTTPRoute to the proxy")
        wait_routed(stack, traefik, HOST, "kubernetes", "Traefik routes the Ingress to the proxy")
        say("Traefik built a router for each (Ingress and HTTPRoute); both send to http://%s:%d," % (
            stack.host, stack.proxy_port), 1)
        say("the proxy (Traefik's own API says so). Nothing was sent to the app: it is still at %d." % (
            stack.replicas(NS, "hello")), 1)

        def ready_pods():
            return len([p for p in kubelet.pods(NS) if p.ready and not p.terminating])
        via = Via(traefik)
        tl = Timeline(lambda: (stack.replicas(NS, "hello") or 0, ready_pods()))
        tl.start()
        time.sleep(1.0)  # a second of "before" in the picture

        step(6, "One request through Traefik while the app has 0 replicas")
        say("curl -H 'Host: %s' http://127.0.0.1:%d/hello   (Traefik's entry point;" % (HOST, traefik.web_port), 1)
        say("a pod of this app takes 1.5 s to start, like a small container)", 1)
        demo.held_request(tl, lambda: via.request(HOST, "/hello"),
                          lambda: (stack.replicas(NS, "hello"), ready_pods()))
        say("Client -> Traefik -> zerowire-proxy (held) -> the new pod. The proxy told KEDA at once", 1)
        say("(StreamIsActive), the KEDA operator scaled 0 -> 1, the scheduler bound the Pod, the", 1)
        say("kubelet stand-in started it, the EndpointSlice controller published it, and the held", 1)
        say("request went to it: nothing was lost or retried by the client.", 1)

        step(7, "A burst through Traefik: wrk, %d connections for %d s, then back to zero" % (
            args.connections, args.load_seconds))
        stop = threading.Event()
        quiet.append(stop)

        def watch():
            last = None
            while not stop.wait(1.0):
                try:
                    now = (stack.replicas(NS, "hello"), ready_pods(), hpa_line(stack))
                except Exception:  # noqa: BLE001 - the next second tries again
                    continue
                if now != last:
                    say("%5.1f s  replicas %d, ready pods %d; %s" % ((time.monotonic() - t_load,) + now), 1)
                    last = now
        t_load = time.monotonic()
        th = threading.Thread(target=watch, daemon=True)
        th.start()
        probe = tl.probe(lambda: via.request(HOST, "/hello", timeout=30).seconds)
        quiet.append(probe)
        tl.mark("burst starts")
        try:
            w = via.wrk(HOST, args.load_seconds, args.connections, path="/hello")
        finally:
            probe.set()
            tl.mark("burst ends")
        say("wrk: %d requests, %.0f req/s, %d errors, %d non-2xx" % (w["requests"], w["rps"], w["errors"],
                                                                    w["non2xx"]), 1)
        say("Traffic stopped. The proxy reports the request rate as KEDA's metric; the real HPA moves", 1)
        say("replicas toward ceil(rate / 20), up to 5, in the steps its scale-up policy allows; KEDA", 1)
        say("takes it to zero once the 10 s window is empty and the 5 s cooldown has passed.", 1)
        t_idle = time.monotonic()
        try:
            while True:
                if stack.replicas(NS, "hello") == 0 and ready_pods() == 0 and not kubelet.pods(NS):
                    tl.mark("back to zero")
                    break
                if time.monotonic() - t_idle > 90:
                    raise RuntimeError("not back to zero within 90 s")
                if time.monotonic() - T0 > LIMIT:
                    raise RuntimeError("demo exceeded %d s" % LIMIT)
                time.sleep(0.5)
        finally:
            stop.set()
            th.join(3)
        say("%5.1f s  back to zero: replicas 0, no pods, %.1f s after the burst ended" % (
            time.monotonic() - t_load, time.monotonic() - t_idle), 1)
        say("The next request would be held and wake the app again, as in step 6.", 1)
        time.sleep(1.0)
        tl.stop()
        data = os.path.join(os.path.dirname(os.path.abspath(args.png)), "samples")
        tl.save(data)
        say()
        say("Picture of this run: %s (samples in %s)" % (plot(data, os.path.abspath(args.png)), data))
        say()
        say("Done in %.0f s. Stopping everything started." % (time.monotonic() - T0))
    finally:
        for ev in quiet:
            ev.set()
        if stack is not None:
            for p in stack.stop():
                say("warning: " + p.splitlines()[0])
        if kubelet is not None:
            kubelet.stop()
        cluster.stop()
    return 0


def main(argv=None):
    return demo.main(argv, body=run, doc=__doc__, load_seconds=12)


if __name__ == "__main__":
    sys.exit(main())
