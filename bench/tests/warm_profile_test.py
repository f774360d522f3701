"""Smoke test of bench/warm_profile.py: the per-socket segment deltas, the
/proc parsers, and a tiny real run (zerowire-proxy and nginx, 5 connections,
1 s) whose rows carry every per-request figure. No timing is asserted: a
1-second run on a shared machine means nothing.

Run: ./scripts/pytest.sh bench/tests/warm_profile_test.py (needs wrk, nginx,
ss, bin/zerowire-proxy and 2 cores)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import warm_profile as wp  # noqa: E402


def test_seg_delta_counts_new_and_grown_sockets_per_side():
    a = {("127.0.0.1:80", "127.0.0.1:5000"): ("client", 10, 9),
         ("127.0.0.1:6000", "127.0.0.2:81"): ("upstream", 20, 15)}
    b = {("127.0.0.1:80", "127.0.0.1:5000"): ("client", 14, 13),     # 4 data segments
         ("127.0.0.1:6000", "127.0.0.2:81"): ("upstream", 30, 22),   # 7 data + 3 pure ACKs
         ("127.0.0.1:6001", "127.0.0.2:81"): ("upstream", 5, 3)}     # opened meanwhile
    d = wp.seg_delta(a, b)
    assert d == {"client": [4, 4], "upstream": [15, 10]}


def test_proc_parsers_read_this_machine():
    s = wp.snmp()
    assert "Tcp:OutSegs" in s and "TcpExt:DelayedACKs" in s
    u, st = wp.proc_times(os.getpid())
    assert u >= 0 and st >= 0
    busy, total = wp.core_busy("0")
    assert 0 <= busy <= total and total > 0
    assert any(k.startswith("RES") for k in wp.ipis())


@pytest.mark.skipif(not all(shutil.which(t) for t in ("wrk", "nginx", "ss", "taskset")),
                    reason="needs wrk, nginx, ss and taskset (scripts/setup.sh)")
def test_tiny_run_reports_every_figure(tmp_path):
    binary = os.path.join(ROOT, "bin", "zerowire-proxy")
    if not os.access(binary, os.X_OK):
        pytest.skip("bin/zerowire-proxy not built (make)")
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores")
    out = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "warm_profile.py"), "--zw", "zw=" + binary,
                        "--conns", "5", "--duration", "1", "--warmup", "0", "--rounds", "1", "--no-perf",
                        "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert {x["proxy"] for x in rows} == {"zw", "nginx"}
    for x in rows:
        assert x["requests"] > 0 and x["errors"] == 0, x
        assert x["per_cpu_s"] > 0 and x["cpu_us"] > 0, x
        # Both sides were seen sending data inside the run; ACK ratios are
        # ratios.
        assert x["data_segs:client"] > 0 and x["data_segs:upstream"] > 0, x
        assert 0 <= x["acks_out:client"] < 5 and 0 <= x["acks_out:upstream"] < 5, x
    assert "| zw | 5 |" in r.stdout and "| nginx | 5 |" in r.stdout
