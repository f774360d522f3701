"""Fault suite against the real control plane (issue #10): zerowire-proxy
(ASan build) watching a kube-apiserver 1.20.2 while the apiserver restarts
mid-watch, and while etcd is compacted behind a disconnected watch so that
it resumes with a too-old resourceVersion (410 Gone) and must relist.

This module starts its own etcd + kube-apiserver with the watch cache off
(--watch-cache=false): every watch is then served from etcd, so a
compaction really expires the proxy's resourceVersion for ScaledObjects and
EndpointSlices (with the cache on, only the cache's window decides). The
session `cluster` is left alone (its apiserver is not restarted here).

What "exact state" means here: the proxy's /queue lists exactly the targets
that exist (deleted ones gone, created ones there), and /status lists for
each Service exactly its current ready endpoints, each once. Traffic to a
target with a running backend keeps flowing through the outage on the last
known state (a load loop, 0 failures)."""
import base64
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import types

import pytest

from harness.cluster import Cluster, apiserver_binary

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "proxy", "tests"))
sys.path.insert(0, os.path.join(REPO, "lib", "tests"))
from zwproxy import Backend, Proxy, free_port, wait_for  # noqa: E402
from proxy_faults_test import Load  # noqa: E402
from kube_live_test import PausableProxy  # noqa: E402


@pytest.fixture(scope="module")
def kc(request):
    """A private control plane with the watch cache off (see the module doc)."""
    cap = request.config.pluginmanager.getplugin("capturemanager")
    if cap is None:
        apiserver_binary()
    else:
        with cap.global_and_fixture_disabled():
            apiserver_binary()
    c = Cluster(extra_apiserver_args=["--watch-cache=false"], name="zw-faults")
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def ns(kc):
    """A fresh namespace (the private control plane goes away with the module)."""
    return kc.create_namespace("faults")


@pytest.fixture
def backends():
    """Backends on 127.0.0.21-24, one port (the endpoints of one Service share it)."""
    port = free_port("127.0.0.21")
    bs = {}
    for i in (21, 22, 23, 24):
        ip = "127.0.0.%d" % i
        bs[ip] = Backend(ip, port, name="pod%d" % i)
    yield port, bs
    for b in bs.values():
        b.stop()


def so(ns, name, hosts, service=None):
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"scaleTargetRef": {"name": name},
                     "triggers": [{"type": "external-push", "metadata": {
                         "scalerAddress": "zerowire-proxy.zerowire:9090", "service": service or name,
                         "port": "80", "hosts": hosts}}]}}


def eslice(ns, name, service, ips, port):
    return {"apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": "", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}


SO_PATH = "/apis/keda.sh/v1alpha1/namespaces/%s/scaledobjects"
ES_PATH = "/apis/discovery.k8s.io/v1beta1/namespaces/%s/endpointslices"


def create(kc, path, obj):
    kc.api("POST", path % obj["metadata"]["namespace"], obj)


def delete(kc, path, ns, name):
    kc.api("DELETE", (path % ns) + "/" + name)


def replace_slice(kc, ns, obj):
    cur = kc.api("GET", (ES_PATH % ns) + "/" + obj["metadata"]["name"])
    obj["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
    kc.api("PUT", (ES_PATH % ns) + "/" + obj["metadata"]["name"], obj)


def targets(p):
    return sorted(p.queue())


def ready_endpoints(p):
    """{target key: [ready endpoints as /status lists them, in order]}."""
    st, body = p.admin_get("/status")
    assert st == 200
    out = {}
    for key, eps in re.findall(r"<tr><td>([^<]+)</td><td>[^<]*</td><td>([^<]*)</td>", body.decode()):
        out[key] = eps.split()
    return out


def eps_of(p, key):
    return ready_endpoints(p).get(key)


def kube_proxy(tmp_path, kubeconfig, ns):
    return Proxy(tmp_path, kubeconfig=kubeconfig, namespaces=[ns], args=["--max-connections", "1000"])


def relay_kubeconfig(kc, relay_port, path):
    with open(kc.kubeconfig) as f:
        doc = json.load(f)
    doc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:%d" % relay_port
    with open(path, "w") as f:
        json.dump(doc, f)
    os.chmod(path, 0o600)
    return path


def log_events(p, event):
    return [line for line in p.output().splitlines() if "event=%s " % event in line or
            line.endswith("event=%s" % event)]


def test_apiserver_restart_mid_watch(kc, ns, backends, tmp_path):
    """The proxy watches a live apiserver; the apiserver is killed and
    started again on the same etcd; a load loop on web.test (two running
    backends) runs throughout. Right after the restart, while the proxy is
    still reconnecting: web's EndpointSlice changes (.22 out, .23 in), a
    second slice adds .24, ScaledObject `gone` is deleted, `fresh` is
    created and `web` gains host web2.test. Checks: 0 failed requests to
    web.test through the outage; the proxy logged watch retries; it ends
    with exactly targets {fresh, web}, web's ready endpoints exactly .21,
    .23, .24 (each once); gone.test answers 404 and web2.test 200; a change
    made later still arrives (the watch goes on)."""
    port, bs = backends
    create(kc, SO_PATH, so(ns, "web", "web.test"))
    create(kc, SO_PATH, so(ns, "gone", "gone.test"))
    create(kc, ES_PATH, eslice(ns, "web-a", "web", ["127.0.0.21", "127.0.0.22"], port))
    p = kube_proxy(tmp_path, kc.kubeconfig, ns)
    web = "%s/web/0" % ns
    load = None
    try:
        wait_for(lambda: targets(p) == ["%s/gone/0" % ns, web], timeout=20, what="both targets")
        wait_for(lambda: eps_of(p, web) == ["127.0.0.21:%d" % port, "127.0.0.22:%d" % port], timeout=20,
                 what="web's endpoints")
        load = Load(p.port, host="web.test")
        wait_for(lambda: load.ok > 20, timeout=10, what="load flowing")
        kc.restart_apiserver()
        replace_slice(kc, ns, eslice(ns, "web-a", "web", ["127.0.0.21", "127.0.0.23"], port))
        create(kc, ES_PATH, eslice(ns, "web-b", "web", ["127.0.0.24"], port))
        delete(kc, SO_PATH, ns, "gone")
        create(kc, SO_PATH, so(ns, "fresh", "fresh.test"))
        kc.api("PATCH", (SO_PATH % ns) + "/web",
               {"spec": {"triggers": [{"type": "external-push", "metadata": {
                   "scalerAddress": "zerowire-proxy.zerowire:9090", "service": "web", "port": "80",
                   "hosts": "web.test,web2.test"}}]}},
               content_type="application/merge-patch+json")
        want_eps = sorted("127.0.0.%d:%d" % (i, port) for i in (21, 23, 24))
        wait_for(lambda: targets(p) == ["%s/fresh/0" % ns, web], timeout=40, what="targets after restart")
        wait_for(lambda: sorted(eps_of(p, web) or []) == want_eps, timeout=40, what="endpoints after restart")
        wait_for(lambda: p.get("/", host="web2.test")[0].status == 200, timeout=20, what="web2.test routed")
        ok, failed = load.finish()
        assert failed == [] and ok > 50, (ok, failed[:5])
        assert log_events(p, "watch_retry"), "the watches must have lost the apiserver"
        eps = eps_of(p, web)
        assert len(eps) == len(set(eps)) == 3, eps  # nothing doubled
        r, body = p.get("/", host="gone.test")
        assert r.status == 404
        # The three current endpoints get traffic, .22 none any more.
        before = {ip: b.hits for ip, b in bs.items()}
        for _ in range(60):
            assert p.get("/", host="web.test")[0].status == 200
        got = {ip: bs[ip].hits - before[ip] for ip in bs}
        assert got["127.0.0.22"] == 0 and all(got["127.0.0.%d" % i] > 0 for i in (21, 23, 24)), got
        # The watch goes on after the reconnect.
        delete(kc, ES_PATH, ns, "web-b")
        wait_for(lambda: sorted(eps_of(p, web) or []) == want_eps[:2], timeout=20, what="later change")
    finally:
        if load:
            load.finish()
        assert p.stop() == 0


def test_compaction_410_relist_exact_state(kc, ns, backends, tmp_path):
    """The proxy reaches the apiserver through a relay that is cut (and then
    refuses connections) while 12 targets and 2 slices exist. Meanwhile: 5
    ScaledObjects deleted, 1 changes its host, 5 created; slice web-a
    rewritten (.22 -> .23), slice web-b (.24) deleted, slice web-c (.22)
    created; 40 more writes on a churn object; then etcd is compacted at its
    current revision. The relay opens again. Checks: the proxy logged
    watch_relist with 410 for ScaledObjects and EndpointSlices; it ends with
    exactly the 12 current targets (the 5 deleted gone, the 5 new there),
    web's ready endpoints exactly .21, .22, .23, each once; the old host of
    the changed target answers 404; the load loop on web.test saw 0
    failures while cut off (last known state: .21, .22, .24 kept serving);
    the watch goes on after the relist (a new ScaledObject appears)."""
    port, bs = backends
    relay = PausableProxy(kc.port)
    cfg = relay_kubeconfig(kc, relay.port, str(tmp_path / "relay-kubeconfig"))
    for i in range(11):
        create(kc, SO_PATH, so(ns, "t%d" % i, "t%d.test" % i))
    create(kc, SO_PATH, so(ns, "web", "web.test"))
    create(kc, ES_PATH, eslice(ns, "web-a", "web", ["127.0.0.21", "127.0.0.22"], port))
    create(kc, ES_PATH, eslice(ns, "web-b", "web", ["127.0.0.24"], port))
    p = kube_proxy(tmp_path, cfg, ns)
    web = "%s/web/0" % ns
    load = None
    try:
        wait_for(lambda: len(targets(p)) == 12, timeout=20, what="12 targets")
        wait_for(lambda: sorted(eps_of(p, web) or []) ==
                 sorted("127.0.0.%d:%d" % (i, port) for i in (21, 22, 24)), timeout=20, what="3 endpoints")
        load = Load(p.port, host="web.test")
        relay.pause()
        wait_for(lambda: log_events(p, "watch_retry"), timeout=20, what="the proxy notices the cut")
        for i in range(5):
            delete(kc, SO_PATH, ns, "t%d" % i)
        kc.api("PATCH", (SO_PATH % ns) + "/t5",
               {"spec": {"triggers": [{"type": "external-push", "metadata": {
                   "scalerAddress": "zerowire-proxy.zerowire:9090", "service": "t5", "port": "80",
                   "hosts": "t5-new.test"}}]}},
               content_type="application/merge-patch+json")
        for i in range(11, 16):
            create(kc, SO_PATH, so(ns, "t%d" % i, "t%d.test" % i))
        replace_slice(kc, ns, eslice(ns, "web-a", "web", ["127.0.0.21", "127.0.0.23"], port))
        delete(kc, ES_PATH, ns, "web-b")
        create(kc, ES_PATH, eslice(ns, "web-c", "web", ["127.0.0.22"], port))
        create(kc, "/api/v1/namespaces/%s/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                        "metadata": {"name": "churn", "namespace": ns}})
        for i in range(40):
            kc.api("PATCH", "/api/v1/namespaces/%s/configmaps/churn" % ns, {"data": {"n": str(i)}},
                   content_type="application/merge-patch+json")
        kc.compact_etcd()
        relay.resume()
        want_targets = sorted(["%s/t%d/0" % (ns, i) for i in range(5, 16)] + [web])
        want_eps = sorted("127.0.0.%d:%d" % (i, port) for i in (21, 22, 23))
        wait_for(lambda: targets(p) == want_targets, timeout=45, what="exact targets after the relist")
        wait_for(lambda: sorted(eps_of(p, web) or []) == want_eps, timeout=45, what="exact endpoints")
        ok, failed = load.finish()
        assert failed == [] and ok > 50, (ok, failed[:5])
        relists = log_events(p, "watch_relist")
        print("\n".join(relists))
        assert any("kind=ScaledObject " in r for r in relists), relists
        assert any("kind=EndpointSlice " in r for r in relists), relists
        assert all("410" in r for r in relists), relists
        eps = eps_of(p, web)
        assert len(eps) == len(set(eps)) == 3, eps
        assert p.get("/", host="t5.test")[0].status == 404
        assert p.get("/", host="t0.test")[0].status == 404
        # The watch goes on from the relisted resourceVersion.
        create(kc, SO_PATH, so(ns, "t16", "t16.test"))
        wait_for(lambda: "%s/t16/0" % ns in targets(p), timeout=20, what="a later ScaledObject")
        assert len(targets(p)) == 13
    finally:
        if load:
            load.finish()
        relay.close()
        assert p.stop() == 0


def ingress(ns, name, service):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"rules": [{"host": service + ".example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}}


ING_PATH = "/apis/networking.k8s.io/v1/namespaces/%s/ingresses"


def test_webhook_reconciler_relists_after_410(kc, ns, tmp_path):
    """zerowire-webhook's reconciler (url mode, --resync 5) reaches the
    apiserver through a relay. Ingresses ia, ib, ic name Services a, b, c;
    ScaledObjects exist for a and b, so ia and ib are rewritten to the
    proxy. The relay is cut; ScaledObject b is deleted and one for c
    created; 40 churn writes; etcd compacted; the relay opens again.
    Checks: the webhook logged source_relist with 410 for scaledobjects; ib
    is restored exactly to its original backend (the deletion, whose event
    was compacted away, was not lost) with no zerowire annotation left; ic
    is rewritten (the creation was not lost); ia is still rewritten and
    keeps the original annotation of Service a (nothing applied twice); the
    webhook exits 0 without a sanitizer report."""
    import test_webhook_e2e as wmod
    kc.ensure_namespace(wmod.PROXY_NS)
    relay = PausableProxy(kc.port)
    cfg = relay_kubeconfig(kc, relay.port, str(tmp_path / "relay-kubeconfig"))
    for svc in ("a", "b"):
        create(kc, SO_PATH, so(ns, svc, svc + ".example.com"))
    for svc in ("a", "b", "c"):
        create(kc, ING_PATH, ingress(ns, "i" + svc, svc))

    def ing(name):
        return kc.api("GET", (ING_PATH % ns) + "/" + name)

    def original_of(obj):
        return obj["metadata"].get("annotations", {}).get("zerowire.io/original")

    w = wmod.WebhookProc(types.SimpleNamespace(kubeconfig=cfg), str(tmp_path))
    w.start()
    # The chart's MutatingWebhookConfiguration: the reconciler touches routes
    # and admission rewrites them (the apiserver calls the webhook directly).
    kc.apply(json.dumps(wmod.mwc_manifest(w.port, w.ca)))
    try:
        wait_for(lambda: wmod.points_at_proxy(ing("ia")) and wmod.points_at_proxy(ing("ib")), timeout=40,
                 what="ia and ib rewritten")
        assert not wmod.points_at_proxy(ing("ic"))
        orig_a = original_of(ing("ia"))
        assert orig_a and '"a"' in orig_a, orig_a
        relay.pause()
        wait_for(lambda: "event=source_retry" in w.logs(), timeout=20, what="the webhook notices the cut")
        delete(kc, SO_PATH, ns, "b")
        create(kc, SO_PATH, so(ns, "c", "c.example.com"))
        for i in range(40):
            kc.api("PATCH", (ING_PATH % ns) + "/ic", {"metadata": {"labels": {"churn": str(i)}}},
                   content_type="application/merge-patch+json")
        kc.compact_etcd()
        relay.resume()
        want_b = ingress(ns, "ib", "b")["spec"]
        wait_for(lambda: ing("ib")["spec"] == want_b and original_of(ing("ib")) is None, timeout=40,
                 what="ib restored after the relist")
        wait_for(lambda: wmod.points_at_proxy(ing("ic")), timeout=40, what="ic rewritten after the relist")
        assert wmod.points_at_proxy(ing("ia")) and original_of(ing("ia")) == orig_a
        relists = [line for line in w.logs().splitlines() if "event=source_relist" in line]
        print("\n".join(relists))
        assert any("resource=scaledobjects.keda.sh" in r and "410" in r for r in relists), relists
    finally:
        kc.kubectl("delete", "mutatingwebhookconfiguration", wmod.MWC, "--ignore-not-found", check=False)
        rc = w.stop()
        relay.close()
        logs = w.logs()
        assert "AddressSanitizer" not in logs and "runtime error" not in logs, logs[-5000:]
        assert rc == 0, logs[-3000:]


SELF_MWC = """
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: zw-faults-selfcert}
webhooks:
  - name: ingress.zerowire.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 10
    clientConfig: {url: "https://127.0.0.1:%d/mutate"}
    rules: [{apiGroups: [networking.k8s.io], apiVersions: [v1], resources: [ingresses], operations: [CREATE]}]
    namespaceSelector: {matchLabels: {zerowire.test/faults: %s}}
"""


class DryRunLoad:
    """Threads creating Ingresses with dryRun=All through the apiserver, which
    calls the webhook (failurePolicy Fail): a request fails unless the
    webhook answered and rewrote the Ingress to the proxy."""

    def __init__(self, kc, ns, threads=2):
        import test_webhook_e2e as wmod
        from zwproxy import LoadLoop

        class _Load(LoadLoop):
            def connect(self, i):
                return kc.new_session()

            def one(self, sess, i, n):
                obj = kc.api("POST", ING_PATH % ns, ingress(ns, "dry-%d-%d" % (i, n), "a"),
                             params={"dryRun": "All"}, session=sess, timeout=15)
                if not wmod.points_at_proxy(obj):
                    raise AssertionError("not rewritten: %r" % obj["spec"])
                return True
        self.load = _Load(threads)

    def finish(self):
        return self.load.finish()


def test_selfcert_sigusr1_rotation_under_admission_load(kc, ns, tmp_path):
    """zerowire-webhook in self mode (--cert-mode self, certificate in a
    Secret, caBundle kept in its MutatingWebhookConfiguration) under two
    loads: 2 threads creating Ingresses with dryRun=All through the
    apiserver (the MWC has failurePolicy Fail, so a failed call to the
    webhook fails the request; each answer must be rewritten to the proxy),
    and 4 threads posting reviews straight to /mutate verified against the
    CA from the Secret. SIGUSR1 twice: each time the Secret's tls.crt
    changes, the served certificate changes within 10 s and the CA stays
    the same. Checks: 0 failed reviews on both paths, over 20 through the
    apiserver and 200 direct, 3 distinct certificates served, exit 0
    without a sanitizer report."""
    import test_webhook_e2e as wmod
    sys.path.insert(0, os.path.join(REPO, "webhook", "tests"))
    from webhook_faults_test import ReviewLoad
    create(kc, SO_PATH, so(ns, "a", "a.example.com"))
    kc.api("PATCH", "/api/v1/namespaces/" + ns, {"metadata": {"labels": {"zerowire.test/faults": ns}}},
           content_type="application/merge-patch+json")
    port = free_port()
    kc.apply(SELF_MWC % (port, ns))
    log_path = tmp_path / "webhook.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [wmod.BIN, "--kubeconfig", kc.kubeconfig, "--listen", "127.0.0.1:%d" % port,
         "--cert-mode", "self", "--cert-secret", "%s/zw-tls" % ns, "--webhook-config", "zw-faults-selfcert",
         "--cert-ips", "127.0.0.1", "--watch-namespaces", ns, "--leader-elect=false"],
        stdout=log, stderr=subprocess.STDOUT)
    secret_path = "/api/v1/namespaces/%s/secrets/zw-tls" % ns

    def secret(key):
        try:
            return base64.b64decode(kc.api("GET", secret_path)["data"][key]).decode()
        except Exception:  # noqa: BLE001 - not there yet
            return None

    def served():
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            with ctx.wrap_socket(s) as t:
                return ssl.DER_cert_to_PEM_cert(t.getpeercert(binary_form=True))

    def same_pem(a, b):
        return a is not None and b is not None and a.split() == b.split()

    loads = []
    try:
        wait_for(lambda: secret("tls.crt") and "event=listening" in log_path.read_text() or proc.poll() is not None,
                 timeout=30, what="self-managed certificate and listener")
        assert proc.poll() is None, log_path.read_text()
        ca = secret("ca.crt")
        wait_for(lambda: same_pem(served(), secret("tls.crt")), timeout=10, what="stored certificate served")
        mwc = kc.api("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/zw-faults-selfcert")
        assert mwc["webhooks"][0]["clientConfig"].get("caBundle"), "the webhook must fill in its caBundle"
        wait_for(lambda: wmod.points_at_proxy(kc.api("POST", ING_PATH % ns, ingress(ns, "probe", "a"),
                                                     params={"dryRun": "All"})),
                 timeout=20, what="admission through the apiserver rewrites")
        loads = [DryRunLoad(kc, ns), ReviewLoad(port, ca, obj=ingress(ns, "direct", "a"))]
        certs = [secret("tls.crt")]
        for _ in range(2):
            time.sleep(1.5)
            proc.send_signal(signal.SIGUSR1)
            wait_for(lambda: not same_pem(secret("tls.crt"), certs[-1]), timeout=10, what="re-issued certificate")
            certs.append(secret("tls.crt"))
            wait_for(lambda: same_pem(served(), certs[-1]), timeout=10, what="re-issued certificate served")
            assert same_pem(secret("ca.crt"), ca), "SIGUSR1 re-issues from the same CA"
        time.sleep(1.5)
        (dry_ok, dry_failed), (ok, failed) = [ld.finish() for ld in loads]
        print("through the apiserver: %d, direct: %d" % (dry_ok, ok))
        assert dry_failed == [] and failed == [], (dry_failed[:3], failed[:3])
        assert dry_ok > 20 and ok > 200, (dry_ok, ok)
        assert len({c.strip() for c in certs}) == 3
        assert len(loads[1].certs_seen) >= 2  # the direct clients saw the rotation
        assert log_path.read_text().count("event=cert_swapped") >= 2
    finally:
        for ld in loads:
            ld.finish()
        kc.kubectl("delete", "mutatingwebhookconfiguration", "zw-faults-selfcert", "--ignore-not-found", check=False)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        text = log_path.read_text()
        assert "AddressSanitizer" not in text and "runtime error" not in text, text[-5000:]
        assert proc.returncode == 0, text[-3000:]
