"""Black-box tests of the zerowire-webhook HTTPS server, run without an API
server (--no-kube, targets from --static-objects): TLS versions, endpoints,
400/413 handling, metrics, certificate hot reload without dropping
connections, and survival of hostile input."""
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import jsonpatch
import pytest

ROOT = os.environ.get("ZW_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.path.join(ROOT, "build", "san", "bin", "zerowire-webhook")
if not os.path.exists(BIN):
    BIN = os.path.join(ROOT, "bin", "zerowire-webhook")

STATIC = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: app, namespace: web}
spec:
  scaleTargetRef: {name: app}
  triggers:
    - type: external-push
      metadata:
        scalerAddress: zerowire-proxy.zerowire:9090
        service: app
        port: "80"
        hosts: example.com
"""

INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "app", "namespace": "web"},
    "spec": {"rules": [{"host": "example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix",
         "backend": {"service": {"name": "app", "port": {"number": 80}}}},
        {"path": "/x", "pathType": "Prefix",
         "backend": {"service": {"name": "other", "port": {"number": 80}}}},
    ]}}]},
}


def make_cert(d, cn, key_type="ec"):
    """Writes a self-signed certificate for 127.0.0.1 into d; returns (cert, key)."""
    os.makedirs(d, exist_ok=True)
    cert, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
    algo = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key_type == "ec" else \
        ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509", *algo, "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def review(obj, uid="uid-1", operation="CREATE", dry_run=False):
    group, _, version = obj["apiVersion"].rpartition("/")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version,
                         "resource": obj["kind"].lower() + "s"},
            "namespace": obj["metadata"].get("namespace", ""),
            "name": obj["metadata"]["name"],
            "operation": operation,
            "dryRun": dry_run,
            "object": obj,
        },
    }


class Webhook:
    def __init__(self, tmp_path, extra=(), cert_dir=None, binary=None):
        self.dir = tmp_path
        self.cert_dir = cert_dir or str(tmp_path / "certs")
        self.cert, self.key = os.path.join(self.cert_dir, "tls.crt"), os.path.join(self.cert_dir, "tls.key")
        if not os.path.exists(self.cert):
            make_cert(self.cert_dir, "first")
        static = tmp_path / "static.yaml"
        static.write_text(STATIC)
        self.log_path = tmp_path / "webhook.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary or BIN, "--no-kube", "--listen", "127.0.0.1:0", "--tls-cert-file", self.cert,
             "--tls-key-file", self.key, "--static-objects", str(static), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        self.port = None
        while time.time() < deadline and self.port is None:
            m = re.search(r"event=listening .*port=(\d+)", self.log_path.read_text())
            if m:
                self.port = int(m.group(1))
                break
            assert self.proc.poll() is None, self.log_path.read_text()
            time.sleep(0.05)
        assert self.port, self.log_path.read_text()

    def ctx(self, **kw):
        c = ssl.create_default_context()
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        for k, v in kw.items():
            setattr(c, k, v)
        return c

    def conn(self, **kw):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx(**kw), timeout=10)

    def request(self, method, path, body=None, conn=None, headers=None):
        c = conn or self.conn()
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, data

    def post(self, obj, conn=None):
        body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
        return self.request("POST", "/mutate", body, conn,
                            {"Content-Type": "application/json"})

    def metrics(self):
        status, data = self.request("GET", "/metrics")
        assert status == 200
        return data.decode()

    def peer_cert(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            with self.ctx().wrap_socket(s) as t:
                return t.getpeercert(binary_form=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture()
def wh(tmp_path):
    w = Webhook(tmp_path)
    yield w
    rc = w.stop()
    log = w.log_path.read_text()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log
    assert rc == 0, log


def metric(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + labels) + r" (\S+)$", text, re.M)
    assert m, f"{name}{labels} missing"
    return float(m.group(1))


def test_health_ready_and_unknown_paths(wh):
    assert wh.request("GET", "/healthz") == (200, b"ok\n")
    assert wh.request("GET", "/readyz")[0] == 200
    assert wh.request("GET", "/nope")[0] == 404
    assert wh.request("GET", "/mutate")[0] == 405
    assert wh.request("PUT", "/mutate", b"{}")[0] == 405
    assert wh.request("POST", "/healthz", b"{}")[0] == 404


def test_ingress_rewritten_with_patch(wh):
    status, data = wh.post(review(INGRESS, uid="abc"))
    assert status == 200
    resp = json.loads(data)
    assert resp["apiVersion"] == "admission.k8s.io/v1" and resp["kind"] == "AdmissionReview"
    r = resp["response"]
    assert r["uid"] == "abc" and r["allowed"] is True
    assert r["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(INGRESS, json.loads(base64.b64decode(r["patch"])))
    paths = patched["spec"]["rules"][0]["http"]["paths"]
    assert paths[0]["backend"]["service"] == {"name": "zerowire-proxy", "port": {"number": 8080}}
    assert paths[1]["backend"]["service"]["name"] == "other"
    assert "zerowire.io/original" in patched["metadata"]["annotations"]
    # The alias Service does not exist (no reconciler here): admission warns.
    assert any("alias" in w for w in r.get("warnings", []))
    # Admitting the result again changes nothing.
    status, data = wh.post(review(patched, uid="again"))
    r2 = json.loads(data)["response"]
    assert status == 200 and r2["allowed"] is True and "patch" not in r2
    text = wh.metrics()
    assert metric(text, "zerowire_webhook_reviews_total", '{kind="ingress",outcome="patched"}') == 1
    assert metric(text, "zerowire_webhook_reviews_total", '{kind="ingress",outcome="unchanged"}') == 1
    assert metric(text, "zerowire_webhook_rewrites_total") == 1


def test_grpcroute_goes_to_the_h2c_port_of_the_flag(tmp_path):
    """--proxy-h2c-port is the port a GRPCRoute destination is rewritten
    to (the HTTPRoute's stays on --proxy-port); 0 leaves the GRPCRoute
    alone with a warning that says why."""
    grpc = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "g", "namespace": "web"},
            "spec": {"hostnames": ["example.com"], "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}}
    http = dict(grpc, kind="HTTPRoute")
    w = Webhook(tmp_path / "on", extra=["--proxy-port", "8000", "--proxy-h2c-port", "50051"])
    try:
        for obj, port in ((grpc, 50051), (http, 8000)):
            status, data = w.post(review(obj))
            r = json.loads(data)["response"]
            assert status == 200 and r["allowed"] is True, r
            out = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(r["patch"])))
            assert out["spec"]["rules"][0]["backendRefs"] == [
                {"name": "zerowire-proxy", "namespace": "zerowire", "port": port}], out
    finally:
        w.stop()
    w = Webhook(tmp_path / "off", extra=["--proxy-h2c-port", "0"])
    try:
        status, data = w.post(review(grpc))
        r = json.loads(data)["response"]
        assert status == 200 and r["allowed"] is True and "patch" not in r, r
        assert any("a GRPCRoute) and --proxy-h2c-port is 0" in x for x in r.get("warnings", [])), r
    finally:
        w.stop()


def test_kedify_scaledobject_becomes_external_push(wh):
    so = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
          "metadata": {"name": "blue", "namespace": "shop"},
          "spec": {"scaleTargetRef": {"name": "blue"},
                   "triggers": [{"type": "kedify-http", "metadata": {
                       "hosts": "blue.example.com", "service": "blue", "port": "8080",
                       "scalingMetric": "requestRate", "targetValue": "10"}}]}}
    status, data = wh.post(review(so))
    r = json.loads(data)["response"]
    assert status == 200 and r["allowed"] is True
    out = jsonpatch.apply_patch(so, json.loads(base64.b64decode(r["patch"])))
    trig = out["spec"]["triggers"][0]
    assert trig["type"] == "external-push"
    assert trig["metadata"]["scalerAddress"] == "zerowire-proxy.zerowire:9090"
    assert trig["metadata"]["hosts"] == "blue.example.com"


def test_not_an_admission_review_is_400_with_message(wh):
    for body in (b"hello", b"", b"[]", b"{}", b'{"kind":"AdmissionReview"}',
                 b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}',
                 b'{"request": 5}'):
        status, data = wh.post(body)
        assert status == 400, (body, status, data)
        assert len(data.strip()) > 5, body
    text = wh.metrics()
    invalid = sum(float(v) for v in re.findall(r'outcome="invalid"\} (\S+)', text))
    assert invalid == 7
    assert wh.request("GET", "/healthz")[0] == 200


def test_body_over_limit_is_413(wh):
    big = json.dumps(review({**INGRESS, "metadata": {**INGRESS["metadata"],
                                                      "annotations": {"x": "a" * (3 * 1024 * 1024)}}}))
    assert len(big) > 3 * 1024 * 1024
    status, data = wh.post(big)
    assert status == 413
    assert b"3145728" in data
    # Just under the limit is processed.
    ok = json.dumps(review({**INGRESS, "metadata": {**INGRESS["metadata"],
                                                     "annotations": {"x": "a" * (3 * 1024 * 1024 - 2000)}}}))
    assert len(ok) <= 3 * 1024 * 1024
    status, data = wh.post(ok)
    assert status == 200, data[:200]
    assert metric(wh.metrics(), "zerowire_webhook_reviews_total",
                  '{kind="unknown",outcome="too_large"}') == 1


def test_max_body_flag(tmp_path):
    w = Webhook(tmp_path, extra=("--max-body", "4096"))
    try:
        status, data = w.post(b"{" + b" " * 5000 + b"}")
        assert status == 413 and b"4096" in data
        # A huge declared length is refused without reading it all.
        c = w.conn()
        c.putrequest("POST", "/mutate")
        c.putheader("Content-Length", str(1 << 30))
        c.endheaders()
        c.send(b"{")
        r = c.getresponse()
        assert r.status == 413
        c.close()
        assert w.request("GET", "/healthz")[0] == 200
    finally:
        assert w.stop() == 0


def test_keepalive_many_reviews_one_connection(wh):
    c = wh.conn()
    wh.request("GET", "/healthz", conn=c)
    sock = c.sock
    for i in range(50):
        status, data = wh.post(review(INGRESS, uid=f"k{i}"), conn=c)
        assert status == 200
        assert json.loads(data)["response"]["uid"] == f"k{i}"
        # Errors keep the connection too.
        assert wh.post(b"nope", conn=c)[0] == 400
        assert wh.request("GET", "/metrics", conn=c)[0] == 200
    assert c.sock is sock
    c.close()
    # One handshake for the 150 requests, one for the scrape itself.
    assert metric(wh.metrics(), "zerowire_webhook_tls_handshakes_total") == 2


@pytest.mark.parametrize("version,ok", [("TLS1.0", False), ("TLS1.1", False),
                                        ("TLS1.2", True), ("TLS1.3", True)])
def test_tls_versions(wh, version, ok):
    r = subprocess.run(["gnutls-cli", "--insecure", "--port", str(wh.port),
                        "--priority", f"NORMAL:-VERS-ALL:+VERS-{version}:%VERIFY_ALLOW_X509_V1_CA_CRT",
                        "127.0.0.1"],
                       input="", capture_output=True, text=True, timeout=20)
    out = r.stdout + r.stderr
    if ok:
        assert "Handshake was completed" in out, out
        assert f"({version}-X.509)" in out, out
    else:
        assert r.returncode != 0 and "Handshake was completed" not in out, out


def test_python_tls12_and_13(wh):
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        c = wh.conn(minimum_version=v, maximum_version=v)
        c.connect()
        assert c.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                    ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[v]
        c.request("GET", "/healthz")
        assert c.getresponse().status == 200
        c.close()


def test_cert_reload_keeps_connections(wh, tmp_path):
    first = wh.peer_cert()
    c = wh.conn()
    assert wh.post(review(INGRESS, uid="before"), conn=c)[0] == 200
    sock = c.sock
    assert sock is not None  # kept alive
    # Write a new pair elsewhere, then move it over the old files (as a
    # Secret volume update does).
    new_dir = str(tmp_path / "new")
    cert, key = make_cert(new_dir, "second", key_type="rsa")
    shutil.copy(key, wh.key + ".tmp")
    shutil.copy(cert, wh.cert + ".tmp")
    os.replace(wh.key + ".tmp", wh.key)
    os.replace(wh.cert + ".tmp", wh.cert)
    deadline = time.time() + 10
    while time.time() < deadline and wh.peer_cert() == first:
        time.sleep(0.2)
    second = wh.peer_cert()
    assert second != first
    with open(cert) as f:
        assert ssl.DER_cert_to_PEM_cert(second).split() == f.read().split()
    # The connection opened before the swap still works.
    status, data = wh.post(review(INGRESS, uid="after"), conn=c)
    assert status == 200 and json.loads(data)["response"]["uid"] == "after"
    assert c.sock is sock  # the same TLS connection, not a reconnect
    c.close()
    assert metric(wh.metrics(), "zerowire_webhook_cert_reloads_total") == 1
    assert "cert_reloaded" in wh.log_path.read_text()


def test_cert_reload_bad_files_keep_old(wh):
    first = wh.peer_cert()
    with open(wh.cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    deadline = time.time() + 10
    while time.time() < deadline:
        if metric(wh.metrics(), "zerowire_webhook_cert_reload_errors_total") >= 1:
            break
        time.sleep(0.2)
    assert metric(wh.metrics(), "zerowire_webhook_cert_reload_errors_total") >= 1
    assert wh.peer_cert() == first
    # A key that does not match the certificate is refused too.
    other = make_cert(str(wh.dir / "other"), "other")
    shutil.copy(other[1], wh.key)
    make_cert(str(wh.dir / "third"), "third")
    shutil.copy(str(wh.dir / "third" / "tls.crt"), wh.cert)
    time.sleep(3)
    assert wh.peer_cert() == first
    assert "does not match" in wh.log_path.read_text()


def test_hostile_input_never_crashes(wh):
    rnd = random.Random(7)
    base = json.dumps(review(INGRESS))
    bodies = [b"{" * 100000, b"[" * 5000 + b"]" * 5000, b"\x00\xff" * 1000,
              base[: len(base) // 2].encode(), base.replace('"uid-1"', "5").encode(),
              base.replace('"Ingress"', "[]").encode(),
              base.replace('"spec"', '"spec":null,"x"').encode()]
    for _ in range(200):
        b = bytearray(base.encode())
        for _ in range(rnd.randint(1, 8)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        bodies.append(bytes(b))
    wrong_types = json.loads(base)
    wrong_types["request"]["object"]["spec"]["rules"] = {"a": 1}
    bodies.append(json.dumps(wrong_types).encode())
    wrong_types["request"]["object"]["spec"] = "x"
    bodies.append(json.dumps(wrong_types).encode())
    c = wh.conn()
    for body in bodies:
        try:
            status, data = wh.post(body, conn=c)
        except (http.client.HTTPException, OSError):
            c.close()
            c = wh.conn()
            continue
        assert status in (200, 400), (status, body[:100])
        if status == 200:
            r = json.loads(data)["response"]
            assert "uid" in r and "allowed" in r
    c.close()
    assert wh.request("GET", "/healthz")[0] == 200
    assert wh.proc.poll() is None


def test_cli_usage_errors(tmp_path):
    r = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for flag in ("--listen", "--tls-cert-file", "--tls-key-file", "--kubeconfig", "--proxy-service",
                 "--proxy-namespace", "--proxy-port", "--proxy-h2c-port", "--scaler-address", "--alias-service",
                 "--kinds", "--watch-namespaces", "--leader-elect", "--lease-name",
                 "--lease-namespace", "--max-body", "--log-level", "--version"):
        assert flag in r.stdout, flag
    for argv in (["--bogus"], ["--bogus=1"], ["--listen", ":1", "--bogus"]):
        r = subprocess.run([BIN, *argv], capture_output=True, text=True)
        assert r.returncode == 2 and "unknown flag --bogus" in r.stderr, r.stderr
    r = subprocess.run([BIN, "--listen"], capture_output=True, text=True)
    assert r.returncode == 2 and "--listen needs a value" in r.stderr
    r = subprocess.run([BIN, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and re.match(r"zerowire-webhook \S+ \(commit [0-9a-f]+|unknown\)", r.stdout), r.stdout
    r = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert "zerowire-webhook restore" in r.stdout and "--deadline" in r.stdout
    r = subprocess.run([BIN, "restore", "--deadline", "soon"], capture_output=True, text=True)
    assert r.returncode == 2 and "--deadline" in r.stderr
    r = subprocess.run([BIN, "restore", "--kubeconfig", str(tmp_path / "missing")], capture_output=True, text=True)
    assert r.returncode == 1 and "kubeconfig_failed" in r.stderr
    assert subprocess.run([BIN, "--proxy-port", "x", "--tls-cert-file", "a", "--tls-key-file", "b"],
                          capture_output=True).returncode == 2
    r = subprocess.run([BIN, "--no-kube", "--proxy-port", "9000", "--proxy-h2c-port", "9000",
                        "--tls-cert-file", "a", "--tls-key-file", "b"], capture_output=True, text=True)
    assert r.returncode == 2 and "--proxy-h2c-port 9000: want a Service port other than --proxy-port" in r.stderr
    r = subprocess.run([BIN, "--proxy-h2c-port", "-1", "--tls-cert-file", "a", "--tls-key-file", "b"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--proxy-h2c-port" in r.stderr, r.stderr
    r = subprocess.run([BIN, "--no-kube"], capture_output=True, text=True)
    assert r.returncode == 2 and "tls-cert-file" in r.stderr
    cert, key = make_cert(str(tmp_path / "c"), "x")
    r = subprocess.run([BIN, "--no-kube", "--tls-cert-file", cert, "--tls-key-file", cert,
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "server_failed" in r.stderr
    r = subprocess.run([BIN, "--no-kube", "--tls-cert-file", cert, "--tls-key-file", key,
                        "--listen", "nonsense"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "bad listen address" in r.stderr


def test_sigterm_during_cert_setup_retries_exits_0(tmp_path):
    """Self-managed certificates with an API server that refuses connections:
    the setup retries with backoff; SIGTERM (and SIGINT) end it promptly with 0."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
""")
    for sig in (signal.SIGTERM, signal.SIGINT):
        p = subprocess.Popen([BIN, "--kubeconfig", str(kubeconfig), "--listen", "127.0.0.1:0",
                              "--cert-mode", "self", "--cert-secret", "zerowire/zerowire-webhook-tls"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 20
            seen = ""
            while "cert_setup_retry" not in seen and time.time() < deadline:
                line = p.stderr.readline()
                assert line, "exited early: %s" % seen
                seen += line
            assert "cert_setup_retry" in seen
            time.sleep(1.5)  # inside a backoff wait
            start = time.time()
            p.send_signal(sig)
            rc = p.wait(timeout=5)
            assert rc == 0, seen + p.stderr.read()
            assert time.time() - start < 2
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
