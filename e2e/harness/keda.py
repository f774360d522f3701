"""KEDA stand-in: follows KEDA's documented behaviour for `external` and
`external-push` triggers through the real gRPC protocol
(../shared/fixtures/proto/keda-externalscaler.proto, compiled at test time).

Per ScaledObject (keda.sh/v1alpha1) in the watched namespaces:
  * external-push triggers: StreamIsActive(ScaledObjectRef{name, namespace,
    scalerMetadata = trigger metadata}) is kept open (reconnect with backoff
    0.1 s .. 5 s on error or end); every message goes to RequestScale: `true`
    while the target is at 0 scales it to max(minReplicaCount, 1) at once and
    marks the object active; `false` may scale to zero once cooldown passed.
  * every pollingInterval (default 30 s; the object's value is honoured):
    IsActive, GetMetricSpec and GetMetrics per trigger; then RequestScale(any
    active) and, while the target has replicas, the HPA step: desired =
    ceil(metricValue / targetSize) (AverageValue; metricType Value uses
    ceil(current * value / target)), the maximum over all metrics, clamped
    to [max(minReplicaCount, 1), maxReplicaCount] (default 100); scale-down
    honours advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.
    stabilizationWindowSeconds when the object sets it (default here 0, not
    the HPA's 300, so tests need not wait five minutes).
  * scale to zero (idleReplicaCount if set, else 0; only when
    minReplicaCount is 0) when no trigger was active for cooldownPeriod
    (default 300 s); an object never seen active scales down at once, as KEDA
    does when status.lastActiveTime is unset (after initialCooldownPeriod).
Scaling goes through the target's /scale subresource. Every stream message,
poll and scale decision is recorded in .events with timestamps.

Usage from a test:
    keda = KedaStandin(cluster, namespaces=[ns], resolve={"svc.ns:9090": "127.0.0.1:19090"})
    with keda:
        ...
        keda.wait_replicas(ns, "web", 1, timeout=5)
        [e for e in keda.events if e["type"] == "stream"]
For fast tests, polling_interval / cooldown_period override the object's
values (seconds) when given.
"""

import math
import os
import shutil
import sys
import tempfile
import threading
import time

from . import util
from .cluster import ClusterError
from .kwatch import Watcher

PROTO_REL = os.path.join("fixtures", "proto", "keda-externalscaler.proto")
GRPC_TIMEOUT = 5.0  # seconds per unary call
_proto_lock = threading.Lock()
_proto = None


class ProtoMissing(RuntimeError):
    pass


def proto_path():
    return os.path.join(util.shared_dir(), PROTO_REL)


def load_proto():
    """Compiles the upstream KEDA external scaler .proto (once per process) into
    a temporary directory and returns (pb2, pb2_grpc) modules. Raises
    ProtoMissing when ../shared/fixtures/proto/keda-externalscaler.proto is absent.
    Other suites should use this too (one descriptor pool per process)."""
    global _proto
    with _proto_lock:
        if _proto is not None:
            return _proto
        src = proto_path()
        if not os.path.exists(src):
            raise ProtoMissing("upstream KEDA .proto absent: %s (../shared not present)" % src)
        from grpc_tools import protoc
        d = tempfile.mkdtemp(prefix="zw-kedaproto.")
        shutil.copy(src, os.path.join(d, "externalscaler.proto"))
        rc = protoc.main(["protoc", "-I" + d, "--python_out=" + d, "--grpc_python_out=" + d,
                          os.path.join(d, "externalscaler.proto")])
        if rc != 0:
            raise RuntimeError("grpc_tools.protoc failed on %s (exit %d)" % (src, rc))
        sys.path.insert(0, d)
        try:
            import externalscaler_pb2  # noqa: E402
            import externalscaler_pb2_grpc  # noqa: E402
        finally:
            sys.path.remove(d)
            shutil.rmtree(d, ignore_errors=True)  # the modules are loaded
        _proto = (externalscaler_pb2, externalscaler_pb2_grpc)
        return _proto


def _int(v, default):
    try:
        return int(v) if v is not None else default
    except (TypeError, ValueError):
        return default


class _SO:
    """Runtime state of one ScaledObject."""

    def __init__(self, obj):
        self.obj = obj
        md, spec = obj["metadata"], obj.get("spec", {})
        self.namespace, self.name = md["namespace"], md["name"]
        self.generation = md.get("generation")
        ref = spec.get("scaleTargetRef", {})
        self.target_name = ref.get("name")
        self.target_kind = ref.get("kind", "Deployment")
        self.target_api = ref.get("apiVersion", "apps/v1")
        self.min = _int(spec.get("minReplicaCount"), 0)
        self.max = _int(spec.get("maxReplicaCount"), 100)
        self.idle = _int(spec.get("idleReplicaCount"), None)
        self.polling = _int(spec.get("pollingInterval"), 30)
        self.cooldown = _int(spec.get("cooldownPeriod"), 300)
        self.initial_cooldown = _int(spec.get("initialCooldownPeriod"), 0)
        self.triggers = [t for t in spec.get("triggers", []) if t.get("type") in ("external", "external-push")]
        behavior = (((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("behavior") or {})
        self.down_window = _int((behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds"), 0)
        self.recommendations = []  # (monotonic time, desired replicas) for the scale-down window
        self.created = time.monotonic()
        self.last_active = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.calls = []  # open streaming calls (cancelled on stop)
        self.threads = []

    @property
    def key(self):
        return "%s/%s" % (self.namespace, self.name)

    def scale_path(self):
        plural = self.target_kind.lower() + "s"
        base = "/api/v1" if self.target_api == "v1" else "/apis/" + self.target_api
        return "%s/namespaces/%s/%s/%s/scale" % (base, self.namespace, plural, self.target_name)


class KedaStandin:
    """See module docstring. resolve: dict or callable mapping a trigger's
    scalerAddress to the address to dial (default: as written)."""

    def __init__(self, cluster, namespaces=None, resolve=None, polling_interval=None, cooldown_period=None,
                 grpc_timeout=GRPC_TIMEOUT):
        self.pb2, self.pb2_grpc = load_proto()
        import grpc
        self._grpc = grpc
        self.cluster = cluster
        if isinstance(namespaces, str):
            namespaces = [namespaces]
        self.namespaces = list(namespaces) if namespaces else None
        if isinstance(resolve, dict):
            m = dict(resolve)
            self.resolve = lambda a: m.get(a, a)
        else:
            self.resolve = resolve or (lambda a: a)
        self.polling_override = polling_interval
        self.cooldown_override = cooldown_period
        self.grpc_timeout = grpc_timeout
        self.events = []
        self._events_cond = threading.Condition()
        self._sos = {}
        self._channels = {}
        self._lock = threading.RLock()
        self._watchers = []
        self._stopped = threading.Event()
        self._tls = threading.local()

    # ---- lifecycle ------------------------------------------------------------
    def start(self):
        scopes = ["/namespaces/%s" % ns for ns in self.namespaces] if self.namespaces else [""]
        for sc in scopes:
            w = Watcher(self.cluster, "/apis/keda.sh/v1alpha1%s/scaledobjects" % sc, self._on_change, "keda-so")
            self._watchers.append(w.start())
        for w in self._watchers:
            if not w.synced.wait(30):
                raise TimeoutError("KEDA stand-in: initial list of ScaledObjects timed out")
        return self

    def stop(self):
        self._stopped.set()
        for w in self._watchers:
            w.stop()
        with self._lock:
            sos = list(self._sos.values())
            self._sos.clear()
        for so in sos:
            self._stop_so(so)
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- records ----------------------------------------------------------------
    def record(self, so, type_, **kw):
        ev = dict(t=time.time(), mono=time.monotonic(), so=so.key if so else None, type=type_, **kw)
        with self._events_cond:
            self.events.append(ev)
            self._events_cond.notify_all()
        return ev

    def wait_event(self, pred, timeout=30, what="KEDA stand-in event"):
        """Returns the first recorded event (dict) for which pred(event) is true,
        waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        with self._events_cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("timed out waiting for %s" % what)
                self._events_cond.wait(min(left, 0.5))

    def replicas(self, namespace, name):
        """spec.replicas of the target of ScaledObject namespace/name (via /scale)."""
        so = self._sos.get((namespace, name))
        if so is None:
            raise KeyError("ScaledObject %s/%s not known to the KEDA stand-in" % (namespace, name))
        return self._get_scale(so)

    def wait_replicas(self, namespace, name, n, timeout=30):
        return util.wait_for(lambda: self.replicas(namespace, name) == n, timeout, 0.05,
                             "%s/%s target at %d replicas" % (namespace, name, n))

    # ---- objects -------------------------------------------------------------------
    def _on_change(self, type_, obj, key):
        with self._lock:
            old = self._sos.get(key)
            if obj is not None and old is not None and old.generation == obj["metadata"].get("generation"):
                old.obj = obj
                return
            if old is not None:
                del self._sos[key]
                self._stop_so(old)
            if obj is None or self._stopped.is_set():
                return
            so = _SO(obj)
            if self.polling_override is not None:
                so.polling = self.polling_override
            if self.cooldown_override is not None:
                so.cooldown = self.cooldown_override
            self._sos[key] = so
        self.record(so, "watch", event=type_, triggers=len(so.triggers))
        if not so.triggers:
            return
        for i, trig in enumerate(so.triggers):
            if trig["type"] == "external-push":
                t = threading.Thread(target=self._stream_loop, args=(so, i, trig), daemon=True,
                                     name="keda-stream-%s-%d" % (so.name, i))
                so.threads.append(t)
                t.start()
        t = threading.Thread(target=self._poll_loop, args=(so,), daemon=True, name="keda-poll-" + so.name)
        so.threads.append(t)
        t.start()

    def _stop_so(self, so):
        so.stop.set()
        for c in list(so.calls):
            c.cancel()
        for t in so.threads:
            t.join(10)

    # ---- gRPC ---------------------------------------------------------------------------
    def _stub(self, trig):
        addr = (trig.get("metadata") or {}).get("scalerAddress")
        if not addr:
            raise ValueError("trigger has no metadata.scalerAddress")
        addr = self.resolve(addr)
        with self._lock:
            ch = self._channels.get(addr)
            if ch is None:
                ch = self._grpc.insecure_channel(addr)
                self._channels[addr] = ch
        return self.pb2_grpc.ExternalScalerStub(ch)

    def _ref(self, so, trig):
        md = {k: str(v) for k, v in (trig.get("metadata") or {}).items()}
        return self.pb2.ScaledObjectRef(name=so.name, namespace=so.namespace, scalerMetadata=md)

    def _stream_loop(self, so, idx, trig):
        backoff = 0.1
        while not so.stop.is_set():
            call = None
            try:
                call = self._stub(trig).StreamIsActive(self._ref(so, trig))
                so.calls.append(call)
                self.record(so, "stream-open", trigger=idx)
                for msg in call:
                    backoff = 0.1
                    self.record(so, "stream", trigger=idx, value=bool(msg.result))
                    self.request_scale(so, bool(msg.result), "stream")
                self.record(so, "stream-end", trigger=idx)
            except self._grpc.RpcError as e:
                if so.stop.is_set():
                    break
                self.record(so, "stream-error", trigger=idx, code=str(e.code()), details=e.details())
            except (ValueError, OSError, ClusterError) as e:  # OSError: apiserver unreachable
                self.record(so, "stream-error", trigger=idx, code="LOCAL", details=str(e))
            finally:
                if call is not None and call.is_active():
                    call.cancel()
                so.calls[:] = [c for c in so.calls if c.is_active()]
            so.stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def _poll_once(self, so):
        """One KEDA polling cycle; returns (active, metrics)."""
        active = False
        metrics = []
        for idx, trig in enumerate(so.triggers):
            stub, ref = self._stub(trig), self._ref(so, trig)
            try:
                ia = stub.IsActive(ref, timeout=self.grpc_timeout).result
                specs = stub.GetMetricSpec(ref, timeout=self.grpc_timeout).metricSpecs
                for spec in specs:
                    resp = stub.GetMetrics(self.pb2.GetMetricsRequest(scaledObjectRef=ref, metricName=spec.metricName),
                                           timeout=self.grpc_timeout)
                    vals = [v for v in resp.metricValues if v.metricName in ("", spec.metricName)] or \
                        list(resp.metricValues)
                    value = sum(v.metricValueFloat if v.metricValueFloat else float(v.metricValue) for v in vals)
                    target = spec.targetSizeFloat if spec.targetSizeFloat else float(spec.targetSize)
                    metrics.append({"trigger": idx, "name": spec.metricName, "value": value, "target": target,
                                    "type": trig.get("metricType", "AverageValue")})
            except self._grpc.RpcError as e:
                self.record(so, "poll-error", trigger=idx, code=str(e.code()), details=e.details())
                continue  # KEDA treats a failing scaler as inactive
            active = active or ia
        self.record(so, "poll", active=active, metrics=metrics)
        return active, metrics

    def _poll_loop(self, so):
        while not so.stop.is_set():
            t0 = time.monotonic()
            try:
                active, metrics = self._poll_once(so)
                self.request_scale(so, active, "poll")
                self._hpa(so, metrics)
            except (ClusterError, ValueError, OSError) as e:
                self.record(so, "poll-error", code="LOCAL", details=str(e))
            so.stop.wait(max(0.0, so.polling - (time.monotonic() - t0)))

    # ---- scaling ---------------------------------------------------------------------------
    def _session(self):
        s = getattr(self._tls, "s", None)
        if s is None:
            s = self._tls.s = self.cluster.new_session()
        return s

    def _get_scale(self, so):
        return self.cluster.api("GET", so.scale_path(), session=self._session())["spec"].get("replicas", 0)

    def _set_scale(self, so, n, reason, cur):
        self.cluster.api("PATCH", so.scale_path(), {"spec": {"replicas": n}},
                         content_type="application/merge-patch+json", session=self._session())
        self.record(so, "scale", frm=cur, to=n, reason=reason)

    def request_scale(self, so, active, source):
        """KEDA's RequestScale: activation to max(min, 1) and scale to zero (or
        idle) after the cooldown."""
        with so.lock:
            if so.stop.is_set():
                return
            now = time.monotonic()
            cur = self._get_scale(so)
            if active:
                so.last_active = now
                if cur == 0:
                    self._set_scale(so, max(so.min, 1), "activate (%s)" % source, cur)
                elif cur < so.min:
                    self._set_scale(so, so.min, "min (%s)" % source, cur)
                return
            floor = so.idle if so.idle is not None else so.min
            if so.min == 0 and cur > floor:
                since = so.last_active if so.last_active is not None else so.created + so.initial_cooldown - so.cooldown
                if now - since >= so.cooldown:
                    self._set_scale(so, floor, "cooldown (%s)" % source, cur)
            elif cur < so.min:
                self._set_scale(so, so.min, "min (%s)" % source, cur)

    def _hpa(self, so, metrics):
        with so.lock:
            if so.stop.is_set() or not metrics:
                return
            cur = self._get_scale(so)
            lo = max(so.min, 1)
            quiet = so.last_active is None or time.monotonic() - so.last_active >= so.cooldown
            if cur == 0 or (so.idle is not None and cur <= so.idle and quiet):
                return  # the HPA does not act at zero (or at idleReplicaCount)
            want = 0
            for m in metrics:
                if m["target"] <= 0:
                    continue
                if m["type"] == "Value":
                    want = max(want, math.ceil(cur * m["value"] / m["target"] - 1e-9))
                else:
                    want = max(want, math.ceil(m["value"] / m["target"] - 1e-9))
            want = min(max(want, lo), so.max)
            now = time.monotonic()
            so.recommendations = [(t, w) for t, w in so.recommendations if now - t < so.down_window]
            so.recommendations.append((now, want))
            if want < cur:  # scale down no lower than the highest recommendation in the window
                want = max(w for _, w in so.recommendations)
            if want != cur:
                self._set_scale(so, want, "hpa", cur)
