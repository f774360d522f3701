"""The chart's webhook rules (helm template) are exactly the admitted kinds of
webhook/routekinds.c (groups, resources, versions), for the default kinds and
for each kind alone; the table is printed by webhook_tool_routekinds."""
import os
import subprocess

import pytest

from chart_test import ROOT, by_kind, render

TOOL = os.path.join(ROOT, "build", "san", "test", "webhook_tool_routekinds")
WORDS = ["ingress", "httproute", "grpcroute", "virtualservice", "gloo"]


def table(kinds):
    if not os.path.exists(TOOL):
        pytest.fail("%s is missing: run make SAN=1 tools" % TOOL)
    out = subprocess.run([TOOL, kinds], capture_output=True, text=True, check=True).stdout
    return {tuple(line.split(" ")) for line in out.splitlines() if line}


def chart_rules(*extra):
    mwc = by_kind(render(*extra), "MutatingWebhookConfiguration")
    assert len(mwc) == 1
    got = set()
    for hook in mwc[0]["webhooks"]:
        for rule in hook["rules"]:
            for g in rule["apiGroups"]:
                for v in rule["apiVersions"]:
                    for r in rule["resources"]:
                        triple = (g, v, r)
                        assert triple not in got, "duplicate rule %s" % (triple,)
                        got.add(triple)
    return got


def test_default_kinds_match_table():
    assert chart_rules() == table(",".join(WORDS))


@pytest.mark.parametrize("word", WORDS)
def test_each_kind_matches_table(word):
    assert chart_rules("--set", "kinds={%s}" % word) == table(word)
