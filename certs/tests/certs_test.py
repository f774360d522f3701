"""Black-box tests of zerowire-certs: files written, verified by OpenSSL and
GnuTLS's certtool, SANs present, --check exit codes, refusing to overwrite."""
import os
import stat
import subprocess

import pytest

ROOT = os.environ.get("ZW_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.path.join(ROOT, "build", "san", "bin", "zerowire-certs")


def run(*args, check=True):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, check=check)


@pytest.fixture()
def out(tmp_path):
    d = tmp_path / "certs"
    run("--out-dir", str(d), "--service", "zerowire-webhook", "--namespace", "zerowire",
        "--ip", "127.0.0.1", "--dns", "webhook.example")
    return d


def test_files_and_modes(out):
    for name, mode in (("ca.crt", 0o644), ("tls.crt", 0o644), ("ca.key", 0o600), ("tls.key", 0o600)):
        st = os.stat(out / name)
        assert stat.S_IMODE(st.st_mode) == mode, name


def test_openssl_verifies_chain_and_sans(out):
    r = subprocess.run(["openssl", "verify", "-CAfile", str(out / "ca.crt"), str(out / "tls.crt")],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip().endswith("OK")
    text = subprocess.run(["openssl", "x509", "-in", str(out / "tls.crt"), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    for san in ("DNS:zerowire-webhook,", "DNS:zerowire-webhook.zerowire,",
                "DNS:zerowire-webhook.zerowire.svc,", "DNS:zerowire-webhook.zerowire.svc.cluster.local",
                "DNS:webhook.example", "IP Address:127.0.0.1"):
        assert san in text
    assert "TLS Web Server Authentication" in text
    ca = subprocess.run(["openssl", "x509", "-in", str(out / "ca.crt"), "-noout", "-text"],
                        capture_output=True, text=True, check=True).stdout
    assert "CA:TRUE" in ca


def test_certtool_verifies_chain(out):
    r = subprocess.run(["certtool", "--verify", "--load-ca-certificate", str(out / "ca.crt"),
                        "--infile", str(out / "tls.crt")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Chain verification output: Verified" in r.stdout


def test_key_matches_certificate(out):
    pub_cert = subprocess.run(["openssl", "x509", "-in", str(out / "tls.crt"), "-noout", "-pubkey"],
                              capture_output=True, text=True, check=True).stdout
    pub_key = subprocess.run(["openssl", "pkey", "-in", str(out / "tls.key"), "-pubout"],
                             capture_output=True, text=True, check=True).stdout
    assert pub_cert == pub_key


def test_check_exit_codes(out, tmp_path):
    ok = run("--out-dir", str(out), "--check", "--dns", "zerowire-webhook.zerowire.svc", "--ip", "127.0.0.1")
    assert ok.returncode == 0
    missing = run("--out-dir", str(out), "--check", "--dns", "elsewhere.example", check=False)
    assert missing.returncode == 2 and "elsewhere.example" in missing.stderr
    empty = run("--out-dir", str(tmp_path / "nothing"), "--check", "--dns", "x", check=False)
    assert empty.returncode == 2
    short = tmp_path / "short"
    run("--out-dir", str(short), "--dns", "x", "--days", "10")
    renew = run("--out-dir", str(short), "--check", "--dns", "x", check=False)
    assert renew.returncode == 1 and "30 days" in renew.stderr


def test_refuses_overwrite_and_reuses_ca(out):
    again = run("--out-dir", str(out), "--dns", "x", check=False)
    assert again.returncode != 0 and "exists" in again.stderr
    ca_before = (out / "ca.crt").read_text()
    cert_before = (out / "tls.crt").read_text()
    run("--out-dir", str(out), "--reuse-ca", "--dns", "renewed.example")
    assert (out / "ca.crt").read_text() == ca_before
    assert (out / "tls.crt").read_text() != cert_before
    run("--out-dir", str(out), "--check", "--dns", "renewed.example")


@pytest.mark.parametrize("args", [
    [],                                     # no --out-dir
    ["--out-dir", "/tmp/x", "--service", "s"],  # service without namespace
    ["--out-dir", "/tmp/x", "--ip", "999.1.1.1"],
    ["--out-dir", "/tmp/x", "--dns", "x", "--days", "abc"],
])
def test_bad_arguments(args):
    r = run(*args, check=False)
    assert r.returncode != 0
    assert r.stderr


def test_help_and_version():
    assert "usage: zerowire-certs" in run("--help").stdout
    assert run("--version").stdout.startswith("zerowire-certs ")
