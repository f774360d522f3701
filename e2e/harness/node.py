"""Node stand-in: plays kubelet + Deployment controller + EndpointSlice
controller for the local control plane, which runs none of them.

For every watched Deployment it keeps spec.replicas backend processes
("pods", harness/backend.py) running, each on its own loopback address
127.R.x.y (R random per test process, so parallel sessions do not collide)
and the Deployment's container ports. A pod listens only after its start-up
delay (default 1000 ms; annotation zerowire.test/startup-delay-ms on the
Deployment or its pod template overrides), then reports ready. The stand-in
keeps true:
  * the Deployment status (replicas, readyReplicas, availableReplicas,
    updatedReplicas, unavailableReplicas, observedGeneration, Available);
  * one EndpointSlice per selecting Service, named <service>-zw, label
    kubernetes.io/service-name, ports named as the Service ports with the
    targetPort resolved, one endpoint per pod with conditions.ready
    (discovery.k8s.io/v1 where served, else v1beta1 as on 1.20).
Scaling down removes endpoints and kills processes (not-ready first, then
newest). A changed pod template replaces all pods (Recreate). A pod whose
process dies is replaced, like a ReplicaSet would. Deployments annotated
zerowire.test/standin: "ignore" are left alone.

Usage from a test:
    with NodeStandin(cluster, namespaces=[ns]) as node:
        cluster.apply(deployment_and_service_yaml)
        node.wait_ready(ns, "web", 2)
        ip = node.pods(ns, "web")[0].ip
"""

import hashlib
import itertools
import json
import os
import queue
import random
import secrets
import signal
import socket
import subprocess
import threading
import time

from . import util
from .cluster import ClusterError, _pdeathsig
from .kwatch import Watcher

ANN_DELAY = "zerowire.test/startup-delay-ms"
ANN_STANDIN = "zerowire.test/standin"
MANAGED_BY = "zerowire-node-standin"
PYTHON = "/usr/bin/python3"
E2E_DIR = os.path.join(util.REPO, "e2e")

_ip_lock = threading.Lock()
_ip_base = random.randrange(16, 250)
_ip_seq = itertools.count(1)
MAX_PODS_PER_PROCESS = 60000


def _bindable(ip, ports):
    for p in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((ip, p))
            except OSError:
                return False
    return True


def allocate_ip(ports):
    """A loopback address 127.R.x.y never handed out before in this process,
    on which every port in ports is free right now."""
    with _ip_lock:
        for _ in range(1000):
            n = next(_ip_seq)
            if n > MAX_PODS_PER_PROCESS:
                raise RuntimeError("node stand-in: loopback address pool exhausted")
            ip = "127.%d.%d.%d" % (_ip_base, n // 254, n % 254 + 1)
            if _bindable(ip, ports):
                return ip
    raise RuntimeError("node stand-in: no free loopback address found")


class Pod:
    """One backend process. ready: listening. pid/proc: the process."""

    def __init__(self, ns, deploy, name, ip, ports, template_hash, labels, delay_ms):
        self.namespace, self.deployment, self.name = ns, deploy, name
        self.ip, self.ports, self.template_hash = ip, ports, template_hash
        self.labels = labels
        self.delay_ms = delay_ms
        self.ready = False
        self.terminating = False
        self.created = time.time()
        self.ready_at = None
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def url(self, port=None, path="/"):
        return "http://%s:%d%s" % (self.ip, port or self.ports[0], path)

    def __repr__(self):
        return "Pod(%s %s ready=%s)" % (self.name, self.ip, self.ready)


def _selector_matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class NodeStandin:
    """See module docstring. namespaces: list of namespaces to manage (None:
    every namespace; prefer naming yours). startup_delay_ms: default delay.
    ignore: optional predicate(deployment) -> True to leave it alone."""

    def __init__(self, cluster, namespaces=None, startup_delay_ms=1000, ignore=None, log_dir=None):
        self.cluster = cluster
        if isinstance(namespaces, str):
            namespaces = [namespaces]
        self.namespaces = list(namespaces) if namespaces else None
        self.startup_delay_ms = startup_delay_ms
        self.ignore = ignore
        self.log_dir = log_dir or os.path.join(cluster.tmpdir, "pods")
        self.events = []  # (unix time, event, dict): spawn/ready/kill/exit/slice/status
        self._pods = {}  # (ns, deploy) -> [Pod]
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._queue = queue.Queue()
        self._stop = threading.Event()
        self._watchers = []
        self._slice_cache = {}
        self._status_cache = {}
        self._worker = None
        self.slice_version = None
        self._session = None

    def _api(self, *a, **kw):
        """cluster.api on this stand-in's own session (the worker thread's)."""
        if self._session is None:
            self._session = self.cluster.new_session()
        return self.cluster.api(*a, session=self._session, **kw)

    # ---- lifecycle ----------------------------------------------------------
    def start(self):
        groups = self.cluster.api("GET", "/apis/discovery.k8s.io")
        versions = [v["version"] for v in groups.get("versions", [])]
        self.slice_version = "v1" if "v1" in versions else "v1beta1"
        self._worker = threading.Thread(target=self._work, name="node-standin", daemon=True)
        self._worker.start()
        scopes = ["/namespaces/%s" % ns for ns in self.namespaces] if self.namespaces else [""]
        for sc in scopes:
            self._watchers.append(Watcher(self.cluster, "/apis/apps/v1%s/deployments" % sc,
                                          lambda t, o, k: self._queue.put(("deploy", k)), "node-deploy").start())
            self._watchers.append(Watcher(self.cluster, "/api/v1%s/services" % sc,
                                          lambda t, o, k: self._queue.put(("svc", k)), "node-svc").start())
        for w in self._watchers:
            if not w.synced.wait(30):
                raise TimeoutError("node stand-in: initial list of %s timed out" % w.path)
        return self

    def stop(self):
        """Stops watching and kills every pod process (endpoints are left as
        they are: the apiserver may already be gone)."""
        self._stop.set()
        self._queue.put(("stop", None))
        for w in self._watchers:
            w.stop()
        if self._worker:
            self._worker.join(10)
        if self._session is not None:
            self._session.close()
            self._session = None
        with self._lock:
            pods = [p for lst in self._pods.values() for p in lst]
            self._pods.clear()
        for p in pods:
            self._signal(p, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in pods:
            if p.proc:
                try:
                    p.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._signal(p, signal.SIGKILL)
                    p.proc.wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- queries --------------------------------------------------------------
    def pods(self, namespace, deployment):
        """Current pods of a Deployment (copies of the list; Pod objects live)."""
        with self._lock:
            return list(self._pods.get((namespace, deployment), []))

    def ready_pods(self, namespace, deployment):
        return [p for p in self.pods(namespace, deployment) if p.ready and not p.terminating]

    def wait_ready(self, namespace, deployment, n, timeout=30):
        """Waits until exactly n pods of the Deployment are ready and no others
        exist (n=0: all gone); returns the ready pods."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                pods = self._pods.get((namespace, deployment), [])
                ready = [p for p in pods if p.ready and not p.terminating]
                if len(ready) == n and len(pods) == n:
                    return ready
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("node stand-in: %s/%s has %d pods, %d ready; wanted %d" % (
                        namespace, deployment, len(pods), len(ready), n))
                self._cond.wait(min(left, 0.5))

    def kill_pod(self, pod, sig=signal.SIGKILL):
        """Simulates a crash: kills the pod's process; the stand-in then removes
        it and starts a replacement."""
        self._signal(pod, sig)

    def record(self, event, **kw):
        self.events.append((time.time(), event, kw))

    # ---- worker -----------------------------------------------------------------
    def _work(self):
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            kind, key = item
            if kind == "stop":
                break
            try:
                if kind == "deploy":
                    self._reconcile_deployment(*key)
                elif kind == "svc":
                    self._reconcile_service(*key)
                elif kind == "pods":  # a pod became ready or exited
                    self._reconcile_deployment(*key, spawn=True)
            except (ClusterError, OSError, ValueError, KeyError) as e:
                if self._stop.is_set():
                    break
                self.record("error", what=kind, key=key, error=str(e))
                # transient (apiserver restart): retry later
                threading.Timer(0.5, self._queue.put, args=(item,)).start()

    def _deployment(self, ns, name):
        for w in self._watchers:
            if "/deployments" in w.path and (ns, name) in w.objects:
                return w.objects[(ns, name)]
        return None

    def _services(self, ns=None):
        out = []
        for w in self._watchers:
            if "/services" in w.path:
                out.extend(o for k, o in list(w.objects.items()) if ns is None or k[0] == ns)
        return out

    def _reconcile_deployment(self, ns, name, spawn=True):
        d = self._deployment(ns, name)
        if d is not None and (self.ignore and self.ignore(d) or
                              (d["metadata"].get("annotations") or {}).get(ANN_STANDIN) == "ignore"):
            return
        with self._lock:
            pods = self._pods.setdefault((ns, name), [])
            # forget pods whose process has exited
            for p in [p for p in pods if p.proc and p.proc.poll() is not None]:
                pods.remove(p)
                self.record("exit", namespace=ns, pod=p.name, ip=p.ip, code=p.proc.returncode)
            if d is None:
                victims, pods[:] = list(pods), []
            else:
                tmpl = d["spec"].get("template", {})
                thash = hashlib.sha256(json.dumps(tmpl, sort_keys=True).encode()).hexdigest()[:10]
                stale = [p for p in pods if p.template_hash != thash]
                victims = stale
                live = [p for p in pods if p.template_hash == thash]
                want = d["spec"].get("replicas", 1)
                if len(live) > want:
                    order = sorted(live, key=lambda p: (p.ready, -p.created))
                    victims = victims + order[:len(live) - want]
                    live = [p for p in live if p not in victims]
                pods[:] = live
                if spawn:
                    for _ in range(want - len(live)):
                        pods.append(self._spawn(d, thash))
            for p in victims:
                p.terminating = True
            self._cond.notify_all()
        if d is not None:
            self._update_status(d)
        self._update_slices(ns)
        for p in victims:
            self._signal(p, signal.SIGTERM)
            self.record("kill", namespace=ns, pod=p.name, ip=p.ip)
        if not self.pods(ns, name) and d is None:
            with self._lock:
                self._pods.pop((ns, name), None)

    def _reconcile_service(self, ns, name):
        self._update_slices(ns, only=name)

    # ---- pods ---------------------------------------------------------------------
    def _pod_ports(self, d):
        ports = []
        for c in d["spec"]["template"].get("spec", {}).get("containers", []):
            for cp in c.get("ports", []) or []:
                if cp.get("protocol", "TCP") == "TCP" and cp.get("containerPort") not in ports:
                    ports.append(cp["containerPort"])
        labels = d["spec"]["template"].get("metadata", {}).get("labels", {}) or {}
        for s in self._services(d["metadata"]["namespace"]):
            if _selector_matches(s["spec"].get("selector"), labels):
                for sp in s["spec"].get("ports", []):
                    tp = sp.get("targetPort", sp.get("port"))
                    if isinstance(tp, int) and tp not in ports:
                        ports.append(tp)
        return ports or [8080]

    def _delay_ms(self, d):
        for md in (d["metadata"], d["spec"]["template"].get("metadata", {})):
            v = (md.get("annotations") or {}).get(ANN_DELAY)
            if v is not None:
                return int(v)
        return self.startup_delay_ms

    def _spawn(self, d, thash):
        ns, dname = d["metadata"]["namespace"], d["metadata"]["name"]
        ports = self._pod_ports(d)
        ip = allocate_ip(ports)
        name = "%s-%s-%s" % (dname, thash[:9], secrets.token_hex(3)[:5])
        labels = d["spec"]["template"].get("metadata", {}).get("labels", {}) or {}
        pod = Pod(ns, dname, name, ip, ports, thash, labels, self._delay_ms(d))
        os.makedirs(self.log_dir, exist_ok=True)
        errf = open(os.path.join(self.log_dir, name + ".log"), "ab")
        pod.proc = subprocess.Popen(
            [PYTHON, "-m", "harness.backend", "--name", name, "--ip", ip,
             "--ports", ",".join(str(p) for p in ports), "--delay-ms", str(pod.delay_ms)],
            cwd=E2E_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf,
            start_new_session=True, preexec_fn=_pdeathsig, text=True)
        errf.close()
        self.record("spawn", namespace=ns, deployment=dname, pod=name, ip=ip, ports=ports, delay_ms=pod.delay_ms)
        threading.Thread(target=self._follow, args=(pod,), daemon=True, name="pod-" + name).start()
        return pod

    def _follow(self, pod):
        for line in pod.proc.stdout:
            if line.startswith("READY"):
                with self._lock:
                    pod.ready = True
                    pod.ready_at = time.time()
                    self._cond.notify_all()
                self.record("ready", namespace=pod.namespace, pod=pod.name, ip=pod.ip)
                self._queue.put(("pods", (pod.namespace, pod.deployment)))
        pod.proc.wait()
        with self._lock:
            pod.ready = False
            self._cond.notify_all()
        if not self._stop.is_set():
            self._queue.put(("pods", (pod.namespace, pod.deployment)))

    def _signal(self, pod, sig):
        if pod.proc and pod.proc.poll() is None:
            try:
                os.killpg(pod.proc.pid, sig)
            except ProcessLookupError:
                pass
            if sig == signal.SIGTERM:
                t = threading.Timer(3.0, self._signal, args=(pod, signal.SIGKILL))
                t.daemon = True
                t.start()

    # ---- status and slices -------------------------------------------------------------
    def _update_status(self, d):
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        with self._lock:
            pods = [p for p in self._pods.get((ns, name), []) if not p.terminating]
        want = d["spec"].get("replicas", 1)
        ready = sum(1 for p in pods if p.ready)
        st = {"observedGeneration": d["metadata"].get("generation", 1), "replicas": len(pods),
              "updatedReplicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
              "unavailableReplicas": max(0, want - ready)}
        if self._status_cache.get((ns, name)) == st:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        avail = ready >= want
        patch = {"status": dict(st, conditions=[{
            "type": "Available", "status": "True" if avail else "False",
            "reason": "MinimumReplicasAvailable" if avail else "MinimumReplicasUnavailable",
            "message": "node stand-in: %d of %d ready" % (ready, want),
            "lastUpdateTime": now, "lastTransitionTime": now}])}
        try:
            self._api("PATCH", "/apis/apps/v1/namespaces/%s/deployments/%s/status" % (ns, name), patch,
                             content_type="application/merge-patch+json")
        except ClusterError as e:
            if getattr(e, "status", 0) == 404:
                return
            raise
        self._status_cache[(ns, name)] = st
        self.record("status", namespace=ns, deployment=name, **st)

    def _update_slices(self, ns, only=None):
        with self._lock:
            pods = [p for (pns, _), lst in self._pods.items() if pns == ns for p in lst]
        svc_names = set()
        for s in self._services(ns):
            sname = s["metadata"]["name"]
            svc_names.add(sname)
            if only and sname != only:
                continue
            sel = s["spec"].get("selector")
            if not sel or s["spec"].get("type") == "ExternalName":
                continue
            self._write_slice(s, [p for p in pods if _selector_matches(sel, p.labels)])
        if only and only not in svc_names:
            self._delete_slice(ns, only)

    def _resolve_ports(self, svc, pods):
        out = []
        ns = svc["metadata"]["namespace"]
        for sp in svc["spec"].get("ports", []):
            tp = sp.get("targetPort", sp.get("port"))
            if isinstance(tp, str) and not tp.isdigit():
                num = None
                for p in pods:
                    d = self._deployment(ns, p.deployment)
                    for c in (d or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                        for cp in c.get("ports", []) or []:
                            if cp.get("name") == tp:
                                num = cp["containerPort"]
                if num is None:
                    continue
                tp = num
            out.append({"name": sp.get("name", ""), "port": int(tp), "protocol": sp.get("protocol", "TCP")})
        return out

    def _slice_path(self, ns, name=""):
        return "/apis/discovery.k8s.io/%s/namespaces/%s/endpointslices%s" % (
            self.slice_version, ns, "/" + name if name else "")

    def _write_slice(self, svc, pods):
        ns, sname = svc["metadata"]["namespace"], svc["metadata"]["name"]
        name = sname + "-zw"
        body = {
            "addressType": "IPv4",
            "endpoints": [{"addresses": [p.ip], "conditions": {"ready": bool(p.ready and not p.terminating)},
                           "targetRef": {"kind": "Pod", "namespace": ns, "name": p.name}}
                          for p in sorted(pods, key=lambda p: p.ip) if not p.terminating],
            "ports": self._resolve_ports(svc, pods),
        }
        if self._slice_cache.get((ns, name)) == body:
            return
        obj = {"apiVersion": "discovery.k8s.io/" + self.slice_version, "kind": "EndpointSlice",
               "metadata": {"name": name, "namespace": ns,
                            "labels": {"kubernetes.io/service-name": sname,
                                       "endpointslice.kubernetes.io/managed-by": MANAGED_BY}}}
        obj.update(body)
        for _ in range(5):
            try:
                cur = self._api("GET", self._slice_path(ns, name))
                obj["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
                self._api("PUT", self._slice_path(ns, name), obj)
            except ClusterError as e:
                st = getattr(e, "status", 0)
                if st == 404:
                    obj["metadata"].pop("resourceVersion", None)
                    try:
                        self._api("POST", self._slice_path(ns), obj)
                    except ClusterError as e2:
                        if getattr(e2, "status", 0) == 409:
                            continue
                        raise
                elif st == 409:
                    continue
                else:
                    raise
            self._slice_cache[(ns, name)] = body
            self.record("slice", namespace=ns, service=sname,
                        ready=[e["addresses"][0] for e in body["endpoints"] if e["conditions"]["ready"]],
                        endpoints=len(body["endpoints"]))
            return
        raise ClusterError("EndpointSlice %s/%s: too many conflicts" % (ns, name))

    def _delete_slice(self, ns, sname):
        name = sname + "-zw"
        try:
            self._api("DELETE", self._slice_path(ns, name))
            self.record("slice-deleted", namespace=ns, service=sname)
        except ClusterError as e:
            if getattr(e, "status", 0) != 404:
                raise
        self._slice_cache.pop((ns, name), None)
