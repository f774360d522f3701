"""The Ingress alias through a real gateway: Traefik (its kubernetesingress
provider, ExternalName Services refused unless
--providers.kubernetesingress.allowExternalNameServices=true) routes an
Ingress that zerowire-webhook rewrote to the alias Service, client -> Traefik
-> zerowire-proxy (a local process, static targets) -> a backend, in both
--alias-mode values:

  endpointslice: both Traefiks route (the alias is an ordinary Service whose
                 EndpointSlice the webhook mirrors from the proxy Service's);
  externalname:  the default Traefik does not (404: it drops the route), the
                 one with allowExternalNameServices does.

Traefik v3.6 reads discovery.k8s.io/v1 EndpointSlices, which the 1.20
apiserver does not serve, so this runs the current control plane
(harness.realcluster, kube-apiserver 1.37.2, no controllers). 1.37 refuses
every loopback address in EndpointSlices (ValidateEndpointIP: 127.0.0.0/8
and ::1, not only 127.0.0.1; link-local too), so the proxy listens on this
machine's first non-loopback IPv4 address. The ExternalName FQDN
(zerowire-proxy.zerowire.svc.cluster.local) resolves for Traefik through a
private /etc/hosts bind-mounted in its own mount namespace (unshare -m).
Skipped when the peers are not built (e2e/build-peers.sh on the realpeers
branch) or unshare / a non-loopback address is missing."""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import requests

from harness import util
from harness.cluster import ClusterError, cache_dir

sys.path.insert(0, os.path.join(util.REPO, "e2e", "tests"))
from test_webhook_e2e import INGRESS, PROXY_NS, WebhookProc, get, mwc_manifest, scaled_object

PEERS = os.path.join(cache_dir(), "peers")
PROXY = os.path.join(util.REPO, "build", "san", "bin", "zerowire-proxy")
FQDN = "zerowire-proxy.%s.svc.cluster.local" % PROXY_NS
HOST = "app.example.com"


def _peer(pattern):
    found = sorted(glob.glob(os.path.join(PEERS, pattern)))
    return found[-1] if found and os.access(found[-1], os.X_OK) else None


def _host_ip():
    """This machine's first non-loopback IPv4 address, or None."""
    r = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        addr = line.split()[3].split("/")[0]
        if not addr.startswith("127."):
            return addr
    return None


@pytest.fixture(scope="module")
def real():
    apiserver = _peer("kubernetes-v1.37.*/kube-apiserver")
    if not apiserver:
        pytest.skip("kube-apiserver 1.37 not built under %s (e2e/build-peers.sh kubernetes)" % PEERS)
    if not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs root and unshare for Traefik's private /etc/hosts")
    from harness.realcluster import RealCluster
    c = RealCluster({"kube-apiserver": apiserver}, controller_manager=False, scheduler=False)
    try:
        c.start()
    except ClusterError as e:
        pytest.skip("the 1.37 control plane did not start here: %s" % str(e)[:500])
    try:
        c.apply(os.path.join(util.REPO, "e2e", "crds", "keda.yaml"))
        c.kubectl("wait", "--for=condition=established", "--timeout=60s", "crd/scaledobjects.keda.sh")
        yield c
    finally:
        c.stop()


class Traefik:
    def __init__(self, cluster, binary, hosts_file, allow_external_name):
        self.c = cluster
        self.name = "traefik-%s" % ("allow" if allow_external_name else "default")
        self.web, self.ping = util.free_ports(2)
        argv = [binary, "--log.level=INFO", "--ping=true",
                "--entryPoints.web.address=127.0.0.1:%d" % self.web,
                "--entryPoints.traefik.address=127.0.0.1:%d" % self.ping,
                "--providers.kubernetesingress=true",
                "--providers.kubernetesingress.endpoint=" + cluster.server,
                "--providers.kubernetesingress.token=" + cluster.admin_token,
                "--providers.kubernetesingress.certAuthFilePath=" + cluster.ca_file]
        if allow_external_name:
            argv.append("--providers.kubernetesingress.allowExternalNameServices=true")
        # Its own mount namespace: FQDN resolves to the proxy's address there only.
        script = 'mount --bind "$0" /etc/hosts && exec "$@"'
        cluster.spawn(self.name, ["unshare", "-m", "sh", "-c", script, hosts_file] + argv)
        cluster.wait_for(self._pinged, 60, 0.3, "%s /ping" % self.name)

    def _pinged(self):
        self.c.check_running(self.name)
        try:
            return requests.get("http://127.0.0.1:%d/ping" % self.ping, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def status(self):
        try:
            r = requests.get("http://127.0.0.1:%d/anything" % self.web, headers={"Host": HOST}, timeout=10)
        except requests.RequestException as e:
            return "error %s" % e
        return r.status_code, r.text


@pytest.fixture(scope="module")
def wired(real, tmp_path_factory):
    """Backend, static zerowire-proxy on the host address, the proxy Service and
    its EndpointSlice, the webhook and its MutatingWebhookConfiguration, and
    two Traefiks. Yields a namespace holding the ScaledObject."""
    traefik = _peer("traefik-v3.*/traefik")
    ip = _host_ip()
    if not traefik:
        pytest.skip("Traefik not built under %s (e2e/build-peers.sh traefik)" % PEERS)
    if not ip:
        pytest.skip("no non-loopback IPv4 address: 1.37 refuses loopback EndpointSlice addresses")
    if not os.access(PROXY, os.X_OK):
        pytest.fail("%s not built: run `make SAN=1 tools`" % PROXY)
    tmp = str(tmp_path_factory.mktemp("alias-traefik"))
    ns = real.create_namespace("alias")
    so = scaled_object(ns, "app", hosts=HOST)

    backend = util.free_port()
    env = dict(os.environ, PYTHONPATH=os.path.join(util.REPO, "e2e"))
    real.spawn("backend", [sys.executable, "-m", "harness.backend", "--name", "app-1", "--ip", "127.0.0.1",
                           "--ports", str(backend)], env=env)
    util.wait_port("127.0.0.1", backend, 20)
    targets = os.path.join(tmp, "targets.yaml")
    with open(targets, "w") as f:
        f.write(so)
    port = util.free_port(ip)
    admin, scaler = util.free_ports(2)
    real.spawn("zerowire-proxy", [PROXY, "--targets-file", targets, "--workers", "1",
                                  "--static-endpoint", "%s/app:80=127.0.0.1:%d" % (ns, backend),
                                  "--listen", "%s:%d" % (ip, port), "--admin-listen", "127.0.0.1:%d" % admin,
                                  "--scaler-listen", "127.0.0.1:%d" % scaler, "--shutdown-delay", "0s"])
    util.wait_port(ip, port, 20)

    real.ensure_namespace(PROXY_NS)
    # As the chart makes it: http, and h2c (another Service port, same listener).
    h2c = {"name": "h2c", "port": port + 1, "protocol": "TCP", "appProtocol": "kubernetes.io/h2c"}
    real.apply(json.dumps({"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "zerowire-proxy", "namespace": PROXY_NS},
                           "spec": {"ports": [{"name": "http", "port": port, "protocol": "TCP"}, h2c]}}))
    real.apply(json.dumps({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                           "metadata": {"name": "zerowire-proxy-local", "namespace": PROXY_NS,
                                        "labels": {"kubernetes.io/service-name": "zerowire-proxy"}},
                           "addressType": "IPv4",
                           "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
                           "ports": [{"name": "http", "port": port, "protocol": "TCP"}, dict(h2c, port=port)]}))
    # What 1.37 refuses, as the module docstring says.
    r = real.kubectl("create", "--dry-run=server", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "loopback", "namespace": PROXY_NS}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.2"]}], "ports": [{"name": "http", "port": 1}]}))
    assert r.returncode != 0 and "loopback" in r.stderr, r.stderr

    w = WebhookProc(real, tmp, ["--proxy-port", str(port), "--proxy-h2c-port", str(port + 1)])
    w.start()
    real.apply(json.dumps(mwc_manifest(w.port, w.ca)))
    hosts = os.path.join(tmp, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n%s %s\n" % (ip, FQDN))
    w.traefiks = (Traefik(real, traefik, hosts, False), Traefik(real, traefik, hosts, True))
    real.apply(so)
    manifest = INGRESS % {"ns": ns, "host": HOST}
    real.wait_for(lambda: "zerowire-proxy" in real.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-", input=manifest).stdout, 30, 0.25,
        "target known to the webhook")
    real.apply(manifest)
    ing = get(real, "ingress", ns, "app")
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": "zerowire-proxy", "port": {"number": port}}
    w.ns, w.proxy_port = ns, port
    yield w
    rc = w.stop()
    logs = w.logs()
    assert "AddressSanitizer" not in logs and "runtime error" not in logs, logs[-5000:]
    assert rc == 0, logs[-3000:]


def _routed(t):
    s = t.status()
    return s if s[0] == 200 and "pod=app-1" in s[1] else None


def test_traefik_through_both_alias_modes(real, wired):
    default, allow = wired.traefiks
    ns = wired.ns

    # endpointslice (the default): an ordinary Service, both route.
    sl = real.wait_for(lambda: get(real, "endpointslices.discovery.k8s.io", ns, "zerowire-proxy-zw-ipv4"), 30, 0.25,
                       "alias EndpointSlice")
    # The alias carries the proxy's h2c port with its appProtocol, so a
    # gateway that reads it speaks h2c there (Ingress GRPC backends).
    alias_ports = get(real, "service", ns, "zerowire-proxy")["spec"]["ports"]
    assert [(p["name"], p["port"], p.get("appProtocol")) for p in alias_ports] == [
        ("http", wired.proxy_port, None), ("h2c", wired.proxy_port + 1, "kubernetes.io/h2c")], alias_ports
    assert sorted((p["name"], p["port"], p.get("appProtocol")) for p in sl["ports"]) == [
        ("h2c", wired.proxy_port, "kubernetes.io/h2c"), ("http", wired.proxy_port, None)], sl["ports"]
    for t in (default, allow):
        real.wait_for(lambda: _routed(t), 60, 0.5, "%s routes %s through the endpointslice alias" % (t.name, HOST))

    # externalname: only the Traefik that allows ExternalName Services routes.
    assert wired.stop() == 0, wired.logs()[-3000:]
    wired.args.append("--alias-mode=externalname")
    wired.start()
    real.wait_for(lambda: (get(real, "service", ns, "zerowire-proxy") or {}).get("spec", {}).get("type")
                  == "ExternalName", 30, 0.25, "alias converted to ExternalName")
    real.wait_for(lambda: _routed(allow), 60, 0.5, "%s routes through the ExternalName alias" % allow.name)
    real.wait_for(lambda: default.status()[0] == 404, 60, 0.5,
                  "%s refuses the ExternalName alias (404)" % default.name)
    with open(os.path.join(real.tmpdir, default.name + ".log")) as f:
        assert "externalName services not allowed" in f.read()
