"""TLS certificates of zerowire-proxy from kubernetes.io/tls Secrets watched
on the real kube-apiserver (the session `cluster` fixture), seen through the
read-only admin /metrics: zerowire_tls_certificates and
zerowire_tls_certificate_expiry_timestamp_seconds{source,default,names}.
A Secret created after start, renewed in place, broken, and deleted; the
file-based default (static mode, with `promtool check metrics` on the
exposition); the TLS flags' validation. Certificates
are made by openssl (Debian's)."""
import base64
import calendar
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import BIN, Proxy, free_port, make_cert, wait_for  # noqa: E402

from harness import gotools  # noqa: E402  (top-level conftest puts e2e/ on sys.path)

EXPIRY = "zerowire_tls_certificate_expiry_timestamp_seconds"


def secret(ns, name, crt, key, stype="kubernetes.io/tls"):
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    return {"apiVersion": "v1", "kind": "Secret", "type": stype,
            "metadata": {"name": name, "namespace": ns},
            "data": {"tls.crt": b64(crt), "tls.key": b64(key)}}


def expiries(p):
    """{source: (default, names, notAfter)} from /metrics."""
    out = {}
    for line in p.metrics().splitlines():
        m = re.match(EXPIRY + r'\{source="([^"]*)",default="(\w+)",names="([^"]*)"\} (\d+)$', line)
        if m:
            out[m.group(1)] = (m.group(2) == "true", m.group(3), int(m.group(4)))
    return out


@pytest.fixture
def ns(cluster):
    name = cluster.create_namespace("tls")
    yield name
    cluster.delete_namespace(name)


def test_secret_watch_fills_the_store(cluster, ns, tmp_path):
    crt, key, end = make_cert(str(tmp_path), "a1", 30, "a.tls.test", "*.apps.tls.test")
    path = "/api/v1/namespaces/%s/secrets" % ns
    cluster.api("POST", path, secret(ns, "site", crt, key))
    p = Proxy(tmp_path, kubeconfig=cluster.kubeconfig, namespaces=[ns],
              args=["--tls-secret", "%s/site" % ns, "--tls-default-secret", "%s/fallback" % ns,
                    "--tls-listen", "127.0.0.1:0"])
    try:
        site = "%s/site" % ns
        wait_for(lambda: site in expiries(p), timeout=20, what="Secret loaded")
        assert expiries(p)[site] == (False, "a.tls.test,*.apps.tls.test", end)
        assert p.metric("zerowire_tls_certificates") == 1
        assert "event=tls_listening" in p.output()

        # The default Secret appears after start.
        dcrt, dkey, dend = make_cert(str(tmp_path), "d", 10, "default.tls.test")
        cluster.api("POST", path, secret(ns, "fallback", dcrt, dkey))
        fb = "%s/fallback" % ns
        wait_for(lambda: fb in expiries(p), timeout=20, what="default Secret loaded")
        assert expiries(p)[fb] == (True, "default.tls.test", dend)

        # Renewed in place: the new certificate replaces the old one.
        crt2, key2, end2 = make_cert(str(tmp_path), "a2", 90, "a.tls.test")
        assert end2 > end
        cluster.api("PUT", path + "/site", secret(ns, "site", crt2, key2))
        wait_for(lambda: expiries(p).get(site, (0, 0, 0))[2] == end2, timeout=20,
                 what="renewed certificate")
        assert expiries(p)[site][1] == "a.tls.test"

        # A broken update (key of another certificate) keeps the last good one.
        cluster.api("PUT", path + "/site", secret(ns, "site", crt, key2))
        wait_for(lambda: "tls_secret_invalid" in p.output(), timeout=20, what="invalid Secret logged")
        assert expiries(p)[site][2] == end2

        # Deleted: gone from the store.
        cluster.api("DELETE", path + "/site")
        wait_for(lambda: site not in expiries(p), timeout=20, what="Secret removed")
        assert p.metric("zerowire_tls_certificates") == 1
        assert p.proc.poll() is None
    finally:
        p.stop()


def served(port, sni):
    """The certificate the TLS listener serves for `sni` (None: no SNI):
    (subject CN, notAfter epoch), read with Python's ssl (not verified)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            der = s.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-enddate"],
                         input=der, capture_output=True, check=True).stdout.decode()
    cn = re.search(r"CN ?= ?([^\s,/]+)", out).group(1)
    end = re.search(r"notAfter=(.*)", out).group(1).strip()
    return cn, calendar.timegm(time.strptime(end, "%b %d %H:%M:%S %Y GMT"))


def curl_tls(port, host, cacert, *args):
    """curl over TLS with SNI `host`, verifying against `cacert`; returns
    (exit code, http_version, status)."""
    r = subprocess.run([shutil.which("curl"), "-sS", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                        "--cacert", cacert, "--resolve", "%s:%d:127.0.0.1" % (host, port),
                        "https://%s:%d/" % (host, port)] + list(args),
                       capture_output=True, text=True, timeout=30)
    v, _, code = r.stdout.partition(" ")
    return r.returncode, v, code


def test_sni_and_renewal_served_by_the_listener(cluster, ns, tmp_path):
    """Two Secrets for two host names and a default Secret: curl (HTTP/1.1
    and h2) verifies each host's own certificate, unknown and absent SNI get
    the default; a Secret renewed in place is served to the next handshake
    without a restart."""
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    d = str(tmp_path)
    path = "/api/v1/namespaces/%s/secrets" % ns
    acrt, akey, aend = make_cert(d, "a", 30, "a.tls.test")
    bcrt, bkey, bend = make_cert(d, "b", 40, "b.tls.test")
    dcrt, dkey, dend = make_cert(d, "dflt", 50, "default.tls.test")
    for name, c, k in (("a", acrt, akey), ("b", bcrt, bkey), ("fallback", dcrt, dkey)):
        cluster.api("POST", path, secret(ns, name, c, k))
    tport = free_port()
    p = Proxy(tmp_path, kubeconfig=cluster.kubeconfig, namespaces=[ns],
              args=["--tls-secret", "%s/a,%s/b" % (ns, ns), "--tls-default-secret", "%s/fallback" % ns,
                    "--tls-listen", "127.0.0.1:%d" % tport])
    try:
        wait_for(lambda: len(expiries(p)) == 3, timeout=20, what="three Secrets loaded")
        pid = p.proc.pid
        for host, crt in (("a.tls.test", "a.crt"), ("b.tls.test", "b.crt")):
            for flag, version in (("--http1.1", "1.1"), ("--http2", "2")):
                # No route for these hosts: 404 from the proxy, after a
                # verified handshake.
                assert curl_tls(tport, host, os.path.join(d, crt), flag) == (0, version, "404")
        assert curl_tls(tport, "a.tls.test", os.path.join(d, "b.crt"))[0] == 60  # not b's
        assert served(tport, "a.tls.test") == ("a.tls.test", aend)
        assert served(tport, "b.tls.test") == ("b.tls.test", bend)
        assert served(tport, "unknown.tls.test") == ("default.tls.test", dend)
        assert served(tport, None) == ("default.tls.test", dend)

        # Renewal in place: the next handshake gets the new certificate.
        a2crt, a2key, a2end = make_cert(d, "a2", 90, "a.tls.test")
        cluster.api("PUT", path + "/a", secret(ns, "a", a2crt, a2key))
        wait_for(lambda: served(tport, "a.tls.test") == ("a.tls.test", a2end), timeout=20,
                 what="renewed certificate served")
        assert curl_tls(tport, "a.tls.test", os.path.join(d, "a2.crt"), "--http2") == (0, "2", "404")
        assert p.proc.pid == pid and p.proc.poll() is None
        assert p.metric("zerowire_tls_handshakes_total") >= 10
    finally:
        assert p.stop() == 0


def test_file_default_in_static_mode(tmp_path):
    crt, key, end = make_cert(str(tmp_path), "f", 5, "file.tls.test")
    cpath, kpath = str(tmp_path / "f.crt"), str(tmp_path / "f.key")
    p = Proxy(tmp_path, args=["--tls-cert-file", cpath, "--tls-key-file", kpath])
    try:
        assert expiries(p) == {cpath: (True, "file.tls.test", end)}
        assert p.metric("zerowire_tls_certificates") == 1
        # The whole exposition, TLS families included, lints clean.
        r = subprocess.run([gotools.require("promtool"), "check", "metrics"], input=p.metrics(),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        p.stop()


@pytest.mark.parametrize("args,msg", [
    (["--tls-cert-file", "/x.crt"], "go together"),
    (["--tls-secret", "no-slash"], "NAMESPACE/NAME"),
    (["--tls-default-secret", "a/b/c"], "NAMESPACE/NAME"),
    (["--tls-listen", "nothing"], "host:port"),
    (["--tls-listen", "127.0.0.1:8443"], "needs certificates"),
    (["--tls-secret", "ns/a", "--targets-file", "/dev/null"], "API server"),
    (["--tls-cert-file", "/x", "--tls-key-file", "/y", "--tls-default-secret", "a/b"], "both set"),
])
def test_flag_errors(args, msg):
    r = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert msg in r.stderr, r.stderr


def test_unreadable_cert_file_fails_startup(tmp_path):
    r = subprocess.run([BIN, "--targets-file", "/dev/null", "--tls-cert-file", str(tmp_path / "none"),
                        "--tls-key-file", str(tmp_path / "none"), "--admin-listen", "127.0.0.1:0",
                        "--listen", "127.0.0.1:0", "--scaler-listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "tls_cert_failed" in r.stdout + r.stderr
