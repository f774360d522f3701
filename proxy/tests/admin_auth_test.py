"""Black-box tests of the admin and peer endpoints of zerowire-proxy
(docs/security.md "Admin and peer endpoints"): the peer token on /peer/
(401 without, 403 wrong, no state change either way), /peer/cold only for
current targets (404, nothing kept, bounded memory over 100k keys), the
token file re-read without a restart, replicas sharing cold-start signals
with the token, --peer-listen keeping the peer paths off the admin port,
and the token never written to the log. Static mode, loopback only."""
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import BIN, Proxy, free_port, scaledobject, wait_for  # noqa: E402

KEY = "default/app/0"
TOKEN = "peer-token-A1b2C3d4E5f6G7h8"
TOKEN2 = "peer-token-rotated-Z9y8X7w6"
WRONG = "peer-token-wrong-00000000000"
# Small ASan quarantine so RSS follows live memory, not freed blocks.
ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:quarantine_size_mb=1"}
N_UNKNOWN = int(os.environ.get("ZW_ADMIN_UNKNOWN_KEYS", "100000"))


def write_token(path, token):
    """Replaces the file atomically (a new inode), as the kubelet does."""
    with open(str(path) + ".tmp", "w") as f:
        f.write(token + "\n")
    os.replace(str(path) + ".tmp", str(path))


def exchange(port, data, timeout=5):
    """Sends data on a new connection; returns all bytes until the close
    (the admin port answers one request per connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return b"".join(iter(lambda: s.recv(65536), b""))


def call(port, method, target, token=None, raw_auth=None, timeout=5):
    """One request on its own connection; returns (status, body)."""
    auth = raw_auth if raw_auth is not None else ("Bearer " + token if token else None)
    head = "%s %s HTTP/1.1\r\nHost: zw\r\nContent-Length: 0\r\n" % (method, target)
    if auth is not None:
        head += "Authorization: %s\r\n" % auth
    data = exchange(port, (head + "\r\n").encode(), timeout)
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def proxy(tmp, name, token_path=None, args=(), admin_port=None, **kw):
    """A proxy with one target "app" (no endpoints: requests to it are cold)."""
    d = os.path.join(str(tmp), name)
    os.makedirs(d, exist_ok=True)
    extra = list(args)
    if token_path:
        extra += ["--peer-token-file", str(token_path)]
    p = Proxy(d, [scaledobject("app", "app", 80, hosts="app.test")], args=extra, env=ENV,
              ready=admin_port is None, **kw)
    if admin_port is not None:
        p.admin_port = admin_port
        wait_for(lambda: p.admin_get("/readyz")[0] == 200 or p.proc.poll() is not None,
                 what="proxy /readyz")
        assert p.proc.poll() is None, p.output()
    return p


def metrics_api(p):
    """What the scaler tells KEDA about the target (all replicas)."""
    st, body = p.admin_get("/metrics-api/default/app")
    assert st == 200, body
    return json.loads(body)


def active(p):
    return metrics_api(p)["active"]


def assert_no_token_in_log(p, *tokens):
    out = p.output()
    for t in tokens:
        assert t not in out, "token %s... written to the log" % t[:10]


def test_no_token_401_wrong_403_and_nothing_changes(tmp_path):
    tok = tmp_path / "token"
    write_token(tok, TOKEN)
    p = proxy(tmp_path, "a", tok)
    try:
        cold = "/peer/cold?target=" + KEY
        for st, auth in ((401, None), (401, "Basic " + TOKEN), (401, "Bearer"),
                         (403, "Bearer " + WRONG), (403, "Bearer " + TOKEN[:-1]),
                         (403, "Bearer " + TOKEN + "x")):
            assert call(p.admin_port, "POST", cold, raw_auth=auth)[0] == st, auth
        assert call(p.admin_port, "GET", "/peer/counts")[0] == 401
        assert call(p.admin_port, "GET", "/peer/counts", WRONG)[0] == 403
        # No state change: no cold signal taken, the target is not active.
        assert p.metric("zerowire_scaler_peer_cold_received_total") == 0
        assert p.metric("zerowire_scaler_wake_hints") == 0
        assert active(p) is False
        assert p.metric("zerowire_scaler_peer_auth_failures_total", reason="missing") == 4
        assert p.metric("zerowire_scaler_peer_auth_failures_total", reason="wrong") == 4
        # Read-only endpoints need nothing.
        for path in ("/healthz", "/readyz", "/metrics", "/queue", "/status",
                     "/metrics-api/default/app"):
            assert p.admin_get(path)[0] == 200, path
        # The right token: accepted, and the target turns active.
        assert call(p.admin_port, "POST", cold, TOKEN)[0] == 204
        assert call(p.admin_port, "GET", "/peer/counts", TOKEN)[0] == 200
        assert p.metric("zerowire_scaler_peer_cold_received_total") == 1
        assert active(p) is True
        assert_no_token_in_log(p, TOKEN, WRONG)
    finally:
        assert p.stop() == 0


def test_unknown_target_keys_404_and_bounded(tmp_path):
    """N_UNKNOWN distinct unknown keys with the right token: every one 404,
    nothing kept (no wake hint, RSS flat), in bounded time."""
    tok = tmp_path / "token"
    write_token(tok, TOKEN)
    p = proxy(tmp_path, "a", tok)
    try:
        port = p.admin_port
        head = ("POST /peer/cold?target=default/x-%%d-%s HTTP/1.0\r\nAuthorization: Bearer %s"
                "\r\nContent-Length: 0\r\n\r\n" % ("k" * 200, TOKEN))
        # Warm up (allocator arenas, connection structs) before measuring.
        assert call(port, "POST", "/peer/cold?target=default/warm", TOKEN)[0] == 404
        rss0 = p.rss_kib()
        bad = []
        lock = threading.Lock()

        def worker(lo, hi):
            for i in range(lo, hi):
                data = exchange(port, (head % i).encode(), 10)
                if not data.startswith(b"HTTP/1.1 404"):
                    with lock:
                        bad.append(data[:40])

        t0 = time.monotonic()
        n_threads = 4
        step = N_UNKNOWN // n_threads
        with concurrent.futures.ThreadPoolExecutor(n_threads) as ex:
            futs = [ex.submit(worker, k * step, (k + 1) * step) for k in range(n_threads)]
            for f in futs:
                f.result()
        took = time.monotonic() - t0
        n = step * n_threads
        print("%d unknown keys in %.1f s (%.0f/s), RSS %d -> %d KiB" %
              (n, took, n / took, rss0, p.rss_kib()))
        assert not bad, bad[:3]
        assert took < 300
        assert p.metric("zerowire_scaler_peer_cold_unknown_total") == n + 1
        assert p.metric("zerowire_scaler_peer_cold_received_total") == 0
        assert p.metric("zerowire_scaler_wake_hints") == 0
        # 100k keys of 200+ bytes kept would be > 20 MiB; allow allocator noise.
        assert p.rss_kib() - rss0 < 8 * 1024, (rss0, p.rss_kib())
        # The known target still works.
        assert call(port, "POST", "/peer/cold?target=" + KEY, TOKEN)[0] == 204
        assert p.metric("zerowire_scaler_wake_hints") == 1
    finally:
        assert p.stop() == 0


COLD = "/peer/cold?target=" + KEY


def _rotated(tmp_path, grace):
    """A proxy started with TOKEN whose file then holds TOKEN2, once the
    proxy accepts TOKEN2 (re-read within a few seconds, same process)."""
    tok = tmp_path / "token"
    write_token(tok, TOKEN)
    p = proxy(tmp_path, "a", tok, args=["--peer-token-grace", grace])
    pid = p.proc.pid
    assert call(p.admin_port, "POST", COLD, TOKEN)[0] == 204
    assert call(p.admin_port, "POST", COLD, TOKEN2)[0] == 403
    write_token(tok, TOKEN2)
    wait_for(lambda: call(p.admin_port, "POST", COLD, TOKEN2)[0] == 204, timeout=5,
             what="new token accepted")
    assert p.proc.pid == pid and p.proc.poll() is None
    return p, tok


def test_token_file_rotated_without_restart(tmp_path):
    p, tok = _rotated(tmp_path, "0s")
    try:
        cold = COLD
        assert call(p.admin_port, "POST", cold, TOKEN)[0] == 403  # no grace here
        # A broken file keeps the token in use.
        with open(str(tok), "w") as f:
            f.write("two words\n")
        wait_for(lambda: "peer_token_reload_failed" in p.output(), timeout=5,
                 what="reload failure logged")
        assert call(p.admin_port, "POST", cold, TOKEN2)[0] == 204
        assert "peer_token_reloaded" in p.output()
        assert_no_token_in_log(p, TOKEN, TOKEN2, "two words")
    finally:
        assert p.stop() == 0


def test_rotation_grace_keeps_old_token_for_a_while(tmp_path):
    p, _ = _rotated(tmp_path, "2s")
    try:
        cold = COLD
        assert call(p.admin_port, "POST", cold, TOKEN)[0] == 204  # within the grace
        wait_for(lambda: call(p.admin_port, "POST", cold, TOKEN)[0] == 403, timeout=5,
                 what="old token refused after the grace")
    finally:
        assert p.stop() == 0


def _two_peers(tmp_path, tok_a, tok_b):
    pa, pb = free_port(), free_port()
    peers = ["--peers", "127.0.0.1:%d,127.0.0.1:%d" % (pa, pb)]
    a = proxy(tmp_path, "a", tok_a, admin_port=pa,
              args=peers + ["--admin-listen", "127.0.0.1:%d" % pa])
    b = proxy(tmp_path, "b", tok_b, admin_port=pb,
              args=peers + ["--admin-listen", "127.0.0.1:%d" % pb])
    return a, b


def _cold_request(p):
    """Sends one request for the cold target; returns the open socket."""
    s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
    return s


def test_peers_share_cold_signals_with_the_token(tmp_path):
    tok = tmp_path / "token"
    write_token(tok, TOKEN)
    a, b = _two_peers(tmp_path, tok, tok)
    s = None
    try:
        wait_for(lambda: a.metric("zerowire_scaler_peers_live") == 1, what="A sees B")
        wait_for(lambda: b.metric("zerowire_scaler_peers_live") == 1, what="B sees A")
        s = _cold_request(b)  # the cold request hits B
        wait_for(lambda: a.metric("zerowire_scaler_peer_cold_received_total") >= 1,
                 what="A told by B")
        assert active(a) is True
        # B's held request is in A's concurrency (through /peer/counts).
        wait_for(lambda: metrics_api(a)["concurrency"] == 1,
                 what="B's held request counted on A")
        assert b.metric("zerowire_scaler_peer_auth_rejected_total") == 0
        # Both re-read a rotated token and keep talking.
        write_token(tok, TOKEN2)
        time.sleep(1.5)
        before = a.metric("zerowire_scaler_peer_cold_received_total")
        s.close()
        s = _cold_request(b)
        wait_for(lambda: a.metric("zerowire_scaler_peer_cold_received_total") > before,
                 what="cold signal after rotation")
        assert_no_token_in_log(a, TOKEN, TOKEN2)
        assert_no_token_in_log(b, TOKEN, TOKEN2)
    finally:
        if s:
            s.close()
        assert a.stop() == 0
        assert b.stop() == 0


def test_peers_with_different_tokens_are_refused(tmp_path):
    ta, tb = tmp_path / "ta", tmp_path / "tb"
    write_token(ta, TOKEN)
    write_token(tb, WRONG)
    a, b = _two_peers(tmp_path, ta, tb)
    s = None
    try:
        wait_for(lambda: b.metric("zerowire_scaler_peer_auth_rejected_total") >= 1,
                 what="B's polls refused by A")
        assert a.metric("zerowire_scaler_peers_live") == 0
        s = _cold_request(b)
        wait_for(lambda: a.metric("zerowire_scaler_peer_auth_failures_total", reason="wrong")
                 >= 2, what="B's cold signal refused")
        time.sleep(0.3)
        assert a.metric("zerowire_scaler_peer_cold_received_total") == 0
    finally:
        if s:
            s.close()
        assert a.stop() == 0
        assert b.stop() == 0


def test_peer_listen_separates_peer_paths(tmp_path):
    tok = tmp_path / "token"
    write_token(tok, TOKEN)
    peer_port = free_port()
    p = proxy(tmp_path, "a", tok, args=["--peer-listen", "127.0.0.1:%d" % peer_port])
    try:
        cold = "/peer/cold?target=" + KEY
        # The admin port: read-only, the peer paths are not there at all.
        assert call(p.admin_port, "POST", cold, TOKEN)[0] == 404
        assert call(p.admin_port, "GET", "/peer/counts", TOKEN)[0] == 404
        assert p.admin_get("/metrics")[0] == 200
        assert p.admin_get("/metrics-api/default/app")[0] == 200
        # The peer port: the peer paths (token required) and /healthz only.
        assert call(peer_port, "GET", "/healthz")[0] == 200
        for path in ("/metrics", "/queue", "/status", "/readyz", "/metrics-api/default/app"):
            assert call(peer_port, "GET", path)[0] == 404, path
        assert call(peer_port, "POST", cold)[0] == 401
        assert call(peer_port, "POST", cold, WRONG)[0] == 403
        assert call(peer_port, "POST", cold, TOKEN)[0] == 204
        assert p.metric("zerowire_scaler_peer_cold_received_total") == 1
    finally:
        assert p.stop() == 0


def test_without_token_file_peer_paths_refuse_everything(tmp_path):
    p = proxy(tmp_path, "a", None, args=["--peers", "127.0.0.1:1"])
    try:
        cold = "/peer/cold?target=" + KEY
        assert call(p.admin_port, "POST", cold)[0] == 401
        st, body = call(p.admin_port, "POST", cold, "anything")
        assert st == 403 and "no peer token configured" in body
        assert p.metric("zerowire_scaler_peer_cold_received_total") == 0
        assert "peer_token_missing" in p.output()
    finally:
        assert p.stop() == 0


def test_unreadable_token_file_stops_startup(tmp_path):
    for content in (None, "\n", "has space\n"):
        path = tmp_path / "token"
        if content is None:
            if path.exists():
                path.unlink()
        else:
            path.write_text(content)
        r = subprocess.run([BIN, "--targets-file", "/dev/null", "--listen", "127.0.0.1:0",
                            "--admin-listen", "127.0.0.1:0", "--scaler-listen", "127.0.0.1:0",
                            "--peer-token-file", str(path)],
                           capture_output=True, text=True, timeout=20, env=dict(os.environ, **ENV))
        assert r.returncode == 1, (content, r.stderr)
        assert "peer_token_failed" in r.stderr
        assert "has space" not in r.stderr
