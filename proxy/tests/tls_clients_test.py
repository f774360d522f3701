"""proxy/tls.c against real TLS clients: curl and openssl s_client (Debian's,
OpenSSL 3) talk to the test tool build/san/test/proxy_tool_tls (ASan/UBSan
build), which drives the session module on a libuv loop as the proxy's TLS
listener will. TLS 1.3 and 1.2, ALPN h2 and http/1.1, SNI picking a
certificate or the default, TLS 1.1, CBC and non-forward-secret suites
refused with an alert. Certificates are made by openssl."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import make_cert  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "build", "san", "test", "proxy_tool_tls")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.access(TOOL, os.X_OK):
        pytest.fail("%s is missing: run `make SAN=1 tools`" % TOOL)
    d = str(tmp_path_factory.mktemp("tls"))
    make_cert(d, "a", 5, "a.tls.test", "*.apps.tls.test")
    make_cert(d, "d", 5, "default.tls.test")
    err = open(os.path.join(d, "stderr"), "w+")
    p = subprocess.Popen([TOOL, "--cert", "ns/a=%s/a.crt:%s/a.key" % (d, d),
                          "--cert", "ns/d=%s/d.crt:%s/d.key:default" % (d, d)],
                         stdout=subprocess.PIPE, stderr=err, text=True)
    port = int(p.stdout.readline().split()[1])
    yield {"port": port, "dir": d, "stderr": err}
    p.terminate()
    assert p.wait(20) == 0
    err.seek(0)
    assert "ERROR: AddressSanitizer" not in err.read()


def curl(srv, name, *args):
    port = srv["port"]
    r = subprocess.run(["curl", "-sS", "-v", "--max-time", "10", "--resolve", "%s:%d:127.0.0.1" % (name, port),
                        "https://%s:%d/" % (name, port)] + list(args), capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("name,args,want", [
    ("a.tls.test", ["--cacert", "{d}/a.crt", "--http1.1"], "alpn=http/1.1 sni=a.tls.test version=13 cert=ns/a"),
    ("x.apps.tls.test", ["--cacert", "{d}/a.crt", "--http1.1", "--tlsv1.2", "--tls-max", "1.2"],
     "alpn=http/1.1 sni=x.apps.tls.test version=12 cert=ns/a"),
    ("default.tls.test", ["--cacert", "{d}/d.crt", "--http1.1"], "cert=ns/d"),
    ("other.example", ["-k", "--http1.1"], "sni=other.example version=13 cert=ns/d"),
    ("y.x.apps.tls.test", ["-k", "--http1.1"], "cert=ns/d"),  # one wildcard level only
])
def test_curl(server, name, args, want):
    rc, out, err = curl(server, name, *[a.format(d=server["dir"]) for a in args])
    assert rc == 0, err
    assert want in out, out


def test_curl_verifies_the_sni_certificate(server):
    # The default certificate does not name a.tls.test: had SNI picked wrongly,
    # verification with a.crt as the only CA would fail.
    rc, out, err = curl(server, "a.tls.test", "--cacert", os.path.join(server["dir"], "d.crt"), "--http1.1")
    assert rc == 60, (rc, err)  # certificate problem: the right (a) certificate was served


def test_curl_h2_negotiated(server):
    rc, out, err = curl(server, "a.tls.test", "-k", "--http2")
    # The tool answers in HTTP/1.1, so curl's h2 request fails after the handshake;
    # what counts is that ALPN chose h2.
    assert "ALPN: server accepted h2" in err or "ALPN, server accepted to use h2" in err, err


def s_client(srv, *args):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv["port"]] + list(args),
                       input="", capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


@pytest.mark.parametrize("alpn,want", [("h2,http/1.1", "h2"), ("http/1.1,h2", "h2"), ("http/1.1", "http/1.1")])
def test_openssl_alpn(server, alpn, want):
    out = s_client(server, "-alpn", alpn, "-servername", "a.tls.test")
    assert "ALPN protocol: %s\n" % want in out, out
    assert "subject=CN = a.tls.test" in out, out


def test_openssl_no_sni_gets_default(server):
    out = s_client(server, "-noservername")
    assert "subject=CN = default.tls.test" in out, out
    assert "No ALPN negotiated" in out, out


@pytest.mark.parametrize("args,alert", [
    (["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], "alert protocol version"),
    (["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"], "alert protocol version"),
    (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:AES128-SHA"], "alert handshake failure"),
    (["-tls1_2", "-cipher", "AES128-GCM-SHA256:AES256-GCM-SHA384"], "alert handshake failure"),  # no ECDHE
])
def test_openssl_refused(server, args, alert):
    out = s_client(server, "-servername", "a.tls.test", *args)
    assert alert in out, out
    assert "Cipher is (NONE)" in out, out


def test_openssl_tls12_aead_ecdhe(server):
    out = s_client(server, "-servername", "a.tls.test", "-tls1_2")
    assert "Protocol  : TLSv1.2" in out or "TLSv1.2" in out, out
    assert "Cipher    : ECDHE-ECDSA-AES128-GCM-SHA256" in out, out
