"""Upstream CRDs and example manifests from ../shared/fixtures: loading them,
the Kubernetes 1.20 adjustments design.md lists, and server-side dry-run
creation of every example document."""

import glob
import os
import re

import yaml

from . import util
from .cluster import ClusterError

APPROVAL = "api-approved.kubernetes.io"


def fixtures_dir(sub):
    return os.path.join(util.shared_dir(), "fixtures", sub)


def upstream_crd_files():
    """Upstream CRD files in install order. Istio's per-kind files duplicate
    crd-all.gen.yaml and are left out; Gateway API experimental files come
    after the standard ones (they replace HTTPRoute, TCPRoute, TLSRoute with
    the experimental channel's superset)."""
    d = fixtures_dir("crds")
    files = sorted(glob.glob(os.path.join(d, "*.yaml")))
    files = [f for f in files if not re.search(r"istio-[\d.]+-networking-", os.path.basename(f))]
    std = [f for f in files if "-experimental-" not in f]
    exp = [f for f in files if "-experimental-" in f]
    return std + exp


def adjust_crd_text(text):
    """The 1.20 adjustments: drop `default: ""` lines (1.20 turns them into
    null defaults that then fail validation), and add the API approval
    annotation to *.k8s.io CRDs that lack it. Returns YAML text."""
    text = re.sub(r'(?m)^\s*default: ""\s*\n', "", text)
    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        if d.get("kind") != "CustomResourceDefinition":
            continue
        group = d["spec"]["group"]
        if group.endswith(".k8s.io") or group == "k8s.io":
            ann = d["metadata"].setdefault("annotations", {}) or {}
            d["metadata"]["annotations"] = ann
            ann.setdefault(APPROVAL, "https://github.com/kubernetes/enhancements/pull/1111")
    return yaml.safe_dump_all(docs, sort_keys=False)


def example_docs():
    """[(file basename, index, doc)] for every YAML document in
    fixtures/examples (templates *.tpl excluded)."""
    out = []
    for f in sorted(glob.glob(os.path.join(fixtures_dir("examples"), "*.yaml"))):
        with open(f) as fh:
            for i, doc in enumerate(yaml.safe_load_all(fh)):
                if isinstance(doc, dict) and doc.get("kind"):
                    if doc["kind"].endswith("List") and "items" in doc:
                        for j, item in enumerate(doc["items"]):
                            out.append((os.path.basename(f), "%d.%d" % (i, j), item))
                    else:
                        out.append((os.path.basename(f), str(i), doc))
    return out


def resource_map(cluster):
    """{(apiVersion, kind): (collection path prefix, plural, namespaced)} from
    discovery, for every served group version."""
    m = {}

    def add(gv, prefix):
        res = cluster.api("GET", prefix)
        for r in res.get("resources", []):
            if "/" in r["name"]:
                continue
            m[(gv, r["kind"])] = (prefix, r["name"], r["namespaced"])
    add("v1", "/api/v1")
    for g in cluster.api("GET", "/apis")["groups"]:
        for v in g["versions"]:
            add(v["groupVersion"], "/apis/" + v["groupVersion"])
    return m


def dry_run_create(cluster, doc, rmap, default_ns="default"):
    """POSTs doc with dryRun=All (nothing is stored). Returns None when the
    kind is not served (not applicable), True when accepted; raises
    ClusterError with the server's message when rejected."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in rmap:
        return None
    prefix, plural, namespaced = rmap[key]
    if namespaced:
        ns = (doc.get("metadata") or {}).get("namespace") or default_ns
        cluster.ensure_namespace(ns)
        path = "%s/namespaces/%s/%s" % (prefix, ns, plural)
    else:
        path = "%s/%s" % (prefix, plural)
    cluster.api("POST", path, doc, params={"dryRun": "All"})
    return True


def check_examples(cluster):
    """Dry-run creates every example. Returns (accepted, not_applicable,
    failures) lists of "file#doc kind name" strings (failures with reasons)."""
    rmap = resource_map(cluster)
    accepted, na, failures = [], [], []
    for f, i, doc in example_docs():
        label = "%s#%s %s/%s %s" % (f, i, doc.get("apiVersion"), doc.get("kind"),
                                     (doc.get("metadata") or {}).get("name"))
        try:
            r = dry_run_create(cluster, doc, rmap)
        except ClusterError as e:
            failures.append("%s: %s" % (label, e))
            continue
        (accepted if r else na).append(label)
    return accepted, na, failures
