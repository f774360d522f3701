"""A current control plane built from Go modules (issue #17, in progress):
etcd + kube-apiserver + kube-controller-manager + kube-scheduler of the
k8s.io/kubernetes version pinned in e2e/peers/kubernetes/go.mod, on loopback.

Built by e2e/build-peers.sh (cached under ~/.cache/zerowire/peers). Reuses
Cluster from cluster.py for certificates, etcd, kubeconfigs and API access;
what differs from the 1.20 apiserver is here: the flags a current apiserver
takes, the aggregation layer's front-proxy certificates, and the controller
manager and scheduler, each with its own client certificate and the RBAC
identity kubeadm gives it. No kubelet runs: Pods stay Pending.
"""

import os
import re
import subprocess

from . import util
from .cluster import Cluster, ClusterError, _kill_group, _log, make_ca, make_cert

PEERS_SCRIPT = os.path.join(util.REPO, "e2e", "build-peers.sh")
PEERS_DIR = os.path.join(util.REPO, "e2e", "peers")
UPSTREAM = {"kubernetes": "k8s.io/kubernetes", "keda": "github.com/kedacore/keda/v2",
            "traefik": "github.com/traefik/traefik/v3"}
BUILD_TIMEOUT = 3 * 3600


def pinned_version(peer):
    """The upstream version pinned in e2e/peers/<peer>/go.mod, e.g. v1.37.2."""
    with open(os.path.join(PEERS_DIR, peer, "go.mod")) as f:
        m = re.search(r"^\s*%s (v\S+)" % re.escape(UPSTREAM[peer]), f.read(), re.M)
    return m.group(1) if m else None


def peer_binaries(peer, build=False):
    """{binary name: path} of one peer from e2e/build-peers.sh. build=False:
    only what is cached already (None when not built); build=True builds it
    first (progress on stderr). Raises RuntimeError when a build fails."""
    argv = [PEERS_SCRIPT] + ([] if build else ["--cached"]) + [peer]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=None if build else subprocess.DEVNULL,
                       text=True, timeout=BUILD_TIMEOUT)
    if r.returncode == 3 and not build:
        return None
    if r.returncode != 0:
        raise RuntimeError("e2e/build-peers.sh %s failed (exit %d)" % (peer, r.returncode))
    paths = [p for p in r.stdout.split() if os.access(p, os.X_OK)]
    return {os.path.basename(p): p for p in paths}


class RealCluster(Cluster):
    """Cluster with the current control plane. bins: peer_binaries("kubernetes").
    controller_manager / scheduler: start those too (default both)."""

    def __init__(self, bins, controller_manager=True, scheduler=True, install_crds=False, **kw):
        super().__init__(install_crds=install_crds, **kw)
        self.bins = bins
        self.version = pinned_version("kubernetes")
        self.want = [n for n, on in (("kube-controller-manager", controller_manager),
                                     ("kube-scheduler", scheduler)) if on]
        self.component_pids = {}

    def apiserver_binary(self):
        return self.bins["kube-apiserver"]

    # ---- certificates -------------------------------------------------------
    def _make_pki(self):
        super()._make_pki()
        d = self.pki
        # The aggregation layer: the apiserver proxies to extension API servers
        # (KEDA's metrics server) with this client certificate, and they trust
        # the user it names through front-proxy-ca.crt.
        make_ca(d, "front-proxy-ca", "zerowire-front-proxy-ca")
        make_cert(d, "front-proxy-client", "/CN=front-proxy-client", ca="front-proxy-ca", usage="clientAuth")
        make_cert(d, "kube-controller-manager", "/CN=system:kube-controller-manager", usage="clientAuth")
        make_cert(d, "kube-scheduler", "/CN=system:kube-scheduler", usage="clientAuth")

    def component_kubeconfig(self, name):
        """A kubeconfig authenticating with the client certificate <name>.crt."""
        return self.write_kubeconfig(os.path.join(self.tmpdir, name + ".kubeconfig"), {
            "client-certificate": os.path.join(self.pki, name + ".crt"),
            "client-key": os.path.join(self.pki, name + ".key")})

    # ---- processes ----------------------------------------------------------
    def apiserver_args(self, binary):
        pki = self.pki
        return self.base_apiserver_args(binary) + [
            "--requestheader-client-ca-file=%s/front-proxy-ca.crt" % pki,
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--proxy-client-cert-file=%s/front-proxy-client.crt" % pki,
            "--proxy-client-key-file=%s/front-proxy-client.key" % pki,
            # No kube-proxy, and EndpointSlices refuse loopback addresses: an
            # aggregated API server's Service is an ExternalName "localhost",
            # which only cluster routing (the default) resolves.
            "--enable-aggregator-routing=false",
            "--watch-cache-sizes=configmaps#0",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true", "--profiling=false", "--v=1",
        ] + self.extra_apiserver_args

    def controller_manager_args(self):
        pki = self.pki
        return [
            self.bins["kube-controller-manager"],
            "--kubeconfig=" + self.component_kubeconfig("kube-controller-manager"),
            "--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
            "--use-service-account-credentials=true",
            "--service-account-private-key-file=%s/sa.key" % pki,
            "--root-ca-file=%s/ca.crt" % pki,
            "--cluster-signing-cert-file=%s/ca.crt" % pki, "--cluster-signing-key-file=%s/ca.key" % pki,
            "--service-cluster-ip-range=10.0.0.0/24",
            "--horizontal-pod-autoscaler-sync-period=5s",
            "--profiling=false", "--v=1",
        ]

    def scheduler_args(self):
        return [
            self.bins["kube-scheduler"],
            "--kubeconfig=" + self.component_kubeconfig("kube-scheduler"),
            "--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
            "--profiling=false", "--v=1",
        ]

    def start(self):
        super().start()
        try:
            for name in self.want:
                args = self.controller_manager_args() if name == "kube-controller-manager" else self.scheduler_args()
                self.spawn(name, args)
            if "kube-controller-manager" in self.want:
                # The serviceaccount controller creates "default" in every namespace.
                self.wait_for(self._default_sa, 90, 0.2, "kube-controller-manager: ServiceAccount default/default")
            for name in self.want:
                self.check_running(name)
        except BaseException:
            self.stop()
            raise
        _log("kubernetes %s: apiserver on %s, %s" % (self.version, self.server, ", ".join(self.want) or "no controllers"))
        return self

    def _default_sa(self):
        self.check_running("kube-controller-manager")
        return self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default", check=False).get("kind") \
            == "ServiceAccount"

    def spawn(self, name, argv, env=None):
        """Starts a process next to the control plane (log <tmpdir>/<name>.log);
        stop() ends it, last started first. Returns the Popen."""
        p = self._spawn(name, argv, env=env)
        self.component_pids[name] = p.pid
        return p

    def check_running(self, name):
        """Raises ClusterError with its log tail when process <name> has exited."""
        p = self._procs.get(name)
        if p is not None and p.poll() is not None:
            raise ClusterError("%s exited (%s):\n%s" % (name, p.returncode, self._log_tail(name)))

    def _stop_processes(self):
        for name in reversed(list(self.component_pids)):
            _kill_group(self.component_pids.pop(name))
        super()._stop_processes()

    def restart_apiserver(self):
        raise NotImplementedError("not needed by the real-peers smoke yet")

    def log_tail(self, name, n=25):
        """The last n lines of a component's log (etcd, apiserver, kube-controller-manager, ...)."""
        return self._log_tail(name, n)


# ---- the upstream CRDs with their schemas (issue #17, e2e/real/test_real_crds.py) ----

def crd_to_v1(doc):
    """An apiextensions.k8s.io/v1beta1 CRD as the v1 object the apiserver
    itself stored it as (v1beta1 was removed in 1.22): a top-level schema,
    subresources and printer columns move into each version, and a CRD
    without a schema keeps every field (v1beta1's preserveUnknownFields
    default) through x-kubernetes-preserve-unknown-fields on its root. v1 CRDs
    and other objects are returned unchanged. Raises ValueError on a v1beta1
    field this does not convert."""
    if doc.get("kind") != "CustomResourceDefinition" or doc.get("apiVersion") != "apiextensions.k8s.io/v1beta1":
        return doc
    spec = dict(doc["spec"])
    known = {"group", "names", "scope", "versions", "version", "validation", "subresources",
             "additionalPrinterColumns", "preserveUnknownFields"}
    unknown = set(spec) - known
    if unknown:
        raise ValueError("%s: v1beta1 fields not converted: %s" % (doc["metadata"]["name"], sorted(unknown)))
    versions = spec.get("versions") or [{"name": spec["version"], "served": True, "storage": True}]
    keep_unknown = spec.get("preserveUnknownFields", True)
    out = []
    for v in versions:
        v = dict(v)
        schema = (v.pop("schema", None) or spec.get("validation") or {}).get("openAPIV3Schema")
        schema = dict(schema) if schema else {"type": "object"}
        if keep_unknown:
            schema["x-kubernetes-preserve-unknown-fields"] = True
        v["schema"] = {"openAPIV3Schema": schema}
        if "subresources" in spec and "subresources" not in v:
            v["subresources"] = spec["subresources"]
        cols = v.pop("additionalPrinterColumns", None) or spec.get("additionalPrinterColumns")
        if cols:
            v["additionalPrinterColumns"] = [
                {("jsonPath" if k == "JSONPath" else k): val for k, val in c.items()} for c in cols]
        out.append(v)
    new = {k: spec[k] for k in ("group", "names", "scope")}
    new["versions"] = out
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": doc["metadata"], "spec": new}


def install_upstream_crds(cluster, files, timeout=120):
    """Server-side applies every CRD of files (YAML paths, in order) with
    field validation Strict, converting v1beta1 ones with crd_to_v1, and waits
    until all are Established. Returns {CRD name: file basename}. Raises
    ClusterError when one is refused or does not get Established."""
    import json
    import yaml
    names = {}
    for path in files:
        with open(path) as f:
            docs = [crd_to_v1(d) for d in yaml.safe_load_all(f) if d]
        for d in docs:
            # One document at a time: several CRDs exceed client-side apply's
            # 256 KiB annotation, and kubectl would stop at the first refusal.
            cluster.kubectl("apply", "--server-side", "--force-conflicts", "--validate=strict",
                            "--field-manager=zerowire-e2e", "-f", "-", input=json.dumps(d), timeout=60)
            names[d["metadata"]["name"]] = os.path.basename(path)
    cluster.kubectl("wait", "--for=condition=established", "--timeout=%ds" % timeout,
                    *["crd/" + n for n in names], timeout=timeout + 30)
    return names


def audit_args(d, verbs=("create", "update", "patch", "delete")):
    """kube-apiserver flags writing an audit log of every request with one of
    verbs at level Request (the request body included) to <d>/audit.log,
    JSON lines; pass them as RealCluster(extra_apiserver_args=...). Returns
    (flags, log path)."""
    os.makedirs(d, exist_ok=True)
    policy = os.path.join(d, "audit-policy.yaml")
    with open(policy, "w") as f:
        f.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
                "rules:\n- level: Request\n  verbs: [%s]\n- level: None\n" % ", ".join(verbs))
    log = os.path.join(d, "audit.log")
    return ["--audit-policy-file=" + policy, "--audit-log-path=" + log, "--audit-log-format=json",
            "--audit-log-mode=blocking"], log
