"""zerowire-proxy as the real KEDA operator's external-push scaler, on the
current control plane with the kubelet stand-in:

  1. the operator reads the ScaledObject, creates keda-hpa-web and opens
     StreamIsActive to the proxy's scaler port (and asks GetMetricSpec);
  2. a request to the cold app is held; the proxy pushes `true`, KEDA scales
     0 -> 1, the real ReplicaSet controller and scheduler make and bind the
     Pod, the kubelet stand-in runs it, the real EndpointSlice controller
     publishes it, and the held request is answered by that Pod;
  3. a paced load of RATE req/s drives the real HPA through KEDA's metrics
     API server (aggregated) and GetMetrics to ceil(RATE / TARGET) replicas;
  4. traffic stops: KEDA scales back to 0 after the cooldown and the Pods go;
  5. StreamMetricSpec: a second app scaled through an InterceptorRoute; its
     targetValue changes and the HPA's metric target follows without the
     ScaledObject being touched (the proxy pushes the new spec on the stream
     KEDA v2.21 keeps open).

Skipped while the peers are not built (e2e/build-peers.sh)."""

import os
import threading
import time

import pytest

from harness import util
from harness.proxyproc import ProxyProc

HOST = "web.real.test"
RATE = 14.0  # offered load, req/s: KEDA reads 0.8-1.0 x this (window, partial bucket)
TARGET = 5  # requestRate targetValue: ceil([11.2, 14] / 5) = 3 replicas, below MAX
MAX = 4
COOLDOWN_S = 5
STARTUP_MS = 500

WORKLOAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: %(name)s, namespace: %(ns)s}
spec:
  replicas: 0
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata:
      labels: {app: %(name)s}
      annotations: {zerowire.test/startup-delay-ms: "%(startup)d"}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: example/web
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: %(name)s, namespace: %(ns)s}
spec:
  selector: {app: %(name)s}
  ports: [{name: http, port: 80, targetPort: http}]
---
"""

# WORKLOAD's ScaledObject, up to its own settings.
SCALEDOBJECT = WORKLOAD + """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: %(name)s, namespace: %(ns)s}
spec:
  scaleTargetRef: {name: %(name)s}
  pollingInterval: 1
  minReplicaCount: 0
"""

APP = SCALEDOBJECT + """  cooldownPeriod: %(cooldown)d
  maxReplicaCount: %(max)d
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown: {stabilizationWindowSeconds: 0}
  triggers:
  - type: external-push
    metadata:
      scalerAddress: "%(scaler)s"
      service: web
      port: "80"
      hosts: %(host)s
      scalingMetric: requestRate
      targetValue: "%(target)d"
      window: 5s
      granularity: 500ms
"""

ROUTED = SCALEDOBJECT + """  maxReplicaCount: 2
  triggers:
  - type: external-push
    metadata:
      scalerAddress: "%(scaler)s"
      interceptorRoute: api
"""

ROUTE = """
apiVersion: http.keda.sh/v1beta1
kind: InterceptorRoute
metadata: {name: api, namespace: %(ns)s}
spec:
  target: {service: api, port: 80}
  rules:
  - hosts: [api.real.test]
  scalingMetric:
    requestRate: {targetValue: %(target)d}
"""


def log(msg):
    print("[real-keda %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def paced_load(proxy, host, rate, seconds, stop_when=None, workers=6):
    """GETs at `rate` req/s for at most `seconds` (or until stop_when() is
    true), over keep-alive connections. Returns the statuses."""
    n = int(rate * seconds)
    lock = threading.Lock()
    state = {"i": 0, "done": False}
    statuses = []
    t0 = time.monotonic()

    def worker():
        conn = proxy.connection(timeout=15)
        try:
            while True:
                with lock:
                    i = state["i"]
                    state["i"] += 1
                    if i >= n or state["done"]:
                        return
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    st, _, _ = proxy.get("/load?i=%d" % i, host, conn=conn)
                except OSError:
                    st = 0
                    conn.close()
                    conn = proxy.connection(timeout=15)
                with lock:
                    statuses.append(st)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if stop_when and stop_when():
            state["done"] = True
        time.sleep(0.5)
    for t in threads:
        t.join(20)
    return statuses


@pytest.fixture
def ns(realc, kubelet):
    name = realc.create_namespace("rk")
    realc.wait_for(lambda: realc.api("GET", "/api/v1/namespaces/%s/serviceaccounts/default" % name,
                                     check=False).get("kind") == "ServiceAccount", 60, 0.2, "default SA")
    return name


def test_real_keda_drives_zerowire_proxy(realc, kubelet, keda, ns, tmp_path):
    # InterceptorRoute (step 5): the CRD is served before the proxy starts.
    realc.install_crd_dir(os.path.join(util.REPO, "e2e", "crds", "keda-http.yaml"))
    proxy = ProxyProc(realc, tmp_path, namespaces=[ns], name="proxy").start()
    try:
        run(realc, kubelet, proxy, ns)
    finally:
        assert proxy.stop() == 0, proxy.output()[-3000:]


def run(realc, kubelet, proxy, ns):
    deploy = "/apis/apps/v1/namespaces/%s/deployments/web" % ns

    def replicas():
        return realc.api("GET", deploy)["spec"].get("replicas")

    def grpc_calls(method):
        return proxy.metric("zerowire_scaler_grpc_requests_total", method=method)

    realc.apply(APP % {"name": "web", "ns": ns, "startup": STARTUP_MS, "cooldown": COOLDOWN_S, "max": MAX,
                       "scaler": proxy.ports.scaler_addr, "host": HOST, "target": TARGET})
    key = "%s/web/0" % ns
    realc.wait_for(lambda: key in proxy.queue(), 30, 0.2, "the proxy knows %s" % key)

    # 1. The real operator: HPA, StreamIsActive, GetMetricSpec.
    hpa_path = "/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/keda-hpa-web" % ns

    def hpa():
        h = realc.api("GET", hpa_path, check=False)
        return h if h.get("kind") == "HorizontalPodAutoscaler" else None
    h = realc.wait_for(hpa, 120, 0.5, "HPA keda-hpa-web created by the KEDA operator")
    metric = h["spec"]["metrics"][0]["external"]
    log("HPA metric %s" % metric)
    assert metric["target"] == {"type": "AverageValue", "averageValue": str(TARGET)}
    realc.wait_for(lambda: proxy.metric("zerowire_scaler_streams") >= 1, 60, 0.2, "KEDA opens StreamIsActive")
    realc.wait_for(lambda: proxy.metric("zerowire_scaler_spec_streams") >= 1, 60, 0.2, "KEDA opens StreamMetricSpec")
    assert grpc_calls("GetMetricSpec") >= 1
    assert replicas() == 0
    time.sleep(2)
    assert replicas() == 0, "KEDA activated the app without traffic"

    # 2. Cold request: held, pushed, activated, run, published, answered.
    box = {}
    t_send = time.monotonic()
    th = threading.Thread(target=lambda: box.setdefault("r", proxy.get("/cold", HOST, timeout=60)))
    th.start()
    realc.wait_for(lambda: (replicas() or 0) >= 1, 30, 0.1, "KEDA activates web 0 -> 1")
    t_scaled = time.monotonic() - t_send
    th.join(60)
    assert "r" in box, "cold request not answered"
    cold_s = time.monotonic() - t_send
    st, hdr, body = box["r"]
    assert st == 200, (st, body[:300])
    assert hdr.get("x-zerowire-cold-start") == "true", hdr
    pods = {p["metadata"]["name"]: p["status"].get("podIP")
            for p in realc.api("GET", "/api/v1/namespaces/%s/pods" % ns)["items"]}
    assert hdr.get("x-backend-pod") in pods, (hdr, pods)
    assert hdr.get("x-backend-ip") == pods[hdr["x-backend-pod"]]
    assert hdr["x-backend-ip"].startswith("10."), hdr
    assert cold_s >= STARTUP_MS / 1000.0
    log("cold request: KEDA scaled after %.2fs, answered after %.2fs by %s" % (t_scaled, cold_s,
                                                                           hdr["x-backend-pod"]))
    assert proxy.metric("zerowire_scaler_wakes_total") >= 1
    t0 = time.time() - cold_s
    log("kubelet: " + ", ".join("%s +%.2fs" % (ev, t - t0) for t, ev, e in kubelet.events
                                if e.get("pod") == hdr["x-backend-pod"] and t >= t0))

    # 3. Sustained load: the real HPA through GetMetrics, 1 -> ceil(RATE / TARGET).
    expected = min(-(-int(RATE) // TARGET), MAX)
    seen = []

    def reached():
        r = replicas() or 0
        seen.append(r)
        running = [p for p in kubelet.pods(ns) if p.ready and not p.terminating]
        return r >= expected and len(running) >= expected
    t_load = time.monotonic()
    statuses = paced_load(proxy, HOST, RATE, 90, stop_when=reached)
    t_out = time.monotonic() - t_load
    assert max(seen) == expected, "replicas seen during the load: %s" % seen
    assert statuses and statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}
    assert grpc_calls("GetMetrics") >= 1
    h = hpa()
    log("1 -> %d in %.1fs under %.0f req/s; HPA status %s" % (expected, t_out, RATE,
                                                             h.get("status", {}).get("currentMetrics")))

    # 4. Idle: KEDA scales to 0 after the window drains and the cooldown passes.
    t_idle = time.monotonic()
    realc.wait_for(lambda: replicas() == 0, 120, 0.5, "KEDA scales web back to 0")
    log("back to 0 %.1fs after the traffic stopped" % (time.monotonic() - t_idle))
    kubelet.wait_running(ns, 0, 60)
    realc.wait_for(lambda: not realc.api("GET", "/api/v1/namespaces/%s/pods" % ns)["items"], 60, 0.3, "Pods gone")
    assert proxy.metric("zerowire_scaler_spec_streams") >= 1, "KEDA v2.21 keeps StreamMetricSpec open"

    # 5. A targetValue read from an InterceptorRoute changes; the HPA's
    # metric target follows through StreamMetricSpec alone: the ScaledObject
    # keeps its generation (KEDA rebuilds its scalers, and asks GetMetricSpec
    # again, only when that changes).
    realc.apply(ROUTE % {"ns": ns, "target": 2})
    realc.apply(ROUTED % {"name": "api", "ns": ns, "startup": 0, "scaler": proxy.ports.scaler_addr})
    realc.wait_for(lambda: "%s/api" % ns in proxy.queue(), 30, 0.2, "the proxy knows InterceptorRoute api")
    # The operator and the proxy watch the same objects: a KEDA already
    # running (another suite ran first) may call before the proxy has seen a
    # new ScaledObject and get NOT_FOUND, which it retries. Counted from here.
    not_found_known = proxy.metric("zerowire_scaler_not_found_total")
    api_hpa = "/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/keda-hpa-api" % ns
    so_path = "/apis/keda.sh/v1alpha1/namespaces/%s/scaledobjects/api" % ns

    def api_target():
        h = realc.api("GET", api_hpa, check=False)
        if h.get("kind") != "HorizontalPodAutoscaler":
            return None
        return h["spec"]["metrics"][0]["external"]["target"]
    realc.wait_for(lambda: api_target() == {"type": "AverageValue", "averageValue": "2"}, 120, 0.5,
                   "HPA keda-hpa-api with target 2")
    realc.wait_for(lambda: proxy.metric("zerowire_scaler_spec_streams") >= 2, 60, 0.2,
                   "KEDA opens StreamMetricSpec for api")
    generation = realc.api("GET", so_path)["metadata"]["generation"]
    spec_calls = grpc_calls("GetMetricSpec")
    t_change = time.monotonic()
    realc.apply(ROUTE % {"ns": ns, "target": 9})
    realc.wait_for(lambda: api_target() == {"type": "AverageValue", "averageValue": "9"}, 60, 0.2,
                   "the HPA's target follows the InterceptorRoute to 9")
    log("InterceptorRoute targetValue 2 -> 9 reached the HPA in %.1fs" % (time.monotonic() - t_change))
    assert realc.api("GET", so_path)["metadata"]["generation"] == generation
    assert grpc_calls("GetMetricSpec") == spec_calls, "the change came by StreamMetricSpec, not a re-read"
    assert proxy.metric("zerowire_scaler_spec_pushes_total") >= 3  # web, api, api's change

    # Every call of the real operator named a known target once the proxy had
    # seen it, and a method zerowire serves (StreamMetricSpec included: none
    # answered Unimplemented).
    assert proxy.metric("zerowire_scaler_not_found_total") == not_found_known
    for m in ("zerowire_scaler_grpc_malformed_total", "zerowire_scaler_grpc_unimplemented_total"):
        assert proxy.metric(m) == 0, m
    log("gRPC calls: %s" % {m: grpc_calls(m) for m in ("IsActive", "StreamIsActive", "GetMetricSpec",
                                                      "GetMetrics", "StreamMetricSpec")})
