"""A gRPC test backend ("pod"): a grpcio server (HTTP/2 cleartext) on one IP
and one or more ports, service zerowire.test.Echo with raw-bytes messages
(no generated code). Started by the kubelet stand-in for Pods annotated
zerowire.test/backend: grpc; prints READY on stdout once it listens (after
--delay-ms, like a container starting up).

  /zerowire.test.Echo/Unary         one message in, "pod=<name> got=<message>" out
  /zerowire.test.Echo/ServerStream  message "<n>": n replies "pod=<name> i=<i>"
  /zerowire.test.Echo/ClientStream  n messages in: "pod=<name> n=<n> bytes=<total>"
  /zerowire.test.Echo/Bidi          each message echoed as "pod=<name> echo=<message>"
  /zerowire.test.Echo/Fail          ends with INVALID_ARGUMENT, message "refused: <message>"
Every call sends x-backend-pod in its initial metadata and x-backend-trailer
in its trailing metadata, so a test sees both sides of the response pass.

  python3 -m harness.grpcbackend --name web-1 --ip 10.0.0.2 --ports 50051 [--delay-ms 500]
"""

import signal
import sys
import threading
from concurrent import futures

import grpc

from harness.backend import run

SERVICE = "zerowire.test.Echo"


def handlers(name):
    """The generic handler of SERVICE for pod name."""
    tag = ("pod=%s" % name).encode()

    def begin(ctx):
        ctx.send_initial_metadata((("x-backend-pod", name),))
        ctx.set_trailing_metadata((("x-backend-trailer", name),))

    def unary(req, ctx):
        begin(ctx)
        return tag + b" got=" + req

    def server_stream(req, ctx):
        begin(ctx)
        for i in range(int(req or b"0")):
            yield tag + b" i=%d" % i

    def client_stream(it, ctx):
        begin(ctx)
        n = total = 0
        for m in it:
            n += 1
            total += len(m)
        return tag + b" n=%d bytes=%d" % (n, total)

    def bidi(it, ctx):
        begin(ctx)
        for m in it:
            yield tag + b" echo=" + m

    def fail(req, ctx):
        begin(ctx)
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "refused: " + req.decode(errors="replace"))

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    })


def serve(name, ip, ports, delay_ms, out=sys.stdout):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if stop.wait(delay_ms / 1000.0):
        return 0
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), handlers=[handlers(name)])
    for p in ports:
        if server.add_insecure_port("%s:%d" % (ip, p)) != p:
            out.write("ERROR bind %s:%d\n" % (ip, p))
            out.flush()
            return 1
    server.start()
    out.write("READY %s %s %s\n" % (name, ip, ",".join(str(p) for p in ports)))
    out.flush()
    stop.wait()
    server.stop(1).wait()
    return 0


def main(argv=None):
    run(serve, "grpcbackend", "50051", argv)

if __name__ == "__main__":
    main()
