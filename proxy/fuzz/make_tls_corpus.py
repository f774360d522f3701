#!/usr/bin/python3
"""Writes seed inputs for proxy/fuzz/fuzz_tls.c into
proxy/fuzz/corpus/fuzz_tls/: real ClientHellos of OpenSSL (Python's ssl over
memory BIOs, no network): TLS 1.3 with ALPN h2 and http/1.1 and SNI, TLS 1.2
only, no SNI, no ALPN, an SNI the store does not know, and a TLS 1.3
ClientHello followed by a truncated and a garbled record."""
import os
import ssl

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_tls")


def client_hello(sni="fuzz.test", alpn=("h2", "http/1.1"), minv=None, maxv=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def main():
    os.makedirs(OUT, exist_ok=True)
    v12 = ssl.TLSVersion.TLSv1_2
    seeds = {
        "tls13_h2_sni": client_hello(),
        "tls12_only": client_hello(minv=v12, maxv=v12),
        "tls12_http11": client_hello(alpn=("http/1.1",), minv=v12, maxv=v12),
        "no_sni": client_hello(sni=None),
        "no_alpn": client_hello(alpn=()),
        "unknown_sni": client_hello(sni="a.w.fuzz.test"),
    }
    hello = seeds["tls13_h2_sni"]
    seeds["hello_then_truncated_record"] = hello + bytes([23, 3, 3, 0x40, 0x00]) + b"\x00" * 32
    seeds["hello_then_garbage_record"] = hello + bytes([23, 3, 3, 0, 40]) + bytes(range(40))
    seeds["hello_split_header"] = hello[:3]
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
