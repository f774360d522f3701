#!/usr/bin/env python3
"""Writes seed inputs for fuzz_h2upstream: backend frame sequences (after the
backend's SETTINGS, which the target sends itself) answering streams 1 and
3: heads with and without END_STREAM, DATA, gRPC trailers, RST_STREAM,
GOAWAY, WINDOW_UPDATE and PING. HPACK by hand: indexed :status 200 (0x88)
and literal fields without indexing."""
import os
import struct
import sys


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def lit(name, value):
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


SETTINGS_ACK = frame(4, 1, 0)
HEAD = b"\x88" + lit(b"content-type", b"application/grpc")
TRAILERS = lit(b"grpc-status", b"0") + lit(b"grpc-message", b"ok")
MSG = b"\x00\x00\x00\x00\x02hi"

SEEDS = {
    "unary": SETTINGS_ACK + frame(1, 4, 1, HEAD) + frame(0, 0, 1, MSG) + frame(1, 5, 1, TRAILERS),
    "trailers_only": SETTINGS_ACK + frame(1, 5, 1, HEAD + lit(b"grpc-status", b"14")),
    "body_end": SETTINGS_ACK + frame(1, 4, 3, HEAD) + frame(0, 1, 3, MSG),
    "reset": SETTINGS_ACK + frame(1, 4, 1, HEAD) + frame(3, 0, 1, struct.pack(">I", 7)) + frame(3, 0, 3, struct.pack(">I", 2)),
    "goaway": SETTINGS_ACK + frame(7, 0, 0, struct.pack(">II", 1, 0)) + frame(1, 5, 1, HEAD),
    "window_ping": SETTINGS_ACK + frame(8, 0, 0, struct.pack(">I", 1 << 20)) + frame(8, 0, 1, struct.pack(">I", 100)) + frame(6, 0, 0, b"12345678"),
    "interim": SETTINGS_ACK + frame(1, 4, 1, b"\x00\x07:status\x03103") + frame(1, 5, 1, HEAD),
    "interim_link": SETTINGS_ACK + frame(1, 4, 3, b"\x00\x07:status\x03100") +
    frame(1, 4, 3, b"\x00\x07:status\x03103" + lit(b"link", b"</a>; rel=preload")) + frame(1, 5, 3, HEAD),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_h2upstream")
os.makedirs(out, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
