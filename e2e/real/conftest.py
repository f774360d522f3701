"""Shared fixtures of the real-stack suites (e2e/real): one current control
plane per pytest session (kube-apiserver, kube-controller-manager and
kube-scheduler built by e2e/build-peers.sh), the kubelet stand-in running
its Pods in network namespaces, the real KEDA operator and metrics API
server, and Traefik. Each is skipped with the build command while its
binaries are not built; a suite that defines a fixture of the same name
(test_real_peers_smoke.py's `real`) keeps its own."""

import os
import shutil

import pytest

from harness import util
from harness.fixtures import running
from harness.realcluster import RealCluster, peer_binaries

GATEWAY_CRDS = ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants",
                "backendtlspolicies")


def built(peer):
    """{binary: path} of a built peer, or a skip naming the build command."""
    bins = peer_binaries(peer)
    if bins is None:
        pytest.skip("%s not built: run e2e/build-peers.sh %s once (docs/real-peers.md)" % (peer, peer))
    return bins


@pytest.fixture(scope="session")
def realc():
    """The current control plane with its controllers and scheduler."""
    yield from running(RealCluster(built("kubernetes"), name="zw-realstack"))


@pytest.fixture(scope="session")
def kubelet(realc):
    """The kubelet stand-in: one Node, Pods in network namespaces. Pods of the
    zerowire chart's own Deployments are left Pending (their processes run on
    the host, started by the suites)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("the kubelet stand-in needs root and iproute2 (network namespaces)")
    from harness.kubelet import Kubelet
    k = Kubelet(realc, skip=lambda pod: (pod["metadata"].get("labels") or {}).get(
        "app.kubernetes.io/name") == "zerowire").start()
    try:
        yield k
    finally:
        k.stop()


@pytest.fixture(scope="session")
def keda(realc):
    """The real KEDA operator and metrics API server (aggregated)."""
    from harness.realkeda import RealKeda
    k = RealKeda(realc, built("keda"), private_hosts=True).start()
    realc.wait_for(lambda: [c for c in k.apiservice_available() if c["status"] == "True"], 90, 0.5,
                   "v1beta1.external.metrics.k8s.io Available")
    return k


@pytest.fixture(scope="session")
def gateway_crds(realc):
    crds = util.shared_dir() + "/fixtures/crds/gateway-api-v1.6.1-standard-"
    if not os.path.exists(crds + "httproutes.yaml"):
        pytest.skip("Gateway API CRDs absent: %s* (../shared not present)" % crds)
    from harness.cluster import ClusterError

    def install(path):
        try:
            return realc.install_crd_dir(path)
        except ClusterError as e:  # `kubectl wait` before the CRD has a status at all
            if "accessor error" not in str(e):
                raise
            return None
    for kind in GATEWAY_CRDS:
        realc.wait_for(lambda: install(crds + kind + ".yaml"), 60, 0.5, "Gateway API CRD %s Established" % kind)
    return True


@pytest.fixture(scope="session")
def traefik(realc, gateway_crds):
    from harness.realtraefik import RealTraefik
    return RealTraefik(realc, built("traefik")["traefik"]).start()
