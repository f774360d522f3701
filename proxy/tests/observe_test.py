"""Black-box tests of the proxy's observability (issue #13): the Prometheus
exposition checked by the real `promtool check metrics`, one label scheme
across the data path and the scaler, the cold-start wait histogram, method
and cold-start labels, build_info and process metrics."""
import os
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Backend, Proxy, scaledobject, wait_for, free_port  # noqa: E402
from harness import gotools  # noqa: E402

APP = "default/app"
KEY = "default/app/0"


@pytest.fixture(scope="session")
def promtool():
    return gotools.require("promtool")


def promtool_check(promtool, text):
    """Runs `promtool check metrics` on text; returns its output (it exits 0
    only when the exposition parses and lints clean)."""
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, "promtool check metrics:\n" + r.stdout + r.stderr + "\n---\n" + text
    return r.stdout + r.stderr


def held(p):
    return p.queue().get(KEY, {}).get("held", 0)


def cold_start(tmp_path, args=()):
    """A proxy whose target starts with no endpoint: one GET is held ~0.5 s,
    then answered by a new backend; then one warm POST. Returns (proxy,
    backend, result)."""
    port = free_port("127.0.0.2")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], args=list(args))
    res = {}

    def run():
        r, body = p.get("/held?x=1", timeout=30)
        res["status"] = r.status
    t = threading.Thread(target=run)
    t.start()
    wait_for(lambda: held(p) == 1, what="one held request")
    time.sleep(0.5)
    b = Backend("127.0.0.2", port, name="pod")
    p.set_endpoints({APP: [("127.0.0.2", port)]})
    t.join(10)
    assert res.get("status") == 200, res
    r, _ = p.get("/upload", method="POST", body=b"abc")
    assert r.status == 200
    return p, b, res


def test_metrics_labels_wait_histogram_and_promtool(tmp_path, promtool):
    p, b, _ = cold_start(tmp_path)
    try:
        m = p.metrics()
        assert p.metric("zerowire_requests_total", namespace="default", target="app/0", method="GET",
                        code="200", cold_start="true") == 1
        assert p.metric("zerowire_requests_total", namespace="default", target="app/0", method="POST",
                        code="200", cold_start="false") == 1
        # Held ~0.5 s: in the 1 s bucket, not in the 0.25 s one; buckets
        # reach the readiness timeout (default 5m = 300 s).
        assert p.metric("zerowire_cold_start_wait_seconds_bucket", target="app/0", le="0.25") == 0
        assert p.metric("zerowire_cold_start_wait_seconds_bucket", target="app/0", le="1") == 1
        assert 'zerowire_cold_start_wait_seconds_bucket{namespace="default",target="app/0",le="300"} 1' in m
        assert p.metric("zerowire_cold_start_wait_seconds_sum", target="app/0") >= 0.4
        assert p.metric("zerowire_build_info", program="proxy") == 1
        assert p.metric("process_resident_memory_bytes") > 1e6
        assert p.metric("process_open_fds") > 5
        assert p.metric("process_start_time_seconds") > time.time() - 600
        # The scaler's families use the same scheme.
        assert 'zerowire_scaler_active{namespace="default",target="app/0"}' in m
        # HELP on every family.
        fams = {l.split()[2] for l in m.splitlines() if l.startswith("# TYPE ")}
        helped = {l.split()[2] for l in m.splitlines() if l.startswith("# HELP ")}
        assert fams == helped, fams ^ helped
        out = promtool_check(promtool, m)
        print("promtool check metrics (proxy):", out or "clean")
    finally:
        assert p.stop() == 0
        b.stop()


def test_readiness_timeout_bucket(tmp_path, promtool):
    """A readiness timeout of 2 s is the wait histogram's last finite bucket
    and a request that times out is observed there."""
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              args=["--readiness-timeout", "2s"])
    try:
        r, _ = p.get("/", timeout=10)
        assert r.status == 504
        m = p.metrics()
        assert 'zerowire_cold_start_wait_seconds_bucket{namespace="default",target="app/0",le="2"} 1' in m
        assert 'le="2.5"' not in m.split("zerowire_cold_start_wait_seconds")[1].split("# HELP")[0]
        assert p.metric("zerowire_requests_total", target="app/0", code="504", cold_start="true") == 1
        promtool_check(promtool, m)
    finally:
        assert p.stop() == 0
