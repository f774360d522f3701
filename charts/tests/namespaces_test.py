"""The webhook's namespaceSelector: the built-in exclusions (kube-system,
kube-node-lease, the release namespace, zerowire.io/autowire=false), narrowed to
watchNamespaces when set, merged with webhook.namespaceSelector; on Kubernetes 1.20
(no kubernetes.io/metadata.name label) the name clauses are left out; the schema
describes the value; the real kube-apiserver accepts what is rendered."""
import json

import pytest

from chart_test import by_kind, helm, render, CHART

NAME = "kubernetes.io/metadata.name"
SYSTEM = {"key": NAME, "operator": "NotIn", "values": ["kube-system", "kube-node-lease", "zerowire"]}
OPT_OUT = {"key": "zerowire.io/autowire", "operator": "NotIn", "values": ["false"]}


def selector(*values):
    (wh,) = by_kind(render(*values), "MutatingWebhookConfiguration")[0]["webhooks"]
    return wh["namespaceSelector"]


def test_default_selector():
    assert selector() == {"matchExpressions": [SYSTEM, OPT_OUT]}


def test_watch_namespaces_narrow_the_selector():
    got = selector("--set", "watchNamespaces={team-a,team-b}")
    assert got == {"matchExpressions": [SYSTEM, {"key": NAME, "operator": "In", "values": ["team-a", "team-b"]},
                                        OPT_OUT]}


def test_user_selector_is_merged():
    user = {"matchLabels": {"env": "prod"},
            "matchExpressions": [{"key": "team", "operator": "In", "values": ["web"]},
                                 {"key": "legacy", "operator": "DoesNotExist"}]}
    got = selector("--set-json", "webhook.namespaceSelector=" + json.dumps(user), "--set", "watchNamespaces={a}")
    assert got["matchLabels"] == {"env": "prod"}
    assert got["matchExpressions"] == [SYSTEM, {"key": NAME, "operator": "In", "values": ["a"]}, OPT_OUT,
                                       *user["matchExpressions"]]


def test_kubernetes_1_20_has_no_name_label():
    got = selector("--kube-version", "1.20.15", "--set", "watchNamespaces={a}")
    assert got == {"matchExpressions": [OPT_OUT]}
    assert selector("--kube-version", "1.21.0")["matchExpressions"][0] == SYSTEM


@pytest.mark.parametrize("bad", [
    {"bogus": {}},
    {"matchLabels": {"a": 1}},
    {"matchExpressions": [{"key": "a", "operator": "Maybe"}]},
    {"matchExpressions": [{"key": "a"}]},
    {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"], "extra": 1}]},
])
def test_schema_rejects_bad_selectors(bad):
    r = helm("template", "zerowire", CHART, "--set-json", "webhook.namespaceSelector=" + json.dumps(bad),
             check=False)
    assert r.returncode != 0 and "schema" in (r.stderr + r.stdout).lower(), r.stderr


def test_apiserver_accepts_the_selector(cluster):
    user = {"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "team", "operator": "Exists"}]}
    out = helm("template", "zerowire", CHART, "-n", "zerowire", "--set", "watchNamespaces={a,b}",
               "--set-json", "webhook.namespaceSelector=" + json.dumps(user),
               "--show-only", "templates/mutatingwebhook.yaml").stdout
    r = cluster.kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-", input=out)
    stored = json.loads(r.stdout)["webhooks"][0]["namespaceSelector"]
    assert stored["matchLabels"] == {"env": "prod"}
    assert {"key": NAME, "operator": "In", "values": ["a", "b"]} in stored["matchExpressions"]
