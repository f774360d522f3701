"""Every admission case (webhook/tests/cases/*.yaml, fixtures included) run
through webhook_tool_mutate: the JSON Patch the webhook answers must apply
with python-jsonpatch (an independent RFC 6902 implementation) and give the
same object as zerowire's own applier; admitting that result again must give
no patch; and with no targets at all it must come back exactly as admitted."""
import base64
import glob
import json
import os
import subprocess
import tempfile

import jsonpatch
import pytest
import yaml

ROOT = os.environ.get("ZW_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
SHARED = os.environ.get("ZW_SHARED", os.path.join(ROOT, "..", "shared"))
TOOL = os.path.join(ROOT, "build", "san", "test", "webhook_tool_mutate")
CASES = sorted(glob.glob(os.path.join(ROOT, "webhook", "tests", "cases", "*.yaml")))
SCALER = "zerowire-proxy.zerowire:9090"


def target_object(t, i, scaler):
    """The external-push ScaledObject the case runner makes for a shorthand target."""
    md = {"scalerAddress": scaler, "service": t["service"]}
    for k in ("port", "portName", "hosts", "pathPrefixes"):
        if k in t:
            md[k] = str(t[k])
    if "autowire" in t:
        md["trafficAutowire"] = t["autowire"]
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "%s-target-%d" % (t["service"], i),
                         "namespace": t.get("namespace", "default")},
            "spec": {"scaleTargetRef": {"name": t["service"]},
                     "triggers": [{"type": "external-push", "metadata": md}]}}


def load_case(path):
    with open(path) as f:
        case = yaml.safe_load(f)
    docs = []
    if case.get("fixture"):
        fx = os.path.join(SHARED, "fixtures", case["fixture"])
        if not os.path.isdir(SHARED):
            pytest.skip("../shared absent: fixtures not available")
        with open(fx) as f:
            docs += [d for d in yaml.safe_load_all(f)]
    docs += case.get("objects") or []
    docs = [d for d in docs if isinstance(d, dict) and d.get("kind")]
    config = dict(case.get("config") or {})
    scaler = config.get("scaler_address", SCALER)
    registry = [target_object(t, i, scaler) for i, t in enumerate(case.get("targets") or [])]
    registry += case.get("registry") or []
    if case.get("registry_from_fixture"):
        registry += docs
    return case, docs, {"config": config, "registry": registry, "wiring": case.get("wiring") or []}


def review(obj, namespace):
    api = obj.get("apiVersion", "v1")
    group, version = api.split("/", 1) if "/" in api else ("", api)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "py-1", "kind": {"group": group, "version": version,
                                                "kind": obj["kind"]},
                        "namespace": namespace, "operation": "CREATE", "object": obj}}


def run_tool(setup, reviews):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(setup, f)
        name = f.name
    try:
        stdin = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in reviews)
        out = subprocess.run([TOOL, name], input=stdin, capture_output=True, text=True,
                             timeout=120, check=True).stdout
    finally:
        os.unlink(name)
    lines = [json.loads(l) for l in out.splitlines()]
    assert len(lines) == len(reviews)
    return lines


def patch_of(answer):
    b64 = answer["response"]["response"].get("patch")
    if b64 is None:
        assert "patchType" not in answer["response"]["response"]
        return None
    assert answer["response"]["response"]["patchType"] == "JSONPatch"
    return json.loads(base64.b64decode(b64))


@pytest.fixture(scope="module", autouse=True)
def tool_built():
    if not os.path.exists(TOOL):
        pytest.fail("%s missing: run `make SAN=1 tools`" % TOOL)


@pytest.mark.parametrize("path", CASES, ids=[os.path.basename(c) for c in CASES])
def test_patches_apply_with_python_jsonpatch(path):
    case, docs, setup = load_case(path)
    namespaces = [(d.get("metadata") or {}).get("namespace") or case.get("namespace") or "default"
                  for d in docs]
    answers = run_tool(setup, [review(d, ns) for d, ns in zip(docs, namespaces)])
    results = []
    for doc, ns, ans in zip(docs, namespaces, answers):
        assert ans["status"] == 200, ans
        assert ans["response"]["response"]["uid"] == "py-1"
        patch = patch_of(ans)
        if patch is None:
            results.append(doc)
            continue
        for op in patch:
            assert op["op"] in ("add", "remove", "replace")
            assert op["path"].startswith("/")
        mine = jsonpatch.apply_patch(doc, patch)
        assert mine == ans["patched"], "python-jsonpatch and zerowire disagree on %s" % doc["metadata"]
        assert mine != doc
        results.append(mine)

    # Admitting the results again changes nothing.
    again = run_tool(setup, [review(r, ns) for r, ns in zip(results, namespaces)])
    for r, ans in zip(results, again):
        assert ans["status"] == 200
        assert patch_of(ans) is None, "second admission of %s patched again" % r["metadata"]

    # With no targets, every recorded rewrite is undone exactly.
    bare = dict(setup, registry=[], wiring=[])
    back = run_tool(bare, [review(r, ns) for r, ns in zip(results, namespaces)])
    for doc, r, ans in zip(docs, results, back):
        patch = patch_of(ans)
        annotations = (doc.get("metadata") or {}).get("annotations") or {}
        if patch is None or "zerowire.io/original" in annotations:
            continue
        assert jsonpatch.apply_patch(r, patch) == doc
