"""zerowire-proxy as a process against a cluster (`--kubeconfig`), with all
its ports chosen up front so replicas can be told about each other before
they start.

    ports = ProxyPorts.pick()                       # listen / admin / scaler
    p = ProxyProc(cluster, tmpdir, ports, namespaces=[ns], args=["--peers", ...])
    p.start()                                       # waits for /readyz
    p.get("/", host="web.test") -> (status, headers dict (lower-case), body)
    p.queue(), p.metric("zerowire_scaler_wakes_total")
    p.stop()                                        # SIGTERM; raises on a sanitizer report
    ports = peer_ports(2); peer_service(cluster, ns, ports)  # replicas behind a headless Service

The binary is the sanitizer build (build/san/bin/zerowire-proxy; env
ZW_PROXY_BIN overrides). Every wait is bounded; the process carries
PR_SET_PDEATHSIG, so it never outlives the test process."""

import http.client
import json
import os
import random
import signal
import socket
import subprocess
from collections import namedtuple

from . import util
from .cluster import _pdeathsig

BIN = os.environ.get("ZW_PROXY_BIN") or os.path.join(util.REPO, "build", "san", "bin", "zerowire-proxy")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
READY_TIMEOUT = 20.0  # seconds for /readyz after start
STOP_TIMEOUT = 20.0  # seconds for a clean exit after SIGTERM


class ProxyPorts(namedtuple("ProxyPorts", "host listen admin scaler")):
    @classmethod
    def pick(cls, host="127.0.0.1"):
        a, b, c = util.free_ports(3, host)
        return cls(host, a, b, c)

    @property
    def admin_addr(self):
        return "%s:%d" % (self.host, self.admin)

    @property
    def scaler_addr(self):
        return "%s:%d" % (self.host, self.scaler)


class ProxyProc:
    def __init__(self, cluster, tmpdir, ports=None, namespaces=(), args=(), name="proxy"):
        self.cluster = cluster
        self.ports = ports or ProxyPorts.pick()
        self.name = name
        self.namespaces = list(namespaces)
        self.args = list(args)
        self.log_path = os.path.join(str(tmpdir), "%s-%d.log" % (name, self.ports.listen))
        self.proc = None
        self._log = None

    # ---- lifecycle --------------------------------------------------------------
    def command(self):
        p = self.ports
        cmd = [BIN, "--listen", "%s:%d" % (p.host, p.listen), "--admin-listen", p.admin_addr,
               "--scaler-listen", p.scaler_addr, "--workers", "2", "--kubeconfig", self.cluster.kubeconfig,
               "--shutdown-delay", "0s", "--drain-timeout", "5s", "--log-level", "debug"]
        for ns in self.namespaces:
            cmd += ["--namespace", ns]
        return cmd + self.args

    def start(self, wait_ready=True):
        if not os.access(BIN, os.X_OK):
            raise RuntimeError("%s not built: run `make SAN=1 -j2 all`" % BIN)
        self._log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        # PR_SET_PDEATHSIG: the proxy dies with the test process even when it is killed.
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=_pdeathsig)
        if wait_ready:
            util.wait_for(lambda: self.proc.poll() is not None or self.admin_get("/readyz")[0] == 200,
                          READY_TIMEOUT, what="%s /readyz" % self.name)
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.proc.returncode,
                                                                self.output()[-3000:]))
        return self

    def stop(self):
        """SIGTERM, bounded wait; returns the exit status. Raises AssertionError
        when the process had to be killed or the log has a sanitizer report."""
        if self.proc is None:
            return None
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                killed = True
        if self._log:
            self._log.close()
            self._log = None
        out = self.output()
        if killed:
            raise AssertionError("%s did not exit within %.0fs after SIGTERM:\n%s" % (
                self.name, STOP_TIMEOUT, out[-3000:]))
        for mark in SANITIZER_MARKS:
            if mark in out:
                raise AssertionError("%s: sanitizer report:\n%s" % (self.name, out[-6000:]))
        return self.proc.returncode

    def output(self):
        if self._log:
            self._log.flush()
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- HTTP ---------------------------------------------------------------------
    def admin_get(self, path, timeout=5):
        try:
            c = http.client.HTTPConnection(self.ports.host, self.ports.admin, timeout=timeout)
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            c.close()
            return r.status, body
        except OSError:
            return 0, b""

    def queue(self):
        st, body = self.admin_get("/queue")
        if st != 200:
            raise AssertionError("%s /queue: %s %r" % (self.name, st, body[:200]))
        return json.loads(body)

    def metric(self, name, **labels):
        """Sum of the samples of Prometheus metric `name` whose labels include
        `labels` (0.0 when absent)."""
        st, body = self.admin_get("/metrics")
        if st != 200:
            raise AssertionError("%s /metrics: %s" % (self.name, st))
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            if head != name and not head.startswith(name + "{"):
                continue
            if all('%s="%s"' % (k, v) in head for k, v in labels.items()):
                total += float(value)
        return total

    def connection(self, timeout=30):
        return http.client.HTTPConnection(self.ports.host, self.ports.listen, timeout=timeout)

    def get(self, path, host, timeout=30, conn=None):
        """One GET through the proxy; returns (status, {lower-case header: value},
        body bytes). conn: a keep-alive connection to reuse (else a new one)."""
        c = conn or self.connection(timeout)
        try:
            c.request("GET", path, headers={"Host": host})
            r = c.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            if conn is None:
                c.close()


def stop_all(procs):
    """Stops every ProxyProc (even when one fails), then raises the first error."""
    err = None
    for p in procs:
        try:
            p.stop()
        except Exception as e:  # noqa: BLE001 - re-raised below
            err = err or e
    if err:
        raise err
    return True


def peer_ports(n):
    """Ports for n replicas as in a cluster: each on its own address
    (127.0.R.2, 127.0.R.3, ...; the node stand-in's pods use 127.16+.x.y), the
    same admin port on all, so one EndpointSlice port lists them all."""
    for _ in range(50):
        r = random.randrange(1, 250)
        hosts = ["127.0.%d.%d" % (r, 2 + i) for i in range(n)]
        admin = util.free_port(hosts[0])
        if all(port_free(h, admin) for h in hosts[1:]):
            return [ProxyPorts(h, util.free_port(h), admin, util.free_port(h)) for h in hosts]
    raise RuntimeError("no admin port free on %d loopback addresses" % n)


def port_free(host, port):
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def peer_service(cluster, ns, ports):
    """The replicas' headless Service and its EndpointSlice (written here, as
    the endpoint controller would for the proxy pods)."""
    name = "zerowire-peers"
    cluster.apply("""
apiVersion: v1
kind: Service
metadata: {name: %s, namespace: %s}
spec:
  clusterIP: None
  ports: [{name: admin, port: %d}]
""" % (name, ns, ports[0].admin))
    versions = [v["version"] for v in cluster.api("GET", "/apis/discovery.k8s.io")["versions"]]
    ver = "v1" if "v1" in versions else "v1beta1"
    cluster.api("POST", "/apis/discovery.k8s.io/%s/namespaces/%s/endpointslices" % (ver, ns), {
        "apiVersion": "discovery.k8s.io/" + ver, "kind": "EndpointSlice",
        "metadata": {"name": name + "-1", "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "admin", "port": ports[0].admin, "protocol": "TCP"}],
        "endpoints": [{"addresses": [p.host], "conditions": {"ready": True}} for p in ports]})
    return "%s/%s" % (ns, name)
