"""Fault suite of zerowire-webhook (issue #10): serving-certificate rotation
under admission load, --no-kube with certificate files, loopback only, ASan
binary (a sanitizer report or a non-zero exit fails the test)."""
import base64
import http.client
import json
import os
import shutil
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "proxy", "tests"))
from zwproxy import LoadLoop  # noqa: E402
from webhook_test import INGRESS, Webhook, make_cert, metric, review  # noqa: E402


class ReviewLoad(LoadLoop):
    """Threads posting AdmissionReviews of `obj` (an Ingress the webhook
    rewrites) to /mutate: half of them open
    a new TLS connection (a full handshake) per review, half keep one
    connection alive. Clients verify the server certificate against every
    certificate of the test (each is self-signed for 127.0.0.1), so a
    mismatched or half-written pair being served would fail."""

    def __init__(self, port, cadata, threads=4, obj=INGRESS):
        self.port, self.obj = port, obj
        self.ctx = ssl.create_default_context(cadata=cadata)
        self.certs_seen = set()
        super().__init__(threads)

    def connect(self, i):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)

    def one(self, c, i, n):
        uid = "t%d-%d" % (i, n)
        c.request("POST", "/mutate", json.dumps(review(self.obj, uid=uid)),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        resp = json.loads(data)["response"] if r.status == 200 else {}
        if r.status != 200 or resp.get("uid") != uid or resp.get("allowed") is not True \
                or resp.get("patchType") != "JSONPatch" \
                or not json.loads(base64.b64decode(resp["patch"])):
            raise AssertionError("status %d: %r" % (r.status, data[:200]))
        der = c.sock.getpeercert(binary_form=True)
        with self.lock:
            self.certs_seen.add(der)
        return i % 2 == 1  # even threads: a new handshake per review


def der_of(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def swap_data(cert_dir, version):
    """Points ..data at ..<version> atomically (a Secret volume update)."""
    tmp = os.path.join(cert_dir, "..data_tmp")
    os.symlink("..%s" % version, tmp)
    os.replace(tmp, os.path.join(cert_dir, "..data"))


def test_cert_rotation_under_admission_load(tmp_path):
    """Four client threads post Ingress reviews (2 with a new TLS handshake
    per review, 2 on keep-alive connections) while the certificate files
    change three times: two Secret-volume style swaps of the ..data symlink
    (EC -> RSA -> EC with new keys) and one naive in-place rewrite that
    writes the new certificate 3 s before its key (two reload periods with
    a mismatched pair on disk). Checks: every rotation is served within 6 s;
    during the mismatch the previous certificate stays in use and the error
    is counted; 0 failed reviews (each answered 200, the right uid, allowed,
    a JSON patch), over 200 reviews in total, every served certificate one
    of the four; cert_reloads_total 3."""
    d = str(tmp_path / "certs")
    os.makedirs(d)
    gens = {}
    for v, (cn, kt) in enumerate((("gen1", "ec"), ("gen2", "rsa"), ("gen3", "ec"), ("gen4", "ec")), 1):
        gens[v] = make_cert(str(tmp_path / ("src%d" % v)), cn, key_type=kt)
    for v in (1, 2, 3):
        vd = os.path.join(d, "..v%d" % v)
        os.makedirs(vd)
        shutil.copy(gens[v][0], os.path.join(vd, "tls.crt"))
        shutil.copy(gens[v][1], os.path.join(vd, "tls.key"))
    swap_data(d, "v1")
    for name in ("tls.crt", "tls.key"):
        os.symlink(os.path.join("..data", name), os.path.join(d, name))
    cadata = "".join(open(gens[v][0]).read() for v in gens)

    wh = Webhook(tmp_path, cert_dir=d)
    load = None
    try:
        assert wh.peer_cert() == der_of(gens[1][0])
        load = ReviewLoad(wh.port, cadata)
        timeline = []

        def serve_within(v, secs=6.0):
            t0 = time.monotonic()
            while wh.peer_cert() != der_of(gens[v][0]):
                assert time.monotonic() - t0 < secs, "gen%d not served within %.0fs" % (v, secs)
                time.sleep(0.1)
            timeline.append((v, round(time.monotonic() - t0, 2)))

        time.sleep(1.0)
        swap_data(d, "v2")
        serve_within(2)
        time.sleep(1.0)
        swap_data(d, "v3")
        serve_within(3)
        time.sleep(1.0)
        # In place, certificate first: for 3 s the pair on disk does not match.
        shutil.copy(gens[4][0], os.path.join(d, "..v3", "tls.crt"))
        time.sleep(3.0)
        assert wh.peer_cert() == der_of(gens[3][0]), "a mismatched pair must not be served"
        assert metric(wh.metrics(), "zerowire_webhook_cert_reload_errors_total") >= 1
        shutil.copy(gens[4][1], os.path.join(d, "..v3", "tls.key"))
        serve_within(4)
        time.sleep(1.0)
        ok, failed = load.finish()
        print("rotations served after (s):", timeline, "reviews:", ok)
        assert failed == [], failed[:5]
        assert ok > 200, ok
        assert load.certs_seen <= {der_of(gens[v][0]) for v in gens}
        assert der_of(gens[4][0]) in load.certs_seen and der_of(gens[2][0]) in load.certs_seen
        assert metric(wh.metrics(), "zerowire_webhook_cert_reloads_total") == 3
    finally:
        if load:
            load.finish()
        rc = wh.stop()
        log = wh.log_path.read_text()
        assert "AddressSanitizer" not in log and "runtime error" not in log, log[-4000:]
        assert rc == 0, log[-4000:]
