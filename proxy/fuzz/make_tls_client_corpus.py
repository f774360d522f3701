#!/usr/bin/python3
"""Writes seed inputs for proxy/fuzz/fuzz_tls_client.c into
proxy/fuzz/corpus/fuzz_tls_client/: the first byte picks the client's mode
(bit 0: verify, bit 1: ALPN h2), the rest is a real server flight of
OpenSSL (Python's ssl over memory BIOs, no network) answering a ClientHello
of OpenSSL: TLS 1.3 with ALPN h2, TLS 1.2 with http/1.1, TLS 1.2 without
ALPN, and a fatal alert. The certificate is a throwaway self-signed one made
with the openssl command."""
import os
import ssl
import subprocess
import tempfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_tls_client")


def server_flight(cert, key, alpn, version):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    sctx.minimum_version = sctx.maximum_version = version
    if alpn:
        sctx.set_alpn_protocols([alpn])
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    if alpn:
        cctx.set_alpn_protocols([alpn])
    ci, co, si, so = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = cctx.wrap_bio(ci, co, server_hostname="app.default.svc")
    s = sctx.wrap_bio(si, so, server_side=True)
    for obj in (c, s):
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        if obj is c:
            si.write(co.read())
    return so.read()


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=app.default.svc",
                        "-addext", "subjectAltName=DNS:app.default.svc"], check=True, capture_output=True)
        v12, v13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
        seeds = {
            "tls13_h2": b"\x02" + server_flight(cert, key, "h2", v13),
            "tls13_h2_verify": b"\x03" + server_flight(cert, key, "h2", v13),
            "tls12_http11": b"\x00" + server_flight(cert, key, "http/1.1", v12),
            "tls12_no_alpn_verify": b"\x01" + server_flight(cert, key, None, v12),
            "alert_handshake_failure": b"\x00" + bytes([21, 3, 3, 0, 2, 2, 40]),
        }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
