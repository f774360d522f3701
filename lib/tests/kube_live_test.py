"""Live tests of the C Kubernetes client (lib/kube*.c, lib/watch.c) against a
real kube-apiserver (the session `cluster` fixture), through the test CLI
build/san/test/lib_tool_kube (ASan/UBSan build; every run must exit cleanly).

Requests go through both drivers: "thread" (the blocking client, curl easy)
and "uv" (curl multi socket on libuv). Watches run on the libuv driver, the
only one (both programs watch on a libuv loop)."""

import base64
import json
import os
import queue
import secrets
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

ROOT = os.environ.get("ZW_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "build", "san", "test", "lib_tool_kube")
DRIVERS = ["thread", "uv"]
EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED", "SYNCED")


def tool(cluster, *args, input=None, kubeconfig=None, env=None, check=True):
    """Runs the tool once; returns (exit code, parsed JSON stdout or None)."""
    argv = [TOOL, "--kubeconfig", kubeconfig or cluster.kubeconfig, *[str(a) for a in args]]
    r = subprocess.run(argv, input=None if input is None else json.dumps(input), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60, env=env)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    out = json.loads(r.stdout) if r.stdout.strip() else None
    if check:
        assert r.returncode == 0, (argv, r.returncode, r.stdout, r.stderr)
    return r.returncode, out


def api_error(cluster, *args, **kw):
    rc, out = tool(cluster, *args, check=False, **kw)
    assert rc == 2, (rc, out)
    return out["error"]


class Watcher:
    """A running `lib_tool_kube watch`; collects its JSON lines."""

    def __init__(self, cluster, driver, gv, resource, ns, *extra, server=None, argv=None, env=None, more=()):
        """Watches gv/resource in ns, plus the (gv, resource, ns) triples in
        more, all in one process."""
        self.argv = argv or [TOOL, "--kubeconfig", cluster.kubeconfig, "--driver", driver,
                             *(["--server", server] if server else []), *extra, "watch", gv, resource, ns,
                             *[x for t in more for x in t]]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.lines = []
        self.lock = threading.Lock()
        self.stderr = []
        self.t_out = threading.Thread(target=self._read, daemon=True)
        self.t_err = threading.Thread(target=self._read_err, daemon=True)
        self.t_out.start()
        self.t_err.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(json.loads(line))

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def events(self, resource=None):
        """[(type, name)] of delivered events so far (SYNCED as (SYNCED, None)),
        of one resource when given."""
        with self.lock:
            return [(ln["type"], ln.get("name")) for ln in self.lines
                    if "type" in ln and resource in (None, ln["resource"])]

    def full_events(self):
        with self.lock:
            return [ln for ln in self.lines if "type" in ln]

    def statuses(self):
        with self.lock:
            return [ln for ln in self.lines if "status" in ln]

    def wait(self, pred, timeout=30, what="events"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.events()):
                return self.events()
            assert self.proc.poll() is None, "watcher exited: %s" % "".join(self.stderr)
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s; have %r; status %r; stderr %s" % (
            what, self.events(), self.statuses(), "".join(self.stderr)[-2000:]))

    def wait_count(self, n, timeout=30):
        return self.wait(lambda ev: len(ev) >= n, timeout, "%d events" % n)

    def stop(self):
        """SIGTERM; the tool must stop its watch and exit 0 without sanitizer reports."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("watcher did not stop within 20 s after SIGTERM")
        self.t_out.join(5)
        self.t_err.join(5)
        err = "".join(self.stderr)
        assert rc == 0, "watcher exit %s: %s" % (rc, err[-3000:])
        assert "Sanitizer" not in err and "runtime error" not in err, err[-3000:]


@pytest.fixture
def ns(cluster):
    name = cluster.create_namespace("kube")
    yield name
    cluster.delete_namespace(name)


@pytest.fixture
def watchers():
    started = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def cm(name, **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


# ---- requests -----------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_create_get_update_delete_errors(cluster, ns, driver):
    d = ("--driver", driver)
    _, created = tool(cluster, *d, "create", "v1", "configmaps", ns, input=cm("one", a="1"))
    assert created["metadata"]["namespace"] == ns and created["data"] == {"a": "1"}
    # typed errors carry the API server's Status
    err = api_error(cluster, *d, "create", "v1", "configmaps", ns, input=cm("one"))
    assert err["http_status"] == 409 and err["reason"] == "AlreadyExists"
    assert 'configmaps "one" already exists' in err["message"]
    err = api_error(cluster, *d, "get", "v1", "configmaps", ns, "missing")
    assert (err["http_status"], err["reason"]) == (404, "NotFound")
    err = api_error(cluster, *d, "create", "v1", "configmaps", ns, input=cm("Bad_Name"))
    assert err["http_status"] == 422 and err["reason"] == "Invalid" and "Bad_Name" in err["message"]
    _, got = tool(cluster, *d, "get", "v1", "configmaps", ns, "one")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    # update (PUT): conditional on resourceVersion
    got["data"]["b"] = "2"
    _, updated = tool(cluster, *d, "update", "v1", "configmaps", ns, "one", input=got)
    assert updated["data"] == {"a": "1", "b": "2"}
    err = api_error(cluster, *d, "update", "v1", "configmaps", ns, "one", input=got)  # stale RV
    assert (err["http_status"], err["reason"]) == (409, "Conflict")
    # dry run: validated, not stored; field manager recorded
    _, dry = tool(cluster, *d, "--dry-run", "create", "v1", "configmaps", ns, input=cm("dry"))
    assert dry["metadata"]["name"] == "dry"
    assert api_error(cluster, *d, "get", "v1", "configmaps", ns, "dry")["http_status"] == 404
    _, fm = tool(cluster, *d, "--field-manager", "zw-test", "create", "v1", "configmaps", ns,
                 input=cm("managed", k="v"))
    assert "zw-test" in [m["manager"] for m in fm["metadata"]["managedFields"]]
    # names are escaped in paths: a name with odd characters cannot address another object
    assert api_error(cluster, *d, "get", "v1", "configmaps", ns, "one/../managed")["http_status"] in (400, 404)
    tool(cluster, *d, "delete", "v1", "configmaps", ns, "one")
    assert api_error(cluster, *d, "get", "v1", "configmaps", ns, "one")["http_status"] == 404
    assert api_error(cluster, *d, "delete", "v1", "configmaps", ns, "one")["reason"] == "NotFound"


def deployment(name, replicas=1, containers=("app", "side")):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": c, "image": "img-" + c} for c in containers]}}},
    }


@pytest.mark.parametrize("driver", DRIVERS)
def test_patch_types(cluster, ns, driver):
    d = ("--driver", driver)
    tool(cluster, *d, "create", "apps/v1", "deployments", ns, input=deployment("web"))
    # JSON patch (RFC 6902)
    _, out = tool(cluster, *d, "patch", "apps/v1", "deployments", ns, "web", "json", input=[
        {"op": "add", "path": "/metadata/labels", "value": {"tier": "front"}},
        {"op": "replace", "path": "/spec/replicas", "value": 2}])
    assert out["metadata"]["labels"] == {"tier": "front"} and out["spec"]["replicas"] == 2
    err = api_error(cluster, *d, "patch", "apps/v1", "deployments", ns, "web", "json", input=[
        {"op": "test", "path": "/spec/replicas", "value": 7}])
    assert err["http_status"] == 422 and err["reason"] == "Invalid" and err["message"]
    # strategic merge: containers merge by name (both kept)
    _, out = tool(cluster, *d, "patch", "apps/v1", "deployments", ns, "web", "strategic", input={
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "img-new"}]}}}})
    cs = out["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in cs] == [("app", "img-new"), ("side", "img-side")]
    # merge patch (RFC 7386): lists are replaced
    _, out = tool(cluster, *d, "patch", "apps/v1", "deployments", ns, "web", "merge", input={
        "metadata": {"labels": {"tier": None, "x": "y"}},
        "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "img-only"}]}}}})
    assert out["metadata"]["labels"] == {"x": "y"}
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["only"]


def test_list_pagination(cluster, ns):
    names = ["cm-%02d" % i for i in range(25)]
    for n in names:
        cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                    {"metadata": {"name": n, "labels": {"set": "a" if int(n[-2:]) % 2 else "b"}}})
    _, out = tool(cluster, "--limit", "10", "list", "v1", "configmaps", ns)
    assert out["pages"] == 3
    assert sorted(i["metadata"]["name"] for i in out["items"]) == names
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in out["items"])
    assert int(out["resourceVersion"]) > 0
    _, out = tool(cluster, "--limit", "5", "--selector", "set=a", "list", "v1", "configmaps", ns)
    assert len(out["items"]) == 12 and out["pages"] == 3
    # default page size: one page
    _, out = tool(cluster, "list", "v1", "configmaps", ns)
    assert out["pages"] == 1 and len(out["items"]) == 25
    # cluster-scoped collection
    _, out = tool(cluster, "--limit", "1", "list", "v1", "namespaces", "-")
    assert ns in [i["metadata"]["name"] for i in out["items"]] and out["pages"] >= 2


def test_scale_subresource(cluster, ns):
    tool(cluster, "create", "apps/v1", "deployments", ns, input=deployment("api", replicas=1))
    _, out = tool(cluster, "scale-get", "apps/v1", "deployments", ns, "api")
    assert out["replicas"] == 1
    tool(cluster, "scale-set", "apps/v1", "deployments", ns, "api", 3)
    assert cluster.api("GET", "/apis/apps/v1/namespaces/%s/deployments/api" % ns)["spec"]["replicas"] == 3
    assert tool(cluster, "scale-get", "apps/v1", "deployments", ns, "api")[1]["replicas"] == 3
    tool(cluster, "--dry-run", "scale-set", "apps/v1", "deployments", ns, "api", 5)
    assert tool(cluster, "scale-get", "apps/v1", "deployments", ns, "api")[1]["replicas"] == 3
    tool(cluster, "scale-set", "apps/v1", "deployments", ns, "api", 0)
    assert tool(cluster, "scale-get", "apps/v1", "deployments", ns, "api")[1]["replicas"] == 0
    err = api_error(cluster, "scale-get", "apps/v1", "deployments", ns, "absent")
    assert err["http_status"] == 404


def test_discovery(cluster):
    assert tool(cluster, "served", "v1", "configmaps")[1] == {"served": True}
    assert tool(cluster, "served", "apps/v1", "deployments")[1] == {"served": True}
    assert tool(cluster, "served", "apps/v1", "gizmos")[1] == {"served": False}
    assert tool(cluster, "served", "absent.zerowire.io/v1", "gizmos")[1] == {"served": False}
    # Kubernetes 1.20 serves EndpointSlice as v1beta1 only
    assert tool(cluster, "served", "discovery.k8s.io/v1beta1", "endpointslices")[1] == {"served": True}
    assert tool(cluster, "served", "discovery.k8s.io/v1", "endpointslices")[1] == {"served": False}


def test_token_kubeconfig_and_in_cluster_rotation(cluster, ns, tmp_path, watchers):
    # kubeconfig with a bearer token
    assert tool(cluster, "get", "v1", "namespaces", "-", ns, kubeconfig=cluster.kubeconfig_token)[1][
        "metadata"]["name"] == ns
    # in-cluster: a service-account directory; an unprivileged token gets a typed 403
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(cluster.sa_token(ns, "nobody"))
    with open(cluster.ca_file) as f:
        (sa / "ca.crt").write_text(f.read())
    (sa / "namespace").write_text(ns)
    env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(cluster.port))
    argv = [TOOL, "--sa-dir", str(sa), "get", "v1", "configmaps", ns, "x"]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, env=env)
    err = json.loads(r.stdout)["error"]
    assert r.returncode == 2 and err["http_status"] == 403 and err["reason"] == "Forbidden"
    assert "system:serviceaccount:%s:nobody" % ns in err["message"]
    # a long-running watch picks up the rotated token (file replaced, as kubelet does)
    w = Watcher(cluster, "uv", "v1", "configmaps", ns, env=env,
                argv=[TOOL, "--sa-dir", str(sa), "--driver", "uv", "watch", "v1", "configmaps", ns])
    watchers.append(w)
    w.wait(lambda ev: False if not w.statuses() else True, 30, "a RETRY status")
    assert all(s["status"] == "RETRY" and "403" in s["reason"] for s in w.statuses())
    (sa / "token.new").write_text(cluster.admin_token)
    os.rename(sa / "token.new", sa / "token")
    w.wait(lambda ev: ("SYNCED", None) in ev, 60, "SYNCED after the token rotation")
    w.stop()


@pytest.mark.parametrize("first,second", [
    ({"kind": "ConfigMapList", "metadata": {}}, None),
    ({"kind": "ConfigMapList", "metadata": {}, "items": None}, None),
    ({"kind": "ConfigMapList", "metadata": {}, "items": {}}, None),
    ({"kind": "ConfigMapList", "metadata": {"continue": "p2"}, "items": []}, {"kind": "ConfigMapList", "metadata": {}}),
], ids=["no-items", "null-items", "object-items", "second-page-no-items"])
def test_list_without_items_is_an_error(tmp_path, first, second):
    """A LIST reply without an `items` array (on any page) is refused with
    BadResponse, never read as an empty list: a real apiserver always sends
    `"items": []`, and reading a truncated or misrouted reply as empty would
    make a caller drop every object it knows. A served fake: no real
    apiserver sends such a reply."""
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(second if "continue=" in self.path and second is not None else first).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        kc = tmp_path / "kubeconfig"
        kc.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "f",
            "contexts": [{"name": "f", "context": {"cluster": "f", "user": "u"}}],
            "clusters": [{"name": "f", "cluster": {"server": "http://127.0.0.1:%d" % srv.server_address[1]}}],
            "users": [{"name": "u", "user": {"token": "t"}}]}))
        r = subprocess.run([TOOL, "--kubeconfig", str(kc), "list", "v1", "configmaps", "default"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
        assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
        assert json.loads(r.stdout)["error"]["reason"] == "BadResponse", r.stdout
    finally:
        srv.shutdown()


def test_exec_plugin_via_merged_kubeconfig_env(cluster, ns, tmp_path):
    """$KUBECONFIG naming two files (clusters/contexts in one, the user in the
    other, plus a missing one), the user an exec credential plugin printing a
    valid token with an expirationTimestamp in the past: every request runs
    it again, and the real API server accepts the token."""
    runs = tmp_path / "runs"
    plugin = tmp_path / "plugin.sh"
    plugin.write_text("#!/bin/sh\necho x >> %s\nprintf '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                      "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%%s\","
                      "\"expirationTimestamp\":\"2001-01-01T00:00:00Z\"}}' \"$ZW_TOKEN\"\n" % runs)
    plugin.chmod(0o755)
    (tmp_path / "a").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "live",
        "contexts": [{"name": "live", "context": {"cluster": "c", "user": "plugin"}}],
        "clusters": [{"name": "c", "cluster": {"server": cluster.server,
                                                "certificate-authority": cluster.ca_file}}]}))
    (tmp_path / "b").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "users": [{"name": "plugin", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "./plugin.sh",
            "env": [{"name": "ZW_TOKEN", "value": cluster.admin_token}]}}}]}))
    env = dict(os.environ, KUBECONFIG="%s:%s:%s" % (tmp_path / "missing", tmp_path / "a", tmp_path / "b"))
    env.pop("KUBERNETES_SERVICE_HOST", None)
    argv = [TOOL, "get", "v1", "namespaces", "-", ns]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["metadata"]["name"] == ns
    assert len(runs.read_text().split()) >= 2  # at load, and again since expired
    # A plugin giving a wrong token: a typed 401 after the retry with a fresh run.
    env["KUBECONFIG"] = "%s:%s" % (tmp_path / "a", tmp_path / "b")
    (tmp_path / "b").write_text((tmp_path / "b").read_text().replace(cluster.admin_token, "wrong"))
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, env=env)
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["http_status"] == 401, r.stdout + r.stderr


# ---- watches ------------------------------------------------------------------------


def test_watch_events_in_order(cluster, ns, watchers):
    for n in ("pre-a", "pre-b"):
        cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm(n))
    # timeoutSeconds=2: the watch is re-established several times during the test
    w = Watcher(cluster, "uv", "v1", "configmaps", ns, "--timeout-seconds", "2", "--limit", "1")
    watchers.append(w)
    w.wait(lambda ev: ("SYNCED", None) in ev)
    assert w.events() == [("ADDED", "pre-a"), ("ADDED", "pre-b"), ("SYNCED", None)]
    expect = []
    for i in range(6):
        name = "c%d" % i
        cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm(name))
        expect.append(("ADDED", name))
        if i % 2:
            cluster.api("PATCH", "/api/v1/namespaces/%s/configmaps/%s" % (ns, name), {"data": {"k": str(i)}},
                        content_type="application/merge-patch+json")
            expect.append(("MODIFIED", name))
        if i == 3:
            time.sleep(2.5)  # across a watch timeout
    cluster.api("DELETE", "/api/v1/namespaces/%s/configmaps/pre-a" % ns)
    expect.append(("DELETED", "pre-a"))
    w.wait_count(3 + len(expect))
    time.sleep(3)  # nothing more may come (no duplicates after reconnects)
    assert w.events()[3:] == expect
    full = w.full_events()
    rvs = [int(e["rv"]) for e in full if e["type"] != "SYNCED"]
    assert rvs[2:] == sorted(rvs[2:])
    assert [e for e in full if e["type"] == "MODIFIED"][0]["object"]["data"] == {"k": "1"}
    assert all(e["object"]["kind"] == "ConfigMap" for e in full if e["type"] != "SYNCED")
    assert not [s for s in w.statuses() if s["status"] in ("RETRY", "RELIST")]
    w.stop()


CRD_TEMPLATE = """{
 "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
 "metadata": {"name": "gizmos.%(group)s"},
 "spec": {"group": "%(group)s", "scope": "Namespaced",
  "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo", "listKind": "GizmoList"},
  "versions": [{"name": "v1", "served": true, "storage": true,
   "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}
"""


def test_watch_waits_for_absent_resource(cluster, ns, watchers):
    group = "w%s.zerowire.io" % secrets.token_hex(3)
    w = Watcher(cluster, "uv", group + "/v1", "gizmos", ns, "--discovery-ms", "300")
    watchers.append(w)
    w.wait(lambda ev: bool(w.statuses()), 20, "WAITING")
    time.sleep(2)  # several discovery rounds: still exactly one quiet status
    assert [s["status"] for s in w.statuses()] == ["WAITING"] and w.events() == []
    cluster.apply(CRD_TEMPLATE % {"group": group})
    cluster.kubectl("wait", "--for=condition=established", "--timeout=60s", "crd/gizmos." + group)
    w.wait(lambda ev: ("SYNCED", None) in ev, 30, "SYNCED after the CRD appeared")
    cluster.api("POST", "/apis/%s/v1/namespaces/%s/gizmos" % (group, ns),
                {"apiVersion": group + "/v1", "kind": "Gizmo", "metadata": {"name": "g1"}})
    w.wait(lambda ev: ("ADDED", "g1") in ev)
    assert w.events() == [("SYNCED", None), ("ADDED", "g1")]
    assert [s["status"] for s in w.statuses()] == ["WAITING", "SYNCED"]
    # the CRD goes away: its objects are deleted and the watch waits quietly again
    cluster.kubectl("delete", "crd", "gizmos." + group, "--wait=true", "--timeout=60s")
    w.wait(lambda ev: w.statuses()[-1]["status"] == "WAITING", 60, "WAITING after the CRD was deleted")
    assert [e for e in w.events() if e != ("SYNCED", None)] == [("ADDED", "g1"), ("DELETED", "g1")]
    time.sleep(1.5)
    assert w.statuses()[-1]["status"] == "WAITING"
    w.stop()


class PausableProxy:
    """A TCP forwarder to the API server that can cut every connection and
    refuse new ones (accept + close) while paused."""

    def __init__(self, port):
        self.upstream = ("127.0.0.1", port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.paused = False
        self.conns = set()
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if self.paused:
                c.close()
                continue
            try:
                u = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns.add((c, u))
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    def _pump(self, c, u):
        socks = [c, u]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 0.5)
                if self.closed or (c, u) not in self.conns:
                    break
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        raise OSError
                    (u if s is c else c).sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.conns.discard((c, u))
            for s in socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def pause(self):
        self.paused = True
        with self.lock:
            conns = list(self.conns)
            self.conns.clear()
        for c, u in conns:
            for s in (c, u):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def resume(self):
        self.paused = False

    def close(self):
        self.closed = True
        self.pause()
        self.lsock.close()


def test_forced_relist_after_compaction(cluster, ns, watchers):
    """ConfigMap watches are served from etcd (watch cache off in the fixture):
    after a compaction a watch resuming from an older resourceVersion gets
    410 Gone; the client relists and delivers exactly the difference."""
    proxy = PausableProxy(cluster.port)
    try:
        for n in ("a", "b", "c"):
            cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm(n))
        w = Watcher(cluster, "uv", "v1", "configmaps", ns, server="https://127.0.0.1:%d" % proxy.port)
        watchers.append(w)
        w.wait(lambda ev: ("SYNCED", None) in ev)
        cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("x"))
        w.wait(lambda ev: ("ADDED", "x") in ev)
        proxy.pause()  # the watch loses its connection and cannot reconnect
        cluster.api("PATCH", "/api/v1/namespaces/%s/configmaps/a" % ns, {"data": {"v": "2"}},
                    content_type="application/merge-patch+json")
        cluster.api("DELETE", "/api/v1/namespaces/%s/configmaps/b" % ns)
        cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("d"))
        cluster.compact_etcd()
        w.wait(lambda ev: any(s["status"] == "RETRY" for s in w.statuses()), 20, "RETRY while cut off")
        proxy.resume()
        w.wait(lambda ev: ev.count(("SYNCED", None)) == 2, 60, "second SYNCED (relist)")
        assert any(s["status"] == "RELIST" and "410" in s["reason"] for s in w.statuses()), w.statuses()
        assert w.events() == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c"), ("SYNCED", None), ("ADDED", "x"),
                              ("MODIFIED", "a"), ("ADDED", "d"), ("DELETED", "b"), ("SYNCED", None)]
        # and the watch goes on from the relisted resourceVersion
        cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("e"))
        w.wait(lambda ev: ("ADDED", "e") in ev)
        time.sleep(1)
        assert w.events()[9:] == [("ADDED", "e")]
        w.stop()
    finally:
        proxy.close()


def test_apiserver_restart_mid_watch(cluster, ns, watchers):
    """kube-apiserver restarts during the watches: events resume without loss
    or duplication, for an etcd-served resource (ConfigMaps) and a cached one
    (Secrets), several watches per process on one loop."""
    resources = ("configmaps", "secrets")
    ws = {"uv": Watcher(cluster, "uv", "v1", "configmaps", ns, more=[("v1", "secrets", ns)])}
    watchers.extend(ws.values())
    for w in ws.values():
        for r in resources:
            w.wait(lambda ev, r=r: ("SYNCED", None) in w.events(r), what="SYNCED of " + r)

    def create(res, name, data=None):
        body = {"metadata": {"name": name}, "data": data or {}}
        if res == "secrets":
            body["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in (data or {}).items()}
        cluster.api("POST", "/api/v1/namespaces/%s/%s" % (ns, res), body)

    for r in resources:
        create(r, "before")
    for w in ws.values():
        for r in resources:
            w.wait(lambda ev, r=r: ("ADDED", "before") in w.events(r))
    cluster.restart_apiserver()
    for r in resources:
        create(r, "after", {"k": "v"})
        cluster.api("PATCH", "/api/v1/namespaces/%s/%s/before" % (ns, r), {"metadata": {"labels": {"x": "1"}}},
                    content_type="application/merge-patch+json")
    for d, w in ws.items():
        for r in resources:
            w.wait(lambda ev, r=r: ("MODIFIED", "before") in w.events(r), 90,
                   "%s/%s events after the restart" % (d, r))
    time.sleep(3)
    for d, w in ws.items():
        for r in resources:
            ev = [e for e in w.events(r) if e != ("SYNCED", None)]
            # a relist after the restart may add SYNCED markers, never other events
            assert ev == [("ADDED", "before"), ("ADDED", "after"), ("MODIFIED", "before")], (
                d, r, w.events(r), w.statuses())
        assert any(s["status"] == "RETRY" for s in w.statuses()), (d, w.statuses())
    for w in ws.values():
        w.stop()


def test_uv_watch_stops_inside_its_callback(cluster, ns):
    """zw_kube_uv_watch_stop from inside the watch's own event callback: no
    callback follows (the tool aborts if one does), memory is released on the
    loop, and the process ends cleanly once every watch has stopped."""
    for i in range(5):
        cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("s%d" % i))
    # in the middle of delivering a (paginated) list, two watches in one loop
    argv = [TOOL, "--kubeconfig", cluster.kubeconfig, "--driver", "uv", "--limit", "2", "--stop-after", "3",
            "watch", "v1", "configmaps", ns, "v1", "configmaps", ns]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr[-3000:]
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    # each watch printed exactly its first three events (the two may interleave)
    assert sorted((x["type"], x["name"]) for x in lines if "type" in x) == sorted(
        [("ADDED", "s0"), ("ADDED", "s1"), ("ADDED", "s2")] * 2)
    # in the middle of a watch stream: the 7th event is the first live one
    w = Watcher(cluster, "uv", "v1", "configmaps", ns, "--stop-after", "7")
    w.wait(lambda ev: ("SYNCED", None) in ev)
    cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("live1"))
    cluster.api("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("live2"))
    rc = w.proc.wait(timeout=30)
    w.t_out.join(5)
    w.t_err.join(5)
    assert rc == 0, "".join(w.stderr)[-3000:]
    assert "Sanitizer" not in "".join(w.stderr)
    assert w.events()[-2:] == [("SYNCED", None), ("ADDED", "live1")]
