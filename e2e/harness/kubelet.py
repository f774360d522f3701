"""A kubelet stand-in for the current control plane (harness.realcluster):
what a kubelet does for a Node, and nothing a controller does.

It registers a Node (podCIDR a 10.x.y.0/24 that no route on this machine
uses, allocatable "pods" = max_pods so the real scheduler never binds more),
keeps its Lease in kube-node-lease renewed and its Ready condition true, and
runs every Pod the real scheduler binds to it as a local process
(harness/backend.py, one listener per TCP containerPort, 8080 when none;
harness/grpcbackend.py, a gRPC server, for Pods annotated
zerowire.test/backend: grpc; harness/tlsbackend.py, backend.py behind TLS,
for zerowire.test/backend: tls), each in a network namespace of its own:

    host bridge zwk<id> (10.x.y.1/24)  <- veth zwk<id>v<n> -> eth0 in netns zwk-<id>-<n> (10.x.y.<n>)

It reports the Pod Running with status.podIP, hostIP, conditions
(PodScheduled, PodReadyToStartContainers, Initialized, ContainersReady,
Ready) and containerStatuses, Ready once the process listens (after the
startup delay: annotation zerowire.test/startup-delay-ms on the Pod, else
the constructor's). A process that dies is started again with restartCount
+ 1 (restartPolicy Always). When a Pod gets a deletionTimestamp the process
gets SIGTERM, SIGKILL after deletionGracePeriodSeconds, its namespace and
veth are removed and the Pod is deleted with grace 0, as a kubelet's status
manager does. Everything else (ReplicaSets, EndpointSlices, HPA, garbage
collection) is the real kube-controller-manager's job.

The kubelet authenticates with its own client certificate
(system:node:<name> in system:nodes), so the Node authorizer checks it.

Crash safety: every namespace and link it creates carries the prefix zwk and
a 4-hex instance id; /run/zerowire-kubelet/<id> names the owning process.
start() (and cleanup_stale()) removes the namespaces, links and processes of
every instance whose owner is gone, so a killed test run leaves nothing for
the next one. Needs root and iproute2.

    with Kubelet(cluster, namespaces=[ns]) as kl:
        cluster.apply(deployment_and_service)
        kl.wait_running(ns, n=2)     # [RunningPod], each with .ip, .name
"""

import ipaddress
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time

from . import util
from .cluster import ClusterError, _pdeathsig, make_cert
from .kwatch import Watcher

PREFIX = "zwk"
STATE_DIR = "/run/zerowire-kubelet"
ETC_NETNS = "/etc/netns"
ANN_DELAY = "zerowire.test/startup-delay-ms"
ANN_BACKEND = "zerowire.test/backend"
BACKENDS = {"http": "harness.backend", "grpc": "harness.grpcbackend", "tls": "harness.tlsbackend"}
PYTHON = "/usr/bin/python3"
E2E_DIR = os.path.join(util.REPO, "e2e")
LEASE_SECONDS = 40
RENEW_EVERY = 10.0
RESTART_BACKOFF = 1.0
_NAME_RE = re.compile(r"^%s-?([0-9a-f]{4})" % PREFIX)


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _now_micro():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def _proc_start(pid):
    """Start time of process pid (field 22 of /proc/<pid>/stat, clock ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def _owner_alive(ident):
    """True when /run/zerowire-kubelet/<ident> names a living process that
    started at the recorded time (a recycled pid does not count)."""
    try:
        with open(os.path.join(STATE_DIR, ident)) as f:
            pid, start = f.read().split()
        return _proc_start(int(pid)) == start
    except (OSError, ValueError, IndexError):
        return False


def _kill_netns_pids(netns):
    r = _ip("netns", "pids", netns, check=False)
    for pid in [int(p) for p in r.stdout.split() if p.isdigit()]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _instances():
    """{instance id: (set of netns names, set of link names)} of every zwk
    namespace and link on this machine."""
    found = {}
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NAME_RE.match(name)
        if m and name.startswith(PREFIX + "-"):
            found.setdefault(m.group(1), (set(), set()))[0].add(name)
    if os.path.isdir(ETC_NETNS):
        for name in os.listdir(ETC_NETNS):
            m = _NAME_RE.match(name)
            if m and name.startswith(PREFIX + "-"):
                found.setdefault(m.group(1), (set(), set()))[0].add(name)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        m = _NAME_RE.match(name)
        if m and not name.startswith(PREFIX + "-"):
            found.setdefault(m.group(1), (set(), set()))[1].add(name)
    return found


def remove_instance(ident, netns, links):
    """Kills every process in the given namespaces, deletes them and the
    links, and removes the owner file of instance ident."""
    for ns in sorted(netns):
        _kill_netns_pids(ns)
        _ip("netns", "del", ns, check=False)
        shutil.rmtree(os.path.join(ETC_NETNS, ns), ignore_errors=True)
    # Host veth ends first, the bridge last.
    for link in sorted(links, key=lambda n: n == PREFIX + ident):
        _ip("link", "del", link, check=False)
    try:
        os.unlink(os.path.join(STATE_DIR, ident))
    except OSError:
        pass


def cleanup_stale():
    """Removes the namespaces, links and processes of every kubelet stand-in
    instance whose owning process is gone (a crashed or killed run).
    Returns the instance ids removed."""
    removed = []
    for ident, (netns, links) in _instances().items():
        if not _owner_alive(ident):
            remove_instance(ident, netns, links)
            removed.append(ident)
    if os.path.isdir(STATE_DIR):
        for ident in os.listdir(STATE_DIR):
            if not _owner_alive(ident):
                try:
                    os.unlink(os.path.join(STATE_DIR, ident))
                except OSError:
                    pass
    return removed


def _used_networks():
    nets = []
    for line in _ip("-4", "-o", "route", "show", "table", "all", check=False).stdout.splitlines():
        dst = line.split()[0] if line.split() else ""
        if dst in ("default", "local", "broadcast", "unreachable", "prohibit", "blackhole"):
            dst = line.split()[1] if dst != "default" and len(line.split()) > 1 else ""
        try:
            nets.append(ipaddress.ip_network(dst, strict=False))
        except ValueError:
            continue
    return nets


def pick_pod_cidr():
    """A 10.x.y.0/24 (x in 200..249) that no route on this machine overlaps."""
    used = _used_networks()
    for _ in range(200):
        net = ipaddress.ip_network("10.%d.%d.0/24" % (random.randrange(200, 250), random.randrange(0, 256)))
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("kubelet stand-in: no free 10.x.y.0/24")


class RunningPod:
    """One Pod the stand-in runs: its API identity, address and process."""

    def __init__(self, obj, index, ip, netns, veth, ports, delay_ms):
        md = obj["metadata"]
        self.namespace, self.name, self.uid = md["namespace"], md["name"], md["uid"]
        self.index, self.ip, self.netns, self.veth = index, ip, netns, veth
        self.ports, self.delay_ms = ports, delay_ms
        self.containers = [(c["name"], c.get("image", "")) for c in obj["spec"].get("containers", [])]
        self.module = BACKENDS.get((md.get("annotations") or {}).get(ANN_BACKEND, "http"), BACKENDS["http"])
        self.proc = None
        self.ready = False
        self.started_at = None
        self.restart_count = 0
        self.terminating = False
        self.last_exit = None
        self.restart_at = None

    @property
    def key(self):
        return (self.namespace, self.name)

    def url(self, path="/", port=None):
        return "http://%s:%d%s" % (self.ip, port or self.ports[0], path)

    def __repr__(self):
        return "RunningPod(%s/%s %s ready=%s)" % (self.namespace, self.name, self.ip, self.ready)


class _NodeClient:
    """What harness.kwatch.Watcher needs of a cluster, authenticating as the node."""

    def __init__(self, cluster, cert, key):
        self.server = cluster.server
        self._c, self._cert = cluster, (cert, key)

    def new_session(self):
        s = self._c.new_session()
        s.cert = self._cert
        return s


class Kubelet:
    """See the module docstring. namespaces: run only Pods of these
    namespaces (others bound to the Node stay Pending; None: all).
    skip: optional predicate(pod) -> True to leave a Pod Pending too (a
    process the test runs on the host stands for it). max_pods: the Node's pod capacity and the bound on namespaces created."""

    def __init__(self, cluster, node_name=None, namespaces=None, max_pods=16, startup_delay_ms=0, skip=None):
        self.c = cluster
        self.ident = secrets.token_hex(2)
        self.node = node_name or "zw-node-" + self.ident
        self.namespaces = [namespaces] if isinstance(namespaces, str) else (list(namespaces) if namespaces else None)
        self.max_pods = min(max_pods, 250)
        self.startup_delay_ms = startup_delay_ms
        self.skip = skip
        self.bridge = PREFIX + self.ident
        self.cidr = self.gateway = None
        self.log_dir = os.path.join(cluster.tmpdir, "kubelet-" + self.ident)
        self.events = []  # (unix time, event, dict)
        self._pods = {}  # (ns, name) -> RunningPod
        self._free = []
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._watcher = None
        self._threads = []
        self._session = None
        self._client = None
        self._wake = threading.Event()
        self._dirty = set()

    # ---- lifecycle -------------------------------------------------------------
    def start(self):
        removed = cleanup_stale()
        if removed:
            self.record("cleanup", instances=removed)
        try:
            self._setup_identity()
            self._setup_network()
            self._register_node()
            self._watcher = Watcher(self._client, "/api/v1/pods?fieldSelector=spec.nodeName%3D" + self.node,
                                    self._on_pod, "kubelet-pods").start()
            if not self._watcher.synced.wait(30):
                raise TimeoutError("kubelet stand-in: initial pod list timed out")
            for target, name in ((self._work, "kubelet-sync"), (self._heartbeat, "kubelet-heartbeat")):
                t = threading.Thread(target=target, name=name, daemon=True)
                t.start()
                self._threads.append(t)
            # The admission chain taints a new Node not-ready; the real node
            # lifecycle controller lifts it once it sees Ready (a few seconds).
            self.c.wait_for(self._schedulable, 60, 0.3, "Node %s without the not-ready taint" % self.node)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Stops every pod process (SIGTERM, then SIGKILL), removes the
        namespaces, veths and bridge. The Node object stays (as when a
        kubelet stops); the API may already be gone."""
        self._stop.set()
        self._wake.set()
        if self._watcher:
            self._watcher.stop()
        for t in self._threads:
            t.join(10)
        with self._lock:
            pods = list(self._pods.values())
            self._pods.clear()
        for p in pods:
            p.terminating = True
            self._terminate(p, 2.0)
        if self._session is not None:
            self._session.close()
            self._session = None
        if os.path.exists(os.path.join(STATE_DIR, self.ident)):
            netns, links = _instances().get(self.ident, (set(), set()))
            remove_instance(self.ident, netns, links)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def record(self, event, **kw):
        self.events.append((time.time(), event, kw))

    # ---- queries ---------------------------------------------------------------
    def pods(self, namespace=None):
        with self._lock:
            return [p for p in self._pods.values() if namespace is None or p.namespace == namespace]

    def wait_running(self, namespace, n, timeout=60):
        """Waits until exactly n pods of namespace run, all ready, none
        terminating (n=0: all gone); returns them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                pods = [p for p in self._pods.values() if p.namespace == namespace]
                ready = [p for p in pods if p.ready and not p.terminating]
                if len(ready) == n and len(pods) == n:
                    return ready
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("kubelet stand-in: %s has %d pods, %d ready; wanted %d" % (
                        namespace, len(pods), len(ready), n))
                self._cond.wait(min(left, 0.5))

    # ---- API -------------------------------------------------------------------
    def _api(self, *a, **kw):
        if self._session is None:
            self._session = self._client.new_session()
        return self.c.api(*a, session=self._session, **kw)

    def _setup_identity(self):
        name = "kubelet-" + self.node
        make_cert(self.c.pki, name, "/O=system:nodes/CN=system:node:" + self.node, usage="clientAuth")
        self._client = _NodeClient(self.c, os.path.join(self.c.pki, name + ".crt"),
                                   os.path.join(self.c.pki, name + ".key"))

    def _register_node(self):
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": {
                    "kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64"}},
                "spec": {"podCIDR": str(self.cidr), "podCIDRs": [str(self.cidr)]}}
        try:
            self._api("POST", "/api/v1/nodes", node)
        except ClusterError as e:
            if getattr(e, "status", 0) != 409:
                raise
        self._node_status()
        self._renew_lease()

    def _schedulable(self):
        n = self._api("GET", "/api/v1/nodes/" + self.node)
        return not [t for t in n["spec"].get("taints", []) if t["key"] == "node.kubernetes.io/not-ready"]

    def _node_status(self):
        now = _now()
        conds = [{"type": t, "status": "False", "reason": "KubeletHas" + r, "message": "zerowire kubelet stand-in",
                  "lastHeartbeatTime": now, "lastTransitionTime": now}
                 for t, r in (("MemoryPressure", "SufficientMemory"), ("DiskPressure", "NoDiskPressure"),
                              ("PIDPressure", "SufficientPID"))]
        conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                      "message": "zerowire kubelet stand-in is posting ready status",
                      "lastHeartbeatTime": now, "lastTransitionTime": now})
        res = {"cpu": "2", "memory": "8Gi", "pods": str(self.max_pods), "ephemeral-storage": "20Gi"}
        self._api("PATCH", "/api/v1/nodes/%s/status" % self.node, {"status": {
            "conditions": conds, "capacity": res, "allocatable": res,
            "addresses": [{"type": "InternalIP", "address": self.gateway},
                          {"type": "Hostname", "address": self.node}],
            "nodeInfo": {"kubeletVersion": self.c.version or "", "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "zerowire-stand-in://1", "kernelVersion": os.uname().release,
                         "osImage": "Debian", "machineID": "", "systemUUID": "", "bootID": ""}}},
            content_type="application/strategic-merge-patch+json")

    def _renew_lease(self):
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + self.node
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": _now_micro()}
        cur = self._api("GET", path, check=False)
        if cur and cur.get("kind") == "Lease":
            cur["spec"].update(spec)
            self._api("PUT", path, cur)
        else:
            self._api("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node, "namespace": "kube-node-lease"}, "spec": spec})

    def _heartbeat(self):
        last_status = time.monotonic()
        while not self._stop.wait(RENEW_EVERY):
            try:
                self._renew_lease()
                if time.monotonic() - last_status > 60:
                    self._node_status()
                    last_status = time.monotonic()
            except (ClusterError, OSError) as e:
                self.record("error", what="heartbeat", error=str(e))

    # ---- network ---------------------------------------------------------------
    def _setup_network(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        with open(os.path.join(STATE_DIR, self.ident), "w") as f:
            f.write("%d %s\n" % (os.getpid(), _proc_start(os.getpid())))
        self.cidr = pick_pod_cidr()
        hosts = list(self.cidr.hosts())
        self.gateway = str(hosts[0])
        self._free = list(range(2, 2 + self.max_pods))
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", "%s/%d" % (self.gateway, self.cidr.prefixlen), "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def _make_netns(self, index):
        netns = "%s-%s-%d" % (PREFIX, self.ident, index)
        veth = "%s%sv%d" % (PREFIX, self.ident, index)
        ip = str(self.cidr.network_address + index)
        _ip("netns", "add", netns)
        # The Pod's /etc/hosts and /etc/resolv.conf, as a kubelet writes them
        # (`ip netns exec` bind-mounts /etc/netns/<name>/*): its own name
        # resolves at once, and no DNS query leaves the namespace (a server
        # that looks its address up would otherwise wait for a resolver
        # it cannot reach).
        etc = os.path.join(ETC_NETNS, netns)
        os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n%s %s\n" % (ip, netns))
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", netns, "addr", "add", "%s/%d" % (ip, self.cidr.prefixlen), "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "route", "add", "default", "via", self.gateway)
        return netns, veth, ip

    def _remove_netns(self, p):
        _kill_netns_pids(p.netns)
        _ip("netns", "del", p.netns, check=False)
        _ip("link", "del", p.veth, check=False)
        shutil.rmtree(os.path.join(ETC_NETNS, p.netns), ignore_errors=True)

    # ---- pods ------------------------------------------------------------------
    def _on_pod(self, typ, obj, key):
        with self._lock:
            self._dirty.add(key)
        self._wake.set()

    def _work(self):
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            with self._lock:
                keys, self._dirty = self._dirty, set()
                # every pod is looked at now and then: a failed status write is retried
                keys |= set(self._pods)
            for key in keys:
                if self._stop.is_set():
                    return
                try:
                    self._sync(key)
                except (ClusterError, OSError, RuntimeError) as e:
                    self.record("error", what="sync", key=key, error=str(e))
                    with self._lock:
                        self._dirty.add(key)

    def _wanted(self, obj):
        if self.skip and self.skip(obj):
            return False
        return self.namespaces is None or obj["metadata"]["namespace"] in self.namespaces

    def _sync(self, key):
        obj = self._watcher.objects.get(key)
        with self._lock:
            p = self._pods.get(key)
        if p is not None and p.terminating:
            return  # _finish() is stopping it and looks at the key again after
        if p is not None and (obj is None or obj["metadata"]["uid"] != p.uid):
            # deleted outright (grace 0 by someone else) or replaced by a namesake
            self._finish(p, 0, delete=False)
            p = None
        if obj is None or not self._wanted(obj):
            return
        md, st = obj["metadata"], obj.get("status", {})
        if md.get("deletionTimestamp"):
            if p is None:
                self._delete_pod(obj)
            elif not p.terminating:
                p.terminating = True
                grace = md.get("deletionGracePeriodSeconds", 30)
                threading.Thread(target=self._finish, args=(p, grace), daemon=True,
                                 name="kubelet-kill-" + p.name).start()
            return
        if st.get("phase") in ("Succeeded", "Failed"):
            return
        if p is None:
            p = self._run(obj)
            if p is None:
                return
        elif p.restart_at is not None and time.monotonic() >= p.restart_at:
            p.restart_at = None
            p.restart_count += 1
            self._spawn(p)
        self._write_status(p, obj)

    def _ports(self, obj):
        ports = []
        for c in obj["spec"].get("containers", []):
            for cp in c.get("ports", []) or []:
                if cp.get("protocol", "TCP") == "TCP" and cp["containerPort"] not in ports:
                    ports.append(cp["containerPort"])
        return ports or [8080]

    def _run(self, obj):
        with self._lock:
            if not self._free:
                self.record("error", what="run", key=Watcher.key(obj), error="no free pod slot")
                return None
            index = self._free.pop(0)
        try:
            netns, veth, ip = self._make_netns(index)
        except RuntimeError:
            with self._lock:
                self._free.append(index)
            raise
        ann = obj["metadata"].get("annotations") or {}
        delay = int(ann.get(ANN_DELAY, self.startup_delay_ms))
        p = RunningPod(obj, index, ip, netns, veth, self._ports(obj), delay)
        with self._lock:
            self._pods[p.key] = p
            self._cond.notify_all()
        self._spawn(p)
        return p

    def _spawn(self, p):
        os.makedirs(self.log_dir, exist_ok=True)
        errf = open(os.path.join(self.log_dir, "%s_%s.log" % (p.namespace, p.name)), "ab")
        p.proc = subprocess.Popen(
            ["ip", "netns", "exec", p.netns, PYTHON, "-m", p.module, "--name", p.name, "--ip", p.ip,
             "--ports", ",".join(str(x) for x in p.ports), "--delay-ms", str(p.delay_ms)],
            cwd=E2E_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf,
            start_new_session=True, preexec_fn=_pdeathsig, text=True)
        errf.close()
        p.started_at = _now()
        self.record("spawn", namespace=p.namespace, pod=p.name, ip=p.ip, ports=p.ports, restarts=p.restart_count)
        threading.Thread(target=self._follow, args=(p, p.proc), daemon=True, name="kubelet-" + p.name).start()

    def _follow(self, p, proc):
        for line in proc.stdout:
            if line.startswith("READY"):
                with self._lock:
                    p.ready = True
                    self._cond.notify_all()
                self.record("ready", namespace=p.namespace, pod=p.name, ip=p.ip)
                self._mark(p.key)
        proc.wait()
        with self._lock:
            p.ready = False
            p.last_exit = (proc.returncode, _now())
            self._cond.notify_all()
        if self._stop.is_set() or p.terminating:
            return
        self.record("exit", namespace=p.namespace, pod=p.name, code=proc.returncode)
        # The sync thread starts it again: a child started here would get
        # SIGKILL when this thread ends (PR_SET_PDEATHSIG is per thread).
        p.restart_at = time.monotonic() + RESTART_BACKOFF
        self._mark(p.key)

    def _mark(self, key):
        with self._lock:
            self._dirty.add(key)
        self._wake.set()

    def _write_status(self, p, obj):
        ready = "True" if p.ready else "False"
        now = _now()
        old = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}

        def cond(typ, status):
            prev = old.get(typ)
            since = prev["lastTransitionTime"] if prev and prev.get("status") == status else now
            return {"type": typ, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
        statuses = []
        for name, image in p.containers:
            state = {"running": {"startedAt": p.started_at}} if p.proc and p.proc.poll() is None else {
                "waiting": {"reason": "CrashLoopBackOff"}}
            cs = {"name": name, "image": image, "imageID": "", "containerID": "zerowire://%s/%d" % (
                p.netns, p.proc.pid if p.proc else 0), "ready": p.ready, "started": p.ready,
                "restartCount": p.restart_count, "state": state}
            if p.last_exit:
                cs["lastState"] = {"terminated": {"exitCode": p.last_exit[0] or 0, "finishedAt": p.last_exit[1],
                                                  "reason": "Error" if p.last_exit[0] else "Completed"}}
            statuses.append(cs)
        status = {"phase": "Running", "hostIP": self.gateway, "hostIPs": [{"ip": self.gateway}],
                  "podIP": p.ip, "podIPs": [{"ip": p.ip}], "startTime": obj.get("status", {}).get("startTime") or now,
                  "conditions": [cond("PodReadyToStartContainers", "True"), cond("Initialized", "True"),
                                 cond("ContainersReady", ready), cond("Ready", ready),
                                 cond("PodScheduled", "True")],
                  "containerStatuses": statuses}
        cur = obj.get("status", {})
        if all(cur.get(k) == v for k, v in status.items() if k not in ("conditions", "containerStatuses")) and \
                [(c["type"], c["status"]) for c in cur.get("conditions", [])] == \
                [(c["type"], c["status"]) for c in status["conditions"]] and \
                [(c.get("ready"), c.get("restartCount"), list(c.get("state", {}))) for c in
                 cur.get("containerStatuses", [])] == \
                [(c["ready"], c["restartCount"], list(c["state"])) for c in statuses]:
            return
        try:
            self._api("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (p.namespace, p.name),
                      {"metadata": {"uid": p.uid}, "status": status},
                      content_type="application/merge-patch+json")
        except ClusterError as e:
            if getattr(e, "status", 0) in (404, 409):
                return
            raise
        self.record("status", namespace=p.namespace, pod=p.name, ready=p.ready, ip=p.ip)

    def _terminate(self, p, grace):
        proc = p.proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(max(0.0, float(grace)))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
                self.record("sigkill", namespace=p.namespace, pod=p.name, grace=grace)
        self._remove_netns(p)

    def _finish(self, p, grace, delete=True):
        """Stops pod p (SIGTERM, SIGKILL after grace seconds), frees its
        namespace and address, and with delete removes the Pod object
        (grace 0, uid precondition), as a kubelet does once its containers
        are gone."""
        p.terminating = True
        with self._lock:
            self._cond.notify_all()
        started = time.monotonic()
        self._terminate(p, grace)
        self.record("stopped", namespace=p.namespace, pod=p.name, ip=p.ip, grace=grace,
                    seconds=round(time.monotonic() - started, 3))
        if delete:
            try:
                self._api("DELETE", "/api/v1/namespaces/%s/pods/%s" % (p.namespace, p.name), {
                    "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                    "preconditions": {"uid": p.uid}})
            except ClusterError as e:
                if getattr(e, "status", 0) not in (404, 409):
                    self.record("error", what="delete", pod=p.name, error=str(e))
        with self._lock:
            if self._pods.get(p.key) is p:
                del self._pods[p.key]
            self._free.append(p.index)
            self._cond.notify_all()
        self._mark(p.key)  # a namesake may be waiting

    def _delete_pod(self, obj):
        md = obj["metadata"]
        try:
            self._api("DELETE", "/api/v1/namespaces/%s/pods/%s" % (md["namespace"], md["name"]), {
                "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": md["uid"]}})
        except ClusterError as e:
            if getattr(e, "status", 0) not in (404, 409):
                raise
