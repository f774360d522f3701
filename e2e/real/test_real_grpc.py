"""gRPC end to end on the real stack through a cold start: a grpcio client
-> Traefik v3.6 (GRPCRoute, h2c) -> zerowire-proxy (h2c port) -> a grpcio
server (e2e/harness/grpcbackend.py, run by the kubelet stand-in), woken from
zero by the real KEDA (e2e/real/realstack.py).

The GRPCRoute names the workload's Service port (appProtocol
kubernetes.io/h2c); the webhook rewrites it to the proxy Service's h2c port
(8081, appProtocol kubernetes.io/h2c, same listener as 8080), which is what
Traefik needs to speak h2c to a GRPCRoute backend. The first call is held
while KEDA scales the Deployment 0 -> 1, then answered by the new Pod with
its initial and trailing metadata; then server, client and bidirectional
streams, and a failing call whose grpc-status and grpc-message arrive
intact. After the last call nothing stays in flight (Traefik keeps its h2c
connection to the proxy open), the proxy reports the target inactive once
the ScaledObject's 5 s request-rate window is empty, and KEDA takes the
workload back to 0 within ZERO_BOUND_S (docs/keda-scaler.md "Time to
zero"). Deleting the ScaledObject restores the GRPCRoute byte for byte."""

import re
import time

import grpc
import pytest

from harness import util
from realstack import module_realstack
from test_real_seeds import GATEWAY, condition, wait_zero

GR = "grpcroutes.gateway.networking.k8s.io"
NS = "grpcapp"
HOST = "grpc.example.com"
METHOD = "/zerowire.test.Echo/"
# The ScaledObject's request-rate window and granularity, and its cooldown.
# Without `window` the rate is taken over the default minute, and the
# workload stays up about that long after the last call.
WINDOW_S, GRAN_S, COOLDOWN_S = 5, 0.5, 3
# Last call -> proxy inactive: the window, one bucket, the scaler's 200 ms
# tick, plus slack for a loaded machine.
INACTIVE_BOUND_S = WINDOW_S + GRAN_S + 0.2 + 2.3
# Last call -> 0 replicas: inactive, then KEDA's cooldown counted from its
# last active poll (pollingInterval 1 s), then KEDA's scale, the Deployment
# controller and the kubelet stand-in; 8 s slack on a shared 2-core machine.
ZERO_BOUND_S = INACTIVE_BOUND_S + COOLDOWN_S + 1 + 8

WORKLOAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: %(ns)s}
spec:
  replicas: 0
  selector: {matchLabels: {app: echo}}
  template:
    metadata:
      labels: {app: echo}
      annotations: {zerowire.test/backend: grpc, zerowire.test/startup-delay-ms: "500"}
    spec:
      containers:
        - {name: echo, image: example/grpc-echo, ports: [{containerPort: 50051}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: %(ns)s}
spec:
  selector: {app: echo}
  ports: [{name: grpc, port: 50051, targetPort: 50051, appProtocol: kubernetes.io/h2c}]
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: echo, namespace: %(ns)s}
spec:
  scaleTargetRef: {name: echo}
  minReplicaCount: 0
  maxReplicaCount: 2
  pollingInterval: 1
  cooldownPeriod: %(cooldown)d
  triggers:
    - type: external-push
      metadata:
        scalerAddress: %(addr)s
        service: echo
        port: "50051"
        hosts: %(host)s
        scalingMetric: requestRate
        targetValue: "5"
        window: %(window)ds
        granularity: %(gran)dms
"""

ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo, namespace: %(ns)s}
spec:
  parentRefs: [{name: grpc-gw, namespace: %(ns)s}]
  hostnames: [%(host)s]
  rules:
    - matches: [{method: {service: zerowire.test.Echo}}]
      backendRefs: [{name: echo, port: 50051}]
"""


def log(msg):
    print("[real-grpc %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


@pytest.fixture
def grpc_stack(realc, kubelet, keda, traefik):
    realc.ensure_namespace(NS)
    yield from module_realstack(realc, kubelet, keda, app_namespaces=[NS])


def accepted(st):
    parents = (st.get(GR, NS, "echo") or {}).get("status", {}).get("parents", [])
    return any(condition(p.get("conditions"), "Accepted") and condition(p.get("conditions"), "ResolvedRefs")
               for p in parents)


def wait_routed(st, traefik):
    """Until Traefik's router for the GRPCRoute leads to the proxy with h2c
    (asked of Traefik's API: a probe call would wake the workload)."""
    want = "h2c://%s:%d" % (st.host, st.proxy_port)

    def ok():
        found = [r for r in traefik.routers() if r.get("provider") == "kubernetesgateway"
                 and HOST in r.get("rule", "") and r.get("status") == "enabled"]
        servers = [traefik.servers(r) for r in found]
        if found and all(s == [want] for s in servers):
            return True
        raise AssertionError("routers %s -> servers %s" % ([r["name"] for r in found], servers))
    util.wait_for(ok, 60, 0.5, "Traefik routes the GRPCRoute to the proxy's h2c port")


def calls(st, realc, ch):
    """The calls through Traefik: a cold unary, then warm unary, streams and a
    failing call."""
    def pods():
        return {p["metadata"]["name"] for p in realc.api("GET", "/api/v1/namespaces/%s/pods" % NS)["items"]}
    t0 = time.monotonic()
    reply, call = ch.unary_unary(METHOD + "Unary").with_call(b"cold", timeout=60)
    cold = time.monotonic() - t0
    pod = dict(call.initial_metadata())["x-backend-pod"]
    assert pod in pods() and pod.startswith("echo-"), (pod, pods())
    assert reply == b"pod=%s got=cold" % pod.encode()
    assert dict(call.trailing_metadata())["x-backend-trailer"] == pod
    assert st.replicas(NS, "echo") >= 1
    log("gRPC unary through Traefik: cold call answered in %.2fs" % cold)

    t0 = time.monotonic()
    assert ch.unary_unary(METHOD + "Unary")(b"warm", timeout=10).endswith(b" got=warm")
    log("gRPC unary warm: %.1f ms" % ((time.monotonic() - t0) * 1000))
    got = list(ch.unary_stream(METHOD + "ServerStream")(b"50", timeout=10))
    assert len(got) == 50 and got[-1].endswith(b" i=49")
    big = [bytes([i % 256]) * 65536 for i in range(64)]  # 4 MiB from the client, in 64 messages
    assert ch.stream_unary(METHOD + "ClientStream")(iter(big), timeout=30).endswith(b" n=64 bytes=4194304")
    echoed = list(ch.stream_stream(METHOD + "Bidi")(iter([b"a", b"b", b"c"]), timeout=10))
    assert [e.rsplit(b"=", 1)[1] for e in echoed] == [b"a", b"b", b"c"]
    with pytest.raises(grpc.RpcError) as ei:
        ch.unary_unary(METHOD + "Fail")(b"nope", timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, ei.value
    assert ei.value.details() == "refused: nope"
    assert dict(ei.value.trailing_metadata())["x-backend-trailer"].startswith("echo-")


def workload(st):
    return WORKLOAD % {"ns": NS, "addr": st.scaler_address, "host": HOST, "window": WINDOW_S,
                       "gran": GRAN_S * 1000, "cooldown": COOLDOWN_S}


def scaler_gauge(text, name):
    """The value of the proxy's per-target gauge `name` for echo (trigger 0)."""
    m = re.search(r'^%s\{namespace="%s",target="echo/0"\} (\S+)$' % (name, NS), text, re.M)
    assert m, (name, text)
    return float(m.group(1))


def test_grpc_through_traefik_and_the_proxy_wakes_from_zero(realc, kubelet, traefik, grpc_stack):
    st = grpc_stack
    realc.apply(GATEWAY % {"name": "grpc-gw", "ns": NS, "port": traefik.web_port})
    realc.apply(workload(st))
    route = ROUTE % {"ns": NS, "host": HOST}
    applied = st.as_applied(route)
    st.wait_for(lambda: st.proxy_service in st.kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-",
                                                       input=route).stdout, 30, "target echo known to the webhook")

    st.apply(route, validate=True)
    gr = st.get(GR, NS, "echo")
    assert gr["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": st.proxy_service, "namespace": st.proxy_namespace,
         "port": 8081, "weight": 1}], gr["spec"]
    st.wait_for(lambda: accepted(st), 60, "Traefik accepts the rewritten GRPCRoute (ReferenceGrant, h2c port)")
    wait_routed(st, traefik)
    assert st.replicas(NS, "echo") == 0

    ch = grpc.insecure_channel("127.0.0.1:%d" % traefik.web_port, options=[("grpc.default_authority", HOST)])
    try:
        calls(st, realc, ch)
    except grpc.RpcError as e:
        raise AssertionError("%s\nproxy log (end):\n%s" % (e, st.log("proxy")[-4000:])) from e
    finally:
        t_last = time.monotonic()
        ch.close()
    # Counted like HTTP/1.1 requests (target echo, trigger 0): one cold, five warm (the failed
    # call too: HTTP 200, grpc-status 3).
    text = st.admin_get("/metrics")[1].decode()

    def counted(cold):
        m = re.search(r'zerowire_requests_total\{namespace="%s",target="echo/0",method="POST",code="200",'
                      r'cold_start="%s"\} (\d+)' % (NS, cold), text)
        return int(m.group(1)) if m else 0
    assert (counted("true"), counted("false")) == (1, 5), text

    # Idle: no call in flight though Traefik keeps its h2c connection to the
    # proxy (and the proxy its pool connection to the Pod) open; inactive once
    # the window is empty; then KEDA's cooldown.
    def gauge(name):
        return scaler_gauge(st.admin_get("/metrics")[1].decode(), name)
    st.wait_for(lambda: gauge("zerowire_scaler_concurrency") == 0, 5, "no gRPC call in flight", interval=0.1)
    st.wait_for(lambda: gauge("zerowire_scaler_active") == 0, INACTIVE_BOUND_S + 10, "echo inactive", interval=0.1)
    inactive = time.monotonic() - t_last
    wait_zero(st, NS, "echo", kubelet)
    down = time.monotonic() - t_last
    log("gRPC: inactive %.1fs and back to 0 %.1fs after the last call (window %ds, cooldown %ds)"
        % (inactive, down, WINDOW_S, COOLDOWN_S))
    assert inactive < INACTIVE_BOUND_S, inactive
    assert down < ZERO_BOUND_S, down
    realc.kubectl("delete", "scaledobject", "echo", "-n", NS)
    st.wait_restored(applied)
    for src in (route, workload(st)):
        st.delete(src)
