"""zerowire side by side with the KEDA HTTP add-on (issue #14), for
bench/proxy_bench.py --only addon.

One control plane (etcd + kube-apiserver 1.20.2 from e2e/harness) serves both
products: zerowire-proxy in live mode (--kubeconfig, ScaledObjects, the
EndpointSlices of discovery.k8s.io/v1beta1) and the add-on's interceptor and
external scaler (e2e/build-addon.sh builds them from the add-on's Go module;
InterceptorRoutes, Services, EndpointSlices). Every endpoint change is one
EndpointSlice PATCH through the API server, the same for both products.

Two adaptations, both outside the products' code:
  * The add-on (client-go 0.34) reads EndpointSlices only as
    discovery.k8s.io/v1, which kube-apiserver 1.20 does not serve (v1 came in
    1.21), and a CRD cannot add a version to a built-in group there (the
    built-in group's handler answers 404 for it). V1Relay, a loopback relay in
    front of the API server used by the add-on only, maps v1 to v1beta1 (the
    fields the add-on reads, addresses and conditions.ready, are the same in
    both) and forces JSON. The newer control plane that serves v1
    (kube-apiserver 1.37, as another branch builds it) refuses loopback addresses in
    EndpointSlices, which zerowire dials.
  * The interceptor dials a route's upstream as <service>.<namespace>:<port>
    (DNS, no pod IPs in v0.15.0); it runs in a private mount namespace
    (unshare -m) whose /etc/hosts maps those names to the loopback backends.
    Service port = backend port, since no kube-proxy translates ports.
"""

import http.client
import http.server
import json
import os
import queue
import signal
import socket
import socketserver
import ssl
import statistics
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

import proxy_bench as pb

ADDON_BUILD = os.path.join(pb.ROOT, "e2e", "build-addon.sh")
NS = "bench"
SLICE_API = "discovery.k8s.io/v1beta1"  # what kube-apiserver 1.20 serves
# Per workload: (zerowire's host, the add-on's host), of equal length.
# Cold-start samples get a fresh target each (lat-zw-<i>, lat-ao-<i>; hosts
# zw.lat<i>.test, ao.lat<i>.test): zerowire keeps reporting a target active
# for a while after its last request.
HOSTS = {"app": ("zw.app.test", "ao.app.test"), "cold": ("zw.cold.test", "ao.cold.test")}


T_START = time.monotonic()


def log(msg):
    pb.log("addon: [%4.0fs] %s" % (time.monotonic() - T_START, msg))


# ---- the discovery.k8s.io/v1 relay (add-on only) ----------------------------------

class V1Relay:
    """Plain-HTTP relay on loopback to the cluster's API server (admin client
    certificate), which maps discovery.k8s.io/v1 to v1beta1: request paths
    are rewritten, responses (lists, objects, watch events, discovery
    documents) report v1. Read-only use (the add-on only lists and watches).
    Forces Accept: application/json (no protobuf, no aggregated discovery) and
    identity encoding. self.events: (monotonic ns, bytes) of every watch event
    line forwarded on an EndpointSlice watch."""

    V1 = b'"discovery.k8s.io/v1"'
    V1B = b'"discovery.k8s.io/v1beta1"'

    def __init__(self, cluster):
        self.cluster = cluster
        u = urlparse(cluster.server)
        self.up = (u.hostname, u.port)
        self.ctx = ssl.create_default_context(cafile=cluster.ca_file)
        self.ctx.load_cert_chain(os.path.join(cluster.pki, "admin.crt"), os.path.join(cluster.pki, "admin.key"))
        self.events = []
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                relay.forward(self)
            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self.srv = Server(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def kubeconfig(self, path):
        doc = {"apiVersion": "v1", "kind": "Config",
               "clusters": [{"name": "relay", "cluster": {"server": "http://127.0.0.1:%d" % self.port}}],
               "users": [{"name": "relay", "user": {}}],
               "contexts": [{"name": "relay", "context": {"cluster": "relay", "user": "relay", "namespace": NS}}],
               "current-context": "relay"}
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    @staticmethod
    def _path(p):
        for old in ("/apis/discovery.k8s.io/v1/", "/apis/discovery.k8s.io/v1?"):
            if p.startswith(old):
                return old.replace("/v1", "/v1beta1") + p[len(old):]
        return "/apis/discovery.k8s.io/v1beta1" if p == "/apis/discovery.k8s.io/v1" else p

    def _discovery(self, path, body):
        """Group lists and the group document: v1beta1 -> v1."""
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        groups = doc.get("groups") if doc.get("kind") == "APIGroupList" else [doc] if doc.get("kind") == "APIGroup" else []
        for g in groups:
            if g.get("name") != "discovery.k8s.io":
                continue
            v = {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}
            g["versions"] = [v]
            g["preferredVersion"] = v
        return json.dumps(doc).encode()

    def forward(self, h):
        path = self._path(h.path)
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else None
        if body:
            body = body.replace(self.V1, self.V1B)
        hdrs = {k: v for k, v in h.headers.items()
                if k.lower() not in ("host", "accept", "accept-encoding", "connection", "content-length")}
        hdrs["Accept"] = "application/json"
        hdrs["Accept-Encoding"] = "identity"
        watch = "watch=true" in path or "watch=1" in path
        conn = http.client.HTTPSConnection(*self.up, context=self.ctx, timeout=3600 if watch else 60)
        try:
            conn.request(h.command, path, body=body, headers=hdrs)
            r = conn.getresponse()
            slices = "/endpointslices" in path
            if watch and r.status == 200:
                h.send_response(200)
                h.send_header("Content-Type", r.getheader("Content-Type", "application/json"))
                h.send_header("Transfer-Encoding", "chunked")
                h.end_headers()
                while True:
                    line = r.readline()
                    if not line:
                        break
                    line = line.replace(self.V1B, self.V1)
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    h.wfile.flush()
                    if slices:
                        self.events.append((time.monotonic_ns(), line))
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
                return
            data = r.read()
            if h.path in ("/apis", "/apis/discovery.k8s.io"):
                data = self._discovery(h.path, data)
            data = data.replace(self.V1B, self.V1)
            h.send_response(r.status)
            h.send_header("Content-Type", r.getheader("Content-Type", "application/json"))
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            h.close_connection = True
        finally:
            conn.close()

    def ready_events_after(self, t0_ns):
        return [t for t, line in self.events if t >= t0_ns and b'"ready":true' in line]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


# ---- the add-on's processes -----------------------------------------------------------

def addon_binaries():
    """Paths of the cached interceptor and scaler, or a reason string."""
    if os.environ.get("ZW_ADDON_INTERCEPTOR") and os.environ.get("ZW_ADDON_SCALER"):
        return os.environ["ZW_ADDON_INTERCEPTOR"], os.environ["ZW_ADDON_SCALER"]
    r = subprocess.run([ADDON_BUILD, "--cached"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        return "add-on not built (run e2e/build-addon.sh once, about 3 minutes): " + r.stderr.strip()[-300:]
    lines = r.stdout.split()
    return lines[0], lines[1]


def addon_version(binary):
    d = os.path.basename(os.path.dirname(binary))  # http-add-on-<version>-<hash>
    return d[len("http-add-on-"):].rsplit("-", 1)[0] if d.startswith("http-add-on-") else "?"


class Interceptor:
    """The add-on's interceptor, optionally pinned, in a private mount
    namespace whose /etc/hosts is hosts (name -> ip)."""

    def __init__(self, tmp, name, binary, kubeconfig, hosts, core=None, env=None):
        self.port = pb.free_port()
        self.admin_port = pb.free_port()
        self.metrics_port = pb.free_port()
        hfile = os.path.join(tmp, name + "-hosts")
        with open(hfile, "w") as f:
            f.write("127.0.0.1 localhost\n")
            for host, ip in sorted(hosts.items()):
                f.write("%s %s\n" % (ip, host))
        e = dict(os.environ)
        e.update({"KUBECONFIG": kubeconfig, "KEDA_HTTP_PROXY_PORT": str(self.port),
                  "KEDA_HTTP_ADMIN_PORT": str(self.admin_port), "KEDA_HTTP_WATCH_NAMESPACE": NS,
                  "OTEL_PROM_EXPORTER_PORT": str(self.metrics_port),
                  "KEDA_HTTP_SHUTDOWN_DELAY": "0s", "KEDA_HTTP_DRAIN_TIMEOUT": "2s"})
        e.update(env or {})
        pin = "taskset -c %s " % core if core is not None else ""
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /etc/hosts && exec %s"$1" --zap-log-level=info' % pin, hfile, binary]
        self.proc = pb.Proc(name, argv, tmp, env=e)
        self.pid = self.proc.pid
        pb.wait_for(lambda: self.admin("/readyz")[0] == 200 or not self.proc.alive(), 60,
                    what="interceptor /readyz")
        if not self.proc.alive():
            raise RuntimeError("interceptor exited:\n" + self.proc.tail())

    def admin(self, path):
        try:
            return pb.http_get("127.0.0.1", self.admin_port, path, hdr_host="localhost", timeout=10)
        except OSError:
            return 0, b""

    def queue(self):
        st, body = self.admin("/queue")
        return json.loads(body) if st == 200 else {}

    def concurrency(self, key):
        return self.queue().get(key, {}).get("Concurrency", 0)

    def stop(self):
        return self.proc.stop(timeout=15)


class Scaler:
    """The add-on's external scaler, polling the interceptor's admin port
    found through the EndpointSlice of Service interceptor-admin."""

    def __init__(self, tmp, binary, kubeconfig, admin_port):
        self.port = pb.free_port()
        e = dict(os.environ)
        e.update({"KUBECONFIG": kubeconfig, "KEDA_HTTP_SCALER_PORT": str(self.port),
                  "KEDA_HTTP_SCALER_TARGET_ADMIN_NAMESPACE": NS,
                  "KEDA_HTTP_SCALER_TARGET_ADMIN_SERVICE": "interceptor-admin",
                  "KEDA_HTTP_SCALER_TARGET_ADMIN_DEPLOYMENT": "interceptor",
                  "KEDA_HTTP_SCALER_TARGET_ADMIN_PORT": str(admin_port),
                  "OTEL_PROM_EXPORTER_PORT": str(pb.free_port())})
        self.proc = pb.Proc("addon-scaler", [binary], tmp, env=e)
        self.pid = self.proc.pid
        pb.wait_for(lambda: pb.port_open("127.0.0.1", self.port) or not self.proc.alive(), 60,
                    what="scaler gRPC port")
        if not self.proc.alive():
            raise RuntimeError("scaler exited:\n" + self.proc.tail())

    def stop(self):
        return self.proc.stop(timeout=15)


# ---- API objects ------------------------------------------------------------------------

def service(name, port):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"ports": [{"name": "http", "port": port, "targetPort": port}]}}


def slice_obj(service_name, ip, port, ready):
    es = pb.endpointslice(service_name, ip, port, ready=ready, ns=NS, api=SLICE_API)
    es["ports"][0]["name"] = "http"
    return es


def interceptor_route(name, host, service_name, port):
    return {"apiVersion": "http.keda.sh/v1beta1", "kind": "InterceptorRoute",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"target": {"service": service_name, "port": port},
                     "rules": [{"hosts": [host]}],
                     "scalingMetric": {"concurrency": {"targetValue": 100}}}}


class Plane:
    """The shared control plane and the objects of both products."""

    def __init__(self, tmp):
        sys.path.insert(0, os.path.join(pb.ROOT, "e2e"))
        from harness.cluster import Cluster  # noqa: E402
        self.cluster = Cluster(tmpdir=os.path.join(tmp, "cluster")).start()
        self.cluster.ensure_namespace(NS)
        served = self.cluster.api("GET", "/apis/discovery.k8s.io")["versions"]
        if not any(v["groupVersion"] == SLICE_API for v in served):
            raise RuntimeError("API server does not serve %s: %r" % (SLICE_API, served))
        self.relay = V1Relay(self.cluster)
        self.addon_kubeconfig = self.relay.kubeconfig(os.path.join(tmp, "addon-kubeconfig"))
        self.slices = "/apis/%s/namespaces/%s/endpointslices" % (SLICE_API, NS)

    def target(self, name, ip, port, ready, zw_host=None, ao_host=None):
        """Service name + its EndpointSlice; a ScaledObject for zerowire
        (zw_host) and/or an InterceptorRoute for the add-on (ao_host)."""
        c = self.cluster
        c.api("POST", "/api/v1/namespaces/%s/services" % NS, service(name, port))
        c.api("POST", self.slices, slice_obj(name, ip, port, ready))
        if zw_host:
            so = pb.scaledobject(0, zw_host, name, port=port, ns=NS)
            so["metadata"]["name"] = name
            so["spec"]["scaleTargetRef"]["name"] = name
            c.api("POST", "/apis/keda.sh/v1alpha1/namespaces/%s/scaledobjects" % NS, so)
        if ao_host:
            c.api("POST", "/apis/http.keda.sh/v1beta1/namespaces/%s/interceptorroutes" % NS,
                  interceptor_route(name, ao_host, name, port))

    def set_ready(self, name, ip, ready):
        self.cluster.api("PATCH", "%s/%s-zw" % (self.slices, name),
                         {"endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}]},
                         content_type="application/merge-patch+json")

    def stop(self):
        self.relay.close()
        self.cluster.stop()


# ---- the benchmark ------------------------------------------------------------------------

def held_socket(port, host):
    """Writes one GET on a fresh connection; returns (socket, t0)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = ("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode()
    t0 = time.monotonic()
    s.sendall(req)
    return s, t0


def read_response(s, timeout=15):
    """Reads one response head (and what came with it); returns (status, t)."""
    s.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    t = time.monotonic()
    try:
        return int(buf.split(b" ", 2)[1]), t
    except (IndexError, ValueError):
        return repr(buf[:80]), t


def activation_samples(stub, samples):
    """samples: [(ScaledObjectRef, proxy port, host, make_ready, make_unready)],
    one fresh target each. Per sample: StreamIsActive open (KEDA's side) and
    its first `false` seen; one cold request written (t0); time to the first
    `true`; then, as an instant pod start, the EndpointSlice patched ready;
    time to the response. Then: connection closed, endpoint unready, stream
    cancelled."""
    import grpc
    out = {"active_ms": [], "e2e_ms": [], "errors": []}
    for i, (ref, port, host, make_ready, make_unready) in enumerate(samples):
        q = queue.Queue()
        call = stub.StreamIsActive(ref)

        def reader(call=call, q=q):
            try:
                for m in call:
                    q.put((time.monotonic(), m.result))
            except grpc.RpcError as e:
                q.put((time.monotonic(), e))
        threading.Thread(target=reader, daemon=True).start()
        s = None
        try:
            deadline = time.monotonic() + 15
            while True:  # a stale `true` from the previous sample may come first
                _, v = q.get(timeout=max(0.1, deadline - time.monotonic()))
                if isinstance(v, Exception):
                    raise RuntimeError("stream: %s" % v)
                if v is False:
                    break
            s, t0 = held_socket(port, host)
            deadline = t0 + 15
            while True:  # `false` may repeat (the add-on sends every tick)
                t1, v = q.get(timeout=max(0.01, deadline - time.monotonic()))
                if isinstance(v, Exception):
                    raise RuntimeError("stream: %s" % v)
                if v is True:
                    break
            make_ready()
            st, t2 = read_response(s)
            if st != 200:
                raise RuntimeError("status %r" % st)
            out["active_ms"].append((t1 - t0) * 1000)
            out["e2e_ms"].append((t2 - t0) * 1000)
        except (RuntimeError, OSError, queue.Empty) as e:
            out["errors"].append("sample %d: %r" % (i, e))
        finally:
            call.cancel()
            if s:
                s.close()
            make_unready()
            time.sleep(0.3)
    return out


def bench_addon(tmp, args):
    bins = addon_binaries()
    if isinstance(bins, str):
        return {"skipped": bins}
    icp, scb = bins
    missing = pb.use_cached_apiserver()
    if missing:
        return {"skipped": missing}
    n = args.held
    import resource
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < n + 1000:
        raise RuntimeError("open-file limit %d is too low for %d held requests (run through bench/run.sh)" % (soft, n))
    import keda_push
    stub_dir = os.path.join(tmp, "stubs")
    os.makedirs(stub_dir, exist_ok=True)
    pb2, pb2_grpc = keda_push.load_stubs(stub_dir)
    import grpc
    res = {"addon_version": addon_version(icp), "n": n}
    backend = pb.start_backend(tmp, name="backend-addon")
    hold_be = pb.start_backend(tmp, name="backend-addon-hold")
    stamp = pb.StampBackend("127.0.0.4")
    plane = zw = ic = sc = None
    try:
        log("starting etcd + kube-apiserver")
        plane = Plane(tmp)
        ip = pb.BACKEND_IP
        # One Service per workload and product: zerowire's from a ScaledObject, the add-on's from an
        # InterceptorRoute, each with its own host (zerowire reads InterceptorRoutes too, so a
        # shared host would let it serve the add-on's route).
        plane.target("app-zw", ip, backend.port, True, zw_host=HOSTS["app"][0])
        plane.target("app-ao", ip, backend.port, True, ao_host=HOSTS["app"][1])
        plane.target("cold-zw", ip, hold_be.port, False, zw_host=HOSTS["cold"][0])
        plane.target("cold-ao", ip, hold_be.port, False, ao_host=HOSTS["cold"][1])
        lat = range(args.addon_samples)
        for i in lat:
            plane.target("lat-zw-%d" % i, stamp.ip, stamp.port, False, zw_host="zw.lat%d.test" % i)
            plane.target("lat-ao-%d" % i, stamp.ip, stamp.port, False, ao_host="ao.lat%d.test" % i)
        hosts = {"app-ao.%s" % NS: ip, "cold-ao.%s" % NS: ip}
        hosts.update({"lat-ao-%d.%s" % (i, NS): stamp.ip for i in lat})
        zw = pb.Zerowire(tmp, "zw-addon", core=pb.PROXY_CORE, workers=1, kubeconfig=plane.cluster.kubeconfig,
                         namespace=NS, args=["--max-idle-per-endpoint", "1024", "--max-connections",
                                             str(n + 2000), "--max-held", str(n)])
        ic = Interceptor(tmp, "addon-interceptor", icp, plane.addon_kubeconfig,
                         hosts,
                         core=pb.PROXY_CORE,
                         env={"KEDA_HTTP_MAX_IDLE_CONNS": "1024", "KEDA_HTTP_MAX_IDLE_CONNS_PER_HOST": "1024"})
        # The scaler finds the interceptor through its admin Service's EndpointSlice.
        plane.target("interceptor-admin", "127.0.0.1", ic.admin_port, True)
        sc = Scaler(tmp, scb, plane.addon_kubeconfig, ic.admin_port)
        products = [("zerowire-proxy", zw.pid, zw.port, 0), ("add-on interceptor", ic.pid, ic.port, 1)]
        for name, pid, port, k in products:
            pb.wait_for(lambda: pb.http_get("127.0.0.1", port, hdr_host=HOSTS["app"][k])[0] == 200, 30,
                        interval=0.2, what="%s routing %s to the backend" % (name, HOSTS["app"][k]))
        last = "%s/lat-ao-%d" % (NS, args.addon_samples - 1)
        pb.wait_for(lambda: last in ic.queue(), 30, what="interceptor route " + last)
        time.sleep(1.0)
        res["rss_idle_kib"] = {name: pb.proc_status(pid, "VmRSS") for name, pid, _, _ in products}
        res["rss_idle_kib"]["add-on scaler"] = pb.proc_status(sc.pid, "VmRSS")

        # 1. warm path, interleaved rounds
        runs = []
        for rnd in range(args.rounds):
            for conns in args.conns:
                order = products if rnd % 2 == 0 else products[::-1]
                for name, pid, port, k in order:
                    log("warm path: round %d, %s, %d connections, %ds" % (rnd + 1, name, conns, args.duration))
                    r = pb.measured_wrk(pid, port, conns, args.duration, args.warmup, host=HOSTS["app"][k],
                                        backend_pid=backend.pid)
                    r.update({"proxy": name, "conns": conns, "round": rnd + 1,
                              "rss_kib": pb.proc_status(pid, "VmRSS")})
                    runs.append(r)
        res["warm"] = [pb.combine([r for r in runs if r["proxy"] == name and r["conns"] == conns])
                       for conns in args.conns for name, _, _, _ in products]
        res["hwm_after_warm_kib"] = {name: pb.proc_status(pid, "VmHWM") for name, pid, _, _ in products}

        # 2. n held cold requests, one EndpointSlice PATCH releases them
        res["hold"] = {}
        for name, pid, port, k, svc, held in (
                ("zerowire-proxy", zw.pid, zw.port, 0, "cold-zw", lambda: zw.held("%s/cold-zw/0" % NS)),
                ("add-on interceptor", ic.pid, ic.port, 1, "cold-ao", lambda: ic.concurrency("%s/cold-ao" % NS))):
            log("%d held cold requests: %s" % (n, name))
            r = {"rss_before_kib": pb.proc_status(pid, "VmRSS")}
            r.update(pb.held_run(port, HOSTS["cold"][k], n, pid, held,
                                 lambda svc=svc: plane.set_ready(svc, ip, True)))
            if name.startswith("add-on"):
                ev = plane.relay.ready_events_after(r["t0_ns"])
                r["relay_ready_ms"] = (ev[0] - r["t0_ns"]) / 1e6 if ev else None
            res["hold"][name] = r
            time.sleep(1.0)

        # 3. cold request -> the scaler reports active; cold start end to end
        stubs = []
        res["activation"] = {}

        def zw_sample(i):
            ref = pb2.ScaledObjectRef(name="lat-zw-%d" % i, namespace=NS, scalerMetadata={
                "service": "lat-zw-%d" % i, "port": str(stamp.port), "hosts": "zw.lat%d.test" % i})
            return ref, zw.port, "zw.lat%d.test" % i

        def ao_sample(i):
            ref = pb2.ScaledObjectRef(name="lat-ao-%d" % i, namespace=NS,
                                      scalerMetadata={"interceptorRoute": "lat-ao-%d" % i})
            return ref, ic.port, "ao.lat%d.test" % i
        for name, gport, sample, svc in (("zerowire-proxy", zw.scaler_port, zw_sample, "lat-zw-%d"),
                                         ("add-on interceptor + scaler", sc.port, ao_sample, "lat-ao-%d")):
            log("cold request -> active, %d samples: %s" % (args.addon_samples, name))
            ch = grpc.insecure_channel("127.0.0.1:%d" % gport)
            stubs.append(ch)
            res["activation"][name] = activation_samples(pb2_grpc.ExternalScalerStub(ch), [
                sample(i) + (lambda s=svc % i: plane.set_ready(s, stamp.ip, True),
                             lambda s=svc % i: plane.set_ready(s, stamp.ip, False)) for i in lat])
        for ch in stubs:
            ch.close()
        res["rss_end_kib"] = {name: pb.proc_status(pid, "VmRSS") for name, pid, _, _ in products}
        res["rss_end_kib"]["add-on scaler"] = pb.proc_status(sc.pid, "VmRSS")
        res["addon_log_tail"] = ic.proc.tail(5)
    finally:
        for p in (sc, ic, zw):
            if p:
                p.stop()
        if plane:
            plane.stop()
        stamp.close()
        hold_be.stop()
        backend.stop()
    return res


def _ratio(a, b):
    return "%.2f×" % (a / b) if a and b else "-"


def fmt_addon(r):
    if "skipped" in r:
        return ["skipped: " + r["skipped"]]
    zw, ao = "zerowire-proxy", "add-on interceptor"
    mib = lambda k: "%.1f" % (k / 1024) if k else "-"  # noqa: E731
    out = ["KEDA HTTP add-on %s (interceptor and scaler built from its Go module by e2e/build-addon.sh)." %
           r["addon_version"], "", "Warm path (median of the rounds; ratio = zerowire / add-on):", "",
           "| proxy | conns | req/s | p50 ms | p99 ms | errors | proxy CPU | req per proxy CPU-s | RSS MiB after runs |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for x in r["warm"]:
        out.append("| %s | %d | %.0f | %.2f | %.2f | %d | %.0f%% | %.0f | %s |" % (
            x["proxy"], x["conns"], x["rps"], x["p50_us"] / 1000, x["p99_us"] / 1000, x["errors_total"],
            x["cpu"] * 100, x["rps"] / x["cpu"] if x["cpu"] else float("nan"), mib(x["rss_kib"])))
    out += ["", "| conns | req/s ratio | p50 ratio (add-on / zerowire) | p99 ratio (add-on / zerowire) | req per CPU-s ratio |",
            "|---:|---:|---:|---:|---:|"]
    for conns in sorted({x["conns"] for x in r["warm"]}):
        a = next(x for x in r["warm"] if x["proxy"] == zw and x["conns"] == conns)
        b = next(x for x in r["warm"] if x["proxy"] == ao and x["conns"] == conns)
        out.append("| %d | %s | %s | %s | %s |" % (
            conns, _ratio(a["rps"], b["rps"]), _ratio(b["p50_us"], a["p50_us"]), _ratio(b["p99_us"], a["p99_us"]),
            _ratio(a["rps"] / a["cpu"], b["rps"] / b["cpu"])))
    idle, hwm, end = r["rss_idle_kib"], r.get("hwm_after_warm_kib", {}), r.get("rss_end_kib", {})
    out += ["", "| process | RSS idle MiB | peak RSS after warm runs (VmHWM) MiB | RSS at the end MiB |",
            "|---|---:|---:|---:|"]
    for k in idle:
        out.append("| %s | %s | %s | %s |" % (k, mib(idle[k]), mib(hwm.get(k)), mib(end.get(k))))
    ms = lambda v: "%.0f" % v if v is not None else "-"  # noqa: E731
    out += ["", "%d held cold requests (one EndpointSlice PATCH ready = time 0):" % r["n"], "",
            "| proxy | held at once | RSS before MiB | RSS all held MiB | ready → first response ms | "
            "ready → last response ms | responses 200 | errors |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for k, h in r["hold"].items():
        c = h.get("client", {})
        errs = ", ".join("%s %d" % kv for kv in c.get("errors", {}).items() if kv[1]) or "none"
        out.append("| %s | %d | %s | %s | %s | %s | %d | %d (%s) |" % (
            k, h.get("held", 0), mib(h.get("rss_before_kib")), mib(h.get("rss_held_kib")), ms(h.get("first_ms")),
            ms(h.get("last_ms")), c.get("ok", 0), h.get("errors", r["n"]), errs))
    ao_hold = r["hold"].get(ao, {})
    if ao_hold.get("relay_ready_ms") is not None:
        out += ["", "The ready event reached the add-on through the v1 relay %.1f ms after time 0." %
                ao_hold["relay_ready_ms"]]
    out += ["", "Cold request → the scaler reports active (StreamIsActive `true`), and cold start end to end "
            "(the bench patches the EndpointSlice ready on that `true`, an instant pod start):", "",
            "| product | samples | → active p50 ms | → active max ms | end to end p50 ms | end to end max ms | failed |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for k, a in r["activation"].items():
        if not a["active_ms"]:
            out.append("| %s | 0 | - | - | - | - | %s |" % (k, "; ".join(a["errors"])[:300]))
            continue
        out.append("| %s | %d | %.1f | %.1f | %.1f | %.1f | %s |" % (
            k, len(a["active_ms"]), statistics.median(a["active_ms"]), max(a["active_ms"]),
            statistics.median(a["e2e_ms"]), max(a["e2e_ms"]), "; ".join(a["errors"])[:300] or "none"))
    return out
