"""pytest fixtures: a session-scoped `cluster` (one per pytest session, torn
down at the end even when tests fail). The top-level conftest.py imports
these, so every suite in the repository can ask for `cluster`."""

import atexit
import os

import pytest

from .cluster import Cluster, apiserver_binary


def ensure_apiserver(request):
    """Builds the kube-apiserver when not cached, with pytest's output capture
    off so the build's progress lines reach the terminal."""
    cap = request.config.pluginmanager.getplugin("capturemanager")
    if cap is None:
        return apiserver_binary()
    with cap.global_and_fixture_disabled():
        return apiserver_binary()


@pytest.fixture(scope="session")
def cluster(request):
    """The local control plane. With ZW_CLUSTER_DIR set (a `make cluster-up`
    directory) that running cluster is reused and left running."""
    attach_dir = os.environ.get("ZW_CLUSTER_DIR")
    if attach_dir:
        c = Cluster.attach(attach_dir)
        c.install_crd_dir(os.path.join(os.path.dirname(__file__), "..", "crds"))
        yield c
        return
    ensure_apiserver(request)
    yield from running(Cluster())


def running(c):
    """Starts cluster c, yields it, stops it (also on an abrupt interpreter
    exit): the body of a fixture, as `yield from running(c)`."""
    atexit.register(c.stop)
    c.start()
    try:
        yield c
    finally:
        c.stop()
        atexit.unregister(c.stop)
