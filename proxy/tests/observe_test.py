"""Black-box tests of the proxy's observability (issue #13): the Prometheus
exposition checked by the real `promtool check metrics`, one label scheme
across the data path and the scaler, the cold-start wait histogram, method
and cold-start labels, build_info and process metrics; the access log
(logfmt and JSON); W3C trace context propagation and the spans a real OTLP
receiver (the OpenTelemetry Collector's otlpreceiver) accepts."""
import json
import os
import re
import signal
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


def cold_start(tmp_path, args=(), headers=None):
    """A proxy whose target starts with no endpoint: one GET is held ~0.5 s,
    then answered by a new backend; then one warm POST. Returns (proxy,
    backend, result)."""
    port = free_port("127.0.0.2")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")], args=list(args))
    res = {}

    def run():
        r, body = p.get("/headers?x=1", timeout=30, headers=headers)
        res["body"] = body
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
        # Held ~0.5 s (plus the endpoint update): above the 0.25 s bucket,
        # well within 5 s; buckets reach the readiness timeout (5m = 300 s).
        assert p.metric("zerowire_cold_start_wait_seconds_bucket", target="app/0", le="0.25") == 0
        assert p.metric("zerowire_cold_start_wait_seconds_bucket", target="app/0", le="5") == 1
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
    """A readiness timeout of 2 s is the wait histogram's last finite bucket;
    a request that timed out waited at least that long."""
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              args=["--readiness-timeout", "2s"])
    try:
        r, _ = p.get("/", timeout=10)
        assert r.status == 504
        m = p.metrics()
        # The wait reached the timeout: above every bucket below it; the
        # 2 s bucket exists (a wait never exceeds the timeout by much, so
        # +Inf minus le="2" counts the timeouts, give or take the boundary).
        assert 'zerowire_cold_start_wait_seconds_bucket{namespace="default",target="app/0",le="2"}' in m
        assert p.metric("zerowire_cold_start_wait_seconds_bucket", target="app/0", le="1") == 0
        assert p.metric("zerowire_cold_start_wait_seconds_bucket", target="app/0", le="+Inf") == 1
        assert p.metric("zerowire_cold_start_wait_seconds_sum", target="app/0") >= 2
        assert 'le="2.5"' not in m.split("zerowire_cold_start_wait_seconds")[1].split("# HELP")[0]
        assert p.metric("zerowire_requests_total", target="app/0", code="504", cold_start="true") == 1
        promtool_check(promtool, m)
    finally:
        assert p.stop() == 0


def access_lines(p, json_lines):
    """The access-log lines in the proxy's output (stdout and stderr share a
    file in the tests; event logs carry level=, access lines do not)."""
    out = []
    for line in p.output().splitlines():
        if json_lines and line.startswith("{"):
            out.append(json.loads(line))
        elif not json_lines and line.startswith("ts=") and " level=" not in line:
            out.append(dict((k, v.strip('"')) for k, v in
                            re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line)))
    return out


def test_access_log_json(tmp_path):
    p, b, _ = cold_start(tmp_path, args=["--access-log", "json"])
    try:
        long = "/" + "p" * 600
        r, _ = p.get(long + "?q=\"quoted\"")
        assert r.status == 200
        wait_for(lambda: len(access_lines(p, True)) >= 3, what="three access lines")
        lines = access_lines(p, True)
        held_line = [l for l in lines if l["path"].startswith("/headers")][0]
        assert held_line["target"] == "default/app/0" and held_line["method"] == "GET"
        assert held_line["status"] == 200 and held_line["cold_start"] is True
        assert held_line["held_ms"] >= 400 and held_line["duration_ms"] >= held_line["held_ms"]
        assert held_line["upstream"].startswith("127.0.0.2:") and held_line["upstream_ms"] >= 0
        assert held_line["bytes_in"] > 20 and held_line["bytes_out"] > 100
        post = [l for l in lines if l["method"] == "POST"][0]
        assert post["cold_start"] is False and post["held_ms"] == 0 and post["bytes_in"] > 3
        cut = [l for l in lines if l["path"].startswith("/ppp")][0]
        assert cut["path"].endswith("...") and len(cut["path"]) == 256 + 3
        assert p.metric("zerowire_access_log_lines_total") >= 3
        assert p.metric("zerowire_access_log_dropped_total") == 0
    finally:
        assert p.stop() == 0
        b.stop()


def test_access_log_logfmt_and_trace_id(tmp_path):
    tid = "4bf92f3577b34da6a3ce929d0e0e4736"
    p, b, _ = cold_start(tmp_path, args=["--access-log", "logfmt"],
                         headers={"traceparent": "00-%s-00f067aa0ba902b7-01" % tid})
    try:
        wait_for(lambda: len(access_lines(p, False)) >= 2, what="two access lines")
        lines = access_lines(p, False)
        first = [l for l in lines if l["path"].startswith("/headers")][0]
        assert first["cold_start"] == "true" and first["status"] == "200"
        assert first["trace_id"] == tid  # the caller's trace, logged even without tracing
        assert [l for l in lines if l["method"] == "POST"][0]["trace_id"] == "-"
    finally:
        assert p.stop() == 0
        b.stop()


@pytest.fixture(scope="session")
def otelcol():
    return gotools.require("otelcol")


class Collector:
    """The OTLP/HTTP receiver built from the collector's module, writing the
    batches it accepted as OTLP JSON lines."""

    def __init__(self, binary, tmp_path):
        self.port = free_port()
        self.out = str(tmp_path / "spans.jsonl")
        self.log = open(str(tmp_path / "otelcol.log"), "wb")
        self.proc = subprocess.Popen([binary, "-http", "127.0.0.1:%d" % self.port, "-out", self.out],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.out) and b"listening" in open(
            str(tmp_path / "otelcol.log"), "rb").read(), what="collector up")
        self.url = "http://127.0.0.1:%d/v1/traces" % self.port

    def spans(self):
        out = []
        with open(self.out) as f:
            for line in f:
                for rs in json.loads(line).get("resourceSpans", []):
                    svc = [a["value"]["stringValue"] for a in rs["resource"]["attributes"]
                           if a["key"] == "service.name"]
                    for ss in rs.get("scopeSpans", []):
                        for sp in ss.get("spans", []):
                            sp["service"] = svc[0] if svc else None
                            sp["attrs"] = {a["key"]: list(a["value"].values())[0]
                                           for a in sp.get("attributes", [])}
                            out.append(sp)
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        self.log.close()


def test_tracing_otlp_to_real_collector(tmp_path, otelcol):
    col = Collector(otelcol, tmp_path)
    tid, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        p, b, res = cold_start(tmp_path, args=["--otlp-endpoint", col.url, "--trace-batch", "2"],
                               headers={"traceparent": "00-%s-%s-01" % (tid, parent),
                                        "tracestate": "vendor=abc"})
        try:
            # Propagated upstream: same trace, the proxy's span as parent.
            seen = dict((k.lower(), v) for k, v in json.loads(res["body"])["headers"])
            m = re.match(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$", seen["traceparent"])
            assert m and m.group(1) == tid and m.group(2) != parent, seen
            assert seen["tracestate"] == "vendor=abc"
            wait_for(lambda: len(col.spans()) >= 3, timeout=15, what="spans at the collector")
            spans = col.spans()
            req = [s for s in spans if s["traceId"] == tid and s["name"] == "GET default/app/0"]
            assert len(req) == 1, spans
            req = req[0]
            assert req["spanId"] == m.group(2) and req["parentSpanId"] == parent
            assert req["kind"] == 2 and req["service"] == "zerowire-proxy"
            assert req["traceState"] == "vendor=abc"
            assert req["attrs"]["http.response.status_code"] in ("200", 200)
            assert req["attrs"]["zerowire.cold_start"] is True
            hold = [s for s in spans if s["name"] == "cold-start hold"]
            assert len(hold) == 1 and hold[0]["traceId"] == tid
            assert hold[0]["parentSpanId"] == req["spanId"]
            dur_ms = (int(hold[0]["endTimeUnixNano"]) - int(hold[0]["startTimeUnixNano"])) / 1e6
            assert dur_ms >= 400, hold[0]
            assert int(hold[0]["startTimeUnixNano"]) >= int(req["startTimeUnixNano"])
            # The warm POST started a new sampled trace of its own.
            post = [s for s in spans if s["name"] == "POST default/app/0"]
            assert len(post) == 1 and post[0]["traceId"] != tid and "parentSpanId" not in post[0] or \
                post[0].get("parentSpanId", "") == ""
            wait_for(lambda: p.metric("zerowire_spans_exported_total") >= 3, what="exported count")
            assert p.metric("zerowire_spans_dropped_total") == 0
        finally:
            assert p.stop() == 0
            b.stop()
    finally:
        col.stop()


def test_sampler_zero_still_propagates(tmp_path, otelcol):
    """--trace-sampler 0: new traces are not sampled (flags 00 upstream, no
    span exported); an incoming sampled traceparent is still followed."""
    col = Collector(otelcol, tmp_path)
    b = Backend("127.0.0.1", name="pod")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [(b.ip, b.port)]}, args=["--otlp-endpoint", col.url, "--trace-sampler", "0"])
    try:
        seen = dict((k.lower(), v) for k, v in json.loads(p.get("/headers")[1])["headers"])
        assert re.match(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-00$", seen["traceparent"]), seen
        hdr = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
        seen = dict((k.lower(), v) for k, v in json.loads(p.get("/headers", headers=hdr)[1])["headers"])
        assert seen["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
        wait_for(lambda: p.metric("zerowire_spans_exported_total") >= 1, what="one span")
        time.sleep(0.5)
        assert [s["traceId"] for s in col.spans()] == ["0af7651916cd43dd8448eb211c80319c"]
    finally:
        assert p.stop() == 0
        b.stop()
        col.stop()


def test_export_failure_counted(tmp_path):
    """An unreachable endpoint: requests are served as usual and the lost
    spans are counted."""
    b = Backend("127.0.0.1", name="pod")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {APP: [(b.ip, b.port)]},
              args=["--otlp-endpoint", "http://127.0.0.1:%d/v1/traces" % free_port()])
    try:
        for _ in range(3):
            assert p.get("/")[0].status == 200
        wait_for(lambda: p.metric("zerowire_spans_dropped_total") == 3, what="3 dropped")
        assert p.metric("zerowire_span_export_failures_total") >= 1
    finally:
        assert p.stop() == 0
        b.stop()
