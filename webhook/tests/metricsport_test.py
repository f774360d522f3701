"""Black-box tests of the webhook's metrics conventions (issue #13): the
plain --metrics-listen port, build_info, process metrics, review latency
histogram and per-kind outcomes, checked by the real `promtool check
metrics`."""
import os
import subprocess
import sys
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webhook_test import Webhook, review, metric  # noqa: E402
from harness import gotools  # noqa: E402
from harness.util import free_port  # noqa: E402


@pytest.fixture(scope="session")
def promtool():
    return gotools.require("promtool")


def test_plain_metrics_port(tmp_path, promtool):
    port = free_port()
    w = Webhook(tmp_path, extra=["--metrics-listen", "127.0.0.1:%d" % port])
    try:
        ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "x", "namespace": "default"}, "spec": {}}
        assert w.post(review(ing))[0] == 200
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            assert r.status == 200
            text = r.read().decode()
        assert metric(text, "zerowire_build_info", '{program="webhook",version="0.1.0"}') == 1
        assert metric(text, "process_resident_memory_bytes") > 1e6
        assert metric(text, "process_open_fds") > 3
        assert metric(text, "zerowire_webhook_cert_expiry_timestamp_seconds") > time.time()
        assert metric(text, "zerowire_webhook_review_duration_seconds_count") >= 1
        assert 'zerowire_webhook_review_duration_seconds_bucket{le="10"}' in text
        assert 'zerowire_webhook_reviews_total{kind="Ingress",outcome=' in text or \
            'zerowire_webhook_reviews_total{kind="ingress",outcome=' in text, text
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=10) as r:
            assert r.read() == b"ok\n"
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        assert w.stop() == 0
