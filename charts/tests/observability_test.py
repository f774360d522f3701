"""Tests of the chart's observability (issue #13): the alert rules checked by
the real `promtool check rules` and unit-tested by `promtool test rules`
(charts/tests/rules_test.yaml), the Grafana dashboard and PrometheusRule
behind their toggles, the access-log / tracing / webhook metrics-port values
becoming flags, and every metric the dashboard and the rules query being one
the proxy or the webhook really exports."""
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "proxy", "tests"))
sys.path.insert(0, os.path.join(ROOT, "webhook", "tests"))
from chart_test import render, by_kind, helm, CHART  # noqa: E402
from harness import gotools  # noqa: E402

RULES = os.path.join(CHART, "files", "zerowire-rules.yaml")
DASHBOARD = os.path.join(CHART, "files", "zerowire-dashboard.json")


@pytest.fixture(scope="session")
def promtool():
    return gotools.require("promtool")


def test_promtool_check_rules(promtool):
    r = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 9 rules found" in r.stdout, r.stdout


def test_promtool_test_rules(promtool):
    r = subprocess.run([promtool, "test", "rules", os.path.join(HERE, "rules_test.yaml")],
                       capture_output=True, text=True, timeout=60, cwd=HERE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_toggles_render_dashboard_and_rule():
    docs = render()
    assert not by_kind(docs, "PrometheusRule")
    assert not [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
    docs = render("--set", "observability.grafanaDashboard.enabled=true",
                  "--set", "observability.prometheusRule.enabled=true",
                  "--set", "observability.prometheusRule.labels.release=kps")
    (cm,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["zerowire.json"])
    assert dash["uid"] == "zerowire" and len(dash["panels"]) > 10
    (rule,) = by_kind(docs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    with open(RULES) as f:
        assert rule["spec"] == yaml.safe_load(f)


def args_of(docs, name):
    for d in by_kind(docs, "Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            if c["name"] == name:
                return c
    raise AssertionError(name)


def test_values_become_flags():
    docs = render()
    proxy = args_of(docs, "proxy")
    assert "--access-log=off" in proxy["args"]
    assert not [a for a in proxy["args"] if a.startswith("--otlp-endpoint")]
    wh = args_of(docs, "webhook")
    assert "--metrics-listen=0.0.0.0:9102" in wh["args"]
    assert {"name": "metrics", "containerPort": 9102, "protocol": "TCP"} in wh["ports"]
    docs = render("--set", "observability.accessLog=json",
                  "--set", "observability.tracing.otlpEndpoint=http://otel.monitoring:4318/v1/traces",
                  "--set", "observability.tracing.sampler=0.1",
                  "--set", "observability.webhookMetricsPort=0")
    proxy = args_of(docs, "proxy")
    for a in ("--access-log=json", "--otlp-endpoint=http://otel.monitoring:4318/v1/traces",
              "--trace-sampler=0.1", "--trace-batch=512", "--trace-queue=4096"):
        assert a in proxy["args"], proxy["args"]
    assert not [a for a in args_of(docs, "webhook")["args"] if a.startswith("--metrics-listen")]
    for bad in (["--set", "observability.accessLog=xml"], ["--set", "observability.tracing.sampler=2"],
                ["--set", "observability.tracing.otlpEndpoint=otel:4318"]):
        r = helm("template", "zerowire", CHART, *bad, check=False)
        assert r.returncode != 0 and "observability" in r.stderr, bad


def queried_metrics():
    """Metric names the rules and the dashboard query (histogram series
    reduced to their family)."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    with open(RULES) as f:
        exprs += [r["expr"] for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
    names = set()
    for e in exprs:
        for n in re.findall(r"\b((?:zerowire|process)_[a-z_]+)", e):
            names.add(re.sub(r"_(bucket|sum|count)$", "", n))
    return names


def test_queried_metrics_exist(tmp_path):
    from zwproxy import Backend, Proxy, scaledobject, free_port
    from webhook_test import Webhook
    b = Backend("127.0.0.1", name="pod")
    p = Proxy(tmp_path, [scaledobject("app", "app", 80, hosts="app.test")],
              {"default/app": [(b.ip, b.port)]})
    w = Webhook(tmp_path)
    try:
        assert p.get("/")[0].status == 200
        exported = set()
        for text in (p.metrics(), w.metrics()):
            exported |= {l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")}
        missing = queried_metrics() - exported
        assert not missing, missing
    finally:
        assert p.stop() == 0
        b.stop()
        assert w.stop() == 0
