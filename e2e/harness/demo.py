"""`make demo` (scripts/demo.sh runs this): scale-from-zero, explained step by
step, on a local control plane. Everything it starts is stopped when it ends,
fails or is interrupted.

  python3 -m harness.demo [--load-seconds 10] [--connections 8] [--png PATH]

It also writes a picture of what it showed (replicas, ready pods and request
latency over time, the cold start marked): build/demo/zerowire-demo.png by
default (harness/timeline.py, gnuplot).
"""

import argparse
import os
import signal
import sys
import threading
import time

from .cluster import Cluster
from .stack import Stack
from .timeline import Timeline, plot

NS = "demo"
HOST = "hello.demo.example"
LIMIT = 300  # seconds: the whole demo after the control plane is up

APP = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: demo
  annotations:
    zerowire.test/startup-delay-ms: "1500"   # the node stand-in starts a pod in 1.5 s
spec:
  replicas: 0
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers:
        - name: hello
          image: example/hello
          ports: [{containerPort: 18080}]   # not 8080: often taken on a developer machine
---
apiVersion: v1
kind: Service
metadata: {name: hello, namespace: demo}
spec:
  selector: {app: hello}
  ports: [{name: http, port: 80, targetPort: 18080}]
"""

SCALEDOBJECT = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: hello, namespace: demo}
spec:
  scaleTargetRef: {name: hello}
  minReplicaCount: 0
  maxReplicaCount: 5
  pollingInterval: 1
  cooldownPeriod: 5
  triggers:
    - type: external-push
      metadata:
        scalerAddress: %s
        service: hello
        port: "80"
        hosts: hello.demo.example
        scalingMetric: requestRate
        targetValue: "20"
        window: 10s
"""

ROUTES = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: hello, namespace: demo}
spec:
  rules:
    - host: hello.demo.example
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service: {name: hello, port: {number: 80}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: hello, namespace: demo}
spec:
  parentRefs: [{name: gateway, namespace: gateway-system}]
  hostnames: [hello.demo.example]
  rules:
    - backendRefs: [{name: hello, port: 80}]
"""

T0 = time.monotonic()


def say(msg="", indent=0):
    print("%s%s" % ("   " * indent, msg), flush=True)


def step(n, total, title):
    say()
    say("[%d/%d] %s  (%.0f s)" % (n, total, title, time.monotonic() - T0))


def held_request(tl, request, state):
    """Sends one request with request() on a thread while the app is at zero,
    printing state() -> (replicas, ready pods) each time it changes while the
    request is held, and marks the hold on the timeline tl. Returns the
    response; raises RuntimeError when the request failed."""
    done = threading.Event()
    res = {}

    def send():
        try:
            res["r"] = request()
        except Exception as e:  # noqa: BLE001 - raised below
            res["e"] = e
        done.set()
    t_send = time.monotonic()
    tl_sent = tl.now()
    tl.mark("request sent (0 replicas)", tl_sent)
    threading.Thread(target=send, daemon=True).start()
    shown = set()
    while not done.wait(0.1):
        now = state()
        if now not in shown:
            shown.add(now)
            say("%5.2f s  request held by the proxy; replicas %d, ready pods %d" % (
                (time.monotonic() - t_send,) + now), 1)
    if "e" in res:
        raise RuntimeError("the request failed: %s" % res["e"])
    r = res["r"]
    tl.held = (tl_sent, tl_sent + r.seconds)
    tl.sample(tl_sent, r.seconds, cold=True)
    tl.mark("answered (%.1f s)" % r.seconds, tl_sent + r.seconds)
    say("%5.2f s  answered: HTTP %d by pod %s (X-Zerowire-Cold-Start: %s)" % (
        r.seconds, r.status, r.headers.get("x-backend-pod"), r.headers.get("x-zerowire-cold-start")), 1)
    return r


def run(args):
    total = 7
    step(1, total, "Local control plane: etcd and a real kube-apiserver 1.20 on 127.0.0.1")
    say("The stand-in demo (without root or network namespaces, or ZW_DEMO_STACK=1.20; else make", 1)
    say("demo runs the real stack). No kubelet or KEDA operator runs here: a 'node stand-in' turns", 1)
    say("a Deployment's replicas into small HTTP server processes on 127.0.0.x, and a 'KEDA", 1)
    say("stand-in' scales Deployments the way KEDA does, talking to zerowire over KEDA's own gRPC", 1)
    say("protocol.", 1)
    cluster = Cluster(name="zw-demo")
    stack = None
    try:
        cluster.start()
        say("kube-apiserver ready at %s" % cluster.server, 1)

        step(2, total, "Install zerowire from its Helm chart")
        stack = Stack(cluster, app_namespaces=[NS], sanitized=False, startup_delay_ms=1500, log_level="warn")
        cluster.ensure_namespace(NS)
        stack.start()
        say("helm install zerowire charts/zerowire: proxy Service %s, webhook registered by URL" % stack.proxy_host, 1)
        say("zerowire-webhook (rewrites routes) on 127.0.0.1:%d" % stack.webhook_port, 1)
        say("zerowire-proxy: HTTP on 127.0.0.1:%d, KEDA scaler on :%d, admin on :%d" % (
            stack.proxy_port, stack.scaler_port, stack.admin_port), 1)

        step(3, total, "Deploy a sample app at zero replicas, and its ScaledObject")
        stack.apply(APP)
        stack.apply(SCALEDOBJECT % stack.scaler_address)
        say("Deployment demo/hello: replicas 0; Service hello:80", 1)
        say("ScaledObject: scale on request rate (20 req/s per replica, 10 s window), 0..5 replicas,", 1)
        say("back to zero 5 s after traffic stops. Its trigger names zerowire's scaler.", 1)

        step(4, total, "Route to it with an Ingress and an HTTPRoute, written as usual")
        stack.wait_for(lambda: stack.proxy_service in stack.kubectl(
            "apply", "--dry-run=server", "-o", "json", "-f", "-", input=ROUTES.split("---")[0]).stdout,
            30, "the webhook to know the ScaledObject")
        r = stack.apply(ROUTES)
        for line in r.stdout.strip().splitlines():
            say("kubectl apply: " + line, 1)
        ing = stack.get("ingresses.networking.k8s.io", NS, "hello")
        hr = stack.get("httproutes.gateway.networking.k8s.io", NS, "hello")
        isvc = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        ref = hr["spec"]["rules"][0]["backendRefs"][0]
        say("Both said Service hello:80. As stored, at admission zerowire pointed them at its proxy:", 1)
        say("Ingress backend   -> %s:%s (an alias of %s)" % (isvc["name"], isvc["port"]["number"],
                                                            stack.proxy_host), 2)
        say("HTTPRoute backend -> %s.%s:%s" % (ref["name"], ref.get("namespace"), ref["port"]), 2)
        say("(the original is kept in the annotation zerowire.io/original; deleting the", 1)
        say("ScaledObject puts it back exactly)", 1)

        tl = Timeline(lambda: (stack.replicas(NS, "hello"), len(stack.node.ready_pods(NS, "hello"))))
        tl.start()
        time.sleep(1.0)  # a second of "before" in the picture

        step(5, total, "One request while the app has 0 replicas")
        say("curl -H 'Host: %s' http://127.0.0.1:%d/hello   (as the ingress controller would send it;" % (
            HOST, stack.proxy_port), 1)
        say("a pod of this app takes 1.5 s to start, like a small container)", 1)
        r = held_request(tl, lambda: stack.request(HOST, "/hello"),
                         lambda: (stack.replicas(NS, "hello"), len(stack.node.ready_pods(NS, "hello"))))
        say("body: %s" % r.body.decode(errors="replace").strip()[:100], 1)
        say("The proxy told KEDA at once (StreamIsActive), KEDA scaled 0 -> 1, and the held request", 1)
        say("went to the new pod as soon as it was ready: nothing was lost or retried by the client.", 1)

        step(6, total, "A burst: wrk, %d connections for %d s" % (args.connections, args.load_seconds))
        stop = threading.Event()

        def watch():
            last = None
            while not stop.wait(1.0):
                n, ready = stack.replicas(NS, "hello"), len(stack.node.ready_pods(NS, "hello"))
                if (n, ready) != last:
                    say("%5.1f s  replicas %d, ready pods %d" % (time.monotonic() - t_load, n, ready), 1)
                    last = (n, ready)
        t_load = time.monotonic()
        th = threading.Thread(target=watch, daemon=True)
        th.start()
        probe = tl.probe(lambda: stack.request(HOST, "/hello", timeout=30).seconds)
        tl.mark("burst starts")
        try:
            w = stack.wrk(HOST, args.load_seconds, args.connections, path="/hello")
        finally:
            stop.set()
            probe.set()
            tl.mark("burst ends")
            th.join(3)
        say("wrk: %d requests, %.0f req/s, %d errors, %d non-2xx" % (w["requests"], w["rps"], w["errors"],
                                                                    w["non2xx"]), 1)
        say("The proxy counts requests per app; KEDA polls it every second and sets", 1)
        say("replicas = ceil(request rate / 20), up to 5. New pods share the load at once.", 1)

        step(7, total, "Traffic stopped: back to zero")
        t_idle = time.monotonic()
        last = None
        while True:
            n, ready = stack.replicas(NS, "hello"), len(stack.node.ready_pods(NS, "hello"))
            if (n, ready) != last:
                say("%5.1f s  replicas %d, ready pods %d" % (time.monotonic() - t_idle, n, ready), 1)
                last = (n, ready)
            if n == 0 and ready == 0:
                tl.mark("back to zero")
                break
            if time.monotonic() - t_idle > 90:
                raise RuntimeError("not back to zero within 90 s")
            if time.monotonic() - T0 > LIMIT:
                raise RuntimeError("demo exceeded %d s" % LIMIT)
            time.sleep(0.5)
        say("As the 10 s request window empties, the measured rate falls and KEDA lowers the replicas;", 1)
        say("once no request is left in it and the 5 s cooldown has passed, KEDA scales to zero.", 1)
        say("The next request would be held and wake the app again, as in step 5.", 1)
        time.sleep(1.0)
        tl.stop()
        data = os.path.join(os.path.dirname(os.path.abspath(args.png)), "samples")
        tl.save(data)
        say()
        say("Picture of this run: %s (samples in %s)" % (plot(data, os.path.abspath(args.png)), data))
        say()
        say("Done in %.0f s. Stopping everything started." % (time.monotonic() - T0))
    finally:
        if stack is not None:
            problems = stack.stop()
            for p in problems:
                say("warning: " + p.splitlines()[0])
        cluster.stop()
    return 0


def main(argv=None, body=None, doc=None, load_seconds=10):
    """Parses argv, runs body(args) (default: this demo) with SIGTERM taken as
    Ctrl-C, and returns the exit status: 0, 1 (one line says why) or 130."""
    ap = argparse.ArgumentParser(description=doc or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load-seconds", type=int, default=load_seconds)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--png", default=os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "build", "demo", "zerowire-demo.png"),
        help="where the picture goes (default build/demo/zerowire-demo.png)")
    args = ap.parse_args(argv)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        return (body or run)(args)
    except KeyboardInterrupt:
        say("\ninterrupted: everything started was stopped")
        return 130
    except Exception as e:  # noqa: BLE001 - one clear line, not a traceback
        say("\ndemo failed: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
