"""A TLS test backend ("pod"): harness/backend.py's HTTP/1.1 server behind
TLS 1.2/1.3 on every port, with a self-signed ECDSA certificate for CN
<name> made at start by openssl (callers that verify it are not the point:
zerowire-proxy speaks TLS to it because its Service port says so). The
handshake runs in the connection's handler thread, never in the accept
loop. Every response of backend.py, plus X-Backend-TLS: <version>.

  python3 -m harness.tlsbackend --name web-1 --ip 10.0.0.2 --ports 8443 [--delay-ms 1000]
"""

import os
import ssl
import subprocess
import tempfile

from harness import backend


def context(name):
    """A server SSLContext with a fresh self-signed certificate for name."""
    d = tempfile.mkdtemp(prefix="zw-tlsbackend.")
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "crt.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=" + name, "-keyout", key, "-out", crt],
                   check=True, capture_output=True, timeout=30)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(crt, key)
    return ctx


class Handler(backend.Handler):
    def setup(self):
        self.request.do_handshake()
        super().setup()

    def end_headers(self):
        self.send_header("X-Backend-TLS", self.request.version())
        super().end_headers()


def serve(name, ip, ports, delay_ms):
    ctx = context(name)

    class Server(backend.Server):
        def get_request(self):
            sock, addr = super().get_request()
            return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

        def handle_error(self, request, client_address):
            pass  # a client that fails the handshake is its own business

    return backend.serve(name, ip, ports, delay_ms, server=Server, base=Handler)


def main(argv=None):
    backend.run(serve, "tlsbackend", "8443", argv)


if __name__ == "__main__":
    main()
