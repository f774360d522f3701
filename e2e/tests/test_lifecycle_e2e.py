"""zerowire never leaves routes broken, against the real kube-apiserver:

- a namespace labelled zerowire.io/autowire: "false" gets its rewritten
  routes restored exactly by the reconciler (admission is not called there),
  and rewritten again when the label goes;
- `zerowire-webhook restore` (what the chart's pre-delete hook runs, and the
  uninstall step in url mode), run with the hook's own ServiceAccount and
  RBAC as the chart renders them: it deletes the MutatingWebhookConfiguration,
  holds the reconciler Lease so the running webhook stays passive, restores
  every route byte for byte as applied, deletes the alias Services and
  ReferenceGrants, and exits 0; with a route it cannot restore it exits 1 and
  names it."""

import json
import os
import subprocess
import time

import pytest
import yaml

from harness import util
from test_webhook_e2e import (BIN, HTTPROUTE, INGRESS, ISTIO_GLOO, MESH_OBJS, MWC, PROXY_NS, RELEASE, UPSTREAM,
                              WebhookProc, get, mwc_manifest, points_at_proxy, scaled_object)

CONVERGE = 30
LEASE = RELEASE + "-zerowire-webhook"  # the chart's Lease name for release zerowire-e2e
RESTORE_SA = RELEASE + "-zerowire-restore"
HELM = os.environ.get("ZW_HELM") or os.path.join(util.REPO, "tools", "bin", "helm")
ORIGINAL, TOUCH = "zerowire.io/original", "zerowire.io/reconcile"
MANAGED = "app.kubernetes.io/managed-by=zerowire"


def wait_for(cluster, pred, what, timeout=CONVERGE):
    return cluster.wait_for(pred, timeout=timeout, interval=0.25, what=what)


class Webhook(WebhookProc):
    """test_webhook_e2e's webhook process, electing with the chart's Lease name
    (the one the restore hook's RBAC names)."""

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [BIN, "--kubeconfig", self.cluster.kubeconfig, "--listen", "127.0.0.1:%d" % self.port,
             "--tls-cert-file", self.cert, "--tls-key-file", self.key, "--resync", "5",
             "--lease-namespace", PROXY_NS, "--lease-name", LEASE],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        util.wait_for(lambda: "event=listening" in self.logs() or self.proc.poll() is not None,
                      30, 0.05, "webhook listening")
        assert self.proc.poll() is None, self.logs()


@pytest.fixture(scope="module")
def webhook(cluster, tmp_path_factory):
    cluster.ensure_namespace(PROXY_NS)
    w = Webhook(cluster, str(tmp_path_factory.mktemp("lifecycle")))
    w.start()
    cluster.apply(json.dumps(mwc_manifest(w.port, w.ca)))
    yield w
    cluster.kubectl("delete", "mutatingwebhookconfiguration", MWC, "--ignore-not-found", check=False)
    cluster.kubectl("delete", "lease", LEASE, "-n", PROXY_NS, "--ignore-not-found", check=False)
    rc = w.stop()
    logs = w.logs()
    assert "AddressSanitizer" not in logs and "runtime error" not in logs, logs[-5000:]
    assert rc == 0, logs[-3000:]


@pytest.fixture(scope="module")
def restore_kubeconfig(cluster, tmp_path_factory):
    """A kubeconfig of the chart's pre-delete hook ServiceAccount, with the
    hook's RBAC as rendered (the Job itself left out: no kubelet here)."""
    assert os.path.exists(HELM), "helm missing at %s: run scripts/install-helm.sh" % HELM
    r = subprocess.run([HELM, "template", RELEASE, os.path.join(util.REPO, "charts", "zerowire"), "-n", PROXY_NS,
                        "--show-only", "templates/restore-hook.yaml"],
                       capture_output=True, text=True, timeout=60, check=True)
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Job", "Role", "RoleBinding", "ServiceAccount"]
    job = [d for d in docs if d["kind"] == "Job"][0]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "restore" and "--webhook-config=" + MWC in args and "--lease-name=" + LEASE in args
    rbac = [d for d in docs if d["kind"] != "Job"]
    for d in rbac:
        d["metadata"].pop("annotations", None)
    cluster.apply("\n---\n".join(yaml.safe_dump(d) for d in rbac))
    token = cluster.sa_token(PROXY_NS, RESTORE_SA)
    path = str(tmp_path_factory.mktemp("restore") / "restore.kubeconfig")
    yield cluster.write_kubeconfig(path, {"token": token})
    cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input="\n---\n".join(yaml.safe_dump(d) for d in rbac),
                    check=False)


def spec_of(cluster, res, ns, name):
    o = get(cluster, res, ns, name)
    return None if o is None else json.dumps(o["spec"])


def clean(cluster, res, ns, name):
    o = get(cluster, res, ns, name)
    ann = o["metadata"].get("annotations") or {}
    return ORIGINAL not in ann and TOUCH not in ann


def as_applied(cluster, manifest, name, res, ns):
    """The spec the API server stores for manifest when nothing rewrites it:
    a server-side dry-run create under a scratch name labelled
    zerowire.io/autowire: "false" (not sent to the webhook)."""
    o = yaml.safe_load(manifest)
    o["metadata"] = {"name": name + "-zwprobe", "namespace": ns, "labels": {"zerowire.io/autowire": "false"}}
    r = cluster.kubectl("create", "--dry-run=server", "--validate=false", "-o", "json", "-f", "-", input=json.dumps(o))
    return json.dumps(json.loads(r.stdout)["spec"])


def managed(cluster, resource, ns=None):
    args = ["get", resource, "-l", MANAGED, "-o", "json"] + (["-n", ns] if ns else ["-A"])
    r = cluster.kubectl(*args, check=False)
    return json.loads(r.stdout)["items"] if r.returncode == 0 else []


def test_namespace_opt_out_restores_and_opt_in_rewrites(cluster, webhook):
    ns = cluster.create_namespace("optout")
    cluster.apply(INGRESS % {"ns": ns, "host": "app.example.com"} + "---\n" + HTTPROUTE % {"ns": ns}, validate=False)
    # The GRPCRoute goes to the proxy's h2c port, the others to its HTTP port.
    routes = (("ingress", "app"), ("httproute", "app"), ("grpcroute", "grpc"))
    orig = {r: spec_of(cluster, r[0], ns, r[1]) for r in routes}
    cluster.apply(scaled_object(ns, "app"))
    for res, name in routes:
        wait_for(cluster, lambda: points_at_proxy(get(cluster, res, ns, name)), "%s rewritten" % res)
    wait_for(cluster, lambda: get(cluster, "service", ns, "zerowire-proxy") is not None, "alias Service")
    wait_for(cluster, lambda: get(cluster, "referencegrant", PROXY_NS, "zerowire-" + ns) is not None, "grant")

    cluster.kubectl("label", "namespace", ns, "zerowire.io/autowire=false")
    for (res, name), text in orig.items():
        wait_for(cluster, lambda: spec_of(cluster, res, ns, name) == text and clean(cluster, res, ns, name),
                 "%s restored exactly after the namespace opted out" % res)
    wait_for(cluster, lambda: get(cluster, "service", ns, "zerowire-proxy") is None, "alias Service removed")
    wait_for(cluster, lambda: get(cluster, "referencegrant", PROXY_NS, "zerowire-" + ns) is None, "grant removed")
    assert "reason=namespace_opt_out" in webhook.logs()
    # Stays restored: the reconciler does not touch routes there.
    time.sleep(6)
    assert all(spec_of(cluster, r[0], ns, r[1]) == t for r, t in orig.items())

    cluster.kubectl("label", "namespace", ns, "zerowire.io/autowire-")
    for res, name in routes:
        wait_for(cluster, lambda: points_at_proxy(get(cluster, res, ns, name)), "%s rewritten again" % res)


THREE = ("app-a", "app-b", "app-c")


def three_rules_rewritten(cluster, ns):
    """Applies an HTTPRoute `moved` with rules /a, /b, /c to Services app-a,
    app-b, app-c, and a target for each; waits until every rule is rewritten."""
    rules = [{"matches": [{"path": {"type": "PathPrefix", "value": "/" + s[-1]}}],
              "backendRefs": [{"name": s, "port": 80}]} for s in THREE]
    cluster.apply(json.dumps({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                              "metadata": {"name": "moved", "namespace": ns},
                              "spec": {"parentRefs": [{"name": "gw", "namespace": "gateways"}],
                                       "hostnames": ["app.example.com"], "rules": rules}}), validate=False)
    for svc in THREE:
        cluster.apply(scaled_object(ns, svc))
    wait_for(cluster, lambda: (lambda o: o and all("zerowire-proxy" in json.dumps(r["backendRefs"])
                                                   for r in o["spec"]["rules"]))(get(cluster, "httproute", ns, "moved")),
             "all three rules rewritten")


def targets_gone_restored(cluster, ns):
    """Deletes the three targets; returns the route once its records are
    gone: [(path prefix, [backend names])] per rule, and its hostnames."""
    for svc in THREE:
        cluster.kubectl("delete", "scaledobject", svc, "-n", ns)

    def restored():
        o = get(cluster, "httproute", ns, "moved")
        if ORIGINAL in (o["metadata"].get("annotations") or {}):
            return None
        return ([(r["matches"][0]["path"]["value"], [b["name"] for b in r["backendRefs"]])
                 for r in o["spec"]["rules"]], o["spec"]["hostnames"])
    return wait_for(cluster, restored, "route restored")


def test_restore_after_rules_removed_and_reordered_on_the_live_route(cluster, webhook):
    """Rules of a rewritten HTTPRoute removed, then reordered, by JSON patches
    of the live object: once the targets go, each rule gets its own
    destination back, never the one of the rule that held its index before."""
    ns = cluster.create_namespace("moved")
    three_rules_rewritten(cluster, ns)
    cluster.kubectl("patch", "httproute", "moved", "-n", ns, "--type=json", "-p",
                    json.dumps([{"op": "remove", "path": "/spec/rules/0"}]))
    cluster.kubectl("patch", "httproute", "moved", "-n", ns, "--type=json", "-p",
                    json.dumps([{"op": "move", "from": "/spec/rules/1", "path": "/spec/rules/0"}]))
    rules, _ = targets_gone_restored(cluster, ns)
    assert rules == [("/c", ["app-c"]), ("/b", ["app-b"])], rules


def test_restore_after_the_live_route_is_saved_edited_and_applied_again(cluster, webhook):
    """kubectl get -o json of the rewritten route, edited (a hostname added)
    and applied again: its last-applied-configuration now names the proxy,
    as a hand-wired route's does, but also holds zerowire's record; the
    records stay, and once the targets go every rule gets its own
    destination back (it stayed at the proxy before)."""
    ns = cluster.create_namespace("dumped")
    three_rules_rewritten(cluster, ns)
    live = get(cluster, "httproute", ns, "moved")
    live["spec"]["hostnames"].append("www.example.com")
    cluster.kubectl("apply", "-f", "-", input=json.dumps(live))
    got = targets_gone_restored(cluster, ns)
    assert got == ([("/a", ["app-a"]), ("/b", ["app-b"]), ("/c", ["app-c"])],
                   ["app.example.com", "www.example.com"]), got


def test_restore_command_restores_everything_exactly(cluster, webhook, restore_kubeconfig):
    ns = cluster.create_namespace("uninst")
    early = (INGRESS % {"ns": ns, "host": "app.example.com"} + "---\n" + HTTPROUTE % {"ns": ns} + "---\n" +
             UPSTREAM % {"ns": ns} + "---\n" + ISTIO_GLOO % {"ns": ns})
    cluster.apply(early, validate=False)
    routes = [("ingress", "app"), ("httproute", "app"), ("grpcroute", "grpc")] + list(MESH_OBJS)
    orig = {r: spec_of(cluster, r[0], ns, r[1]) for r in routes}
    assert all(t is not None and "zerowire-proxy" not in t for t in orig.values())
    cluster.apply(scaled_object(ns, "app"))
    for res, name in routes:
        wait_for(cluster, lambda: points_at_proxy(get(cluster, res, ns, name)), "%s %s rewritten" % (res, name))
    # A route applied after its target: rewritten at admission.
    late = (INGRESS % {"ns": ns, "host": "app.example.com"}).replace("name: app,", "name: late,", 1)
    orig[("ingress", "late")] = as_applied(cluster, late, "late", "ingress", ns)
    cluster.apply(late)
    assert points_at_proxy(get(cluster, "ingress", ns, "late"))
    wait_for(cluster, lambda: get(cluster, "service", ns, "zerowire-proxy") is not None, "alias Service")
    wait_for(cluster, lambda: get(cluster, "referencegrant", PROXY_NS, "zerowire-" + ns) is not None, "grant")

    t0 = time.monotonic()
    r = subprocess.run([BIN, "restore", "--kubeconfig", restore_kubeconfig, "--webhook-config", MWC,
                        "--lease-namespace", PROXY_NS, "--lease-name", LEASE, "--proxy-namespace", PROXY_NS,
                        "--deadline", "90s"], capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert time.monotonic() - t0 < 60
    assert "Forbidden" not in r.stderr and "status=403" not in r.stderr, r.stderr

    def check_all():
        for (res, name), text in orig.items():
            live = spec_of(cluster, res, ns, name)
            assert live == text, "%s %s/%s:\napplied: %s\nlive:    %s" % (res, ns, name, text, live)
            assert clean(cluster, res, ns, name), get(cluster, res, ns, name)["metadata"]
    check_all()
    assert get(cluster, "mutatingwebhookconfiguration", "", MWC) is None
    assert managed(cluster, "services") == [] and managed(cluster, "referencegrants") == []
    lease = get(cluster, "lease", PROXY_NS, LEASE)
    assert lease["spec"]["holderIdentity"] == "zerowire-restore"
    # The webhook still running stays passive: nothing is touched or re-created.
    time.sleep(8)
    check_all()
    assert managed(cluster, "services") == [] and managed(cluster, "referencegrants") == []
    assert 'event=leader_lost' in webhook.logs()

    # Idempotent: a second run finds nothing to do.
    r = subprocess.run([BIN, "restore", "--kubeconfig", restore_kubeconfig, "--webhook-config", MWC,
                        "--lease-namespace", PROXY_NS, "--lease-name", LEASE, "--handover", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "route_restored" not in r.stderr


def test_restore_command_names_what_it_cannot_restore(cluster, webhook, restore_kubeconfig):
    ns = cluster.create_namespace("stuck")
    bad = INGRESS % {"ns": ns, "host": "bad.example.com"}
    o = yaml.safe_load(bad)
    o["metadata"]["annotations"] = {ORIGINAL: "not json"}
    o["metadata"]["labels"] = {"zerowire.io/autowire": "false"}
    cluster.apply(json.dumps(o))
    r = subprocess.run([BIN, "restore", "--kubeconfig", restore_kubeconfig, "--webhook-config", MWC,
                        "--lease-namespace", PROXY_NS, "--lease-name", LEASE, "--handover", "0",
                        "--deadline", "3"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ingresses.networking.k8s.io %s/app" % ns in r.stderr and "not readable" in r.stderr, r.stderr
    cluster.kubectl("delete", "namespace", ns, "--wait=false")
