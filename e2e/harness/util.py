"""Small helpers shared by the harness: free ports, bounded waits, paths."""

import os
import socket
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def shared_dir():
    """The ../shared directory (env ZW_SHARED overrides); may not exist."""
    return os.environ.get("ZW_SHARED") or os.path.join(os.path.dirname(REPO), "shared")


_handed_out = []  # ports free_port returned lately (most recent last)


def free_port(host="127.0.0.1"):
    """A TCP port that is free on host right now (bind to 0, read, close)
    and not returned by an earlier call in this process lately: the kernel
    may hand a just-closed port out again, and two listeners of one
    process given the same port collide."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            break
    _handed_out.append(port)
    del _handed_out[:-4096]
    return port


def free_ports(n, host="127.0.0.1"):
    """n distinct free ports (all sockets held open until all are chosen)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def port_open(host, port, timeout=0.2):
    """True when a TCP connect to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Calls pred() until it returns a truthy value (returned) or timeout
    seconds pass (TimeoutError naming `what` and the last value/exception)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


def wait_port(host, port, timeout=10.0):
    """Waits until host:port accepts TCP connections."""
    return wait_for(lambda: port_open(host, port), timeout, what="%s:%d to listen" % (host, port))
