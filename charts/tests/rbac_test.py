"""The chart's RBAC is exactly what the code uses, and enough for it:

- the rendered rules, rule by rule, for the default values and for the values that
  drop rules (certMode cert-manager: no Secret, no MutatingWebhookConfiguration;
  leaderElection false: no Lease); every fixed name is a resourceName;
- against the real kube-apiserver: the webhook and the proxy run with tokens of the
  chart's ServiceAccounts and the RBAC as rendered; the webhook creates its
  certificate Secret, fills in the MutatingWebhookConfiguration's caBundle, takes the
  Lease and becomes ready (every watch listed and synced), the proxy becomes ready,
  and neither is ever refused (no 403 in their logs)."""
import json
import os
import secrets
import ssl
import subprocess
import time
import urllib.request

import pytest
import yaml

from chart_test import CHART, by_kind, helm, render

ROOT = os.environ.get("ZW_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def _san_or_rel(name):
    san = os.path.join(ROOT, "build", "san", "bin", name)
    return san if os.path.exists(san) else os.path.join(ROOT, "bin", name)


WEBHOOK_BIN = os.environ.get("ZW_WEBHOOK_BIN") or _san_or_rel("zerowire-webhook")
PROXY_BIN = os.environ.get("ZW_PROXY_BIN") or _san_or_rel("zerowire-proxy")

ROUTES = {("networking.k8s.io", "ingresses"), ("gateway.networking.k8s.io", "httproutes"),
          ("gateway.networking.k8s.io", "grpcroutes"), ("networking.istio.io", "virtualservices"),
          ("gateway.solo.io", "virtualservices"), ("gateway.solo.io", "routetables"),
          ("networking.gloo.solo.io", "routetables")}
READ = ("list", "watch")
OWN = ("list", "watch", "create", "patch", "delete")


def rules(role):
    """{(apiGroup, resource, resourceNames): sorted verbs} of a Role or ClusterRole."""
    out = {}
    for r in role["rules"]:
        for g in r["apiGroups"]:
            for res in r["resources"]:
                key = (g, res, tuple(r.get("resourceNames", ())))
                assert key not in out, "rule given twice: %s" % (key,)
                out[key] = tuple(sorted(r["verbs"]))
    return out


def named(docs, kind, name):
    (d,) = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    return d


def webhook_cluster_rules(mwc=True):
    want = {(g, r, ()): tuple(sorted(("list", "watch", "patch"))) for g, r in ROUTES}
    want.update({
        ("keda.sh", "scaledobjects", ()): tuple(sorted(OWN)),
        ("http.keda.sh", "httpscaledobjects", ()): READ,
        ("http.keda.sh", "interceptorroutes", ()): READ,
        ("gloo.solo.io", "upstreams", ()): READ,
        ("networking.gloo.solo.io", "virtualdestinations", ()): READ,
        ("", "services", ()): tuple(sorted(OWN)),
        ("gateway.networking.k8s.io", "backendtlspolicies", ()): READ,
        ("gateway.networking.k8s.io", "referencegrants", ()): READ,
        ("discovery.k8s.io", "endpointslices", ()): tuple(sorted(OWN)),
        ("", "namespaces", ()): READ,
    })
    if mwc:
        want[("admissionregistration.k8s.io", "mutatingwebhookconfigurations", ("zerowire",))] = ("get", "patch")
    return want


def test_rules_by_default():
    docs = render()
    assert rules(named(docs, "ClusterRole", "zerowire-webhook")) == webhook_cluster_rules()
    assert rules(named(docs, "Role", "zerowire-webhook")) == {
        ("coordination.k8s.io", "leases", ()): ("create",),
        ("coordination.k8s.io", "leases", ("zerowire-webhook",)): ("get", "update"),
        ("", "secrets", ()): ("create",),
        ("", "secrets", ("zerowire-webhook-tls",)): ("get", "update"),
    }
    assert rules(named(docs, "Role", "zerowire-webhook-grants")) == {
        ("gateway.networking.k8s.io", "referencegrants", ()): tuple(sorted(OWN))}
    assert rules(named(docs, "ClusterRole", "zerowire-proxy")) == {
        ("keda.sh", "scaledobjects", ()): READ,
        ("http.keda.sh", "httpscaledobjects", ()): READ,
        ("http.keda.sh", "interceptorroutes", ()): READ,
        ("discovery.k8s.io", "endpointslices", ()): READ,
        ("", "services", ()): READ,
        ("", "configmaps", ()): READ,
    }
    # the proxy never writes nor GETs one object; nothing anywhere gets "*"
    for r in by_kind(docs, "ClusterRole") + by_kind(docs, "Role"):
        for rule in r["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule


def test_rules_follow_cert_mode_and_leader_election():
    docs = render("--set", "webhook.certMode=cert-manager")
    assert rules(named(docs, "ClusterRole", "zerowire-webhook")) == webhook_cluster_rules(mwc=False)
    assert rules(named(docs, "Role", "zerowire-webhook")) == {
        ("coordination.k8s.io", "leases", ()): ("create",),
        ("coordination.k8s.io", "leases", ("zerowire-webhook",)): ("get", "update")}
    docs = render("--set", "webhook.leaderElection=false")
    assert rules(named(docs, "Role", "zerowire-webhook")) == {
        ("", "secrets", ()): ("create",),
        ("", "secrets", ("zerowire-webhook-tls",)): ("get", "update")}
    docs = render("--set", "webhook.leaderElection=false", "--set", "webhook.certMode=cert-manager")
    assert not [d for d in by_kind(docs, "Role") + by_kind(docs, "RoleBinding")
                if d["metadata"]["name"] == "zerowire-webhook"]
    # names follow fullnameOverride
    docs = render("--set", "fullnameOverride=acme")
    got = rules(named(docs, "Role", "acme-webhook"))
    assert ("coordination.k8s.io", "leases", ("acme-webhook",)) in got
    assert ("", "secrets", ("acme-webhook-tls",)) in got
    assert ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", ("acme",)) in \
        rules(named(docs, "ClusterRole", "acme-webhook"))


def _logs(path):
    with open(path, errors="replace") as f:
        return f.read()


def _refusals(text):
    return [line for line in text.splitlines() if "status=403" in line or "orbidden" in line]


def test_watch_namespaces_keep_the_proxy_namespace_readable():
    """watchNamespaces narrows what is watched, not the RBAC: the webhook reads
    Services and BackendTLSPolicies in the proxy's namespace (the proxy
    Service's https port, the policy on it) and the proxy its peers Service's
    EndpointSlices there, whatever the list, so both stay ClusterRoles bound
    cluster-wide, with the same rules as without the list."""
    plain = render(namespace="zw")
    docs = render("--set", "watchNamespaces={team-a,team-b}", namespace="zw")
    for name in ("zerowire-webhook", "zerowire-proxy"):
        assert rules(named(docs, "ClusterRole", name)) == rules(named(plain, "ClusterRole", name))
        binding = named(docs, "ClusterRoleBinding", name)
        assert binding["roleRef"]["kind"] == "ClusterRole" and binding["roleRef"]["name"] == name
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "zw"}]
    got = rules(named(docs, "ClusterRole", "zerowire-webhook"))
    assert got[("", "services", ())] == tuple(sorted(OWN))
    assert got[("gateway.networking.k8s.io", "backendtlspolicies", ())] == READ
    assert got[("gateway.networking.k8s.io", "referencegrants", ())] == READ
    got = rules(named(docs, "ClusterRole", "zerowire-proxy"))
    assert got[("discovery.k8s.io", "endpointslices", ())] == READ and got[("", "services", ())] == READ
    # Nothing is narrowed to Roles in the listed namespaces.
    assert not [d for d in by_kind(docs, "Role") + by_kind(docs, "RoleBinding")
                if d["metadata"]["namespace"] in ("team-a", "team-b")]


@pytest.mark.parametrize("watch", [False, True], ids=["all-namespaces", "watch-namespaces"])
def test_binaries_run_with_the_chart_rbac(cluster, tmp_path, watch):
    """The webhook (certMode self, leader election) and the proxy against the real
    kube-apiserver with the chart's ServiceAccounts: ready, never refused. With
    watchNamespaces (a namespace other than the release's) too: the watches of
    the proxy's namespace outside the list (the webhook's Services and
    BackendTLSPolicies, the proxy's peers Service) are allowed."""
    from harness import util

    for b in (WEBHOOK_BIN, PROXY_BIN):
        assert os.path.exists(b), "build first: make (or make SAN=1 tools)"
    ns = cluster.create_namespace("zwrbac")
    release = "rb" + secrets.token_hex(3)
    full = release + "-zerowire"
    watched = []
    if watch:
        watched = ["--watch-namespaces", cluster.create_namespace("zwrbacapp")]
    docs = render("--set", "restoreOnUninstall.enabled=false", "--set", "helmTest.enabled=false",
                  *(["--set", "watchNamespaces={%s}" % watched[1]] if watch else []), namespace=ns)
    docs = [d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                                             "RoleBinding")]
    text = "\n---\n".join(yaml.safe_dump(d) for d in docs).replace("zerowire-", full + "-")
    # Chart names (release "zerowire") made unique per run; the MWC is the chart's name
    # but matches no namespace here, so no request of another test reaches it.
    mwc_name = full
    text = text.replace('- zerowire\n', '- %s\n' % mwc_name)
    rbac = [yaml.safe_load(t) for t in text.split("\n---\n")]
    mwc = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
           "metadata": {"name": mwc_name},
           "webhooks": [{"name": "autowire.zerowire.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                         "failurePolicy": "Ignore",
                         "clientConfig": {"url": "https://127.0.0.1:1/mutate"},
                         "namespaceSelector": {"matchLabels": {"zerowire.io/rbac-test": "nothing"}},
                         "rules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                                    "resources": ["ingresses"], "operations": ["CREATE"]}]}]}
    applied = rbac + [mwc]
    cluster.apply("\n---\n".join(yaml.safe_dump(d) for d in applied), validate=False)
    procs = []
    try:
        wsa = named(rbac, "ServiceAccount", full + "-webhook")["metadata"]["name"]
        psa = named(rbac, "ServiceAccount", full + "-proxy")["metadata"]["name"]
        wkc = cluster.write_kubeconfig(str(tmp_path / "webhook.kubeconfig"), {"token": cluster.sa_token(ns, wsa)})
        pkc = cluster.write_kubeconfig(str(tmp_path / "proxy.kubeconfig"), {"token": cluster.sa_token(ns, psa)})
        wport = util.free_port()
        wlog = str(tmp_path / "webhook.log")
        lease = full + "-webhook"
        secret = full + "-webhook-tls"
        with open(wlog, "w") as out:
            procs.append(subprocess.Popen(
                [WEBHOOK_BIN, "--kubeconfig", wkc, "--listen", "127.0.0.1:%d" % wport, "--cert-mode", "self",
                 "--cert-secret", "%s/%s" % (ns, secret), "--webhook-config", mwc_name,
                 "--webhook-service", "%s/%s" % (ns, full + "-webhook"), "--proxy-namespace", ns,
                 "--lease-namespace", ns, "--lease-name", lease, "--resync", "2s", *watched],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        ports = util.free_ports(4)
        plog = str(tmp_path / "proxy.log")
        with open(plog, "w") as out:
            procs.append(subprocess.Popen(
                [PROXY_BIN, "--kubeconfig", pkc, "--listen", "127.0.0.1:%d" % ports[0],
                 "--admin-listen", "127.0.0.1:%d" % ports[1], "--scaler-listen", "127.0.0.1:%d" % ports[2],
                 "--peer-listen", "127.0.0.1:%d" % ports[3], "--workers", "1",
                 "--peers-service", "%s/%s:peer" % (ns, full + "-proxy-peers"), *watched],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE

        def ready(url, ctx=None):
            try:
                return urllib.request.urlopen(url, timeout=2, context=ctx).status == 200
            except Exception:
                return False

        def held():
            r = cluster.kubectl("get", "lease", lease, "-n", ns, "-o", "json", check=False)
            return r.returncode == 0 and json.loads(r.stdout)["spec"].get("holderIdentity")

        def ca_bundle():
            r = cluster.kubectl("get", "mutatingwebhookconfiguration", mwc_name, "-o", "json")
            return json.loads(r.stdout)["webhooks"][0]["clientConfig"].get("caBundle")

        for what, pred in (("webhook ready", lambda: ready("https://127.0.0.1:%d/readyz" % wport, insecure)),
                           ("proxy ready", lambda: ready("http://127.0.0.1:%d/readyz" % ports[1])),
                           ("Lease held", held), ("caBundle filled in", ca_bundle)):
            util.wait_for(lambda: pred() or any(p.poll() is not None for p in procs), 60, 0.25, what)
            assert all(p.poll() is None for p in procs), _logs(wlog)[-3000:] + _logs(plog)[-3000:]
        got = cluster.kubectl("get", "secret", secret, "-n", ns, "-o", "name").stdout.strip()
        assert got == "secret/" + secret
        time.sleep(3)  # a reconciler resync pass and a Lease renewal with the same rights
        # A refused watch is retried: the reconciler counts it in errors_total, the
        # sources and the proxy log watch_retry / source_retry.
        metrics = urllib.request.urlopen("https://127.0.0.1:%d/metrics" % wport, timeout=5,
                                         context=insecure).read().decode()
        errors = [line for line in metrics.splitlines() if line.startswith("zerowire_webhook_errors_total")]
        assert errors and all(line.split()[-1] == "0" for line in errors), errors
        for path in (wlog, plog):
            text = _logs(path)
            assert not _refusals(text), "\n".join(_refusals(text))
            assert "event=watch_retry" not in text and "event=source_retry" not in text, text[-3000:]
            assert "AddressSanitizer" not in text and "runtime error" not in text, text[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false",
                        input="\n---\n".join(yaml.safe_dump(d) for d in applied), check=False)


def test_proxy_tls_rules():
    """proxy.tls: a Role with resourceNames in each Secret's namespace (bare
    names are the proxy's), list and watch only, bound to the proxy's
    ServiceAccount; nothing without proxy.tls.enabled, and enabled without a
    Secret fails to render."""
    assert not [d for d in render() if d["metadata"]["name"] == "zerowire-proxy-tls"]
    docs = render("--set", "proxy.tls.enabled=true", "--set", "proxy.tls.secrets={site,web/b,web/a}",
                  "--set", "proxy.tls.defaultSecret=fallback", namespace="zw")
    roles = {d["metadata"]["namespace"]: rules(d) for d in by_kind(docs, "Role")
             if d["metadata"]["name"] == "zerowire-proxy-tls"}
    assert roles == {"zw": {("", "secrets", ("fallback", "site")): READ},
                     "web": {("", "secrets", ("a", "b")): READ}}
    binds = [d for d in by_kind(docs, "RoleBinding") if d["metadata"]["name"] == "zerowire-proxy-tls"]
    assert sorted(b["metadata"]["namespace"] for b in binds) == ["web", "zw"]
    for b in binds:
        assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                "name": "zerowire-proxy-tls"}
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "zerowire-proxy", "namespace": "zw"}]
    r = helm("template", "zerowire", CHART, "--set", "proxy.tls.enabled=true", check=False)
    assert r.returncode != 0 and "needs proxy.tls.secrets" in r.stderr


def test_proxy_tls_secrets_with_the_chart_rbac(cluster, tmp_path):
    """The proxy with the chart's ServiceAccount and proxy.tls Role against the
    real kube-apiserver: both Secrets (one by name, the default) are listed
    and watched through resourceNames, served on the TLS listener, never
    refused; a Secret outside the grant is refused to the same token."""
    import base64
    import socket
    from harness import util

    assert os.path.exists(PROXY_BIN), "build first: make (or make SAN=1 tools)"
    ns = cluster.create_namespace("zwtls")
    release = "rt" + secrets.token_hex(3)
    full = release + "-zerowire"
    docs = render("--set", "restoreOnUninstall.enabled=false", "--set", "helmTest.enabled=false",
                  "--set", "proxy.tls.enabled=true", "--set", "proxy.tls.secrets={site}",
                  "--set", "proxy.tls.defaultSecret=fallback", namespace=ns)
    docs = [d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                                             "RoleBinding") and "proxy" in d["metadata"]["name"]]
    text = "\n---\n".join(yaml.safe_dump(d) for d in docs).replace("zerowire-", full + "-")
    applied = [yaml.safe_load(t) for t in text.split("\n---\n")]
    cluster.apply("\n---\n".join(yaml.safe_dump(d) for d in applied), validate=False)
    for name in ("site", "fallback", "other"):
        d = str(tmp_path)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", d + "/k", "-out", d + "/c", "-days", "3", "-subj", "/CN=%s.test" % name,
                        "-addext", "subjectAltName=DNS:%s.test" % name], check=True, capture_output=True)
        data = {k: base64.b64encode(open(d + "/" + f, "rb").read()).decode() for k, f in (("tls.crt", "c"),
                                                                                            ("tls.key", "k"))}
        cluster.api("POST", "/api/v1/namespaces/%s/secrets" % ns,
                    {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                     "metadata": {"name": name, "namespace": ns}, "data": data})
    proc = None
    try:
        psa = full + "-proxy"
        token = cluster.sa_token(ns, psa)
        pkc = cluster.write_kubeconfig(str(tmp_path / "proxy.kubeconfig"), {"token": token})
        ports = util.free_ports(4)
        plog = str(tmp_path / "proxy.log")
        with open(plog, "w") as out:
            proc = subprocess.Popen(
                [PROXY_BIN, "--kubeconfig", pkc, "--listen", "127.0.0.1:%d" % ports[0],
                 "--admin-listen", "127.0.0.1:%d" % ports[1], "--scaler-listen", "127.0.0.1:%d" % ports[2],
                 "--tls-listen", "127.0.0.1:%d" % ports[3], "--workers", "1",
                 "--tls-secret", "%s/site" % ns, "--tls-default-secret", "%s/fallback" % ns],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        def loaded():
            try:
                m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ports[1], timeout=2).read().decode()
            except Exception:
                return proc.poll() is not None
            return "zerowire_tls_certificates 2" in m
        util.wait_for(loaded, 60, 0.25, "both TLS Secrets loaded")
        assert proc.poll() is None, _logs(plog)[-3000:]
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        for sni in ("site.test", "unknown.test"):
            with socket.create_connection(("127.0.0.1", ports[3]), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname=sni) as s:
                    assert s.version() == "TLSv1.3"
        text = _logs(plog)
        assert not _refusals(text), "\n".join(_refusals(text))
        assert "event=source_retry" not in text and "event=watch_retry" not in text, text[-3000:]
        # The grant names its Secrets: another one is refused to the same token.
        base = "/api/v1/namespaces/%s/secrets" % ns
        assert cluster.api("GET", base, params={"fieldSelector": "metadata.name=site"}, token=token)["items"]
        for params in ({"fieldSelector": "metadata.name=other"}, {}):
            with pytest.raises(Exception) as e:
                cluster.api("GET", base, params=params, token=token)
            assert getattr(e.value, "status", None) == 403, e.value
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false",
                        input="\n---\n".join(yaml.safe_dump(d) for d in applied), check=False)
