#!/usr/bin/python3
"""zerowire-webhook benchmark (not a test; prints measured figures only).

1. Review throughput and latency over TLS keep-alive against the real
   zerowire-webhook binary run with --no-kube and static targets, for an
   Ingress and for a 50-rule HTTPRoute (each rule naming a scaled Service,
   so every review is rewritten):
     - as fast as it goes: wrk and bench/webhook_bench.lua (closed loop,
       8 connections x 1 thread);
     - an open-loop held rate (default 1000 reviews/s for 20 s) from
       bench/whload (a small Go client built here: requests due at fixed
       times on 8 keep-alive HTTP/1.1 connections, as the kube-apiserver
       calls a webhook; latency counted from the due time, so waiting for
       a free connection counts), with p50/p99/p99.9 and errors.
   Every run reports the webhook's CPU-seconds (/proc/<pid>/stat) and the
   load average before and after it: the machine is shared, and a load
   average above 1 before a run means other work competed for the 2 cores
   (the result is then marked noisy). The webhook's own histogram
   (/metrics) is reported beside the client-side figures.
2. `kubectl apply` of 100 HTTPRoutes (one file) through the real
   kube-apiserver (e2e harness), with and without the
   MutatingWebhookConfiguration registered (the webhook running with its
   watches and reconciler), median of several runs each.

Usage: bench/webhook_bench.py [--duration S] [--rate N] [--rate-duration S]
                              [--skip-apply] [--skip-reviews] [--skip-max]
                              [--objects ingress,httproute] [--bin B] [--runs N] [--json F]
"""

import argparse
import base64
import json
import os
import re
from resource import RUSAGE_CHILDREN, getrusage
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
BIN = os.path.join(ROOT, "bin", "zerowire-webhook")
LUA = os.path.join(ROOT, "bench", "webhook_bench.lua")
WHLOAD = os.path.join(ROOT, "build", "bench", "whload")
NOISY_LOAD = 1.0

N_RULES = 50
N_ROUTES = 100


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=bench-ca", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=bench", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "tls.crt", "-days", "1", "-extfile", "ext.cnf", cwd=d)
    return [os.path.join(d, n) for n in ("ca.crt", "tls.crt", "tls.key")]


def scaled_object(ns, svc):
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": svc, "namespace": ns},
            "spec": {"scaleTargetRef": {"name": svc}, "triggers": [{
                "type": "external-push", "metadata": {
                    "scalerAddress": "zerowire-proxy.zerowire:9090", "service": svc, "port": "80"}}]}}


def ingress(ns):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"rules": [{"host": "app.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "svc-0", "port": {"number": 80}}}}]}}]}}


def httproute(ns, name="app", rules=N_RULES):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "gateways"}],
                     "hostnames": ["app.example.com"],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/r%d" % i}}],
                                "backendRefs": [{"name": "svc-%d" % i, "port": 80}]}
                               for i in range(rules)]}}


def review(obj, resource):
    group, _, version = obj["apiVersion"].rpartition("/")
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "0f1e2d3c-bench", "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "resource": {"group": group, "version": version, "resource": resource},
        "namespace": obj["metadata"]["namespace"], "name": obj["metadata"]["name"],
        "operation": "CREATE", "userInfo": {"username": "bench"}, "object": obj,
        "dryRun": False}}


def start_webhook(tmp, extra, log_name):
    log_path = os.path.join(tmp, log_name)
    log = open(log_path, "w")
    p = subprocess.Popen([BIN, "--listen", "127.0.0.1:0", *extra], stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        m = re.search(r"event=listening .*port=(\d+)", open(log_path).read())
        if m:
            return p, int(m.group(1)), log
        if p.poll() is not None:
            raise RuntimeError(open(log_path).read())
        time.sleep(0.05)
    raise RuntimeError("webhook did not start")


def stop(p, log):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    log.close()


def parse_wrk(out):
    def dur(s):
        m = re.match(r"([\d.]+)(us|ms|s)", s)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    lat = {}
    for pct in ("50", "90", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M)
        lat[pct] = dur(m.group(1)) if m else None
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": lat["50"], "p90_ms": lat["90"], "p99_ms": lat["99"],
            "non2xx": int(bad.group(1)) if bad else 0, "socket_errors": errs.group(1) if errs else ""}


def server_hist(port, ca):
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=ca)
    text = urllib.request.urlopen("https://127.0.0.1:%d/metrics" % port, context=ctx, timeout=10).read().decode()
    buckets = [(float("inf") if le == "+Inf" else float(le), float(v)) for le, v in
               re.findall(r'review_duration_seconds_bucket\{le="([^"]+)"\} (\S+)', text)]
    return buckets


def counters(port, ca):
    """The webhook's TLS handshakes, reviews and review seconds (sum) so far."""
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=ca)
    text = urllib.request.urlopen("https://127.0.0.1:%d/metrics" % port, context=ctx, timeout=10).read().decode()
    out = {}
    for name in ("tls_handshakes_total", "review_duration_seconds_count", "review_duration_seconds_sum"):
        m = re.search(r"^zerowire_webhook_%s(?:\{\})? (\S+)$" % name, text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


def hist_quantile(before, after, q):
    """Upper bucket bound (ms) holding quantile q of the reviews between two scrapes."""
    delta = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = delta[-1][1]
    if total <= 0:
        return None
    for le, c in delta:
        if c >= q * total:
            return le * 1000
    return None


def run_wrk(port, body_file, duration, conns, delay_ms=None):
    args = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration, "--latency", "-s", LUA,
            "https://127.0.0.1:%d/mutate" % port, "--", body_file]
    if delay_ms is not None:
        args.append(str(delay_ms))
    r = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
    if r.returncode != 0:
        raise RuntimeError(r.stdout + r.stderr)
    return parse_wrk(r.stdout)


def build_whload():
    """Builds bench/whload (Go standard library only) into build/bench."""
    src = os.path.join(ROOT, "bench", "whload")
    if os.path.exists(WHLOAD) and os.path.getmtime(WHLOAD) >= os.path.getmtime(os.path.join(src, "main.go")):
        return
    os.makedirs(os.path.dirname(WHLOAD), exist_ok=True)
    subprocess.run(["nice", "-n", "19", "go", "build", "-o", WHLOAD, "."], cwd=src, check=True)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_whload(port, body_file, ca, rate, duration, conns=8):
    r = subprocess.run([WHLOAD, "-url", "https://127.0.0.1:%d/mutate" % port, "-body", body_file,
                        "-ca", ca, "-rate", str(rate), "-duration", "%ds" % duration,
                        "-conns", str(conns), "-expect", '"allowed":true'],
                       capture_output=True, text=True, timeout=duration + 120)
    if r.returncode != 0:
        raise RuntimeError(r.stdout + r.stderr)
    w = json.loads(r.stdout)
    return {"rps": w["rate_achieved"], "p50_ms": w["latency_ms"]["p50"], "p90_ms": w["latency_ms"]["p90"],
            "p99_ms": w["latency_ms"]["p99"], "p999_ms": w["latency_ms"]["p99.9"],
            "max_ms": w["latency_ms"]["max"], "service_p99_ms": w["service_ms"]["p99"],
            "sent": w["sent"], "errors": w["errors"], "first_error": w.get("first_error", ""),
            "late_starts": w["late_starts"], "non2xx": 0}


def review_bench(tmp, duration, rate, rate_duration, objects=("ingress", "httproute"), skip_max=False):
    ca, cert, key = make_pki(tmp)
    static = os.path.join(tmp, "static.json")
    with open(static, "w") as f:
        json.dump([scaled_object("bench", "svc-%d" % i) for i in range(N_RULES)], f)
    p, port, log = start_webhook(tmp, ["--no-kube", "--tls-cert-file", cert, "--tls-key-file", key,
                                       "--static-objects", static], "review.log")
    results = []
    try:
        for key, name, obj, resource in (("ingress", "Ingress (1 path)", ingress("bench"), "ingresses"),
                                         ("httproute", "HTTPRoute (50 rules)", httproute("bench"), "httproutes")):
            if key not in objects:
                continue
            body_file = os.path.join(tmp, resource + ".json")
            body = json.dumps(review(obj, resource))
            with open(body_file, "w") as f:
                f.write(body)
            # Check the review is a rewrite (and warm up).
            import ssl
            import urllib.request
            ctx = ssl.create_default_context(cafile=ca)
            req = urllib.request.Request("https://127.0.0.1:%d/mutate" % port, data=body.encode(),
                                         headers={"Content-Type": "application/json"})
            resp = json.loads(urllib.request.urlopen(req, context=ctx, timeout=10).read())["response"]
            patch = json.loads(base64.b64decode(resp["patch"]))
            for mode, conns in (("max (wrk)", 8), ("open %d/s (whload)" % rate, 8)):
                if skip_max and mode.startswith("max"):
                    continue
                before = server_hist(port, ca)
                load_before = os.getloadavg()[0]
                cpu0 = cpu_seconds(p.pid)
                ru0 = getrusage(RUSAGE_CHILDREN)
                if mode.startswith("max"):
                    w = run_wrk(port, body_file, duration, conns)
                    w.update({"p999_ms": None, "errors": w["non2xx"], "secs": duration})
                else:
                    w = run_whload(port, body_file, ca, rate, rate_duration, conns)
                    w["secs"] = rate_duration
                cpu = cpu_seconds(p.pid) - cpu0
                ru1 = getrusage(RUSAGE_CHILDREN)
                w["client_cpu_s"] = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
                after = server_hist(port, ca)
                w["server_p50_ms"] = hist_quantile(before, after, 0.50)
                w["server_p99_ms"] = hist_quantile(before, after, 0.99)
                w["webhook_cpu_s"] = cpu
                w["cpu_us_per_review"] = cpu / (w["rps"] * w["secs"]) * 1e6 if w["rps"] else None
                w["load_before"] = load_before
                w["load_after"] = os.getloadavg()[0]
                w["noisy"] = load_before > NOISY_LOAD
                results.append({"object": name, "mode": mode, "connections": conns,
                                "body_bytes": len(body), "patch_ops": len(patch), **w})
    finally:
        stop(p, log)
    return results


def apply_bench(tmp, runs):
    from harness.cluster import Cluster
    routes = []
    for i in range(N_ROUTES):
        r = httproute("apply-bench", "route-%d" % i, rules=1)
        r["spec"]["rules"][0]["backendRefs"][0]["name"] = "svc-%d" % (i % 10)
        routes.append(r)
    manifest = os.path.join(tmp, "routes.json")
    with open(manifest, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": routes}, f)
    ca, cert, key = make_pki(tmp)
    c = Cluster()
    c.start()
    p = log = None
    out = {}
    try:
        c.ensure_namespace("zerowire")
        c.ensure_namespace("apply-bench")
        c.apply(json.dumps({"apiVersion": "v1", "kind": "List",
                            "items": [scaled_object("apply-bench", "svc-%d" % i) for i in range(10)]}))
        p, port, log = start_webhook(tmp, ["--kubeconfig", c.kubeconfig, "--tls-cert-file", cert,
                                           "--tls-key-file", key], "apply.log")
        with open(ca, "rb") as f:
            ca_b64 = base64.b64encode(f.read()).decode()
        mwc = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
               "metadata": {"name": "zerowire-bench"},
               "webhooks": [{"name": "autowire.zerowire.io",
                             "clientConfig": {"url": "https://127.0.0.1:%d/mutate" % port, "caBundle": ca_b64},
                             "rules": [{"apiGroups": ["gateway.networking.k8s.io"], "apiVersions": ["v1"],
                                        "resources": ["httproutes"], "operations": ["CREATE", "UPDATE"]}],
                             "failurePolicy": "Ignore", "sideEffects": "None", "timeoutSeconds": 5,
                             "admissionReviewVersions": ["v1"], "reinvocationPolicy": "IfNeeded"}]}

        def timed_apply():
            c.kubectl("delete", "httproutes", "--all", "-n", "apply-bench", timeout=300)
            t = time.monotonic()
            c.kubectl("apply", "-f", manifest, timeout=300)
            return time.monotonic() - t

        time.sleep(2)  # registry synced
        samples = {"without": [], "with": []}
        seen = {"tls_handshakes_total": 0.0, "review_duration_seconds_count": 0.0,
                "review_duration_seconds_sum": 0.0}
        for i in range(runs):
            c.kubectl("delete", "mutatingwebhookconfiguration", "zerowire-bench", "--ignore-not-found")
            time.sleep(1)
            samples["without"].append(timed_apply())
            c.apply(json.dumps(mwc))
            time.sleep(1)
            m0 = counters(port, ca)
            samples["with"].append(timed_apply())
            m1 = counters(port, ca)
            for k in seen:
                seen[k] += m1[k] - m0[k]
            seen["tls_handshakes_total"] -= 1  # the scrape's own connection
        # What the webhook saw during the timed applies with it registered.
        out["reviews"] = seen["review_duration_seconds_count"]
        out["tls_handshakes"] = seen["tls_handshakes_total"]
        out["server_ms_per_review"] = (seen["review_duration_seconds_sum"] / seen["review_duration_seconds_count"] * 1000
                                       if seen["review_duration_seconds_count"] else None)
        got = json.loads(c.kubectl("get", "httproute", "route-0", "-n", "apply-bench", "-o", "json").stdout)
        out["rewritten"] = "zerowire-proxy" in json.dumps(got["spec"])
        for k, v in samples.items():
            out[k + "_median_s"] = statistics.median(v)
            out[k + "_samples_s"] = [round(x, 3) for x in v]
        out["ratio"] = out["with_median_s"] / out["without_median_s"]
        # The least disturbed run of each: on a shared machine the medians
        # still carry other work's noise.
        out["ratio_min"] = min(samples["with"]) / min(samples["without"])
    finally:
        if p is not None:
            stop(p, log)
        c.stop()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--rate", type=int, default=1000, help="open-loop reviews/s (default 1000)")
    ap.add_argument("--rate-duration", type=int, default=20,
                    help="seconds of the open-loop run (default 20)")
    ap.add_argument("--skip-reviews", action="store_true", help="skip the review load runs")
    ap.add_argument("--bin", help="zerowire-webhook binary to measure (default bin/zerowire-webhook)")
    ap.add_argument("--runs", type=int, default=5, help="kubectl apply runs per mode (default 5)")
    ap.add_argument("--skip-apply", action="store_true", help="skip the kube-apiserver part")
    ap.add_argument("--skip-max", action="store_true", help="skip the wrk (flat out) review runs")
    ap.add_argument("--objects", default="ingress,httproute",
                    help="reviews to run, comma-separated: ingress, httproute (default both)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found (Debian package wrk)")
    if not a.skip_reviews:
        build_whload()
    if a.bin:
        global BIN
        BIN = os.path.abspath(a.bin)
    if not os.access(BIN, os.X_OK):
        sys.exit("%s missing: run make first" % BIN)
    tmp = tempfile.mkdtemp(prefix="zw-webhook-bench.")
    results = {"machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}}
    print("cpus %d, load average at start %.2f %.2f %.2f (other work on the machine skews the figures)"
          % ((os.cpu_count(),) + os.getloadavg()))
    try:
        if not a.skip_reviews:
            results["reviews"] = review_bench(tmp, a.duration, a.rate, a.rate_duration,
                                              a.objects.split(","), a.skip_max)
            print("| object | mode | conns | s | reviews/s | p50 ms | p99 ms | p99.9 ms | server p50 ≤ ms "
                  "| server p99 ≤ ms | errors | webhook CPU-s (µs/review) | client CPU-s | load before → after |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            for r in results["reviews"]:
                p999 = "%.3f" % r["p999_ms"] if r["p999_ms"] is not None else "–"
                print("| %s | %s | %d | %d | %.0f | %.3f | %.3f | %s | %s | %s | %d | %.2f (%.0f) | %.2f | %.2f → %.2f%s |" % (
                    r["object"], r["mode"], r["connections"], r["secs"], r["rps"], r["p50_ms"], r["p99_ms"],
                    p999, r["server_p50_ms"], r["server_p99_ms"], r["errors"], r["webhook_cpu_s"],
                    r["cpu_us_per_review"] or 0, r["client_cpu_s"], r["load_before"], r["load_after"],
                    " (noisy)" if r["noisy"] else ""))
        if not a.skip_apply:
            load_before = os.getloadavg()[0]
            ab = apply_bench(tmp, a.runs)
            ab["load_before"], ab["load_after"] = load_before, os.getloadavg()[0]
            results["apply"] = ab
            print()
            print("kubectl apply of %d HTTPRoutes: without webhook %.2f s, with webhook %.2f s "
                  "(ratio %.2f, medians of %d; fastest runs: ratio %.2f; rewritten: %s)" % (
                      N_ROUTES, ab["without_median_s"], ab["with_median_s"], ab["ratio"], a.runs,
                      ab["ratio_min"], ab["rewritten"]))
            print("samples without: %s" % ab["without_samples_s"])
            print("samples with:    %s" % ab["with_samples_s"])
            print("during the timed applies with the webhook: %d reviews, %d TLS handshakes, "
                  "server time %.3f ms per review" % (ab["reviews"], ab["tls_handshakes"],
                                                      ab["server_ms_per_review"] or 0))
            print("load average (1 min) before → after: %.2f → %.2f%s" % (
                ab["load_before"], ab["load_after"], " (noisy)" if ab["load_before"] > NOISY_LOAD else ""))
        results["machine"]["loadavg_end"] = os.getloadavg()
        print("load average at end %.2f %.2f %.2f" % os.getloadavg())
        if a.json:
            with open(a.json, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
