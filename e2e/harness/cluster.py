"""A real local control plane: etcd + kube-apiserver 1.20.2 on loopback.

One Cluster = one temporary directory with its own certificates (openssl),
static token file, etcd data and free ports chosen at start. Every process is
started in its own process group and killed on stop(); in "attached" pytest
use they also die with the test process (PR_SET_PDEATHSIG).

Kubernetes 1.20 quirks handled here or documented in docs/control-plane.md:
EndpointSlice is discovery.k8s.io/v1beta1 only; no controller-manager runs
(no ServiceAccount token Secrets, no garbage collection, namespaces never
finish deleting by themselves: delete_namespace() does that work); ConfigMap watches are
served straight from etcd (watch cache size 0) so compact_etcd() can force a
410 Gone on them.
"""

import base64
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import requests

from . import util

APISERVER_VERSION = "1.20.2"
ETCD = os.environ.get("ZW_ETCD", "/usr/bin/etcd")
KUBECTL = os.environ.get("ZW_KUBECTL") or shutil.which("kubectl") or "/usr/bin/kubectl"
CRD_DIR = os.path.join(util.REPO, "e2e", "crds")
START_TIMEOUT = float(os.environ.get("ZW_APISERVER_START_TIMEOUT", "90"))
BUILD_TIMEOUT = 3600  # seconds; a first build takes about 7 minutes on 2 cores


def _log(msg):
    sys.stderr.write("cluster: %s\n" % msg)
    sys.stderr.flush()


def cache_dir():
    """Where the kube-apiserver binary is cached (outside the work tree)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("ZW_CACHE_DIR") or os.path.join(base, "zerowire")


def apiserver_binary():
    """Path of the cached kube-apiserver (e2e/build-apiserver.sh names and
    builds it); builds it first when it is not cached yet (progress on
    stderr, about 7 minutes once per machine). Raises RuntimeError on failure."""
    override = os.environ.get("ZW_KUBE_APISERVER")
    if override:
        return override
    script = os.path.join(util.REPO, "e2e", "build-apiserver.sh")
    started = time.monotonic()
    r = subprocess.run([script], stdout=subprocess.PIPE, text=True, timeout=BUILD_TIMEOUT)
    path = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if r.returncode != 0 or not os.access(path, os.X_OK):
        raise RuntimeError("building kube-apiserver failed (exit %d); see the messages above" % r.returncode)
    if time.monotonic() - started > 5:
        _log("kube-apiserver %s ready at %s" % (APISERVER_VERSION, path))
    return path


def _pdeathsig():
    """preexec_fn: the child gets SIGKILL when the thread that started it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _kill_group(pid, grace=10.0):
    """SIGTERM the process group of pid, SIGKILL after grace seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        # reap if it is our child
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args[:2]), r.stderr.strip()))


def make_ca(d, name, cn):
    """Writes <name>.key / <name>.crt: a self-signed EC P-256 CA."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".crt", "-days", "3650", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def make_cert(d, name, subj, ca="ca", sans=None, usage="serverAuth"):
    """Writes <name>.key / <name>.crt signed by <ca>; sans like
    ["IP:127.0.0.1", "DNS:localhost"]; usage serverAuth or clientAuth."""
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", subj, cwd=d)
    ext = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
           "extendedKeyUsage=" + usage]
    if sans:
        ext.append("subjectAltName=" + ",".join(sans))
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("\n".join(ext) + "\n")
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
             "-CAcreateserial", "-days", "3650", "-out", name + ".crt", "-extfile", name + ".ext", cwd=d)


class ClusterError(RuntimeError):
    pass


class Cluster:
    """A local etcd + kube-apiserver. Public API (kept stable for all suites):
    kubeconfig, server, tmpdir, etcd_endpoint, kubectl(), apply(), sa_token(),
    restart_apiserver(), compact_etcd(); plus api(), create_namespace(),
    delete_namespace(), wait_for(), admin_token, ca_file."""

    def __init__(self, tmpdir=None, install_crds=True, extra_apiserver_args=(), detach=False, name="zw"):
        self.name = name
        self.detach = detach  # True: processes outlive this Python process (cluster-up.sh)
        self.install_crds = install_crds
        self.extra_apiserver_args = list(extra_apiserver_args)
        self._own_tmp = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="zw-cluster.")
        self.pki = os.path.join(self.tmpdir, "pki")
        self.kubeconfig = os.path.join(self.tmpdir, "kubeconfig")
        self.kubeconfig_token = os.path.join(self.tmpdir, "kubeconfig-token")
        self.ca_file = os.path.join(self.pki, "ca.crt")
        self.etcd_pid = None
        self.apiserver_pid = None
        self._procs = {}
        self.etcd_port = self.etcd_peer_port = self.port = None
        self.admin_token = None
        self.tokens = {}
        self._session = None
        self._token_session = None
        self.started = False

    # ---- properties -----------------------------------------------------
    @property
    def server(self):
        return "https://127.0.0.1:%d" % self.port

    @property
    def etcd_endpoint(self):
        return "http://127.0.0.1:%d" % self.etcd_port

    # ---- lifecycle ------------------------------------------------------
    def start(self):
        """Generates certs, starts etcd and the apiserver, waits for /readyz,
        writes the kubeconfig and installs e2e/crds. Cleans up on failure."""
        binary = self.apiserver_binary()
        try:
            self._make_pki()
            for attempt in range(3):
                self.etcd_port, self.etcd_peer_port, self.port = util.free_ports(3)
                try:
                    self._start_etcd()
                    self._start_apiserver(binary)
                    break
                except ClusterError:
                    if attempt == 2:
                        raise
                    _log("start attempt %d failed (port race?), retrying with new ports" % (attempt + 1))
                    self._stop_processes()
            self._write_kubeconfigs()
            self.started = True
            self.save_state()
            if self.install_crds:
                self.install_crd_dir(CRD_DIR)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Kills the apiserver and etcd (process groups) and removes tmpdir
        (kept when ZW_KEEP_CLUSTER=1)."""
        self._stop_processes()
        self.started = False
        for attr in ("_session", "_token_session"):
            if getattr(self, attr) is not None:
                getattr(self, attr).close()
                setattr(self, attr, None)
        if os.environ.get("ZW_KEEP_CLUSTER") == "1":
            _log("keeping %s (ZW_KEEP_CLUSTER=1)" % self.tmpdir)
        elif os.path.isdir(self.tmpdir):
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _stop_processes(self):
        for attr in ("apiserver_pid", "etcd_pid"):
            pid = getattr(self, attr)
            if pid:
                _kill_group(pid)
                setattr(self, attr, None)
        self._procs.clear()

    # ---- pki, tokens, kubeconfig -----------------------------------------
    def _make_pki(self):
        os.makedirs(self.pki, exist_ok=True)
        d = self.pki
        make_ca(d, "ca", "zerowire-test-ca")
        make_cert(d, "apiserver", "/CN=kube-apiserver",
                  sans=["IP:127.0.0.1", "IP:10.0.0.1", "DNS:localhost", "DNS:kubernetes",
                        "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
                        "DNS:kubernetes.default.svc.cluster.local"])
        make_cert(d, "admin", "/O=system:masters/CN=zerowire-admin", usage="clientAuth")
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key", cwd=d)
        _openssl("ec", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
        self.admin_token = secrets.token_hex(24)
        self.tokens = {"admin": self.admin_token, "unprivileged": secrets.token_hex(24)}
        with open(os.path.join(d, "tokens.csv"), "w") as f:
            f.write('%s,zerowire-admin,uid-admin,"system:masters"\n' % self.tokens["admin"])
            f.write("%s,zerowire-unprivileged,uid-unprivileged\n" % self.tokens["unprivileged"])

    def _write_kubeconfigs(self):
        def b64(name):
            with open(os.path.join(self.pki, name), "rb") as f:
                return base64.b64encode(f.read()).decode()

        self.write_kubeconfig(self.kubeconfig, {"client-certificate-data": b64("admin.crt"),
                                                "client-key-data": b64("admin.key")})
        self.write_kubeconfig(self.kubeconfig_token, {"token": self.admin_token})

    def write_kubeconfig(self, path, user):
        """Writes a kubeconfig for this cluster authenticating as `user` (a
        kubeconfig user entry, e.g. {"token": ...}); mode 0600. Returns path."""
        with open(os.path.join(self.pki, "ca.crt"), "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        doc = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": self.name, "cluster": {"server": self.server,
                                                          "certificate-authority-data": ca}}],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": "user",
                                                           "namespace": "default"}}],
            "current-context": self.name,
        }
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)  # JSON is YAML
        os.chmod(path, 0o600)
        return path

    # ---- processes --------------------------------------------------------
    def _spawn(self, name, argv, env=None):
        logf = open(os.path.join(self.tmpdir, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True, preexec_fn=None if self.detach else _pdeathsig,
                             cwd=self.tmpdir)
        logf.close()
        self._procs[name] = p
        return p

    def _log_tail(self, name, n=25):
        try:
            with open(os.path.join(self.tmpdir, name + ".log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def _start_etcd(self):
        peer = "http://127.0.0.1:%d" % self.etcd_peer_port
        data = os.path.join(self.tmpdir, "etcd")
        p = self._spawn("etcd", [
            ETCD, "--name", "zw", "--data-dir", data,
            "--listen-client-urls", self.etcd_endpoint, "--advertise-client-urls", self.etcd_endpoint,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "zw=" + peer, "--initial-cluster-state", "new",
            "--log-level", "warn", "--logger", "zap", "--quota-backend-bytes", str(2 << 30)])
        self.etcd_pid = p.pid

        def healthy():
            if p.poll() is not None:
                raise ClusterError("etcd exited (%s):\n%s" % (p.returncode, self._log_tail("etcd")))
            try:
                return requests.get(self.etcd_endpoint + "/health", timeout=1).json().get("health") == "true"
            except requests.RequestException:
                return False
        try:
            util.wait_for(healthy, 30, 0.1, "etcd health")
        except TimeoutError as e:
            raise ClusterError(str(e) + "\n" + self._log_tail("etcd"))

    def base_apiserver_args(self, binary):
        """Flags every kube-apiserver version here takes: etcd, loopback
        serving, certificates, tokens, ServiceAccount keys, RBAC."""
        pki = self.pki
        return [
            binary,
            "--etcd-servers=" + self.etcd_endpoint,
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            "--secure-port=%d" % self.port,
            "--tls-cert-file=%s/apiserver.crt" % pki, "--tls-private-key-file=%s/apiserver.key" % pki,
            "--client-ca-file=%s/ca.crt" % pki, "--token-auth-file=%s/tokens.csv" % pki,
            "--service-account-key-file=%s/sa.pub" % pki,
            "--service-account-signing-key-file=%s/sa.key" % pki,
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=Node,RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
        ]

    def apiserver_args(self, binary):
        return self.base_apiserver_args(binary) + [
            "--insecure-port=0",
            # No controller-manager runs: pods would wait for a "default" SA forever.
            "--disable-admission-plugins=ServiceAccount",
            # ConfigMap watches go straight to etcd so compact_etcd() forces 410 Gone.
            "--watch-cache-sizes=configmaps#0",
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false",
            "--allow-privileged=true", "--profiling=false",
            "--logtostderr=true", "--v=1",
        ] + self.extra_apiserver_args

    def apiserver_binary(self):
        """The kube-apiserver this cluster runs (a subclass may run another)."""
        return apiserver_binary()

    def _start_apiserver(self, binary=None):
        binary = binary or self.apiserver_binary()
        p = self._spawn("apiserver", self.apiserver_args(binary))
        self.apiserver_pid = p.pid
        try:
            self.wait_ready(proc=p)
        except TimeoutError as e:
            raise ClusterError(str(e) + "\n" + self._log_tail("apiserver"))

    def wait_ready(self, timeout=START_TIMEOUT, proc=None):
        """Waits until GET /readyz answers 200 (bounded by timeout seconds)."""
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        s.verify = self.ca_file
        s.headers["Authorization"] = "Bearer " + self.admin_token

        def ready():
            if proc is not None and proc.poll() is not None:
                raise ClusterError("kube-apiserver exited (%s):\n%s" % (proc.returncode, self._log_tail("apiserver")))
            try:
                return s.get(self.server + "/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        try:
            util.wait_for(ready, timeout, 0.2, "kube-apiserver /readyz on %s" % self.server)
        finally:
            s.close()

    def restart_apiserver(self):
        """Stops the kube-apiserver and starts it again on the same port and
        etcd; returns when /readyz is 200. Open watches see their connection end."""
        if self.apiserver_pid:
            _kill_group(self.apiserver_pid)
            self.apiserver_pid = None
        if self._session is not None:
            self._session.close()
            self._session = None
        self._start_apiserver()
        self.save_state()

    # ---- state (cluster-up.sh / cluster-down.sh) -------------------------
    def save_state(self):
        st = {"tmpdir": self.tmpdir, "server": self.server if self.port else None, "port": self.port,
              "etcd_port": self.etcd_port, "etcd_peer_port": self.etcd_peer_port,
              "etcd_pid": self.etcd_pid, "apiserver_pid": self.apiserver_pid, "tokens": self.tokens,
              "kubeconfig": self.kubeconfig, "kubeconfig_token": self.kubeconfig_token,
              "extra_apiserver_args": self.extra_apiserver_args}
        with open(os.path.join(self.tmpdir, "state.json"), "w") as f:
            json.dump(st, f, indent=1)
        with open(os.path.join(self.tmpdir, "env.sh"), "w") as f:
            f.write("export KUBECONFIG=%s\nexport ZW_CLUSTER_DIR=%s\nexport ZW_ETCD_ENDPOINT=%s\n"
                    % (self.kubeconfig, self.tmpdir, self.etcd_endpoint))

    @classmethod
    def attach(cls, tmpdir):
        """A Cluster object for processes started earlier (state.json in tmpdir)."""
        with open(os.path.join(tmpdir, "state.json")) as f:
            st = json.load(f)
        c = cls(tmpdir=tmpdir, install_crds=False, extra_apiserver_args=st.get("extra_apiserver_args", ()),
                detach=True)
        c._own_tmp = False
        c.port, c.etcd_port, c.etcd_peer_port = st["port"], st["etcd_port"], st["etcd_peer_port"]
        c.etcd_pid, c.apiserver_pid = st["etcd_pid"], st["apiserver_pid"]
        c.tokens = st["tokens"]
        c.admin_token = c.tokens["admin"]
        c.started = True
        return c

    # ---- API access ---------------------------------------------------------
    def new_session(self):
        """A requests.Session authenticated as admin (client certificate)."""
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        s.verify = self.ca_file
        s.cert = (os.path.join(self.pki, "admin.crt"), os.path.join(self.pki, "admin.key"))
        return s

    def api(self, method, path, body=None, params=None, content_type=None, timeout=30, check=True,
            token=None, session=None):
        """One REST call (path like /api/v1/namespaces). Returns the parsed JSON
        (or None for an empty body); with check, a status >= 400 raises
        ClusterError carrying the Status message. token: use a bearer token
        instead of the admin client certificate. session: a new_session() to
        use instead of the shared one (one per thread when calling from threads)."""
        if self._session is None:
            self._session = self.new_session()
        sess = session or self._session
        headers = {}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = content_type or "application/json"
        if token is not None:
            headers["Authorization"] = "Bearer " + token
            if self._token_session is None:
                self._token_session = requests.Session()
                self._token_session.trust_env = False
                self._token_session.verify = self.ca_file
            sess = self._token_session
        r = sess.request(method, self.server + path, data=data, params=params, headers=headers, timeout=timeout)
        if check and r.status_code >= 400:
            try:
                msg = r.json().get("message", r.text)
            except ValueError:
                msg = r.text
            err = ClusterError("%s %s: %d %s" % (method, path, r.status_code, msg))
            err.status = r.status_code
            raise err
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            return r.text

    def kubectl(self, *args, input=None, check=True, timeout=120):
        """Runs kubectl against this cluster; returns CompletedProcess (text,
        stdout/stderr captured). check: raise ClusterError with stderr on failure."""
        argv = [KUBECTL, "--kubeconfig", self.kubeconfig, *[str(a) for a in args]]
        r = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise ClusterError("kubectl %s failed (exit %d): %s%s" % (
                " ".join(str(a) for a in args), r.returncode, r.stderr.strip(), r.stdout[-2000:]))
        return r

    def apply(self, yaml_text_or_path, validate=True, namespace=None, server_side=False, dry_run=None,
              check=True):
        """kubectl apply of YAML text or a file/directory path. validate=False
        for manifests using fields 1.20 does not know. Returns CompletedProcess."""
        args = ["apply"]
        if not validate:
            args.append("--validate=false")
        if namespace:
            args += ["-n", namespace]
        if server_side:
            args += ["--server-side", "--force-conflicts"]
        if dry_run:
            args.append("--dry-run=" + dry_run)
        src = yaml_text_or_path
        if isinstance(src, os.PathLike) or ("\n" not in src and os.path.exists(src)):
            return self.kubectl(*args, "-f", os.fspath(src), check=check)
        return self.kubectl(*args, "-f", "-", input=src, check=check)

    def install_crd_dir(self, d, validate=True, timeout=60, server_side=False):
        """Applies every CRD in directory d and waits until all are Established.
        server_side: for CRDs too large for client-side apply's annotation."""
        r = self.apply(d, validate=validate, server_side=server_side)
        names = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("customresourcedefinition")]
        if names:
            self.kubectl("wait", "--for=condition=established", "--timeout=%ds" % timeout, *names,
                         timeout=timeout + 30)
        return names

    def wait_for(self, pred, timeout=30, interval=0.05, what="condition"):
        """util.wait_for: poll pred() until truthy, bounded by timeout."""
        return util.wait_for(pred, timeout, interval, what)

    # ---- namespaces, service accounts ----------------------------------------
    def ensure_namespace(self, ns):
        """Creates namespace ns unless it exists."""
        try:
            self.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": ns}})
        except ClusterError as e:
            if getattr(e, "status", 0) != 409:
                raise
        return ns

    def create_namespace(self, prefix="t"):
        """Creates a fresh namespace <prefix>-<random> and returns its name."""
        return self.ensure_namespace("%s-%s" % (prefix, secrets.token_hex(3)))

    def namespaced_resources(self):
        """[(collection prefix, plural)] of every served namespaced resource
        that supports deletecollection (preferred version of each group)."""
        out = [("/api/v1", r["name"]) for r in self.api("GET", "/api/v1")["resources"]
               if r["namespaced"] and "/" not in r["name"] and "deletecollection" in r.get("verbs", [])]
        for g in self.api("GET", "/apis")["groups"]:
            gv = g["preferredVersion"]["groupVersion"]
            try:
                res = self.api("GET", "/apis/" + gv)["resources"]
            except ClusterError:
                continue
            out += [("/apis/" + gv, r["name"]) for r in res
                    if r["namespaced"] and "/" not in r["name"] and "deletecollection" in r.get("verbs", [])]
        return out

    def delete_namespace(self, ns):
        """Deletes a namespace for good, doing the namespace controller's work
        (none runs here): deletes every object in it (deletecollection per
        namespaced resource; no garbage collector runs either), then removes
        the "kubernetes" finalizer."""
        try:
            self.api("GET", "/api/v1/namespaces/" + ns)
        except ClusterError as e:
            if getattr(e, "status", 0) == 404:
                return
            raise
        for prefix, plural in self.namespaced_resources():
            if plural == "events":
                continue
            try:
                self.api("DELETE", "%s/namespaces/%s/%s" % (prefix, ns, plural))
            except ClusterError as e:
                if getattr(e, "status", 0) not in (404, 405):
                    raise
        try:
            self.api("DELETE", "/api/v1/namespaces/" + ns)
            obj = self.api("GET", "/api/v1/namespaces/" + ns)
            obj["spec"]["finalizers"] = []
            self.api("PUT", "/api/v1/namespaces/%s/finalize" % ns, obj)
        except ClusterError as e:
            if getattr(e, "status", 0) != 404:
                raise

    def sa_token(self, namespace, name, expiration_seconds=3600, audiences=None):
        """Mints a token for ServiceAccount namespace/name through the
        TokenRequest API, creating the namespace and the ServiceAccount when
        missing. Returns the token string (user
        system:serviceaccount:<namespace>:<name>)."""
        self.ensure_namespace(namespace)
        try:
            self.api("POST", "/api/v1/namespaces/%s/serviceaccounts" % namespace,
                     {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
        except ClusterError as e:
            if getattr(e, "status", 0) != 409:
                raise
        spec = {"expirationSeconds": int(expiration_seconds)}
        if audiences:
            spec["audiences"] = list(audiences)
        tr = self.api("POST", "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (namespace, name),
                      {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
        return tr["status"]["token"]

    # ---- etcd -------------------------------------------------------------------
    def etcd_revision(self):
        """Current etcd revision (via etcd's v3 JSON gateway)."""
        r = requests.post(self.etcd_endpoint + "/v3/kv/range",
                          json={"key": base64.b64encode(b"/zerowire-probe").decode()}, timeout=10)
        r.raise_for_status()
        return int(r.json()["header"]["revision"])

    def compact_etcd(self):
        """Compacts etcd at its current revision (physical). Watches served
        from etcd (ConfigMaps here) from an older resourceVersion then get
        410 Gone. Returns the revision compacted at."""
        rev = self.etcd_revision()
        r = requests.post(self.etcd_endpoint + "/v3/kv/compaction", json={"revision": str(rev), "physical": True},
                          timeout=30)
        if r.status_code >= 400 and "compacted" not in r.text:
            raise ClusterError("etcd compaction at %d failed: %s" % (rev, r.text))
        return rev
