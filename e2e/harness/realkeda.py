"""The real KEDA (issue #17, in progress): the operator and its metrics API
server from github.com/kedacore/keda/v2, built by e2e/build-peers.sh, run as
local processes against a RealCluster.

KEDA's CRDs come from the module itself (config/crd/bases in the module cache
that e2e/build-peers.sh filled), so they always match the operator. The
operator's gRPC metrics service and the adapter's client use one self-made
certificate (ca.crt, tls.crt, tls.key in a cert dir, as KEDA's cert rotation
would write them). The metrics server is registered through the aggregation
layer as v1beta1.external.metrics.k8s.io through an ExternalName Service.
"""

import base64
import os
import shutil

import requests

from . import util
from .cluster import cache_dir, make_ca, make_cert
from .realcluster import pinned_version

NAMESPACE = "keda"


def module_dir():
    """KEDA's module directory in the shared module cache (read-only)."""
    d = os.path.join(cache_dir(), "gomod", "github.com", "kedacore", "keda",
                     "v2@" + pinned_version("keda"))
    if not os.path.isdir(d):
        raise RuntimeError("%s missing: run e2e/build-peers.sh keda" % d)
    return d


def crd_dir():
    return os.path.join(module_dir(), "config", "crd", "bases")


class RealKeda:
    """KEDA operator (+ metrics API server with adapter=True) on cluster."""

    def __init__(self, cluster, bins, adapter=True, private_hosts=False):
        self.c = cluster
        self.bins = bins
        self.adapter = adapter
        self.dir = os.path.join(cluster.tmpdir, "keda")
        self.certs = os.path.join(self.dir, "certs")
        self.metrics_port = self.probe_port = self.grpc_port = self.adapter_port = None
        self.adapter_metrics_port = None
        # private_hosts: the operator runs in a mount namespace of its own
        # (unshare -m) with hosts_file bind-mounted on /etc/hosts, so the
        # cluster DNS names of scalerAddress resolve to where the tests run
        # the scaler (add_host()); nothing else on the machine sees them.
        self.hosts_file = os.path.join(self.dir, "hosts") if private_hosts else None

    def add_host(self, ip, names):
        """Makes names resolve to ip for the operator (private_hosts only).
        Written in place: the bind mount follows the file's inode."""
        with open(self.hosts_file, "a") as f:
            f.write("%s %s\n" % (ip, " ".join(names)))

    def _env(self):
        env = dict(os.environ)
        env.update({"KUBECONFIG": self.c.kubeconfig, "POD_NAMESPACE": NAMESPACE,
                    "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE, "WATCH_NAMESPACE": ""})
        return env

    def _make_certs(self):
        os.makedirs(self.certs, exist_ok=True)
        make_ca(self.dir, "keda-ca", "zerowire-keda-ca")
        make_cert(self.dir, "keda", "/CN=keda-operator", ca="keda-ca",
                  sans=["IP:127.0.0.1", "DNS:localhost", "DNS:keda-operator.keda.svc",
                        "DNS:keda-metrics-apiserver.keda.svc"], usage="serverAuth,clientAuth")
        for src, dst in (("keda-ca.crt", "ca.crt"), ("keda.crt", "tls.crt"), ("keda.key", "tls.key")):
            shutil.copy(os.path.join(self.dir, src), os.path.join(self.certs, dst))

    def start(self):
        c = self.c
        c.ensure_namespace(NAMESPACE)
        c.install_crd_dir(crd_dir(), server_side=True)  # scaledjobs is over 256 KiB
        self._make_certs()
        (self.metrics_port, self.probe_port, self.grpc_port, self.adapter_port,
         self.adapter_metrics_port) = util.free_ports(5)
        wrap = []
        if self.hosts_file:
            with open(self.hosts_file, "w") as f:
                f.write("127.0.0.1 localhost\n")
            wrap = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', self.hosts_file]
        c.spawn("keda-operator", wrap + [
            self.bins["keda-operator"], "--leader-elect=false",
            "--zap-log-level=info", "--zap-encoder=console",
            "--metrics-bind-address=127.0.0.1:%d" % self.metrics_port,
            "--health-probe-bind-address=127.0.0.1:%d" % self.probe_port,
            "--metrics-service-bind-address=127.0.0.1:%d" % self.grpc_port,
            "--cert-dir=" + self.certs, "--ca-dir=" + self.certs,
            "--enable-cert-rotation=false", "--enable-webhook-patching=false",
            "--enable-apiservice-patching=false",
        ], env=self._env())
        c.wait_for(self._operator_ready, 120, 0.5, "keda-operator /readyz")
        if self.adapter:
            self._start_adapter()
        return self

    def _operator_ready(self):
        self.c.check_running("keda-operator")
        try:
            return requests.get("http://127.0.0.1:%d/readyz" % self.probe_port, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _start_adapter(self):
        c = self.c
        kc = c.kubeconfig
        c.spawn("keda-adapter", [
            self.bins["keda-adapter"],
            "--bind-address=127.0.0.1", "--secure-port=%d" % self.adapter_port,
            "--cert-dir=" + self.certs,
            "--tls-cert-file=%s/tls.crt" % self.certs, "--tls-private-key-file=%s/tls.key" % self.certs,
            "--lister-kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
            "--metrics-service-address=127.0.0.1:%d" % self.grpc_port,
            # its own /metrics (":<port>", all addresses; 8080 by default, which
            # a second KEDA or any test server may hold)
            "--port=%d" % self.adapter_metrics_port,
            "--zap-log-level=info", "--zap-encoder=console",
        ], env=self._env())
        c.wait_for(self._adapter_up, 120, 0.5, "keda-adapter serving on 127.0.0.1:%d" % self.adapter_port)
        self._register_apiservice()

    def _adapter_up(self):
        self.c.check_running("keda-adapter")
        try:
            return requests.get("https://127.0.0.1:%d/readyz" % self.adapter_port,
                                verify=os.path.join(self.certs, "ca.crt"), timeout=2).status_code in (200, 401, 403)
        except requests.RequestException:
            return False

    def _register_apiservice(self):
        """The APIService that points the aggregator at the adapter. Since 1.3x
        Endpoints and EndpointSlices refuse loopback addresses, so the Service
        is of type ExternalName "localhost", which the aggregator resolves
        itself (the port is the APIService's)."""
        c = self.c
        with open(os.path.join(self.certs, "ca.crt"), "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        c.apply("""
apiVersion: v1
kind: Service
metadata: {name: keda-metrics-apiserver, namespace: %(ns)s}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{name: https, port: %(port)d, protocol: TCP}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  service: {name: keda-metrics-apiserver, namespace: %(ns)s, port: %(port)d}
  group: external.metrics.k8s.io
  version: v1beta1
  caBundle: %(ca)s
  groupPriorityMinimum: 100
  versionPriority: 100
""" % {"ns": NAMESPACE, "port": self.adapter_port, "ca": ca})

    def apiservice_available(self):
        a = self.c.api("GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.external.metrics.k8s.io")
        return [cond for cond in a.get("status", {}).get("conditions", []) if cond["type"] == "Available"]
