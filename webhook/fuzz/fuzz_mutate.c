/* libFuzzer target: arbitrary bytes as an AdmissionReview body, reviewed
 * against a fixed registry (targets for a few Services, a Gloo Upstream, a
 * VirtualDestination, known Service ports, the proxy's TLS port and
 * BackendTLSPolicies). Any crash, leak or sanitizer
 * report is a bug; every answer must be 200 with a response, or 400/413. */
#include "mutate.h"
#include "registry.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct zw_registry *reg;
static struct zw_mutate_config cfg;

static const char *const registry_objects[] = {
        "{\"apiVersion\":\"keda.sh/v1alpha1\",\"kind\":\"ScaledObject\",\"metadata\":{\"name\":"
        "\"app\",\"namespace\":\"default\"},\"spec\":{\"scaleTargetRef\":{\"name\":\"app\"},"
        "\"triggers\":[{\"type\":\"external-push\",\"metadata\":{\"scalerAddress\":\"zerowire-"
        "proxy."
        "zerowire:9090\",\"service\":\"app\",\"port\":\"80\",\"hosts\":\"example.com,*.example."
        "org\"}}]}}",
        "{\"apiVersion\":\"keda.sh/v1alpha1\",\"kind\":\"ScaledObject\",\"metadata\":{\"name\":"
        "\"web\",\"namespace\":\"web\"},\"spec\":{\"scaleTargetRef\":{\"name\":\"web\"},"
        "\"triggers\":[{\"type\":\"kedify-http\",\"metadata\":{\"service\":\"web\",\"portName\":"
        "\"http\",\"scalingMetric\":\"concurrency\",\"trafficAutowire\":\"ingress,gloo\"}}]}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\",\"namespace\":"
        "\"web\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":8080}]}}",
        /* Ports of every protocol: HTTP/1.1, h2c (to the proxy's h2c
         * port), TLS and not HTTP (left alone), h2c by annotation. */
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"app\",\"namespace\":"
        "\"default\",\"annotations\":{\"cloud.google.com/app-protocols\":\"{\\\"web\\\":"
        "\\\"HTTP2\\\"}\"}},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80},{\"name\":"
        "\"grpc-api\",\"port\":81},{\"port\":82,\"appProtocol\":\"kubernetes.io/h2c\"},{"
        "\"port\":443,\"appProtocol\":\"https\"},{\"name\":\"tcp-db\",\"port\":5432},{"
        "\"name\":\"web\",\"port\":83}]}}",
        /* The proxy's TLS port with a BackendTLSPolicy (TLS destinations go
         * there), and a backend port a policy of its own verifies. */
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"zerowire-proxy\","
        "\"namespace\":\"zerowire\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":8080},{"
        "\"name\":\"https\",\"port\":8443,\"appProtocol\":\"https\"}]}}",
        "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"BackendTLSPolicy\","
        "\"metadata\":{\"name\":\"p\",\"namespace\":\"zerowire\"},\"spec\":{\"targetRefs\":[{"
        "\"group\":\"\",\"kind\":\"Service\",\"name\":\"zerowire-proxy\",\"sectionName\":"
        "\"https\"}]}}",
        "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"BackendTLSPolicy\","
        "\"metadata\":{\"name\":\"b\",\"namespace\":\"default\"},\"spec\":{\"targetRefs\":[{"
        "\"group\":\"\",\"kind\":\"Service\",\"name\":\"app\",\"sectionName\":\"web\"}]}}",
        "{\"apiVersion\":\"gloo.solo.io/v1\",\"kind\":\"Upstream\",\"metadata\":{\"name\":\"up\","
        "\"namespace\":\"gloo-system\"},\"spec\":{\"kube\":{\"serviceName\":\"app\","
        "\"serviceNamespace\":\"default\",\"servicePort\":80}}}",
        "{\"apiVersion\":\"networking.gloo.solo.io/"
        "v2\",\"kind\":\"VirtualDestination\",\"metadata\":"
        "{\"name\":\"vd\",\"namespace\":\"default\"},\"spec\":{\"services\":[{\"name\":\"app\"}],"
        "\"ports\":[{\"number\":80,\"targetPort\":{\"number\":80}}]}}",
};

static const char *const handwired[] = {
        "keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local"};

static void setup(void)
{
	reg = zw_registry_new();
	if (!reg)
		abort();
	for (size_t i = 0; i < sizeof(registry_objects) / sizeof(registry_objects[0]); i++) {
		json_t *o = json_loads(registry_objects[i], 0, NULL);
		if (!o || zw_registry_apply_object(reg, o, false, NULL) != 0)
			abort();
		json_decref(o);
	}
	zw_registry_set_wiring(reg, ZW_WIRE_ALIAS, "default", true);
	zw_mutate_config_defaults(&cfg);
	cfg.handwired_hosts = handwired;
	cfg.n_handwired_hosts = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!reg)
		setup();
	char *out = NULL;
	size_t len = 0;
	struct zw_mutate_result info;
	int status = zw_mutate_review((const char *)data, size, reg, &cfg, &out, &len, &info);
	if (status == 200) {
		if (!out || strlen(out) != len)
			abort();
		/* The answer must itself be JSON. */
		json_t *r = json_loadb(out, len, 0, NULL);
		if (!r)
			abort();
		json_decref(r);
	} else if (out || (status != 400 && status != 413 && status != 500)) {
		abort();
	}
	free(out);
	return 0;
}
