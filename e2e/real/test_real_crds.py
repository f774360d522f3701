"""The real upstream schemas on the current apiserver (issue #17): a
kube-apiserver v1.37.2 (harness.realcluster, no controllers) with the
upstream CRDs of ../shared/fixtures/crds installed as published (Gateway API
v1.6.1 incl. GRPCRoute and ReferenceGrant, Istio, Gloo Edge and Platform,
KEDA, the KEDA HTTP add-on; OpenAPI and CEL validation on), and every
request made with field validation Strict (unknown and duplicate fields are
errors, not silently dropped).

a. Every manifest of every seed document (e2e/seeds/, the manifests of
   ../shared/seeds/) and every example manifest (../shared/fixtures/examples)
   is created (server-side dry run, no webhook): each is accepted, or its
   rejection is in e2e/real/schema_expectations.yaml with the apiserver's
   exact message. docs/seeds.md names every seed manifest rejected there.
b. zerowire-webhook (url mode, the chart's MutatingWebhookConfiguration) is
   registered; targets are made for the Services the admission cases
   (webhook/tests/cases) name; the same manifests are created through it, in
   rounds (objects sharing a name go to later rounds). Every route zerowire
   rewrote was stored (so it passed the real schema), holds everything
   zerowire wrote (nothing pruned), and passes a strict dry run again; every
   route it did not rewrite is stored as the dry run of (a) gave it. Every
   manifest (a) rejected is rejected through the webhook with the same
   message: zerowire never turns an invalid route into a valid one (one it
   could not restore); the port-less seed routes come with zerowire's
   warning. `zerowire-webhook restore` then puts every rewritten route back
   byte for byte and the restored route passes the schema again.
c. The objects the webhook makes (alias Services and their EndpointSlices,
   ReferenceGrants, ScaledObjects of HTTPScaledObjects) pass a strict dry run,
   and every request zerowire sent was accepted: the apiserver's audit log
   (level Request) holds each one, and each object body zerowire sent passes
   a strict dry run as sent.

Skipped when kube-apiserver 1.37 is not built (e2e/build-peers.sh
kubernetes) or ../shared is absent."""

import glob
import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from harness import examples, util
from harness.realcluster import RealCluster, audit_args, install_upstream_crds, peer_binaries

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(util.REPO, "e2e", "seeds")
CASES = os.path.join(util.REPO, "webhook", "tests", "cases")
EXPECT_FILE = os.path.join(HERE, "schema_expectations.yaml")
SEEDS_DOC = os.path.join(util.REPO, "docs", "seeds.md")
SHARED_SEEDS = os.path.join(util.shared_dir(), "seeds")

BINS = peer_binaries("kubernetes")
if BINS is None:
    pytest.skip("kube-apiserver 1.37 not built: run e2e/build-peers.sh kubernetes once (docs/real-peers.md)",
                allow_module_level=True)
if not (os.path.isdir(examples.fixtures_dir("crds")) and os.path.isdir(SHARED_SEEDS)):
    pytest.skip("../shared absent (fixtures/crds and seeds/ are read from there, never copied)",
                allow_module_level=True)

sys.path.insert(0, os.path.join(util.REPO, "e2e", "tests"))
from test_webhook_e2e import BIN, MWC, PROXY_NS, WebhookProc, mwc_manifest  # noqa: E402

with open(EXPECT_FILE) as _f:
    EXPECT = yaml.safe_load(_f)

PROXY_IP = "192.0.2.10"  # TEST-NET-1: a valid EndpointSlice address nothing dials here
PROXY_PORT = 8080
HANDWIRED = "keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local"
ROUTE_KINDS = {("networking.k8s.io", "Ingress"), ("gateway.networking.k8s.io", "HTTPRoute"),
               ("gateway.networking.k8s.io", "GRPCRoute"), ("networking.istio.io", "VirtualService"),
               ("gateway.solo.io", "VirtualService"), ("gateway.solo.io", "RouteTable"),
               ("networking.gloo.solo.io", "RouteTable")}
ORIGINAL = "zerowire.io/original"
OPT_OUT = {"zerowire.io/autowire": "false"}  # the chart's objectSelector: not sent to the webhook
MANAGED = "app.kubernetes.io/managed-by=zerowire"
RESYNC = 5


def group_of(doc):
    api = doc.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def is_route(doc):
    return (group_of(doc), doc.get("kind")) in ROUTE_KINDS


def seed_docs():
    """[(label, doc)]: every manifest of e2e/seeds/<document>/*.yaml in order,
    labelled <document>/<file>#<index>."""
    out = []
    for path in sorted(glob.glob(os.path.join(SEEDS, "*", "*.yaml"))):
        rel = os.path.relpath(path, SEEDS)
        with open(path) as f:
            for i, doc in enumerate(d for d in yaml.safe_load_all(f) if d):
                out.append(("%s#%d" % (rel, i), doc))
    return out


def example_docs():
    return [("%s#%s" % (f, i), doc) for f, i, doc in examples.example_docs()]


def case_targets():
    """Targets for every Service the admission cases of the seed documents and
    of the example fixtures name (webhook/tests/cases: ScaledObjects from the
    shorthand webhook/tests/rewrite_jsonpatch_test.py expands, and the cases'
    own registry objects), and the routes those cases expect
    rewritten: ([object], {(fixture, kind, name)})."""
    objs, rewritten = [], set()
    for n, path in enumerate(sorted(glob.glob(os.path.join(CASES, "*.yaml")))):
        with open(path) as f:
            case = yaml.safe_load(f)
        base = os.path.basename(path)
        if not (case.get("fixture", "").startswith("examples/") or base.startswith("seed00")):
            continue
        if (case.get("config") or {}).get("proxy_service"):
            continue  # a case about another proxy name; this webhook runs with the default
        for i, t in enumerate(case.get("targets") or []):
            md = {"scalerAddress": "zerowire-proxy.zerowire:9090", "service": t["service"]}
            for k in ("port", "portName", "hosts"):
                if k in t:
                    md[k] = str(t[k])
            if "autowire" in t:
                md["trafficAutowire"] = t["autowire"]
            objs.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                         "metadata": {"name": "zw-case-%d-%d" % (n, i), "namespace": t.get("namespace", "default")},
                         "spec": {"scaleTargetRef": {"name": t["service"]}, "minReplicaCount": 0,
                                  "triggers": [{"type": "external-push", "metadata": md}]}})
        objs += case.get("registry") or []  # Upstreams, VirtualDestinations
        if case.get("fixture"):
            for e in case.get("expect") or []:
                if e.get("outcome") == "rewritten":
                    rewritten.add((os.path.basename(case["fixture"]), e["kind"], e["name"]))
    return objs, rewritten


# ---- API helpers --------------------------------------------------------------

def failure(resp):
    """The apiserver's message when resp is a failed Status, else None. With
    several causes they are put in sorted order (the apiserver lists some,
    e.g. a ReferenceGrant's required fields, in varying order)."""
    if not isinstance(resp, dict):
        return str(resp)
    if resp.get("kind") != "Status" or resp.get("status") != "Failure":
        return None
    msg = resp.get("message", "")
    causes = (resp.get("details") or {}).get("causes") or []
    if len(causes) > 1 and " is invalid: " in msg:
        items = sorted("%s: %s" % (c.get("field"), c.get("message")) for c in causes)
        msg = msg.split(" is invalid: ", 1)[0] + " is invalid: [" + ", ".join(items) + "]"
    return msg


def collection(c, rmap, doc):
    """The collection path of doc, or None when its kind is not served."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in rmap:
        return None
    prefix, plural, namespaced = rmap[key]
    if namespaced:
        return "%s/namespaces/%s/%s" % (prefix, (doc.get("metadata") or {}).get("namespace") or "default", plural)
    return "%s/%s" % (prefix, plural)


def strict_create(c, rmap, doc, dry_run):
    """POST doc with fieldValidation=Strict (dryRun=All when dry_run).
    Returns (stored object, None) or (None, the apiserver's message)."""
    params = {"fieldValidation": "Strict"}
    if dry_run:
        params["dryRun"] = "All"
    resp = c.api("POST", collection(c, rmap, doc), doc, params=params, check=False)
    msg = failure(resp)
    return (None, msg) if msg is not None else (resp, None)


def scratch_copy(obj, opt_out=True):
    """obj as a new object to create: another name, no server-set fields, the
    opt-out label (so the webhook does not see it) unless not opt_out, no
    allocated IPs."""
    md = obj.get("metadata") or {}
    new = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    name = md.get("name") or md.get("generateName") or "x"
    new["metadata"] = {"name": name[:50].rstrip("-.") + "-zwcheck",
                       "labels": dict(md.get("labels") or {}, **(OPT_OUT if opt_out else {})),
                       "annotations": dict(md.get("annotations") or {})}
    if md.get("namespace"):
        new["metadata"]["namespace"] = md["namespace"]
    if obj.get("kind") == "Service":
        new["spec"] = {k: v for k, v in obj.get("spec", {}).items() if k not in ("clusterIP", "clusterIPs")}
    return new


def revalidate(c, rmap, obj):
    """None when obj, created afresh under a scratch name, passes the schema
    with strict field validation (dry run); else the apiserver's message."""
    return strict_create(c, rmap, scratch_copy(obj), dry_run=True)[1]


def pointer_get(obj, pointer):
    cur = obj
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, list):
            cur = cur[int(part)] if part.isdigit() and int(part) < len(cur) else None
        elif isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return None
        if cur is None:
            return None
    return cur


def holds(stored, written):
    """True when every field of written is in stored with its value (stored
    may have more: defaults)."""
    if isinstance(written, dict):
        return isinstance(stored, dict) and all(k in stored and holds(stored[k], v) for k, v in written.items())
    if isinstance(written, list):
        return isinstance(stored, list) and len(stored) == len(written) and \
            all(holds(x, y) for x, y in zip(stored, written))
    return stored == written


def ensure_namespaces(c, docs):
    for _, doc in docs:
        ns = (doc.get("metadata") or {}).get("namespace")
        if ns:
            try:
                c.ensure_namespace(ns)
            except Exception:  # noqa: BLE001 - an invalid name: the create reports it
                pass
    c.ensure_namespace("default")


# ---- fixtures -----------------------------------------------------------------

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    flags, log = audit_args(str(tmp_path_factory.mktemp("audit")))
    c = RealCluster(BINS, controller_manager=False, scheduler=False, name="zw-crds", extra_apiserver_args=flags)
    c.audit_log = log
    c.start()
    try:
        t = time.monotonic()
        c.crds = install_upstream_crds(c, examples.upstream_crd_files())
        c.crd_seconds = time.monotonic() - t
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def baseline(real):
    """Part (a): every seed and example manifest created by a strict dry run
    without the webhook. {"seeds"|"examples": {label: (doc, stored or None,
    message or None)}}, a kind no CRD serves: stored and message None."""
    rmap = examples.resource_map(real)
    real.rmap = rmap
    out = {}
    for part, docs in (("seeds", seed_docs()), ("examples", example_docs())):
        res = {}
        # Namespace manifests first, while they do not exist yet; then the
        # namespaces the others name.
        for label, doc in [x for x in docs if x[1]["kind"] == "Namespace"] + [(None, None)] + \
                [x for x in docs if x[1]["kind"] != "Namespace"]:
            if label is None:
                ensure_namespaces(real, docs)
                continue
            if collection(real, rmap, doc) is None:
                res[label] = (doc, None, None)
                continue
            stored, msg = strict_create(real, rmap, doc, dry_run=True)
            res[label] = (doc, stored, msg)
        out[part] = res
    return out


def key_of(doc):
    md = doc.get("metadata") or {}
    return (group_of(doc), doc["kind"], md.get("namespace") or "default", md.get("name"))


def rounds_of(items):
    """items [(label, doc)] in rounds where no two objects share group, kind,
    namespace and name: the n-th object of a name goes to round n."""
    seen, rounds = {}, []
    for label, doc in items:
        key = key_of(doc)
        n = seen.get(key, 0)
        seen[key] = n + 1
        while len(rounds) <= n:
            rounds.append([])
        rounds[n].append((label, doc))
    return rounds


class Admitted:
    """Part (b) and (c), run once for the module: per manifest label, what
    the apiserver answered through the webhook, the route as stored, and the
    route after `zerowire-webhook restore`; the webhook's own objects; each
    round's restore exit code and output."""

    def __init__(self):
        self.result = {}      # label -> (stored or None, message or None)
        self.stored = {}      # label -> route as stored after the webhook's convergence
        self.restored = {}    # label -> route after restore
        self.made = []        # objects labelled managed-by zerowire, per round, before restore
        self.restores = []    # (round, rc, output)
        self.rounds = 0
        self.round_of = {}    # label -> round
        self.again = {}       # label -> (message, kubectl warnings) of a route (a) rejected,
                              # a dry run through the webhook once it knows every target
        self.seconds = 0.0


def wait_registered(c, rmap, probe_ns):
    """Creates a last target and waits until the webhook rewrites a route to
    it (the ScaledObject watch delivers in order: the earlier ones are known)."""
    c.ensure_namespace(probe_ns)
    c.api("POST", "/apis/keda.sh/v1alpha1/namespaces/%s/scaledobjects" % probe_ns, {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "probe"},
        "spec": {"scaleTargetRef": {"name": "probe"}, "triggers": [{"type": "external-push", "metadata": {
            "scalerAddress": "zerowire-proxy.zerowire:9090", "service": "probe", "port": "80"}}]}},
        check=False)
    probe = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
             "metadata": {"name": "probe", "namespace": probe_ns},
             "spec": {"defaultBackend": {"service": {"name": "probe", "port": {"number": 80}}}}}

    def rewritten():
        got, _ = strict_create(c, rmap, probe, dry_run=True)
        return got and ORIGINAL in (got["metadata"].get("annotations") or {})
    c.wait_for(rewritten, 60, 0.25, "the webhook knows its targets")


def managed_objects(c):
    out = []
    for path in ("/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices",
                 "/apis/gateway.networking.k8s.io/v1/referencegrants", "/apis/keda.sh/v1alpha1/scaledobjects"):
        lst = c.api("GET", path, params={"labelSelector": MANAGED})
        kind = lst["kind"][:-len("List")]
        for item in lst["items"]:
            item.setdefault("apiVersion", lst["apiVersion"])
            item.setdefault("kind", kind)
            out.append(item)
    return out


def admission_warnings(c, doc):
    """What the webhook says about doc now (kubectl's warnings of a server dry run)."""
    r = c.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(scratch_copy(doc, opt_out=False)),
                  check=False)
    return r.stderr.strip()


def settle(c, labels_paths, expected, docs, timeout=60):
    """Waits until every expected label's route carries the original
    annotation, then until the webhook's own objects stop changing over two
    reconciler passes. Returns the stored routes {label: object}."""
    def get_all():
        return {label: c.api("GET", path, check=False) for label, path in labels_paths.items()}

    def missing():
        got = get_all()
        return [label for label in expected
                if ORIGINAL not in ((got.get(label) or {}).get("metadata", {}).get("annotations") or {})]
    try:
        c.wait_for(lambda: not missing(), timeout, 0.5, "the routes the admission cases expect rewritten")
    except TimeoutError:
        raise AssertionError("not rewritten:\n" + "\n".join(
            "%s: %s" % (label, admission_warnings(c, docs[label]) or "(no warning)") for label in missing()))
    last, stable_since = None, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = sorted((o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"], o["metadata"]["resourceVersion"])
                     for o in managed_objects(c))
        if now != last:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= 2 * RESYNC + 1:
            break
        time.sleep(0.5)
    return get_all()


def restore(c):
    r = subprocess.run([BIN, "restore", "--kubeconfig", c.kubeconfig, "--webhook-config", MWC,
                        "--lease-namespace", PROXY_NS, "--handover", "0s", "--deadline", "20s"],
                       capture_output=True, text=True, timeout=120)
    # README "Uninstall": after a restore the webhook stays a follower until
    # the Lease goes; the next round's webhook must lead again.
    c.api("DELETE", "/apis/coordination.k8s.io/v1/namespaces/%s/leases/zerowire-webhook" % PROXY_NS, check=False)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture(scope="module")
def admitted(real, baseline, tmp_path_factory):
    """Parts (b) and (c): the manifests of (a) through the webhook, round by
    round, each round restored by `zerowire-webhook restore`."""
    c, rmap = real, real.rmap
    t0 = time.monotonic()
    tmp = str(tmp_path_factory.mktemp("webhook"))
    c.ensure_namespace(PROXY_NS)
    # The proxy Service with one ready endpoint, which the aliases mirror.
    c.api("POST", "/api/v1/namespaces/%s/services" % PROXY_NS, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "zerowire-proxy"},
        "spec": {"selector": {"app": "zerowire-proxy"},
                 "ports": [{"name": "http", "port": PROXY_PORT, "protocol": "TCP"}]}},
        params={"fieldValidation": "Strict"})
    c.api("POST", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % PROXY_NS, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "zerowire-proxy-1", "labels": {"kubernetes.io/service-name": "zerowire-proxy"}},
        "addressType": "IPv4", "endpoints": [{"addresses": [PROXY_IP], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": PROXY_PORT, "protocol": "TCP"}]},
        params={"fieldValidation": "Strict"})
    # Every manifest of a served kind but Namespaces (they exist: (a) made them).
    labelled = [(part[:-1] + ":" + k, v[0]) for part in ("seeds", "examples") for k, v in baseline[part].items()
                if (v[1] or v[2]) and v[0]["kind"] != "Namespace"]
    targets, case_rewritten = case_targets()
    # Once each, not where a manifest is (a case may borrow an example's
    # Upstream: the manifest itself is created), not in a namespace no
    # manifest can be in (Istio's docs use "nsA").
    seen, kept = {key_of(doc) for _, doc in labelled}, []
    for t in targets:
        if key_of(t) not in seen and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", t["metadata"]["namespace"]):
            seen.add(key_of(t))
            kept.append(t)
    targets = kept
    ensure_namespaces(c, [(None, t) for t in targets])
    for t in targets:
        _, msg = strict_create(c, rmap, t, dry_run=False)
        assert msg is None, "target %s: %s" % (t["metadata"], msg)

    expected = set("seed:" + s for s in EXPECT["seed_routes_rewritten"])
    for label, doc in labelled:
        if label.startswith("example:") and is_route(doc) and label not in EXPECT["not_rewritten_in_one_cluster"] \
                and baseline["examples"][label.split(":", 1)[1]][2] is None \
                and (label.split(":", 1)[1].split("#")[0], doc["kind"], doc["metadata"]["name"]) in case_rewritten:
            expected.add(label)
    a = Admitted()
    w = WebhookProc(c, tmp, ["--handwired-hosts", HANDWIRED])  # and --resync 5 (RESYNC)
    rounds = rounds_of(labelled)
    a.rounds = len(rounds)
    try:
        for n, batch in enumerate(rounds):
            w.start()
            c.apply(json.dumps(mwc_manifest(w.port, w.ca)))
            wait_registered(c, rmap, "zw-probe-%d" % n)
            batch = [x for x in batch if not is_route(x[1])] + [x for x in batch if is_route(x[1])]
            paths = {}
            for label, doc in batch:
                a.round_of[label] = n
                a.result[label] = strict_create(c, rmap, doc, dry_run=False)
                if is_route(doc) and a.result[label][0] is not None:
                    paths[label] = "%s/%s" % (collection(c, rmap, doc), doc["metadata"]["name"])
            a.stored.update(settle(c, paths, [label for label in paths if label in expected], dict(batch)))
            for label, doc in batch:
                part, key = label.split(":", 1)
                if is_route(doc) and baseline[part + "s"][key][2] is not None:
                    a.again[label] = (strict_create(c, rmap, doc, dry_run=True)[1], admission_warnings(c, doc))
            a.made.extend(managed_objects(c))
            assert w.stop() == 0, w.logs()[-3000:]
            rc, output = restore(c)
            a.restores.append((n, rc, output))
            for label, path in paths.items():
                a.restored[label] = c.api("GET", path, check=False)
            # Routes go; other objects stay for later rounds' routes (an
            # Upstream of one example serves another's route) unless a later
            # round has one of the same name.
            later = {key_of(doc) for batch2 in rounds[n + 1:] for _, doc in batch2}
            for label, doc in reversed(batch):
                if a.result[label][0] is not None and (is_route(doc) or key_of(doc) in later):
                    c.api("DELETE", "%s/%s" % (collection(c, rmap, doc), doc["metadata"]["name"]), check=False)
        a.expected = expected
        a.seconds = time.monotonic() - t0
        yield a
    finally:
        if w.proc is not None and w.proc.poll() is None:
            w.stop()
        logs = w.logs() if os.path.exists(w.log_path) else ""
        assert "AddressSanitizer" not in logs and "runtime error" not in logs, logs[-5000:]


# ---- part (a) -----------------------------------------------------------------

def test_upstream_crds_established(real):
    names = real.kubectl("get", "crd", "-o", "name").stdout.split()
    for want in EXPECT["crds"]:
        assert "customresourcedefinition.apiextensions.k8s.io/" + want in names, want
    assert set(real.crds) == set(n.split("/", 1)[1] for n in names)
    # CEL is on: a Gateway API rule no OpenAPI keyword expresses.
    got = real.kubectl("create", "--dry-run=server", "--validate=strict", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "cel", "namespace": "default"},
        "spec": {"rules": [{"backendRefs": [{"name": "app"}]}]}}))
    assert got.returncode != 0 and "Must have port for Service reference" in got.stderr, got.stderr
    # Strict: an unknown field is an error, not dropped.
    got = real.kubectl("create", "--dry-run=server", "--validate=strict", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "strict", "namespace": "default"},
        "spec": {"rules": [{"backendRef": [{"name": "app", "port": 80}]}]}}))
    assert got.returncode != 0 and 'unknown field "spec.rules[0].backendRef"' in got.stderr, got.stderr
    print("upstream CRDs: %d installed and Established in %.1f s" % (len(real.crds), real.crd_seconds))


def _compare(got, want, what):
    new = {k: v for k, v in got.items() if k not in want}
    wrong = {k: (v, want[k]) for k, v in got.items() if k in want and v != want[k]}
    passing = [k for k in want if k not in got]
    assert not (new or wrong or passing), (
        "%s differ from e2e/real/schema_expectations.yaml:\nnew rejections: %s\nother message (got, listed): %s\n"
        "listed but accepted now: %s" % (what, json.dumps(new, indent=1), json.dumps(wrong, indent=1), passing))


def test_seed_manifests_against_real_schemas(baseline):
    res = baseline["seeds"]
    assert len(res) >= 25, sorted(res)
    assert not [label for label, (doc, stored, msg) in res.items() if stored is None and msg is None], \
        "seed manifests whose kind no upstream CRD serves"
    got = {label: msg for label, (doc, stored, msg) in res.items() if msg is not None}
    want = {e["manifest"]: e["message"] for e in EXPECT["seed_rejections"]}
    _compare(got, want, "seed manifests the real schemas reject")
    for label, (doc, stored, msg) in res.items():
        if msg is None:  # nothing dropped: what would be stored holds every field of the manifest
            assert holds({k: v for k, v in stored.items() if k != "metadata"},
                         {k: v for k, v in doc.items() if k != "metadata"}), label


def test_docs_report_every_seed_error():
    with open(SEEDS_DOC) as f:
        text = f.read()
    for e in EXPECT["seed_rejections"]:
        assert "`%s`" % e["manifest"] in text, "docs/seeds.md does not report %s" % e["manifest"]
        for field in e["fields"]:
            assert "`%s`" % field in text, "docs/seeds.md does not name field %s of %s" % (field, e["manifest"])


def test_example_manifests_against_real_schemas(baseline):
    res = baseline["examples"]
    not_served = sorted({doc["kind"] for doc, stored, msg in res.values() if stored is None and msg is None})
    assert not_served == sorted(EXPECT["examples_not_served"]), not_served
    got = {label: msg for label, (doc, stored, msg) in res.items() if msg is not None}
    _compare(got, EXPECT["example_rejections"], "example manifests the real schemas reject")
    assert sum(1 for _, stored, _ in res.values() if stored) > 200


# ---- part (b) -----------------------------------------------------------------

def _rewritten(a):
    return {label: obj for label, obj in a.stored.items()
            if ORIGINAL in ((obj or {}).get("metadata", {}).get("annotations") or {})}


def test_rewritten_routes_pass_real_schema(real, baseline, admitted):
    """Every route manifest the schema accepts as written is accepted through
    the webhook too; every route zerowire rewrote is stored with all it
    wrote and passes a strict dry run afresh."""
    a = admitted
    refused = {}
    for label, (stored, msg) in a.result.items():
        part, key = label.split(":", 1)
        if msg is not None and baseline[part + "s"][key][2] is None:
            refused[label] = msg
    assert not refused, "accepted without zerowire, refused with it:\n%s" % json.dumps(refused, indent=1)
    rewritten = _rewritten(a)
    missing = sorted(set(a.expected) - set(rewritten))
    assert not missing, "expected rewritten, not rewritten: %s" % missing
    seeds = sorted(label.split(":", 1)[1] for label in rewritten if label.startswith("seed:"))
    assert seeds == sorted(EXPECT["seed_routes_rewritten"]), seeds
    # What the cases expect rewritten on their own, but another example changes here.
    assert not set(EXPECT["not_rewritten_in_one_cluster"]) & set(rewritten)
    problems = []
    for label, obj in rewritten.items():
        for rec in json.loads(obj["metadata"]["annotations"][ORIGINAL]):
            if not holds(pointer_get(obj, rec["path"]), rec["written"]):
                problems.append("%s: %s not stored as written %s" % (label, rec["path"], rec["written"]))
        msg = revalidate(real, real.rmap, obj)
        if msg:
            problems.append("%s: %s" % (label, msg))
    assert not problems, "\n".join(problems)
    print("rewritten routes: %d (seeds %d), all stored and valid; %d rounds, %.1f s" % (
        len(rewritten), sum(1 for k in rewritten if k.startswith("seed:")), a.rounds, a.seconds))
    assert len(rewritten) >= 70  # 73 measured (7 of them seed routes)


def test_invalid_manifests_through_webhook(baseline, admitted):
    """A manifest the schema rejects as written is rejected through the
    webhook too, with the same message: at creation, and again by a dry run
    once the webhook knows every target. zerowire does not make an invalid
    route valid (it could not restore it); the port-less seed routes get its
    warning saying why."""
    a = admitted
    differ = {}
    for label, (stored, msg) in a.result.items():
        part, key = label.split(":", 1)
        want = baseline[part + "s"][key][2]
        if want is not None and msg != want:
            differ[label] = {"without webhook": want, "through webhook": msg}
        if want is not None and label in a.again and a.again[label][0] != want:
            differ[label + " (dry run)"] = {"without webhook": want, "through webhook": a.again[label][0]}
    assert not differ, json.dumps(differ, indent=1)
    listed = EXPECT["left_alone_with_warning"]
    assert sorted(label for label in listed if label in a.again) == sorted(listed), sorted(a.again)
    for label, warning in listed.items():
        assert warning in a.again[label][1], "%s: %s" % (label, a.again[label][1])
    # The other rejected routes carry no such warning.
    others = [label for label, (_, w) in a.again.items() if label not in listed and "has no port" in w]
    assert not others, others


def test_routes_not_rewritten_are_stored_as_applied(baseline, admitted):
    diff = []
    for label, obj in admitted.stored.items():
        if ORIGINAL in ((obj or {}).get("metadata", {}).get("annotations") or {}):
            continue
        part, key = label.split(":", 1)
        want = baseline[part + "s"][key][1]
        if json.dumps(obj.get("spec")) != json.dumps(want.get("spec")):
            diff.append(label)
    assert not diff, diff


def test_restore_puts_routes_back_byte_for_byte(real, baseline, admitted):
    a = admitted
    rewritten = _rewritten(a)
    for n, rc, output in a.restores:
        assert rc == 0, "round %d: restore exit %d\n%s" % (n, rc, output[-3000:])
    problems = []
    for label, before in rewritten.items():
        after = a.restored.get(label) or {}
        part, key = label.split(":", 1)
        want = baseline[part + "s"][key][1]
        if json.dumps(after.get("spec")) != json.dumps(want.get("spec")):
            problems.append("%s: spec after restore\n  %s\n differs from as applied\n  %s" % (
                label, json.dumps(after.get("spec")), json.dumps(want.get("spec"))))
        if ORIGINAL in (after.get("metadata", {}).get("annotations") or {}):
            problems.append("%s: %s still there" % (label, ORIGINAL))
        msg = revalidate(real, real.rmap, after)
        if msg:
            problems.append("%s: restored route fails the schema: %s" % (label, msg))
    assert not problems, "\n".join(problems)


# ---- part (c) -----------------------------------------------------------------

def test_webhook_objects_pass_real_schema(real, admitted):
    made = admitted.made
    kinds = sorted({o["kind"] for o in made})
    for want in ("Service", "EndpointSlice", "ReferenceGrant", "ScaledObject"):
        assert want in kinds, "the webhook made no %s (made: %s)" % (want, kinds)
    problems = ["%s %s/%s: %s" % (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"], m)
                for o in made for m in [revalidate(real, real.rmap, o)] if m]
    assert not problems, "\n".join(problems)
    print("objects zerowire made: %d (%s)" % (len(made), ", ".join(
        "%s %d" % (k, sum(1 for o in made if o["kind"] == k)) for k in kinds)))


def test_every_request_zerowire_sent_was_accepted(real, admitted):
    """The audit log: every create/update/patch/delete zerowire's client sent
    (User-Agent zerowire/...) was accepted, apart from races (404 gone, 409
    conflict: retried); each object body it
    created or updated passes a strict dry run as sent (a field the apiserver
    would have dropped is an error there)."""
    with open(real.audit_log) as f:
        events = [json.loads(line) for line in f if line.strip()]
    ours = [e for e in events if e.get("userAgent", "").startswith("zerowire/") and e.get("stage") == "ResponseComplete"]
    assert ours, "no request from zerowire in the audit log"
    refused, bodies, checked = [], [], 0
    for e in ours:
        code = e.get("responseStatus", {}).get("code", 0)
        ref = e.get("objectRef", {})
        what = "%s %s %s/%s" % (e["verb"], ref.get("resource"), ref.get("namespace"), ref.get("name"))
        if code >= 400 and code not in (404, 409):
            refused.append("%s: %d %s" % (what, code, e.get("responseStatus", {}).get("message", "")))
        if e["verb"] in ("create", "update") and isinstance(e.get("requestObject"), dict) \
                and e["requestObject"].get("kind") and code < 300 and ref.get("resource") != "leases":
            checked += 1
            msg = revalidate(real, real.rmap, e["requestObject"])
            if msg:
                bodies.append("%s: %s" % (what, msg))
    assert not refused, "\n".join(refused)
    assert not bodies, "\n".join(bodies)
    assert checked >= 10, checked  # the ReferenceGrants, aliases, ScaledObjects at least
    print("zerowire requests in the audit log: %d, object bodies checked: %d" % (len(ours), checked))
