"""Smoke test of the HTTP/2 and gRPC benchmarks (bench/h2_bench.py through
bench/run.sh --only h2,grpc) with tiny counts: every proxy starts, carries
h2c (and gRPC where it can), the report and the JSON have a row per proxy
and shape, CPU was accounted, and a proxy that cannot carry gRPC gets a row
saying what its probe saw. No timing is asserted: the figures of a 1-second
run on a shared machine mean nothing.

Run: ./scripts/pytest.sh bench/tests/h2_bench_test.py (needs h2load, h2o,
nginx, haproxy, Go for ghz and the gRPC backend, bin/zerowire-proxy, 2 cores)."""
import argparse
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import h2_bench  # noqa: E402
import proxy_bench as pb  # noqa: E402

PROXIES = {"zerowire-proxy", "nginx", "HAProxy", "h2o"}


def test_shapes_and_errors_parse():
    assert h2_bench.parse_shapes("8x8, 100x10") == [(8, 8), (100, 10)]
    assert h2_bench.short_error(
        'rpc error: code = Unavailable desc = unexpected HTTP status code received from server: 502 (Bad '
        'Gateway); transport: received unexpected content-type "text/plain"') == \
        "Unavailable: unexpected HTTP status code received from server: 502 (Bad Gateway)"
    assert h2_bench.short_error("connection refused") == "connection refused"


def test_a_proxy_that_exits_during_a_run_is_restarted_and_that_run_not_counted(tmp_path):
    starts = []

    def start():
        port = pb.free_port()
        p = pb.Proc("fake%d" % len(starts), [sys.executable, "-c", "import socket, time; s = socket.socket(); "
                                             "s.bind(('127.0.0.1', %d)); s.listen(); time.sleep(60)" % port],
                    str(tmp_path))
        starts.append(p)
        return p, port

    peer = h2_bench.Peer("fake", start)
    calls = []

    def one_run(target, conns, streams, seconds, measured):
        calls.append((target, measured))
        if len(calls) == 1:  # the first run's proxy dies under it
            peer.proc.p.kill()
            peer.proc.p.wait()
        return {"rps": 100.0, "requests": 100, "errors_total": 0, "p50_us": 10, "p99_us": 20}

    try:
        rows = h2_bench.run_rounds([peer], [(2, 3)], argparse.Namespace(rounds=2, duration=1, warmup=0),
                                   one_run, None, "test")
    finally:
        peer.stop()
    assert len(starts) == 2 and calls[0][0] != calls[1][0]  # restarted on a new port
    assert len(rows) == 1 and rows[0]["failed"] == ["fake killed by signal 9"]
    assert rows[0]["rps"] == 100.0 and len(rows[0]["rounds"]) == 1
    text = "\n".join(h2_bench.fmt_rows(rows))
    assert "| fake | 2 × 3 | 100 |" in text and "- fake, 2 × 3: 1 run(s) not counted: fake killed by signal 9" in text


def missing_tools():
    missing = [t for t in ("h2load", "h2o", "nginx", "haproxy", "taskset", "wrk", "go") if not shutil.which(t)]
    if not os.access(os.path.join(ROOT, "bin", "zerowire-proxy"), os.X_OK):
        missing.append("bin/zerowire-proxy (run make)")
    if (os.cpu_count() or 1) < 2:
        missing.append("a second core")
    return missing


@pytest.mark.skipif(bool(missing_tools()), reason="h2 bench needs: %s" % ", ".join(missing_tools()))
def test_h2_and_grpc_bench_run_with_tiny_counts(tmp_path):
    out, raw = tmp_path / "report.md", tmp_path / "raw.json"
    r = subprocess.run([os.path.join(ROOT, "bench", "run.sh"), "--only", "h2,grpc", "--duration", "1",
                        "--warmup", "0", "--rounds", "1", "--h2-shapes", "2x2,3x1", "--grpc-shapes", "1x2",
                        "--out", str(out), "--json", str(raw)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1500,
                       env=dict(os.environ, BENCH_TIMEOUT="1400"))
    assert r.returncode == 0, r.stdout[-4000:]
    report = out.read_text()
    data = json.loads(raw.read_text())
    h2 = next(v for k, v in data.items() if k.startswith("HTTP/2 warm path"))
    grpc = next(v for k, v in data.items() if k.startswith("gRPC unary"))

    # h2: every proxy carries h2c to the HTTP/1.1 backend, in both shapes.
    assert {(x["proxy"], x["conns"], x["streams"]) for x in h2} == \
        {(p, c, m) for p in PROXIES for c, m in ((2, 2), (3, 1))}
    for x in h2:
        assert not x["failed"], x  # the proxy stayed up and h2load completed
        assert x["requests"] > 0 and x["errors_total"] == 0, x
        assert x["cpu"] > 0 and x["eff"] > 0 and x["p99_us"] >= x["p50_us"] > 0, x
        assert "| %s | %d × %d |" % (x["proxy"], x["conns"], x["streams"]) in report

    # gRPC: direct, nginx and HAProxy carry it; zerowire-proxy and h2o are
    # either measured or have a row that says why not.
    measured = {x["proxy"] for x in grpc["rows"]}
    assert {"direct (no proxy)", "nginx", "HAProxy"} <= measured
    assert measured | {name for name, _ in grpc["skipped"]} == PROXIES | {"direct (no proxy)"}
    for x in grpc["rows"]:
        assert not x["failed"], x
        assert x["requests"] > 0 and x["errors_total"] == 0 and x["p99_us"] >= x["p50_us"] > 0, x
        assert (x["cpu"] is None) == (x["proxy"] == "direct (no proxy)"), x
    for name, why in grpc["skipped"]:
        assert why.startswith("20-call probe: ") and len(why) > len("20-call probe: "), why
        assert "| %s | - | not carried: %s |" % (name, why) in report
