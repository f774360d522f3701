"""A real gateway (issue #17, in progress): Traefik from
github.com/traefik/traefik/v3, built by e2e/build-peers.sh, run as a local
process with its Kubernetes Ingress and Gateway API providers watching a
RealCluster (admin token, the cluster's CA). One entry point "web" on
loopback for traffic, one "traefik" for /ping and the read-only API
(/api/http/routers: which routes Traefik built from which provider)."""

import os

import requests

from . import util


class RealTraefik:
    def __init__(self, cluster, binary, gateway=True):
        self.c = cluster
        self.binary = binary
        self.gateway = gateway
        self.web_port = self.ping_port = None

    def start(self):
        c = self.c
        self.web_port, self.ping_port = util.free_ports(2)
        argv = [self.binary, "--log.level=INFO", "--ping=true", "--api.insecure=true",
                "--api.dashboard=false",
                "--entryPoints.web.address=127.0.0.1:%d" % self.web_port,
                "--entryPoints.traefik.address=127.0.0.1:%d" % self.ping_port]
        providers = ["kubernetesingress"] + (["kubernetesgateway"] if self.gateway else [])
        for p in providers:
            argv += ["--providers.%s=true" % p, "--providers.%s.endpoint=%s" % (p, c.server),
                     "--providers.%s.token=%s" % (p, c.admin_token),
                     "--providers.%s.certAuthFilePath=%s" % (p, c.ca_file)]
        # Endpoints and EndpointSlices refuse loopback addresses since 1.3x:
        # local backends are ExternalName "localhost" Services.
        argv.append("--providers.kubernetesingress.allowExternalNameServices=true")
        c.spawn("traefik", argv, env=dict(os.environ))
        c.wait_for(self._pinged, 60, 0.3, "traefik /ping on 127.0.0.1:%d" % self.ping_port)
        return self

    def _pinged(self):
        self.c.check_running("traefik")
        try:
            return requests.get("http://127.0.0.1:%d/ping" % self.ping_port, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def get(self, host, path="/", timeout=5):
        """GET through the web entry point with Host: host."""
        return requests.get("http://127.0.0.1:%d%s" % (self.web_port, path), headers={"Host": host},
                            timeout=timeout)

    def routers(self):
        """Traefik's HTTP routers (its API): [{"name", "rule", "provider", ...}]."""
        r = requests.get("http://127.0.0.1:%d/api/http/routers" % self.ping_port, timeout=5)
        r.raise_for_status()
        return r.json()

    def servers(self, router):
        """The server URLs behind a router (its service's load balancer, as
        Traefik built it; weighted services followed one level down)."""
        svc = router.get("service", "")
        if "@" not in svc:
            svc += "@" + router.get("provider", "")
        r = requests.get("http://127.0.0.1:%d/api/http/services/%s" % (self.ping_port, svc), timeout=5)
        if r.status_code != 200:
            return []
        doc = r.json()
        urls = [x.get("url") for x in (doc.get("loadBalancer") or {}).get("servers", [])]
        for w in (doc.get("weighted") or {}).get("services", []):
            name = w["name"] if "@" in w["name"] else w["name"] + "@" + router.get("provider", "")
            sub = requests.get("http://127.0.0.1:%d/api/http/services/%s" % (self.ping_port, name), timeout=5)
            if sub.status_code == 200:
                urls += [x.get("url") for x in (sub.json().get("loadBalancer") or {}).get("servers", [])]
        return urls
