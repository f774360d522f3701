"""Local responses whose body comes from a ConfigMap (proxy/bodies.c):
the add-on's bodyFromConfigMap (labelled ConfigMaps only; an omitted key is
derived from the request path, the Content-Type from the key) and Kedify's
waiting-page ConfigMap (body, status and Retry-After keys). Static mode: the
ConfigMaps come from the targets file; the live mode (watches by name) is in
kube_test.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zwproxy import Proxy, scaledobject, wait_for  # noqa: E402

LABEL = {"http.keda.sh/response-body": "true"}


def configmap(name, data, labels=None, ns="default"):
    md = {"name": name, "namespace": ns}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data}


def site_route(cm_name, key=None, mode="Always"):
    ref = {"name": cm_name}
    if key:
        ref["key"] = key
    return {
        "apiVersion": "http.keda.sh/v1beta1",
        "kind": "InterceptorRoute",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "target": {"service": "web", "port": 80},
            "rules": [{"hosts": ["web.test"]}],
            "scalingMetric": {"concurrency": {"targetValue": 10}},
            "staticRoutes": [{"rules": [{"hosts": ["web.test"], "paths": [{"value": "/maint"}]}],
                              "responseMode": mode,
                              "response": {"statusCode": 200, "bodyFromConfigMap": ref}}],
        },
    }


def test_key_derived_from_the_path(tmp_path):
    site = configmap("site", {"index.html": "<h1>down</h1>", "style.css": "h1{}", "robots.txt": "no"}, LABEL)
    ir = site_route("site")
    ir["spec"]["staticRoutes"][0]["rules"][0]["paths"] = [{"value": "/"}]
    p = Proxy(tmp_path, [ir, site])
    try:
        cases = [("/", 200, b"<h1>down</h1>", "text/html"),
                 ("/?x=1", 200, b"<h1>down</h1>", "text/html"),
                 ("/style.css", 200, b"h1{}", "text/css"),
                 ("/robots.txt", 200, b"no", "text/plain"),
                 ("/missing.html", 404, b"zerowire: no such page\n", "text/plain"),
                 ("/a/b.css", 404, b"zerowire: no such page\n", "text/plain"),
                 ("/..", 404, b"zerowire: no such page\n", "text/plain")]
        for path, status, body, ctype in cases:
            r, got = p.get(path, host="web.test")
            assert (r.status, got) == (status, body), (path, r.status, got)
            assert r.getheader("Content-Type").startswith(ctype), (path, r.getheader("Content-Type"))
        assert p.queue().get("default/web", {}).get("requestCount", 0) == 0
    finally:
        assert p.stop() == 0


def test_explicit_key_label_and_missing(tmp_path):
    labelled = configmap("page", {"maint.html": "<p>later</p>"}, LABEL)
    unlabelled = configmap("plain", {"maint.html": "<p>secret</p>"})
    p = Proxy(tmp_path, [site_route("page", key="maint.html"), labelled, unlabelled])
    try:
        r, body = p.get("/maint", host="web.test")
        assert r.status == 200 and body == b"<p>later</p>" and r.getheader("Content-Type").startswith("text/html")
        # An explicit key the ConfigMap lacks: 500, as the add-on.
        p.write_targets([site_route("page", key="other.html"), labelled])
        p.reload()
        wait_for(lambda: b"lacks its key" in p.get("/maint", host="web.test")[1], what="missing key -> 500")
        assert p.get("/maint", host="web.test")[0].status == 500
        # Without the label the ConfigMap is not served: 500 naming the label.
        p.write_targets([site_route("plain", key="maint.html"), unlabelled])
        p.reload()
        wait_for(lambda: b"label" in p.get("/maint", host="web.test")[1], what="unlabelled -> 500")
        r, body = p.get("/maint", host="web.test")
        assert r.status == 500 and b"http.keda.sh/response-body" in body and b"secret" not in body
        # The ConfigMap appears later (same file reload): served.
        p.write_targets([site_route("plain", key="maint.html"), dict(unlabelled, metadata=dict(
            unlabelled["metadata"], labels=LABEL))])
        p.reload()
        wait_for(lambda: p.get("/maint", host="web.test")[1] == b"<p>secret</p>", what="labelled now")
    finally:
        assert p.stop() == 0


def test_kedify_waiting_page_configmap(tmp_path):
    page = configmap("wait", {"coldStartWaitingPageBody": "<h1>warming up</h1>",
                              "coldStartWaitingPageStatusCode": "200",
                              "coldStartWaitingPageRetryAfter": "3"})
    so = scaledobject("app", "app", 80, hosts="app.test", coldStartWaitingPageEnabled="true",
                      coldStartWaitingPageConfigMapRef="wait")
    p = Proxy(tmp_path, [so, page])
    try:
        r, body = p.get("/")
        assert (r.status, body) == (200, b"<h1>warming up</h1>"), (r.status, body)
        assert r.getheader("Retry-After") == "3" and r.getheader("X-Zerowire-Cold-Start") == "true"
        assert r.getheader("Content-Type").startswith("text/html")
        # Without the ConfigMap: Kedify's default page (503, Retry-After 10).
        p.write_targets([so])
        p.reload()
        wait_for(lambda: p.get("/")[0].status == 503, what="default waiting page")
        r, body = p.get("/")
        assert body == b"Service is starting, try again later." and r.getheader("Retry-After") == "10"
        # Invalid status / Retry-After values are ignored.
        p.write_targets([so, configmap("wait", {"coldStartWaitingPageBody": "x",
                                                "coldStartWaitingPageStatusCode": "abc",
                                                "coldStartWaitingPageRetryAfter": "1\r\nX-Evil: 1"})])
        p.reload()
        wait_for(lambda: p.get("/")[1] == b"x", what="page x")
        r, _ = p.get("/")
        assert r.status == 503 and r.getheader("Retry-After") == "10" and r.getheader("X-Evil") is None
    finally:
        assert p.stop() == 0
