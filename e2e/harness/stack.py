"""A zerowire stack on the local control plane: the chart installed with helm
into the real kube-apiserver in url mode, zerowire-webhook and zerowire-proxy
as local processes on loopback, and the node and KEDA stand-ins running.

    with Stack(cluster, app_namespaces=["default"]) as st:
        st.apply(path)                         # kubectl apply, through the chart's webhook
        r = st.request("app.example.com")      # to the proxy, Host header as a gateway sends it

What it does, in order (start()):
  1. a CA and a serving certificate for 127.0.0.1 with bin/zerowire-certs;
  2. zerowire-webhook on 127.0.0.1:<free port>, with the rewriting flags the
     chart gives its in-cluster Deployment (rendered with `helm template` and
     reused, so the local process and the chart agree on the proxy Service,
     its namespace, the scaler address, the kinds and the Lease), waiting for
     /readyz;
  3. zerowire-proxy on 127.0.0.1 (proxy, scaler and admin ports free ports),
     watching the API server through the kubeconfig, waiting for /readyz;
  4. `helm install` of charts/zerowire with webhook.url=https://127.0.0.1:<port>/mutate
     and webhook.caBundle=<the CA>, so every `kubectl apply` passes through
     the chart's own MutatingWebhookConfiguration;
  5. the node stand-in (Deployments -> backend processes, EndpointSlices) and
     the KEDA stand-in (external-push through the real gRPC protocol), whose
     every scalerAddress is dialled at the local proxy's scaler port.
stop() undoes all of it (helm uninstall, SIGTERM to the processes) and
returns the problems found in the processes' logs (sanitizer reports, a
non-zero exit).

The chart's proxy Deployment is created in the cluster like any other object
but nothing runs it there (no kubelet): the local zerowire-proxy is that
Deployment. The stand-ins only manage the application namespaces given.
"""

import base64
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from . import util
from .cluster import _pdeathsig
from .keda import KedaStandin
from .node import NodeStandin

CHART = os.path.join(util.REPO, "charts", "zerowire")
HELM = os.environ.get("ZW_HELM") or os.path.join(util.REPO, "tools", "bin", "helm")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
ORIGINAL = "zerowire.io/original"
# Flags of the chart's webhook container that the local process takes over
# as rendered (the others are about serving in a pod: listen address, certs).
WEBHOOK_FLAGS_FROM_CHART = ("proxy-service", "proxy-namespace", "proxy-port", "proxy-h2c-port", "scaler-address", "kinds",
                            "watch-namespaces", "max-body", "leader-elect", "lease-namespace", "lease-name",
                            "log-level", "alias-mode")
# Sanitizer reports, and any request the chart's RBAC did not allow.
BAD_LOG = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Forbidden", "is forbidden", "status=403")


def binary(name, sanitized=True):
    """Path of bin/zerowire-<name>; with sanitized, the ASan/UBSan build
    (build/san/bin) when it exists. ZW_<NAME>_BIN overrides."""
    env = os.environ.get("ZW_%s_BIN" % name.upper())
    if env:
        return env
    san = os.path.join(util.REPO, "build", "san", "bin", "zerowire-" + name)
    if sanitized and os.access(san, os.X_OK):
        return san
    return os.path.join(util.REPO, "bin", "zerowire-" + name)


class StackError(RuntimeError):
    pass


class Response:
    """One HTTP exchange with the proxy: status, headers (lower-case dict),
    body (bytes), seconds (wall time from connect to the last body byte)."""

    def __init__(self, status, headers, body, seconds):
        self.status, self.headers, self.body, self.seconds = status, headers, body, seconds

    def __repr__(self):
        return "Response(%d, %.3fs, %r)" % (self.status, self.seconds, self.body[:120])


class Stack:
    """See module docstring.

    cluster: a harness.cluster.Cluster. release / namespace: the helm release
    and its namespace. proxy_service / proxy_namespace: chart values
    proxy.service.name / .namespace (seed 001 and 003 use
    keda-add-ons-http-interceptor-proxy in keda). values: extra `--set k=v`
    strings. app_namespaces: where the node and KEDA stand-ins act.
    sanitized: run the ASan/UBSan builds when present (tests), else bin/.
    keda_polling / keda_cooldown: stand-in overrides (None: the objects' own).
    """

    def __init__(self, cluster, app_namespaces, release="zerowire", namespace="zerowire",
                 proxy_service="zerowire-proxy", proxy_namespace=None, values=(), sanitized=True,
                 startup_delay_ms=1000, keda_polling=None, keda_cooldown=None, resync=5, log_dir=None,
                 log_level="info"):
        self.cluster = cluster
        self.app_namespaces = list(app_namespaces)
        self.release, self.namespace = release, namespace
        self.proxy_service = proxy_service
        self.proxy_namespace = proxy_namespace or namespace
        self.values = list(values)
        self.sanitized = sanitized
        self.startup_delay_ms = startup_delay_ms
        self.keda_polling, self.keda_cooldown = keda_polling, keda_cooldown
        self.resync = resync
        self.log_level = log_level
        self.dir = log_dir or tempfile.mkdtemp(prefix="zw-stack.", dir=cluster.tmpdir)
        os.makedirs(self.dir, exist_ok=True)
        self.procs = {}
        self.node = self.keda = None
        self.installed = False
        self.webhook_port = self.proxy_port = self.scaler_port = self.admin_port = None
        self.scaler_addresses = set()  # every scalerAddress the KEDA stand-in was asked to dial
        self.webhook_args = []
        self.dropped_chart_flags = []
        self.helm_env = dict(os.environ, KUBECONFIG=cluster.kubeconfig,
                             HELM_CACHE_HOME=os.path.join(self.dir, "helm-cache"),
                             HELM_CONFIG_HOME=os.path.join(self.dir, "helm-config"),
                             HELM_DATA_HOME=os.path.join(self.dir, "helm-data"))

    # ---- lifecycle -----------------------------------------------------------
    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        for ns in {self.namespace, self.proxy_namespace}:
            self.cluster.ensure_namespace(ns)
        self.webhook_port = util.free_port()
        self.proxy_port, self.scaler_port, self.admin_port = util.free_ports(3)
        self._certs()
        # The chart first: its ServiceAccounts and RBAC are what the processes run with.
        self._helm_install()
        self.webhook_kubeconfig = self._sa_kubeconfig(self.namespace, self.fullname() + "-webhook")
        self.proxy_kubeconfig = self._sa_kubeconfig(self.proxy_namespace, self.fullname() + "-proxy")
        self._start_webhook()
        self._start_proxy()
        self.node = NodeStandin(self.cluster, namespaces=self.app_namespaces,
                                startup_delay_ms=self.startup_delay_ms,
                                log_dir=os.path.join(self.dir, "pods")).start()
        self.keda = KedaStandin(self.cluster, namespaces=self.app_namespaces, resolve=self._resolve,
                                polling_interval=self.keda_polling, cooldown_period=self.keda_cooldown).start()

    def stop(self):
        """Stops everything started (reverse order); returns a list of
        problems found (sanitizer reports, unclean exits), empty when clean."""
        problems = []
        for attr in ("keda", "node"):
            s = getattr(self, attr)
            if s is not None:
                try:
                    s.stop()
                except Exception as e:  # noqa: BLE001 - keep tearing down
                    problems.append("%s stand-in stop: %s" % (attr, e))
                setattr(self, attr, None)
        for name in ("proxy", "webhook"):
            p = self.procs.pop(name, None)
            if p is None:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                    problems.append("%s did not exit within 30 s of SIGTERM" % name)
            if p.returncode != 0:
                problems.append("%s exited with %s" % (name, p.returncode))
            text = self.log(name)
            for bad in BAD_LOG:
                if bad in text:
                    problems.append("%s log has %r:\n%s" % (name, bad, text[-4000:]))
                    break
        # The chart (and with it the processes' RBAC) goes only after they stopped.
        if self.installed:
            r = self.helm("uninstall", self.release, "-n", self.namespace, check=False)
            if r.returncode != 0:
                problems.append("helm uninstall: " + r.stderr.strip())
            self.installed = False
        return problems

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        problems = self.stop()
        if problems and exc[0] is None:
            raise StackError("; ".join(problems))
        return False

    # ---- pieces --------------------------------------------------------------------
    def _certs(self):
        d = os.path.join(self.dir, "pki")
        r = subprocess.run([binary("certs", False), "--out-dir", d, "--ip", "127.0.0.1", "--dns", "localhost"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise StackError("zerowire-certs failed: " + r.stderr)
        self.ca_file, self.cert_file, self.key_file = (os.path.join(d, n) for n in ("ca.crt", "tls.crt", "tls.key"))
        with open(self.ca_file, "rb") as f:
            self.ca_bundle = base64.b64encode(f.read()).decode()

    def helm(self, *args, check=True, timeout=180):
        """Runs tools/bin/helm against the cluster; CompletedProcess (text)."""
        if not os.access(HELM, os.X_OK):
            raise StackError("helm is missing at %s: run scripts/install-helm.sh (make setup does)" % HELM)
        r = subprocess.run([HELM, *args], capture_output=True, text=True, env=self.helm_env, timeout=timeout)
        if check and r.returncode != 0:
            raise StackError("helm %s failed: %s" % (" ".join(args[:2]), r.stderr.strip()))
        return r

    def chart_values(self):
        """The --set arguments of this stack's chart values (without url mode)."""
        out = ["--set", "proxy.service.name=" + self.proxy_service]
        if self.proxy_namespace != self.namespace:
            out += ["--set", "proxy.service.namespace=" + self.proxy_namespace]
        for v in self.values:
            out += ["--set", v]
        return out

    def _chart_webhook_args(self):
        """The args the chart gives its in-cluster webhook container."""
        r = self.helm("template", self.release, CHART, "-n", self.namespace, *self.chart_values(),
                      "--show-only", "templates/webhook-deployment.yaml")
        args = re.findall(r"^\s+- (--[a-z-]+=.*)$", r.stdout, re.M)
        keep = []
        for a in args:
            name = a[2:].split("=", 1)[0]
            if name in WEBHOOK_FLAGS_FROM_CHART:
                keep.append(a.strip().strip('"'))
            else:
                self.dropped_chart_flags.append(a)
        if not any(a.startswith("--proxy-service=") for a in keep):
            raise StackError("chart webhook args not found in:\n" + r.stdout[:2000])
        return keep

    def chart_flag(self, name):
        for a in self.webhook_args:
            if a.startswith("--%s=" % name):
                return a.split("=", 1)[1]
        return None

    @property
    def scaler_address(self):
        """The scalerAddress the webhook writes (the chart's)."""
        return self.chart_flag("scaler-address")

    def scaler_service(self):
        """The Service the scaler address names (name.namespace:port), from
        the API server, or None: a real KEDA would dial it."""
        hostport = self.scaler_address or ""
        host, _, port = hostport.rpartition(":")
        name, _, ns = host.partition(".")
        svc = self.get("services", ns.split(".")[0] or self.proxy_namespace, name)
        if svc is None or int(port) not in [p["port"] for p in svc["spec"].get("ports", [])]:
            return None
        return svc

    @property
    def proxy_host(self):
        """The proxy Service's cluster DNS name."""
        return "%s.%s.svc.cluster.local" % (self.proxy_service, self.proxy_namespace)

    def _spawn(self, name, argv, env=None):
        logf = open(os.path.join(self.dir, name + ".log"), "ab")
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        e.update(env or {})
        # PR_SET_PDEATHSIG: the process dies with the thread that started it,
        # even when this Python process is killed without cleaning up.
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             start_new_session=True, env=e, preexec_fn=_pdeathsig)
        logf.close()
        self.procs[name] = p
        return p

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _https_get(self, port, path):
        import ssl
        ctx = ssl.create_default_context(cafile=self.ca_file)
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
        try:
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    def _wait_proc(self, p, name, ready, timeout=60):
        """Waits for ready() (bounded); fails at once when the process exits."""
        deadline = time.monotonic() + timeout
        while not ready():
            if p.poll() is not None:
                raise StackError("zerowire-%s exited (%s):\n%s" % (name, p.returncode, self.log(name)[-3000:]))
            if time.monotonic() > deadline:
                raise StackError("zerowire-%s not ready within %d s:\n%s" % (name, timeout, self.log(name)[-3000:]))
            time.sleep(0.1)

    def fullname(self):
        """The chart's zerowire.fullname for this release."""
        return "zerowire" if self.release == "zerowire" else (self.release + "-zerowire")[:63].rstrip("-")

    def _sa_kubeconfig(self, ns, sa):
        """A kubeconfig with a token of the chart's ServiceAccount ns/sa (made by
        helm install), so the process has exactly the chart's RBAC."""
        self.cluster.api("GET", "/api/v1/namespaces/%s/serviceaccounts/%s" % (ns, sa))  # the chart's, not ours
        token = self.cluster.sa_token(ns, sa, expiration_seconds=6 * 3600)
        return self.cluster.write_kubeconfig(os.path.join(self.dir, sa + ".kubeconfig"), {"token": token})

    def _start_webhook(self):
        self.webhook_args = self._chart_webhook_args()
        argv = [binary("webhook", self.sanitized), "--kubeconfig", self.webhook_kubeconfig,
                "--listen", "127.0.0.1:%d" % self.webhook_port,
                "--tls-cert-file", self.cert_file, "--tls-key-file", self.key_file,
                "--resync", str(self.resync)] + [a for a in self.webhook_args if not a.startswith("--log-level=")] + \
            ["--log-level", self.log_level]
        p = self._spawn("webhook", argv)

        def ready():
            try:
                return self._https_get(self.webhook_port, "/readyz") == 200
            except OSError:
                return False
        self._wait_proc(p, "webhook", ready)

    def _start_proxy(self):
        argv = [binary("proxy", self.sanitized), "--kubeconfig", self.proxy_kubeconfig,
                "--listen", "127.0.0.1:%d" % self.proxy_port,
                "--scaler-listen", "127.0.0.1:%d" % self.scaler_port,
                "--admin-listen", "127.0.0.1:%d" % self.admin_port,
                "--workers", "2", "--shutdown-delay", "0s", "--drain-timeout", "5s",
                "--readiness-timeout", "60s", "--log-level", self.log_level]
        p = self._spawn("proxy", argv)
        self._wait_proc(p, "proxy", lambda: self.admin_get("/readyz")[0] == 200)

    def _helm_install(self):
        url = "https://127.0.0.1:%d/mutate" % self.webhook_port
        self.helm("install", self.release, CHART, "-n", self.namespace, *self.chart_values(),
                  "--set", "webhook.url=" + url, "--set", "webhook.caBundle=" + self.ca_bundle, "--wait=false")
        self.installed = True

    def _resolve(self, addr):
        self.scaler_addresses.add(addr)
        return "127.0.0.1:%d" % self.scaler_port

    # ---- kubectl and objects ----------------------------------------------------------
    def kubectl(self, *args, **kw):
        return self.cluster.kubectl(*args, **kw)

    def apply(self, src, validate=False):
        """kubectl apply of a file path or YAML text (through the webhook).
        Returns the CompletedProcess (stderr carries admission warnings)."""
        return self.cluster.apply(src, validate=validate)

    def delete(self, src):
        """kubectl delete of a file path or YAML text (missing objects ignored)."""
        if "\n" not in src and os.path.exists(src):
            return self.cluster.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", src)
        return self.cluster.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", input=src)

    def get(self, resource, ns, name):
        """The live object (dict, key order as the API server sent it) or None."""
        r = self.cluster.kubectl("get", resource, name, "-n", ns, "-o", "json", check=False)
        if r.returncode != 0:
            if "NotFound" in r.stderr or "not found" in r.stderr:
                return None
            raise StackError("kubectl get %s %s/%s: %s" % (resource, ns, name, r.stderr))
        return json.loads(r.stdout)

    def as_applied(self, src):
        """What the API server stores for each object of a manifest (file path
        or YAML text) when nothing rewrites it: a server-side dry-run create
        of each object under a scratch name, labelled zerowire.io/autowire:
        "false" so the chart's webhook is not called (its objectSelector).
        Returns {(resource, namespace, name): spec JSON text}: the bytes to
        compare a restored route's spec with."""
        text = open(src).read() if "\n" not in src and os.path.exists(src) else src
        items = json_docs(self.cluster.kubectl("create", "--dry-run=client", "-o", "json", "-f", "-",
                                               input=text).stdout)
        out = {}
        for o in items:
            md = o["metadata"]
            name, ns = md["name"], md.get("namespace", "default")
            probe = json.loads(json.dumps(o))
            probe["metadata"] = {"name": name + "-zwprobe", "namespace": ns,
                                 "labels": dict(md.get("labels") or {}, **{"zerowire.io/autowire": "false"})}
            r = self.cluster.kubectl("create", "--dry-run=server", "--validate=false", "-o", "json", "-f", "-",
                                     input=json.dumps(probe))
            stored = json.loads(r.stdout)
            out[(resource_of(o), ns, name)] = json.dumps(stored.get("spec"))
        return out

    def spec_text(self, resource, ns, name):
        o = self.get(resource, ns, name)
        return None if o is None else json.dumps(o.get("spec"))

    def wait_for(self, pred, timeout=30, what="condition", interval=0.2):
        return util.wait_for(pred, timeout, interval, what)

    def wait_restored(self, applied, timeout=30):
        """Waits until every object of as_applied()'s result has exactly the
        applied spec (byte for byte as JSON from the API) and no
        zerowire.io/original annotation; returns the seconds it took."""
        t0 = time.monotonic()
        for (res, ns, name), text in applied.items():
            def same():
                o = self.get(res, ns, name)
                return o is not None and json.dumps(o.get("spec")) == text and \
                    ORIGINAL not in (o["metadata"].get("annotations") or {})
            try:
                self.wait_for(same, timeout, "%s %s/%s restored exactly as applied" % (res, ns, name))
            except TimeoutError as e:
                raise StackError("%s\napplied: %s\nlive:    %s" % (e, text, self.spec_text(res, ns, name)))
        return time.monotonic() - t0

    # ---- traffic --------------------------------------------------------------------------
    def admin_get(self, path):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            c.close()
            return r.status, body
        except OSError:
            return 0, b""

    def request(self, host, path="/", timeout=90, method="GET", headers=None):
        """One request to the proxy with the given Host header (and further
        headers), as the gateway in front of it would send it."""
        t0 = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", self.proxy_port, timeout=timeout)
        try:
            c.request(method, path, headers=dict(headers or {}, Host=host))
            r = c.getresponse()
            body = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, body, time.monotonic() - t0)
        finally:
            c.close()

    def wrk(self, host, seconds=10, connections=4, threads=1, path="/"):
        """Load from wrk (Debian) against the proxy, bounded in time. Returns
        {"requests": n, "rps": x, "non2xx": n, "errors": n, "output": text}."""
        argv = [WRK, "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--timeout", "10s",
                "-H", "Host: " + host, "http://127.0.0.1:%d%s" % (self.proxy_port, path)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        out = r.stdout + r.stderr
        if r.returncode != 0:
            raise StackError("wrk failed (%d): %s" % (r.returncode, out))
        m = re.search(r"(\d+) requests in", out)
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        return {"requests": int(m.group(1)) if m else 0, "rps": float(rps.group(1)) if rps else 0.0,
                "non2xx": int(non2xx.group(1)) if non2xx else 0,
                "errors": sum(int(x) for x in errs.groups()) if errs else 0, "output": out}

    # ---- the scaling scenario every seed runs ----------------------------------------------
    def replicas(self, ns, deployment):
        d = self.cluster.api("GET", "/apis/apps/v1/namespaces/%s/deployments/%s/scale" % (ns, deployment))
        return d["spec"].get("replicas", 0)

    def exercise(self, ns, deployment, scaledobject, host, path="/", load_seconds=10, connections=4,
                 down_timeout=120, report=None):
        """Scale from zero, out under load, and back to zero, through the
        proxy with the route's Host header. Asserts each step and returns the
        measurements: cold_seconds (first request, held then answered),
        stream_true_ms (request sent -> KEDA stand-in got `true`), peak
        replicas under load, wrk figures, down_seconds (end of load -> zero).
        report(msg): optional progress callback (the demo prints these)."""
        say = report or (lambda msg: None)
        key = "%s/%s" % (ns, scaledobject)
        m = {}
        self.wait_for(lambda: self.replicas(ns, deployment) == 0 and not self.node.pods(ns, deployment),
                      60, "%s/%s at zero before the cold request" % (ns, deployment))
        say("%s/%s has 0 replicas; sending one request with Host: %s" % (ns, deployment, host))
        t_send = time.time()
        resp = self.request(host, path)
        m["cold_seconds"] = resp.seconds
        if resp.status != 200:
            raise StackError("cold request answered %d: %r\nproxy log:\n%s" % (
                resp.status, resp.body[:500], self.log("proxy")[-3000:]))
        if not resp.headers.get("x-backend-pod"):
            raise StackError("cold request not answered by a backend: %r" % resp.headers)
        m["cold_header"] = resp.headers.get("x-zerowire-cold-start")
        m["cold_pod"] = resp.headers.get("x-backend-pod")
        # Held, not refused and retried: the pod that answered was started
        # and became ready only after the request had been sent.
        ready = [e for e in self.node.events if e[1] == "ready" and e[2].get("pod") == m["cold_pod"]]
        if not ready or ready[0][0] < t_send:
            raise StackError("the cold request's pod %s was not started by it (events %r)" % (m["cold_pod"], ready))
        m["pod_ready_ms"] = (ready[0][0] - t_send) * 1000
        ev = self.keda.wait_event(lambda e: e["so"] == key and e["type"] == "stream" and e["value"]
                                  and e["t"] >= t_send - 0.05, 5, "stream true for " + key)
        m["stream_true_ms"] = (ev["t"] - t_send) * 1000
        act = self.keda.wait_event(lambda e: e["so"] == key and e["type"] == "scale" and e["frm"] == 0
                                   and e["t"] >= t_send - 0.05, 5, "activation of " + key)
        m["activated_ms"] = (act["t"] - t_send) * 1000
        say("held and answered in %.2f s by pod %s (KEDA got `true` after %.0f ms, scaled 0 -> %d)" % (
            resp.seconds, m["cold_pod"], m["stream_true_ms"], act["to"]))

        peak = {"n": self.replicas(ns, deployment)}
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                try:
                    peak["n"] = max(peak["n"], self.replicas(ns, deployment))
                except Exception:  # noqa: BLE001 - sampling only
                    pass
                stop.wait(0.25)
        t = threading.Thread(target=watch, daemon=True)
        t.start()
        say("load: wrk, %d connections for %d s" % (connections, load_seconds))
        try:
            m["wrk"] = self.wrk(host, load_seconds, connections, path=path)
        finally:
            stop.set()
            t.join(5)
        t_end = time.monotonic()
        m["peak_replicas"] = max(peak["n"], self.replicas(ns, deployment))
        m["ready_after_load"] = len(self.node.ready_pods(ns, deployment))
        say("%d requests (%.0f/s, %d non-2xx); replicas grew to %d" % (
            m["wrk"]["requests"], m["wrk"]["rps"], m["wrk"]["non2xx"], m["peak_replicas"]))
        if m["peak_replicas"] < 2:
            raise StackError("no scale-out under load (peak %d replicas); KEDA events: %r" % (
                m["peak_replicas"], [e for e in self.keda.events if e["so"] == key][-20:]))
        say("load stopped; waiting for the return to zero (request window + cooldown)")
        self.wait_for(lambda: self.replicas(ns, deployment) == 0, down_timeout,
                      "%s back to zero replicas" % key, 0.25)
        self.node.wait_ready(ns, deployment, 0, timeout=30)
        m["down_seconds"] = time.monotonic() - t_end
        say("back to 0 replicas %.0f s after the load stopped" % m["down_seconds"])
        return m


def json_docs(text):
    """Every object in kubectl's -o json output (several documents, or a List)."""
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        o, i = dec.raw_decode(text, i)
        out.extend(o["items"] if o.get("kind") == "List" else [o])


_PLURALS = {"Ingress": "ingresses", "NetworkPolicy": "networkpolicies"}


def resource_of(obj):
    """kubectl resource name (plural.group) of an object dict."""
    kind = obj["kind"]
    api = obj.get("apiVersion", "v1")
    group = api.split("/")[0] if "/" in api else ""
    plural = _PLURALS.get(kind, kind.lower() + "s")
    return plural + ("." + group if group else "")


def module_stack(cluster, **kw):
    """Generator for a module-scoped pytest fixture: yields a started Stack
    and, at teardown, stops it and fails on any problem it reports. Skips
    (the one allowed reason) when the upstream KEDA .proto is absent."""
    import pytest
    from .keda import ProtoMissing, load_proto
    try:
        load_proto()
    except ProtoMissing as e:
        pytest.skip(str(e))
    st = Stack(cluster, **kw).start()
    try:
        yield st
    finally:
        problems = st.stop()
        assert not problems, "\n".join(problems)
