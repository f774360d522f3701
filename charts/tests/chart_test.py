"""Tests of charts/zerowire: helm lint and template with default values and with each
value set, the rendered objects' required properties, the values schema, and installs
into the real kube-apiserver (server-side dry run, then for real)."""
import base64
import os
import subprocess

import pytest
import yaml

ROOT = os.environ.get("ZW_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
CHART = os.path.join(ROOT, "charts", "zerowire")
HELM = os.path.join(ROOT, "tools", "bin", "helm")

# Every value a platform engineer is expected to set, one at a time.
VALUE_SETS = [
    [],
    ["--set", "image.tag=1.2.3", "--set", "image.proxyRepository=registry.example/zw-proxy"],
    ["--set", "proxy.service.name=keda-add-ons-http-interceptor-proxy", "--set", "proxy.service.namespace=keda"],
    ["--set", "scalerAddress=keda-add-ons-http-external-scaler.keda:9090"],
    ["--set", "webhook.url=https://127.0.0.1:8443/mutate", "--set", "webhook.caBundle=Zm9v"],
    ["--set", "webhook.certMode=cert-manager"],
    ["--set", "kinds={ingress,httproute}"],
    ["--set", "watchNamespaces={team-a,team-b}"],
    ["--set", "logLevel=debug"],
    ["--set", "proxy.hpa.enabled=true"],
    ["--set", "proxy.pdb.enabled=false", "--set", "webhook.pdb.enabled=false"],
    ["--set", "crds.install=true"],
    ["--set", "networkPolicies.enabled=true"],
    ["--set", "proxy.limits.maxHeaderBytes=32768", "--set", "proxy.coldStart.readinessTimeout=30s",
     "--set", "proxy.upstream.connectTimeout=1s", "--set", "proxy.shutdown.drainTimeout=10s"],
    ["--set", "webhook.failurePolicy=Fail", "--set", "webhook.timeoutSeconds=10"],
    ["--set", "proxy.upstream.streamIdleTimeout=30m"],
    ["--set", "webhook.splitHeader=false"],
    ["--set-string", "proxy.upstream.streamIdleTimeout=0"],
    ["--set", "proxy.networkPolicy.enabled=false"],
    ["--set", "proxy.peerAuth.existingSecret=my-peer-token", "--set", "proxy.peerAuth.tokenGrace=30s"],
    ["--set", "proxy.networkPolicy.metricsNamespaceSelector=null"],
    ["--set", "proxy.ports.peer=9192"],
    ["--set", "nameOverride=zw", "--set", "fullnameOverride=acme"],
    ["--set", "proxy.extraArgs={--log-level=debug}", "--set", "webhook.extraArgs={--resync=20}",
     "--set", "proxy.priorityClassName=system-cluster-critical", "--set", "webhook.podLabels.team=edge"],
    ["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.podMonitor.enabled=true"],
    ["--set", "restoreOnUninstall.enabled=false"],
]


def helm(*args, check=True, env=None):
    if not os.path.exists(HELM):
        pytest.fail("helm is missing at %s: run scripts/install-helm.sh (make setup does)" % HELM)
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120, check=check, env=env)


def render(*extra, namespace="zerowire"):
    out = helm("template", "zerowire", CHART, "-n", namespace, *extra).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda v: " ".join(v[1::2]) or "defaults")
def test_lint_and_template(values):
    r = helm("lint", CHART, *values, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    docs = render(*values)
    assert by_kind(docs, "MutatingWebhookConfiguration")
    name = "zw" if "nameOverride=zw" in values else "zerowire"
    for d in docs:
        assert d["metadata"]["labels"]["app.kubernetes.io/name"] == name


def test_webhook_configuration_defaults():
    mwc = by_kind(render(), "MutatingWebhookConfiguration")[0]
    (wh,) = mwc["webhooks"]
    assert wh["failurePolicy"] == "Ignore"
    assert wh["timeoutSeconds"] == 5
    assert wh["sideEffects"] == "None"
    assert wh["reinvocationPolicy"] == "IfNeeded"
    assert wh["admissionReviewVersions"] == ["v1"]
    excluded = [e for e in wh["namespaceSelector"]["matchExpressions"] if e["key"] == "kubernetes.io/metadata.name"][0]
    assert excluded["operator"] == "NotIn"
    assert set(excluded["values"]) == {"kube-system", "kube-node-lease", "zerowire"}
    opt_out = wh["objectSelector"]["matchExpressions"][0]
    assert opt_out == {"key": "zerowire.io/autowire", "operator": "NotIn", "values": ["false"]}
    served = {(g, v, r) for rule in wh["rules"] for g in rule["apiGroups"] for v in rule["apiVersions"]
              for r in rule["resources"]}
    want = {("keda.sh", "v1alpha1", "scaledobjects"), ("networking.k8s.io", "v1", "ingresses")}
    want |= {("gateway.networking.k8s.io", v, "httproutes") for v in ("v1", "v1beta1", "v1alpha2")}
    want |= {("gateway.networking.k8s.io", v, "grpcroutes") for v in ("v1", "v1alpha2")}
    want |= {("networking.istio.io", v, "virtualservices") for v in ("v1", "v1beta1", "v1alpha3")}
    want |= {("gateway.solo.io", "v1", r) for r in ("virtualservices", "routetables")}
    want |= {("networking.gloo.solo.io", "v2", "routetables")}
    assert served == want
    assert wh["clientConfig"]["service"]["path"] == "/mutate"


def test_kinds_value_narrows_rules():
    mwc = by_kind(render("--set", "kinds={ingress}"), "MutatingWebhookConfiguration")[0]
    groups = {g for rule in mwc["webhooks"][0]["rules"] for g in rule["apiGroups"]}
    assert groups == {"keda.sh", "networking.k8s.io"}


def test_url_mode_renders_no_in_cluster_webhook():
    docs = render("--set", "webhook.url=https://127.0.0.1:8443/mutate", "--set", "webhook.caBundle=Zm9v")
    cc = by_kind(docs, "MutatingWebhookConfiguration")[0]["webhooks"][0]["clientConfig"]
    assert cc == {"url": "https://127.0.0.1:8443/mutate", "caBundle": "Zm9v"}
    assert [d["metadata"]["name"] for d in by_kind(docs, "Deployment")] == ["zerowire-proxy"]


def test_proxy_can_stand_in_for_the_interceptor():
    docs = render("--set", "proxy.service.name=keda-add-ons-http-interceptor-proxy",
                  "--set", "proxy.service.namespace=keda")
    svcs = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in by_kind(docs, "Service")}
    proxy = svcs[("keda", "keda-add-ons-http-interceptor-proxy")]
    assert proxy["spec"]["ports"][0]["port"] == 8080
    assert svcs[("keda", "keda-add-ons-http-interceptor-proxy-peers")]["spec"]["clusterIP"] == "None"
    args = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-webhook")][0][
        "spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--proxy-service=keda-add-ons-http-interceptor-proxy" in args
    assert "--proxy-namespace=keda" in args


def test_proxy_h2c_port():
    """The proxy Service's second port leads to the same listener with
    appProtocol kubernetes.io/h2c, and the webhook is told its number; 0
    drops the port and tells the webhook to leave h2c/gRPC destinations
    alone; the HTTP port's number is refused."""
    def proxy_and_args(*sets):
        docs = render(*sets)
        svc = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "zerowire-proxy"][0]
        args = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-webhook")][0][
            "spec"]["template"]["spec"]["containers"][0]["args"]
        return svc["spec"]["ports"], args
    ports, args = proxy_and_args()
    assert ports[1] == {"name": "h2c", "port": 8081, "targetPort": "http", "protocol": "TCP",
                        "appProtocol": "kubernetes.io/h2c"}
    assert ports[0]["targetPort"] == "http" and "appProtocol" not in ports[0]
    assert "--proxy-h2c-port=8081" in args
    ports, args = proxy_and_args("--set", "proxy.ports.h2c=50051")
    assert ports[1]["port"] == 50051 and "--proxy-h2c-port=50051" in args
    ports, args = proxy_and_args("--set", "proxy.ports.h2c=0")
    assert [p["name"] for p in ports] == ["http"] and "--proxy-h2c-port=0" in args
    r = subprocess.run([HELM, "template", "x", CHART, "--set", "proxy.ports.h2c=8080"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "proxy.ports.h2c equals proxy.ports.http" in r.stderr, r.stderr



CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def test_proxy_backend_tls_policy():
    """proxy.tls.backendTLSPolicy: a BackendTLSPolicy on the proxy Service's
    port https (what the webhook needs before rewriting Gateway API TLS
    destinations), its hostname, and the CA as a ConfigMap of the chart or
    one of the user's; exactly one CA source; nothing without TLS."""
    tls = ["--set", "proxy.tls.enabled=true", "--set", "proxy.tls.defaultSecret=proxy-cert"]
    on = tls + ["--set", "proxy.tls.backendTLSPolicy.enabled=true"]
    assert not by_kind(render(*tls), "BackendTLSPolicy")
    assert not by_kind(render("--set", "proxy.tls.backendTLSPolicy.enabled=true"), "BackendTLSPolicy")
    docs = render(*on, "--set-string", "proxy.tls.backendTLSPolicy.caCertificate=" + CA_PEM, namespace="zw")
    (pol,) = by_kind(docs, "BackendTLSPolicy")
    (cm,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "zerowire-proxy-ca"]
    assert pol["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert pol["metadata"]["namespace"] == "zw" and cm["metadata"]["namespace"] == "zw"
    assert pol["spec"] == {
        "targetRefs": [{"group": "", "kind": "Service", "name": "zerowire-proxy", "sectionName": "https"}],
        "validation": {"hostname": "zerowire-proxy.zw.svc",
                       "caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "zerowire-proxy-ca"}]}}
    assert cm["data"]["ca.crt"] == CA_PEM
    # The port it names is the one the proxy Service has.
    (svc,) = [d for d in by_kind(docs, "Service") if d["metadata"]["name"] == "zerowire-proxy"]
    assert {"name": "https", "port": 8443, "targetPort": "https", "protocol": "TCP",
            "appProtocol": "https"} in svc["spec"]["ports"]
    docs = render(*on, "--set", "proxy.tls.backendTLSPolicy.caConfigMap=trust-bundle",
                  "--set", "proxy.tls.backendTLSPolicy.hostname=proxy.example.com")
    (pol,) = by_kind(docs, "BackendTLSPolicy")
    assert pol["spec"]["validation"] == {
        "hostname": "proxy.example.com",
        "caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "trust-bundle"}]}
    assert not [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "zerowire-proxy-ca"]
    for extra in ([], ["--set-string", "proxy.tls.backendTLSPolicy.caCertificate=" + CA_PEM,
                       "--set", "proxy.tls.backendTLSPolicy.caConfigMap=trust-bundle"]):
        r = helm("template", "zerowire", CHART, *on, *extra, check=False)
        assert r.returncode != 0 and "needs exactly one of caCertificate" in r.stderr, r.stderr

def test_webhook_resource_limits_become_flags():
    def args(*sets):
        docs = render(*sets)
        return [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-webhook")][0][
            "spec"]["template"]["spec"]["containers"][0]["args"]
    a = args()
    for want in ("--body-budget=25165824", "--max-connections=256", "--max-connections-per-ip=0",
                 "--read-timeout=10", "--idle-timeout=60"):
        assert want in a, a
    a = args("--set", "webhook.limits.maxConnections=64", "--set", "webhook.limits.readTimeoutSeconds=5",
             "--set", "webhook.limits.bodyBudgetBytes=8388608")
    assert "--max-connections=64" in a and "--read-timeout=5" in a and "--body-budget=8388608" in a
    # The memory limit is the one README derives from these defaults.
    docs = render()
    wh = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-webhook")][0]
    assert wh["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "192Mi"


def test_services_ports_and_containers_hardened():
    docs = render()
    ports = {s["metadata"]["name"]: [p["port"] for p in s["spec"]["ports"]] for s in by_kind(docs, "Service")}
    assert ports["zerowire-proxy"] == [8080, 8081]
    assert ports["zerowire-proxy-scaler"] == [9090]
    assert ports["zerowire-proxy-admin"] == [9091]
    assert ports["zerowire-proxy-peers"] == [9092]
    for dep in by_kind(docs, "Deployment"):
        spec = dep["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert dep["spec"]["replicas"] == 2
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["resources"]["requests"]
    assert len(by_kind(docs, "PodDisruptionBudget")) == 2


def _proxy_pod(docs):
    return [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "zerowire-proxy"][0][
        "spec"]["template"]["spec"]


def test_peer_token_secret_mounted_and_passed():
    docs = render()
    (secret,) = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == "zerowire-proxy-peer-token"]
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 48 and token.isalnum()
    # A new render (no cluster to look up) draws another one: it is random.
    (again,) = [s for s in by_kind(render(), "Secret") if s["metadata"]["name"] == "zerowire-proxy-peer-token"]
    assert again["data"]["token"] != secret["data"]["token"]
    pod = _proxy_pod(docs)
    (c,) = pod["containers"]
    assert "--peer-token-file=/var/run/zerowire/peer-token/token" in c["args"]
    assert "--peer-listen=0.0.0.0:9092" in c["args"]
    assert "--admin-listen=0.0.0.0:9091" in c["args"]
    assert "--peer-token-grace=2m" in c["args"]
    assert "--peers-service=zerowire/zerowire-proxy-peers:peer" in c["args"]
    assert {"name": "peer", "containerPort": 9092, "protocol": "TCP"} in c["ports"]
    (mount,) = c["volumeMounts"]
    assert mount["mountPath"] == "/var/run/zerowire/peer-token" and mount["readOnly"] is True
    (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert vol["secret"]["secretName"] == "zerowire-proxy-peer-token"
    # The token is never in the args or the environment.
    assert token not in yaml.safe_dump(pod)
    # Probes stay on the read-only admin port.
    assert c["readinessProbe"]["httpGet"]["port"] == "admin"
    peers = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "zerowire-proxy-peers"][0]
    assert peers["spec"]["ports"] == [{"name": "peer", "port": 9092, "targetPort": "peer", "protocol": "TCP"}]


def test_peer_token_existing_secret():
    docs = render("--set", "proxy.peerAuth.existingSecret=my-peer-token")
    assert not [s for s in by_kind(docs, "Secret") if "peer-token" in s["metadata"]["name"]]
    (vol,) = _proxy_pod(docs)["volumes"]
    assert vol["secret"]["secretName"] == "my-peer-token"


def _proxy_policy(docs):
    return [n for n in by_kind(docs, "NetworkPolicy") if n["metadata"]["name"] == "zerowire-proxy"]


def test_proxy_network_policy_on_by_default():
    docs = render()
    (np,) = _proxy_policy(docs)
    assert not [n for n in by_kind(docs, "NetworkPolicy") if n["metadata"]["name"] != "zerowire-proxy"]
    assert np["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "proxy"
    rules = {tuple(p["port"] for p in r["ports"]): r.get("from") for r in np["spec"]["ingress"]}
    assert rules[(8080, 9090)] is None  # data path and KEDA: from anywhere
    proxy_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "zerowire",
                                                  "app.kubernetes.io/instance": "zerowire",
                                                  "app.kubernetes.io/component": "proxy"}}}
    assert rules[(9092,)] == [proxy_pods]  # peer port: the replicas only
    helm_test = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "zerowire",
                                                 "app.kubernetes.io/instance": "zerowire",
                                                 "app.kubernetes.io/component": "helm-test"}}}
    assert rules[(9091,)] == [proxy_pods, {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {}}, helm_test]
    # No other rule opens the admin or peer port.
    assert sorted(rules) == [(8080, 9090), (9091,), (9092,)]


def test_proxy_network_policy_values():
    docs = render("--set", "proxy.networkPolicy.metricsNamespaceSelector.matchLabels.team=obs",
                  "--set", "proxy.networkPolicy.metricsPodSelector.matchLabels.app=prometheus",
                  "--set", "proxy.networkPolicy.adminFrom[0].namespaceSelector.matchLabels.name=keda")
    (np,) = _proxy_policy(docs)
    admin = [r for r in np["spec"]["ingress"] if r["ports"][0]["port"] == 9091][0]["from"]
    assert admin[1]["namespaceSelector"]["matchLabels"]["team"] == "obs"
    assert admin[1]["podSelector"] == {"matchLabels": {"app": "prometheus"}}
    assert admin[3] == {"namespaceSelector": {"matchLabels": {"name": "keda"}}}  # after the helm test Pod
    (np,) = _proxy_policy(render("--set", "proxy.networkPolicy.metricsNamespaceSelector=null",
                                 "--set", "helmTest.enabled=false"))
    admin = [r for r in np["spec"]["ingress"] if r["ports"][0]["port"] == 9091][0]["from"]
    assert len(admin) == 1  # the replicas only
    assert not _proxy_policy(render("--set", "proxy.networkPolicy.enabled=false"))
    # networkPolicies.enabled adds the webhook's and keeps the proxy's.
    docs = render("--set", "proxy.networkPolicy.enabled=false", "--set", "networkPolicies.enabled=true")
    assert len(_proxy_policy(docs)) == 1 and len(by_kind(docs, "NetworkPolicy")) == 2
def test_restore_hook_runs_before_delete_with_its_own_rbac():
    docs = render("--set", "watchNamespaces={team-a}", "--set", "restoreOnUninstall.deadlineSeconds=300")
    hooks = [d for d in docs if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "pre-delete"]
    assert sorted(d["kind"] for d in hooks) == ["ClusterRole", "ClusterRoleBinding", "Job", "Role", "RoleBinding",
                                               "ServiceAccount"]
    for d in hooks:
        assert d["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        # RBAC first, then the Job.
        assert int(d["metadata"]["annotations"]["helm.sh/hook-weight"]) == (0 if d["kind"] == "Job" else -10)
    (job,) = by_kind(hooks, "Job")
    assert job["spec"]["activeDeadlineSeconds"] == 360
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "zerowire-restore" and pod["restartPolicy"] == "Never"
    args = pod["containers"][0]["args"]
    for want in ("restore", "--webhook-config=zerowire", "--lease-namespace=zerowire",
                 "--lease-name=zerowire-webhook", "--deadline=300s", "--watch-namespaces=team-a"):
        assert want in args, args
    (role,) = [r for r in by_kind(hooks, "ClusterRole")]
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs == {"list", "patch", "delete"}
    mwc_rule = [r for r in role["rules"] if "mutatingwebhookconfigurations" in r["resources"]][0]
    assert mwc_rule["resourceNames"] == ["zerowire"] and mwc_rule["verbs"] == ["delete"]
    assert not [d for d in render("--set", "restoreOnUninstall.enabled=false") if d["kind"] == "Job"]
    url = render("--set", "webhook.url=https://127.0.0.1:8443/mutate", "--set", "webhook.caBundle=Zm9v")
    assert not [d for d in url if d["kind"] == "Job"]


def deployment(docs, suffix):
    return [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith(suffix)][0]


def test_termination_grace_follows_shutdown_delay_and_drain():
    pod = deployment(render(), "proxy")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 5 + 30 + 10
    pod = deployment(render("--set", "proxy.shutdown.delay=1500ms", "--set", "proxy.shutdown.drainTimeout=2m"),
                     "proxy")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 2 + 120 + 10  # 121.5 s rounded up, + 10
    pod = deployment(render("--set", "proxy.shutdown.drainTimeout=1h0m30s"), "proxy")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 5 + 3630 + 10
    pod = deployment(render("--set", "proxy.terminationGracePeriodSeconds=90"), "proxy")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 90


def test_pdbs_allow_one_unavailable():
    pdbs = by_kind(render(), "PodDisruptionBudget")
    assert len(pdbs) == 2
    for p in pdbs:
        assert p["spec"]["maxUnavailable"] == 1 and "minAvailable" not in p["spec"]


def test_name_overrides():
    docs = render("--set", "nameOverride=zw")
    assert {d["metadata"]["labels"]["app.kubernetes.io/name"] for d in docs} == {"zw"}
    assert deployment(docs, "webhook")["metadata"]["name"] == "zerowire-zw-webhook"
    docs = render("--set", "fullnameOverride=acme")
    assert deployment(docs, "webhook")["metadata"]["name"] == "acme-webhook"
    assert by_kind(docs, "MutatingWebhookConfiguration")[0]["metadata"]["name"] == "acme"
    assert deployment(render(), "webhook")["metadata"]["name"] == "zerowire-webhook"


def test_pod_extras_and_probes():
    docs = render("--set", "proxy.extraArgs={--slow-start=1s}", "--set", "proxy.extraEnv[0].name=A",
                  "--set", "proxy.extraEnv[0].value=b", "--set", "proxy.extraVolumes[0].name=x",
                  "--set", "proxy.extraVolumes[0].emptyDir.medium=Memory",
                  "--set", "proxy.extraVolumeMounts[0].name=x", "--set", "proxy.extraVolumeMounts[0].mountPath=/x",
                  "--set", "proxy.podAnnotations.a=b", "--set", "proxy.podLabels.team=edge",
                  "--set", "proxy.priorityClassName=high", "--set", "webhook.extraVolumes[0].name=y",
                  "--set", "webhook.extraVolumes[0].emptyDir.medium=Memory",
                  "--set", "webhook.extraVolumeMounts[0].name=y", "--set", "webhook.extraVolumeMounts[0].mountPath=/y",
                  "--set", "webhook.certMode=cert-manager", "--set", "webhook.probes.startup.failureThreshold=60",
                  "--set", "proxy.probes.readiness.periodSeconds=5")
    proxy = deployment(docs, "proxy")["spec"]["template"]
    c = proxy["spec"]["containers"][0]
    assert c["args"][-1] == "--slow-start=1s"
    assert {"name": "A", "value": "b"} in c["env"] and c["env"][0]["name"] == "POD_NAME"
    # The peer token's mount and volume come first, the extra ones after.
    assert [m["name"] for m in c["volumeMounts"]] == ["peer-token", "x"]
    assert c["volumeMounts"][1] == {"name": "x", "mountPath": "/x"}
    assert [v["name"] for v in proxy["spec"]["volumes"]] == ["peer-token", "x"]
    assert proxy["spec"]["volumes"][1] == {"name": "x", "emptyDir": {"medium": "Memory"}}
    assert proxy["metadata"]["annotations"] == {"a": "b"} and proxy["metadata"]["labels"]["team"] == "edge"
    assert proxy["spec"]["priorityClassName"] == "high"
    assert c["readinessProbe"]["periodSeconds"] == 5 and c["startupProbe"]["httpGet"]["path"] == "/healthz"
    wh = deployment(docs, "webhook")["spec"]["template"]["spec"]
    names = [v["name"] for v in wh["volumes"]]
    assert names == ["tls", "y"] and [m["name"] for m in wh["containers"][0]["volumeMounts"]] == ["tls", "y"]
    probe = wh["containers"][0]["startupProbe"]
    assert probe["failureThreshold"] == 60 and probe["httpGet"]["scheme"] == "HTTPS"


def test_topology_spread_soft_by_default():
    for comp in ("proxy", "webhook"):
        tsc = deployment(render(), comp)["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert [t["topologyKey"] for t in tsc] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        assert all(t["whenUnsatisfiable"] == "ScheduleAnyway" for t in tsc)
        assert all(t["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == comp for t in tsc)
    tsc = deployment(render("--set", "proxy.topologySpreadConstraints[0].maxSkew=2",
                            "--set", "proxy.topologySpreadConstraints[0].topologyKey=rack",
                            "--set", "proxy.topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule"),
                     "proxy")["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert tsc == [{"maxSkew": 2, "topologyKey": "rack", "whenUnsatisfiable": "DoNotSchedule"}]


def test_service_and_pod_monitors():
    assert not by_kind(render(), "ServiceMonitor") and not by_kind(render(), "PodMonitor")
    docs = render("--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.labels.release=prom")
    sms = {m["metadata"]["name"]: m for m in by_kind(docs, "ServiceMonitor")}
    assert set(sms) == {"zerowire-proxy", "zerowire-webhook"}
    assert sms["zerowire-proxy"]["metadata"]["labels"]["release"] == "prom"
    sel = sms["zerowire-proxy"]["spec"]["selector"]["matchLabels"]
    admin = [s for s in by_kind(docs, "Service")
             if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())]
    assert [s["metadata"]["name"] for s in admin] == ["zerowire-proxy-admin"]
    assert sms["zerowire-webhook"]["spec"]["endpoints"][0]["scheme"] == "https"
    pms = by_kind(render("--set", "metrics.podMonitor.enabled=true"), "PodMonitor")
    assert sorted(p["spec"]["podMetricsEndpoints"][0]["port"] for p in pms) == ["admin", "https"]


def test_url_mode_without_ca_bundle_fails_clearly():
    r = helm("template", "zerowire", CHART, "--set", "webhook.url=https://10.0.0.5:8443/mutate", check=False)
    assert r.returncode != 0 and "webhook.caBundle is empty" in r.stderr, r.stderr
    # A webhook outside the cluster in self mode keeps caBundle itself.
    docs = render("--set", "webhook.url=https://10.0.0.5:8443/mutate", "--set", "webhook.caBundleFromWebhook=true")
    (mwc,) = by_kind(docs, "MutatingWebhookConfiguration")
    assert mwc["webhooks"][0]["clientConfig"] == {"url": "https://10.0.0.5:8443/mutate"}


def test_chart_metadata():
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        chart = yaml.safe_load(f)
    assert chart["kubeVersion"] == ">=1.20.0-0 <1.38.0-0"  # the tested range (README)
    for key in ("home", "sources", "maintainers", "icon", "description"):
        assert chart.get(key), key


def test_schema_closed_and_described_everywhere():
    import json
    with open(os.path.join(CHART, "values.schema.json")) as f:
        schema = json.load(f)
    with open(os.path.join(CHART, "values.yaml")) as f:
        values = yaml.safe_load(f)
    free = {"resources", "nodeSelector", "affinity", "podSecurityContext", "securityContext", "issuerRef",
            "podAnnotations", "podLabels", "labels"}

    def resolve(node):
        ref = node.get("$ref", "")
        return schema["definitions"][ref.split("/")[-1]] if ref.startswith("#/definitions/") else node

    def walk(node, val, path):
        node = dict(resolve(node), **{k: v for k, v in node.items() if k != "$ref"})
        if path:
            assert node.get("description"), "no description: " + path
        if "properties" in node and path.split(".")[-1] not in free:
            assert node.get("additionalProperties") is False, "open object: " + (path or "(root)")
            for k, v in (val or {}).items():
                assert k in node["properties"], "value without schema: %s.%s" % (path, k)
            for k, sub in node["properties"].items():
                walk(sub, (val or {}).get(k) if isinstance(val, dict) else None, (path + "." + k).lstrip("."))
    walk(schema, values, "")


def test_rbac_is_least_privilege():
    docs = render()
    roles = {r["metadata"]["name"]: r for r in by_kind(docs, "ClusterRole")}
    for rule in roles["zerowire-proxy"]["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
    for r in by_kind(docs, "ClusterRole") + by_kind(docs, "Role"):
        for rule in r["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            assert "escalate" not in rule["verbs"] and "bind" not in rule["verbs"]


@pytest.mark.parametrize("bad", [
    ["--set", "logLevel=verbose"],
    ["--set", "kinds={ingress,route53}"],
    ["--set", "webhook.certMode=manual"],
    ["--set", "proxy.ports.http=70000"],
    ["--set", "proxy.coldStart.readinessTimeout=soon"],
    ["--set", "proxy.upstream.streamIdleTimeout=never"],
    ["--set", "webhook.url=http://insecure/mutate"],
    ["--set", "webhook.limits.readTimeoutSeconds=0"],
    ["--set", "webhook.limits.maxConnections=0"],
    ["--set", "webhook.limits.bodyBudget=1"],
    ["--set", "proxy.ports.peer=70000"],
    ["--set", "proxy.peerAuth.tokenGrace=soon"],
    ["--set", "proxy.networkPolicy.enabled=maybe"],
    ["--set", "unknownTopLevel=1"],
    ["--set", "proxy.pdb.minAvailable=1"],
    ["--set", "proxy.probes.startup.period=1"],
    ["--set", "metrics.serviceMonitor.scrape=1"],
    ["--set", "restoreOnUninstall.deadlineSeconds=1"],
])
def test_schema_rejects_bad_values(bad):
    r = helm("template", "zerowire", CHART, *bad, check=False)
    assert r.returncode != 0
    assert "schema" in (r.stderr + r.stdout).lower() or "value must be" in r.stderr


def test_install_into_real_apiserver(cluster, tmp_path):
    env = dict(os.environ, KUBECONFIG=cluster.kubeconfig, HELM_CACHE_HOME=str(tmp_path / "c"),
               HELM_CONFIG_HOME=str(tmp_path / "cfg"), HELM_DATA_HOME=str(tmp_path / "d"))
    ns = cluster.create_namespace("zwchart")
    # cert-manager's CRDs are not installed here; that mode is covered by the template tests.
    values = ["--set", "networkPolicies.enabled=true", "--set", "proxy.hpa.enabled=true"]
    dry = helm("install", "zw", CHART, "-n", ns, "--dry-run=server", *values, env=env, check=False)
    assert dry.returncode == 0, dry.stderr
    # The chart's own http.keda.sh CRDs (the session already has the test CRDs of the same
    # names, so they are checked by a server-side dry-run update).
    crds = helm("template", "zw", CHART, "--set", "crds.install=true",
                "--show-only", "templates/crds-http-keda.yaml").stdout
    cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=crds)
    real = helm("install", "zw", CHART, "-n", ns, *values, "--wait=false", env=env, check=False)
    assert real.returncode == 0, real.stderr
    got = cluster.kubectl("get", "deploy,svc,sa,role,rolebinding,pdb,hpa,networkpolicy", "-n", ns, "-o", "name").stdout
    for want in ("deployment.apps/zerowire-proxy", "deployment.apps/zw-zerowire-webhook", "service/zerowire-proxy",
                 "service/zerowire-proxy-scaler", "service/zerowire-proxy-peers",
                 "horizontalpodautoscaler.autoscaling/zerowire-proxy"):
        assert want in got, got
    mwc = cluster.kubectl("get", "mutatingwebhookconfiguration", "zw-zerowire", "-o", "yaml").stdout
    assert "reinvocationPolicy: IfNeeded" in mwc
    # The peer token is generated once and kept across upgrades (lookup).
    def token():
        return cluster.kubectl("get", "secret", "zerowire-proxy-peer-token", "-n", ns, "-o",
                               "jsonpath={.data.token}").stdout
    first = token()
    assert len(base64.b64decode(first)) == 48
    up = helm("upgrade", "zw", CHART, "-n", ns, *values, "--wait=false", env=env, check=False)
    assert up.returncode == 0, up.stderr
    assert token() == first
    # No kubelet runs the pre-delete restore Job here (helm would wait for it): its
    # command is tested against this apiserver in e2e/tests/test_lifecycle_e2e.py.
    hooks = cluster.kubectl("get", "job", "-n", ns, "-o", "name").stdout
    assert hooks == ""  # a hook: not installed, made at uninstall
    un = helm("uninstall", "zw", "-n", ns, "--no-hooks", env=env, check=False)
    assert un.returncode == 0, un.stderr


BINS = {"proxy": os.path.join(ROOT, "bin", "zerowire-proxy"),
        "webhook": os.path.join(ROOT, "bin", "zerowire-webhook")}


@pytest.mark.parametrize("values", VALUE_SETS + [["--set", "proxy.workers=4"]],
                         ids=lambda v: " ".join(v[1::2]) or "defaults")
def test_rendered_args_are_accepted_by_the_binaries(values, tmp_path):
    """Every flag the chart passes is one the binary knows, with a value it accepts: the
    process gets past flag parsing and stops only at the (deliberately missing) API server."""
    missing = tmp_path / "no-kubeconfig"
    docs = render(*values)
    for dep in by_kind(docs, "Deployment") + by_kind(docs, "Job"):
        c = dep["spec"]["template"]["spec"]["containers"][0]
        binary = BINS["webhook" if c["name"] == "restore" else c["name"]]
        assert os.path.exists(binary), "build first: make"
        r = subprocess.run([binary, *c["args"], "--kubeconfig", str(missing)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0
        assert "event=kubeconfig_failed" in r.stderr, (c["name"], c["args"], r.stderr)


def test_helm_test_pod():
    """`helm test` renders a Pod hook that checks both /readyz endpoints (no kubelet
    runs here, so the Pod itself cannot run in these tests), and the proxy's
    NetworkPolicy lets it reach the admin port."""
    docs = render()
    (pod,) = [d for d in by_kind(docs, "Pod") if d["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    script = pod["spec"]["containers"][0]["args"][0]
    assert "http://zerowire-proxy-admin.zerowire:9091/readyz" in script
    assert "https://zerowire-webhook.zerowire:443/readyz" in script
    assert pod["spec"]["restartPolicy"] == "Never"
    (np,) = [n for n in by_kind(docs, "NetworkPolicy") if n["metadata"]["name"] == "zerowire-proxy"]
    admin = [r for r in np["spec"]["ingress"] if r["ports"][0]["port"] == 9091][0]
    assert any(f.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "helm-test"
               for f in admin["from"])
    # url mode: the webhook is outside the cluster, only the proxy is checked.
    url = render("--set", "webhook.url=https://10.0.0.5:8443/mutate", "--set", "webhook.caBundle=Zm9v")
    (pod,) = [d for d in by_kind(url, "Pod") if d["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    assert "zerowire-webhook" not in pod["spec"]["containers"][0]["args"][0]
    assert not [d for d in by_kind(render("--set", "helmTest.enabled=false"), "Pod")]
