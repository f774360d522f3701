"""Self-managed webhook certificate against the real kube-apiserver: two processes
racing end with one Secret and one caBundle; a forced renewal keeps the CA; a reset
caBundle is put back; the stored certificate verifies with OpenSSL and carries the SANs."""
import base64
import os
import subprocess
import threading

ROOT = os.environ.get("ZW_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
TOOL = os.path.join(ROOT, "build", "san", "test", "webhook_tool_selfcert")


def run_tool(cluster, ns, secret, mwc, *extra):
    r = subprocess.run([TOOL, cluster.kubeconfig, ns, secret, ns, "zerowire-webhook", mwc, *extra],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return dict(kv.split("=", 1) for kv in r.stdout.split())


def make_mwc(cluster, name):
    cluster.apply("""
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: %s
webhooks:
  - name: a.zerowire.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    clientConfig: {url: "https://127.0.0.1:1/mutate"}
    rules: [{apiGroups: [""], apiVersions: [v1], resources: [configmaps], operations: [CREATE]}]
    namespaceSelector: {matchLabels: {zerowire.test/never: "x"}}
  - name: b.zerowire.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    clientConfig: {url: "https://127.0.0.1:1/mutate"}
    rules: [{apiGroups: [""], apiVersions: [v1], resources: [configmaps], operations: [CREATE]}]
    namespaceSelector: {matchLabels: {zerowire.test/never: "x"}}
""" % name)


def secret_data(cluster, ns, name):
    obj = cluster.api("GET", "/api/v1/namespaces/%s/secrets/%s" % (ns, name))
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}, obj


def ca_bundles(cluster, name):
    mwc = cluster.api("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/" + name)
    return [base64.b64decode(w["clientConfig"]["caBundle"]).decode() for w in mwc["webhooks"]]


def test_two_replicas_race_to_one_certificate(cluster, tmp_path):
    ns = cluster.create_namespace("selfcert")
    mwc = "zw-selfcert-" + ns
    make_mwc(cluster, mwc)
    results = [None] * 4
    go = threading.Barrier(4)

    def replica(i):
        go.wait()
        results[i] = run_tool(cluster, ns, "zerowire-webhook-tls", mwc, "--ip", "127.0.0.1")

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert all(results)
    assert len({r["cert_sha256"] for r in results}) == 1, results
    assert len({r["ca_sha256"] for r in results}) == 1
    assert sum(r["result"] == "created" for r in results) == 1, results

    data, obj = secret_data(cluster, ns, "zerowire-webhook-tls")
    assert obj["type"] == "kubernetes.io/tls"
    assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "zerowire"
    assert ca_bundles(cluster, mwc) == [data["ca-bundle.crt"]] * 2
    for name in ("ca.crt", "tls.crt"):
        (tmp_path / name).write_text(data[name])
    v = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "tls.crt")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "tls.crt"), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    for san in ("DNS:zerowire-webhook,", "DNS:zerowire-webhook.%s," % ns, "DNS:zerowire-webhook.%s.svc," % ns,
                "DNS:zerowire-webhook.%s.svc.cluster.local" % ns, "IP Address:127.0.0.1"):
        assert san in text

    # A second round changes nothing.
    again = run_tool(cluster, ns, "zerowire-webhook-tls", mwc, "--ip", "127.0.0.1")
    assert again["result"] == "unchanged" and again["patched"] == "0"
    assert again["cert_sha256"] == results[0]["cert_sha256"]


def test_forced_renewal_keeps_ca_and_reset_cabundle_is_restored(cluster):
    ns = cluster.create_namespace("selfcert")
    mwc = "zw-selfcert-" + ns
    make_mwc(cluster, mwc)
    first = run_tool(cluster, ns, "tls", mwc)
    renewed = run_tool(cluster, ns, "tls", mwc, "--force")
    assert renewed["result"] == "created"
    assert renewed["cert_sha256"] != first["cert_sha256"]
    assert renewed["ca_sha256"] == first["ca_sha256"]
    assert renewed["patched"] == "0"  # same CA: the caBundle did not have to change

    # Someone resets the caBundle (e.g. a helm upgrade): the next round puts it back.
    cluster.kubectl("patch", "mutatingwebhookconfiguration", mwc, "--type=json",
                    "-p", '[{"op":"remove","path":"/webhooks/1/clientConfig/caBundle"}]')
    back = run_tool(cluster, ns, "tls", mwc)
    assert back["result"] == "unchanged" and back["patched"] == "1"
    data, _ = secret_data(cluster, ns, "tls")
    assert ca_bundles(cluster, mwc) == [data["ca-bundle.crt"]] * 2


def test_invalid_secret_is_replaced(cluster):
    ns = cluster.create_namespace("selfcert")
    cluster.apply("""
apiVersion: v1
kind: Secret
metadata: {name: tls, namespace: %s}
type: kubernetes.io/tls
data: {tls.crt: %s, tls.key: %s}
""" % (ns, base64.b64encode(b"garbage").decode(), base64.b64encode(b"garbage").decode()))
    r = run_tool(cluster, ns, "tls", "-")
    assert r["result"] == "created"
    assert run_tool(cluster, ns, "tls", "-")["result"] == "unchanged"
