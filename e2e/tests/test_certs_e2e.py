"""The webhook's self-managed certificate against the real kube-apiserver:
two webhook processes started at once end with one Secret and one caBundle; the
kube-apiserver accepts the generated certificate when it calls the webhook (the
chart's MutatingWebhookConfiguration, url mode, caBundle filled in by the webhook);
a rotation forced during continuous `kubectl apply` traffic loses no admission."""
import base64
import os
import signal
import ssl
import subprocess
import threading
import time

import pytest
import yaml

from harness import util

ROOT = util.REPO
BIN = os.path.join(ROOT, "build", "san", "bin", "zerowire-webhook")
HELM = os.environ.get("ZW_HELM") or os.path.join(ROOT, "tools", "bin", "helm")
RELEASE = "zwcerts"
MWC = "zwcerts-zerowire"


class Webhook:
    def __init__(self, cluster, ns, tmp, name):
        self.port = util.free_port()
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "a")
        self.argv = [BIN, "--kubeconfig", cluster.kubeconfig, "--listen", "127.0.0.1:%d" % self.port,
                     "--cert-mode", "self", "--cert-secret", ns + "/zerowire-webhook-tls",
                     "--webhook-config", MWC, "--webhook-service", ns + "/zerowire-webhook",
                     "--cert-ips", "127.0.0.1", "--cert-check-interval", "2", "--reconcile=false",
                     "--proxy-namespace", ns]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_listening(self):
        util.wait_for(lambda: "event=listening" in self.logs() or self.proc.poll() is not None,
                      60, 0.05, "webhook listening")
        assert self.proc.poll() is None, self.logs()

    def served_cert(self):
        return ssl.get_server_certificate(("127.0.0.1", self.port))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def logs(self):
        with open(self.log_path) as f:
            return f.read()


def chart_mwc(port, failure_policy):
    r = subprocess.run([HELM, "template", RELEASE, os.path.join(ROOT, "charts", "zerowire"), "-n", "zwcerts",
                        "--set", "webhook.url=https://127.0.0.1:%d/mutate" % port,
                        "--set", "webhook.failurePolicy=" + failure_policy,
                        "--set", "webhook.caBundleFromWebhook=true",
                        "--show-only", "templates/mutatingwebhook.yaml"],
                       capture_output=True, text=True, timeout=60, check=True)
    mwc = yaml.safe_load(r.stdout)
    assert "caBundle" not in mwc["webhooks"][0]["clientConfig"]  # the webhook fills it in
    return yaml.safe_dump(mwc)


def kedify_so(ns, name):
    return """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: %s, namespace: %s}
spec:
  scaleTargetRef: {name: %s}
  triggers:
    - type: kedify-http
      metadata: {hosts: %s.example, service: %s, port: "8080", scalingMetric: requestRate}
""" % (name, ns, name, name, name)


def trigger_type(cluster, ns, name):
    so = cluster.api("GET", "/apis/keda.sh/v1alpha1/namespaces/%s/scaledobjects/%s" % (ns, name))
    return so["spec"]["triggers"][0]["type"]


@pytest.fixture()
def env(cluster, tmp_path):
    assert os.path.exists(HELM), "helm missing: run scripts/install-helm.sh (make setup does)"
    ns = cluster.create_namespace("zwcerts")
    hooks = []
    yield cluster, ns, tmp_path, hooks
    for h in hooks:
        assert h.stop() == 0, h.logs()  # a sanitizer report fails the exit status
    cluster.kubectl("delete", "mutatingwebhookconfiguration", MWC, "--ignore-not-found", check=False)


def test_two_webhooks_one_certificate_accepted_by_apiserver(env):
    cluster, ns, tmp, hooks = env
    a, b = Webhook(cluster, ns, str(tmp), "a"), Webhook(cluster, ns, str(tmp), "b")
    hooks += [a, b]
    cluster.apply(chart_mwc(a.port, "Fail"))
    a.start()
    b.start()  # at the same moment: both find no Secret
    a.wait_listening()
    b.wait_listening()

    secret = cluster.api("GET", "/api/v1/namespaces/%s/secrets/zerowire-webhook-tls" % ns)
    ca_bundle = base64.b64decode(secret["data"]["ca-bundle.crt"]).decode()
    tls_crt = base64.b64decode(secret["data"]["tls.crt"]).decode()
    # One certificate: both processes serve the one stored in the Secret.
    norm = lambda pem: ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(pem))
    assert norm(a.served_cert()) == norm(tls_crt) == norm(b.served_cert())
    # One caBundle, and it verifies both servers for 127.0.0.1.
    mwc = cluster.api("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/" + MWC)
    assert base64.b64decode(mwc["webhooks"][0]["clientConfig"]["caBundle"]).decode() == ca_bundle
    ctx = ssl.create_default_context(cadata=ca_bundle)
    for h in (a, b):
        with ctx.wrap_socket(__import__("socket").create_connection(("127.0.0.1", h.port)),
                             server_hostname="127.0.0.1") as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3")

    # The API server calls the webhook with that caBundle (failurePolicy Fail: a TLS
    # failure would reject the apply) and the kedify-http trigger comes out converted.
    cluster.apply(kedify_so(ns, "web"))
    assert trigger_type(cluster, ns, "web") == "external-push"


def test_rotation_under_apply_traffic_loses_no_admission(env):
    cluster, ns, tmp, hooks = env
    w = Webhook(cluster, ns, str(tmp), "w")
    hooks.append(w)
    cluster.apply(chart_mwc(w.port, "Fail"))
    w.start()
    w.wait_listening()
    util.wait_for(lambda: "caBundle" in cluster.api(
        "GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/" + MWC)["webhooks"][0][
        "clientConfig"], 30, 0.1, "caBundle filled in")

    before = w.served_cert()
    stop = threading.Event()
    results = []

    def traffic():
        i = 0
        while not stop.is_set():
            name = "so-%d" % i
            r = cluster.kubectl("apply", "-f", "-", input=kedify_so(ns, name), check=False)
            results.append((name, r.returncode, r.stderr))
            i += 1

    t = threading.Thread(target=traffic)
    t.start()
    try:
        certs = {before}
        for _ in range(3):
            time.sleep(2)
            w.proc.send_signal(signal.SIGUSR1)  # re-issue the serving certificate now
            util.wait_for(lambda: w.served_cert() not in certs, 20, 0.1, "a new certificate served")
            certs.add(w.served_cert())
        time.sleep(2)
    finally:
        stop.set()
        t.join(timeout=120)
    assert len(certs) == 4, "three rotations, four certificates"
    failed = [(n, e) for n, rc, e in results if rc != 0]
    assert not failed, failed
    assert len(results) >= 10, "enough admissions during the rotations: %d" % len(results)
    for name, _, _ in results:
        assert trigger_type(cluster, ns, name) == "external-push", name
    assert w.logs().count("event=cert_swapped") == 3
