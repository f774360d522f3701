#!/usr/bin/python3
"""Writes seed inputs for proxy/fuzz/fuzz_grpc.c into
proxy/fuzz/corpus/fuzz_grpc/: HTTP/2 frames (after the preface the harness
sends) carrying KEDA external scaler calls, valid and broken. HPACK and
protobuf are encoded by hand so no library is needed."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_grpc")


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name, value):
    n, v = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def headers(sid, path, end_stream=False, ctype="application/grpc"):
    block = (literal(":method", "POST") + literal(":scheme", "http") + literal(":path", path) +
             literal(":authority", "zerowire") + literal("content-type", ctype) +
             literal("te", "trailers"))
    return frame(1, 0x4 | (0x1 if end_stream else 0), sid, block)


def pb_str(field, s):
    b = s.encode()
    return bytes([field << 3 | 2]) + hpack_int(len(b), 7) + b  # short strings only


def ref(name, ns, meta):
    out = pb_str(1, name) + pb_str(2, ns)
    for k, v in meta.items():
        entry = pb_str(1, k) + pb_str(2, v)
        out += bytes([3 << 3 | 2, len(entry)]) + entry
    return out


def grpc_msg(body, flag=0):
    return bytes([flag]) + struct.pack(">I", len(body)) + body


def data(sid, payload, end_stream=True):
    return frame(0, 0x1 if end_stream else 0, sid, payload)


SVC = "/externalscaler.ExternalScaler/"
APP = ref("app", "demo", {"service": "app", "hosts": "app.example.com"})
seeds = {
    "isactive": headers(1, SVC + "IsActive") + data(1, grpc_msg(APP)),
    "stream": headers(1, SVC + "StreamIsActive") + data(1, grpc_msg(APP)),
    "stream_rst": headers(1, SVC + "StreamIsActive") + data(1, grpc_msg(APP)) +
    frame(3, 0, 1, struct.pack(">I", 8)),
    "metricspec": headers(1, SVC + "GetMetricSpec") + data(1, grpc_msg(APP)),
    "metrics": headers(1, SVC + "GetMetrics") +
    data(1, grpc_msg(bytes([0x0a, len(APP)]) + APP + pb_str(2, "demo-app-requestrate"))),
    "notfound": headers(1, SVC + "IsActive") + data(1, grpc_msg(ref("x", "demo", {"interceptorRoute": "y"}))),
    "unknown": headers(1, SVC + "NoSuchMethod") + data(1, grpc_msg(APP)),
    "specstream": headers(1, SVC + "StreamMetricSpec") + data(1, grpc_msg(APP)),
    "malformed": headers(1, SVC + "IsActive") + data(1, grpc_msg(b"\x0a\x7fabc")),
    "two_msgs": headers(1, SVC + "IsActive") + data(1, grpc_msg(APP) + grpc_msg(APP)),
    "compressed": headers(1, SVC + "IsActive") + data(1, grpc_msg(APP, 1)),
    "no_body": headers(1, SVC + "IsActive", end_stream=True),
    "bad_ctype": headers(1, SVC + "IsActive", ctype="text/plain") + data(1, grpc_msg(APP)),
    "split": headers(1, SVC + "GetMetrics") + data(1, grpc_msg(APP)[:3], False) +
    data(1, grpc_msg(APP)[3:]),
    "many": b"".join(headers(s, SVC + "IsActive") + data(s, grpc_msg(APP)) for s in range(1, 40, 2)),
    "ping_goaway": frame(6, 0, 0, b"12345678") + frame(7, 0, 0, struct.pack(">II", 0, 0)),
}

os.makedirs(OUT, exist_ok=True)
for name, blob in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(blob)
print("wrote %d seeds to %s" % (len(seeds), OUT))
