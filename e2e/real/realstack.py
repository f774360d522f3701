"""The zerowire stack on the real peers: harness.stack.Stack (the chart
installed with helm in url mode, zerowire-webhook and zerowire-proxy as local
processes with the chart's ServiceAccounts) without the stand-ins of the 1.20
suites. The real kube-controller-manager, the kubelet stand-in, the real
KEDA operator and Traefik do their parts:

  * zerowire-proxy listens on the kubelet stand-in's bridge address (host
    side, not loopback: 1.37 refuses loopback EndpointSlice addresses) and
    stands for the chart's proxy Deployment, whose Pods the kubelet stand-in
    leaves Pending. So the proxy Service gets one EndpointSlice written here,
    as the EndpointSlice controller would write it for a running proxy Pod
    (label kubernetes.io/service-name, its own managed-by value, which the
    real controller leaves alone);
  * the proxy's scaler port listens on the same address at the port of the
    chart's scalerAddress, and that name resolves there for the KEDA
    operator only (its private /etc/hosts, RealKeda.add_host).
"""

import json

from harness.stack import Stack, binary

MANAGED_BY = "zerowire-e2e.realstack"


class RealStack(Stack):
    """Stack(cluster, app_namespaces, ...) plus kubelet (harness.kubelet.Kubelet)
    and keda (harness.realkeda.RealKeda started with private_hosts=True)."""

    def __init__(self, cluster, kubelet, keda, app_namespaces, **kw):
        super().__init__(cluster, app_namespaces, **kw)
        self.kubelet, self.real_keda = kubelet, keda
        self.host = kubelet.gateway
        # Subclasses: more proxy flags, and proxy Service ports (by name)
        # that lead elsewhere than the HTTP listener (the TLS one).
        self.proxy_extra_args = []
        self.proxy_port_by_name = {}

    def _start(self):
        for ns in {self.namespace, self.proxy_namespace}:
            self.cluster.ensure_namespace(ns)
        self.webhook_port, self.admin_port = self._free_local_ports()
        self._certs()
        self._helm_install()
        self.webhook_kubeconfig = self._sa_kubeconfig(self.namespace, self.fullname() + "-webhook")
        self.proxy_kubeconfig = self._sa_kubeconfig(self.proxy_namespace, self.fullname() + "-proxy")
        self._start_webhook()
        host, _, port = (self.scaler_address or "").rpartition(":")
        self.scaler_port = int(port)
        self.proxy_port = self._free_host_port()
        self._start_proxy()
        self._publish_proxy()
        name, _, ns = host.partition(".")
        ns = ns.split(".")[0] or self.proxy_namespace
        self.real_keda.add_host(self.host, [host, "%s.%s" % (name, ns), "%s.%s.svc" % (name, ns),
                                            "%s.%s.svc.cluster.local" % (name, ns)])

    @staticmethod
    def _free_local_ports():
        from harness import util
        return util.free_ports(2)

    def _free_host_port(self):
        from harness import util
        return util.free_port(self.host)

    def _start_proxy(self):
        argv = [binary("proxy", self.sanitized), "--kubeconfig", self.proxy_kubeconfig,
                "--listen", "%s:%d" % (self.host, self.proxy_port),
                "--scaler-listen", "%s:%d" % (self.host, self.scaler_port),
                "--admin-listen", "127.0.0.1:%d" % self.admin_port,
                "--workers", "2", "--shutdown-delay", "0s", "--drain-timeout", "5s",
                "--readiness-timeout", "60s", "--log-level", self.log_level] + self.proxy_extra_args
        p = self._spawn("proxy", argv)
        self._wait_proc(p, "proxy", lambda: self.admin_get("/readyz")[0] == 200)

    def _publish_proxy(self):
        """The proxy Service's EndpointSlice: this host's proxy process, on
        every Service port (http and h2c lead to the same listener), with
        each port's appProtocol, as the EndpointSlice controller writes them."""
        svc = self.cluster.api("GET", "/api/v1/namespaces/%s/services/%s" % (self.proxy_namespace,
                                                                              self.proxy_service))
        ports = [dict({"name": p.get("name", ""), "port": self.proxy_port_by_name.get(p.get("name"), self.proxy_port),
                       "protocol": "TCP"},
                      **({"appProtocol": p["appProtocol"]} if p.get("appProtocol") else {}))
                 for p in svc["spec"]["ports"]]
        self.cluster.apply(json.dumps({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": self.proxy_service + "-host", "namespace": self.proxy_namespace,
                         "labels": {"kubernetes.io/service-name": self.proxy_service,
                                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [self.host], "conditions": {"ready": True, "serving": True,
                                                                     "terminating": False},
                           "nodeName": self.kubelet.node}],
            "ports": ports}))

    def request_via(self, traefik, host, path="/", timeout=60, headers=None):
        """GET with Host: host through Traefik's web entry point, or with
        traefik None straight to the proxy on the bridge address (as a
        gateway without a data plane here, Istio's or Gloo's, would send
        it). Returns the requests.Response."""
        import requests
        base = "127.0.0.1:%d" % traefik.web_port if traefik else "%s:%d" % (self.host, self.proxy_port)
        return requests.get("http://%s%s" % (base, path), headers=dict(headers or {}, Host=host), timeout=timeout)

    def replicas(self, ns, name):
        d = self.cluster.api("GET", "/apis/apps/v1/namespaces/%s/deployments/%s" % (ns, name))
        return d["spec"].get("replicas")

    def stop(self):
        problems = super().stop()
        try:
            self.cluster.api("DELETE", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices/%s-host"
                             % (self.proxy_namespace, self.proxy_service), check=False)
        except OSError:
            pass
        return problems


def module_realstack(realc, kubelet, keda, cls=RealStack, **kw):
    """Fixture body: a started RealStack (or subclass cls), stopped after
    (raising its problems)."""
    st = cls(realc, kubelet, keda, **kw)
    st.start()
    try:
        yield st
    finally:
        problems = st.stop()
        assert not problems, problems
